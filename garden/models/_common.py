"""What every classification builder shares: the input, the head and the feature outputs.

A family builder makes its trunk and hands ``classification_model`` the input and a dict of
feature maps keyed by stride (2, 4, 8, 16, 32). The last entry is the trunk's output.
``features_only=True`` returns those maps as named outputs ``stride_2`` ... ``stride_32``, which
segmentation decoders sit on; otherwise the usual ``include_top``/``pooling`` contract of
``keras.applications`` applies.
"""

import keras
from keras import layers

POOLINGS = (None, "avg", "max")


def model_input(input_shape, default, name="input"):
    """A ``keras.Input`` of ``input_shape`` (H, W, C), or ``default`` when None."""
    shape = tuple(default if input_shape is None else input_shape)
    if len(shape) != 3:
        raise ValueError(f"input_shape must be (height, width, channels), got {shape}")
    return keras.Input(shape=shape, name=name)


def classification_model(
    inputs,
    features,
    *,
    name,
    num_classes=1000,
    include_top=True,
    pooling=None,
    dropout=0.0,
    classifier_activation=None,
    features_only=False,
    head=None,
):
    """Finish a classification network.

    ``head(x)`` replaces the default classifier (global average pool, dropout, dense); it is used
    by the networks whose classifier flattens into fully connected layers (LeNet, AlexNet, VGG).
    The classifier outputs logits unless ``classifier_activation`` is given ("softmax" matches
    ``keras.applications``); logits keep int8 exports faithful.
    """
    if features_only:
        outputs = {f"stride_{stride}": tensor for stride, tensor in features.items()}
        return keras.Model(inputs, outputs, name=f"{name}_features")
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of None, 'avg', 'max'; got {pooling!r}")
    x = list(features.values())[-1]
    if include_top:
        if head is not None:
            x = head(x)
        else:
            x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
            if dropout:
                x = layers.Dropout(dropout, name="head_dropout")(x)
        x = layers.Dense(num_classes, activation=classifier_activation, name="predictions")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)
    return keras.Model(inputs, x, name=name)


def fully_connected_head(units, dropout, flatten=True):
    """Flatten, then hidden ``Dense`` layers named ``fc{i}`` with ReLU, each after a dropout.

    As in AlexNet and VGG, dropout acts on the inputs of the hidden fully connected layers only.
    """

    def head(x):
        if flatten:
            x = layers.Flatten(name="flatten")(x)
        for index, width in units:
            if dropout:
                x = layers.Dropout(dropout, name=f"fc{index}_dropout")(x)
            x = layers.Dense(width, activation="relu", name=f"fc{index}")(x)
        return x

    return head
