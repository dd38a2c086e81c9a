"""Semantic segmentation beyond the models: losses, metrics, classical methods and pictures.

- :mod:`garden.segmentation.losses`: pixel-wise cross-entropy with an ignore label, dice, focal;
- :mod:`garden.segmentation.metrics`: confusion matrix, mean IoU, pixel accuracy (NumPy and Keras);
- :mod:`garden.segmentation.classical`: the lecture's unsupervised methods behind one interface;
- :mod:`garden.segmentation.visualize`: colour-palette masks, overlays, prediction vs ground truth.
"""

import importlib

IGNORE_LABEL = 255

_SUBMODULES = ("classical", "cli", "losses", "metrics", "visualize")


def __getattr__(name):
    """Submodules on first use: importing the package stays light (``garden --help``)."""
    if name in _SUBMODULES:
        return importlib.import_module(f"garden.segmentation.{name}")
    raise AttributeError(f"module 'garden.segmentation' has no attribute {name!r}")
