"""DenseNet (Huang, Liu, van der Maaten & Weinberger, "Densely Connected Convolutional Networks",
CVPR 2017), DenseNet-BC of Table 1: DenseNet-121, -169 and -201.

Inside a dense block every layer receives the concatenation of all earlier feature maps and adds
``growth_rate`` (k = 32) new ones: batch norm, ReLU, 1x1 convolution to 4k channels (the
bottleneck), batch norm, ReLU, 3x3 convolution to k. Between blocks a transition layer (batch
norm, ReLU, 1x1 convolution halving the channels, 2x2 average pool) shrinks the map; the pool is
'same', so odd maps round up and every stride-s map is ``ceil(input / s)`` wide. The stem is
a 7x7/2 convolution and a 3x3/2 max pool; the head a final batch norm, ReLU and global pooling.

Convolutions carry no bias, so ``count_params()`` equals ``keras.applications.DenseNet121``'s
(8,062,504 with the batch-norm moving statistics; 7,978,856 trainable, as torchvision).
Layers are named as in ``keras.applications``: ``conv{stage}_block{i}_{0,1,2}_*`` in the dense
blocks, ``pool{stage}_*`` for the transitions, ``post_bn`` for the final norm.
"""

from keras import layers

from garden.layers import activation, apply_norm, conv_norm_act
from garden.models._common import classifier
from garden.models.transfer import transfer_by_name

NORM = {"epsilon": 1.001e-5}


@classifier(name="densenet")
def build_densenet(
    inputs, *, blocks=(6, 12, 24, 16), growth_rate=32, bottleneck_width=4, compression=0.5, stem_filters=64
):
    """DenseNet-BC (Huang et al., 2017): dense blocks joined by compressing transition layers."""
    x = conv_norm_act(inputs, stem_filters, 7, 2, padding=3, name="conv1", norm_kwargs=NORM)
    features = {2: x}
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, 2, name="pool1_pool")(x)
    stride = 4
    for stage, count in enumerate(blocks, start=2):
        for index in range(1, count + 1):
            x = dense_layer(x, growth_rate, bottleneck_width, name=f"conv{stage}_block{index}")
        if stage < len(blocks) + 1:
            features[stride] = x
            x = transition(x, compression, name=f"pool{stage}")
            stride *= 2
    x = _norm_act(x, "post")
    features[stride] = x
    return features


def dense_layer(x, growth_rate, bottleneck_width, name):
    """BN-ReLU-1x1 conv (``bottleneck_width * k``), BN-ReLU-3x3 conv (``k``), concatenated to ``x``."""
    y = _norm_act(x, f"{name}_0")
    y = conv_norm_act(y, bottleneck_width * growth_rate, 1, name=f"{name}_1", norm_kwargs=NORM)
    y = layers.Conv2D(growth_rate, 3, padding="same", use_bias=False, name=f"{name}_2_conv")(y)
    return layers.Concatenate(name=f"{name}_concat")([x, y])


def transition(x, compression, name):
    """BN-ReLU, 1x1 convolution to ``compression x`` the channels, 2x2 average pool."""
    x = _norm_act(x, name)
    x = layers.Conv2D(int(x.shape[-1] * compression), 1, use_bias=False, name=f"{name}_conv")(x)
    return layers.AveragePooling2D(2, 2, padding="same", name=f"{name}_pool")(x)


def _norm_act(x, name):
    x = apply_norm(x, "batch", f"{name}_bn", **NORM)
    return activation(x, "relu", name=f"{name}_act")


def transfer(model, reference):
    """Copy ``keras.applications.DenseNet*`` weights into the garden model (its final norm is ``bn``)."""
    return transfer_by_name(model, reference, rename=lambda name: "bn" if name == "post_bn" else name)
