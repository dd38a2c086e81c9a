"""Every registered SSL method builds, trains a few steps with ``fit`` and yields a usable encoder,
under TensorFlow here and under PyTorch in a subprocess (KERAS_BACKEND set before Keras loads)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import garden
from helpers import SSL_CASES, SSL_TINY, train_tiny_ssl

METHODS = ("barlow_twins", "byol", "colorization", "cpc", "jigsaw", "moco_v2", "rotnet", "simclr", "simsiam", "swav")
ROOT = Path(__file__).resolve().parents[1]


def test_the_ten_methods_are_registered():
    assert set(garden.list_models("ssl")) == set(METHODS)
    assert set(SSL_TINY) == set(METHODS), "every method needs its tiny settings in tests/helpers.py"


@pytest.mark.slow
@pytest.mark.parametrize("case", SSL_CASES)
def test_method_trains_with_fit_under_tensorflow(case):
    losses, features, moved = train_tiny_ssl(case)
    assert len(losses) == 1 and np.isfinite(losses[0])
    assert features.ndim == 2 and features.shape[0] == 2 and np.all(np.isfinite(features))
    assert moved, "fit did not change the encoder"


SCRIPT = """
import json, sys
import numpy as np
sys.path.insert(0, {tests!r})
import keras
from helpers import SSL_CASES, train_tiny_ssl
out = {{}}
for name in sorted(SSL_CASES):
    losses, features, moved = train_tiny_ssl(name)
    out[name] = [float(losses[0]), list(features.shape), bool(np.all(np.isfinite(features))), moved]
print("RESULT", keras.backend.backend(), json.dumps(out))
"""


@pytest.mark.slow
@pytest.mark.backend
def test_every_method_trains_under_pytorch():
    pytest.importorskip("torch")
    env = {**os.environ, "KERAS_BACKEND": "torch", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(tests=str(ROOT / "tests"))],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    _, backend, payload = lines[0].split(" ", 2)
    results = json.loads(payload)
    assert backend == "torch" and set(results) == set(SSL_CASES)
    for name, (loss, shape, finite, moved) in results.items():
        assert np.isfinite(loss) and shape[0] == 2 and finite and moved, name


def test_swav_prototypes_stay_unit_norm_through_training():
    import keras

    model = garden.create_model("swav", input_shape=(16, 16, 3), **SSL_TINY["swav"])
    kernel = model.prototypes.kernel  # (embedding, prototypes): one prototype per column
    np.testing.assert_allclose(np.linalg.norm(keras.ops.convert_to_numpy(kernel), axis=0), 1.0, atol=1e-5)
    before = keras.ops.convert_to_numpy(kernel).copy()
    images = np.random.default_rng(0).uniform(size=(8, 16, 16, 3)).astype("float32")
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(images, batch_size=4, epochs=1, verbose=0)
    after = keras.ops.convert_to_numpy(kernel)
    assert not np.allclose(before, after), "the prototypes did not train"
    np.testing.assert_allclose(np.linalg.norm(after, axis=0), 1.0, atol=1e-5)  # renormalised after each step
    outputs = {k: keras.ops.convert_to_numpy(v) for k, v in model(images, training=True).items()}
    assert outputs["scores1"].shape == (8, 6) and np.abs(outputs["scores1"]).max() <= 1.0 + 1e-5  # cosines
    np.testing.assert_allclose(outputs["q1"].sum(axis=1), 1.0, atol=1e-5)
