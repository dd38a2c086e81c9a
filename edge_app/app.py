"""The one loop: capture -> preprocess -> infer -> postprocess -> render -> output, timed per stage."""

import contextlib
import itertools
import os
import shutil
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge_app import render as draw
from edge_app.errors import EdgeError, OutputFailed, SourceLost
from edge_app.files import remove_stale_temporaries, temporary_name
from edge_app.model import infer, load_model, preprocess
from edge_app.postprocess import Classification, postprocess
from edge_app.sources import IMAGE_SUFFIXES, open_source

STAGES = ("capture", "preprocess", "inference", "postprocess", "render")
MODEL_STAGES = ("preprocess", "inference", "postprocess")
HISTORY = 5000  # frames kept for the summary: bounded, so a long run does not grow
WARMUP = 3  # frames run before a benchmark's clock starts
TEXT_EVERY = 10  # frames between refreshes of the timing text drawn on the frame
PLAYBACK_FPS = 25.0  # pace of images and folders shown in a window or served
QUIT_KEYS = (27, ord("q"), ord("Q"))


@dataclass
class Options:
    """Everything the loop needs, as plain values (``__main__`` builds it from the command line)."""

    model: str
    source: str = "0"
    threads: int = 1
    mode: str = "overlay"
    size: tuple | None = None
    headless: bool = False
    output: str | None = None
    benchmark: int = 0
    compare: str | None = None
    serve: tuple | None = None
    alpha: float = 0.5
    top_k: int = 3
    loop: bool = False
    max_frames: int = 0
    retries: int = 3
    retry_delay: float = 0.5


class Timings:
    """Per-stage milliseconds of the last ``HISTORY`` frames."""

    def __init__(self, keep=HISTORY):
        self.samples = {}
        self.keep = keep

    def add(self, stage, ms):
        self.samples.setdefault(stage, deque(maxlen=self.keep)).append(ms)

    def percentile(self, q, last=None):
        pick = (lambda v: list(itertools.islice(reversed(v), last))) if last else (lambda v: v)
        return {k: float(np.percentile(pick(v), q)) for k, v in self.samples.items() if v}


def has_gui():
    """True when this OpenCV can open windows (a GUI build) and a display is there to open them on."""
    info = cv2.getBuildInformation()
    gui = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.strip().startswith("GUI:")), "")
    if not gui or gui.upper() == "NONE":
        return False
    return sys.platform != "linux" or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def rss_mb():
    """Resident memory of this process now (Linux), else its peak."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------- outputs


class VideoOutput:
    """Frames -> a video (or, for an image suffix, the last frame), written under a temporary name.

    The file is moved onto ``path`` only once it is complete and plays back: OpenCV's writers report
    no error when the disk fills, so :meth:`close` reads the file back and checks every frame decodes.
    """

    CODECS = {".avi": "MJPG", ".mkv": "mp4v", ".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v"}
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
                raise OutputFailed(f"--output {self.path}: OpenCV cannot write this video format here"
                                   f"{self._space_note()}")
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
        try:
            cv2.imwrite(str(self.temporary), self.last)
        except cv2.error:
            pass
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


# ---------------------------------------------------------------- one frame


def run_model(model, frame, timings, prefix="", top_k=3):
    """Preprocess, infer and postprocess one frame with one model, timing each stage."""
    t0 = time.perf_counter()
    tensor = preprocess(frame, model)
    t1 = time.perf_counter()
    raw = infer(model, tensor)
    t2 = time.perf_counter()
    result = postprocess(raw, model.info, top_k)
    t3 = time.perf_counter()
    for stage, ms in zip(MODEL_STAGES, np.diff([t0, t1, t2, t3]) * 1e3):
        timings.add(prefix + stage, ms)
    return result


def render_frame(frame, models, results, tables, options, text):
    """The picture for one frame: each model's panel (captioned when comparing), timing text on top."""
    panels = []
    for model, result, table, title in zip(models, results, tables, text["titles"]):
        panel = draw.render(frame, result, model.info, table, options.mode, options.alpha)
        if len(models) > 1:
            draw.draw_lines(panel, [title], origin=(4, -4))
        panels.append(panel)
    image = panels[0] if len(panels) == 1 else draw.side_by_side(panels)
    draw.draw_lines(image, text["lines"])
    return image


