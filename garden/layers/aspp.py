"""Atrous Spatial Pyramid Pooling (Chen et al., "Rethinking Atrous Convolution", 2017, Fig. 5;
"Encoder-Decoder with Atrous Separable Convolution", ECCV 2018, Fig. 2)."""

from keras import layers

from garden.layers.conv import conv_norm_act, depthwise_separable
from garden.layers.upsampling import ResizeLike


def atrous_spatial_pyramid_pooling(
    x,
    filters=256,
    rates=(6, 12, 18),
    separable=True,
    image_pooling=True,
    norm="batch",
    act="relu",
    dropout=0.1,
    name="aspp",
):
    """Parallel branches over one feature map, concatenated and projected by a 1x1 convolution.

    Branches: a 1x1 convolution; one 3x3 convolution per atrous ``rate`` (depthwise-separable
    when ``separable``, as in DeepLabv3+; standard for DeepLabv3 and the cost comparison); and
    image pooling (global average, 1x1 convolution, resized back). Rates (6, 12, 18) suit output
    stride 16; double them for output stride 8.
    """
    branches = [conv_norm_act(x, filters, 1, norm=norm, act=act, name=f"{name}_b0")]
    for index, rate in enumerate(rates, start=1):
        block = depthwise_separable if separable else conv_norm_act
        branches.append(block(x, filters, 3, dilation_rate=rate, norm=norm, act=act, name=f"{name}_b{index}"))
    if image_pooling:
        pooled = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool")(x)
        pooled = conv_norm_act(pooled, filters, 1, norm=norm, act=act, name=f"{name}_pool_proj")
        branches.append(ResizeLike(name=f"{name}_pool_resize")([pooled, x]))
    x = layers.Concatenate(name=f"{name}_concat")(branches)
    x = conv_norm_act(x, filters, 1, norm=norm, act=act, name=f"{name}_proj")
    return layers.Dropout(dropout, name=f"{name}_dropout")(x) if dropout else x
