"""garden: the classic computer-vision networks of a CNN and segmentation lecture, in Keras 3.

>>> import garden
>>> model = garden.create_model("alexnet", num_classes=10)
>>> garden.profile("alexnet", input_shape=(227, 227, 3)).total["params"]

Importing ``garden`` imports nothing heavy: Keras is imported (quietly) the first time a name
below that needs it is used, so ``garden models`` and ``garden --help`` answer at once.
"""

import importlib
import os

# TensorFlow's C++ start-up chatter (oneDNN, CUDA probes) drowns the tables; callers may override.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from garden.registry import create_model, list_models, register_model  # noqa: E402

__version__ = "0.1.0"
__all__ = ["create_model", "import_keras", "list_models", "load_model", "profile", "register_model", "__version__"]

_LAZY = {"profile": "garden.profiler", "load_model": "garden.saving"}


def import_keras():
    """Import Keras (and its backend) without TensorFlow's start-up lines on the terminal; returns it."""
    from garden._quiet import import_keras_quietly

    import_keras_quietly()
    import keras

    return keras


def __getattr__(name):
    if name in _LAZY:
        import_keras()
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'garden' has no attribute {name!r}")
