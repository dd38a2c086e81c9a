"""Where the annotated frames go: a video or image file (``--output``), the ``--serve`` page, a window.

:class:`Outputs` holds whichever of them a run asked for and hands each frame to all of them.
"""

import contextlib
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import cv2

from edge_app.errors import EdgeError, OutputFailed
from edge_app.files import remove_stale_temporaries, temporary_name
from edge_app.sources import IMAGE_SUFFIXES

QUIT_KEYS = (27, ord("q"), ord("Q"))
STATS_EVERY = 10  # frames between refreshes of the served stats (and every one of the first ten)


@dataclass
class Outputs:
    """The outputs of one run, any of them ``None``: :meth:`open` them, :meth:`emit` each frame, :meth:`close`."""

    writer: "VideoOutput | None" = None
    server: object = None  # an edge_app.serve.FrameServer
    window: "Window | None" = None

    def open(self, options, fps, out=sys.stdout):
        """Open what ``options`` asks for; whatever opened before one fails is still closed by :meth:`close`."""
        if options.output:
            self.writer = VideoOutput(options.output, fps)
        if options.serve:
            from edge_app.serve import FrameServer, access_token

            token = access_token(options.serve[0], options.token, options.no_auth)
            title = Path(options.model).name
            self.server = FrameServer(options.serve, title, token, options.max_clients).start()
            print(f"garden-edge: serving on {self.server.url}", file=out, flush=True)
        if not (options.headless or options.benchmark or options.serve):
            self.window = Window()
        return self

    @property
    def watched(self):
        """True when a person watches the frames: in a window or on the served page."""
        return self.window is not None or self.server is not None

    def emit(self, image, frames, stats):
        """Write, serve and show one annotated image; False when the window's quit key was pressed.

        ``frames`` is how many the run has processed; ``stats()`` gives the served page's numbers and
        is asked for only on the frames the page is refreshed.
        """
        if self.writer is not None:
            self.writer.write(image)
        if self.server is not None:
            fresh = frames <= STATS_EVERY or frames % STATS_EVERY == 0
            self.server.publish(image, stats() if fresh else self.server.stats)
        if self.window is not None:
            return self.window.show(image)
        return True

    def close(self, keep):
        """Close the window and the server, then finish the file: checked and put in place only when ``keep``."""
        if self.window is not None:
            self.window.close()
        if self.server is not None:
            self.server.close()
        if self.writer is not None:
            self.writer.close(keep=keep)


# ---------------------------------------------------------------- the window


def has_gui():
    """True when this OpenCV can open windows (a GUI build) and a display is there to open them on."""
    info = cv2.getBuildInformation()
    gui = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.strip().startswith("GUI:")), "")
    if not gui or gui.upper() == "NONE":
        return False
    return sys.platform != "linux" or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class Window:
    """cv2.imshow; ESC or q closes it."""

    NAME = "garden-edge"

    def __init__(self):
        if not has_gui():
            raise EdgeError(
                "cannot open a window: this OpenCV build has no GUI (opencv-python-headless) or there is no "
                "display; use --headless --output out.mp4, --serve 127.0.0.1:8080, or install opencv-python"
            )

    def show(self, image):
        cv2.imshow(self.NAME, image)
        return (cv2.waitKey(1) & 0xFF) not in QUIT_KEYS

    def close(self):
        cv2.destroyAllWindows()


# ---------------------------------------------------------------- the file


class VideoOutput:
    """Frames -> a video (or, for an image suffix, the last frame), written under a temporary name.

    The file is moved onto ``path`` only once it is complete and plays back: OpenCV's writers report
    no error when the disk fills, so :meth:`close` reads the file back and checks every frame decodes.
    """

    CODECS: ClassVar = {".avi": "MJPG", ".mkv": "mp4v", ".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v"}
    LOW_SPACE = 1 << 20  # bytes free below which a failed check names the full disk as the likely cause

    def __init__(self, path, fps):
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in self.CODECS and suffix not in IMAGE_SUFFIXES:
            raise EdgeError(f"--output {path}: use a video (.mp4, .avi, .mkv, .mov) or an image suffix")
        self.folder = self.path.resolve().parent
        if not self.folder.is_dir() or not os.access(self.folder, os.W_OK):
            raise EdgeError(f"--output {path}: folder {self.folder} does not exist or is not writable")
        if self.path.is_dir():
            raise EdgeError(f"--output {path}: it is a folder")
        remove_stale_temporaries(self.folder)
        self.temporary = temporary_name(self.folder / self.path.name)
        self.fps, self.writer, self.size, self.last, self.written = fps or 15.0, None, None, None, 0

    def write(self, image):
        if self.path.suffix.lower() in IMAGE_SUFFIXES:
            self.last = image
            return
        if self.writer is None:
            self.size = (image.shape[1] + image.shape[1] % 2, image.shape[0] + image.shape[0] % 2)
            fourcc = cv2.VideoWriter_fourcc(*self.CODECS[self.path.suffix.lower()])
            self.writer = cv2.VideoWriter(str(self.temporary), fourcc, self.fps, self.size)
            if not self.writer.isOpened():
                self.temporary.unlink(missing_ok=True)
                raise OutputFailed(
                    f"--output {self.path}: OpenCV cannot write this video format here{self._space_note()}"
                )
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        self.writer.write(image)
        self.written += 1

    def close(self, keep=True):
        """Finish the file; when ``keep``, check it and move it into place. The temporary never stays behind."""
        try:
            if self.writer is not None:
                self.writer.release()
            if keep and (self.writer is not None or self.last is not None):
                self._finish()
        finally:
            with contextlib.suppress(OSError):
                self.temporary.unlink(missing_ok=True)

    def _finish(self):
        problem = self._write_image() if self.last is not None else self._check_video()
        if problem:
            kept = "the file already there is unchanged" if self.path.exists() else "nothing was written there"
            raise OutputFailed(f"--output {self.path}: {problem}{self._space_note()}; {kept}")
        os.replace(self.temporary, self.path)

    def _write_image(self):
        """Write the last frame to the temporary; what went wrong, or None once it reads back whole."""
        with contextlib.suppress(cv2.error):
            cv2.imwrite(str(self.temporary), self.last)
        image = cv2.imread(str(self.temporary), cv2.IMREAD_UNCHANGED) if self.temporary.exists() else None
        if image is None or image.shape[:2] != self.last.shape[:2]:
            return "the image could not be written completely"
        return None

    def _check_video(self):
        """What is wrong with the finished temporary video, or None when all written frames decode."""
        decoded = count_frames(self.temporary)
        if decoded != self.written:
            return f"the video written is incomplete: {decoded} of {self.written} frames play back"
        return None

    def _space_note(self):
        try:
            free = shutil.disk_usage(self.folder).free
        except OSError:
            return ""
        return f"; its disk has {free // 1024} KiB free, probably full" if free < self.LOW_SPACE else ""


def count_frames(path):
    """How many frames of the video at ``path`` OpenCV can decode, reading it to the end."""
    capture = cv2.VideoCapture(str(path))
    frames = 0
    try:
        while capture.isOpened() and capture.grab():
            frames += 1
    finally:
        capture.release()
    return frames
