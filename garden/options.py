"""Number options for the command lines: finite, in range, said in one line when not.

>>> import argparse
>>> p = argparse.ArgumentParser()
>>> _ = p.add_argument("--lr", type=positive_float)
>>> p.parse_args(["--lr", "0.1"]).lr
0.1
"""

import argparse
import math


def number(kind=float, low=None, high=None, *, low_inclusive=True, high_inclusive=True):
    """An argparse ``type`` that parses ``kind`` and accepts only finite values in the given range."""

    def parse(text):
        try:
            value = kind(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if not in_range(value, low, high, low_inclusive, high_inclusive):
            raise argparse.ArgumentTypeError(
                f"{text} is out of range: {describe_range(low, high, low_inclusive, high_inclusive)}"
            )
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def in_range(value, low=None, high=None, low_inclusive=True, high_inclusive=True):
    if low is not None and (value < low or (value == low and not low_inclusive)):
        return False
    return high is None or not (value > high or (value == high and not high_inclusive))


def describe_range(low, high, low_inclusive=True, high_inclusive=True):
    parts = []
    if low is not None:
        parts.append(f"{'at least' if low_inclusive else 'more than'} {low}")
    if high is not None:
        parts.append(f"{'at most' if high_inclusive else 'less than'} {high}")
    return "must be " + " and ".join(parts) if parts else "any value"


positive_int = number(int, 1)
non_negative_int = number(int, 0)
positive_float = number(float, 0, low_inclusive=False)
non_negative_float = number(float, 0)
fraction = number(float, 0, 1, low_inclusive=False, high_inclusive=False)


def parse_size(text, channels=None):
    """``227``, ``227x227`` or ``227x227x3`` -> (H, W, C) with ``channels`` (default 3) filling in C."""
    from garden.errors import UsageError

    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        raise UsageError(f"malformed size {text!r}: use N, HxW or HxWxC with positive integers") from None
    if not 1 <= len(parts) <= 3 or min(parts) <= 0:
        raise UsageError(f"malformed size {text!r}: use N, HxW or HxWxC with positive integers")
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) == 2:
        parts.append(channels or 3)
    return tuple(parts)


def parse_setting(text):
    """``--set KEY=VALUE`` -> ``(key, value)``; values are int, float, bool, None, tuples (``a,b``) or text.

    >>> parse_setting("output_stride=8"), parse_setting("separable=false"), parse_setting("aspp_rates=6,12,18")
    (('output_stride', 8), ('separable', False), ('aspp_rates', (6, 12, 18)))
    """
    from garden.errors import UsageError

    key, equals, value = str(text).partition("=")
    key = key.strip()
    if not equals or not key.isidentifier():
        raise UsageError(f"--set takes KEY=VALUE (a builder argument), got {text!r}")
    return key, parse_value(value.strip())


def parse_value(text):
    """One ``--set`` value: ``true``/``false``, ``none``, an int, a finite float, ``a,b,c`` or ``(a, b)``, else text."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    if "," in text or (text.startswith("(") and text.endswith(")")):
        return tuple(parse_value(part.strip()) for part in text.strip("()[]").split(",") if part.strip())
    for kind in (int, float):
        try:
            value = kind(text)
        except ValueError:
            continue
        if math.isfinite(value):
            return value
    return text
