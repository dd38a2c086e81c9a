"""DeepLabv3 and DeepLabv3+ on any registered backbone.

- DeepLabv3: Chen, Papandreou, Schroff & Adam, "Rethinking Atrous Convolution for Semantic Image
  Segmentation" (2017): an atrous backbone at output stride 16 or 8, then Atrous Spatial Pyramid
  Pooling (a 1x1 branch, three atrous 3x3 branches, image pooling), a 1x1 classifier and bilinear
  upsampling to the input.
- DeepLabv3+: Chen, Zhu, Papandreou, Schroff & Adam, "Encoder-Decoder with Atrous Separable
  Convolution for Semantic Image Segmentation" (ECCV 2018): the ASPP output upsampled 4x, joined
  with the backbone's stride-4 features reduced to 48 channels by a 1x1 convolution, refined by
  two 3x3 convolutions, then upsampled 4x.

As in the v3+ paper the ASPP and decoder 3x3 convolutions are depthwise-separable; ``separable=False``
makes them standard convolutions (the lecture's cost comparison). Resizes are bilinear to a size
known when the model is built (``ResizeLike``), and the atrous rates become dilated convolutions, so
a fixed-size batch-1 export is plain convolutions, pooling and resizes.
"""

import keras
from keras import layers

from garden.layers import ResizeLike, atrous_spatial_pyramid_pooling, conv_norm_act, depthwise_separable
from garden.models._common import model_input
from garden.models._segmentation import backbone_features, check_stride, logits_head

# Atrous rates of the ASPP's three 3x3 branches for each output stride (the v3 paper, Sec. 4.1).
ASPP_RATES = {16: (6, 12, 18), 8: (12, 24, 36)}


def build_deeplab(
    *,
    num_classes=21,
    input_shape=(513, 513, 3),
    backbone="mobilenet_v2",
    output_stride=16,
    alpha=None,
    decoder=True,
    separable=True,
    aspp_filters=256,
    aspp_rates=None,
    decoder_filters=256,
    low_level_filters=48,
    dropout=0.1,
    name="deeplabv3plus",
):
    """DeepLabv3 (Chen et al., 2017) / v3+ (2018): atrous backbone, ASPP; v3+ adds a stride-4 decoder."""
    check_stride(output_stride)
    inputs = model_input(input_shape, (513, 513, 3))
    backbone_kwargs = {} if alpha is None else {"alpha": alpha}
    features = backbone_features(backbone, inputs, output_stride=output_stride, **backbone_kwargs)
    x = atrous_spatial_pyramid_pooling(
        features[max(features)],
        filters=aspp_filters,
        rates=tuple(aspp_rates or ASPP_RATES[output_stride]),
        separable=separable,
        dropout=dropout,
        name="aspp",
    )
    if decoder:
        x = _decoder(x, features[4], decoder_filters, low_level_filters, separable)
    logits = logits_head(x, num_classes, reference=inputs)
    return keras.Model(inputs, logits, name=name)


def _decoder(x, low_level, filters, low_level_filters, separable):
    """The v3+ decoder: upsample the ASPP output to stride 4, concatenate, refine with two 3x3 convs."""
    low_level = conv_norm_act(low_level, low_level_filters, 1, name="decoder_low_level")
    x = ResizeLike(name="decoder_upsample")([x, low_level])
    x = layers.Concatenate(name="decoder_concat")([x, low_level])
    block = depthwise_separable if separable else conv_norm_act
    for index in (1, 2):
        x = block(x, filters, 3, name=f"decoder_conv{index}")
    return x
