"""The deploy pipeline: TFLite/ONNX export in every quant mode, checked by running the file written."""

import json
import subprocess
import sys
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest

import deploy
from deploy import calibrate, check, sidecar, user_model
from deploy.export import resolve_model
from garden.data import ArrayExamples
from garden.errors import GardenError

SIDECAR_KEYS = {
    "format_version",
    "model",
    "task",
    "input",
    "output",
    "class_names",
    "colors",
    "quantization",
    "params",
    "macs",
    "garden_version",
}


@pytest.fixture(scope="module")
def tiny_classifier():
    """A small functional classifier trained a few steps on digits, so its predictions mean something."""
    inputs = keras.Input((16, 16, 1))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c1")(inputs)
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same", name="dw")(x)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU(6.0, name="act")(x)
    x = keras.layers.Conv2D(16, 1, activation="relu", name="pw")(x)
    x = keras.layers.AveragePooling2D(2, name="pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(10, name="predictions")(x)
    model = keras.Model(inputs, x, name="tiny")
    images, labels = calibrate.prepare(calibrate.load_source("digits"), (16, 16, 1))
    model.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(images, labels, epochs=4, batch_size=32, verbose=0)
    return model


@pytest.fixture(scope="module")
def tiny_segmenter():
    """A small functional segmenter with ASPP (dilated, separable) and a bilinear resize."""
    from garden.layers import ResizeLike, atrous_spatial_pyramid_pooling, conv_norm_act

    inputs = keras.Input((32, 32, 3))
    x = conv_norm_act(inputs, 8, 3, 2, name="c1")
    x = conv_norm_act(x, 16, 3, 2, name="c2")
    x = atrous_spatial_pyramid_pooling(x, 16, rates=(2, 4), name="aspp")
    x = keras.layers.Conv2D(11, 1, name="logits")(x)
    x = ResizeLike(name="logits_resize")([x, inputs])
    return keras.Model(inputs, x, name="tiny_seg")


def _assert_exported(result, model, quant):
    assert result.path.exists() and result.sidecar_path.exists()
    meta = json.loads(result.sidecar_path.read_text())
    assert set(meta) == SIDECAR_KEYS
    assert meta["quantization"] == quant
    assert meta["params"] == model.count_params()
    assert len(meta["colors"]) == len(meta["class_names"]) == meta["output"]["num_classes"]
    report = json.loads(Path(result.report_paths[0]).read_text())
    assert report["size_bytes"] == result.path.stat().st_size
    assert all(t["median_ms"] > 0 for t in report["latency"].values())
    assert "SPACE_TO_BATCH_ND" not in report["ops"] and "FlexDelegate" not in str(report["ops"])
    leftovers = [p for p in result.path.parent.iterdir() if p.name.startswith(".")]
    assert not leftovers
    return report


@pytest.mark.parametrize("quant", deploy.QUANTS)
def test_tflite_every_quant_matches_keras(tiny_classifier, tmp_path, quant):
    result = deploy.export(
        tiny_classifier, quant=quant, calib="digits", out=tmp_path, calib_count=32, check_count=64, repeats=3
    )
    report = _assert_exported(result, tiny_classifier, quant)
    quality = report["quality"]
    assert quality["metric"] == "accuracy" and quality["float"] > 30  # it learned something
    assert quality["drop"] <= 5 and quality["agreement"] >= 85
    # logits, not probabilities
    tolerance = {"fp32": 1e-4, "fp16": 0.05, "dynamic": 0.5, "int8": 1.5, "int8-io": 1.5}[quant]
    assert quality["max_abs_diff"] < tolerance
    # The file really runs standalone, with the input type the sidecar says.
    runner = check.LiteRTRunner(result.path)
    meta = json.loads(result.sidecar_path.read_text())
    assert str(runner.input_dtype) == meta["input"]["dtype"] == ("uint8" if quant == "int8-io" else "float32")
    if quant in ("int8", "int8-io"):
        assert not report["float_ops"], report["float_ops"]
        assert {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"} <= set(report["ops"])


@pytest.mark.parametrize("quant", deploy.QUANTS)
def test_onnx_every_quant(tiny_classifier, tmp_path, quant):
    result = deploy.export(
        tiny_classifier,
        format="onnx",
        quant=quant,
        calib="digits",
        out=tmp_path,
        calib_count=32,
        check_count=64,
        repeats=3,
    )
    report = _assert_exported(result, tiny_classifier, quant)
    assert report["quality"]["agreement"] >= 85
    assert set(report["latency"]) == {"onnxruntime_1_thread", f"onnxruntime_{check.all_threads()}_threads"}


def test_onnx_int8_convolutions_run_as_integer_ops(tiny_classifier, tmp_path):
    """uint8 activations, int8 weights: onnxruntime fuses every convolution into QLinearConv on x86
    (with int8 activations its optimizer leaves convolutions in float between (de)quantize nodes)."""
    import onnx
    import onnxruntime as ort

    result = deploy.export(
        tiny_classifier, format="onnx", quant="int8", calib="digits", out=tmp_path, calib_count=16, repeats=2
    )
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(result.path), options, providers=["CPUExecutionProvider"])
    ops = [node.op_type for node in onnx.load(options.optimized_model_filepath).graph.node]
    assert ops.count("QLinearConv") == 3 and "Conv" not in ops, ops


def test_segmenter_class_map_int8_io(tiny_segmenter, tmp_path):
    data = shapes_segmentation(num_images=8, size=32)
    result = deploy.export(tiny_segmenter, quant="int8-io", output="class_map", calib=data, out=tmp_path, repeats=2)
    report = _assert_exported(result, tiny_segmenter, "int8-io")
    assert report["quality"]["metric"] == "mean_iou"
    assert "ARG_MAX" in report["ops"] and "RESIZE_BILINEAR" in report["ops"]
    runner = check.LiteRTRunner(result.path)
    out = runner.run(np.zeros((1, 32, 32, 3), "float32"))
    assert out.shape == (1, 32, 32) and out.dtype.kind in "iu"
    assert json.loads(result.sidecar_path.read_text())["output"]["kind"] == "class_map"


def test_max_drop_fails_and_leaves_nothing(tiny_classifier, tmp_path):
    with pytest.raises(GardenError, match="max-drop"):
        deploy.export(
            tiny_classifier,
            quant="int8",
            calib="digits",
            out=tmp_path,
            max_drop=-1,
            calib_count=8,
            check_count=8,
            repeats=1,
        )
    assert list(tmp_path.iterdir()) == []


def test_tensorflow_ops_fail_loudly(tmp_path):
    @keras.saving.register_keras_serializable(package="test_deploy")
    class Inverse(keras.layers.Layer):
        def call(self, x):
            return keras.ops.inv(x)

    inputs = keras.Input((4, 4, 1))
    x = keras.layers.Reshape((4, 4))(inputs)
    x = keras.layers.Flatten()(Inverse()(x))
    model = keras.Model(inputs, keras.layers.Dense(10)(x), name="needs_tf_ops")
    with pytest.raises(GardenError, match="TFLite"):
        deploy.export(model, calib="digits", out=tmp_path, calib_count=2, check_count=2, repeats=1)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("ending", ["activation", "layer"])
def test_a_softmax_ending_becomes_logits(ending):
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Flatten()(inputs)
    if ending == "activation":
        x = keras.layers.Dense(3, activation="softmax")(x)
    else:
        x = keras.layers.Softmax()(keras.layers.Dense(3)(x))
    model = keras.Model(inputs, x)
    assert resolve_model(model)[0] is model  # a float export keeps it as it is
    logits = user_model.logits_model(model)
    assert not user_model.ends_in_softmax(logits)
    images = np.random.default_rng(0).uniform(size=(4, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(keras.ops.softmax(logits(images)), model(images), atol=1e-6)


def test_mean_iou_by_hand():
    truth = np.array([[0, 0, 1, 1], [0, 0, 1, 255]])
    guess = np.array([[0, 1, 1, 1], [0, 0, 0, 1]])
    # class 0: TP 3, FP 1, FN 1 -> 3/5; class 1: TP 2, FP 1, FN 1 -> 2/4 (the ignored pixel does not count)
    assert check.mean_iou(guess, truth, 2) == pytest.approx((3 / 5 + 2 / 4) / 2)


def test_mean_iou_edge_cases_are_garden_metrics():
    # Classes absent from truth and prediction do not count; no labelled pixel is NaN, not 0.
    assert check.mean_iou(np.array([[0, 0]]), np.array([[0, 255]]), 5) == 1.0
    assert np.isnan(check.mean_iou(np.array([[1, 2]]), np.array([[255, 255]]), 3))
    with pytest.raises(ValueError, match="outside"):
        check.mean_iou(np.array([[0, 1]]), np.array([[0, 7]]), 3)


def test_check_masks_the_metric_cannot_score_are_refused_before_any_work(tiny_segmenter, tmp_path, monkeypatch):
    data = shapes_segmentation(num_images=4, size=32)
    monkeypatch.setattr(check, "open_runner", lambda *a, **k: pytest.fail("refused only after converting"))
    too_high = ArrayExamples(data.images, np.full_like(data.targets, 11), data.class_names, "segmentation", "high")
    with pytest.raises(GardenError, match="mask label 11, but the model has 11 classes"):
        deploy.export(tiny_segmenter, calib=data, check_data=too_high, out=tmp_path)
    unlabelled = ArrayExamples(data.images, np.full_like(data.targets, 255), data.class_names, "segmentation", "none")
    with pytest.raises(GardenError, match="no labelled pixel"):
        deploy.export(tiny_segmenter, calib=data, check_data=unlabelled, out=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_one_quantization_table_for_every_writer():
    from deploy.quantization import CALIBRATED_QUANTS, MODES, tflite_settings

    assert deploy.QUANTS == tuple(MODES) and CALIBRATED_QUANTS == ("int8", "int8-io")
    assert tflite_settings("fp32") == {
        "optimizations": [],
        "supported_types": [],
        "representative_dataset": False,
        "inference_input_type": None,
        "inference_output_type": None,
    }
    assert tflite_settings("fp32", sparse=True)["optimizations"] == ["EXPERIMENTAL_SPARSITY"]
    assert tflite_settings("fp16")["supported_types"] == ["float16"]
    assert tflite_settings("dynamic")["optimizations"] == ["DEFAULT"]
    assert tflite_settings("int8")["representative_dataset"] and not tflite_settings("int8")["inference_input_type"]
    io = tflite_settings("int8-io", io_dtype="int8")
    assert (io["inference_input_type"], io["inference_output_type"]) == ("int8", "int8")
    class_map = tflite_settings("int8-io", output="class_map")  # int32 class indices keep their type
    assert (class_map["inference_input_type"], class_map["inference_output_type"]) == ("uint8", None)
    assert [MODES[q].onnx for q in deploy.QUANTS] == ["float", "float16", "dynamic", "static", "static"]


def test_keras_file_and_registered_name_resolve(tmp_path):
    from garden.layers import ResizeLike

    inputs = keras.Input((12, 12, 1))
    x = keras.layers.Conv2D(3, 3, strides=2, padding="same")(inputs)
    path = tmp_path / "resize.keras"
    keras.Model(inputs, ResizeLike()([x, inputs])).save(path)
    model, name, task = resolve_model(str(path))  # through garden.load_model (safe mode, garden's layers)
    assert (name, task, model.output_shape) == ("resize", "segmentation", (None, 12, 12, 3))
    digits = calibrate.load_source("digits")
    model, name, _ = resolve_model("lenet5", 36, digits)
    assert model.input_shape == (None, 36, 36, 1) and model.output_shape == (None, digits.num_classes)
    with pytest.raises(GardenError, match="too small for lenet5"):
        resolve_model("lenet5", 4, digits)


def test_palette_and_calibration_resize():
    colours = sidecar.palette(4)
    assert colours[:4] == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0]]
    inputs, targets = calibrate.prepare(calibrate.load_source("digits"), (20, 24, 3))
    assert inputs.shape[1:] == (20, 24, 3) and inputs.dtype == np.float32
    assert 0.0 <= inputs.min() and inputs.max() <= 1.0 and targets.shape == (len(inputs),)


def test_cli_export_and_errors(tmp_path):
    from garden.cli import main

    out = tmp_path / "o"
    out.mkdir()
    assert (
        main([*"export lenet5 --quant int8 --calib digits --calib-count 8 --check-count 16 --out".split(), str(out)])
        == 0
    )
    assert sorted(p.name for p in out.iterdir()) == [
        "lenet5_int8.json",
        "lenet5_int8.report.json",
        "lenet5_int8.report.md",
        "lenet5_int8.tflite",
    ]
    (tmp_path / "a_file").write_text("")
    done = subprocess.run(
        [sys.executable, "-m", "garden", "export", "lenet5", "--out", str(tmp_path / "a_file" / "sub")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2 and "not a folder" in done.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_bench_separable_quick(tmp_path):
    from deploy.separable import run_bench
    from garden.profiler import separable_ratio

    rows = run_bench(input_size=32, alpha=0.25, out=tmp_path, repeats=2, quick=True)
    names = {p.name for p in tmp_path.iterdir()}
    assert {
        "separable.md",
        "separable.json",
        "separable.png",
        "mobilenet_v1_standard_fp32.tflite",
        "mobilenet_v1_standard_fp32.json",
        "mobilenet_v1_int8.tflite",
    } <= names
    models = [r for r in rows if r["theory"] is None]
    assert len(models) == 2 and all(r["macs_ratio"] < 0.2 for r in models)
    for r in rows:
        if r["theory"] is not None:
            channels = int(r["what"].split("=")[-1])
            assert r["macs_ratio"] == pytest.approx(separable_ratio(channels, 3))
        assert r["latency_ratio"] > 0


def shapes_segmentation(num_images=64, size=96, seed=0):
    """Discs and boxes on a textured background: 3 classes (background, disc, box)."""
    rng = np.random.default_rng(seed)
    images = np.empty((num_images, size, size, 3), "uint8")
    masks = np.zeros((num_images, size, size), "uint8")
    for i in range(num_images):
        image = rng.integers(0, 80, (size, size, 3)).astype("uint8")
        mask = masks[i]
        for _ in range(rng.integers(1, 4)):
            cls = int(rng.integers(1, 3))
            colour = tuple(int(c) for c in rng.integers(120, 256, 3))
            centre = tuple(int(c) for c in rng.integers(size // 6, size - size // 6, 2))
            radius = int(rng.integers(size // 10, size // 4))
            if cls == 1:
                cv2.circle(image, centre, radius, colour, -1)
                cv2.circle(mask, centre, radius, 1, -1)
            else:
                corner = (centre[0] - radius, centre[1] - radius)
                opposite = (centre[0] + radius, centre[1] + radius)
                cv2.rectangle(image, corner, opposite, colour, -1)
                cv2.rectangle(mask, corner, opposite, 2, -1)
        images[i] = image
    return ArrayExamples(images, masks, ["background", "disc", "box"], task="segmentation", name="shapes")
