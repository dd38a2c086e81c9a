"""Where frames come from: a camera index, a video file, an image, a folder of images or a stream.

Every source hands out BGR uint8 frames (grayscale, BGRA and 16-bit frames are converted), returns
``None`` when a finite source ends, and raises :class:`SourceLost` when a live source stops
delivering frames and does not come back after a few reconnection attempts.
"""

import sys
import time
from pathlib import Path

import cv2
import numpy as np

from edge_app.errors import EdgeError, SourceLost

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
STREAM_PREFIXES = ("rtsp://", "rtsps://", "http://", "https://", "udp://", "tcp://", "rtmp://")

# The factory the capture sources open; tests replace it with a fake camera.
open_capture = cv2.VideoCapture


def to_bgr(frame, size=None):
    """Any decoded frame -> contiguous BGR uint8 (from gray, gray x 1, BGRA, 16-bit or float), resized to ``size``."""
    if frame is None or frame.size == 0:
        raise EdgeError("received an empty frame")
    if frame.dtype == np.uint16:
        frame = (frame >> 8).astype(np.uint8)
    elif frame.dtype != np.uint8:
        peak = 255.0 if float(np.nanmax(frame)) > 1.0 else 1.0
        frame = np.clip(np.nan_to_num(frame) * (255.0 / peak), 0, 255).astype(np.uint8)
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[..., 0]
    if frame.ndim == 2:
        frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    elif frame.shape[2] == 4:
        frame = cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    elif frame.shape[2] != 3:
        raise EdgeError(f"cannot show a frame with {frame.shape[2]} channels")
    if size and (frame.shape[1], frame.shape[0]) != tuple(size):
        frame = cv2.resize(frame, tuple(size), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(frame)


def open_source(spec, size=None, loop=False, retries=3, retry_delay=0.5):
    """``0`` (camera index), ``video.mp4``, ``image.jpg``, a folder, or ``rtsp://...`` -> a source."""
    spec = str(spec)
    if spec.isdigit():
        return LiveSource(int(spec), f"camera {spec}", size, retries, retry_delay)
    if spec.lower().startswith(STREAM_PREFIXES):
        return LiveSource(spec, f"stream {spec}", size, retries, retry_delay)
    path = Path(spec)
    if path.is_dir():
        return FolderSource(path, size, loop)
    if not path.exists():
        raise EdgeError(f"source {spec} does not exist (give a camera index, a video, an image, a folder or rtsp://...)")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return FolderSource(path, size, loop, files=[path])
    return VideoSource(path, size, loop)


class LiveSource:
    """A camera or network stream: reconnects ``retries`` times, then raises :class:`SourceLost`."""

    live = True

    def __init__(self, target, name, size, retries, retry_delay):
        self.target, self.name, self.size = target, name, size
        self.retries, self.retry_delay = retries, retry_delay
        self.capture = self._open()
        if self.capture is None:
            raise EdgeError(f"no {name}: OpenCV could not open it (is it connected, and is the index right?)")

    def _open(self):
        capture = open_capture(self.target)
        if not capture.isOpened():
            capture.release()
            return None
        if self.size:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.size[0])
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.size[1])
        return capture

    def read(self):
        ok, frame = self.capture.read()
        attempt = 0
        while not ok or frame is None:
            if attempt == self.retries:
                raise SourceLost(f"{self.name} disconnected: no frame after {self.retries} reconnection attempts")
            attempt += 1
            print(f"garden-edge: {self.name} gave no frame, reconnecting ({attempt}/{self.retries})", file=sys.stderr)
            self.capture.release()
            time.sleep(self.retry_delay)
            self.capture = self._open()
            ok, frame = self.capture.read() if self.capture is not None else (False, None)
            if self.capture is None:
                self.capture = _Closed()
        return to_bgr(frame, self.size)

    def close(self):
        self.capture.release()


class _Closed:
    """Stands in for a capture that could not be reopened."""

    def read(self):
        return False, None

    def release(self):
        pass


class VideoSource:
    """A video file: ``None`` at the end, or from the start again when ``loop``."""

    live = False

    def __init__(self, path, size, loop):
        self.path, self.size, self.loop = path, size, loop
        self.capture = self._open()
        self.frames = 0
        self.fps = float(self.capture.get(cv2.CAP_PROP_FPS) or 0.0)

    def _open(self):
        # one decoder thread: cheaper per frame and steadier than FFmpeg's frame threads competing with LiteRT's
        capture = open_capture(str(self.path), cv2.CAP_ANY, [cv2.CAP_PROP_N_THREADS, 1])
        if not capture.isOpened():
            capture.release()
            raise EdgeError(f"cannot read video {self.path}: not a video OpenCV can decode (or corrupt)")
        return capture

    def read(self):
        ok, frame = self.capture.read()
        if not ok and self.loop and self.frames:
            self.capture.release()
            self.capture = self._open()
            ok, frame = self.capture.read()
        if not ok:
            if not self.frames:
                raise EdgeError(f"cannot read video {self.path}: it has no decodable frames")
            return None
        self.frames += 1
        return to_bgr(frame, self.size)

    def close(self):
        self.capture.release()


class FolderSource:
    """Images in name order (one image is a folder of one); unreadable files are skipped with a warning."""

    live = False

    def __init__(self, path, size, loop, files=None):
        self.path, self.size, self.loop = path, size, loop
        self.files = files or sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise EdgeError(f"folder {path} has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        self.position, self.cache, self.shown = 0, {}, 0

    def read(self):
        while True:
            if self.position == len(self.files):
                if not (self.loop and self.shown):
                    return self._end()
                self.position = 0
            path = self.files[self.position]
            self.position += 1
            frame = self._load(path)
            if frame is not None:
                self.shown += 1
                return frame

    def _load(self, path):
        if path in self.cache:
            return self.cache[path]
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image is None or image.size == 0:
            if len(self.files) == 1:
                raise EdgeError(f"cannot read image {path}: not an image OpenCV can decode (or corrupt)")
            print(f"garden-edge: skipping {path}: not a readable image", file=sys.stderr)
            return None
        try:
            frame = to_bgr(image, self.size)
        except EdgeError as error:
            if len(self.files) == 1:
                raise EdgeError(f"cannot use image {path}: {error}") from None
            print(f"garden-edge: skipping {path}: {error}", file=sys.stderr)
            return None
        if self.loop and len(self.files) == 1:
            self.cache[path] = frame
        return frame

    def _end(self):
        if not self.shown:
            raise EdgeError(f"no readable image in {self.path}")
        return None

    def close(self):
        self.cache.clear()
