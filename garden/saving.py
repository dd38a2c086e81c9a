"""Loading ``.keras`` files that hold garden layers, losses and metrics, always with ``safe_mode``."""

import importlib

import keras

# The modules that register classes with Keras's serialization (imported by name when a file is
# loaded, so that this module imports none of the packages above it).
SERIALIZABLE_MODULES = (
    "garden.layers",
    "garden.models.decoders",
    "garden.segmentation.losses",
    "garden.segmentation.metrics",
    "garden.ssl.heads",
    "garden.ssl.methods.pretext",
)


def load_model(path, *, compile=True):
    """``keras.saving.load_model(path, safe_mode=True)`` with garden's custom objects registered.

    ``safe_mode`` refuses files that would run arbitrary code (a ``Lambda`` layer's bytecode).
    """
    for module in SERIALIZABLE_MODULES:
        importlib.import_module(module)
    return keras.saving.load_model(path, safe_mode=True, compile=compile)
