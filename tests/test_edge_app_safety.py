"""garden-edge when the disk fills, the video is damaged, the run is killed, or a number option is absurd."""

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time

os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # before the first capture: FFmpeg's lines about the damage

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from edge_app.files import is_temporary  # noqa: E402
from helpers import (  # noqa: E402
    FRAME_H,
    FRAME_W,
    ROOT,
    assert_one_line_error,
    draw_frame,
    garden_edge,
    read_video,
    write_video,
)

FRAMES = 60
DAMAGED = (13, 30, 31)  # frames whose JPEG Huffman table is zeroed: OpenCV's plain read() stops at the first


def looped_output_run(model, clip, target, frames):
    """garden-edge arguments: ``model`` on ``clip`` looped for ``frames`` frames, headless, into ``target``."""
    return [
        "--model",
        model,
        "--source",
        clip,
        "--loop",
        "--max-frames",
        frames,
        "--headless",
        "--output",
        target,
        "--threads",
        1,
    ]


def write_mjpg(path, frames=FRAMES):
    """A ``frames``-frame MJPG .avi of the moving shapes (every frame a JPEG, so damage stays local)."""
    return write_video(path, frames, codec="MJPG")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_mjpg(tmp_path_factory.mktemp("safety_video") / "shapes.avi")


def damage_frames(path, frames):
    """Zero 16 bytes of the Huffman table (after the FFC4 marker) of each of ``frames`` in an MJPG .avi."""
    data = bytearray(path.read_bytes())
    chunks, at = [], data.find(b"00dc", data.find(b"movi"))
    while at >= 0 and len(chunks) < FRAMES:
        chunks.append(at)
        at = data.find(b"00dc", at + 8)
    for index in frames:
        table = data.find(b"\xff\xc4", chunks[index])
        data[table + 4 : table + 20] = bytes(16)
    path.write_bytes(bytes(data))
    return path


def plain_read_count(path):
    """How many frames OpenCV's read() gives before its first failure (what garden-edge used to play)."""
    capture = cv2.VideoCapture(str(path))
    frames = 0
    while capture.read()[0]:
        frames += 1
    capture.release()
    return frames


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if is_temporary(p.name))


# ---------------------------------------------------------------- a full disk


@pytest.fixture
def small_disk(tmp_path):
    """A 200 KiB tmpfs (we run as root); yields (folder, "tmpfs"), or (folder, None) when mounting is refused."""
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(folder)], capture_output=True
        ).returncode
        == 0
    )
    try:
        yield folder, "tmpfs" if mounted else None
    finally:
        if mounted:
            subprocess.run(["umount", str(folder)], check=True)


