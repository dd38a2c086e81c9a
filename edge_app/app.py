"""The loop: capture -> preprocess -> infer -> postprocess -> render -> output, timed per stage.

By default the stages are pipelined (:mod:`edge_app.stages`): capture and preprocess of the next frame,
and postprocess, render and output of the previous one, run while a frame is in inference, so the
frame rate is bound by inference alone. ``--sequential`` runs one frame at a time through every stage
on one thread, where each stage's time is its own. Where the frames go is :mod:`edge_app.outputs`;
what the run reports, :mod:`edge_app.summary`.
"""

import sys
import time
from dataclasses import dataclass, field
from functools import partial
from typing import NamedTuple

import cv2
import numpy as np

from edge_app import render as draw
from edge_app.errors import EdgeError, SourceLost
from edge_app.heap import keep_freed_memory
from edge_app.model import Overrides, infer, load_model, preprocess
from edge_app.outputs import Outputs
from edge_app.postprocess import postprocess
from edge_app.serve import MAX_CLIENTS
from edge_app.sources import open_source
from edge_app.stages import StagePipeline
from edge_app.summary import Finished, live_stats, summary
from edge_app.timings import HISTORY, STAGES, Timings, ms_since, timed

WARMUP = 3  # frames run before a benchmark's clock starts
TEXT_EVERY = 10  # frames between refreshes of the timing text drawn on the frame
PLAYBACK_FPS = 25.0  # pace of images and folders shown in a window or served
PREFIXES = ("", "compare_")  # timing names of the main model's stages and of the --compare model's


@dataclass
class Options:
    """Everything the loop needs, as plain values (``__main__`` builds it from the command line)."""

    model: str
    source: str = "0"
    threads: int = 1
    mode: str = "overlay"  # one of render.MODES
    background: str | None = None  # the image behind the foreground in mode replace
    threshold: float = 0.5  # foreground probability of a binary model
    labels: str | None = None  # class names, one a line (main model)
    mean: tuple | None = None  # input normalisation in pixel units (main model)
    std: tuple | None = None
    runtime: str | None = None  # compiled or interpreter; None: compiled where LiteRT has it
    size: tuple | None = None
    headless: bool = False
    output: str | None = None
    benchmark: int = 0
    compare: str | None = None
    serve: tuple | None = None  # (host, port)
    token: str | None = None  # asked of every --serve request; None: a random one off loopback
    no_auth: bool = False  # serve off loopback without a token
    max_clients: int = MAX_CLIENTS  # --serve connections at once (the rest get 503)
    alpha: float = 0.5
    top_k: int = 3
    loop: bool = False
    max_frames: int = 0
    retries: int = 3
    retry_delay: float = 0.5
    sequential: bool = False  # one frame at a time through every stage, on one thread


class Caption(NamedTuple):
    """The text drawn on every frame, refreshed every ``TEXT_EVERY`` frames."""

    lines: list  # FPS and the recent per-stage medians, top-left
    titles: list  # one caption per model panel (drawn when comparing)


@dataclass
class Frame:
    """One captured frame on its way through the stages, and what they have made of it so far."""

    image: np.ndarray  # the captured BGR picture
    started: float  # time.perf_counter() when its capture began: its latency runs from here to display
    times: dict = field(default_factory=dict)  # stage -> ms, until they join the run's timings at display
    tensors: list = field(default_factory=list)  # each model's input
    raws: list = field(default_factory=list)  # each model's chosen output

    def add(self, stage, ms):
        self.times[stage] = ms


class Processed(NamedTuple):
    """One frame through the models and the renderer."""

    image: np.ndarray  # the annotated picture
    results: list  # a Segmentation or Classification per model, the main model's first

    @property
    def main(self):
        """The main model's result (the one the served page describes)."""
        return self.results[0]


