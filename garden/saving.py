"""Loading ``.keras`` files that hold garden layers, losses and metrics, always with ``safe_mode``."""

import keras

# Every module that registers a class with Keras's serialization, so that a saved model loads back.
import garden.layers  # noqa: F401
import garden.models.fcn  # noqa: F401
import garden.segmentation.losses  # noqa: F401
import garden.segmentation.metrics  # noqa: F401
import garden.ssl.heads  # noqa: F401
import garden.ssl.methods.pretext  # noqa: F401


def load_model(path, *, compile=True):
    """``keras.saving.load_model(path, safe_mode=True)`` with garden's custom objects registered.

    ``safe_mode`` refuses files that would run arbitrary code (a ``Lambda`` layer's bytecode).
    """
    return keras.saving.load_model(path, safe_mode=True, compile=compile)
