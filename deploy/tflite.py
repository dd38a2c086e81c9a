"""The TFLite writer: a Keras model to a ``.tflite`` file in one quantization mode (``deploy.quantization``).

Converted on the TensorFlow backend from a batch-1 signature (``deploy.serving``), TFLite builtin
ops only: a model that would need TensorFlow ops fails here, in one line, not on the device.
"""

from pathlib import Path

from deploy.quantization import tflite_converter
from deploy.serving import serving_module
from garden.console import stage
from garden.errors import GardenError


def convert_tflite(model, input_shape, quant, calib_inputs, path, output="logits", io_dtype="uint8"):
    """Write ``model`` as a TFLite file at ``path`` in quantization mode ``quant``."""
    module = serving_module(model, input_shape, output)
    converter = tflite_converter(
        module.serve.get_concrete_function(), module, quant, calib_inputs, io_dtype=io_dtype, output=output
    )
    with stage(f"converting {model.name} to TFLite ({quant})"):
        Path(path).write_bytes(run_converter(converter, model.name))


def run_converter(converter, name):
    """``converter.convert()`` with its failures (TensorFlow ops needed, unsupported layers) as one line."""
    try:
        return converter.convert()
    except Exception as error:  # noqa: BLE001  (the converter raises several private error types)
        text = str(error)
        if "Flex" in text or "select" in text.lower() or "not supported" in text.lower():
            lines = [line.strip() for line in text.splitlines() if "op" in line.lower() and line.strip()]
            detail = lines[0] if lines else text.splitlines()[0]
            raise GardenError(f"{name} needs ops outside the TFLite builtins ({detail[:300]})") from None
        raise GardenError(f"TFLite conversion of {name} failed: {text.strip().splitlines()[0][:300]}") from None
