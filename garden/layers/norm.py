"""Normalization as one choice: batch, instance, layer or group norm.

Wu & He, "Group Normalization" (ECCV 2018), Figure 2 draws the four as the same operation over
different axes; here they are the same factory. Layer and instance norm are group norm with one
group and one group per channel, so all four carry a per-channel gamma and beta and behave the same
at train and test time, except batch norm, which uses batch statistics while training and running
averages at inference (Ioffe & Szegedy, 2015).

:class:`InputNormalization` is the other kind: the fixed per-channel shift and scale that
pretrained weights expect of their input, applied to garden's [0, 1] pixels inside the model.
"""

import keras
from keras import layers, ops

NORMS = ("batch", "instance", "layer", "group", None)


def normalization(kind="batch", name=None, *, groups=32, epsilon=1e-3, momentum=0.99):
    """A normalization layer over the channel axis (channels-last), or None for ``kind=None``.

    ``groups`` applies to group norm; it is reduced to the channel count at build time when the
    layer sees fewer channels (see :class:`keras.layers.GroupNormalization`).
    """
    if kind == "batch":
        return layers.BatchNormalization(epsilon=epsilon, momentum=momentum, name=name)
    if kind == "instance":
        return layers.GroupNormalization(groups=-1, epsilon=epsilon, name=name)
    if kind == "layer":
        return layers.GroupNormalization(groups=1, epsilon=epsilon, name=name)
    if kind == "group":
        return layers.GroupNormalization(groups=groups, epsilon=epsilon, name=name)
    if kind is None or kind == "none":
        return None
    raise ValueError(f"unknown normalization {kind!r}; choose one of batch, instance, layer, group, none")


def apply_norm(x, kind, name, **kwargs):
    """Apply ``normalization(kind)`` to ``x``; group norm's group count is fitted to the channels."""
    if kind == "group":
        channels = x.shape[-1]
        groups = kwargs.pop("groups", 32)
        while channels % groups:
            groups -= 1
        kwargs["groups"] = groups
    layer = normalization(kind, name=name, **kwargs)
    return x if layer is None else layer(x)


# keras.applications' ``preprocess_input`` modes on [0, 1] RGB pixels: (mean, std, RGB -> BGR first).
INPUT_NORMALIZATIONS = {
    "tf": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5), False),  # x / 127.5 - 1
    "torch": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225), False),  # ImageNet mean and std
    "caffe": ((103.939 / 255, 116.779 / 255, 123.68 / 255), (1 / 255,) * 3, True),  # BGR minus the mean pixel
}


@keras.saving.register_keras_serializable(package="garden")
class InputNormalization(layers.Layer):
    """``(x - mean) / std`` per channel of [0, 1] pixels, after reversing RGB to BGR if ``reverse_channels``.

    ``InputNormalization.of(mode)`` gives keras.applications' preprocessing (``tf``, ``torch``,
    ``caffe``), so a model with ImageNet weights takes garden's [0, 1] pixels like every other.
    """

    def __init__(self, mean, std, reverse_channels=False, **kwargs):
        super().__init__(**kwargs)
        self.mean, self.std = [float(v) for v in mean], [float(v) for v in std]
        self.reverse_channels = bool(reverse_channels)

    @classmethod
    def of(cls, mode, name="input_normalization"):
        if mode not in INPUT_NORMALIZATIONS:
            raise ValueError(f"unknown input normalization {mode!r}; choose one of {', '.join(INPUT_NORMALIZATIONS)}")
        mean, std, reverse = INPUT_NORMALIZATIONS[mode]
        return cls(mean, std, reverse, name=name)

    def call(self, inputs):
        x = ops.flip(inputs, axis=-1) if self.reverse_channels else inputs
        return (x - ops.convert_to_tensor(self.mean, x.dtype)) / ops.convert_to_tensor(self.std, x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "std": self.std, "reverse_channels": self.reverse_channels}
