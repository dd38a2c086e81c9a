"""garden-edge on generated videos with TFLite models built and converted by the tests (helpers.py).

The segmentation model is a nearest-colour classifier written as a 1x1 convolution (logit_k =
s * (2 p_k . x - |p_k|^2) for prototype colour p_k), so the right mask of every generated frame is
known from how the frame was drawn, independently of the app.
"""

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from helpers import (
    COLORS,
    FRAME_H,
    FRAME_W,
    NAMES,
    PROTOTYPES,
    ROOT,
    SIZE,
    draw_frame,
    garden_edge,
    read_video,
    write_video,
)


@pytest.fixture(scope="session")
def video(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("edge_video") / "shapes.mp4")


def overlay_agreement(shown, frame, mask, alpha=0.5, tolerance=40):
    """Fraction of interior pixels (away from edges and text) whose colour is the expected overlay."""
    colours = np.asarray(COLORS + [[0, 0, 0]] * 252, np.float32)[:, ::-1][mask]
    expected = (1 - alpha) * frame.astype(np.float32) + alpha * colours
    inner = np.zeros_like(mask, bool)
    for c in range(len(NAMES)):
        inner |= cv2.erode((mask == c).astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    inner[:30] = False  # timing text and legend
    close = np.abs(shown.astype(np.float32) - expected).max(axis=2) < tolerance
    return close[inner].mean(), inner


# ---------------------------------------------------------------- tests


def test_edge_app_imports_no_tensorflow_keras_garden_or_deploy():
    code = (
        "import sys, edge_app.__main__, edge_app.app, edge_app.serve;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'garden', 'deploy', 'tf_keras')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for path in (ROOT / "edge_app").glob("*.py"):
        for line in path.read_text().splitlines():
            words = line.split()
            if words[:1] in (["import"], ["from"]):
                assert words[1].split(".")[0] not in ("tensorflow", "keras", "garden", "deploy"), (path, line)


@pytest.mark.parametrize("kind", ["float", "int8"])
def test_headless_video_carries_the_overlay(models, video, tmp_path, kind):
    out = tmp_path / f"overlay_{kind}.mp4"
    done = garden_edge(
        "--model", models[kind], "--source", video, "--headless", "--output", out, "--threads", 1, "--json"
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["frames"] == 24 and summary["stopped"] == "source ended"
    assert summary["model"]["input_dtype"] == ("int8" if kind == "int8" else "float32")
    for stage in ("capture", "preprocess", "inference", "postprocess", "render"):
        assert summary[stage] > 0
    shown = read_video(out)
    assert len(shown) == 24 and shown[0].shape == (FRAME_H, FRAME_W, 3)
    decoded = read_video(video)
    for i in (0, 11, 23):
        agreement, inner = overlay_agreement(shown[i], decoded[i], draw_frame(i)[1])
        assert agreement > 0.9, (i, agreement)
        # and it is not just the input: the overlay changed the shapes' colours a lot
        assert np.abs(shown[i].astype(int) - decoded[i].astype(int)).max(axis=2)[inner].mean() > 40
    assert not list(tmp_path.glob(".*partial*")), "temporary output left behind"


def test_uint8_model_without_sidecar_uses_default_palette_and_mask_mode(models, tmp_path):
    from edge_app.model import default_color

    frame, mask = draw_frame(3)
    image = tmp_path / "frame.png"
    cv2.imwrite(str(image), frame)
    out = tmp_path / "mask.png"
    done = garden_edge("--model", models["uint8"], "--source", image, "--headless", "--output", out, "--mode", "mask")
    assert done.returncode == 0, done.stderr
    shown = cv2.imread(str(out))
    palette = np.array([default_color(i) for i in range(4)], np.uint8)[:, ::-1]
    inner = cv2.erode((mask > 0).astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    inner[:30] = False
    assert (np.abs(shown.astype(int) - palette[mask].astype(int)).max(axis=2)[inner] < 8).mean() > 0.95


def test_class_map_output_and_side_by_side(models, tmp_path):
    frame, mask = draw_frame(5)
    image = tmp_path / "frame.jpg"
    cv2.imwrite(str(image), frame)
    out = tmp_path / "sbs.png"
    done = garden_edge(
        "--model",
        models["class_map"],
        "--source",
        image,
        "--headless",
        "--output",
        out,
        "--mode",
        "side-by-side",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["model"]["output"] == "class_map"
    shown = cv2.imread(str(out))
    assert shown.shape == (FRAME_H, 2 * FRAME_W, 3)
    left, right = shown[:, :FRAME_W], shown[:, FRAME_W:]
    assert np.abs(left[40:, 60:100].astype(int) - frame[40:, 60:100]).mean() < 12  # original frame on the left
    assert np.abs(right[80:100, 20:45].astype(int) - left[80:100, 20:45]).mean() > 30  # overlay on the right


def test_segmentation_summary_lists_classes_by_area(models):
    from edge_app.model import infer, load_model, preprocess
    from edge_app.postprocess import postprocess
    from edge_app.summary import describe

    model = load_model(models["int8"])
    frame, mask = draw_frame(0)
    result = postprocess(infer(model, preprocess(frame, model)), model.info)
    names = [name for name, _ in describe(result, model.info)["classes"]]
    truth = np.bincount(cv2.resize(mask, (SIZE, SIZE), interpolation=cv2.INTER_NEAREST).ravel(), minlength=4)
    assert names == [NAMES[c] for c in np.argsort(-truth, kind="stable")]
    fractions = dict(describe(result, model.info)["classes"])
    np.testing.assert_allclose([fractions[n] for n in NAMES], truth / truth.sum(), atol=0.03)


def test_argmax_matches_numpy_for_int8_and_float():
    from edge_app.postprocess import argmax_channels

    rng = np.random.default_rng(0)
    for dtype in (np.int8, np.uint8, np.float32):
        shape = (33, 17, 11)
        values = rng.integers(-128, 128, shape) if dtype != np.float32 else rng.normal(size=shape)
        logits = values.astype(dtype)
        np.testing.assert_array_equal(argmax_channels(logits), np.argmax(logits, axis=-1))


def test_classifier_top_k(models, tmp_path):
    folder = tmp_path / "solid"
    folder.mkdir()
    for c, name in enumerate(NAMES):
        cv2.imwrite(str(folder / f"{c}_{name}.png"), np.full((50, 70, 3), (PROTOTYPES[c] * 255)[::-1], np.uint8))
    from edge_app.app import Options, run
    from edge_app.summary import describe

    seen = []
    run(
        Options(model=models["classifier"], source=str(folder), headless=True, top_k=2),
        observer=lambda n, image: seen.append(image.copy()),
    )
    assert len(seen) == 4
    from edge_app.model import infer, load_model, preprocess
    from edge_app.postprocess import postprocess

    model = load_model(models["classifier"])
    for c in range(4):
        frame = cv2.imread(str(folder / f"{c}_{NAMES[c]}.png"))
        top = describe(postprocess(infer(model, preprocess(frame, model)), model.info, 2), model.info)["top"]
        assert top[0][0] == NAMES[c] and top[0][1] > 0.5 and len(top) == 2


def test_compare_runs_both_models_on_the_same_frames(models, video, tmp_path):
    out = tmp_path / "compare.mp4"
    done = garden_edge(
        "--model",
        models["int8"],
        "--compare",
        models["float"],
        "--source",
        video,
        "--headless",
        "--output",
        out,
        "--max-frames",
        6,
        "--json",
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["frames"] == 6
    assert summary["model"]["quantization"] == "int8" and summary["compare"]["model"]["quantization"] == "fp32"
    assert summary["compare"]["inference"] > 0 and summary["compare"]["model"]["macs"] == SIZE * SIZE * 12
    shown = read_video(out)
    assert shown[0].shape == (FRAME_H, 2 * FRAME_W, 3)
    decoded = read_video(video)
    for half in (shown[2][:, :FRAME_W], shown[2][:, FRAME_W:]):
        mask = draw_frame(2)[1].copy()
        mask[-24:] = 255  # panel captions: not compared
        agreement, _ = overlay_agreement(half, decoded[2], mask)
        assert agreement > 0.9


def test_benchmark_prints_stage_table_and_json(models, video):
    done = garden_edge("--model", models["int8"], "--source", video, "--benchmark", 40, "--threads", 1)
    assert done.returncode == 0, done.stderr
    for stage in ("capture", "preprocess", "inference", "postprocess", "render", "total"):
        assert stage in done.stdout
    assert "40 frames" in done.stdout and "median ms" in done.stdout
    done = garden_edge("--model", models["int8"], "--source", video, "--benchmark", 40, "--json")
    summary = json.loads(done.stdout)
    assert summary["frames"] == 40 and summary["fps"] > 0
    assert set(summary["p90"]) >= {"capture", "preprocess", "inference", "postprocess", "render"}
    assert all(summary["p90"][s] >= summary[s] for s in ("inference", "render"))


def test_long_run_does_not_grow_in_memory(models, video):
    from edge_app.app import Options, run
    from edge_app.summary import rss_mb

    rss = {}
    n = 150

    def observe(frames, image):
        if frames in (n // 3, n, 2 * n):
            rss[frames] = rss_mb()

    run(Options(model=models["int8"], source=str(video), headless=True, loop=True, max_frames=2 * n), observer=observe)
    assert rss[2 * n] - rss[n] < 8, rss


def test_python_m_and_console_script_are_the_same_program():
    import tomllib

    from edge_app.__main__ import main

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["garden-edge"] == "edge_app.__main__:main"
    assert callable(main)


def test_window_mode_quits_on_q_and_esc(models, video, monkeypatch):
    """The window path with a fake GUI: the frames go to cv2.imshow, and q (or ESC) ends the run."""
    from edge_app import app, outputs

    for key in (ord("q"), 27):
        shown, keys = [], iter([-1, -1, key])
        monkeypatch.setattr(outputs, "has_gui", lambda: True)
        monkeypatch.setattr(outputs.cv2, "imshow", lambda name, image, shown=shown: shown.append(image.shape))
        monkeypatch.setattr(outputs.cv2, "waitKey", lambda delay, keys=keys: next(keys))
        monkeypatch.setattr(outputs.cv2, "destroyAllWindows", lambda: None)
        result = app.run(app.Options(model=models["float"], source=str(video)))
        assert result["stopped"] == "quit key" and result["frames"] == 3 and len(shown) == 3


@pytest.mark.slow
def test_deploy_exported_model_on_embedded_segmentation_video(tmp_path):
    """A model exported by the deploy pipeline (its file and sidecar), run on the embedded data as a video.

    The expected overlay comes from running the same file with LiteRT's interpreter on
    the decoded frames, and colouring its argmax with the sidecar's colours.
    """
    import keras

    import deploy
    from garden.data.embedded import embedded_segmentation

    data = embedded_segmentation(num_images=10, size=96, seed=3)
    frames = [cv2.resize(data[i][0][..., ::-1], (256, 256), interpolation=cv2.INTER_CUBIC) for i in range(len(data))]
    video = tmp_path / "embedded.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (256, 256))
    for frame in frames:
        writer.write(frame)
    writer.release()

    inputs = keras.Input((48, 48, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(11, 1)(x)
    model = keras.Model(inputs, keras.layers.UpSampling2D(2, interpolation="bilinear")(x), name="tiny_segmenter")
    result = deploy.export(
        model,
        quant="int8-io",
        calib=data,
        check_data=data,
        calib_count=8,
        check_count=4,
        repeats=1,
        out=tmp_path,
        name="tiny_int8",
    )
    sidecar = json.loads(result.sidecar_path.read_text())

    out = tmp_path / "annotated.mp4"
    done = garden_edge("--model", result.path, "--source", video, "--headless", "--output", out, "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["frames"] == 10 and summary["model"]["name"] == sidecar["model"]
    assert summary["model"]["input_dtype"] == "uint8" and summary["model"]["macs"] == sidecar["macs"]

    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(result.path))
    interpreter.allocate_tensors()
    inp, outp = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    scale, zero = inp["quantization"]
    colours = np.asarray(sidecar["colors"], np.float32)[:, ::-1]
    shown, decoded = read_video(out), read_video(video)
    agreements = []
    for i in (1, 5, 9):
        rgb = cv2.resize(decoded[i], (48, 48), interpolation=cv2.INTER_LINEAR)[..., ::-1] / 255.0
        interpreter.set_tensor(inp["index"], np.clip(np.round(rgb / scale + zero), 0, 255).astype(np.uint8)[None])
        interpreter.invoke()
        mask = np.argmax(interpreter.get_tensor(outp["index"])[0], axis=-1)
        mask = cv2.resize(mask.astype(np.uint8), (256, 256), interpolation=cv2.INTER_NEAREST)
        expected = 0.5 * decoded[i] + 0.5 * colours[mask]
        close = np.abs(shown[i].astype(np.float32) - expected).max(axis=2) < 40
        agreements.append(close[110:].mean())  # below the timing text and the legend
    assert min(agreements) > 0.8, agreements


def test_default_palette_is_the_one_deploy_writes_and_lut_matches_formula():
    from deploy.sidecar import palette
    from edge_app.model import ModelInfo, default_color, input_lut

    assert [list(default_color(i)) for i in range(40)] == palette(40)
    info = ModelInfo(
        path="m",
        name="m",
        height=4,
        width=4,
        channels=3,
        layout="NHWC",
        input_dtype="int8",
        input_quant=(0.02, -3),
        task="segmentation",
        output_kind="logits",
        num_classes=2,
        output_quant=(0.1, 0),
        class_names=("a", "b"),
        colors=((0, 0, 0), (1, 1, 1)),
        mean=(0.5, 0.4, 0.3),
        std=(0.2, 0.25, 0.5),
    )
    pixels = np.arange(256)[:, None]
    expected = np.clip(np.round(((pixels / 255 - [0.5, 0.4, 0.3]) / [0.2, 0.25, 0.5]) / 0.02 - 3), -128, 127)
    np.testing.assert_array_equal(input_lut(info)[0], expected.astype(np.int8))
