"""Squeeze-and-Excitation: channel attention by feature recalibration."""

from keras import layers

from garden.layers.conv import activation


def make_divisible(value, divisor=8, min_value=None):
    """Round ``value`` to a multiple of ``divisor``, never below 90% of it (MobileNetV2's rule)."""
    min_value = min_value or divisor
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def squeeze_excite(x, ratio=0.25, reduced_filters=None, act="relu", gate="sigmoid", name="se"):
    """Hu et al., "Squeeze-and-Excitation Networks" (CVPR 2018), Figure 2.

    Squeeze: global average pool to one value per channel. Excitation: a bottleneck of two
    fully connected layers (here 1x1 convolutions on the pooled map, which have the same weights)
    with reduction ``ratio`` (1/16 in SENet, 1/4 in MobileNetV3) and a sigmoid gate. Scale: multiply
    the input channels by the gate.
    Layers: ``{name}_squeeze``, ``{name}_reduce``, ``{name}_expand``, ``{name}_gate``, ``{name}_scale``.
    """
    channels = x.shape[-1]
    reduced = reduced_filters or max(1, int(channels * ratio))
    s = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_squeeze")(x)
    s = layers.Conv2D(reduced, 1, name=f"{name}_reduce")(s)
    s = activation(s, act, name=f"{name}_act")
    s = layers.Conv2D(channels, 1, name=f"{name}_expand")(s)
    s = activation(s, gate, name=f"{name}_gate")
    return layers.Multiply(name=f"{name}_scale")([x, s])
