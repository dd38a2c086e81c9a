"""MobileNetV3-Large and -Small: searched inverted residuals with hard-swish and squeeze-excite.

Howard et al., "Searching for MobileNetV3" (ICCV 2019). The block tables below are the paper's
Tables 1 (Large) and 2 (Small), row for row: kernel, expansion size, output channels, SE,
nonlinearity, stride. The blocks are MobileNetV2's inverted residuals
(``garden.models.mobilenet.inverted_residual``) with SE reduced to a quarter of the expansion and a
hard-sigmoid gate. The head is Section 5.2's efficient last stage: 1x1 convolution to six times the
last bottleneck, global pooling, then a 1x1 (here ``Dense``) layer without normalization to
1280 (Large) or 1024 (Small) channels, hard-swish, dropout and the classifier.

The width multiplier ``alpha`` scales output channels to ``make_divisible(alpha * c, 8)``; each
expansion keeps the ratio of the table (expansion size over the input channels at ``alpha = 1``)
applied to the actual input channels, as the official implementation does. The 16-channel stem does
not scale.

Unlike ``keras.applications.MobileNetV3*`` there is no built-in ``Rescaling`` layer: inputs are
[0, 1] pixels like every garden model (Keras's ``include_preprocessing`` maps [0, 255] to [-1, 1]).
Parameter counts equal Keras's built with ``include_preprocessing=False``. ``include_top=False``
keeps the 1x1 convolution to six times the bottleneck (as Keras does) but not the 1280/1024 layer;
``features_only`` ends at the last bottleneck (160 or 96 channels), like MobileNetV2's.
"""

from keras import layers

from garden.layers import activation, conv_norm_act, make_divisible
from garden.models._common import classifier
from garden.models._dilation import OutputStride
from garden.models.mobilenet import inverted_residual, inverted_residual_parts
from garden.models.transfer import block_pairs, copy_pairs

RE, HS = "relu", "hard_swish"

# Table 1, by stage (a stage starts at a stride-2 row): (kernel, expansion, out, SE, activation, stride)
LARGE = (
    ((3, 16, 16, False, RE, 1),),
    ((3, 64, 24, False, RE, 2), (3, 72, 24, False, RE, 1)),
    ((5, 72, 40, True, RE, 2), (5, 120, 40, True, RE, 1), (5, 120, 40, True, RE, 1)),
    (
        (3, 240, 80, False, HS, 2),
        (3, 200, 80, False, HS, 1),
        (3, 184, 80, False, HS, 1),
        (3, 184, 80, False, HS, 1),
        (3, 480, 112, True, HS, 1),
        (3, 672, 112, True, HS, 1),
    ),
    ((5, 672, 160, True, HS, 2), (5, 960, 160, True, HS, 1), (5, 960, 160, True, HS, 1)),
)

# Table 2
SMALL = (
    ((3, 16, 16, True, RE, 2),),
    ((3, 72, 24, False, RE, 2), (3, 88, 24, False, RE, 1)),
    (
        (5, 96, 40, True, HS, 2),
        (5, 240, 40, True, HS, 1),
        (5, 240, 40, True, HS, 1),
        (5, 120, 48, True, HS, 1),
        (5, 144, 48, True, HS, 1),
    ),
    ((5, 288, 96, True, HS, 2), (5, 576, 96, True, HS, 1), (5, 576, 96, True, HS, 1)),
)

STEM_FILTERS = 16
BLOCKS = {"large": LARGE, "small": SMALL}


@classifier(name="mobilenet_v3", dropout=0.2)
def build_mobilenet_v3(inputs, *, blocks, last_channels, alpha=1.0, output_stride=32, dropout=0.2, features_only=False):
    """MobileNetV3 (Howard et al., 2019): searched inverted residuals with SE and hard-swish (``blocks`` table).

    ``blocks`` is a table like ``LARGE`` or the name of one (``"large"``, ``"small"``).
    """
    if isinstance(blocks, str):
        if blocks not in BLOCKS:
            raise ValueError(f"unknown MobileNetV3 blocks {blocks!r}; choose {', '.join(BLOCKS)} or give a table")
        blocks = BLOCKS[blocks]
    if not alpha > 0:
        raise ValueError(f"alpha must be positive, got {alpha!r}")
    walk = OutputStride(output_stride)
    strides, _ = walk.step(2)
    x = conv_norm_act(inputs, STEM_FILTERS, 3, strides, act=HS, name="stem")
    features, table_channels = {walk.stride: x}, STEM_FILTERS
    for stage, rows in enumerate(blocks, start=1):
        for block, (kernel, expansion, out, se, act, stride) in enumerate(rows, start=1):
            strides, rate = walk.step(stride)
            expanded = make_divisible(x.shape[-1] * expansion / table_channels)
            x = inverted_residual(
                x,
                expanded,
                make_divisible(out * alpha),
                kernel,
                strides,
                rate,
                act,
                se,
                name=f"stage{stage}_block{block}",
            )
            table_channels = out
        features[walk.stride] = x
    if not features_only:
        features[walk.stride] = conv_norm_act(x, make_divisible(x.shape[-1] * 6), 1, act=HS, name="final")
    head_channels = make_divisible(last_channels * alpha) if alpha > 1.0 else last_channels
    return features, _efficient_head(head_channels, dropout)


def _efficient_head(channels, dropout):
    """Global pooling, a 1x1 layer without normalization, hard-swish and dropout (Section 5.2)."""

    def head(x):
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dense(channels, name="head_fc")(x)
        x = activation(x, HS, name="head_fc_act")
        if dropout:
            x = layers.Dropout(dropout, name="head_dropout")(x)
        return x

    return head


def _pairs(blocks):
    parts = [
        *inverted_residual_parts("bn"),
        ("se_reduce", "{}_squeeze_excite_conv"),
        ("se_expand", "{}_squeeze_excite_conv_1"),
    ]
    pairs = block_pairs([len(rows) for rows in blocks], lambda k: f"expanded_conv_{k}" if k else "expanded_conv", parts)
    head = [("final_conv", "conv_1"), ("final_bn", "conv_1_bn"), ("head_fc", "conv_2"), ("predictions", "logits")]
    return [("stem_conv", "conv"), ("stem_bn", "conv_bn"), *pairs, *head]


def transfer_large(model, reference):
    """Weights of ``keras.applications.MobileNetV3Large`` (same alpha) into ``mobilenet_v3_large``."""
    return copy_pairs(model, reference, _pairs(LARGE))


def transfer_small(model, reference):
    """Weights of ``keras.applications.MobileNetV3Small`` (same alpha) into ``mobilenet_v3_small``."""
    return copy_pairs(model, reference, _pairs(SMALL))
