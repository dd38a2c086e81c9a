"""garden-edge on the kinds of TFLite files other people publish, each built here (nothing downloaded).

A binary (portrait-style) segmenter with one sigmoid output, float and int8, as a 1x1 convolution whose
mask is known and as garden's U-Net; classifiers with labels
packed into the ``.tflite`` the way the TFLite metadata tools pack them (a ``ModelMetadata`` flatbuffer
and a zip archive appended to the file) and with ``--labels``; a detection-shaped model and an
embedding (refused); an NCHW softmax segmenter; a model needing an op LiteRT lacks. The right
answers come from how the frames are drawn and the weights are set, not from the app.
"""

import json
import os
import subprocess
import sys

import cv2
import keras
import numpy as np
import pytest

from helpers import (
    FRAME_H,
    FRAME_W,
    NAMES,
    PROTOTYPES,
    ROOT,
    SIZE,
    assert_one_line_error,
    draw_frame,
    edge_convert,
    garden_edge,
    pack_labels,
    prototype_weights,
)

FOREGROUND = (60, 50, 140, 105)  # x0, y0, x1, y1 of the red rectangle in the binary test frame
TEXT_ROWS = 40  # the timing text and the legend at the top of a frame
PACKED_NAMES = ["fond", "rouge", "vert", "bleu"]  # names only the packed label file has
GIVEN_NAMES = ["bg", "r", "g", "b"]  # names only the --labels file has
CLASSIFIER_SCALE = 1.0  # soft enough that the input normalisation shows in the probabilities


def binary_frame(seed=0):
    """A BGR frame: grey noise (background) with a red rectangle (foreground), and its true mask."""
    rng = np.random.default_rng(seed)
    frame = rng.integers(30, 70, (FRAME_H, FRAME_W, 3)).astype(np.uint8)
    x0, y0, x1, y1 = FOREGROUND
    frame[y0:y1, x0:x1] = (25, 25, 230)  # BGR red
    mask = np.zeros((FRAME_H, FRAME_W), np.uint8)
    mask[y0:y1, x0:x1] = 1
    return frame, mask


def foreground_logit(rgb):
    """The binary model's logit of an RGB image in [0, 1]: red minus green, less 0.3 (8x)."""
    return 8.0 * (rgb[..., 0] - rgb[..., 1] - 0.3)


def binary_model():
    inputs = keras.Input((SIZE, SIZE, 3))
    conv = keras.layers.Conv2D(1, 1, activation="sigmoid")
    model = keras.Model(inputs, conv(inputs))
    conv.set_weights([np.array([8.0, -8.0, 0.0], np.float32).reshape(1, 1, 3, 1), np.array([-2.4], np.float32)])
    return model


def garden_unet():
    """garden's U-Net, narrow, with one sigmoid output: the shape of a binary (portrait, salient object) model."""
    import garden

    unet = garden.create_model("unet", input_shape=(SIZE, SIZE, 3), num_classes=1, filters=(4, 8, 16))
    return keras.Model(unet.input, keras.layers.Activation("sigmoid")(unet.output), name="binary_unet")


def classifier(softmax=True):
    """Nearest prototype colour on inputs in [-1, 1] (so it needs the file's normalisation to be right)."""
    kernel, bias = prototype_weights(PROTOTYPES * 2 - 1, scale=CLASSIFIER_SCALE)
    inputs = keras.Input((32, 32, 3))
    dense = keras.layers.Dense(len(NAMES))
    x = dense(keras.layers.GlobalAveragePooling2D()(inputs))
    dense.set_weights([kernel[0, 0], bias])
    return keras.Model(inputs, keras.layers.Softmax()(x) if softmax else x)


def nchw_segmenter():
    """1x3xHxW in, softmax 1xKxHxW out: the nearest-colour segmenter in PyTorch's layout."""
    kernel, bias = prototype_weights(PROTOTYPES)
    inputs = keras.Input((3, SIZE, SIZE))
    conv = keras.layers.Conv2D(len(NAMES), 1)
    x = conv(keras.layers.Permute((2, 3, 1))(inputs))
    conv.set_weights([kernel, bias])
    return keras.Model(inputs, keras.layers.Permute((3, 1, 2))(keras.layers.Softmax()(x)))