class FullDiskWriter:
    """Stands in for cv2.VideoWriter on a disk that fills: no error anywhere, but the file ends up cut short."""

    real = cv2.VideoWriter

    def __init__(self, path, *args):
        self.path, self.writer = path, self.real(path, *args)

    def isOpened(self):
        return self.writer.isOpened()

    def write(self, image):
        self.writer.write(image)

    def release(self):
        self.writer.release()
        size = os.path.getsize(self.path)
        with open(self.path, "r+b") as f:
            f.truncate(size // 2)


@pytest.mark.parametrize("existing", [True, False], ids=["user-file-at-target", "no-file-at-target"])
def test_full_disk_leaves_nothing_and_keeps_the_users_file(models, clip, small_disk, monkeypatch, capsys, existing):
    """Exit 3 with one line; no temporary; the target is the user's file byte for byte, or absent."""
    folder, variant = small_disk
    target = folder / "out.mp4"
    if existing:
        target.write_bytes(np.random.default_rng(0).integers(0, 256, 150_000, np.uint8).tobytes())
    before = target.read_bytes() if existing else None
    args = looped_output_run(models["int8"], clip, target, frames=300)
    if variant:
        done = garden_edge(*args)
    else:
        from edge_app.__main__ import main

        monkeypatch.setattr(cv2, "VideoWriter", FullDiskWriter)
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        done = subprocess.CompletedProcess(args, code, captured.out, captured.err)
    assert_one_line_error(done, 3, f"--output {target}", "incomplete")
    assert ("unchanged" if existing else "nothing was written") in done.stderr
    assert sorted(p.name for p in folder.iterdir()) == (["out.mp4"] if existing else [])
    if existing:
        assert target.read_bytes() == before
    print(f"full-disk variant: {variant or 'simulated (mount refused): VideoWriter whose file is cut short'}")


def test_output_is_checked_and_moved_into_place(models, clip, tmp_path):
    """On a disk with room the same run writes the video: all frames play back, no temporary left."""
    target = tmp_path / "out.mp4"
    target.write_bytes(b"an older file")
    done = garden_edge("--model", models["int8"], "--source", clip, "--headless", "--output", target, "--json")
    assert done.returncode == 0, done.stderr
    assert len(read_video(target)) == json.loads(done.stdout)["frames"] == FRAMES
    assert leftovers(tmp_path) == []


# ---------------------------------------------------------------- a damaged video


def test_damaged_video_is_skipped_past_with_a_warning(models, clip, tmp_path):
    """OpenCV alone stops at frame 13 of 60; garden-edge steps past the damage, plays 57, warns, exits 4."""
    damaged = tmp_path / "damaged.avi"
    damaged.write_bytes(clip.read_bytes())
    damage_frames(damaged, DAMAGED)
    assert plain_read_count(clip) == FRAMES
    assert plain_read_count(damaged) == DAMAGED[0]  # the "13 of 60"
    out = tmp_path / "annotated.avi"
    done = garden_edge("--model", models["int8"], "--source", damaged, "--headless", "--output", out, "--json")
    assert_one_line_error(done, 4, "warning", str(damaged), f"{len(DAMAGED)} frame(s) could not be decoded")
    summary = json.loads(done.stdout)
    assert summary["frames"] == FRAMES - len(DAMAGED) > DAMAGED[0]
    assert summary["frames_lost"] == len(DAMAGED)
    assert len(read_video(out)) == FRAMES - len(DAMAGED)


def test_undamaged_avi_has_no_warning(models, clip):
    done = garden_edge("--model", models["int8"], "--source", clip, "--headless", "--json")
    assert done.returncode == 0 and done.stderr.strip() == "", done.stderr
    assert json.loads(done.stdout)["frames"] == FRAMES and "frames_lost" not in done.stdout


def numbered_frame(index):
    """A shapes frame with ``index`` written in its top rows as 8 black/white bars (read by :func:`frame_number`)."""
    frame = draw_frame(index)[0]
    for bit in range(8):
        frame[:16, bit * 20 : (bit + 1) * 20] = 255 if index >> bit & 1 else 0
    return frame


def frame_number(frame):
    return sum(1 << bit for bit in range(8) if frame[2:14, bit * 20 + 4 : bit * 20 + 16].mean() > 128)


def test_source_seeks_past_a_stretch_reading_cannot_get_through(tmp_path):
    """20 kB zeroed in a 240-frame mp4: read() fails for good at frame 73; seeking on finds the frames after it."""
    from edge_app.sources import VideoSource

    frames = 240
    path = tmp_path / "zeroed.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 12, (FRAME_W, FRAME_H))
    for i in range(frames):
        writer.write(numbered_frame(i))
    writer.release()
    data = bytearray(path.read_bytes())
    start = len(data) * 3 // 10
    data[start : start + 20_000] = bytes(20_000)
    path.write_bytes(bytes(data))
    plain = plain_read_count(path)
    assert plain < frames / 2
    source, shown = VideoSource(path, None, loop=False), []
    while (frame := source.read()) is not None:
        shown.append(frame_number(frame))
    source.close()
    assert len(shown) > plain + 50 and len(shown) + source.lost == frames
    assert shown == sorted(shown) and shown[-1] == frames - 1, "a seek went back: frames were handed out twice"


# ---------------------------------------------------------------- a killed run


def start_garden_edge(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT), GARDEN_DEBUG="")
    return subprocess.Popen(
        [sys.executable, "-m", "edge_app", *map(str, args)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=ROOT,
    )


def kill_while_writing(process, folder, rng, timeout=60):
    """SIGKILL ``process`` a random moment after its temporary output appears (or when it ends first)."""
    deadline = time.monotonic() + timeout
    mine = f"-{process.pid}-"
    while process.poll() is None and time.monotonic() < deadline:
        if any(mine in name for name in leftovers(folder)):
            break
        time.sleep(0.01)
    time.sleep(rng.uniform(0.0, 0.4))
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGKILL)
    process.wait()


