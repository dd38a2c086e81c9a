"""U-Net (Ronneberger, Fischer & Brox, "U-Net: Convolutional Networks for Biomedical Image
Segmentation", MICCAI 2015).

A contracting path of double 3x3 convolutions and 2x2 max pooling, an expanding path of 2x2
up-convolutions, each concatenated with the encoder features of the same scale, and a 1x1
convolution to class logits.

- ``unet_valid`` is the paper's form: unpadded convolutions, so a 572x572 tile gives 388x388
  logits for its centre, and the skip features are centre-cropped before concatenation; no
  normalization (the paper predates its common use).
- ``unet`` is the common same-padding form with batch norm: logits at the input resolution.
- ``backbone=`` puts any registered classification model (through ``features_only``) in place of
  the plain encoder; the decoder then climbs its features stride by stride back to the input.
"""

import keras
from keras import layers

from garden.models._common import model_input
from garden.models.decoders import double_conv, unet
from garden.models.heads import logits_head
from garden.models.segmenter import backbone_features

# Filters of the plain encoder's levels, shallowest first; the last level is the bottom of the "U".
ENCODER_FILTERS = (64, 128, 256, 512, 1024)


def build_unet(
    *,
    num_classes=2,
    input_shape=(256, 256, 3),
    padding="same",
    filters=ENCODER_FILTERS,
    backbone=None,
    backbone_kwargs=None,
    backbone_weights=None,
    decoder_filters=(256, 128, 64, 32, 16),
    norm="batch",
    dropout=0.0,
    name="unet",
):
    """U-Net (Ronneberger et al., 2015): contracting path, expanding path with skip concatenation."""
    if padding not in ("same", "valid"):
        raise ValueError(f"padding must be 'same' or 'valid', got {padding!r}")
    inputs = model_input(input_shape, (256, 256, 3))
    if backbone is None:
        logits = _plain_unet(inputs, num_classes, tuple(filters), padding, norm, dropout)
    else:
        if padding != "same":
            raise ValueError("a U-Net on a backbone uses same padding")
        features = backbone_features(
            backbone, inputs, backbone_kwargs=backbone_kwargs, backbone_weights=backbone_weights
        )
        x = unet(features, inputs, decoder_filters=tuple(decoder_filters), norm=norm)
        logits = logits_head(x, num_classes, reference=inputs)
    return keras.Model(inputs, logits, name=name)


def _plain_unet(inputs, num_classes, filters, padding, norm, dropout):
    x, skips = inputs, []
    for level, width in enumerate(filters[:-1], start=1):
        x = double_conv(x, width, padding, norm, f"down{level}")
        _check_even(x, level)
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"down{level}_pool")(x)
    x = double_conv(x, filters[-1], padding, norm, "bottom")
    if dropout:
        x = layers.Dropout(dropout, name="bottom_dropout")(x)
    for level in range(len(skips), 0, -1):
        skip, width = skips[level - 1], filters[level - 1]
        x = layers.Conv2DTranspose(width, 2, strides=2, name=f"up{level}_upconv")(x)
        skip = _centre_crop(skip, x, f"up{level}_crop")
        x = layers.Concatenate(name=f"up{level}_concat")([skip, x])
        x = double_conv(x, width, padding, norm, f"up{level}")
    return logits_head(x, num_classes)


def _check_even(x, level):
    height, width = x.shape[1:3]
    if height % 2 or width % 2:
        raise ValueError(
            f"U-Net level {level} has an odd size {height}x{width} before 2x2 pooling; "
            "use an input size divisible by 2 at every level (e.g. 572 for the valid form, a multiple of 16 otherwise)"
        )


def _centre_crop(skip, reference, name):
    """Crop ``skip`` to ``reference``'s size around its centre (the paper's "cropping" of the valid form)."""
    extra_h = skip.shape[1] - reference.shape[1]
    extra_w = skip.shape[2] - reference.shape[2]
    if extra_h == 0 and extra_w == 0:
        return skip
    crop = ((extra_h // 2, extra_h - extra_h // 2), (extra_w // 2, extra_w - extra_w // 2))
    return layers.Cropping2D(crop, name=name)(skip)