@dataclass(frozen=True)
class Pipeline:
    """The models and how to draw them: what turns one captured frame into one annotated image."""

    models: list  # the main model, then the --compare one
    tables: list  # each model's colour table
    options: Options
    background: np.ndarray | None = None  # the picture of mode replace

    @property
    def main(self):
        return self.models[0]

    @classmethod
    def load(cls, options):
        """Load the models (the main one with the command line's labels, normalisation and runtime)."""
        background = _background(options)
        overrides = Overrides(options.labels, options.mean, options.std, options.runtime)
        models = [load_model(options.model, options.threads, overrides)]
        if options.compare:
            try:
                models.append(load_model(options.compare, options.threads, Overrides(runtime=options.runtime)))
            except EdgeError:
                models[0].close()  # now, while LiteRT's goodbye on stderr is filtered
                raise
        pipeline = cls(models, [draw.colour_table(m.info) for m in models], options, background)
        for model in models:
            if options.mode in draw.BACKGROUND_MODES and model.info.task != "segmentation":
                pipeline.close()
                raise EdgeError(f"--mode {options.mode} needs a segmentation model; {model.info.path} is a classifier")
        return pipeline

    def close(self):
        for model in self.models:
            model.close()

    def prepare(self, frame):
        """The stage after capture: ``frame`` preprocessed for each model."""
        named = zip(self.models, PREFIXES)
        frame.tensors = [timed(frame, prefix + "preprocess", preprocess, frame.image, model) for model, prefix in named]
        return frame

    def run_models(self, frame):
        """The inference stage: each model run on ``frame``'s tensors."""
        named = zip(self.models, frame.tensors, PREFIXES)
        frame.raws = [timed(frame, prefix + "inference", infer, model, tensor) for model, tensor, prefix in named]
        return frame

    def finish(self, frame, timings, caption, fps=None):
        """postprocess each model's output, then render: one annotated image (the times go to ``timings``).

        Without a ``caption`` (the first frames) the text shows this frame's own times and ``fps``.
        """
        top_k, threshold = self.options.top_k, self.options.threshold
        results = [
            timed(timings, prefix + "postprocess", postprocess, raw, model.info, top_k, threshold)
            for model, raw, prefix in zip(self.models, frame.raws, PREFIXES)
        ]
        start = time.perf_counter()
        panels = [
            draw.render(frame.image, result, model.info, table, self.options.mode, self.options.alpha, self.background)
            for model, result, table in zip(self.models, results, self.tables)
        ]
        caption = caption or self.caption(timings, fps, render_ms=ms_since(start), latency_ms=ms_since(frame.started))
        image = self._compose(panels, caption)
        timings.add("render", ms_since(start))
        return Processed(image, results)

    def caption(self, timings, fps=None, render_ms=None, latency_ms=None):
        """Timing text for the frame and panel captions, from the recent medians.

        ``render_ms`` and ``latency_ms`` stand in for times not yet recorded (the first frame's); without
        ``fps`` the rate is the one the stages' times allow.
        """
        recent = timings.percentile(50, last=30)
        if render_ms is not None:
            recent.setdefault("render", render_ms)
        stages = {s: recent.get(s, 0.0) for s in STAGES}
        if fps is None:
            fps = 1e3 / max(sum(stages.values()), 1e-6) if any(stages.values()) else 0.0
        latency = recent.get("total", latency_ms or 0.0)
        titles = [draw.model_title(m.info, recent.get(p + "inference", 0.0)) for m, p in zip(self.models, PREFIXES)]
        return Caption(draw.stats_lines(fps, stages, latency_ms=latency), titles)

    def _compose(self, panels, caption):
        """The picture for one frame: the timing text top-left; when comparing, each panel's title top-left
        beside its own legend (top-right) and the timing text at the bottom, where it hides no legend."""
        if len(panels) == 1:
            draw.draw_lines(panels[0], caption.lines)
            return panels[0]
        for panel, title in zip(panels, caption.titles):
            draw.draw_lines(panel, [title])
        image = draw.side_by_side(panels)
        draw.draw_lines(image, caption.lines, origin=(4, -4))
        return image


def _background(options):
    """The picture of ``--mode replace=IMAGE``, read once (None in other modes)."""
    if options.mode != "replace":
        return None
    if not options.background:
        raise EdgeError("--mode replace needs an image: --mode replace=IMAGE")
    picture = cv2.imread(str(options.background), cv2.IMREAD_COLOR)
    if picture is None:
        raise EdgeError(f"--mode replace={options.background}: not a readable image")
    return picture


@dataclass
class Progress:
    """The loop's running state: frames so far, their timings since the clock started, the caption drawn."""

    keep: int  # frames of timings kept
    caption: Caption | None = None  # None until TEXT_EVERY frames are done: each frame then shows its own times
    frames: int = 0  # frames processed, a benchmark's warm-up included
    last: object = None  # the main model's result on the latest frame
    dropped: int | None = None  # stale frames a live source's pipelined loop dropped (None: none may be)
    shown_at: float = 0.0  # when the latest frame was shown, for pacing a file shown to a person
    timings: Timings = field(init=False)
    started: float = field(init=False)  # when the clock started (again after a benchmark's warm-up)
    caption_at: float = field(init=False)  # when the caption was last refreshed

    def __post_init__(self):
        self.timings = Timings(self.keep)
        self.started = self.caption_at = time.perf_counter()

    def restart_clock(self):
        self.timings, self.started = Timings(self.keep), time.perf_counter()

    def live_stats(self, result, info):
        """The served page's numbers now: FPS since the clock started, recent medians, ``result``."""
        return live_stats(self.frames, time.perf_counter() - self.started, self.timings, result, info)

    def fps(self):
        """Frames a second since the caption was last refreshed (the loop's start, for the first frames drawn
        without one); None before the first frame is done."""
        return self.frames / max(time.perf_counter() - self.caption_at, 1e-9) if self.frames else None

    def count(self, pipeline, result):
        """One more frame done; every ``TEXT_EVERY`` frames the caption is redrawn with the FPS since the last."""
        self.frames += 1
        self.last = result
        if self.frames % TEXT_EVERY == 0:
            now = time.perf_counter()
            self.caption = pipeline.caption(self.timings, TEXT_EVERY / max(now - self.caption_at, 1e-9))
            self.caption_at = now


