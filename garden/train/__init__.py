"""Training: ``fit`` any garden model on any data source, and the ``garden train`` command."""

import importlib

__all__ = ["MODEL_DEFAULTS", "Settings", "fit", "settings_for"]


def __getattr__(name):
    """``fit`` and its settings on first use: importing the package stays light (``garden --help``)."""
    if name in __all__:
        return getattr(importlib.import_module("garden.train.trainer"), name)
    raise AttributeError(f"module 'garden.train' has no attribute {name!r}")
