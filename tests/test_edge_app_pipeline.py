"""The pipelined loop (the default; edge_app.stages) against --sequential: every frame of a file, in order,
the same pictures, a live camera's stale frames dropped and counted, errors as one line, no thread left.

Frames carry their number, written as black and white blocks on the left of the frame; ``--mode
side-by-side`` keeps the captured frame unchanged on the left of each picture shown, so the number can be
read back from what the app put out.
"""

import json
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from helpers import FRAME_W, FakeCapture, assert_one_line_error, draw_frame, garden_edge, write_video

BITS = 8
BLOCK = FRAME_W // BITS  # pixels of one bit, across
BAND = slice(60, 76)  # rows of the bits: below the timing text and the legend
CAPTION_ROWS = 30  # the timing text, top-left: it differs from run to run


def numbered_frame(index):
    """``helpers.draw_frame(index)`` with ``index`` written across rows ``BAND`` in ``BITS`` blocks."""
    frame = draw_frame(index)[0]
    for bit in range(BITS):
        frame[BAND, bit * BLOCK : (bit + 1) * BLOCK] = 255 if index >> bit & 1 else 0
    return frame, None


def frame_number(image):
    """The number ``numbered_frame`` wrote, read from the left (unchanged) half of a side-by-side picture."""
    middle = image[BAND.start + 4 : BAND.stop - 4]
    return sum(1 << bit for bit in range(BITS) if middle[:, bit * BLOCK + 4 : (bit + 1) * BLOCK - 4].mean() > 127)


def edge_threads():
    return [t for t in threading.enumerate() if t.name.startswith(("garden-edge", "stage"))]


@pytest.fixture(scope="module")
def numbered_video(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("numbered") / "numbered.mp4", frames=30, draw=numbered_frame)


def run_collecting(model, source, **options):
    """``edge_app.app.run`` in side-by-side mode: (summary, the pictures shown, in the order shown)."""
    from edge_app.app import Options, run

    shown = []
    options = Options(model=model, source=str(source), headless=True, mode="side-by-side", **options)
    summary = run(options, observer=lambda frames, image: shown.append(image.copy()))
    return summary, shown


# ---------------------------------------------------------------- the stage pipeline on its own


def test_stage_pipeline_keeps_order_and_every_item_and_stops_its_threads():
    from edge_app.stages import StagePipeline

    items = iter(range(200))
    slow = lambda x: time.sleep(0.0005 * (x % 3)) or x  # noqa: E731 - uneven stage times
    with StagePipeline(lambda: next(items, None), slow, lambda x: 2 * x) as stages:
        assert list(stages) == [2 * x for x in range(200)] and stages.dropped == 0
    assert not edge_threads()


def test_stage_pipeline_carries_an_error_after_the_items_before_it():
    from edge_app.stages import StagePipeline

    def fail_at_five(x):
        if x == 5:
            raise ValueError("item 5 is bad")
        return x

    items, got = iter(range(100)), []
    with pytest.raises(ValueError, match="item 5 is bad"), StagePipeline(lambda: next(items), fail_at_five) as stages:
        got.extend(stages)
    assert got == [0, 1, 2, 3, 4] and not edge_threads()


def test_stage_pipeline_latest_only_drops_stale_items_and_counts_them():
    from edge_app.stages import StagePipeline

    items = iter(range(60))
    with StagePipeline(lambda: next(items, None), lambda x: time.sleep(0.005) or x, latest_only=True) as stages:
        got = list(stages)
    assert got == sorted(set(got)) and got[-1] == 59  # in order, and the newest one is never the one dropped
    assert stages.dropped > 0 and len(got) + stages.dropped == 60


# ---------------------------------------------------------------- the app


def test_pipelined_video_shows_every_frame_in_order_as_sequential_does(models, numbered_video):
    runs = {}
    for sequential in (False, True):
        summary, shown = run_collecting(models["int8"], numbered_video, sequential=sequential)
        assert [frame_number(image) for image in shown] == list(range(30))
        assert summary["frames"] == 30 and summary["stopped"] == "source ended" and "frames_dropped" not in summary
        assert summary["loop"] == ("sequential" if sequential else "pipelined")
        runs[sequential] = shown
    for pipelined, sequential in zip(runs[False], runs[True]):
        np.testing.assert_array_equal(pipelined[CAPTION_ROWS:], sequential[CAPTION_ROWS:])
    assert not edge_threads()