def frame_text(timings, models, fps):
    """Timing text for the frame and panel captions, from the recent medians."""
    recent = timings.percentile(50, last=30)
    stages = {s: recent.get(s, 0.0) for s in STAGES}
    titles = [draw.model_title(models[0].info, stages["inference"])]
    if len(models) > 1:
        titles.append(draw.model_title(models[1].info, recent.get("compare_inference", 0.0)))
    return {"lines": draw.stats_lines(fps, stages), "titles": titles}


# ---------------------------------------------------------------- the loop


def run(options, observer=None, out=sys.stdout):
    """Run the app until the source ends, ``benchmark``/``max_frames`` frames, a quit key or Ctrl-C.

    ``observer(frames, image)`` is called after every frame (tests use it). Returns the summary, with
    ``frames_lost`` and ``warning`` when a damaged video had frames that could not be decoded.
    Raises :class:`OutputFailed` when ``--output`` could not be written whole (nothing is put there).
    """
    models = [load_model(options.model, options.threads)]
    if options.compare:
        models.append(load_model(options.compare, options.threads))
    loop = options.loop or bool(options.benchmark)
    source = open_source(options.source, options.size, loop, options.retries, options.retry_delay)
    writer = window = server = None
    finished = False
    try:
        if options.output:
            writer = VideoOutput(options.output, getattr(source, "fps", 0))
        if options.serve:
            from edge_app.serve import FrameServer

            server = FrameServer(options.serve, title=Path(options.model).name).start()
            print(f"garden-edge: serving on {server.url}", file=out, flush=True)
        if not (options.headless or options.benchmark or options.serve):
            window = Window()
        stopped, timings, frames, elapsed = _loop(options, models, source, (writer, window, server), observer)
        finished = frames > 0
    finally:
        source.close()
        if window:
            window.close()
        if server:
            server.close()
        if writer:
            writer.close(keep=finished)
    result = summary(timings, frames, elapsed, models, options, stopped)
    lost = getattr(source, "lost", 0)
    if lost:
        result["frames_lost"] = lost
        result["warning"] = (f"video {options.source} is damaged: {lost} frame(s) could not be decoded "
                             f"and were skipped ({frames} processed)")
    return result


def process_frame(frame, models, tables, options, timings, text):
    """preprocess -> infer -> postprocess for each model, then render: one annotated image."""
    results = [run_model(models[0], frame, timings, top_k=options.top_k)]
    if len(models) > 1:
        results.append(run_model(models[1], frame, timings, "compare_", options.top_k))
    start = time.perf_counter()
    image = render_frame(frame, models, results, tables, options, text)
    timings.add("render", (time.perf_counter() - start) * 1e3)
    return image, results


def _loop(options, models, source, outputs, observer):
    """capture -> process -> emit until done; returns (why it stopped, timings, frames, seconds)."""
    tables = [draw.colour_table(m.info) for m in models]
    warm = WARMUP if options.benchmark else 0
    limit = options.benchmark + warm if options.benchmark else options.max_frames
    timings, frames, stopped = Timings(max(HISTORY, options.benchmark)), 0, "source ended"
    text = frame_text(timings, models, 0.0)
    started = last_text = time.perf_counter()
    # a file shown to a person plays at its own speed; cameras pace themselves, benchmarks don't wait
    showing = (outputs[1] or outputs[2]) and not getattr(source, "live", False) and not options.benchmark
    period = 1.0 / (getattr(source, "fps", 0) or PLAYBACK_FPS) if showing else 0.0
    try:
        while not limit or frames < limit:
            if warm and frames == warm:
                timings, started = Timings(max(HISTORY, options.benchmark)), time.perf_counter()
            t0 = time.perf_counter()
            frame = source.read()
            if frame is None:
                break
            timings.add("capture", (time.perf_counter() - t0) * 1e3)
            image, results = process_frame(frame, models, tables, options, timings, text)
            frames += 1
            if frames % TEXT_EVERY == 0:
                now = time.perf_counter()
                text = frame_text(timings, models, TEXT_EVERY / max(now - last_text, 1e-9))
                last_text = now
            t5 = time.perf_counter()
            keep_going = _emit(image, outputs, timings, frames, started, results[0], models[0].info)
            timings.add("output", (time.perf_counter() - t5) * 1e3)
            timings.add("total", (time.perf_counter() - t0) * 1e3)
            if observer:
                observer(frames, image)
            if period:
                time.sleep(max(0.0, period - (time.perf_counter() - t0)))
            if not keep_going:
                stopped = "quit key"
                break
        else:
            stopped = f"{limit - warm} frames"
    except KeyboardInterrupt:
        stopped = "interrupted"
    except SourceLost as error:
        stopped = f"lost: {error}"
    return stopped, timings, max(frames - warm, 0), time.perf_counter() - started


