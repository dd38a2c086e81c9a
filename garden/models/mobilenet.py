"""MobileNet (V1) and MobileNetV2: depthwise-separable networks with a width multiplier.

Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications"
(2017): a 3x3 stem and 13 depthwise-separable blocks (Table 1). The width multiplier ``alpha``
thins every layer to ``int(alpha * filters)`` channels; the resolution multiplier is simply the
input size (224, 192, 160, 128 in Table 7; any size from 32 up works).

Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks" (CVPR 2018): blocks expand
a thin bottleneck ``t`` times with a 1x1 convolution, filter it depthwise and project it back
linearly (no activation), with a residual between bottlenecks of the same shape (Table 2). Channels
are ``make_divisible(alpha * c, 8)``; the last 1x1 convolution keeps 1280 channels for
``alpha <= 1``.

Both take ``output_stride`` (8, 16, 32): past that stride, strides turn into dilation (DeepLabv3).
``features_only`` of MobileNetV2 ends at the last bottleneck (320 channels), without the 1280-channel
convolution, as Sandler et al. Section 6.3 builds DeepLabv3 on "the second last feature map".

Parameter counts equal ``keras.applications.MobileNet`` / ``MobileNetV2`` for every alpha (the
1x1-convolution classifier of Keras's MobileNet has the weights of our ``Dense``). Stride-2 layers
use "same" padding; Keras's MobileNet pads only bottom/right, which differs only for odd sizes.
"""

from keras import layers

from garden.layers import (
    activation,
    apply_norm,
    conv_norm_act,
    depthwise_separable,
    make_divisible,
    squeeze_excite,
)
from garden.models._common import classifier
from garden.models._dilation import OutputStride
from garden.models.transfer import block_pairs, copy_pairs

# MobileNet V1, Table 1 by stage: (pointwise filters, stride of the first block, blocks)
SEPARABLE_STAGES = ((64, 1, 1), (128, 2, 2), (256, 2, 2), (512, 2, 6), (1024, 2, 2))

# MobileNetV2, Table 2: (expansion t, output channels c, blocks n, stride of the first block s)
INVERTED_RESIDUAL_STAGES = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


MIN_SIZE = 32


def _check(alpha, inputs):
    if not alpha > 0:
        raise ValueError(f"alpha must be positive, got {alpha!r}")
    height, width = inputs.shape[1:3]
    if min(height or MIN_SIZE, width or MIN_SIZE) < MIN_SIZE:
        raise ValueError(f"input size must be at least {MIN_SIZE}x{MIN_SIZE}, got {height}x{width}")


# ---------------------------------------------------------------- MobileNet (V1)


@classifier(name="mobilenet_v1", dropout=1e-3)
def build_mobilenet_v1(inputs, *, alpha=1.0, output_stride=32):
    """MobileNet (Howard et al., 2017): a stem and 13 depthwise-separable blocks, width multiplier alpha."""
    _check(alpha, inputs)
    walk = OutputStride(output_stride)
    strides, _ = walk.step(2)
    x = conv_norm_act(inputs, int(32 * alpha), 3, strides, act="relu6", name="stem")
    features = {walk.stride: x}
    for stage, (filters, first_stride, blocks) in enumerate(SEPARABLE_STAGES, start=1):
        for block in range(1, blocks + 1):
            strides, rate = walk.step(first_stride if block == 1 else 1)
            x = depthwise_separable(
                x, int(filters * alpha), 3, strides, dilation_rate=rate, act="relu6", name=f"stage{stage}_block{block}"
            )
        features[walk.stride] = x
    return features


def _mobilenet_v1_pairs():
    parts = [("dw", "conv_dw_{}"), ("dw_bn", "conv_dw_{}_bn"), ("pw_conv", "conv_pw_{}"), ("pw_bn", "conv_pw_{}_bn")]
    blocks = block_pairs([blocks for _, _, blocks in SEPARABLE_STAGES], lambda k: k + 1, parts)
    return [("stem_conv", "conv1"), ("stem_bn", "conv1_bn"), *blocks, ("predictions", "conv_preds")]


def transfer_mobilenet_v1(model, reference):
    """Weights of ``keras.applications.MobileNet`` (same alpha) into ``mobilenet_v1``."""
    return copy_pairs(model, reference, _mobilenet_v1_pairs())


