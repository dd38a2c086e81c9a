"""Copying ``keras.applications`` weights into garden models, layer by layer, by name.

The families register a transfer with :func:`garden.weights.register_transfer`; this module is the
one copy routine they share. A garden convolution that feeds batch norm has no bias (the norm's
mean cancels it); where the reference has one, the bias is folded into that norm's moving mean:
``BN(conv(x) + b)`` with mean ``m`` equals ``BN(conv(x))`` with mean ``m - b``.
"""

import numpy as np
from keras import layers

from garden.errors import GardenError


def transfer_by_name(model, reference, rename=None):
    """Copy every weighted layer of ``model`` from the layer of ``reference`` named ``rename(name)``.

    Convolution biases missing in ``model`` are folded into the batch norm ``{prefix}_bn`` that
    follows ``{prefix}_conv``. Every weighted layer of ``model`` must find its source.
    """
    rename = rename or (lambda name: name)
    sources = {layer.name: layer for layer in reference.layers}
    folded = {}  # garden batch-norm name -> bias to subtract from its moving mean
    for layer in model.layers:
        if not layer.weights:
            continue
        source_name = rename(layer.name)
        if source_name not in sources:
            raise GardenError(f"{reference.name} has no layer {source_name!r} for {model.name}'s {layer.name!r}")
        weights = [np.asarray(w) for w in sources[source_name].get_weights()]
        if isinstance(layer, layers.Conv2D) and not layer.use_bias and len(weights) == 2:
            weights, bias = weights[:1], weights[1]
            folded[_norm_of(layer.name)] = bias
        if isinstance(layer, layers.BatchNormalization) and layer.name in folded:
            gamma, beta, mean, variance = weights
            weights = [gamma, beta, mean - folded.pop(layer.name), variance]
        _set(layer, weights, source_name)
    if folded:
        raise GardenError(f"no batch norm to fold the bias of {', '.join(folded)} into")
    return model


def _norm_of(conv_name):
    if not conv_name.endswith("_conv"):
        raise GardenError(f"cannot fold the bias of {conv_name!r}: its name does not end in _conv")
    return conv_name[: -len("_conv")] + "_bn"


def _set(layer, weights, source_name):
    shapes = [tuple(w.shape) for w in layer.get_weights()]
    if shapes != [w.shape for w in weights]:
        raise GardenError(
            f"cannot copy {source_name} {[w.shape for w in weights]} into {layer.name} {shapes}"
        )
    layer.set_weights(weights)
