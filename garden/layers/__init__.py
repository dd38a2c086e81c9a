"""The lecture's building blocks as Keras 3 layers and functional blocks (``keras.ops`` only)."""

from garden._quiet import import_keras_quietly

import_keras_quietly()

from garden.layers.aspp import atrous_spatial_pyramid_pooling
from garden.layers.attention import make_divisible, squeeze_excite
from garden.layers.conv import activation, bottleneck_1x1, conv_norm_act, depthwise_separable, pad
from garden.layers.norm import NORMS, InputNormalization, apply_norm, normalization
from garden.layers.upsampling import (
    BedOfNailsUnpooling,
    MaskedMaxUnpooling,
    MaxPoolingWithSwitches,
    MaxUnpooling,
    ResizeLike,
    conv_matrix,
)

__all__ = [
    "NORMS",
    "BedOfNailsUnpooling",
    "InputNormalization",
    "MaskedMaxUnpooling",
    "MaxPoolingWithSwitches",
    "MaxUnpooling",
    "ResizeLike",
    "activation",
    "apply_norm",
    "atrous_spatial_pyramid_pooling",
    "bottleneck_1x1",
    "conv_matrix",
    "conv_norm_act",
    "depthwise_separable",
    "make_divisible",
    "normalization",
    "pad",
    "squeeze_excite",
]
