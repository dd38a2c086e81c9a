"""garden-edge on a device that misbehaves: every bad input is one line on stderr and a clean exit code."""

import json
import time

import cv2
import numpy as np
import pytest

from helpers import (
    FRAME_H,
    FRAME_W,
    FakeCapture,
    assert_one_line_error,
    draw_frame,
    garden_edge,
    read_video,
    write_video,
)


@pytest.fixture(scope="session")
def video(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("edge_video") / "shapes.mp4", frames=8)


def test_no_camera_at_index(models):
    done = garden_edge("--model", models["int8"], "--source", "7", "--headless")
    assert_one_line_error(done, 2, "no camera 7")


def test_video_that_ends_exits_cleanly(models, video, tmp_path):
    done = garden_edge("--model", models["int8"], "--source", video, "--headless", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["frames"] == 8 and summary["stopped"] == "source ended"


@pytest.mark.parametrize("case", ["truncated", "corrupt", "not_tflite", "empty", "missing"])
def test_broken_model_files(models, tmp_path, video, case):
    good = open(models["int8"], "rb").read()
    path = tmp_path / f"{case}.tflite"
    if case == "truncated":
        path.write_bytes(good[: len(good) // 3])
    elif case == "corrupt":
        rng = np.random.default_rng(1)
        data = np.frombuffer(good, np.uint8).copy()
        data[64::5] = rng.integers(0, 256, data[64::5].size)
        path.write_bytes(data.tobytes())
    elif case == "not_tflite":
        cv2.imwrite(str(path.with_suffix(".png")), np.zeros((8, 8, 3), np.uint8))
        path.write_bytes(path.with_suffix(".png").read_bytes())
    elif case == "empty":
        path.write_bytes(b"")
    done = garden_edge("--model", path, "--source", video, "--headless")
    expected = {
        "truncated": "could not be loaded",
        "corrupt": "could not be loaded",
        "not_tflite": "not a TFLite model",
        "empty": "not a TFLite model",
        "missing": "does not exist",
    }[case]
    assert_one_line_error(done, 2, str(path), expected)


def test_model_whose_input_the_app_cannot_feed(models, video):
    done = garden_edge("--model", models["vector"], "--source", video, "--headless")
    assert_one_line_error(done, 2, "input shape [1, 10] is not one image")


@pytest.mark.parametrize("source", ["missing.mp4", "not_a_video.mp4", "broken.jpg", "empty_folder"])
def test_unreadable_sources(models, tmp_path, source):
    path = tmp_path / source
    if source == "not_a_video.mp4":
        path.write_text("this is not a video")
    elif source == "broken.jpg":
        path.write_bytes(b"\xff\xd8\xff garbage")
    elif source == "empty_folder":
        path.mkdir()
    done = garden_edge("--model", models["int8"], "--source", path, "--headless")
    assert_one_line_error(done, 2, str(path))


@pytest.mark.parametrize(
    "args",
    [
        ["--size", "640by480"],
        ["--alpha", "3"],
        ["--mode", "sepia"],
        ["--threads", "0"],
        ["--serve", "localhost:http"],
        ["--output", "/no/such/folder/out.mp4"],
    ],
)
def test_bad_options(models, video, args):
    done = garden_edge("--model", models["int8"], "--source", video, "--headless", *args)
    assert_one_line_error(done, 2)


def test_window_without_gui_says_so(models, video):
    from edge_app.outputs import has_gui

    if has_gui():
        pytest.skip("this OpenCV can open windows here")
    done = garden_edge("--model", models["int8"], "--source", video)
    assert_one_line_error(done, 2, "cannot open a window", "--headless")


def test_odd_sizes_grayscale_and_bgra_frames(models, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    frame = draw_frame(1, 161, 97)[0]
    cv2.imwrite(str(folder / "a_odd.png"), frame)
    cv2.imwrite(str(folder / "b_gray.png"), cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(folder / "c_bgra.png"), cv2.cvtColor(frame, cv2.COLOR_BGR2BGRA))
    cv2.imwrite(str(folder / "d_gray16.png"), (cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257))
    (folder / "e_broken.png").write_bytes(b"not a png")
    cv2.imwrite(str(folder / "f_tiny.png"), frame[:3, :5])
    out = tmp_path / "mixed.mp4"
    done = garden_edge("--model", models["int8"], "--source", folder, "--headless", "--output", out, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["frames"] == 5
    assert "skipping" in done.stderr and "e_broken.png" in done.stderr
    shown = read_video(out)
    assert len(shown) == 5 and shown[0].shape == (98, 162, 3)  # odd sizes padded to even for the encoder


def test_size_option_resizes_frames(models, video, tmp_path):
    out = tmp_path / "sized.mp4"
    done = garden_edge("--model", models["int8"], "--source", video, "--headless", "--output", out, "--size", "90x64")
    assert done.returncode == 0, done.stderr
    assert read_video(out)[0].shape == (64, 90, 3)


class FakeCamera(FakeCapture):
    """A camera that gives ``frames`` frames, then nothing; reopening it gives ``after`` more. Like a real
    one it delivers at its own pace (``PERIOD`` seconds a frame), whether the app keeps up or not."""

    opened = []
    PERIOD = 0.04

    def __init__(self, frames, after=0):
        self.left, self.after = frames, after

    def __call__(self, target):
        FakeCamera.opened.append(target)
        camera = FakeCamera(self.left if len(FakeCamera.opened) == 1 else self.after)
        return camera

    def read(self):
        if self.left <= 0:
            return False, None
        time.sleep(self.PERIOD)
        self.left -= 1
        return True, draw_frame(self.left)[0]


@pytest.mark.parametrize("after, code", [(0, 1), (4, 0)])
def test_camera_that_disconnects_mid_stream(models, tmp_path, monkeypatch, capsys, after, code):
    """No frames after reconnecting: exit 1 with the reason, video kept. Frames again: the run goes on.

    The pipelined loop may drop a stale camera frame (a slow moment of a shared CPU): every frame the
    camera gave is either in the video or counted as dropped.
    """
    from edge_app import sources
    from edge_app.__main__ import main

    FakeCamera.opened = []
    monkeypatch.setattr(sources, "open_capture", FakeCamera(5, after))
    out = tmp_path / "camera.mp4"
    args = ["--model", models["int8"], "--source", "0", "--headless", "--output", str(out), "--retries", "2", "--json"]
    if after:
        args += ["--max-frames", "6"]
    assert main(args) == code
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    summary = json.loads(captured.out)
    if after:
        assert summary["frames"] == 6 and "reconnecting (1/2)" in captured.err
    else:
        assert summary["frames"] + summary["frames_dropped"] == 5
        assert "camera 0 disconnected: no frame after 2 reconnection attempts" in captured.err
        assert len(FakeCamera.opened) == 3
    assert len(read_video(out)) == summary["frames"]
    assert read_video(out)[0].shape == (FRAME_H, FRAME_W, 3)
