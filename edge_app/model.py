"""A ``.tflite`` model as the app sees it: what it takes, what it returns, how to feed it fast.

Everything is read from the file itself (input size, layout, dtype, quantization, output shape);
the metadata sidecar beside it (docs/sidecar.md) adds labels, colours, input normalisation and
multiply-adds, and the app works without it.
"""

import math
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from edge_app.errors import EdgeError
from edge_app.metadata import label_lines, packed_labels, read_metadata
from edge_app.runtime import open_interpreter, open_runner
from edge_app.sidecar import read_sidecar

_IMAGE_DTYPES = {np.dtype(np.float32): "float32", np.dtype(np.uint8): "uint8", np.dtype(np.int8): "int8"}
_MIN_TFLITE_BYTES = 16
_EMBEDDING_OPS = ("L2_NORMALIZATION", "MEAN", "AVERAGE_POOL_2D", "MAX_POOL_2D", "SUM", "REDUCE_MAX")
_PASS_THROUGH_OPS = ("RESHAPE", "SQUEEZE", "QUANTIZE", "DEQUANTIZE")


@dataclass(frozen=True)
class ModelInfo:
    """What one model expects and returns; ``task`` is ``segmentation`` or ``classification``."""

    path: str
    name: str
    height: int
    width: int
    channels: int
    layout: str  # NHWC or NCHW
    input_dtype: str  # float32, uint8, int8
    input_quant: tuple  # (scale, zero_point); (0.0, 0) for float
    task: str
    output_kind: str  # logits, class_map, binary or scores
    num_classes: int
    output_quant: tuple
    class_names: tuple
    colors: tuple  # RGB triples, one per class
    pixel_scale: float = 1.0 / 255.0
    mean: tuple = (0.0, 0.0, 0.0)
    std: tuple = (1.0, 1.0, 1.0)
    macs: int | None = None
    params: int | None = None
    quantization: str = ""
    output_layout: str = "NHWC"  # of a segmentation map: NHWC (1xHxWxK) or NCHW (1xKxHxW)
    output_name: str = ""
    probability: bool | None = None  # of a binary map: True sigmoid/probability, False logits, None per frame
    runtime: str = "interpreter"
    labels_from: str = ""  # --labels FILE, packed NAME, sidecar, or "" (class N)
    notes: tuple = ()  # one-line remarks for the user: which output is used, what normalisation is assumed
    sidecar: dict = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Overrides:
    """What the command line sets over the file's own facts: label file, normalisation, runtime."""

    labels: str | None = None  # a text file, one class name a line
    mean: tuple | None = None  # pixel units, 0-255
    std: tuple | None = None
    runtime: str | None = None  # compiled, interpreter, or None: compiled where LiteRT has it


@dataclass
class Model:
    """A model ready to run: its :class:`ModelInfo`, the runner that infers, the table that feeds it."""

    info: ModelInfo
    runner: object  # edge_app.runtime.CompiledRunner or InterpreterRunner
    input_lut: np.ndarray  # 1 x 256 x C: pixel value -> model input value, per channel

    def close(self):
        self.runner.close()


# ---------------------------------------------------------------- loading


def load_model(path, threads=1, overrides=None):
    """Open ``path`` with LiteRT and read its contract; raise :class:`EdgeError` if it can't be fed or drawn."""
    path, overrides = Path(path), overrides or Overrides()
    _check_tflite_file(path)
    interpreter = open_interpreter(path, threads)
    sidecar = read_sidecar(path)
    inp = _single_input(interpreter, path)
    image = _image_shape(inp, sidecar, path, interpreter)
    chosen = choose_output(interpreter, image, path)
    _check_sidecar_task(chosen, sidecar, path)
    metadata = read_metadata(path)
    info = _build_info(path, sidecar, metadata, overrides, inp, image, chosen)
    runner = open_runner(path, threads, overrides.runtime, interpreter, inp, chosen.detail)
    return Model(replace(info, runtime=runner.name), runner, input_lut(info))


