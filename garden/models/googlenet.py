"""GoogLeNet / Inception v1 (Szegedy et al., "Going Deeper with Convolutions", CVPR 2015), Table 1.

22 weighted layers deep. Each inception module runs four branches side by side and concatenates
them: a 1x1 convolution; a 1x1 reduction then a 3x3; a 1x1 reduction then a 5x5; a 3x3 max pool
then a 1x1 projection. The 1x1 reductions are the lecture's bottleneck: they keep the 3x3 and 5x5
convolutions cheap. The head is global average pooling, dropout 0.4 and one linear layer.

``aux_logits=True`` adds the two auxiliary classifiers of section 5 on inception 4a and 4d (5x5/3
average pool, 1x1 convolution to 128, FC-1024, dropout 0.7, linear); the model then has three
outputs ``[predictions, aux1, aux2]`` (train with loss weights 1, 0.3, 0.3; drop them at
inference). They need an input of at least 80x80 (the 5x5 pool on the stride-16 map).

This is the authors' released definition (BVLC ``bvlc_googlenet``): 5x5 convolutions with bias, no
batch norm, 6,998,552 parameters at 224x224 without the auxiliary heads. Local response
normalization is left out (it has no parameters and later work dropped it); ``norm="batch"``
puts batch norm after every convolution instead. torchvision's ``googlenet`` (6,624,904) differs: it
uses batch norm and, by a known slip, 3x3 kernels in the "5x5" branch. Table 1's operation column
sums to 1.50 G multiply-adds, but lists conv1 at 34 M where 112x112x64x7x7x3 is 118 M (and
inception 5a at 54 M where its own filter counts give 51 M); every other row agrees with the count
here to 1%, 1.58 G in all.
"""

import keras
from keras import layers

from garden.errors import GardenError
from garden.layers import conv_norm_act
from garden.models._common import classification_model, model_input

# name: (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool projection), Table 1
MODULES = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}
# modules between the stride-8, -16 and -32 max pools
STAGES = (("3a", "3b"), ("4a", "4b", "4c", "4d", "4e"), ("5a", "5b"))
AUXILIARY = ("4a", "4d")


def build_googlenet(
    *,
    aux_logits=False,
    norm=None,
    num_classes=1000,
    input_shape=(224, 224, 3),
    include_top=True,
    pooling=None,
    dropout=0.4,
    aux_dropout=0.7,
    classifier_activation=None,
    features_only=False,
    name="googlenet",
):
    """GoogLeNet (Szegedy et al., 2015): nine inception modules with 1x1 reductions, auxiliary heads optional."""
    inputs = model_input(input_shape, (224, 224, 3))
    x = conv_norm_act(inputs, 64, 7, 2, padding=3, norm=norm, name="conv1")
    features = {2: x}
    x = layers.MaxPooling2D(3, 2, padding="same", name="pool1")(x)
    x = conv_norm_act(x, 64, 1, norm=norm, name="conv2_reduce")
    x = conv_norm_act(x, 192, 3, norm=norm, name="conv2")
    features[4] = x
    x = layers.MaxPooling2D(3, 2, padding="same", name="pool2")(x)
    stride, taps = 8, {}
    for index, stage in enumerate(STAGES):
        if index:
            x = layers.MaxPooling2D(3, 2, padding="same", name=f"pool{index + 2}")(x)
            stride *= 2
        for module in stage:
            x = inception_module(x, MODULES[module], norm, name=f"inception{module}")
            taps[module] = x
        features[stride] = x
    model = classification_model(
        inputs,
        features,
        name=name,
        num_classes=num_classes,
        include_top=include_top,
        pooling=pooling,
        dropout=dropout,
        classifier_activation=classifier_activation,
        features_only=features_only,
    )
    if not aux_logits or features_only or not include_top:
        return model
    heads = [
        auxiliary_classifier(taps[module], num_classes, aux_dropout, classifier_activation, norm, f"aux{i}")
        for i, module in enumerate(AUXILIARY, start=1)
    ]
    return keras.Model(inputs, [model.output, *heads], name=name)


def inception_module(x, filters, norm, name):
    """Four parallel branches, concatenated on channels (Figure 2b)."""
    one, reduce3, three, reduce5, five, projection = filters
    branches = [conv_norm_act(x, one, 1, norm=norm, name=f"{name}_1x1")]
    y = conv_norm_act(x, reduce3, 1, norm=norm, name=f"{name}_3x3_reduce")
    branches.append(conv_norm_act(y, three, 3, norm=norm, name=f"{name}_3x3"))
    y = conv_norm_act(x, reduce5, 1, norm=norm, name=f"{name}_5x5_reduce")
    branches.append(conv_norm_act(y, five, 5, norm=norm, name=f"{name}_5x5"))
    y = layers.MaxPooling2D(3, 1, padding="same", name=f"{name}_pool")(x)
    branches.append(conv_norm_act(y, projection, 1, norm=norm, name=f"{name}_pool_proj"))
    return layers.Concatenate(name=f"{name}_concat")(branches)


def auxiliary_classifier(x, num_classes, dropout, classifier_activation, norm, name):
    """5x5/3 average pool, 1x1 conv 128, FC-1024, dropout, linear (section 5)."""
    if min(x.shape[1:3]) < 5:
        raise GardenError(f"{name} needs an input of at least 80x80 (the 5x5 pool sees {x.shape[1]}x{x.shape[2]})")
    x = layers.AveragePooling2D(5, 3, name=f"{name}_pool")(x)
    x = conv_norm_act(x, 128, 1, norm=norm, name=f"{name}_conv")
    x = layers.Flatten(name=f"{name}_flatten")(x)
    x = layers.Dense(1024, activation="relu", name=f"{name}_fc")(x)
    if dropout:
        x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return layers.Dense(num_classes, activation=classifier_activation, name=f"{name}_predictions")(x)
