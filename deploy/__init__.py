"""The deploy pipeline: quantize and export garden models to TFLite and ONNX, checked and measured.

This package is the TensorFlow side of garden: it imports TensorFlow (garden/ itself does not),
on first use of the names below, so that ``garden --help`` lists its commands at once.

>>> import deploy
>>> result = deploy.export("mobilenet_v2", format="tflite", quant="int8", input_size=96,
...                        calib="embedded", out="exports")
>>> result.report["quality"]["drop"]
"""

import importlib

__all__ = ["FORMATS", "OUTPUT_KINDS", "QUANTS", "ExportResult", "export"]


def __getattr__(name):
    if name in __all__:
        return getattr(importlib.import_module("deploy.export"), name)
    raise AttributeError(f"module 'deploy' has no attribute {name!r}")