# ---------------------------------------------------------------- MobileNetV2


def inverted_residual(
    x, expanded, filters, kernel_size=3, strides=1, dilation_rate=1, act="relu6", se=False, name="block"
):
    """An inverted residual: 1x1 expansion to ``expanded`` channels, depthwise, linear 1x1 projection.

    Sandler et al. 2018, Table 1 and Figure 3(b); the residual joins bottlenecks of the same shape and
    the expansion is skipped when ``expanded`` equals the input channels. MobileNetV3 (Howard et al.
    2019, Figure 4) adds ``se``: squeeze-and-excitation after the depthwise convolution, reduced to
    ``make_divisible(expanded / 4)`` channels with a hard-sigmoid gate.
    Layers: ``{name}_expand_conv/_bn/_act``, ``{name}_dw``, ``{name}_dw_bn``, ``{name}_dw_act``,
    ``{name}_se_*``, ``{name}_project_conv/_bn`` and ``{name}_add``.
    """
    shortcut, channels = x, x.shape[-1]
    if expanded != channels:
        x = conv_norm_act(x, expanded, 1, act=act, name=f"{name}_expand")
    x = layers.DepthwiseConv2D(
        kernel_size, strides=strides, padding="same", dilation_rate=dilation_rate, use_bias=False, name=f"{name}_dw"
    )(x)
    x = apply_norm(x, "batch", f"{name}_dw_bn")
    x = activation(x, act, name=f"{name}_dw_act")
    if se:
        x = squeeze_excite(x, reduced_filters=make_divisible(expanded / 4), gate="hard_sigmoid", name=f"{name}_se")
    x = conv_norm_act(x, filters, 1, act=None, name=f"{name}_project")
    if strides == 1 and channels == filters:
        x = layers.Add(name=f"{name}_add")([shortcut, x])
    return x


@classifier(name="mobilenet_v2")
def build_mobilenet_v2(inputs, *, alpha=1.0, output_stride=32, features_only=False):
    """MobileNetV2 (Sandler et al., 2018): inverted residuals with linear bottlenecks, width multiplier alpha."""
    _check(alpha, inputs)
    walk = OutputStride(output_stride)
    strides, _ = walk.step(2)
    x = conv_norm_act(inputs, make_divisible(32 * alpha), 3, strides, act="relu6", name="stem")
    features = {walk.stride: x}
    for stage, (expansion, channels, blocks, first_stride) in enumerate(INVERTED_RESIDUAL_STAGES, start=1):
        for block in range(1, blocks + 1):
            strides, rate = walk.step(first_stride if block == 1 else 1)
            x = inverted_residual(
                x,
                x.shape[-1] * expansion,
                make_divisible(channels * alpha),
                3,
                strides,
                rate,
                name=f"stage{stage}_block{block}",
            )
        features[walk.stride] = x
    if not features_only:
        last = make_divisible(1280 * alpha) if alpha > 1.0 else 1280
        features[walk.stride] = conv_norm_act(x, last, 1, act="relu6", name="final")
    return features


def _mobilenet_v2_pairs():
    counts = [blocks for _, _, blocks, _ in INVERTED_RESIDUAL_STAGES]
    blocks = block_pairs(counts, lambda k: f"block_{k}" if k else "expanded_conv", inverted_residual_parts("BN"))
    head = [("final_conv", "Conv_1"), ("final_bn", "Conv_1_bn"), ("predictions", "predictions")]
    return [("stem_conv", "Conv1"), ("stem_bn", "bn_Conv1"), *blocks, *head]


def inverted_residual_parts(bn):
    """An inverted residual's layers as ``(garden part, keras.applications template)``; ``bn``: their suffix."""
    ours = ("expand_conv", "expand_bn", "dw", "dw_bn", "project_conv", "project_bn")
    theirs = ("expand", f"expand_{bn}", "depthwise", f"depthwise_{bn}", "project", f"project_{bn}")
    return [(part, "{}_" + template) for part, template in zip(ours, theirs)]


def transfer_mobilenet_v2(model, reference):
    """Weights of ``keras.applications.MobileNetV2`` (same alpha) into ``mobilenet_v2``."""
    return copy_pairs(model, reference, _mobilenet_v2_pairs())
