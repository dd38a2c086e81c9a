"""The model registry: one door in (``create_model``), one list (``list_models``).

The rows come from :mod:`garden.catalog` (data, no Keras) and from :func:`register_model` (a
user's own builders, at run time). A builder is imported only when its model is built, so
listing the models imports nothing heavy. Keyword overrides are checked against the builder's
signature, so a typo is an error, never silently ignored.
"""

import difflib
import importlib
import inspect
import os
from dataclasses import dataclass, field
from pathlib import Path

from garden.catalog import CATALOG, TASKS
from garden.errors import GardenError


class UnknownModelError(ValueError):
    """A model name that is not registered."""


class UnknownArgumentError(TypeError):
    """A keyword argument the model's builder does not take."""


def resolve(reference):
    """The object a ``"module:attribute"`` string names (a builder or a weight transfer)."""
    if not isinstance(reference, str):
        return reference
    from garden._quiet import import_keras_quietly

    import_keras_quietly()  # builders import Keras; its start-up lines stay off the terminal
    module, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: ``builder(**architecture, **overrides)``; ``builder`` may be ``"module:function"``."""

    name: str
    builder_reference: object
    task: str
    architecture: dict = field(default_factory=dict)
    summary: str = ""
    published: dict = None
    weights: object = None

    @property
    def builder(self):
        return resolve(self.builder_reference)

    @property
    def arguments(self):
        """Keyword arguments a user may pass to ``create_model`` for this model."""
        parameters = inspect.signature(self.builder).parameters.values()
        return sorted(p.name for p in parameters if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))

    @property
    def default_input_shape(self):
        """The input shape the model is built at when none is given."""
        if "input_shape" in self.architecture:
            return tuple(self.architecture["input_shape"])
        parameter = inspect.signature(self.builder).parameters.get("input_shape")
        default = None if parameter is None else parameter.default
        return tuple(default) if default not in (None, inspect.Parameter.empty) else None

    @property
    def description(self):
        if self.summary:
            return self.summary
        doc = inspect.getdoc(self.builder) or ""
        return doc.splitlines()[0] if doc else ""


def _from_catalog(row):
    return ModelEntry(
        row.name, row.builder, row.task, dict(row.architecture), row.description, row.published, row.weights
    )


_ENTRIES = {name: _from_catalog(row) for name, row in CATALOG.items()}
_USER_NAMES = set()


def register_model(name, builder, task, **architecture):
    """Register ``name`` as ``builder(**architecture, **overrides)`` under ``task``; returns ``builder``.

    ``builder`` is a callable or a ``"module:function"`` string. Catalog names cannot be replaced.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if name in _ENTRIES:
        raise ValueError(f"model {name!r} is registered twice")
    _ENTRIES[name] = ModelEntry(name, builder, task, dict(architecture))
    _USER_NAMES.add(name)
    return builder


def unregister_model(name):
    """Remove a model added with :func:`register_model` (catalog models stay)."""
    if name not in _USER_NAMES:
        raise ValueError(f"{name!r} was not added with register_model")
    _USER_NAMES.discard(name)
    del _ENTRIES[name]


def list_models(task=None):
    """Names of registered models, sorted, optionally of one ``task``."""
    if task is not None and task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    return sorted(name for name, entry in _ENTRIES.items() if task in (None, entry.task))


