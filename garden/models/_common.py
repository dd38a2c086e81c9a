"""What every classification builder shares: the input, the head and the backbone contract.

A family builder makes its trunk and hands ``classification_model`` the input and a dict of
feature maps keyed by their integer stride (2, 4, 8, 16, 32), shallowest first; where a backbone
dilates instead of striding (``output_stride``) the deepest map at a resolution is the one kept.
The last entry is the trunk's output. Every model built here carries that dict as
``model.features`` (``{4: tensor, 8: ..., 16: ..., 32: ...}``, symbolic tensors of the model's own
graph), so decoders sit on any built backbone: ``keras.Model(model.input, model.features[8])``.
``features_only=True`` returns the maps as the model's outputs (named ``stride_2`` ...), for
use as a layer; otherwise the usual ``include_top``/``pooling`` contract of ``keras.applications``
applies.
"""

import functools
import inspect

import keras
from keras import layers

from garden.layers import InputNormalization

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
        outputs = {feature_name(stride): tensor for stride, tensor in features.items()}
        return with_features(keras.Model(inputs, outputs, name=f"{name}_features"), features)
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
    return with_features(keras.Model(inputs, x, name=name), features)


def feature_name(stride):
    """The output name of the stride-``stride`` map of a ``features_only`` model."""
    return f"stride_{stride}"


def with_features(model, features):
    """Attach the backbone contract to ``model``: ``model.features``, ``{stride: tensor}`` by stride."""
    model.features = dict(sorted(features.items()))
    return model


def classifier(*, name, input_shape=(224, 224, 3), num_classes=1000, dropout=0.0):
    """Turn a family's trunk into a classification builder with the keywords every classifier shares.

    The trunk is ``trunk(inputs, **architecture)`` and returns its ``{stride: tensor}`` feature maps,
    or ``(features, head)`` for a family with its own classifier (``head(x) -> x`` before the final
    dense layer). The builder takes the trunk's keywords and ``num_classes``, ``input_shape``,
    ``include_top``, ``pooling``, ``dropout``, ``classifier_activation``, ``features_only``,
    ``input_normalization`` and ``name`` (defaults given here per family); a trunk that declares one
    of those receives it too. ``input_normalization`` (``"tf"``, ``"torch"``, ``"caffe"``: the
    preprocessing of keras.applications' weights) puts ``garden.layers.InputNormalization`` first,
    so the model still takes [0, 1] pixels.
    """
    shared = {
        "num_classes": num_classes,
        "input_shape": input_shape,
        "include_top": True,
        "pooling": None,
        "dropout": dropout,
        "classifier_activation": None,
        "features_only": False,
        "input_normalization": None,
        "name": name,
    }

    def decorate(trunk):
        own = [p for p in inspect.signature(trunk).parameters.values()][1:]  # after ``inputs``
        extra = [
            inspect.Parameter(key, inspect.Parameter.KEYWORD_ONLY, default=value)
            for key, value in shared.items()
            if key not in {p.name for p in own}
        ]
        signature = inspect.Signature([p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own] + extra)

        @functools.wraps(trunk)
        def build(**kwargs):
            arguments = signature.bind(**kwargs)
            arguments.apply_defaults()
            values = arguments.arguments
            inputs = model_input(values["input_shape"], input_shape)
            normalization = values["input_normalization"]
            x = inputs if normalization is None else InputNormalization.of(normalization)(inputs)
            result = trunk(x, **{p.name: values[p.name] for p in own})
            features, head = result if isinstance(result, tuple) else (result, None)
            head_options = {key: values[key] for key in shared if key not in ("input_shape", "input_normalization")}
            return classification_model(inputs, features, head=head, **head_options)

        build.__signature__ = signature
        return build

    return decorate


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
