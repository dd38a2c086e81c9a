"""Run an exported file and compare it with the Keras model it came from.

Every export is checked by running the file it wrote: in LiteRT (``ai_edge_litert``) for
``.tflite`` and onnxruntime for ``.onnx``, on the ``--check`` data. Classifiers: top-1 accuracy
of both and their top-1 agreement. Segmenters: mean IoU of both (``garden.segmentation.metrics``:
label 255 ignored, classes absent from truth and prediction not counted) and pixel agreement.
Both: the largest and mean absolute difference of the outputs (after dequantization).
"""

import os
import time
from pathlib import Path

import numpy as np

from garden.console import progress
from garden.data import IGNORE_LABEL
from garden.errors import GardenError


class Runner:
    """An exported file that ``run`` feeds float inputs in [0, 1], one at a time; float or class outputs back."""

    def run(self, inputs, label="checking the file"):
        return np.concatenate([self.dequantize(self.invoke(self.feed(x[None]))) for x in progress(inputs, label)])


class LiteRTRunner(Runner):
    """A ``.tflite`` file in LiteRT."""

    def __init__(self, path, num_threads=1):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]

    @property
    def input_dtype(self):
        return np.dtype(self.input["dtype"])

    def feed(self, x):
        """Quantize a float [0, 1] batch-1 input when the file takes integers."""
        dtype = self.input_dtype
        if dtype.kind in "iu":
            scale, zero = self.input["quantization"]
            info = np.iinfo(dtype)
            x = np.clip(np.round(x / scale + zero), info.min, info.max)
        return x.astype(dtype)

    def invoke(self, fed):
        self.interpreter.set_tensor(self.input["index"], fed)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output["index"])

    def dequantize(self, y):
        scale, zero = self.output["quantization"]
        if np.dtype(self.output["dtype"]).kind in "iu" and scale:
            return (y.astype("float32") - zero) * scale
        return y


class OnnxRunner(Runner):
    """An ``.onnx`` file in onnxruntime on the CPU, with the same interface as ``LiteRTRunner``."""

    def __init__(self, path, num_threads=1):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0]
        self.output_name = self.session.get_outputs()[0].name

    @property
    def input_dtype(self):
        return np.dtype({"tensor(uint8)": "uint8", "tensor(float16)": "float16"}.get(self.input.type, "float32"))

    def feed(self, x):
        if self.input_dtype == np.uint8:
            return np.clip(np.round(x * 255.0), 0, 255).astype("uint8")
        return x.astype(self.input_dtype)

    def invoke(self, fed):
        return self.session.run([self.output_name], {self.input.name: fed})[0]

    def dequantize(self, y):
        return y.astype("float32") if y.dtype == np.float16 else y


def open_runner(path, num_threads=1):
    """The runner for a ``.tflite`` or ``.onnx`` file."""
    suffix = Path(path).suffix
    return (LiteRTRunner if suffix == ".tflite" else OnnxRunner)(path, num_threads)


def all_threads():
    return os.cpu_count() or 1


def latency(runner, input_shape, repeats=30, warmup=3):
    """Median and 90th percentile of one batch-1 inference, in milliseconds."""
    fed = runner.feed(np.random.default_rng(0).random((1, *input_shape), dtype="float32"))
    with progress(label="measuring latency", total=warmup + repeats) as shown:
        for _ in range(warmup):
            runner.invoke(fed)
            shown.advance()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            runner.invoke(fed)
            times.append((time.perf_counter() - start) * 1000.0)
            shown.advance()
    return {"median_ms": float(np.median(times)), "p90_ms": float(np.percentile(times, 90))}


def interleaved_latency(runners, rounds=20, per_round=5):
    """Median milliseconds of one batch-1 inference of each ``(runner, input_shape)``, interleaved.

    Each round runs every runner ``per_round`` times in turn, so a load that drifts (a shared
    machine) slows all of them alike and their ratios hold.
    """
    fed = [runner.feed(np.random.default_rng(0).random((1, *shape), dtype="float32")) for runner, shape in runners]
    for (runner, _), x in zip(runners, fed):
        runner.invoke(x)
    times = [[] for _ in runners]
    for _ in range(rounds):
        for (runner, _), x, record in zip(runners, fed, times):
            start = time.perf_counter()
            for _ in range(per_round):
                runner.invoke(x)
            record.append((time.perf_counter() - start) * 1000.0 / per_round)
    return [float(np.median(record)) for record in times]