def _check_tflite_file(path):
    if path.is_dir():
        raise EdgeError(f"model file {path} is a folder; give the .tflite file in it")
    if not path.is_file():
        raise EdgeError(f"model file {path} does not exist")
    try:
        with open(path, "rb") as file:
            head = file.read(8) if path.stat().st_size >= _MIN_TFLITE_BYTES else b""
    except OSError as error:
        raise EdgeError(f"model file {path} cannot be read ({error.strerror or error})") from None
    if head[4:8] != b"TFL3":
        raise EdgeError(f"{path} is not a TFLite model (no TFL3 file identifier; {path.stat().st_size} bytes)")


def _single_input(interpreter, path):
    inputs = interpreter.get_input_details()
    if len(inputs) != 1:
        raise EdgeError(f"{path} has {len(inputs)} inputs; the app feeds models with one image input")
    if np.dtype(inputs[0]["dtype"]) not in _IMAGE_DTYPES:
        kind = np.dtype(inputs[0]["dtype"]).name
        raise EdgeError(f"{path} takes {kind} input; the app feeds float32, uint8 or int8 images")
    return inputs[0]


def _image_shape(inp, sidecar, path, interpreter):
    """(height, width, channels, layout) of a 1xHxWxC or 1xCxHxW input, resizing a dynamic one."""
    shape = [int(s) for s in inp.get("shape_signature", inp["shape"])]
    shown = [int(s) for s in inp["shape"]]
    if len(shape) != 4 or shape[0] not in (1, -1):
        raise EdgeError(f"{path} input shape {shown} is not one image (expected 1xHxWxC, C = 1 or 3)")
    if shape[3] in (1, 3):
        layout, (h, w, c) = "NHWC", shape[1:]
    elif shape[1] in (1, 3):
        layout, (c, h, w) = "NCHW", shape[1:]
    else:
        raise EdgeError(f"{path} input shape {shown} has no 1- or 3-channel image axis")
    if h <= 0 or w <= 0:
        side = sidecar.get("input", {})
        h, w = int(side.get("height", 224)), int(side.get("width", 224))
        new = [1, h, w, c] if layout == "NHWC" else [1, c, h, w]
        interpreter.resize_tensor_input(inp["index"], new)
        interpreter.allocate_tensors()
    return h, w, c, layout


# ---------------------------------------------------------------- which output, read how


class Output(NamedTuple):
    """One output the app can draw: the tensor, its position among the outputs, and how to read it."""

    detail: dict
    position: int
    task: str  # segmentation or classification
    kind: str  # logits, class_map, binary or scores
    num_classes: int
    layout: str  # NHWC or NCHW
    probability: bool | None = None  # of a binary map: see ModelInfo.probability
    note: str = ""  # which of several outputs this is, for the user


def choose_output(interpreter, image, path):
    """The output to draw: the only one, or the only drawable one among several (said in a note).

    Detection heads (boxes + scores), embeddings and several candidate maps are refused in one line
    that names every output and its shape.
    """
    outputs = interpreter.get_output_details()
    producers = _producers(interpreter)
    readings = [_read_output(out, i, image, producers) for i, out in enumerate(outputs)]
    usable = [r for r in readings if isinstance(r, Output)]
    detection = _looks_like_detection(outputs, readings)
    if len(usable) == 1 and not detection:
        return usable[0]._replace(note=output_note(usable[0], outputs))
    listed = ", ".join(f"{out['name'] or i} {[int(s) for s in out['shape']]}" for i, out in enumerate(outputs))
    if len(outputs) == 1:
        why = readings[0]
    elif detection:
        why = "detection boxes and scores"
    elif usable:
        why = f"{len(usable)} candidate results and none clearly the one to draw"
    else:
        why = "none is class scores or a segmentation map"
    raise EdgeError(
        f"{path}: cannot draw {'its output' if len(outputs) == 1 else f'its {len(outputs)} outputs'} ({why}): "
        f"{listed}; garden-edge draws class scores 1xK, segmentation maps 1xHxWxK or 1xKxHxW, masks 1xHxWx1"
    )


