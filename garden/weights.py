"""Pretrained weights from files users already have: ``keras.applications`` models or weight files.

Nothing is downloaded. ``from_keras_applications(model, source)`` copies the weights of a
``keras.applications`` model (or of its weight file, loaded into one built with ``weights=None``)
into the garden model of the same architecture. The catalog names, for each model that has one,
its ``keras.applications`` counterpart and the function in its family file that maps the layers
(garden/models/transfer.py holds the copying itself).
"""

import keras

from garden.catalog import CATALOG
from garden.errors import GardenError
from garden.registry import resolve


def transferable_models():
    """Garden model names that ``from_keras_applications`` supports, with their application."""
    return {name: entry.weights.application for name, entry in sorted(CATALOG.items()) if entry.weights}


def from_keras_applications(model, source, garden_name=None):
    """Copy weights from ``source`` into ``model``; returns ``model``.

    ``source`` is a ``keras.applications`` model or the path of its weight file (``.h5`` or
    ``.weights.h5``). ``garden_name`` is the registered name of ``model`` when its ``name`` differs.
    """
    name = garden_name or model.name
    supported = transferable_models()
    if name not in supported:
        raise GardenError(f"no keras.applications counterpart for {name!r}; supported: {', '.join(supported)}")
    weights = CATALOG[name].weights
    if not isinstance(source, keras.Model):
        source = _load_application(weights.application, source, model)
    resolve(weights.transfer)(model, source)
    return model


def _load_application(application, path, model):
    has_top = len(model.output_shape) == 2 and any(layer.name == "predictions" for layer in model.layers)
    builder = getattr(keras.applications, application)
    kwargs = {"weights": None, "input_shape": model.input_shape[1:], "include_top": has_top}
    if has_top:
        kwargs["classes"] = model.output_shape[-1]
    reference = builder(**kwargs)
    try:
        reference.load_weights(path)
    except (OSError, ValueError) as error:
        raise GardenError(f"cannot load {application} weights from {path}: {error}") from None
    return reference
