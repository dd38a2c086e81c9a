"""Fully convolutional networks on VGG16: FCN-32s, FCN-16s, FCN-8s.

Long, Shelhamer & Darrell, "Fully Convolutional Networks for Semantic Segmentation" (CVPR 2015).
VGG16's fully connected layers are rewritten as convolutions ("convolutionalization", Sec. 3.1):
fc6 a 7x7 convolution with 4096 filters over pool5, fc7 a 1x1 convolution with 4096 filters, and
the classifier a 1x1 convolution to the class scores. Scores are upsampled by learnable transpose
convolutions initialised to bilinear interpolation (Sec. 3.3). The skip variants (Sec. 4.2) add
1x1 class scores from pool4 (16s) and pool3 (8s), zero-initialised, to the 2x upsampled coarser
scores before the last upsampling.

``backbone_weights`` (``"imagenet"`` or a keras.applications VGG weight file with its fully
connected layers) starts the backbone from them and, as the paper does, reshapes VGG's fc6 and fc7
(``fc1``/``fc2`` in Keras) into the 7x7 and 1x1 convolutions: at a 224 input the centre of fc6's
map is VGG's fc6 exactly.

Departure from the paper: it pads the input by 100 pixels and crops afterwards; here every
convolution uses 'same' padding so the maps stay aligned at every input size, and fused maps are
cropped to the finer one when a size is not a multiple of 32.
"""

import keras
import numpy as np

from garden.errors import GardenError
from garden.models._common import model_input
from garden.models.decoders import fcn
from garden.models.segmenter import backbone_features


def build_fcn(
    *,
    num_classes=21,
    input_shape=(224, 224, 3),
    skips=(),
    backbone="vgg16",
    backbone_kwargs=None,
    backbone_weights=None,
    fc_units=4096,
    dropout=0.5,
    name="fcn32s",
):
    """FCN (Long et al., 2015): convolutionalized VGG16 with transpose-conv upsampling and skip fusion."""
    inputs = model_input(input_shape, (224, 224, 3))
    features = backbone_features(backbone, inputs, backbone_kwargs=backbone_kwargs, backbone_weights=backbone_weights)
    logits = fcn(features, inputs, num_classes=num_classes, skips=skips, fc_units=fc_units, dropout=dropout)
    model = keras.Model(inputs, logits, name=name)
    if backbone_weights is not None:
        convolutionalize(model, backbone, backbone_weights, backbone_kwargs)
    return model


def convolutionalize(model, backbone, weights, backbone_kwargs=None):
    """Fill fc6/fc7 with VGG's fully connected layers, reshaped into 7x7 and 1x1 kernels (Sec. 3.1)."""
    from garden.registry import resolve

    if backbone not in ("vgg16", "vgg19"):
        raise GardenError(f"FCN's fc6/fc7 come from VGG16 or VGG19's fully connected layers, not {backbone}")
    reference = resolve("garden.weights:with_fully_connected")(backbone, weights, backbone_kwargs)
    for ours, theirs in (("fc6", "fc1"), ("fc7", "fc2")):
        layer, (kernel, bias) = model.get_layer(ours), reference.get_layer(theirs).get_weights()
        shape = tuple(layer.kernel.shape)
        if int(np.prod(shape)) != kernel.size:
            raise GardenError(f"{ours} {shape} cannot take VGG's {theirs} {kernel.shape}: use fc_units=4096")
        layer.set_weights([kernel.reshape(shape), bias])