def output_note(chosen, interpreter_outputs):
    """The one line saying which output of several is drawn, or "" for a model with one output."""
    if len(interpreter_outputs) == 1:
        return ""
    out = chosen.detail
    return (
        f"using output {out['name'] or chosen.position} {[int(s) for s in out['shape']]} ({chosen.kind}) "
        f"of {len(interpreter_outputs)}; the others are not drawn"
    )


def _read_output(out, position, image, producers):
    """An :class:`Output` if ``out`` is something the app draws, else the reason it is not (a string)."""
    shape = [int(s) for s in out["shape"]]
    height, width, _, input_layout = image
    integer = np.issubdtype(np.dtype(out["dtype"]), np.integer) and not out["quantization"][0]
    if shape[:1] != [1]:
        return f"batch of {shape[0] if shape else 0}"
    if len(shape) == 2 or (len(shape) == 4 and shape[1] == shape[2] == 1):
        source = _source_op(out["index"], producers)
        if source in _EMBEDDING_OPS:
            return f"an embedding: {shape[-1]} features made by {source}, not class scores"
        if shape[-1] < 2:
            return "a single score, not class scores"
        return Output(out, position, "classification", "scores", shape[-1], "NHWC")
    fits = partial(_fits_image, image=(height, width))
    if len(shape) == 3 and fits(shape[1:3]):
        if integer:
            return Output(out, position, "segmentation", "class_map", 256, "NHWC")
        probability = _is_probability(out, _source_op(out["index"], producers))
        return Output(out, position, "segmentation", "binary", 2, "NHWC", probability)
    if len(shape) == 4:
        nhwc, nchw = fits(shape[1:3]), fits(shape[2:4])
        if nhwc and nchw:
            nhwc = input_layout == "NHWC"
        if nhwc or nchw:
            layout, channels = ("NHWC", shape[3]) if nhwc else ("NCHW", shape[1])
            if channels > 1:
                return Output(out, position, "segmentation", "logits", channels, layout)
            if integer and layout == "NHWC":
                return Output(out, position, "segmentation", "class_map", 256, layout)
            probability = _is_probability(out, _source_op(out["index"], producers))
            return Output(out, position, "segmentation", "binary", 2, layout, probability)
    return "not an image-shaped map nor class scores"


def _fits_image(sides, image):
    """True if ``sides`` (h, w) could be a map over the image: at least 2x2, the image's aspect ratio within 25%."""
    h, w = (int(s) for s in sides)
    if h < 2 or w < 2:
        return False
    return abs(math.log((h / w) / (image[0] / image[1]))) < math.log(1.25)


def _is_probability(out, source):
    """A binary map holds probabilities (True) or logits (False); None: a float map decided frame by frame."""
    if source == "LOGISTIC":
        return True
    scale, zero = out["quantization"]
    if not scale:
        return None
    limits = np.iinfo(np.dtype(out["dtype"]))
    low, high = (limits.min - zero) * scale, (limits.max - zero) * scale
    return bool(low > -0.01 and high < 1.01)


def _looks_like_detection(outputs, readings):
    """Box regressors (1xNx4 or more, not a map) beside another output over the same N anchors: a detector."""
    shapes = [[int(s) for s in out["shape"]] for out in outputs]
    boxes = [i for i, s in enumerate(shapes) if len(s) == 3 and s[2] >= 4 and not isinstance(readings[i], Output)]
    return any(
        j != i and len(shapes[j]) in (2, 3) and shapes[j][1] == shapes[i][1] for i in boxes for j in range(len(shapes))
    )


def _producers(interpreter):
    """Tensor index -> (op name, input indices) of the operator writing it (delegate nodes skipped)."""
    try:
        ops = interpreter._get_ops_details()  # noqa: SLF001 - LiteRT's only view of the graph's operators
    except (AttributeError, ValueError, RuntimeError):
        return {}
    return {
        int(t): (op["op_name"], [int(i) for i in op["inputs"]])
        for op in ops
        if op["op_name"] != "DELEGATE"
        for t in op["outputs"]
    }