# ---------------------------------------------------------------- the loop


def run(options, observer=None, out=sys.stdout):
    """Run the app until the source ends, ``benchmark``/``max_frames`` frames, a quit key or Ctrl-C.

    ``observer(frames, image)`` is called after every frame (tests use it). Returns the summary, with
    ``frames_lost`` and ``warning`` when a damaged video had frames that could not be decoded.
    Raises :class:`OutputFailed` when ``--output`` could not be written whole (nothing is put there).
    """
    keep_freed_memory()
    pipeline = Pipeline.load(options)
    try:
        for model in pipeline.models:
            for note in model.info.notes:
                print(f"garden-edge: note: {note}", file=sys.stderr, flush=True)
        loop = options.loop or bool(options.benchmark)
        source = open_source(options.source, options.size, loop, options.retries, options.retry_delay)
        outputs, finished = Outputs(), None
        try:
            outputs.open(options, getattr(source, "fps", 0), out)
            finished = _loop(options, pipeline, source, outputs, observer)
        finally:
            source.close()
            outputs.close(keep=finished is not None and finished.frames > 0)
    finally:
        pipeline.close()
    return summary(finished, pipeline.models, options, lost=getattr(source, "lost", 0))


def _loop(options, pipeline, source, outputs, observer):
    """Frames through the stages until done, pipelined or (``--sequential``) one at a time; how it finished."""
    warm = WARMUP if options.benchmark else 0
    limit = options.benchmark + warm if options.benchmark else options.max_frames
    progress = Progress(max(HISTORY, options.benchmark))
    live = getattr(source, "live", False) and not options.sequential  # frames may be dropped
    capture = _capturer(pipeline, source, 0 if live else limit)
    show = partial(_show, pipeline, outputs, progress, observer, _frame_period(options, source, outputs), warm, limit)
    try:
        if options.sequential:
            stopped = _sequential(pipeline, capture, show)
        else:
            stopped = _pipelined(pipeline, capture, show, progress, live)
    except KeyboardInterrupt:
        stopped = "interrupted"
    except SourceLost as error:
        stopped = f"lost: {error}"
    seconds = time.perf_counter() - progress.started
    frames = max(progress.frames - warm, 0)
    return Finished(stopped, progress.timings, frames, seconds, progress.last, progress.dropped)


def _sequential(pipeline, capture, show):
    """One frame at a time through every stage on this thread; why it stopped."""
    while (frame := capture()) is not None:
        if stopped := show(pipeline.run_models(frame)):
            return stopped
    return "source ended"


def _pipelined(pipeline, capture, show, progress, live):
    """Capture + preprocess and inference on threads of their own, postprocess + render + output here, all
    at once on consecutive frames; why it stopped.

    A file's frames all come, in order; a live source keeps only the newest frame waiting for inference
    (the older ones are dropped, counted in ``progress.dropped``).
    """
    stages = StagePipeline(capture, pipeline.run_models, latest_only=live, name="garden-edge")
    try:
        with stages:
            for frame in stages:
                if stopped := show(frame):
                    return stopped
        return "source ended"
    finally:
        progress.dropped = stages.dropped if live else None


def _capturer(pipeline, source, limit):
    """The first stage: read the next frame and preprocess it; None at the source's end or after ``limit``
    frames (0: no limit)."""
    read = 0

    def capture():
        nonlocal read
        if limit and read >= limit:
            return None
        start = time.perf_counter()
        image = source.read()
        if image is None:
            return None
        read += 1
        frame = Frame(image, start)
        frame.add("capture", ms_since(start))
        return pipeline.prepare(frame)

    return capture


def _show(pipeline, outputs, progress, observer, period, warm, limit, frame):
    """The last stage: postprocess, render and emit ``frame``; why the run stops here (the window's quit key,
    ``limit`` frames done), or None."""
    if warm and progress.frames == warm:
        progress.restart_clock()
    timings = progress.timings
    for stage, ms in frame.times.items():
        timings.add(stage, ms)
    done = pipeline.finish(frame, timings, progress.caption, progress.fps())
    progress.count(pipeline, done.main)
    emitting = time.perf_counter()
    keep_going = outputs.emit(done.image, progress.frames, lambda: progress.live_stats(done.main, pipeline.main.info))
    timings.add("output", ms_since(emitting))
    timings.add("total", ms_since(frame.started))
    if observer:
        observer(progress.frames, done.image)
    if period:
        time.sleep(max(0.0, progress.shown_at + period - time.perf_counter()))
        progress.shown_at = time.perf_counter()
    if not keep_going:
        return "quit key"
    return f"{limit - warm} frames" if limit and progress.frames >= limit else None


def _frame_period(options, source, outputs):
    """Seconds a frame: a file shown to a person plays at its own speed; cameras pace themselves and
    benchmarks don't wait (0)."""
    if not outputs.watched or getattr(source, "live", False) or options.benchmark:
        return 0.0
    return 1.0 / (getattr(source, "fps", 0) or PLAYBACK_FPS)
