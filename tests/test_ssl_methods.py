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

METHODS = ("barlow_twins", "byol", "colorization", "cpc", "jigsaw", "moco_v2", "rotnet", "simclr", "simsiam", "swav")
# Tiny versions: 16x16 images, narrow heads.
TINY = {
    "barlow_twins": dict(projection_units=(32, 32)),
    "byol": dict(projection_units=(32, 16), prediction_units=(32, 16)),
    "colorization": dict(decoder_filters=16),
    "cpc": dict(patch=8, stride=4, context_units=16),
    "jigsaw": dict(num_permutations=8, hidden_units=32),
    "moco_v2": dict(projection_units=(32, 16), queue_size=16),
    "rotnet": dict(hidden_units=16),
    "simclr": dict(projection_units=(32, 16)),
    "simsiam": dict(projection_units=(32, 32), prediction_units=(8, 32)),
    "swav": dict(projection_units=(32, 16), num_prototypes=6),
}
# What trains: every method, and the variants that take another path through the model.
CASES = {name: (name, options) for name, options in TINY.items()}
CASES["jigsaw_reassembled_plus_plus"] = ("jigsaw", {**TINY["jigsaw"], "reassemble": True, "foreign_tiles": 2})
ROOT = Path(__file__).resolve().parents[1]


def test_the_ten_methods_are_registered():
    assert set(garden.list_models("ssl")) == set(METHODS)


def train_tiny(case):
    """Build ``case`` at 16x16, fit two steps; return (losses, encoder features, encoder weights moved)."""
    import keras

    images = np.random.default_rng(0).uniform(size=(8, 16, 16, 3)).astype("float32")
    name, options = CASES[case]
    model = garden.create_model(name, input_shape=(16, 16, 3), **options)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    before = [keras.ops.convert_to_numpy(w).copy() for w in model.encoder.trainable_weights]
    history = model.fit(images, batch_size=4, epochs=1, verbose=0)
    after = [keras.ops.convert_to_numpy(w) for w in model.encoder.trainable_weights]
    moved = any(not np.allclose(a, b) for a, b in zip(before, after))
    features = model.encoder.predict(images[:2], verbose=0)
    return history.history["loss"], features, moved


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_method_trains_with_fit_under_tensorflow(case):
    losses, features, moved = train_tiny(case)
    assert len(losses) == 1 and np.isfinite(losses[0])
    assert features.ndim == 2 and features.shape[0] == 2 and np.all(np.isfinite(features))
    assert moved, "fit did not change the encoder"


SCRIPT = """
import json, sys
import numpy as np
sys.path.insert(0, {root!r})
import keras, garden
from tests.test_ssl_methods import CASES, train_tiny
out = {{}}
for name in sorted(CASES):
    losses, features, moved = train_tiny(name)
    out[name] = [float(losses[0]), list(features.shape), bool(np.all(np.isfinite(features))), moved]
print("RESULT", keras.backend.backend(), json.dumps(out))
"""


@pytest.mark.slow
@pytest.mark.backend
def test_every_method_trains_under_pytorch():
    pytest.importorskip("torch")
    env = {**os.environ, "KERAS_BACKEND": "torch", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(root=str(ROOT))], env=env, capture_output=True, text=True, timeout=600
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    _, backend, payload = lines[0].split(" ", 2)
    results = json.loads(payload)
    assert backend == "torch" and set(results) == set(CASES)
    for name, (loss, shape, finite, moved) in results.items():
        assert np.isfinite(loss) and shape[0] == 2 and finite and moved, name


def test_swav_prototypes_stay_unit_norm_through_training():
    import keras

    model = garden.create_model("swav", input_shape=(16, 16, 3), **TINY["swav"])
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
