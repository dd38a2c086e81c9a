"""Shared assertions for tests."""

import keras
import numpy as np

import garden


def assert_roundtrip(model, tmp_path, inputs, atol=1e-5):
    """The model survives ``.keras`` save/load (safe mode) and ``get_config`` with equal outputs."""
    expected = keras.tree.map_structure(np.asarray, model(inputs, training=False))
    path = tmp_path / f"{model.name}.keras"
    model.save(path)
    loaded = garden.load_model(path)
    got = keras.tree.map_structure(np.asarray, loaded(inputs, training=False))
    keras.tree.map_structure(lambda a, b: np.testing.assert_allclose(a, b, atol=atol), expected, got)
    clone = model.__class__.from_config(model.get_config())
    assert clone.count_params() == model.count_params()
    return loaded
