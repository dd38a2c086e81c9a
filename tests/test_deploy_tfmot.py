"""QAT, pruning and clustering through the tf_keras twin, in the subprocess worker (small sizes)."""

import json
import os

import numpy as np
import pytest

import garden
from deploy import check
from deploy.optimize import optimize_and_export

pytestmark = pytest.mark.slow

CASES = {
    "mobilenet_v2": ({"alpha": 0.35, "input_shape": (32, 32, 3), "num_classes": 10}, "digits"),
    "deeplabv3plus": (
        {
            "backbone_kwargs": {"alpha": 0.35},
            "input_shape": (32, 32, 3),
            "num_classes": 11,
            "aspp_filters": 16,
            "decoder_filters": 16,
        },
        "embedded",
    ),
}
_built = {}


def _model(name):
    if name not in _built:
        _built.clear()
        _built[name] = garden.create_model(name, **CASES[name][0])
    return _built[name]


TECHNIQUES = ("qat", "prune", "cluster")
# Every technique on one model at least, QAT (the int8 route) on both: four of the six pairs, as each
# is a tf_keras subprocess of about a minute. GARDEN_FULL_MATRIX=1 runs all six.
PAIRS = [
    (name, technique)
    for name in CASES
    for technique in TECHNIQUES
    if os.environ.get("GARDEN_FULL_MATRIX") == "1"
    or (name, technique) not in {("deeplabv3plus", "prune"), ("mobilenet_v2", "cluster")}
]


@pytest.mark.parametrize(("name", "technique"), PAIRS, ids=[f"{n}-{t}" for n, t in PAIRS])
def test_optimize_and_export(name, technique, tmp_path):
    model = _model(name)
    result = optimize_and_export(
        model,
        technique=technique,
        calib=CASES[name][1],
        out=tmp_path,
        steps=2,
        batch_size=4,
        train_count=8,
        calib_count=4,
        check_count=4,
        repeats=2,
    )
    info = result.report["optimization"]
    assert info["twin_max_abs_diff"] <= 1e-5  # the tf_keras twin computes what the Keras 3 model does
    assert all(np.isfinite(info["loss"]))
    meta = json.loads(result.sidecar_path.read_text())
    runner = check.LiteRTRunner(result.path)
    if technique == "qat":
        assert meta["quantization"] == "qat"
        assert "CONV_2D" in result.report["ops"] and result.report["float_ops"] == {}
    if technique == "prune":
        assert info["sparsity"] == pytest.approx(0.8, abs=0.02)
        speed = info["speed"]
        assert speed["pruned_sparse_bytes"] < speed["pruned_dense_bytes"]
        assert isinstance(speed["faster"], bool)
    if technique == "cluster":
        assert 1 < info["unique_weights"] <= 16
    x = np.random.default_rng(0).random((1, *CASES[name][0]["input_shape"]), dtype="float32")
    assert runner.run(x).shape == model(x).shape
