"""The published figures every family keeps beside its code, gathered in one place.

A family module may define ``PUBLISHED = {model name: {"params", "macs", "source", ...}}``:
``params`` are trainable parameters (what papers and torchvision count; batch-norm moving
statistics excluded), ``macs`` multiply-adds at the model's default input size. Optional keys:
``bias_before_norm`` (the reference keeps convolution biases in front of batch norm, which garden
drops) and ``macs_errata`` (a correction to the published sum, explained in the family's docstring).
"""

import importlib
import pkgutil

import garden.models


def published_figures():
    """``{model name: figures}`` merged from the ``PUBLISHED`` dict of every family module."""
    figures = {}
    for module_info in pkgutil.iter_modules(garden.models.__path__):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"garden.models.{module_info.name}")
        figures.update(getattr(module, "PUBLISHED", {}))
    return figures
