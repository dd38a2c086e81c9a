"""Loading ``.keras`` files that hold garden layers, losses and metrics, always with ``safe_mode``."""

import importlib
import zipfile
from pathlib import Path

import keras

from garden.errors import GardenError

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


def load_model_file(path, *, compile=False):
    """:func:`load_model` for the command lines: a missing, corrupt, truncated or unsafe file is one ``GardenError``."""
    path = Path(path)
    if not path.is_file():
        raise GardenError(f"model file {path} does not exist")
    if not zipfile.is_zipfile(path):
        raise GardenError(f"model file {path} is not a .keras archive (corrupt or truncated)")
    try:
        return load_model(path, compile=compile)
    except Exception as error:  # noqa: BLE001  (Keras raises many types for a damaged archive)
        text = str(error)
        if "safe_mode" in text or "Lambda" in text:
            raise GardenError(
                f"model file {path} runs arbitrary code when loaded (a Lambda layer or a Python function), "
                "which safe mode refuses: rebuild the model with registered layers"
            ) from None
        first = next((line.strip() for line in text.splitlines() if line.strip()), type(error).__name__)
        raise GardenError(f"cannot load model file {path} (corrupt or truncated?): {first[:200]}") from None
