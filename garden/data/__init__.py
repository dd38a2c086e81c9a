"""Data: the ``Examples`` contract (``garden.data.base``) and the sources that produce it."""

from garden.data.base import (
    IGNORE_LABEL,
    ArrayExamples,
    Examples,
    FileExamples,
    Subset,
    Unlabelled,
    split,
    to_model_input,
)

__all__ = [
    "IGNORE_LABEL",
    "ArrayExamples",
    "Examples",
    "FileExamples",
    "Subset",
    "Unlabelled",
    "split",
    "to_model_input",
]