def _source_op(tensor, producers, depth=8):
    """The operator behind ``tensor``, looking through reshapes and (de)quantization."""
    for _ in range(depth):
        name, inputs = producers.get(tensor, ("", []))
        if name not in _PASS_THROUGH_OPS or not inputs:
            return name
        tensor = inputs[0]
    return ""


def _check_sidecar_task(chosen, sidecar, path):
    if sidecar.get("task") not in (None, chosen.task):
        shape = [int(s) for s in chosen.detail["shape"]]
        raise EdgeError(f"{path}: sidecar says task {sidecar['task']!r} but the output shape {shape} is {chosen.task}")


# ---------------------------------------------------------------- names, colours, normalisation


def _build_info(path, sidecar, metadata, overrides, inp, image, chosen):
    height, width, channels, layout = image
    out = chosen.detail
    names, names_from = _names(chosen, metadata, sidecar, overrides)
    scale, mean, std, norm_note = _normalisation(path, sidecar, metadata, overrides, channels)
    colors = sidecar.get("colors") or []
    shown = chosen.num_classes if chosen.kind != "class_map" else max(len(names), len(colors), 256)
    num_classes = chosen.num_classes
    if chosen.kind == "class_map":
        num_classes = int(sidecar.get("output", {}).get("num_classes", 0)) or num_classes
    notes = [n for n in (chosen.note, names_note(names, names_from, chosen), norm_note) if n]
    quant = (float(out["quantization"][0]), int(out["quantization"][1]))
    return ModelInfo(
        path=str(path),
        name=str(sidecar.get("model") or path.stem),
        height=height,
        width=width,
        channels=channels,
        layout=layout,
        input_dtype=_IMAGE_DTYPES[np.dtype(inp["dtype"])],
        input_quant=(float(inp["quantization"][0]), int(inp["quantization"][1])),
        task=chosen.task,
        output_kind=chosen.kind,
        num_classes=num_classes,
        output_quant=quant,
        class_names=tuple(class_names(names, shown)),
        colors=tuple(palette_rgb(colors, shown)),
        pixel_scale=scale,
        mean=mean,
        std=std,
        macs=_int_or_none(sidecar.get("macs")),
        params=_int_or_none(sidecar.get("params")),
        quantization=str(sidecar.get("quantization", _guess_quantization(inp, out))),
        output_layout=chosen.layout,
        output_name=str(out["name"]),
        probability=chosen.probability,
        notes=tuple(notes),
        labels_from=names_from,
        sidecar=sidecar,
    )


def _names(chosen, metadata, sidecar, overrides):
    """(class names, where they came from): --labels, else the packed label file, else the sidecar, else none."""
    if overrides.labels:
        try:
            names = label_lines(Path(overrides.labels).read_text(encoding="utf-8", errors="replace"))
        except OSError as error:
            raise EdgeError(f"--labels {overrides.labels}: cannot read it ({error.strerror or error})") from None
        found = names, f"--labels {overrides.labels}"
    else:
        packed_name, names = packed_labels(metadata, chosen.position)
        if names:
            found = names, f"packed {packed_name}"
        elif sidecar.get("class_names"):
            found = [str(n) for n in sidecar["class_names"]], "sidecar"
        else:
            found = [], ""
    if chosen.kind == "binary":
        names = found[0] if len(found[0]) >= 2 else ["background", *(found[0] or ["foreground"])]
        return names, found[1]
    return found


def names_note(names, names_from, chosen):
    """A line when a label file's count does not match the classes (names are then padded or cut)."""
    if names_from and chosen.kind == "scores" and len(names) != chosen.num_classes:
        return f"{names_from} has {len(names)} names for {chosen.num_classes} classes"
    return ""


