"""AlexNet, the single-tower variant of the lecture's cost table.

Krizhevsky, Sutskever & Hinton, "ImageNet Classification with Deep Convolutional Neural Networks"
(NeurIPS 2012), in the one-tower form of Krizhevsky, "One weird trick for parallelizing
convolutional neural networks" (2014) that torchvision also uses: 64-192-384-256-256 filters.
At 227x227x3 it has 61,100,840 parameters. Local response normalization is left out, as in that
form. Note the lecture's uneven stride: pool1 sees 56x56 and ``(56 - 3) / 2 + 1 = 27.5``; the
profiler reports it.
"""

from keras import layers

from garden.layers import conv_norm_act
from garden.models._common import classifier, fully_connected_head

# (name, filters, kernel, stride, padding, max-pool 3/2 after)
CONVOLUTIONS = (
    ("conv1", 64, 11, 4, 2, True),
    ("conv2", 192, 5, 1, 2, True),
    ("conv3", 384, 3, 1, 1, False),
    ("conv4", 256, 3, 1, 1, False),
    ("conv5", 256, 3, 1, 1, True),
)


@classifier(name="alexnet", input_shape=(227, 227, 3), dropout=0.5)
def build_alexnet(inputs, *, dropout=0.5):
    """AlexNet (Krizhevsky et al., 2012), one tower: five convolutions, three fully connected layers."""
    x, features, stride = inputs, {}, 1
    for conv_name, filters, kernel, strides, padding, pool in CONVOLUTIONS:
        x = conv_norm_act(x, filters, kernel, strides, padding, norm=None, name=conv_name)
        stride *= strides
        if pool:
            features[stride] = x
            x = layers.MaxPooling2D(3, 2, name=f"{conv_name}_pool")(x)
            stride *= 2
    features[stride] = x
    head = fully_connected_head(((6, 4096), (7, 4096)), dropout)
    return features, head
