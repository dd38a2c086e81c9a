"""The model registry: one door in (``create_model``), one list (``list_models``).

A variant is a line of data: a name, the family builder, its task and the architecture arguments
that make it that variant, e.g. ``register_model("resnet50", build_resnet, "classification",
block="bottleneck", depths=(3, 4, 6, 3))``. Keyword overrides are checked against the builder's
signature, so a typo is an error, never silently ignored.
"""

import difflib
import inspect
from dataclasses import dataclass, field

TASKS = ("classification", "segmentation", "ssl")


class UnknownModelError(ValueError):
    """A model name that is not registered."""


class UnknownArgumentError(TypeError):
    """A keyword argument the model's builder does not take."""


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: object
    task: str
    architecture: dict = field(default_factory=dict)

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
        doc = inspect.getdoc(self.builder) or ""
        return doc.splitlines()[0] if doc else ""


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name, builder, task, **architecture):
    """Register ``name`` as ``builder(**architecture, **overrides)`` under ``task``."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is registered twice")
    _REGISTRY[name] = ModelEntry(name, builder, task, dict(architecture))
    return builder


def _ensure_models_loaded():
    import garden.models  # noqa: F401  (registers every family on import)


def list_models(task=None):
    """Names of registered models, sorted, optionally of one ``task``."""
    _ensure_models_loaded()
    if task is not None and task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    return sorted(name for name, entry in _REGISTRY.items() if task in (None, entry.task))


def get_entry(name):
    """The registry entry for ``name``; an unknown name names the closest registered ones."""
    _ensure_models_loaded()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see `garden models`"
        raise UnknownModelError(f"unknown model {name!r}{hint}")
    return _REGISTRY[name]


def create_model(name, /, **overrides):
    """Build the registered model ``name``; ``overrides`` are the builder's keyword arguments.

    ``name=`` among the overrides names the Keras model itself.

    >>> model = create_model("alexnet", num_classes=10, name="my_alexnet")
    """
    entry = get_entry(name)
    valid = entry.arguments
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise UnknownArgumentError(
            f"{name} does not take {', '.join(unknown)}; valid arguments: {', '.join(valid)}"
        )
    arguments = {**entry.architecture, **overrides}
    if "name" in valid:
        arguments.setdefault("name", name)
    return entry.builder(**arguments)
