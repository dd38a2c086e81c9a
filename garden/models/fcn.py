"""Fully convolutional networks on VGG16: FCN-32s, FCN-16s, FCN-8s.

Long, Shelhamer & Darrell, "Fully Convolutional Networks for Semantic Segmentation" (CVPR 2015).
VGG16's fully connected layers are rewritten as convolutions ("convolutionalization", Sec. 3.1):
fc6 a 7x7 convolution with 4096 filters over pool5, fc7 a 1x1 convolution with 4096 filters, and
the classifier a 1x1 convolution to the class scores. Scores are upsampled by learnable transpose
convolutions initialised to bilinear interpolation (Sec. 3.3). The skip variants (Sec. 4.2) add
1x1 class scores from pool4 (16s) and pool3 (8s), zero-initialised, to the 2x upsampled coarser
scores before the last upsampling.

Departure from the paper: it pads the input by 100 pixels and crops afterwards; here every
convolution uses 'same' padding so the maps stay aligned at every input size, and fused maps are
cropped to the finer one when a size is not a multiple of 32.
"""

import keras

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
    fc_units=4096,
    dropout=0.5,
    name="fcn32s",
):
    """FCN (Long et al., 2015): convolutionalized VGG16 with transpose-conv upsampling and skip fusion."""
    inputs = model_input(input_shape, (224, 224, 3))
    features = backbone_features(backbone, inputs, backbone_kwargs=backbone_kwargs)
    logits = fcn(features, inputs, num_classes=num_classes, skips=skips, fc_units=fc_units, dropout=dropout)
    return keras.Model(inputs, logits, name=name)
