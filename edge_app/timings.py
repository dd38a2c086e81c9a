"""Per-stage milliseconds: the stage names, and the bounded record the loop keeps of them."""

import itertools
import time
from collections import deque

import numpy as np

STAGES = ("capture", "preprocess", "inference", "postprocess", "render")
MODEL_STAGES = ("preprocess", "inference", "postprocess")
HISTORY = 5000  # frames kept for the summary: bounded, so a long run does not grow


def ms_since(start):
    """Milliseconds from ``start`` (a ``time.perf_counter()`` reading) to now."""
    return (time.perf_counter() - start) * 1e3


def timed(record, stage, function, *args):
    """``function(*args)``, its milliseconds added to ``record`` (anything with ``add(stage, ms)``) as ``stage``."""
    start = time.perf_counter()
    value = function(*args)
    record.add(stage, ms_since(start))
    return value


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
