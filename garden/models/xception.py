"""Xception: depthwise-separable convolutions with residual connections.

Chollet, "Xception: Deep Learning with Depthwise Separable Convolutions" (CVPR 2017), Figure 5:
an entry flow (two 3x3 convolutions, then three blocks that end in a 3x3/2 max pool beside a
strided 1x1 shortcut), a middle flow of eight identity-residual blocks of three 728-channel
separable convolutions, and an exit flow (one more pooled block, then 1536 and 2048 separable
convolutions). Inside the blocks each separable convolution is preceded by a ReLU and followed by
batch normalization; the exit's last two are followed by both. The first two convolutions are
unpadded, as in the paper's 299x299 design (299 -> 149 -> 147).

``output_stride`` (8, 16, 32) replaces the strides of the pooled blocks past that stride with
dilation (DeepLabv3); the pool then keeps its 3x3 window at stride 1. The first entry block starts
with a ReLU on an already rectified input, which Keras's Xception leaves out; it changes nothing.
Parameter counts equal ``keras.applications.Xception`` (22,910,480 with the 1000-class top).
"""

from keras import layers

from garden.layers import activation, apply_norm, conv_norm_act
from garden.models._common import classifier
from garden.models._dilation import OutputStride
from garden.models.transfer import copy_pairs

STEM = ((32, 2), (64, 1))  # (filters, stride) of the two unpadded 3x3 convolutions

# (flow, filters of each separable convolution, shortcut, stride of the pool)
BLOCKS = (
    ("entry", (128, 128), "projection", 2),
    ("entry", (256, 256), "projection", 2),
    ("entry", (728, 728), "projection", 2),
    *[("middle", (728, 728, 728), "identity", 1)] * 8,
    ("exit", (728, 1024), "projection", 2),
)
EXIT_CONVOLUTIONS = (1536, 2048)


def separable(x, filters, dilation_rate=1, name="sep"):
    """A ``SeparableConv2D`` (depthwise then pointwise, no nonlinearity between) and batch norm."""
    x = layers.SeparableConv2D(filters, 3, padding="same", dilation_rate=dilation_rate, use_bias=False, name=name)(x)
    return apply_norm(x, "batch", f"{name}_bn")


def xception_block(x, filters, shortcut, walk, pool_stride, name):
    """ReLU -> separable conv -> BN for each of ``filters``, a pool if strided, plus the shortcut."""
    residual, rate = x, walk.rate
    for index, width in enumerate(filters, start=1):
        x = activation(x, "relu", name=f"{name}_sep{index}_act")
        x = separable(x, width, rate, name=f"{name}_sep{index}")
    if shortcut == "identity":
        return layers.Add(name=f"{name}_add")([residual, x])
    strides, _ = walk.step(pool_stride)
    x = layers.MaxPooling2D(3, strides, padding="same", name=f"{name}_pool")(x)
    residual = conv_norm_act(residual, filters[-1], 1, strides, act=None, name=f"{name}_shortcut")
    return layers.Add(name=f"{name}_add")([x, residual])


@classifier(name="xception", input_shape=(299, 299, 3))
def build_xception(inputs, *, output_stride=32):
    """Xception (Chollet, 2017): entry, middle and exit flows of residual separable convolutions."""
    walk, x = OutputStride(output_stride), inputs
    for index, (filters, stride) in enumerate(STEM, start=1):
        strides, _ = walk.step(stride)
        x = conv_norm_act(x, filters, 3, strides, "valid", name=f"stem{index}")
    features, counts = {walk.stride: x}, {}
    for flow, filters, shortcut, pool_stride in BLOCKS:
        counts[flow] = counts.get(flow, 0) + 1
        x = xception_block(x, filters, shortcut, walk, pool_stride, name=f"{flow}_block{counts[flow]}")
        features[walk.stride] = x
    for index, filters in enumerate(EXIT_CONVOLUTIONS, start=1):
        x = separable(x, filters, walk.rate, name=f"exit_sep{index}")
        x = activation(x, "relu", name=f"exit_sep{index}_act")
    features[walk.stride] = x
    return features


def _shortcut_layers(reference):
    """Keras leaves Xception's shortcut layers unnamed: its 1x1 convolutions by width, with their norm."""
    norm_after = {}
    for layer in reference.layers:
        if isinstance(layer, layers.BatchNormalization):
            norm_after[layer.input._keras_history.operation.name] = layer.name
    return {
        layer.filters: (layer.name, norm_after[layer.name])
        for layer in reference.layers
        if type(layer) is layers.Conv2D and tuple(layer.kernel_size) == (1, 1)
    }


def transfer_xception(model, reference):
    """Weights of ``keras.applications.Xception`` into ``xception``."""
    pairs = []
    for index in (1, 2):
        pairs += [(f"stem{index}_conv", f"block1_conv{index}"), (f"stem{index}_bn", f"block1_conv{index}_bn")]
    shortcuts, counts = _shortcut_layers(reference), {}
    for keras_block, (flow, filters, shortcut, _) in enumerate(BLOCKS, start=2):
        counts[flow] = counts.get(flow, 0) + 1
        ours = f"{flow}_block{counts[flow]}"
        for index in range(1, len(filters) + 1):
            theirs = f"block{keras_block}_sepconv{index}"
            pairs += [(f"{ours}_sep{index}", theirs), (f"{ours}_sep{index}_bn", f"{theirs}_bn")]
        if shortcut == "projection":
            conv, norm = shortcuts[filters[-1]]
            pairs += [(f"{ours}_shortcut_conv", conv), (f"{ours}_shortcut_bn", norm)]
    for index in (1, 2):
        theirs = f"block14_sepconv{index}"
        pairs += [(f"exit_sep{index}", theirs), (f"exit_sep{index}_bn", f"{theirs}_bn")]
    return copy_pairs(model, reference, [*pairs, ("predictions", "predictions")])
