"""The quantization modes as data: one row per ``--quant``, read by every writer.

The TFLite writer (``deploy.tflite``), the ONNX writer (``deploy.onnx_export``) and the tfmot
worker (``deploy._tfmot_worker``, a tf_keras process of its own) all configure their converters
from ``MODES``, so a mode means the same wherever a file is written. This module imports no
TensorFlow at module level (the worker must choose its Keras first; ``garden --help`` stays fast).

| mode | TFLite | ONNX |
|---|---|---|
| ``fp32`` | no optimization | float graph |
| ``fp16`` | ``Optimize.DEFAULT``, float16 weights | float16 graph, float input/output |
| ``dynamic`` | ``Optimize.DEFAULT``: int8 weights, float activations | ``quantize_dynamic`` |
| ``int8`` | ``Optimize.DEFAULT`` and representative data: full integer, float input/output | static QDQ, U8S8 |
| ``int8-io`` | as ``int8``, with ``uint8`` (or ``int8``) input and logits output | static QDQ, uint8 input |
"""

from dataclasses import dataclass

from garden.console import progress


@dataclass(frozen=True)
class Mode:
    """What one quantization mode asks of the converters.

    ``optimize``: TFLite ``Optimize.DEFAULT``; ``weight_types``: TFLite ``target_spec.supported_types``
    (TensorFlow dtype names); ``calibrated``: needs representative data (TFLite) / static
    quantization (ONNX); ``integer_io``: the file's input (and logits output) are integers;
    ``onnx``: the ONNX step after tf2onnx (``float``, ``float16``, ``dynamic`` or ``static``).
    """

    optimize: bool = False
    weight_types: tuple = ()
    calibrated: bool = False
    integer_io: bool = False
    onnx: str = "float"


MODES = {
    "fp32": Mode(),
    "fp16": Mode(optimize=True, weight_types=("float16",), onnx="float16"),
    "dynamic": Mode(optimize=True, onnx="dynamic"),
    "int8": Mode(optimize=True, calibrated=True, onnx="static"),
    "int8-io": Mode(optimize=True, calibrated=True, integer_io=True, onnx="static"),
}
QUANTS = tuple(MODES)
CALIBRATED_QUANTS = tuple(name for name, mode in MODES.items() if mode.calibrated)
IO_DTYPES = ("uint8", "int8")  # TFLite int8-io; ONNX int8-io files take uint8 only


def tflite_settings(quant, *, io_dtype="uint8", output="logits", sparse=False):
    """The TFLite converter attributes for ``quant``, by name (no TensorFlow objects).

    ``{"optimizations": [...], "supported_types": [...], "representative_dataset": bool,
    "inference_input_type": name or None, "inference_output_type": name or None}``. A class map
    (``output="class_map"``, int32 indices) keeps its own output type; ``sparse`` adds
    ``EXPERIMENTAL_SPARSITY`` (sparse weight encoding).
    """
    mode = MODES[quant]
    integer_input = io_dtype if mode.integer_io else None
    return {
        "optimizations": ["DEFAULT"] * mode.optimize + ["EXPERIMENTAL_SPARSITY"] * bool(sparse),
        "supported_types": list(mode.weight_types),
        "representative_dataset": mode.calibrated,
        "inference_input_type": integer_input,
        "inference_output_type": integer_input if output == "logits" else None,
    }


def tflite_converter(function, trackable, quant, calib_inputs, *, io_dtype="uint8", output="logits", sparse=False):
    """A ``TFLiteConverter`` for the concrete ``function`` (batch 1), builtin ops only, set up for ``quant``.

    ``trackable`` holds the variables to freeze; ``calib_inputs`` (float32 ``(N, H, W, C)``) feed the
    calibration of the calibrated modes.
    """
    import tensorflow as tf

    settings = tflite_settings(quant, io_dtype=io_dtype, output=output, sparse=sparse)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], trackable)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.experimental_lower_to_saved_model = False  # freeze the graph directly: much faster
    converter.optimizations = [getattr(tf.lite.Optimize, name) for name in settings["optimizations"]]
    if settings["supported_types"]:
        converter.target_spec.supported_types = [getattr(tf, name) for name in settings["supported_types"]]
    if settings["representative_dataset"]:
        converter.representative_dataset = representative_dataset(calib_inputs)
    for key in ("inference_input_type", "inference_output_type"):
        if settings[key]:
            setattr(converter, key, getattr(tf, settings[key]))
    return converter


def representative_dataset(inputs):
    """A TFLite converter ``representative_dataset``: one batch-1 float32 input at a time."""

    def generate():
        for x in progress(inputs, "calibrating"):
            yield [x[None].astype("float32")]

    return generate
