"""The metadata sidecar ``NAME.json`` beside ``NAME.tflite`` (docs/sidecar.md): read, and checked before use.

Every key the app uses is checked for its type and range here, so a hand-edited or damaged sidecar is
one line naming the key, never a wrong picture or a traceback later on. Keys the app does not use
are left alone.
"""

import json
import math
from pathlib import Path

from edge_app.errors import EdgeError

TASKS = ("segmentation", "classification")
MAX_SIDE = 8192  # input height and width, as for --size
MAX_CLASSES = 65536


def read_sidecar(model_path):
    """The sidecar JSON beside ``model_path`` as a dict, ``{}`` if absent; a broken one is one line."""
    side = Path(model_path).with_suffix(".json")
    if not side.is_file():
        return {}
    try:
        data = json.loads(side.read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
        raise EdgeError(f"sidecar {side} is not valid JSON ({_first_line(error)}); fix or remove it") from None
    if not isinstance(data, dict):
        raise EdgeError(f"sidecar {side} must hold a JSON object, not {type(data).__name__}")
    data = {key: value for key, value in data.items() if value is not None}  # null: as if absent
    problem = sidecar_problem(data)
    if problem:
        raise EdgeError(f"sidecar {side}: {problem}; fix or remove it")
    return data


def sidecar_problem(data):
    """What is wrong with the keys of ``data`` the app uses, or "" when nothing is."""
    checks = (
        ("input", _object),
        ("output", _object),
        ("task", lambda v: "" if isinstance(v, str) else "must be a string"),
        ("model", lambda v: "" if isinstance(v, str) else "must be a string"),
        ("quantization", lambda v: "" if isinstance(v, str) else "must be a string"),
        ("class_names", lambda v: "" if isinstance(v, list) else "must be a list of names"),
        ("colors", _colors),
        ("macs", _count),
        ("params", _count),
    )
    inner = (
        ("input", "height", _side),
        ("input", "width", _side),
        ("input", "scale", _positive),
        ("input", "mean", _finite_values),
        ("input", "std", _positive_values),
        ("output", "num_classes", _class_count),
    )
    for key, check in checks:
        if key in data and (problem := check(data[key])):
            return f"{key} {problem}"
    for outer, key, check in inner:
        value = (data.get(outer) or {}).get(key)
        if value is not None and (problem := check(value)):
            return f"{outer}.{key} {problem}"
    return ""


def _first_line(error):
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _object(value):
    return "" if isinstance(value, dict) else "must be an object"


def _count(value):
    return "" if _number(value) and value >= 0 and value < 2**63 else "must be a number from 0"


def _class_count(value):
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_CLASSES
    return "" if ok else f"must be a whole number from 0 to {MAX_CLASSES}"


def _side(value):
    ok = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_SIDE
    return "" if ok else f"must be a whole number from 1 to {MAX_SIDE}"


def _positive(value):
    return "" if _number(value) and value > 0 else "must be a positive number"


def _values(value):
    return value if isinstance(value, list) else [value]


def _finite_values(value):
    values = _values(value)
    return "" if values and all(_number(v) for v in values) else "must be a number or a list of numbers"


def _positive_values(value):
    values = _values(value)
    return "" if values and all(_number(v) and v > 0 for v in values) else "must be positive (one or per channel)"


def _colors(value):
    ok = isinstance(value, list) and all(
        isinstance(c, list) and len(c) >= 3 and all(isinstance(v, int) and 0 <= v <= 255 for v in c[:3])
        for c in value
        if c is not None
    )
    return "" if ok else "must be RGB triples of whole numbers 0-255"
