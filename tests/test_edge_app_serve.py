"""``garden-edge --serve``: the MJPEG page, checked over HTTP and in a real headless Chromium."""

import json
import queue
import shutil
import signal
import subprocess
import time
import urllib.request

import cv2
import numpy as np
import pytest

from helpers import COLORS, start_serving, write_video

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def server(models, tmp_path_factory):
    """The app serving a looping generated video on an ephemeral localhost port; yields its URL."""
    video = write_video(tmp_path_factory.mktemp("serve_video") / "shapes.mp4", frames=12)
    url, process, lines = start_serving(models["int8"], video, "--serve", "127.0.0.1:0", "--threads", "1")
    yield url, process, lines
    if process.poll() is None:
        process.kill()


def overlay_pixels(image_bgr, tolerance=45):
    """How many pixels are close to each class's overlay colour blended half over its object colour."""
    return [int((np.abs(image_bgr.astype(int) - np.array(c[::-1])).max(axis=2) < tolerance).sum()) for c in COLORS[1:]]


def test_parse_address_defaults_to_localhost():
    from edge_app.serve import parse_address

    assert parse_address("8080") == ("127.0.0.1", 8080)
    assert parse_address(":9000") == ("127.0.0.1", 9000)
    assert parse_address("0.0.0.0:80") == ("0.0.0.0", 80)


def test_page_stats_and_mjpeg_stream(server):
    url, _, _ = server
    assert url.startswith("http://127.0.0.1:")
    page = urllib.request.urlopen(url, timeout=10).read().decode()
    assert "/stream.mjpg" in page and "/stats.json" in page
    for _ in range(100):  # the first frames come after the model loads
        stats = json.loads(urllib.request.urlopen(url + "stats.json", timeout=10).read())
        if stats.get("frames", 0) >= 3:
            break
        time.sleep(0.2)
    assert stats["fps"] > 0 and stats["stages"]["inference"] > 0
    assert [name for name, _ in stats["result"]["classes"]][0] == "background"
    with urllib.request.urlopen(url + "stream.mjpg", timeout=10) as stream:
        assert stream.headers["Content-Type"].startswith("multipart/x-mixed-replace")
        jpegs = []
        while len(jpegs) < 2:
            line = stream.readline()
            if line.lower().startswith(b"content-length:"):
                stream.readline()
                jpegs.append(stream.read(int(line.split(b":")[1])))
    frame = cv2.imdecode(np.frombuffer(jpegs[1], np.uint8), cv2.IMREAD_COLOR)
    assert frame.shape == (120, 160, 3)


def test_headless_chromium_screenshot_shows_the_overlay(server, tmp_path):
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (make system-deps installs the Debian package `chromium`)")
    url, process, lines = server
    shot = tmp_path / "page.png"
    done = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1000,700",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert shot.is_file(), done.stderr[-2000:]
    page = cv2.imread(str(shot))
    assert page.shape[:2] == (700, 1000) and page.std() > 10, "blank screenshot"
    assert min(overlay_pixels(page)) > 200, overlay_pixels(page)
    # SIGTERM ends the app cleanly with its summary
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    rest = "".join(iter(lambda: _get(lines), None))
    assert "FPS" in rest and "inference" in rest


def _get(lines):
    try:
        return lines.get(timeout=5)
    except queue.Empty:
        return None