def test_pipelined_benchmark_loops_the_source_in_order(models, numbered_video):
    from edge_app.app import WARMUP

    summary, shown = run_collecting(models["int8"], numbered_video, benchmark=40)
    assert [frame_number(image) for image in shown] == [i % 30 for i in range(40 + WARMUP)]
    assert summary["frames"] == 40 and summary["stopped"] == "40 frames"
    latency = summary["latency"]
    assert 0 < latency["median"] <= latency["p95"] and latency["median"] == summary["total"]


class NumberedCamera(FakeCapture):
    """A camera giving ``frames`` numbered frames, one every ``period`` seconds, then nothing (unplugged)."""

    def __init__(self, frames, period):
        self.next, self.frames, self.period = 0, frames, period

    def __call__(self, target):
        return self

    def read(self):
        if self.next == self.frames:
            return False, None
        time.sleep(self.period)
        self.next += 1
        return True, numbered_frame(self.next - 1)[0]


def test_live_camera_drops_stale_frames_counted_and_keeps_order(models, monkeypatch):
    """Inference slower than the camera: frames wait for none; the ones dropped are counted."""
    from edge_app import app, sources

    camera = NumberedCamera(40, period=0.002)
    monkeypatch.setattr(sources, "open_capture", camera)
    infer = app.infer
    monkeypatch.setattr(app, "infer", lambda model, tensor: time.sleep(0.01) or infer(model, tensor))
    summary, shown = run_collecting(models["int8"], "0", retries=0)
    numbers = [frame_number(image) for image in shown]
    assert numbers == sorted(set(numbers)) and numbers[-1] == 39
    assert summary["frames_dropped"] > 0 and summary["frames"] + summary["frames_dropped"] == 40
    assert "disconnected" in summary["error"] and not edge_threads()


@pytest.mark.parametrize("stage", ["preprocess", "infer", "postprocess"])
def test_error_in_a_stage_is_one_line_and_leaves_no_thread(models, numbered_video, monkeypatch, capsys, stage):
    """A failure on the capture thread, the inference thread or the main thread: exit 2 with its line."""
    from edge_app import app
    from edge_app.__main__ import main
    from edge_app.errors import EdgeError

    real, calls = getattr(app, stage), []

    def failing(*args):
        calls.append(1)
        if len(calls) == 4:
            raise EdgeError(f"{stage} failed on frame 4")
        return real(*args)

    monkeypatch.setattr(app, stage, failing)
    code = main(["--model", models["int8"], "--source", str(numbered_video), "--headless", "--json"])
    captured = capsys.readouterr()
    assert_one_line_error(SimpleNamespace(returncode=code, stderr=captured.err, stdout=captured.out), 2, stage)
    assert not edge_threads()


def test_ctrl_c_ends_a_pipelined_run_with_its_summary(models, numbered_video):
    from edge_app.app import Options, run

    def interrupt(frames, image):
        if frames == 5:
            raise KeyboardInterrupt

    summary = run(Options(model=models["int8"], source=str(numbered_video), headless=True), observer=interrupt)
    assert summary["stopped"] == "interrupted" and summary["frames"] == 5 and not edge_threads()


def test_sequential_gives_each_stage_its_own_time(models, numbered_video):
    done = garden_edge("--model", models["int8"], "--source", numbered_video, "--benchmark", 20, "--sequential")
    assert done.returncode == 0, done.stderr
    assert "sequential loop: latency (capture to display) median" in done.stdout
    source = ("--source", numbered_video, "--headless", "--max-frames", 20)
    done = garden_edge("--model", models["int8"], *source, "--sequential", "--json")
    summary = json.loads(done.stdout)
    stages = ("capture", "preprocess", "inference", "postprocess", "render")
    assert summary["loop"] == "sequential" and summary["frames"] == 20
    assert all(0 < summary[s] <= summary["p90"][s] for s in stages)
    # one frame at a time: the next frame starts once this one is shown, so frames do not overlap
    assert summary["fps"] * summary["latency"]["median"] / 1000 <= 1.2
