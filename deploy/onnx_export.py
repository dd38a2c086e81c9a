"""The ONNX writer: tf2onnx, then onnxruntime's quantization tools in the mode's ONNX step.

``MODES[quant].onnx`` (``deploy.quantization``) says what follows tf2onnx: nothing (``float``), a
float16 graph with float input/output, ``quantize_dynamic`` or static QDQ quantization calibrated
on the inputs (per channel, per tensor where per channel trips). ``int8-io`` files take uint8 pixels.
(Not ``onnx.py``: that would shadow the ``onnx`` package.)

Static files have uint8 activations and int8 weights (U8S8): onnxruntime's x86 kernels multiply
unsigned by signed bytes (the VNNI instruction's form), its QDQ optimizer on x86 leaves convolutions
with int8 activations in float (with a transpose on each side), and forced to fuse them its S8S8
kernels are slower still: MobileNetV2 224 at 1 thread measured 15.1 ms (int8 activations), 71.8 ms
(forced), 9.1 ms (uint8) against 15.2 ms in float (docs/deploy.md, "int8 closer to the hardware").
"""

import logging
import os

import numpy as np

from deploy.quantization import MODES
from deploy.serving import serving_module
from garden.console import progress, stage
from garden.errors import GardenError

ACTIVATIONS = "QUInt8"  # onnxruntime QuantType of static files' activations (weights: QInt8)


def convert_onnx(model, input_shape, quant, calib_inputs, path, output="logits"):
    """Write ``model`` as ONNX at ``path`` (tf2onnx), then quantize it with onnxruntime's tools."""
    import tf2onnx

    # tf2onnx logs a traceback when one of its optional graph optimizers gives up; the graph is fine.
    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    uint8_input = MODES[quant].integer_io
    module = serving_module(model, input_shape, output, uint8_input)
    float_path = f"{path}.float.onnx"
    try:
        with stage(f"converting {model.name} to ONNX"):
            tf2onnx.convert.from_function(
                module.serve, input_signature=module.serve.input_signature, opset=17, output_path=float_path
            )
        quantize_onnx(float_path, path, quant, calib_inputs, uint8_input)
    except GardenError:
        raise
    except Exception as error:  # noqa: BLE001  (tf2onnx and onnxruntime raise many types)
        first_line = str(error).strip().splitlines()[0][:300]
        raise GardenError(f"ONNX conversion of {model.name} failed: {first_line}") from None
    finally:
        if os.path.exists(float_path):
            os.unlink(float_path)


def quantize_onnx(source, target, quant, calib_inputs, uint8_input=False):
    """The float ONNX file ``source`` in mode ``quant`` at ``target`` (``source`` may be moved there)."""
    import onnx

    step = MODES[quant].onnx
    if step == "float":
        os.replace(source, target)
    elif step == "float16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        onnx.save(convert_float_to_float16(onnx.load(source), keep_io_types=True), target)
    elif step == "dynamic":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(source, target, weight_type=QuantType.QInt8)
    else:
        from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

        feeds = np.clip(np.round(calib_inputs * 255), 0, 255).astype("uint8") if uint8_input else calib_inputs
        name = onnx.load(source).graph.input[0].name
        for per_channel in (True, False):
            try:
                quantize_static(
                    source,
                    target,
                    _Reader(name, feeds),
                    quant_format=QuantFormat.QDQ,
                    activation_type=getattr(QuantType, ACTIVATIONS),
                    weight_type=QuantType.QInt8,
                    per_channel=per_channel,
                )
                return
            except IndexError:  # per-channel trips on scalar constants (hard-swish's 3 and 1/6): per-tensor
                if not per_channel:
                    raise


class _Reader:
    """onnxruntime's CalibrationDataReader protocol over an array of inputs."""

    def __init__(self, name, inputs):
        self.name, self.inputs = name, inputs
        self.rewind()

    def get_next(self):
        if self.index >= len(self.inputs):
            self.shown.close()
            return None
        self.index += 1
        self.shown.advance()
        return {self.name: self.inputs[self.index - 1][None]}

    def rewind(self):
        self.index = 0
        self.shown = progress(label="calibrating", total=len(self.inputs))
