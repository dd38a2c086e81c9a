"""Pretrained weights: ImageNet through keras.applications' own download and cache, or weight files users have.

``create_model(name, weights="imagenet" | PATH)`` lands in :func:`load_pretrained`: ``"imagenet"``
builds the ``keras.applications`` counterpart with ``weights="imagenet"`` (its downloader and cache,
``$KERAS_HOME/models`` or ``~/.keras/models``; offline, one line names the file and the folder to
put it in), ``PATH`` loads a keras.applications weight file into it; the weights are then copied
into the garden model (the catalog names each model's counterpart and the function in its family
file that maps the layers; garden/models/transfer.py does the copying). Where the garden model's
head differs from the weights' (other classes, a ``_notop`` file), the trunk is copied and the head
keeps its fresh initialisation. ``from_keras_applications(model, source)`` is the same copy from a
built ``keras.applications`` model.
"""

import contextlib
import inspect
from pathlib import Path

import keras

from garden.catalog import CATALOG
from garden.errors import GardenError
from garden.registry import get_entry, resolve

IMAGENET_CLASSES = 1000


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


def _has_top(model):
    return len(model.output_shape) == 2 and any(layer.name == "predictions" for layer in model.layers)


def _application(application, architecture=None, **kwargs):
    """``keras.applications.<application>(**kwargs)`` with the garden architecture's width and no rescaling."""
    builder = getattr(keras.applications, application)
    parameters = inspect.signature(builder).parameters
    if "alpha" in parameters:
        kwargs["alpha"] = float((architecture or {}).get("alpha", 1.0))
    if "include_preprocessing" in parameters:  # MobileNetV3: garden normalises with InputNormalization
        kwargs["include_preprocessing"] = False
    try:
        return builder(**kwargs)
    except ValueError as error:
        raise GardenError(f"cannot build keras.applications.{application} for these weights: {error}") from None


def _load_application(application, path, model, architecture=None):
    """The application with the weight file at ``path``: with the model's head if the file has it, else without."""
    if not Path(path).is_file():
        raise GardenError(f"weight file {path} does not exist")
    shape = tuple(model.input_shape[1:])
    headless = {"include_top": False, "input_shape": shape}
    imagenet_head = {"include_top": True, "input_shape": None, "classes": IMAGENET_CLASSES}  # a file with its top
    if _has_top(model):
        attempts = [{"include_top": True, "input_shape": shape, "classes": int(model.output_shape[-1])}, headless]
    else:
        attempts = [headless, imagenet_head]
    for kwargs in attempts:
        reference = _application(application, architecture, weights=None, **kwargs)
        try:
            reference.load_weights(path)
            return reference
        except (OSError, ValueError) as error:
            failure = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    raise GardenError(f"cannot load {application} weights from {path}: {failure[:300]}")


def _imagenet_application(application, model, architecture=None):
    """The application with ImageNet weights, through keras.applications' downloader and cache."""
    include_top = _has_top(model) and int(model.output_shape[-1]) == IMAGENET_CLASSES
    # headless: at the model's size (MobileNets have weights per input size); with the top: the default size
    shape = None if include_top else tuple(model.input_shape[1:])
    with _named_downloads(application):
        return _application(application, architecture, weights="imagenet", include_top=include_top, input_shape=shape)


@contextlib.contextmanager
def _named_downloads(application):
    """keras.applications' downloader, its failure (offline, a bad file) as one line naming the file and folder.

    keras.applications fetch through ``keras.src.utils.file_utils.get_file``, which is wrapped here
    (Keras has no public hook).
    """
    from keras.src.utils import file_utils

    original = file_utils.get_file

    def get_file(fname=None, origin=None, *args, **kwargs):
        try:
            return original(fname, origin, *args, **kwargs)
        except Exception as error:  # noqa: BLE001  (urllib, hash and OS errors alike)
            folder = cache_folder(kwargs.get("cache_dir"), kwargs.get("cache_subdir", "datasets"))
            reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
            raise GardenError(
                f"cannot fetch the ImageNet weights of {application} ({reason}): download {origin} "
                f"and put it in {folder}/ as {fname or Path(str(origin)).name}"
            ) from None

    file_utils.get_file = get_file
    try:
        yield
    finally:
        file_utils.get_file = original


def cache_folder(cache_dir=None, subdir="models"):
    """The folder keras.applications' downloader reads and writes (``$KERAS_HOME/models``, ``~/.keras/models``)."""
    from keras.src.backend import config

    return Path(cache_dir or config.keras_home()).expanduser() / subdir


def load_pretrained(model, name, weights, architecture):
    """Fill the garden model ``name`` (built with ``architecture``) from ``"imagenet"`` or a weight file."""
    entry = CATALOG[name].weights
    if weights == "imagenet":
        reference = _imagenet_application(entry.application, model, architecture)
    elif isinstance(weights, (str, Path)):
        reference = _load_application(entry.application, weights, model, architecture)
    else:
        raise GardenError(f"weights must be None, 'imagenet' or the path of a weight file, got {weights!r}")
    if _has_top(model) and not _has_top(reference):
        _transfer_trunk(model, name, reference, architecture)
    else:
        resolve(entry.transfer)(model, reference)
    return model


def _transfer_trunk(model, name, reference, architecture):
    """Weights without the model's head: copy them into a headless twin, then its layers into ``model``."""
    twin = get_entry(name).builder(**{**architecture, "include_top": False, "pooling": None})
    resolve(CATALOG[name].weights.transfer)(twin, reference)
    for layer in twin.layers:
        if layer.weights:
            model.get_layer(layer.name).set_weights(layer.get_weights())


def with_fully_connected(name, weights, architecture=None):
    """The keras.applications VGG of garden model ``name`` with its fully connected layers (FCN's fc6/fc7).

    ``weights``: ``"imagenet"`` or a weight file of the model with its top (1000 classes).
    """
    application = CATALOG[name].weights.application
    if weights == "imagenet":
        with _named_downloads(application):
            return _application(application, architecture, weights="imagenet", include_top=True)
    if not Path(weights).is_file():
        raise GardenError(f"weight file {weights} does not exist")
    reference = _application(application, architecture, weights=None, include_top=True)
    try:
        reference.load_weights(weights)
    except (OSError, ValueError) as error:
        raise GardenError(
            f"{weights} holds no {application} fully connected layers (a file with its top, 1000 classes): "
            f"{str(error).strip().splitlines()[0][:200]}"
        ) from None
    return reference


def imagenet_class_names():
    """The 1,000 ImageNet class names from Keras's ``imagenet_class_index.json`` in its cache, or None.

    Nothing is downloaded: the file is there once ``keras.applications.*.decode_predictions`` has run.
    """
    import json

    path = cache_folder() / "imagenet_class_index.json"
    try:
        index = json.loads(path.read_text())
        names = [index[str(i)][1] for i in range(IMAGENET_CLASSES)]
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None
    return names
