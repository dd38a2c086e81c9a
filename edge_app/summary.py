"""What a run reports: the end-of-run summary (a dict, printed as a table or with ``--json`` as one
JSON line), the live numbers the ``--serve`` page shows, and a result as JSON-ready data."""

import os
from pathlib import Path
from typing import NamedTuple

from edge_app.postprocess import Classification
from edge_app.timings import MODEL_STAGES, STAGES, Timings


class Finished(NamedTuple):
    """How the loop ended: what the summary is made of."""

    stopped: str  # why: "source ended", "N frames", "quit key", "interrupted" or "lost: reason"
    timings: Timings
    frames: int  # frames processed, not counting a benchmark's warm-up
    seconds: float  # wall-clock time of those frames
    last: object = None  # the main model's result on the last frame
    dropped: int | None = None  # stale frames of a live source the pipelined loop dropped; None for other runs


def rss_mb():
    """Resident memory of this process now (Linux), else its peak."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def describe(result, info):
    """A result as JSON-ready data: classes present by area, or the top-k."""
    if isinstance(result, Classification):
        return {"top": [[info.class_names[c], round(p, 4)] for c, p in result.top]}
    classes = {"classes": [[info.class_names[c], round(f, 4)] for c, f in result.areas]}
    return {"foreground": round(result.foreground, 4), **classes} if info.output_kind == "binary" else classes


def live_stats(frames, seconds, timings, result, info):
    """The numbers the ``--serve`` page shows: FPS so far, recent per-stage medians, the main model's result."""
    return {
        "fps": frames / max(seconds, 1e-9),
        "frames": frames,
        "stages": timings.percentile(50, last=100),
        "result": describe(result, info),
    }


def summary(finished, models, options, lost=0):
    """The run as a dict: fps, per-stage medians (ms) under the stage names, p90s, model facts.

    ``lost`` frames of a damaged video add ``frames_lost`` and a ``warning``; a lost camera adds ``error``.
    """
    timings = finished.timings
    medians, p90, p95 = (timings.percentile(q) for q in (50, 90, 95))
    frames, seconds, stopped = finished.frames, finished.seconds, finished.stopped
    result = {
        "fps": round(frames / seconds, 2) if frames and seconds > 0 else 0.0,
        "frames": frames,
        **{s: round(medians.get(s, 0.0), 3) for s in (*STAGES, "total", "output")},
        "p90": {s: round(v, 3) for s, v in p90.items() if not s.startswith("compare_")},
        "latency": {"median": round(medians.get("total", 0.0), 3), "p95": round(p95.get("total", 0.0), 3)},
        "loop": "sequential" if options.sequential else "pipelined",
        "threads": options.threads,
        "model": _model_facts(models[0].info),
        "stopped": stopped,
        "rss_mb": round(rss_mb(), 1),
    }
    if finished.last is not None:
        result["result"] = describe(finished.last, models[0].info)
    if stopped.startswith("lost: "):
        result["error"] = stopped[len("lost: ") :]
    if len(models) > 1:
        result["compare"] = {
            **{s: round(medians.get("compare_" + s, 0.0), 3) for s in MODEL_STAGES},
            "p90": {s: round(p90.get("compare_" + s, 0.0), 3) for s in MODEL_STAGES},
            "model": _model_facts(models[1].info),
        }
    if finished.dropped is not None:
        result["frames_dropped"] = finished.dropped
    if lost:
        result["frames_lost"] = lost
        result["warning"] = (
            f"video {options.source} is damaged: {lost} frame(s) could not be decoded "
            f"and were skipped ({frames} processed)"
        )
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
        "output_name": info.output_name,
        "num_classes": info.num_classes,
        "labels": info.labels_from,
        "runtime": info.runtime,
        "macs": info.macs,
    }


def format_summary(result):
    """The summary as a small text table: median and p90 per stage, FPS, and the comparison."""
    model = result["model"]
    lines = [
        (
            f"garden-edge: {result['frames']} frames, {result['fps']:.1f} FPS ({result['stopped']}), "
            f"{result['threads']} thread(s), model {model['name']} [{model['quantization']}]"
        ),
        _latency_text(result),
        *([f"result: {_result_text(result['result'])}"] if "result" in result else []),
        f"{'stage':<12} {'median ms':>10} {'p90 ms':>10} {'share':>7}",
    ]
    total = result["total"] or sum(result[s] for s in STAGES) or 1.0
    for stage in (*STAGES, "output", "total"):
        share = f"{100 * result[stage] / total:6.1f}%" if stage != "total" else ""
        lines.append(f"{stage:<12} {result[stage]:>10.2f} {result['p90'].get(stage, 0.0):>10.2f} {share:>7}")
    if "compare" in result:
        compare = result["compare"]
        lines += ["", f"{'model':<34} {'inference ms':>12} {'GMACs':>8}"]
        for facts, ms in ((model, result["inference"]), (compare["model"], compare["inference"])):
            macs = f"{facts['macs'] / 1e9:.3f}" if facts["macs"] else "n/a"
            lines.append(f"{Path(facts['path']).stem[:34]:<34} {ms:>12.2f} {macs:>8}")
    return "\n".join(lines)


def _latency_text(result):
    """The loop and each frame's latency, capture to display (and the stale frames a live source dropped)."""
    latency = result["latency"]
    dropped = f", {result['frames_dropped']} stale frame(s) dropped" if "frames_dropped" in result else ""
    return (
        f"{result['loop']} loop: latency (capture to display) median {latency['median']:.2f} ms, "
        f"p95 {latency['p95']:.2f} ms{dropped}"
    )


def _result_text(described):
    """The last frame's result in words: top-k, or the classes by area (and the foreground share)."""
    pairs = described.get("top") or described.get("classes") or []
    text = ", ".join(f"{name} {100 * share:.1f}%" for name, share in pairs[:5])
    return f"foreground {100 * described['foreground']:.1f}% ({text})" if "foreground" in described else text
