"""A user's own Keras model made exportable: logits instead of a softmax, and the pixels it expects.

- ``logits_model``: int8 flattens a softmax (every probability but the top one rounds to a few
  levels), so a quantized export of a softmax-ended model exports the softmax's input, its logits.
  Float exports keep the model as it is.
- ``input_normalization``: what the exported file takes, as the sidecar writes it: ``(pixel * scale
  - mean) / std`` with ``pixel`` the 0-255 RGB value (docs/sidecar.md). Garden models take pixels in
  [0, 1] (a model built with ImageNet weights normalises inside itself); a ``keras.applications``
  model is recognised by the name Keras gives it and gets its weights' convention; ``--scale``,
  ``--mean`` and ``--std`` override either.
"""

import re
from dataclasses import dataclass

import numpy as np

from garden.errors import GardenError

GARDEN_INPUT_NAME = "input"  # garden.models._common.model_input's; keras.applications' inputs are unnamed


@dataclass(frozen=True)
class Normalization:
    """``(pixel * scale - mean) / std`` per channel, ``pixel`` in 0..255."""

    scale: float
    mean: tuple
    std: tuple
    source: str = "garden's [0, 1] pixels"

    @property
    def is_unit(self):
        return self.scale == 1 / 255 and not any(self.mean) and all(s == 1 for s in self.std)

    def apply(self, inputs):
        """[0, 1] pixels (garden's calibration and check data) -> what the model takes."""
        return ((inputs * 255.0 * self.scale - np.asarray(self.mean)) / np.asarray(self.std)).astype("float32")


# keras.applications' preprocess_input modes in the sidecar's terms (caffe's BGR order has none).
_MODES = {
    "tf": (1 / 127.5, (1.0,), (1.0,)),
    "torch": (1 / 255, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "pixels": (1.0, (0.0,), (1.0,)),  # the model rescales inside (MobileNetV3, EfficientNet)
}
# The names keras.applications gives its models -> the preprocessing their weights expect.
_APPLICATIONS = (
    (r"mobilenet_\d\.\d\d_\d+|mobilenetv2_\d\.\d\d_\d+|xception|inception_v3|inception_resnet_v2|nasnet.*", "tf"),
    (r"resnet\d+v2", "tf"),
    (r"densenet\d+", "torch"),
    (r"mobilenetv3(small|large)|efficientnet.*|convnext.*|regnet.*", "pixels"),
    (r"vgg\d+|resnet\d+", "caffe"),
)


def application_mode(model):
    """The ``keras.applications`` preprocessing mode of ``model`` (None: not a keras.applications model)."""
    inputs = [layer for layer in model.layers if type(layer).__name__ == "InputLayer"]
    if inputs and inputs[0].name == GARDEN_INPUT_NAME:
        return None
    name = model.name.lower()
    return next((mode for pattern, mode in _APPLICATIONS if re.fullmatch(pattern, name)), None)


def input_normalization(model, channels, scale=None, mean=None, std=None):
    """The ``Normalization`` the exported ``model`` takes; ``scale``/``mean``/``std`` override the model's."""
    mode = application_mode(model)
    overridden = any(value is not None for value in (scale, mean, std))
    if mode == "caffe" and not overridden:
        raise GardenError(
            f"{model.name} is a keras.applications model that expects BGR pixels minus the ImageNet mean "
            "(caffe), which a sidecar cannot express: build it with garden.create_model(..., weights=...), "
            "which normalises inside the model, or pass --scale/--mean/--std"
        )
    if mode in _MODES:
        base = Normalization(*_MODES[mode], source=f"keras.applications {model.name}'s")
    else:
        base = Normalization(1 / 255, (0.0,), (1.0,))
    values = Normalization(
        float(base.scale if scale is None else scale),
        _per_channel(base.mean if mean is None else mean, channels, "mean"),
        _per_channel(base.std if std is None else std, channels, "std"),
        "--scale/--mean/--std" if overridden else base.source,
    )
    if not (np.isfinite(values.scale) and values.scale > 0) or min(values.std) <= 0:
        raise GardenError(f"--scale and --std must be positive, got scale {values.scale} and std {list(values.std)}")
    return values


def _per_channel(value, channels, what):
    values = (value,) if np.isscalar(value) else tuple(value)
    if len(values) == 1:
        values = values * channels
    elif len(values) != channels:
        raise GardenError(f"--{what} takes one value or {channels} (one per channel), got {len(values)}")
    if not all(np.isfinite(v) for v in values):
        raise GardenError(f"--{what} must be finite numbers, got {list(values)}")
    return tuple(float(v) for v in values[:channels])


def parse_values(text):
    """``"0.5"`` or ``"0.485,0.456,0.406"`` -> floats (the command line's --mean/--std)."""
    try:
        return tuple(float(part) for part in str(text).split(","))
    except ValueError:
        raise GardenError(f"expected a number or comma-separated numbers, got {text!r}") from None


def ends_in_softmax(model):
    last = model.layers[-1]
    activation = getattr(last, "activation", None)
    return type(last).__name__ == "Softmax" or getattr(activation, "__name__", "") == "softmax"


def logits_model(model):
    """``model`` without its final softmax: the same layers and weights, ending in logits."""
    import keras

    last = model.layers[-1]
    if type(last).__name__ in ("Softmax", "Activation"):
        return keras.Model(model.inputs, last.input, name=model.name)
    config = last.get_config()
    config["activation"] = "linear"
    twin = last.__class__.from_config(config)
    logits = twin(last.input)
    twin.set_weights(last.get_weights())
    return keras.Model(model.inputs, logits, name=model.name)
