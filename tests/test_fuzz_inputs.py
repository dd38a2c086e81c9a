"""Property-based tests of garden's parsers and loaders of user input (hypothesis).

Each draws hundreds of inputs and asserts a result or a one-line ``GardenError`` (argparse's
``ArgumentTypeError`` for option types), never another exception.
"""

import argparse
import functools
import math
import tempfile
from pathlib import Path

import cv2
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from garden.data.augment import DEFAULTS, parse_augment
from garden.data.sources import load_splits
from garden.errors import GardenError
from garden.options import fraction, parse_size, positive_int
from garden.ssl.cli import method_option
from garden.ssl.evaluate import parse_labels

MANY = settings(max_examples=400, deadline=None)
FILES = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_one_line(error):
    text = str(error)
    assert text and "\n" not in text and "Traceback" not in text


# ---------------------------------------------------------------- option text


@MANY
@given(st.text(max_size=24))
def test_any_size_text_parses_or_is_refused(text):
    try:
        size = parse_size(text)
    except GardenError as error:
        return assert_one_line(error)
    assert len(size) == 3 and all(isinstance(side, int) and side > 0 for side in size)


@MANY
@given(st.lists(st.integers(1, 10**6), min_size=1, max_size=3), st.sampled_from(["x", "X"]))
def test_well_formed_sizes_read_back_exactly(sides, separator):
    expected = {1: (sides[0], sides[0], 3), 2: (*sides, 3), 3: tuple(sides)}[len(sides)]
    assert parse_size(separator.join(map(str, sides))) == expected


@MANY
@given(st.one_of(st.text(max_size=12), st.floats().map(repr), st.integers().map(str)))
def test_number_options_accept_exactly_their_range(text):
    for parse, accepts in ((positive_int, lambda v: v >= 1), (fraction, lambda v: 0 < v < 1)):
        try:
            value = parse(text)
        except argparse.ArgumentTypeError as error:
            assert_one_line(error)
            continue
        assert math.isfinite(value) and accepts(value)


AUGMENT_ITEM = st.one_of(
    st.sampled_from(["flip", "none", "", *DEFAULTS]),
    st.tuples(st.sampled_from([*DEFAULTS, "flip", "blur"]), st.one_of(st.floats().map(repr), st.text(max_size=5))).map(
        "=".join
    ),
)


@MANY
@given(st.lists(AUGMENT_ITEM, max_size=4).map(",".join))
def test_augment_specs_parse_or_are_refused(spec):
    try:
        augment = parse_augment(spec)
    except GardenError as error:
        return assert_one_line(error)
    for name in DEFAULTS:
        value = getattr(augment, name)
        assert math.isfinite(value) and value >= 0
    assert augment.crop <= 1


@MANY
@given(st.one_of(st.text(max_size=12), st.floats().map(repr), st.integers(-5, 10**9).map(str)))
def test_label_amounts_are_a_fraction_or_a_count(text):
    try:
        amount = parse_labels(text)
    except GardenError as error:
        return assert_one_line(error)
    assert (isinstance(amount, float) and 0 < amount < 1) or (isinstance(amount, int) and amount >= 1)


@MANY
@given(st.text(max_size=30))
def test_method_options_are_a_name_and_a_value(text):
    try:
        name, _ = method_option(text)
    except GardenError as error:
        return assert_one_line(error)
    assert name.isidentifier()


# ---------------------------------------------------------------- data folders


def _png(value, shape=(6, 6, 3)):
    return cv2.imencode(".png", np.full(shape, value % 256, np.uint8))[1].tobytes()


CONTENTS = {
    "png": lambda value: _png(value),
    "jpg": lambda value: cv2.imencode(".jpg", np.full((6, 6, 3), value % 256, np.uint8))[1].tobytes(),
    "mask": lambda value: _png(value % 256, (6, 6)),
    "small_mask": lambda value: _png(value % 4, (3, 5)),
    "empty": lambda value: b"",
    "truncated": lambda value: _png(value)[: 8 + value % 40],
    "text": lambda value: f"not an image {value}".encode(),
}
FOLDERS = ["", "a", "b", "images", "masks", "labels", "JPEGImages", "SegmentationClass", "a/deeper"]
ENTRY = st.tuples(
    st.sampled_from(FOLDERS),
    st.sampled_from(["0", "1", "x", "image", ".hidden"]),
    st.sampled_from([".png", ".jpg", ".txt", ""]),
    st.sampled_from(sorted(CONTENTS)),
    st.integers(0, 300),
)


@FILES
@given(st.lists(ENTRY, max_size=14), st.booleans())
def test_any_data_folder_loads_or_is_refused_in_one_line(entries, loop):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "data"
        root.mkdir()
        for where, stem, suffix, content, value in entries:
            path = root / where / f"{stem}{suffix}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(CONTENTS[content](value))
        if loop:
            (root / "a").mkdir(exist_ok=True)
            (root / "a" / "loop").symlink_to(root / "a", target_is_directory=True)
        try:
            train, test = load_splits(str(root))
            for examples in (train, test):
                for index in range(min(len(examples), 6)):
                    try:
                        examples[index]
                    except GardenError as error:  # an undecodable file, a mask of the wrong kind
                        assert_one_line(error)
        except GardenError as error:
            assert_one_line(error)


# ---------------------------------------------------------------- model files


@functools.lru_cache(maxsize=1)
def saved_model_bytes():
    """A small garden model's ``.keras`` archive, made once."""
    import garden

    folder = Path(tempfile.mkdtemp())
    garden.create_model("lenet5").save(folder / "lenet5.keras")
    return (folder / "lenet5.keras").read_bytes()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_damaged_keras_files_load_or_are_refused_in_one_line(data):
    """Cut at any point, or with bytes overwritten: loaded (a harmless change) or one line, exit 2 worth."""
    from garden.saving import load_model_file

    original = saved_model_bytes()
    damaged = bytearray(original[: data.draw(st.integers(0, len(original)), label="cut")])
    for offset in data.draw(st.lists(st.integers(0, max(len(damaged) - 1, 0)), max_size=3), label="flipped"):
        if damaged:
            damaged[offset] ^= 0xFF
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "user.keras"
        path.write_bytes(bytes(damaged))
        try:
            model = load_model_file(path)
        except GardenError as error:
            return assert_one_line(error)
        assert model.count_params() > 0
