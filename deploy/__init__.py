"""The deploy pipeline: quantize and export garden models to TFLite and ONNX, checked and measured.

This package is the TensorFlow side of garden: it imports TensorFlow (garden/ itself does not),
but only when a file is written or run, so that ``garden --help`` lists its commands at once.

>>> import deploy
>>> result = deploy.export("mobilenet_v2", format="tflite", quant="int8", input_size=96,
...                        calib="embedded", out="exports")
>>> result.report["quality"]["drop"]
"""

# Imported here, not on first use: importing the submodule ``deploy.export`` sets the package's
# ``export`` attribute to that module, and only this import puts the function back in its place.
# ``deploy.export`` imports no TensorFlow or Keras (the writers do, when they run).
from deploy.export import FORMATS, OUTPUT_KINDS, QUANTS, ExportResult, export

__all__ = ["FORMATS", "OUTPUT_KINDS", "QUANTS", "ExportResult", "export"]