def detector():
    """SSD/BlazeFace-shaped heads: 64 anchors, 16 box regressors and one score each."""
    inputs = keras.Input((32, 32, 3))
    boxes = keras.layers.Reshape((64, 16))(keras.layers.Conv2D(16, 4, strides=4)(inputs))
    scores = keras.layers.Reshape((64, 1))(keras.layers.Conv2D(1, 4, strides=4, activation="sigmoid")(inputs))
    return keras.Model(inputs, [boxes, scores])


def embedder():
    inputs = keras.Input((32, 32, 3))
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(8, 3)(inputs)))


def mask_and_embedding():
    """A binary mask beside an embedding: one drawable output of two."""
    inputs = keras.Input((SIZE, SIZE, 3))
    mask = keras.layers.Conv2D(1, 1, activation="sigmoid", name="mask")(inputs)
    return keras.Model(inputs, [mask, keras.layers.GlobalAveragePooling2D()(inputs)])


def two_masks():
    """Two binary heads: neither is clearly the result."""
    inputs = keras.Input((SIZE, SIZE, 3))
    heads = [keras.layers.Conv2D(1, 1, activation="sigmoid")(inputs) for _ in range(2)]
    return keras.Model(inputs, heads)


def bump_op_version(path, out, op="CONV_2D", version=99):
    """A copy of the model at ``path`` whose ``op`` claims a version no LiteRT has."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(path))
    code = getattr(schema.BuiltinOperator, op)
    for opcode in model.operatorCodes:
        if max(opcode.builtinCode, opcode.deprecatedBuiltinCode) == code:
            opcode.version = version
    flatbuffer_utils.write_model(model, str(out))
    return out


# ---------------------------------------------------------------- the files, built once


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    import tensorflow as tf

    folder = tmp_path_factory.mktemp("edge_models_others")
    frames = [binary_frame(s)[0] for s in range(4)] + [draw_frame(i)[0] for i in range(8)]
    samples = [cv2.resize(f[..., ::-1], (SIZE, SIZE)).astype(np.float32) / 255 for f in frames]
    built = {
        "binary_float": edge_convert(binary_model(), folder / "portrait_float.tflite"),
        "binary_int8": edge_convert(binary_model(), folder / "portrait_int8.tflite", tf.int8, samples=samples),
        "unet_float": edge_convert(unet := garden_unet(), folder / "unet_float.tflite"),
        "unet_int8": edge_convert(unet, folder / "unet_int8.tflite", tf.int8, samples=samples),
        "classifier": edge_convert(classifier(), folder / "classifier.tflite"),
        "packed": pack_labels(edge_convert(classifier(), folder / "packed.tflite"), PACKED_NAMES),
        "nchw": edge_convert(nchw_segmenter(), folder / "nchw.tflite"),
        "detector": edge_convert(detector(), folder / "detector.tflite"),
        "embedder": edge_convert(embedder(), folder / "embedder.tflite"),
        "two_outputs": edge_convert(mask_and_embedding(), folder / "mask_and_embedding.tflite"),
        "two_masks": edge_convert(two_masks(), folder / "two_masks.tflite"),
    }
    built["new_op"] = bump_op_version(built["binary_float"], folder / "new_op.tflite")
    labels = folder / "labels.txt"
    labels.write_text("\n".join(GIVEN_NAMES) + "\n")
    built["labels"] = labels
    frame = folder / "portrait.png"
    cv2.imwrite(str(frame), binary_frame()[0])
    built["frame"] = frame
    background = np.zeros((FRAME_H, FRAME_W, 3), np.uint8)
    background[..., 0] = np.linspace(0, 255, FRAME_W, dtype=np.uint8)[None]
    background[..., 1] = 200
    built["background"] = folder / "beach.png"
    cv2.imwrite(str(built["background"]), background)
    return {k: str(v) for k, v in built.items()}


def expected_foreground_share():
    """The binary model's foreground share on :func:`binary_frame`, from its weights (not the app)."""
    small = cv2.resize(binary_frame()[0], (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)[..., ::-1] / 255.0
    return float((foreground_logit(small) > 0).mean())


def inner(mask, keep, margin=9):
    """Pixels of ``mask == keep`` at least ``margin // 2`` pixels from its edge and below the text."""
    region = cv2.erode((mask == keep).astype(np.uint8), np.ones((margin, margin), np.uint8)).astype(bool)
    region[:TEXT_ROWS] = False
    return region


def run_json(*args):
    """garden-edge as a user runs it (a subprocess): its --json summary and stderr."""
    done = garden_edge(*args, "--headless", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), done.stderr


def run_app(capsys, model, source, **options):
    """The app's loop in this process (faster than a subprocess): the summary and what went to stderr."""
    from edge_app.app import Options, run

    capsys.readouterr()
    summary = run(Options(model=str(model), source=str(source), headless=True, **options))
    return summary, capsys.readouterr().err


# ---------------------------------------------------------------- binary: overlay, blur, replace


@pytest.mark.parametrize("kind", ["binary_float", "binary_int8"])
def test_binary_model_blurs_and_replaces_the_background_only(files, tmp_path, capsys, kind):
    frame, truth = binary_frame()
    shown = {}
    for mode, background in (("overlay", None), ("blur", None), ("replace", files["background"])):
        out = tmp_path / f"{mode}.png"
        if mode == "overlay":  # the command line once, --mode replace=IMAGE parsed in-process below
            summary, stderr = run_json("--model", files[kind], "--source", files["frame"], "--output", out)
        else:
            summary, stderr = run_app(
                capsys, files[kind], files["frame"], output=str(out), mode=mode, background=background
            )
        shown[mode] = cv2.imread(str(out)).astype(int)
        assert summary["model"]["output"] == "binary"
        assert {name for name, _ in summary["result"]["classes"]} == {"background", "foreground"}
        pixels = 0.5 if kind == "binary_float" else 3  # int8: a few border pixels may flip
        assert abs(summary["result"]["foreground"] - expected_foreground_share()) <= pixels / SIZE**2
        assert stderr.count("states no input normalisation") == 1  # the [0, 1] default is said, once
    fg, bg = inner(truth, 1), inner(truth, 0, margin=15)
    background = cv2.imread(files["background"]).astype(int)
    frame = frame.astype(int)
    for mode in ("blur", "replace"):
        assert (shown[mode][fg] == frame[fg]).all(), f"{mode}: foreground changed"
    assert np.abs(shown["blur"][bg] - frame[bg]).max(axis=1).mean() > 5  # the noise is blurred away
    assert (shown["replace"][bg] == background[bg]).all()
    # overlay: background tinted with class 0's colour (black), foreground with class 1's (PASCAL VOC maroon)
    maroon = np.array([0, 0, 128])
    np.testing.assert_allclose(shown["overlay"][fg], 0.5 * frame[fg] + 0.5 * maroon, atol=2)
    np.testing.assert_allclose(shown["overlay"][bg], 0.5 * frame[bg], atol=2)


def litert_probabilities(path, frame):
    """The model's output on ``frame`` through LiteRT's Interpreter, fed and dequantized here (not by the app)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    x = cv2.resize(frame, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)[..., ::-1] / 255.0
    scale, zero = inp["quantization"]
    if scale:
        x = np.clip(np.round(x / scale + zero), -128, 127)
    interpreter.set_tensor(inp["index"], x[None].astype(inp["dtype"]))
    interpreter.invoke()
    scale, zero = out["quantization"]
    raw = interpreter.get_tensor(out["index"]).astype(np.float64)
    return (raw - zero) * scale if scale else raw


@pytest.mark.parametrize("kind", ["unet_float", "unet_int8"])
def test_garden_unet_with_a_sigmoid_output(files, capsys, kind):
    """garden's U-Net, exported: read as binary, its foreground share the one LiteRT's own output gives."""
    frame = binary_frame()[0]
    probabilities = litert_probabilities(files[kind], frame)
    values, counts = np.unique(probabilities, return_counts=True)
    # a threshold between two neighbouring values (no pixel sits on it), the one that splits the pixels most evenly
    share_below = np.cumsum(counts)[:-1] / probabilities.size
    gap = int(np.argmin(np.abs(share_below - 0.5)))
    threshold = float(values[gap] + values[gap + 1]) / 2
    expected = float((probabilities > threshold).mean())
    summary, _ = run_app(capsys, files[kind], files["frame"], threshold=threshold, mode="blur")
    assert summary["model"]["output"] == "binary"
    assert summary["model"]["input_dtype"] == ("int8" if kind == "unet_int8" else "float32")
    assert 0.05 < expected < 0.95, expected  # a threshold that splits the picture
    assert summary["result"]["foreground"] == pytest.approx(expected, abs=1e-4)


def test_mode_replace_is_parsed_and_checked(files):
    from edge_app.__main__ import build_parser, options_from

    options = options_from(build_parser().parse_args(["--model", "m", "--mode", f"replace={files['background']}"]))
    assert (options.mode, options.background) == ("replace", files["background"])
    done = garden_edge("--model", files["binary_float"], "--source", files["frame"], "--headless", "--mode", "replace=")
    assert_one_line_error(done, 2, "--mode", "replace=IMAGE")
    done = garden_edge("--model", files["classifier"], "--source", files["frame"], "--headless", "--mode", "blur")
    assert_one_line_error(done, 2, "--mode blur needs a segmentation model")


def test_threshold_moves_the_mask(files):
    from edge_app.model import infer, load_model, preprocess
    from edge_app.postprocess import postprocess

    model = load_model(files["binary_float"])
    raw = infer(model, preprocess(binary_frame()[0], model))
    small = cv2.resize(binary_frame()[0], (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)[..., ::-1] / 255.0
    for threshold in (0.1, 0.5, 0.9):
        expected = 1 / (1 + np.exp(-foreground_logit(small))) > threshold
        mask = postprocess(raw, model.info, threshold=threshold).mask
        assert (mask.astype(bool) != expected).sum() <= 1, threshold
    model.close()


@pytest.mark.parametrize(
    "dtype, quant, probability",
    [
        ("uint8", (1 / 255, 0), True),
        ("int8", (1 / 256, -128), True),
        ("int8", (0.1, 3), False),
        ("float32", (0, 0), None),
    ],
)
def test_binary_mask_of_quantized_probabilities_and_logits(dtype, quant, probability):
    """The threshold moved into stored units gives the mask of the dequantized map (sigmoid first for logits)."""
    from types import SimpleNamespace

    from edge_app.postprocess import binary_mask

    rng = np.random.default_rng(1)
    limits = np.iinfo(dtype) if dtype != "float32" else None
    stored = rng.integers(limits.min, limits.max + 1, (33, 17)).astype(dtype) if limits else rng.normal(0, 3, (33, 17))
    scale, zero = quant
    values = (stored.astype(np.float64) - zero) * scale if scale else stored
    info = SimpleNamespace(probability=probability, output_quant=quant)
    for threshold in (0.25, 0.5, 0.8):
        expected = values > threshold if probability else 1 / (1 + np.exp(-values)) > threshold
        np.testing.assert_array_equal(binary_mask(stored.astype(dtype), info, threshold), expected)


def test_compiled_model_and_interpreter_agree(files):
    from edge_app.app import Options, run
    from edge_app.runtime import compiled_model_class

    results = {}
    for runtime in ("interpreter", "compiled") if compiled_model_class() else ("interpreter",):
        summary = run(Options(model=files["binary_int8"], source=files["frame"], headless=True, runtime=runtime))
        assert summary["model"]["runtime"] == runtime
        results[runtime] = summary["result"]
    assert len(set(json.dumps(r) for r in results.values())) == 1, results


# ---------------------------------------------------------------- timings on an image


def test_image_source_shows_real_timings_from_the_first_frame(files, monkeypatch):
    from edge_app import render
    from edge_app.app import Options, run

    drawn, stats_lines = [], render.stats_lines

    def spy(fps, stages, *args, **kwargs):
        drawn.append((fps, stages))
        return stats_lines(fps, stages, *args, **kwargs)

    monkeypatch.setattr(render, "stats_lines", spy)
    summary = run(Options(model=files["binary_float"], source=files["frame"], headless=True))
    assert summary["frames"] == 1 and len(drawn) == 1
    fps, stages = drawn[0]
    assert fps > 0 and set(stages) == {"capture", "preprocess", "inference", "postprocess", "render"}
    assert all(ms > 0 for ms in stages.values()), stages
    assert all(summary[s] > 0 for s in stages) and summary["fps"] > 0


# ---------------------------------------------------------------- classifiers: labels and normalisation


def solid(c, tmp_path):
    path = tmp_path / f"{NAMES[c]}.png"
    cv2.imwrite(str(path), np.full((40, 60, 3), (PROTOTYPES[c] * 255)[::-1], np.uint8))
    return path


def expected_probabilities(image, mean, std):
    """The classifier's softmax on a solid-colour image normalised as ``(pixel - mean) / std``."""
    x = (cv2.imread(str(image))[0, 0, ::-1].astype(np.float64) - mean) / std
    kernel, bias = prototype_weights(PROTOTYPES * 2 - 1, scale=CLASSIFIER_SCALE)
    logits = x @ kernel[0, 0].astype(np.float64) + bias
    return np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()


def test_labels_and_normalisation_packed_in_the_file(files, tmp_path, capsys):
    """Names and [-1, 1] normalisation come from the file alone; --labels and --mean/--std win over them."""
    for c in range(len(NAMES)):
        image = solid(c, tmp_path)
        summary, stderr = run_app(capsys, files["packed"], image, top_k=2)
        top = summary["result"]["top"]
        assert top[0][0] == PACKED_NAMES[c] and len(top) == 2, top
        assert top[0][1] == pytest.approx(expected_probabilities(image, 127.5, 127.5)[c], abs=1e-3)
        assert summary["model"]["labels"] == "packed labels.txt" and "normalisation" not in stderr
    image = solid(3, tmp_path)
    args = ("--model", files["packed"], "--source", image, "--labels", files["labels"], "--mean", "0", "--std", "255")
    summary, _ = run_json(*args)
    assert summary["result"]["top"][0][0] == "b" and summary["model"]["labels"].startswith("--labels")
    # [0, 1] instead of the file's [-1, 1]: other probabilities, the ones computed for [0, 1]
    assert summary["result"]["top"][0][1] == pytest.approx(expected_probabilities(image, 0, 255)[3], abs=1e-3)
    assert abs(expected_probabilities(image, 0, 255)[3] - expected_probabilities(image, 127.5, 127.5)[3]) > 0.01


def test_labels_file_and_mean_std_on_a_bare_classifier(files, tmp_path, capsys):
    for c in range(len(NAMES)):
        image = solid(c, tmp_path)
        summary, stderr = run_app(
            capsys, files["classifier"], image, labels=files["labels"], mean=(127.5,), std=(127.5,) * 3
        )
        assert summary["result"]["top"][0][0] == GIVEN_NAMES[c], summary["result"]
        assert summary["result"]["top"][0][1] == pytest.approx(expected_probabilities(image, 127.5, 127.5)[c], abs=1e-4)
        assert "normalisation" not in stderr
    summary, stderr = run_json("--model", files["classifier"], "--source", solid(1, tmp_path))
    assert all(name.startswith("class ") for name, _ in summary["result"]["top"])
    assert "states no input normalisation" in stderr and len(stderr.strip().splitlines()) == 1


def test_packed_model_runs_without_tensorflow(files, tmp_path):
    """The metadata and zip reader are LiteRT's flatbuffers and the standard library: no TensorFlow imported."""
    code = (
        "import sys; from edge_app.__main__ import main;"
        f"code = main(['--model', {files['packed']!r}, '--source', {str(solid(2, tmp_path))!r}, '--headless',"
        " '--json']);"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'garden', 'deploy')];"
        "print(bad); sys.exit(code or (1 if bad else 0))"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    summary, bad = done.stdout.strip().splitlines()
    assert json.loads(summary)["result"]["top"][0][0] == "vert" and bad == "[]"


