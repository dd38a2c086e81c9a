"""Copy ``keras.applications`` weights by explicit layer-name pairs (used by the family files)."""

import numpy as np

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


def _copy_reshaped(target, source):
    target_weights, source_weights = target.get_weights(), source.get_weights()
    shapes = [w.shape for w in target_weights], [w.shape for w in source_weights]
    if len(target_weights) != len(source_weights) or any(
        t.size != s.size for t, s in zip(target_weights, source_weights)
    ):
        raise GardenError(f"cannot copy {source.name} {shapes[1]} into {target.name} {shapes[0]}")
    target.set_weights([np.reshape(s, t.shape) for t, s in zip(target_weights, source_weights)])

