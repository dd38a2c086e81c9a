"""ResNet, ResNeXt and SE-ResNet(Xt): one builder driven by a stage table.

- He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition" (CVPR 2016), Table 1:
  a 7x7/2 stem and max pool, then four stages ``conv2`` ... ``conv5`` of basic blocks
  (two 3x3 convolutions; ResNet-18/34) or bottleneck blocks (1x1 reduce, 3x3, 1x1 expand x4;
  ResNet-50/101/152). Downsampling is done by the first block of ``conv3``-``conv5``.
- Xie, Girshick, Dollar, Tu & He, "Aggregated Residual Transformations for Deep Neural Networks"
  (CVPR 2017), Table 1: ResNeXt replaces the bottleneck's 3x3 by a grouped 3x3 of cardinality 32
  (``32x4d``: 4 channels per group in ``conv2``, doubling per stage).
- Hu, Shen & Sun, "Squeeze-and-Excitation Networks" (CVPR 2018), Figure 3: SE-ResNet puts a
  squeeze-excite gate (reduction 16) on the residual branch, before the addition.

Where the first block of a stage strides: the paper's networks (and ``keras.applications``, and
SENet's released SE-ResNets) stride in the first 1x1 convolution (``stride_in="1x1"``); ResNeXt (and
torchvision's "ResNet v1.5") stride in the 3x3 (``stride_in="3x3"``), which costs more
multiply-adds (ResNet-50: 3.86 G against 4.09 G) for the same parameters.

Parameters: convolutions that feed batch norm carry no bias here (the norm's mean cancels it), so
the trainable parameters equal torchvision's definitions (ResNet-50: 25,557,032). Keras's
``ResNet50`` keeps those biases: its ``count_params()`` is larger by exactly their number (26,560
for ResNet-50: the output channels of every convolution); ``from_keras_applications`` folds them
into the batch-norm moving means, so the outputs agree. ``count_params()`` also counts the
batch-norm moving statistics, which published (trainable) figures leave out.

``output_stride=16`` or ``8`` keeps the resolution of ``conv5`` (and ``conv4``) by replacing their
stride with dilation (Chen et al., DeepLab), as segmentation heads want, through the one
``OutputStride`` walk every family uses: the block whose stride is removed keeps the previous rate,
the blocks after it dilate (as torchvision's ``replace_stride_with_dilation``).

Layers are named like ``keras.applications``: ``conv1_conv``, ``conv{stage}_block{block}_{op}_conv``
with op 0 the projection shortcut and 1-3 the branch, ``..._se_*``, ``..._add``, ``..._out``.
"""

from keras import layers

from garden.errors import GardenError
from garden.layers import conv_norm_act, squeeze_excite
from garden.models._common import classifier
from garden.models._dilation import OutputStride

# (stage name, base width, stride of its first block); a stage's blocks come from ``depths``.
STAGES = (("conv2", 64, 1), ("conv3", 128, 2), ("conv4", 256, 2), ("conv5", 512, 2))
EXPANSION = {"basic": 1, "bottleneck": 4}
# keras.applications' epsilon (converted from the original Caffe models).
NORM = {"epsilon": 1.001e-5}


@classifier(name="resnet")
def build_resnet(
    inputs,
    *,
    block="bottleneck",
    depths=(3, 4, 6, 3),
    groups=1,
    width_per_group=64,
    se_ratio=None,
    stride_in="1x1",
    output_stride=32,
):
    """ResNet (He et al., 2016), ResNeXt (Xie et al., 2017) and SE-ResNet (Hu et al., 2018)."""
    if block not in EXPANSION:
        raise GardenError(f"unknown residual block {block!r}; choose basic or bottleneck")
    if stride_in not in ("1x1", "3x3"):
        raise GardenError(f"stride_in must be '1x1' or '3x3', got {stride_in!r}")
    walk = OutputStride(output_stride)
    x = conv_norm_act(inputs, 64, 7, 2, padding=3, name="conv1", norm_kwargs=NORM)
    walk.step(2)
    features = {walk.stride: x}
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, 2, name="pool1_pool")(x)
    walk.step(2)
    options = {"groups": groups, "width_per_group": width_per_group, "se_ratio": se_ratio, "stride_in": stride_in}
    for (stage, width, first_stride), depth in zip(STAGES, depths):
        for index in range(depth):
            block_stride, dilation = walk.step(first_stride if index == 0 else 1)
            block_name = f"{stage}_block{index + 1}"
            if block == "basic":
                x = basic_block(x, width, block_stride, dilation, block_name, se_ratio)
            else:
                x = bottleneck_block(x, width, block_stride, dilation, block_name, **options)
        features[walk.stride] = x
    return features


def basic_block(x, width, stride, dilation, name, se_ratio=None):
    """Two 3x3 convolutions and the shortcut (He et al., 2016, Figure 5 left)."""
    shortcut = _shortcut(x, width, stride, name)
    padding = _padding(stride, dilation)
    y = conv_norm_act(x, width, 3, stride, padding, dilation, name=f"{name}_1", norm_kwargs=NORM)
    y = conv_norm_act(y, width, 3, 1, "same", dilation, act=None, name=f"{name}_2", norm_kwargs=NORM)
    return _merge(shortcut, y, se_ratio, name)


def bottleneck_block(x, width, stride, dilation, name, groups=1, width_per_group=64, se_ratio=None, stride_in="1x1"):
    """1x1 reduce, 3x3 (grouped for ResNeXt), 1x1 expand to ``4 * width`` (He et al., 2016, Figure 5 right).

    The inner width is ``width * width_per_group / 64 * groups`` (Xie et al., 2017, Table 1).
    """
    inner = int(width * width_per_group / 64) * groups
    shortcut = _shortcut(x, width * EXPANSION["bottleneck"], stride, name)
    stride_1x1, stride_3x3 = (stride, 1) if stride_in == "1x1" else (1, stride)
    y = conv_norm_act(x, inner, 1, stride_1x1, "valid", name=f"{name}_1", norm_kwargs=NORM)
    padding = _padding(stride_3x3, dilation)
    y = conv_norm_act(y, inner, 3, stride_3x3, padding, dilation, groups, name=f"{name}_2", norm_kwargs=NORM)
    y = conv_norm_act(y, width * EXPANSION["bottleneck"], 1, act=None, name=f"{name}_3", norm_kwargs=NORM)
    return _merge(shortcut, y, se_ratio, name)


def _shortcut(x, filters, stride, name):
    """Identity, or a strided 1x1 projection when the shape changes (option B of He et al.)."""
    if stride == 1 and x.shape[-1] == filters:
        return x
    return conv_norm_act(x, filters, 1, stride, "valid", act=None, name=f"{name}_0", norm_kwargs=NORM)


def _merge(shortcut, y, se_ratio, name):
    if se_ratio:
        y = squeeze_excite(y, ratio=se_ratio, name=f"{name}_se")
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.Activation("relu", name=f"{name}_out")(y)


def _padding(stride, dilation):
    """'same' for stride 1; explicit symmetric zeros for a strided 3x3, as the reference models pad."""
    return "same" if stride == 1 else dilation
