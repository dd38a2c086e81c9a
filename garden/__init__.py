"""garden: the classic computer-vision networks of a CNN and segmentation lecture, in Keras 3.

>>> import garden
>>> model = garden.create_model("alexnet", num_classes=10)
>>> garden.profile("alexnet", input_shape=(227, 227, 3)).total["params"]
"""

import os

# TensorFlow's C++ start-up chatter (oneDNN, CUDA probes) drowns the tables; callers may override.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from garden._quiet import import_keras_quietly  # noqa: E402

import_keras_quietly()

from garden import layers, segmentation  # noqa: E402,F401  (register custom layers, losses, metrics: .keras files load)
from garden.profiler import profile  # noqa: E402
from garden.registry import create_model, list_models, register_model  # noqa: E402

__version__ = "0.1.0"
__all__ = ["create_model", "list_models", "profile", "register_model", "__version__"]