# ---------------------------------------------------------------- metrics


def mean_iou(predicted, masks, num_classes):
    """Mean IoU of class maps against masks: ``garden.segmentation.metrics`` (label 255 ignored).

    Classes absent from both truth and prediction do not count; a true label outside
    ``0..num_classes-1`` (255 aside) is a ``ValueError``; NaN when no pixel is labelled
    (``deploy.export.prepare`` refuses such check data before any work).
    """
    from garden.segmentation import metrics

    return metrics.mean_iou(metrics.confusion_matrix(masks, predicted, num_classes))


def class_of(outputs, output_kind):
    return outputs.astype("int64") if output_kind == "class_map" else np.argmax(outputs, axis=-1)


def compare(reference, artifact, targets, *, task, output_kind, num_classes):
    """The check numbers: quality of both (points, 0-100), drop, agreement and output differences.

    ``reference`` is the Keras model's logits; ``artifact`` the file's logits or class map.
    ``targets`` None (unlabelled check data): no quality, agreement and differences only.
    """
    ref_class = np.argmax(reference, axis=-1)
    art_class = class_of(artifact, output_kind)
    metric = "mean_iou" if task == "segmentation" else "accuracy"
    if targets is None:
        float_quality = quality = None
    elif task == "segmentation":
        float_quality = mean_iou(ref_class, targets, num_classes)
        quality = mean_iou(art_class, targets, num_classes)
    else:
        float_quality = float(np.mean(ref_class == targets))
        quality = float(np.mean(art_class == targets))
    points = lambda value: None if value is None else round(100 * value, 3)  # noqa: E731
    result = {
        "metric": metric,
        "float": points(float_quality),
        "artifact": points(quality),
        "drop": None if quality is None else points(float_quality - quality),
        "agreement": round(100 * agreement(reference, art_class), 3),
        "examples": len(reference),
    }
    if output_kind == "logits":
        difference = np.abs(reference.astype("float64") - artifact.astype("float64"))
        result["max_abs_diff"] = float(difference.max())
        result["mean_abs_diff"] = float(difference.mean())
        # relative to the spread of the model's own outputs: 3e-11 is everything when the logits span 1e-10
        spread = float(np.ptp(reference)) if reference.size else 0.0
        result["output_range"] = spread
        result["max_rel_diff"] = float(difference.max() / spread) if spread > 0 else float("inf")
    return result


def agreement(reference, predicted, tolerance=1e-5):
    """The fraction of predictions that are a top-1 of ``reference``, ties within ``tolerance`` included.

    ``tolerance`` is relative to the spread of the reference's scores: classes whose scores differ by
    less (an untrained model, or a softmax near uniform) are both its top-1, so a file equal to the
    model to rounding is in full agreement whichever of them its argmax picks.
    """
    reference = np.asarray(reference, dtype="float64")
    picked = np.take_along_axis(reference, np.asarray(predicted)[..., None].astype("int64"), axis=-1)[..., 0]
    spread = float(np.ptp(reference)) if reference.size else 0.0
    return float(np.mean(picked >= reference.max(axis=-1) - tolerance * max(spread, 1e-30)))


def check_masks(masks, num_classes, source):
    """Refuse masks the metrics cannot score: labels beyond the model's classes, or no labelled pixel."""
    labelled = np.asarray(masks)[np.asarray(masks) != IGNORE_LABEL]
    if labelled.size == 0:
        raise GardenError(f"data source {source!r} has no labelled pixel (every mask pixel is {IGNORE_LABEL})")
    top = int(labelled.max())
    if top >= num_classes:
        raise GardenError(
            f"data source {source!r} has mask label {top}, but the model has {num_classes} classes "
            f"(0..{num_classes - 1}; {IGNORE_LABEL} = ignore)"
        )
