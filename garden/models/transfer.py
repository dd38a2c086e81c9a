"""Copying ``keras.applications`` weights into garden models: the one module that does it.

Two ways, as a family needs: :func:`copy_pairs` by explicit ``(ours, theirs)`` layer-name pairs
(MobileNets, Xception, Inception-ResNet-v2), and :func:`transfer_by_name` by name, optionally
renamed (VGG, ResNet, DenseNet). A garden convolution that feeds batch norm has no bias (the norm's
mean cancels it); where the reference has one, ``transfer_by_name`` folds the bias into that norm's
moving mean: ``BN(conv(x) + b)`` with mean ``m`` equals ``BN(conv(x))`` with mean ``m - b``. The
catalog (garden/catalog.py) names each model's transfer; ``garden.weights`` applies it.
"""

import numpy as np
from keras import layers

from garden.errors import GardenError


def copy_pairs(model, reference, pairs):
    """Copy ``reference``'s layer ``theirs`` into ``model``'s layer ``ours`` for each ``(ours, theirs)``.

    Pairs whose garden layer is absent (a headless or ``features_only`` model) are skipped; every
    garden layer with weights must be covered, so a partial transfer is an error, never silent.
    A 1x1 convolution classifier (MobileNet, MobileNetV3) fills a ``Dense`` of the same size.
    """
    ours_by_name = {layer.name: layer for layer in model.layers}
    theirs_by_name = {layer.name: layer for layer in reference.layers}
    filled = set()
    for ours, theirs in pairs:
        if ours not in ours_by_name:
            continue
        if theirs not in theirs_by_name:
            raise GardenError(f"{reference.name} has no layer {theirs!r} for {model.name}'s {ours!r}")
        _copy_reshaped(ours_by_name[ours], theirs_by_name[theirs])
        filled.add(ours)
    missing = [layer.name for layer in model.layers if layer.weights and layer.name not in filled]
    if missing:
        raise GardenError(f"{reference.name} has no weights for {model.name}'s {', '.join(missing)}")
    return model


def block_pairs(block_counts, block_name, parts):
    """``(ours, theirs)`` pairs for repeated blocks: ``stage{s}_block{b}_{part}`` against ``template``.

    ``block_counts`` gives each stage's number of blocks; ``block_name(k)`` is the reference's name
    of the ``k``-th block overall (from 0), filled into each ``(part, template)`` of ``parts``.
    """
    pairs, index = [], 0
    for stage, count in enumerate(block_counts, start=1):
        for block in range(1, count + 1):
            theirs = block_name(index)
            pairs += [(f"stage{stage}_block{block}_{part}", template.format(theirs)) for part, template in parts]
            index += 1
    return pairs


def _copy_reshaped(target, source):
    target_weights, source_weights = target.get_weights(), source.get_weights()
    shapes = [w.shape for w in target_weights], [w.shape for w in source_weights]
    if len(target_weights) != len(source_weights) or any(
        t.size != s.size for t, s in zip(target_weights, source_weights)
    ):
        raise GardenError(f"cannot copy {source.name} {shapes[1]} into {target.name} {shapes[0]}")
    target.set_weights([np.reshape(s, t.shape) for t, s in zip(target_weights, source_weights)])


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
        raise GardenError(f"cannot copy {source_name} {[w.shape for w in weights]} into {layer.name} {shapes}")
    layer.set_weights(weights)