def _emit(image, outputs, timings, frames, started, result, info):
    """Write, serve and show one annotated image; False when the window's quit key was pressed."""
    writer, window, server = outputs
    if writer:
        writer.write(image)
    if server:
        if frames <= TEXT_EVERY or frames % TEXT_EVERY == 0:
            elapsed = max(time.perf_counter() - started, 1e-9)
            stats = {"fps": frames / elapsed, "frames": frames, "stages": timings.percentile(50, last=100),
                     "result": describe(result, info)}
        else:
            stats = server.stats
        server.publish(image, stats)
    if window:
        return window.show(image)
    return True


def describe(result, info):
    """A result as JSON-ready data: classes present by area, or the top-k."""
    if isinstance(result, Classification):
        return {"top": [[info.class_names[c], round(p, 4)] for c, p in result.top]}
    return {"classes": [[info.class_names[c], round(f, 4)] for c, f in result.areas]}


def summary(timings, frames, elapsed, models, options, stopped):
    """The run as a dict: fps, per-stage medians (ms) under the stage names, p90s, model facts."""
    medians, p90 = timings.percentile(50), timings.percentile(90)
    result = {
        "fps": round(frames / elapsed, 2) if frames and elapsed > 0 else 0.0,
        "frames": frames,
        **{s: round(medians.get(s, 0.0), 3) for s in STAGES},
        "total": round(medians.get("total", 0.0), 3),
        "output": round(medians.get("output", 0.0), 3),
        "p90": {s: round(v, 3) for s, v in p90.items() if not s.startswith("compare_")},
        "threads": options.threads,
        "model": _model_facts(models[0].info),
        "stopped": stopped,
        "rss_mb": round(rss_mb(), 1),
    }
    if stopped.startswith("lost: "):
        result["error"] = stopped[len("lost: "):]
    if len(models) > 1:
        result["compare"] = {
            **{s: round(medians.get("compare_" + s, 0.0), 3) for s in MODEL_STAGES},
            "p90": {s: round(p90.get("compare_" + s, 0.0), 3) for s in MODEL_STAGES},
            "model": _model_facts(models[1].info),
        }
    return result


def _model_facts(info):
    return {
        "name": info.name,
        "path": info.path,
        "task": info.task,
        "input": [info.height, info.width, info.channels],
        "input_dtype": info.input_dtype,
        "quantization": info.quantization,
        "output": info.output_kind,
        "num_classes": info.num_classes,
        "macs": info.macs,
    }


def format_summary(result):
    """The summary as a small text table: median and p90 per stage, FPS, and the comparison."""
    lines = [f"garden-edge: {result['frames']} frames, {result['fps']:.1f} FPS ({result['stopped']}), "
             f"{result['threads']} thread(s), model {result['model']['name']} [{result['model']['quantization']}]"]
    lines.append(f"{'stage':<12} {'median ms':>10} {'p90 ms':>10} {'share':>7}")
    total = result["total"] or sum(result[s] for s in STAGES) or 1.0
    for stage in STAGES + ("output", "total"):
        share = f"{100 * result[stage] / total:6.1f}%" if stage != "total" else ""
        lines.append(f"{stage:<12} {result[stage]:>10.2f} {result['p90'].get(stage, 0.0):>10.2f} {share:>7}")
    if "compare" in result:
        c, a, b = result["compare"], result["model"], result["compare"]["model"]
        lines.append("")
        lines.append(f"{'model':<34} {'inference ms':>12} {'GMACs':>8}")
        for facts, ms in ((a, result["inference"]), (b, c["inference"])):
            macs = f"{facts['macs'] / 1e9:.3f}" if facts["macs"] else "n/a"
            lines.append(f"{Path(facts['path']).stem[:34]:<34} {ms:>12.2f} {macs:>8}")
    return "\n".join(lines)
