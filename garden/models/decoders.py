"""Segmentation decoders over a backbone's feature maps ``{stride: tensor}`` (the backbone contract).

Each decoder takes ``features`` (garden/models/_common.py), the model's ``inputs`` and its own
options, and returns a feature map for a head, except FCN's, whose skip fusion works on class
scores and so returns logits itself (``LOGITS``). Any registered classification backbone combines
with any of them (:func:`garden.models.segmenter.build_segmenter`); the catalog's segmentation
names are presets of these combinations.

- ``aspp``: DeepLabv3 (Chen et al., 2017): Atrous Spatial Pyramid Pooling on the deepest map.
- ``deeplabv3plus``: DeepLabv3+ (Chen et al., ECCV 2018): ASPP, upsampled to stride 4, joined
  with the stride-4 features reduced to 48 channels, refined by two 3x3 convolutions.
- ``fcn``: FCN (Long et al., CVPR 2015): convolutionalized fc6/fc7, class scores fused with 1x1
  scores of shallower maps, learnable bilinear-initialised transpose convolutions.
- ``unet``: U-Net's expanding path (Ronneberger et al., 2015) on a backbone: upsample 2x,
  concatenate the features of that stride, double 3x3 convolution, up to the input.
SegNet's unpooling decoder needs the pooling switches of its own encoder and stays with it
(garden/models/segnet.py).
"""

import keras
import numpy as np
from keras import layers, ops

from garden.errors import GardenError
from garden.layers import ResizeLike, atrous_spatial_pyramid_pooling, conv_norm_act, depthwise_separable

# Atrous rates of the ASPP's three 3x3 branches for each output stride (the v3 paper, Sec. 4.1).
ASPP_RATES = {16: (6, 12, 18), 8: (12, 24, 36)}


def aspp(features, inputs, *, output_stride=16, filters=256, rates=None, separable=True, dropout=0.1):
    """DeepLabv3's ASPP on the deepest feature map (rates from ``output_stride`` unless given)."""
    return atrous_spatial_pyramid_pooling(
        features[max(features)],
        filters=filters,
        rates=tuple(rates or ASPP_RATES[output_stride]),
        separable=separable,
        dropout=dropout,
        name="aspp",
    )


def deeplabv3plus(
    features,
    inputs,
    *,
    output_stride=16,
    filters=256,
    rates=None,
    separable=True,
    dropout=0.1,
    decoder_filters=256,
    low_level_filters=48,
):
    """The v3+ decoder: ASPP upsampled to stride 4, concatenated with reduced stride-4 features, two 3x3 convs."""
    x = aspp(
        features,
        inputs,
        output_stride=output_stride,
        filters=filters,
        rates=rates,
        separable=separable,
        dropout=dropout,
    )
    low_level = conv_norm_act(_feature(features, 4, "deeplabv3plus"), low_level_filters, 1, name="decoder_low_level")
    x = ResizeLike(name="decoder_upsample")([x, low_level])
    x = layers.Concatenate(name="decoder_concat")([x, low_level])
    block = depthwise_separable if separable else conv_norm_act
    for index in (1, 2):
        x = block(x, decoder_filters, 3, name=f"decoder_conv{index}")
    return x


