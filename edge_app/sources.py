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
        raise EdgeError(
            f"source {spec} does not exist (give a camera index, a video, an image, a folder or rtsp://...)"
        )
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
    """A video file: ``None`` at the end, or from the start again when ``loop``.

    A read that fails before the end the file announces (``CAP_PROP_FRAME_COUNT``) is damage, not the
    end: the source reads on past it (a failed read uses up one frame's data), seeks further on when
    reading does not get going again, and counts in ``lost`` the frames it could not decode.
    """

    live = False
    END_TOLERANCE = 1  # frames an undamaged file may fall short of its announced count (estimated by some containers)
    STUCK = 50  # failed reads in a row after which reading is taken to be stuck, and the source seeks

    def __init__(self, path, size, loop):
        self.path, self.size, self.loop = path, size, loop
        self.frames, self.lost_before = 0, 0
        self._open()
        self.fps = float(self.capture.get(cv2.CAP_PROP_FPS) or 0.0)

    def _open(self):
        # one decoder thread: cheaper per frame and steadier than FFmpeg's frame threads competing with LiteRT's
        capture = open_capture(str(self.path), cv2.CAP_ANY, [cv2.CAP_PROP_N_THREADS, 1])
        if not capture.isOpened():
            capture.release()
            raise EdgeError(f"cannot read video {self.path}: not a video OpenCV can decode (or corrupt)")
        count = capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0.0
        self.capture, self.expected = capture, int(count) if 0 < count < 2**53 else 0
        self.decoded = self.failed = 0  # this pass's frames read, and reads that failed before its announced end
        self.shown_ms = -1.0  # timestamp of the last frame handed out: a seek must land after it

    @property
    def lost(self):
        """Frames that could not be decoded: whole passes' shortfall, plus failed reads in the current pass."""
        return self.lost_before + self.failed

    def read(self):
        frame = self._next()
        if frame is None and self.loop and self.frames:
            self.capture.release()
            self._open()
            frame = self._next()
        if frame is None:
            if not self.frames:
                raise EdgeError(f"cannot read video {self.path}: it has no decodable frames")
            return None
        self.frames += 1
        return to_bgr(frame, self.size)

    def _next(self):
        """The next frame of this pass that decodes, reading (then seeking) past damaged ones; None at its end."""
        in_a_row = 0
        while True:
            ok, frame = self.capture.read()
            if ok:
                self.decoded, self.shown_ms = self.decoded + 1, self.capture.get(cv2.CAP_PROP_POS_MSEC)
                return frame
            if self.decoded + self.failed + 1 >= self.expected:
                return self._end_pass()
            self.failed, in_a_row = self.failed + 1, in_a_row + 1
            if in_a_row == self.STUCK:
                frame = self._seek_on()
                return frame if frame is not None else self._end_pass()

    def _end_pass(self):
        """Count the pass's shortfall as lost if it saw damage or fell short by more than the tolerance."""
        missing = max(self.expected - self.decoded, 0)
        if self.failed or missing > self.END_TOLERANCE:
            self.lost_before += missing
        self.failed = 0
        return None

    def _seek_on(self):
        """After ``STUCK`` failed reads: the first later frame a seek decodes, or None; reading goes on after it."""
        index = self._first_seekable(self.decoded + self.failed - 1, self.expected - 1)
        frame = self._frame_at(index) if index is not None else None  # again, to read on right after it
        if frame is not None:
            self.shown_ms = self.capture.get(cv2.CAP_PROP_POS_MSEC)
            index = round(self.shown_ms * self.fps / 1000) if self.fps else index  # seeks may land elsewhere
            self.failed, self.decoded = max(index - self.decoded, self.failed), self.decoded + 1
        return frame

    def _first_seekable(self, bad, last):
        """The first frame after ``bad`` (up to ``last``) that a seek decodes, assuming all after it do too.

        Seeks at doubling distances, then bisects back: a few dozen seeks for a long unreadable stretch.
        """
        low, step = bad, 1
        while True:
            probe = min(low + step, last)
            if self._frame_at(probe) is not None:
                break
            if probe >= last:
                return None
            low, step = probe, step * 2
        high = probe
        while high - low > 1:
            middle = (low + high) // 2
            if self._frame_at(middle) is None:
                low = middle
            else:
                high = middle
        return high

    def _frame_at(self, index):
        """The frame a seek to ``index`` decodes, if it lies after the last one handed out; else None."""
        self.capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = self.capture.read()
        return frame if ok and self.capture.get(cv2.CAP_PROP_POS_MSEC) > self.shown_ms else None

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