def _normalisation(path, sidecar, metadata, overrides, channels):
    """(pixel scale, mean, std, note): --mean/--std, else the metadata's, else the sidecar's, else [0, 1]."""
    side_in = sidecar.get("input", {})
    if overrides.mean is not None or overrides.std is not None:
        scale, mean, std, where, note = 1.0, overrides.mean or 0.0, overrides.std or 255.0, "--mean/--std", ""
    elif metadata.mean or metadata.std:
        scale, mean, std, where, note = 1.0, metadata.mean or 0.0, metadata.std or 1.0, "metadata of", ""
    elif any(k in side_in for k in ("mean", "std", "scale")):
        scale, where, note = float(side_in.get("scale", 1.0 / 255.0)), "sidecar of", ""
        mean, std = side_in.get("mean", 0.0), side_in.get("std", 1.0)
    else:
        scale, mean, std, where = 1.0 / 255.0, 0.0, 1.0, "sidecar of"
        note = (
            f"{path.name} states no input normalisation (no TFLite metadata, no sidecar): feeding pixels scaled "
            "to [0, 1]; set --mean/--std (0-255 units) if it expects otherwise"
        )
    mean = _per_channel(mean, channels, "mean", f"{where} {path}")
    std = _per_channel(std, channels, "std", f"{where} {path}")
    if min(std) <= 0:
        raise EdgeError(f"{where} {path}: std must be positive, got {list(std)}")
    return scale, mean, std, note


def _per_channel(value, channels, what, path):
    values = [float(v) for v in (value if isinstance(value, (list, tuple)) else [value])]
    if len(values) == 1:
        values = values * channels
    if len(values) != channels:
        raise EdgeError(f"{path}: {what} has {len(values)} values for a {channels}-channel input")
    return tuple(values)


def _int_or_none(value):
    return int(value) if isinstance(value, (int, float)) else None


def _guess_quantization(inp, out):
    return "int8" if np.dtype(inp["dtype"]) != np.float32 or out["quantization"][0] else "fp32"


def class_names(names, count):
    """``names`` padded to ``count`` with ``class N``."""
    names = [str(n) for n in names][:count]
    return names + [f"class {i}" for i in range(len(names), count)]


def palette_rgb(colors, count):
    """``colors`` (RGB triples) padded to ``count`` with the PASCAL VOC bit-interleaved palette."""
    given = [tuple(int(v) for v in c[:3]) for c in colors if isinstance(c, (list, tuple)) and len(c) >= 3]
    return given[:count] + [default_color(i) for i in range(len(given), count)]


def default_color(index):
    """Class ``index``'s colour in the PASCAL VOC palette: bits of the index spread over R, G, B."""
    r = g = b = 0
    for shift in range(7, -1, -1):
        r |= ((index >> 0) & 1) << shift
        g |= ((index >> 1) & 1) << shift
        b |= ((index >> 2) & 1) << shift
        index >>= 3
    return (r, g, b)


# ---------------------------------------------------------------- feeding


def input_lut(info):
    """1 x 256 x C table: 0-255 pixel -> ``(p * scale - mean) / std``, quantized to the input dtype."""
    pixels = np.arange(256, dtype=np.float64)[:, None]
    values = (pixels * info.pixel_scale - np.asarray(info.mean)) / np.asarray(info.std)
    if info.input_dtype == "float32":
        table = values.astype(np.float32)
    else:
        scale, zero = info.input_quant
        limits = np.iinfo(np.dtype(info.input_dtype))
        scale = scale or 1.0
        table = np.clip(np.round(values / scale + zero), limits.min, limits.max).astype(info.input_dtype)
    return table[None]


def preprocess(frame, model):
    """BGR uint8 frame -> the model's input tensor (resize, colour order, normalise, quantize)."""
    info = model.info
    small = cv2.resize(frame, (info.width, info.height), interpolation=cv2.INTER_LINEAR)
    if info.channels == 1:
        small = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)[..., None]
    else:
        small = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
    tensor = cv2.LUT(small, model.input_lut)
    if tensor.ndim == 2:
        tensor = tensor[..., None]
    if info.layout == "NCHW":
        tensor = tensor.transpose(2, 0, 1)
    return np.ascontiguousarray(tensor[None])


def infer(model, tensor):
    """Run the model on one input tensor and return its chosen output."""
    return model.runner.run(tensor)