# ---------------------------------------------------------------- NCHW, several outputs, refusals


def test_nchw_softmax_segmenter(files):
    from edge_app.model import infer, load_model, preprocess
    from edge_app.postprocess import postprocess

    model = load_model(files["nchw"])
    assert model.info.layout == "NCHW" and model.info.output_layout == "NCHW" and model.info.num_classes == 4
    frame, mask = draw_frame(2)
    result = postprocess(infer(model, preprocess(frame, model)), model.info)
    truth = cv2.resize(mask, (SIZE, SIZE), interpolation=cv2.INTER_NEAREST)
    assert (result.mask == truth).mean() > 0.95
    model.close()


def test_one_drawable_output_of_two_is_used_and_named(files):
    from edge_app.app import Options, run

    summary = run(Options(model=files["two_outputs"], source=files["frame"], headless=True))
    assert summary["model"]["output"] == "binary"
    from edge_app.model import load_model

    notes = load_model(files["two_outputs"]).info.notes
    assert any(n.startswith("using output") and "[1, 48, 48, 1]" in n and "of 2" in n for n in notes), notes


@pytest.mark.parametrize(
    "name, words",
    [
        ("detector", ["detection boxes and scores", "[1, 64, 16]", "[1, 64, 1]", "its 2 outputs"]),
        ("embedder", ["an embedding: 8 features made by MEAN", "[1, 8]"]),
        ("two_masks", ["its 2 outputs (2 candidate results and none clearly the one to draw)", "[1, 48, 48, 1]"]),
        ("new_op", ["needs the op CONV_2D version 99", "lacks"]),
    ],
)
def test_what_cannot_be_drawn_is_refused_in_one_line(files, name, words):
    done = garden_edge("--model", files[name], "--source", files["frame"], "--headless")
    assert_one_line_error(done, 2, files[name], *words)
