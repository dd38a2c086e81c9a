"""The deploy pipeline: quantize and export garden models to TFLite and ONNX, checked and measured.

This package is the TensorFlow side of garden: it imports TensorFlow (garden/ itself does not).

>>> import deploy
>>> result = deploy.export("mobilenet_v2", format="tflite", quant="int8", input_size=96,
...                        calib="embedded", out="exports")
>>> result.report["quality"]["drop"]
"""

from deploy.export import FORMATS, OUTPUT_KINDS, QUANTS, ExportResult, export

__all__ = ["FORMATS", "OUTPUT_KINDS", "QUANTS", "ExportResult", "export"]