def fcn(features, inputs, *, num_classes, skips=(16, 8), fc_units=4096, dropout=0.5):
    """FCN's convolutionalized fc6/fc7 and skip fusion; returns logits cropped to the input."""
    x = _feature(features, 32, "fcn")
    for index, (units, kernel) in enumerate(((fc_units, 7), (fc_units, 1)), start=6):
        x = layers.Conv2D(units, kernel, padding="same", activation="relu", name=f"fc{index}")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"fc{index}_dropout")(x)
    scores = layers.Conv2D(num_classes, 1, name="score_fr")(x)
    stride = 32
    for skip in sorted(skips, reverse=True):
        scores = _upsample(scores, num_classes, stride // skip, f"upscore{stride}to{skip}")
        pool = int(np.log2(skip))  # VGG's pooling stage that outputs ``skip`` (pool3 at 8, pool4 at 16)
        skip_scores = layers.Conv2D(num_classes, 1, kernel_initializer="zeros", name=f"score_pool{pool}")(
            _feature(features, skip, "fcn")
        )
        scores = layers.Add(name=f"fuse_pool{pool}")([_crop_to(scores, skip_scores), skip_scores])
        stride = skip
    return _crop_to(_upsample(scores, num_classes, stride, "upscore"), inputs, name="logits")


def unet(features, inputs, *, decoder_filters=(256, 128, 64, 32, 16), norm="batch"):
    """U-Net's expanding path on a backbone: climb the features stride by stride back to the input."""
    strides = sorted(features, reverse=True)
    x = features[strides[0]]
    widths = iter(decoder_filters)
    for stride in strides[1:]:
        width = next(widths, decoder_filters[-1])
        x = layers.UpSampling2D(2, interpolation="bilinear", name=f"up{stride}_upsample")(x)
        x = layers.Concatenate(name=f"up{stride}_concat")([features[stride], x])
        x = double_conv(x, width, "same", norm, f"up{stride}")
    if strides[-1] > 1:
        width = next(widths, decoder_filters[-1])
        x = layers.UpSampling2D(strides[-1], interpolation="bilinear", name="up1_upsample")(x)
        x = double_conv(x, width, "same", norm, "up1")
    return x


def _feature(features, stride, decoder):
    if stride not in features:
        have = ", ".join(map(str, features))
        raise GardenError(f"the {decoder} decoder needs the backbone's stride-{stride} features; it has strides {have}")
    return features[stride]


DECODERS = {"aspp": aspp, "deeplabv3plus": deeplabv3plus, "fcn": fcn, "unet": unet}
LOGITS = {"fcn"}  # decoders that end in class logits themselves


def double_conv(x, filters, padding, norm, name):
    """U-Net's two 3x3 convolutions (with norm and ReLU)."""
    x = conv_norm_act(x, filters, 3, padding=padding, norm=norm, name=f"{name}_conv1")
    return conv_norm_act(x, filters, 3, padding=padding, norm=norm, name=f"{name}_conv2")


@keras.saving.register_keras_serializable(package="garden")
class BilinearUpsampling(keras.initializers.Initializer):
    """Kernel ``(k, k, out, in)`` of a transpose convolution that upsamples each channel bilinearly.

    With kernel ``2f`` (or ``2f - 1``) and stride ``f`` it is bilinear interpolation by ``f``;
    channel ``i`` maps to channel ``i`` only, so a fresh layer is exactly a resize.
    """

    def __call__(self, shape, dtype=None):
        kernel_h, kernel_w, outputs, inputs = shape
        weights = np.zeros(shape, dtype="float32")
        taps = np.outer(_bilinear_taps(kernel_h), _bilinear_taps(kernel_w))
        for channel in range(min(outputs, inputs)):
            weights[:, :, channel, channel] = taps
        return ops.convert_to_tensor(weights, dtype=dtype or "float32")


def _bilinear_taps(size):
    factor = (size + 1) // 2
    centre = factor - 1 if size % 2 == 1 else factor - 0.5
    return 1 - np.abs(np.arange(size) - centre) / factor


def _upsample(x, num_classes, factor, name):
    """Learnable transpose convolution, kernel 2f, stride f, initialised to bilinear upsampling by f."""
    return layers.Conv2DTranspose(
        num_classes,
        2 * factor,
        strides=factor,
        padding="same",
        use_bias=False,
        kernel_initializer=BilinearUpsampling(),
        name=name,
    )(x)


def _crop_to(x, reference, name=None):
    extra_h = x.shape[1] - reference.shape[1]
    extra_w = x.shape[2] - reference.shape[2]
    if extra_h < 0 or extra_w < 0:
        raise ValueError(f"cannot crop {x.shape[1]}x{x.shape[2]} scores to {reference.shape[1]}x{reference.shape[2]}")
    if extra_h == 0 and extra_w == 0:
        return x if name is None else layers.Identity(name=name)(x)
    return layers.Cropping2D(((0, extra_h), (0, extra_w)), name=name or f"{x.name}_crop")(x)
