"""Pretrained weights from files users already have: ``keras.applications`` models or weight files.

Nothing is downloaded. ``from_keras_applications(model, source)`` copies the weights of a
``keras.applications`` model (or of its weight file, loaded into one built with ``weights=None``)
into the garden model of the same architecture. Each family registers how its layers map, in its
own file, with :func:`register_transfer`.
"""

import keras

from garden.errors import GardenError

# garden model name -> (keras.applications constructor name, transfer(garden_model, keras_model))
_TRANSFERS = {}


def register_transfer(model_names, application, transfer):
    """Declare that garden models ``model_names`` take weights from ``keras.applications.<application>``."""
    for name in [model_names] if isinstance(model_names, str) else model_names:
        _TRANSFERS[name] = (application, transfer)


def transferable_models():
    """Garden model names that ``from_keras_applications`` supports, with their application."""
    import garden.models  # noqa: F401  (families register their transfers on import)

    return {name: application for name, (application, _) in sorted(_TRANSFERS.items())}


def from_keras_applications(model, source, garden_name=None):
    """Copy weights from ``source`` into ``model``; returns ``model``.

    ``source`` is a ``keras.applications`` model or the path of its weight file (``.h5`` or
    ``.weights.h5``). ``garden_name`` is the registered name of ``model`` when its ``name`` differs.
    """
    name = garden_name or model.name
    supported = transferable_models()
    if name not in supported:
        raise GardenError(f"no keras.applications counterpart for {name!r}; supported: {', '.join(supported)}")
    application, transfer = _TRANSFERS[name]
    if not isinstance(source, keras.Model):
        source = _load_application(application, source, model)
    transfer(model, source)
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


def copy_weights(target_layer, source_layer):
    """Copy ``source_layer``'s weights into ``target_layer``, checking every shape first."""
    target, source = target_layer.get_weights(), source_layer.get_weights()
    shapes_t, shapes_s = [w.shape for w in target], [w.shape for w in source]
    if shapes_t != shapes_s:
        raise GardenError(f"cannot copy {source_layer.name} {shapes_s} into {target_layer.name} {shapes_t}")
    target_layer.set_weights(source)