def get_entry(name):
    """The registry entry for ``name``; an unknown name names the closest registered ones."""
    if name not in _ENTRIES:
        close = difflib.get_close_matches(name, _ENTRIES, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see `garden models`"
        raise UnknownModelError(f"unknown model {name!r}{hint}")
    return _ENTRIES[name]


def create_model(name, /, *, weights=None, **overrides):
    """Build the registered model ``name``; ``overrides`` are the builder's keyword arguments.

    ``name=`` among the overrides names the Keras model itself. ``weights`` (a model with a
    keras.applications counterpart, ``garden.weights.transferable_models()``): ``"imagenet"``
    (keras.applications' download and cache) or the path of a keras.applications weight file; the
    model then normalises its [0, 1] input as those weights expect (``input_normalization``).

    >>> model = create_model("alexnet", num_classes=10, name="my_alexnet")
    >>> model = create_model("mobilenet_v2", weights="imagenet", num_classes=5)
    """
    entry = get_entry(name)
    valid = check_arguments(name, overrides)
    if weights is not None and entry.weights is None:
        with_weights = ", ".join(n for n, e in sorted(_ENTRIES.items()) if e.weights)
        raise GardenError(f"{name} has no keras.applications weights; these models do: {with_weights}")
    if weights is not None:
        overrides.setdefault("input_normalization", entry.weights.preprocessing)
    arguments = {**entry.architecture, **overrides}
    if "name" in valid:
        arguments.setdefault("name", name)
    model = entry.builder(**arguments)
    if weights is not None:
        resolve("garden.weights:load_pretrained")(model, name, weights, arguments)
    return model


def check_arguments(name, overrides):
    """Refuse keywords the builder of ``name`` does not take, naming the closest valid one; returns the valid ones."""
    valid = get_entry(name).arguments
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        close = difflib.get_close_matches(unknown[0], valid, n=1, cutoff=0.5)
        hint = f"did you mean {close[0]}? " if close else ""
        raise UnknownArgumentError(
            f"{name} does not take {', '.join(unknown)}; {hint}valid arguments: {', '.join(valid)}"
        )
    return valid


def build_model(name, input_shape=None, **overrides):
    """``create_model`` for the command lines: a build failure becomes one ``GardenError`` line.

    ``input_shape`` is ``(H, W, C)`` or None (the model's default).
    """
    get_entry(name)  # an unknown name is its own error, not a build failure
    if input_shape is not None:
        overrides["input_shape"] = tuple(input_shape)
    try:
        check_fits_in_memory(name, **overrides)
        return create_model(name, **overrides)
    except ValueError as error:
        raise GardenError(_build_failure(name, input_shape, error)) from None
    except Exception as error:  # TensorFlow's ResourceExhaustedError has no common base with MemoryError
        if isinstance(error, MemoryError) or type(error).__name__ == "ResourceExhaustedError":
            size = "x".join(map(str, input_shape or ()))
            raise GardenError(f"not enough memory to build {name} at {size or 'its default size'}") from None
        raise


# Peak memory of building a model over the size of its weights: measured 4.2 (AlexNet at 900 px,
# TensorFlow: 3.0 GiB of weights, 12.6 GiB peak) as initialisers draw in temporaries.
BUILD_MEMORY_FACTOR = 5


def check_fits_in_memory(name, **overrides):
    """Refuse, before allocating, an input size at which ``name``'s weights alone would not fit in memory.

    Only for inputs over four times the default's pixels: the weights are counted at the default
    size and at 5/4 and 3/2 of its side, and extrapolated as a quadratic in the side (a dense layer
    on a flattened map grows so; convolutions do not grow at all).
    """
    default, shape = get_entry(name).default_input_shape, overrides.get("input_shape")
    if not default or not shape or shape[0] * shape[1] <= 4 * default[0] * default[1]:
        return
    import numpy as np

    scales = (1.0, 1.25, 1.5)
    counts = [
        create_model(
            name, **{**overrides, "input_shape": (round(default[0] * t), round(default[1] * t), shape[2])}
        ).count_params()
        for t in scales
    ]
    scale = (shape[0] * shape[1] / (default[0] * default[1])) ** 0.5
    weights = 4 * max(float(np.polyval(np.polyfit(scales, counts, 2), scale)), counts[0])
    available = _available_memory()
    if available and BUILD_MEMORY_FACTOR * weights > available:
        size = "x".join(map(str, shape))
        raise GardenError(
            f"{name} at {size} would need about {_bytes(BUILD_MEMORY_FACTOR * weights)} to build "
            f"({_bytes(weights)} of weights), more than the {_bytes(available)} free here: "
            "choose a smaller --input-size"
        )


def _bytes(count):
    """``count`` bytes in the largest binary unit that keeps the figure at least 1."""
    for power, unit in ((3, "GiB"), (2, "MiB"), (1, "KiB")):
        if count >= 1024**power:
            return f"{count / 1024**power:,.1f} {unit}"
    return f"{count:,.0f} bytes"


def _available_memory():
    """Bytes of memory free for a new allocation (MemAvailable), or None where the system does not say."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _build_failure(name, input_shape, error):
    size = "x".join(map(str, input_shape or ()))
    message = str(error).lower()
    if "zero or negative" in message or "negative dimension" in message:
        return f"input {size} is too small for {name}: a layer's output would be empty"
    lines = [line for line in str(error).strip().splitlines() if line and "Exception encountered" not in line]
    return f"cannot build {name} at {size or 'its default size'}: {lines[0] if lines else error}"