def test_killed_runs_leave_nothing_after_the_next_complete_run(models, clip, tmp_path):
    """Several SIGKILLs mid-write, then one whole run: only live processes' and users' files stay."""
    folder = tmp_path / "out"
    folder.mkdir()
    target = folder / "x.mp4"
    rng = random.Random(22)
    args = looped_output_run(models["int8"], clip, target, frames=2000)
    killed_while_writing = 0
    for _ in range(4):
        process = start_garden_edge(*args)
        kill_while_writing(process, folder, rng)
        stale = leftovers(folder)  # each run first deleted the one before's: only this run's may be there
        assert all(f"-{process.pid}-" in name for name in stale), stale
        killed_while_writing += bool(stale)
    assert killed_while_writing, "no run was killed while writing: the test would prove nothing"
    print(f"{killed_while_writing} of 4 runs were killed while writing")
    assert not target.exists()
    live = folder / f".x.garden-partial-{os.getpid()}-0badcafe.mp4"  # this test process is alive
    live.write_bytes(b"still being written")
    users = [folder / ".x.partial.mp4", folder / "x.garden-partial-1-ab.mp4"]  # unmarked or not hidden
    for path in users:
        path.write_bytes(b"mine")
    done = garden_edge("--model", models["int8"], "--source", clip, "--headless", "--output", target, "--json")
    assert done.returncode == 0, done.stderr
    assert leftovers(folder) == [live.name]
    assert all(path.read_bytes() == b"mine" for path in users)
    assert len(read_video(target)) == json.loads(done.stdout)["frames"] == FRAMES


# ---------------------------------------------------------------- number options


@pytest.mark.parametrize(
    "option, value",
    [
        ("--threads", "nan"),
        ("--threads", "0"),
        ("--threads", "1e9"),
        ("--threads", "100000"),
        ("--retries", "nan"),
        ("--retries", "-1"),
        ("--retries", "inf"),
        ("--retries", "99999999"),
        ("--benchmark", "nan"),
        ("--benchmark", "0"),
        ("--benchmark", "-5"),
        ("--benchmark", "1e12"),
        ("--max-frames", "nan"),
        ("--max-frames", "0"),
        ("--max-frames", "2.5"),
        ("--max-frames", "10000000000"),
        ("--top-k", "nan"),
        ("--top-k", "0"),
        ("--top-k", "100000"),
        ("--alpha", "nan"),
        ("--alpha", "-0.1"),
        ("--alpha", "inf"),
        ("--alpha", "1.5"),
        ("--size", "nanxnan"),
        ("--size", "0x480"),
        ("--size", "640x-1"),
        ("--size", "100000x480"),
        ("--serve", "127.0.0.1:nan"),
        ("--serve", "127.0.0.1:70000"),
        ("--serve", "-1"),
    ],
)
def test_number_options_reject_nan_and_out_of_range(option, value, capsys):
    from edge_app.__main__ import main

    assert main(["--model", "m.tflite", f"{option}={value}"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"garden-edge: argument {option}: "), captured.err
    assert "Traceback" not in captured.err and captured.out == ""


def test_bad_number_exits_2_from_the_command_line_and_help_lists_exit_codes():
    done = garden_edge("--model", "m.tflite", "--retries", "nan")
    assert_one_line_error(done, 2, "--retries", "'nan' is not a whole number")
    shown = garden_edge("--help")
    assert shown.returncode == 0
    assert "exit codes:" in shown.stdout
    assert "\n  3  --output" in shown.stdout and "\n  4  a damaged video" in shown.stdout
