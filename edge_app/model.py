"""A ``.tflite`` model as the app sees it: what it takes, what it returns, how to feed it fast.

Everything is read from the file itself (input size, layout, dtype, quantization, output shape);
the metadata sidecar beside it (docs/sidecar.md) adds labels, colours, input normalisation and
multiply-adds, and the app works without it.
"""

import contextlib
import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edge_app.errors import EdgeError

_IMAGE_DTYPES = {np.dtype(np.float32): "float32", np.dtype(np.uint8): "uint8", np.dtype(np.int8): "int8"}
_MIN_TFLITE_BYTES = 16


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
    output_kind: str  # logits, class_map or scores
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
    sidecar: dict = field(default_factory=dict, compare=False, repr=False)


@dataclass
class Model:
    """A loaded interpreter with its :class:`ModelInfo` and the lookup table that feeds it."""

    info: ModelInfo
    interpreter: object
    input_index: int
    output_index: int
    input_lut: np.ndarray  # 1 x 256 x C: pixel value -> model input value, per channel


# ---------------------------------------------------------------- loading


def load_model(path, threads=1):
    """Open ``path`` with LiteRT and read its contract; raise :class:`EdgeError` if it can't be fed."""
    path = Path(path)
    _check_tflite_file(path)
    interpreter = _open_interpreter(path, threads)
    sidecar = read_sidecar(path)
    inp = _single_input(interpreter, path)
    out = interpreter.get_output_details()[0]
    height, width, channels, layout = _image_shape(inp, sidecar, path, interpreter)
    task, kind, num_classes = _output_contract(out, sidecar, path)
    info = _build_info(path, sidecar, inp, out, (height, width, channels, layout), (task, kind, num_classes))
    return Model(info, interpreter, inp["index"], out["index"], input_lut(info))


def _check_tflite_file(path):
    if not path.is_file():
        raise EdgeError(f"model file {path} does not exist")
    head = path.read_bytes()[:8] if path.stat().st_size >= _MIN_TFLITE_BYTES else b""
    if head[4:8] != b"TFL3":
        raise EdgeError(f"{path} is not a TFLite model (no TFL3 file identifier; {path.stat().st_size} bytes)")


def _open_interpreter(path, threads):
    from ai_edge_litert.interpreter import Interpreter

    try:
        with _runtime_chatter_filtered():
            interpreter = Interpreter(model_path=str(path), num_threads=int(threads))
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise EdgeError(f"{path} could not be loaded by LiteRT (corrupt or truncated?): {reason}") from None
    return interpreter


@contextlib.contextmanager
def _runtime_chatter_filtered():
    """Drop LiteRT's ``INFO: Created ... delegate`` line from stderr (C level); pass the rest on."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            lines = caught.read().decode(errors="replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if not line.startswith("INFO: Created TensorFlow Lite")))


def read_sidecar(model_path):
    """The sidecar JSON beside ``model_path`` as a dict, ``{}`` if absent; a broken one is reported."""
    side = Path(model_path).with_suffix(".json")
    if not side.is_file():
        return {}
    try:
        data = json.loads(side.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise EdgeError(f"sidecar {side} is not valid JSON ({error}); fix or remove it") from None
    if not isinstance(data, dict):
        raise EdgeError(f"sidecar {side} must hold a JSON object, not {type(data).__name__}")
    return data


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


def _output_contract(out, sidecar, path):
    """(task, kind, num_classes) from the output shape, checked against the sidecar."""
    shape = [int(s) for s in out["shape"]]
    integer = np.issubdtype(np.dtype(out["dtype"]), np.integer) and not out["quantization"][0]
    side = sidecar.get("output", {})
    if len(shape) == 2 or (len(shape) == 4 and shape[1] == shape[2] == 1):
        task, kind, num_classes = "classification", side.get("kind", "scores"), shape[-1]
    elif len(shape) == 3 or (len(shape) == 4 and shape[3] == 1 and integer):
        task, kind, num_classes = "segmentation", "class_map", int(side.get("num_classes", 0)) or 256
    elif len(shape) == 4 and shape[3] > 1:
        task, kind, num_classes = "segmentation", "logits", shape[3]
    else:
        raise EdgeError(f"{path} output shape {shape} is neither class scores (1xK) nor a segmentation map (1xHxWxK)")
    if sidecar.get("task") not in (None, task):
        raise EdgeError(f"{path}: sidecar says task {sidecar['task']!r} but the output shape {shape} is {task}")
    if kind == "logits" and task == "classification":
        kind = "scores"
    return task, kind, num_classes


def _build_info(path, sidecar, inp, out, image, contract):
    height, width, channels, layout = image
    task, kind, num_classes = contract
    side_in = sidecar.get("input", {})
    mean = _per_channel(side_in.get("mean", 0.0), channels, "mean", path)
    std = _per_channel(side_in.get("std", 1.0), channels, "std", path)
    if min(std) <= 0:
        raise EdgeError(f"sidecar of {path}: std must be positive, got {list(std)}")
    names = sidecar.get("class_names") or []
    colors = sidecar.get("colors") or []
    shown = num_classes if kind != "class_map" else max(len(names), len(colors), 256)
    return ModelInfo(
        path=str(path),
        name=str(sidecar.get("model") or path.stem),
        height=height,
        width=width,
        channels=channels,
        layout=layout,
        input_dtype=_IMAGE_DTYPES[np.dtype(inp["dtype"])],
        input_quant=(float(inp["quantization"][0]), int(inp["quantization"][1])),
        task=task,
        output_kind=kind,
        num_classes=num_classes,
        output_quant=(float(out["quantization"][0]), int(out["quantization"][1])),
        class_names=tuple(class_names(names, shown)),
        colors=tuple(palette_rgb(colors, shown)),
        pixel_scale=float(side_in.get("scale", 1.0 / 255.0)),
        mean=mean,
        std=std,
        macs=_int_or_none(sidecar.get("macs")),
        params=_int_or_none(sidecar.get("params")),
        quantization=str(sidecar.get("quantization", _guess_quantization(inp, out))),
        sidecar=sidecar,
    )


def _per_channel(value, channels, what, path):
    values = [float(v) for v in (value if isinstance(value, (list, tuple)) else [value])]
    if len(values) == 1:
        values = values * channels
    if len(values) != channels:
        raise EdgeError(f"sidecar of {path}: {what} has {len(values)} values for a {channels}-channel input")
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
    """Run the interpreter on one input tensor and return a copy of its first output."""
    model.interpreter.set_tensor(model.input_index, tensor)
    model.interpreter.invoke()
    return model.interpreter.get_tensor(model.output_index)
