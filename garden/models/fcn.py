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
import numpy as np
from keras import layers, ops

from garden.models._common import model_input
from garden.models._segmentation import backbone_features


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


def build_fcn(
    *,
    num_classes=21,
    input_shape=(224, 224, 3),
    skips=(),
    backbone="vgg16",
    fc_units=4096,
    dropout=0.5,
    name="fcn32s",
):
    """FCN (Long et al., 2015): convolutionalized VGG16 with transpose-conv upsampling and skip fusion."""
    inputs = model_input(input_shape, (224, 224, 3))
    features = backbone_features(backbone, inputs)
    x = features[32]
    for index, (units, kernel) in enumerate(((fc_units, 7), (fc_units, 1)), start=6):
        x = layers.Conv2D(units, kernel, padding="same", activation="relu", name=f"fc{index}")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"fc{index}_dropout")(x)
    scores = layers.Conv2D(num_classes, 1, name="score_fr")(x)
    stride = 32
    for skip in sorted(skips, reverse=True):
        scores = _upsample(scores, num_classes, stride // skip, f"upscore{stride}to{skip}")
        skip_scores = layers.Conv2D(num_classes, 1, kernel_initializer="zeros", name=f"score_pool{_pool(skip)}")(
            features[skip]
        )
        scores = layers.Add(name=f"fuse_pool{_pool(skip)}")([_crop_to(scores, skip_scores), skip_scores])
        stride = skip
    logits = _crop_to(_upsample(scores, num_classes, stride, "upscore"), inputs, name="logits")
    return keras.Model(inputs, logits, name=name)


def _pool(stride):
    """VGG's pooling stage that outputs ``stride`` (pool3 at 8, pool4 at 16)."""
    return int(np.log2(stride))


def _upsample(x, num_classes, factor, name):
    """Learnable transpose convolution, kernel 2f, stride f, initialised to bilinear upsampling by f."""
    return layers.Conv2DTranspose(
        num_classes, 2 * factor, strides=factor, padding="same", use_bias=False,
        kernel_initializer=BilinearUpsampling(), name=name,
    )(x)


def _crop_to(x, reference, name=None):
    extra_h = x.shape[1] - reference.shape[1]
    extra_w = x.shape[2] - reference.shape[2]
    if extra_h < 0 or extra_w < 0:
        raise ValueError(f"cannot crop {x.shape[1]}x{x.shape[2]} scores to {reference.shape[1]}x{reference.shape[2]}")
    if extra_h == 0 and extra_w == 0:
        return x if name is None else layers.Identity(name=name)(x)
    return layers.Cropping2D(((0, extra_h), (0, extra_w)), name=name or f"{x.name}_crop")(x)
