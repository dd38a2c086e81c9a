"""A small plain convolutional encoder for 32x32 images (digits, CIFAR-sized pictures).

Not a network of the lecture: the default backbone of the self-supervised methods (docs/ssl.md),
sized so that pre-training several methods fits in minutes on a laptop CPU. Each stage is
conv-BN-ReLU blocks, the first of a stage with stride 2 (except the stem), in the VGG spirit
(Simonyan & Zisserman, 2015): 3x3 kernels only, channels doubling as the resolution halves.
"""

from garden.layers import conv_norm_act
from garden.models._common import classifier

# (filters, blocks, stride) per stage; the stride applies to the stage's first block.
SMALL_CNN_STAGES = ((32, 1, 1), (64, 1, 2), (128, 1, 2), (256, 1, 2))


@classifier(name="small_cnn", input_shape=(32, 32, 3), num_classes=10)
def build_small_cnn(inputs, *, stages=SMALL_CNN_STAGES):
    """A small VGG-style encoder for 32x32 inputs (3x3 conv-BN-ReLU stages, stride-2 downsampling)."""
    x, stride, features = inputs, 1, {}
    for stage, (filters, blocks, first_stride) in enumerate(stages, start=1):
        for block in range(1, blocks + 1):
            block_stride = first_stride if block == 1 else 1
            x = conv_norm_act(x, filters, 3, strides=block_stride, name=f"stage{stage}_{block}")
            stride *= block_stride
        if stride > 1:
            features[stride] = x
    if not features:
        features[1] = x
    return features
