"""Inputs no model can take: refused in one line before anything is allocated."""

import re

import pytest

from garden import registry
from garden.cli import main
from garden.errors import GardenError


def test_an_input_too_large_for_memory_is_refused_in_one_line(capsys):
    code = main(["profile", "lenet5", "--input-size", "1000000"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1
    assert re.search(r"lenet5 at 1000000x1000000x1 would need about [\d,.]+ GiB to build", err), err


def test_the_weights_estimate_matches_the_built_model(monkeypatch):
    """Extrapolated from two small builds, the estimate is the real count at 4.5 times the pixels."""
    monkeypatch.setattr(registry, "_available_memory", lambda: 1024)
    shape = (68, 68, 1)  # LeNet-5's default is 32x32: 4.5 times the pixels
    with pytest.raises(GardenError, match="to build") as refused:
        registry.build_model("lenet5", shape)
    figure, unit = re.search(r"\(([\d,.]+) (KiB|MiB) of weights\)", str(refused.value)).groups()
    estimate = float(figure.replace(",", "")) * {"KiB": 2**10, "MiB": 2**20}[unit]
    actual = 4 * registry.create_model("lenet5", input_shape=shape).count_params()
    assert estimate == pytest.approx(actual, rel=0.03)


def test_sizes_near_the_default_are_not_estimated(monkeypatch):
    monkeypatch.setattr(registry, "_available_memory", lambda: 1024)
    model = registry.build_model("lenet5", (64, 64, 1))  # four times the pixels: built, never estimated
    assert model.input_shape[1:] == (64, 64, 1)
