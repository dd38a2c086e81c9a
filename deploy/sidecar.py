"""The metadata sidecar beside every exported file, exactly as docs/sidecar.md defines it."""

import json
from pathlib import Path

import numpy as np

FORMAT_VERSION = 1


def palette(num_classes):
    """One RGB triple per class (lists): the PASCAL VOC colour map, ``garden.data.segmentation.voc_palette``."""
    from garden.data.segmentation import voc_palette

    return voc_palette(num_classes).tolist()


def sidecar(
    *,
    model_name,
    task,
    input_shape,
    input_dtype,
    output_kind,
    num_classes,
    class_names,
    quantization,
    params,
    macs,
    normalization=None,
):
    """The sidecar dictionary (``input_shape`` is ``(H, W, C)``).

    ``normalization`` is ``(scale, mean, std)``: the file takes ``(pixel * scale - mean) / std``
    (None: garden's [0, 1] pixels).
    """
    from garden import __version__

    height, width, channels = (int(v) for v in input_shape)
    names = [str(n) for n in class_names] if class_names else [str(i) for i in range(num_classes)]
    scale, mean, std = normalization or (1.0 / 255.0, [0] * channels, [1] * channels)
    return {
        "format_version": FORMAT_VERSION,
        "model": model_name,
        "task": task,
        "input": {
            "height": height,
            "width": width,
            "channels": channels,
            "layout": "NHWC",
            "dtype": str(np.dtype(input_dtype)),
            "scale": float(scale),
            "mean": [_number(v) for v in mean],
            "std": [_number(v) for v in std],
        },
        "output": {"kind": output_kind, "num_classes": int(num_classes)},
        "class_names": names,
        "colors": palette(num_classes),
        "quantization": quantization,
        "params": int(params),
        "macs": int(macs),
        "garden_version": __version__,
    }


def sidecar_path(model_path):
    """``NAME.tflite`` -> ``NAME.json``."""
    return Path(model_path).with_suffix(".json")


def dumps(data):
    return json.dumps(data, indent=2) + "\n"


def _number(value):
    """0 and 1 stay integers in the file (as docs/sidecar.md shows them); other values are floats."""
    return int(value) if float(value).is_integer() else float(value)
