"""VGG (Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition",
ICLR 2015), configurations A (VGG-11), B (13), D (16) and E (19) of Table 1.

Five stages of 3x3 convolutions (64, 128, 256, 512, 512 filters, stride 1, 'same' padding), each
closed by a 2x2 max pool ('same': odd maps round up, as Caffe's pooling did), then FC-4096,
FC-4096 and the classifier with dropout 0.5 after each hidden FC layer. Stacks of 3x3
convolutions replace larger kernels: two have the receptive field of a 5x5, three of a 7x7, with
fewer parameters and more nonlinearities.

``batch_norm=True`` (``vgg*_bn``) puts batch norm after every convolution, as torchvision's
``vgg*_bn``; its convolutions carry no bias (the norm cancels it), so the trainable parameters are
torchvision's minus those biases (4,224 for VGG-16: the sum of the conv widths).

Feature maps ``stride_2`` ... ``stride_32`` are the outputs of the five pools (``pool3``, ``pool4``,
``pool5`` are the taps of FCN-8s). At 224x224 VGG-16 has 138,357,544 parameters, as
``keras.applications.VGG16``; layers are ``block{stage}_conv{index}_conv``, ``block{stage}_pool``,
``fc6``, ``fc7``, ``predictions``.
"""

from keras import layers

from garden.layers import conv_norm_act
from garden.models._common import classifier
from garden.models.transfer import transfer_by_name

FILTERS = (64, 128, 256, 512, 512)


@classifier(name="vgg", dropout=0.5)
def build_vgg(inputs, *, convs_per_stage=(2, 2, 3, 3, 3), batch_norm=False, dropout=0.5):
    """VGG (Simonyan & Zisserman, 2015): five stages of 3x3 convolutions, three fully connected layers."""
    x, features = inputs, {}
    norm = "batch" if batch_norm else None
    for stage, (filters, count) in enumerate(zip(FILTERS, convs_per_stage), start=1):
        for index in range(1, count + 1):
            x = conv_norm_act(x, filters, 3, norm=norm, name=f"block{stage}_conv{index}")
        x = layers.MaxPooling2D(2, 2, padding="same", name=f"block{stage}_pool")(x)
        features[2**stage] = x
    return features, _head(dropout)


def _head(dropout):
    """Flatten, FC-4096, FC-4096, each followed by dropout (the paper's and torchvision's order)."""

    def head(x):
        x = layers.Flatten(name="flatten")(x)
        for index in (6, 7):
            x = layers.Dense(4096, activation="relu", name=f"fc{index}")(x)
            if dropout:
                x = layers.Dropout(dropout, name=f"fc{index}_dropout")(x)
        return x

    return head


def _keras_name(name):
    """garden -> keras.applications layer names: ``block1_conv1_conv`` -> ``block1_conv1``, fc6 -> fc1."""
    if name.endswith("_conv"):
        return name[: -len("_conv")]
    return {"fc6": "fc1", "fc7": "fc2"}.get(name, name)


def transfer(model, reference):
    """Copy ``keras.applications.VGG16``/``VGG19`` weights into the garden model."""
    return transfer_by_name(model, reference, rename=_keras_name)
