"""Every MobileNet and DeepLab variant exports in every quant mode, and the file runs (small sizes)."""

import json

import numpy as np
import pytest

import deploy
import garden
from deploy import check

pytestmark = pytest.mark.slow

MODELS = {
    "mobilenet_v1": {"alpha": 0.25, "input_shape": (48, 48, 3), "num_classes": 10},
    "mobilenet_v2": {"alpha": 0.35, "input_shape": (48, 48, 3), "num_classes": 10},
    "mobilenet_v3_small": {"alpha": 0.5, "input_shape": (48, 48, 3), "num_classes": 10},
    "mobilenet_v3_large": {"alpha": 0.5, "input_shape": (48, 48, 3), "num_classes": 10},
    "deeplabv3": {
        "backbone_kwargs": {"alpha": 0.35},
        "input_shape": (64, 64, 3),
        "num_classes": 11,
        "aspp_filters": 32,
    },
    "deeplabv3plus": {
        "backbone_kwargs": {"alpha": 0.35},
        "input_shape": (64, 64, 3),
        "num_classes": 11,
        "aspp_filters": 32,
        "decoder_filters": 32,
    },
}
EXPORTS = [("tflite", q) for q in deploy.QUANTS] + [("onnx", "fp32"), ("onnx", "int8")]
ONNX_MODELS = ("mobilenet_v3_small", "deeplabv3plus")  # hard-swish constants; atrous + resize (time budget)
_built = {}


def _model(name):
    if name not in _built:
        _built.clear()  # one model alive at a time
        _built[name] = garden.create_model(name, **MODELS[name])
    return _built[name]


@pytest.mark.parametrize("fmt,quant", EXPORTS, ids=[f"{f}-{q}" for f, q in EXPORTS])
@pytest.mark.parametrize("name", list(MODELS))
def test_export_runs_and_checks(name, fmt, quant, tmp_path):
    if fmt == "onnx" and name not in ONNX_MODELS:
        pytest.skip("ONNX is exercised on two models to keep the suite short")
    model = _model(name)
    segmentation = name.startswith("deeplab")
    result = deploy.export(
        model,
        format=fmt,
        quant=quant,
        calib="embedded" if segmentation else "digits",
        out=tmp_path,
        calib_count=4,
        check_count=4,
        repeats=2,
        name=name,
    )
    report = result.report
    meta = json.loads(result.sidecar_path.read_text())
    assert meta["task"] == ("segmentation" if segmentation else "classification")
    assert meta["macs"] == garden.profile(model).total["macs"] > 0
    assert report["quality"]["metric"] == ("mean_iou" if segmentation else "accuracy")
    if fmt == "tflite":
        assert "SPACE_TO_BATCH_ND" not in report["ops"]  # batch-1 signature folds the atrous convolutions
        if quant in ("int8", "int8-io"):
            assert report["float_ops"] == {}, report["float_ops"]
    runner = check.open_runner(result.path)
    x = np.random.default_rng(0).random((1, *MODELS[name]["input_shape"]), dtype="float32")
    reference = np.asarray(model(x, training=False))
    got = runner.run(x)
    assert got.shape == reference.shape
    if quant == "fp32":
        np.testing.assert_allclose(got, reference, atol=1e-4 * max(1.0, np.abs(reference).max()))
