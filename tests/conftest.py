import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")

import garden  # noqa: E402

keras = garden.import_keras()
import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)
    np.random.seed(0)


def save_and_reload(model, tmp_path, name="model.keras"):
    """Save ``model`` as .keras and load it back with ``safe_mode=True``."""
    path = tmp_path / name
    model.save(path)
    return garden.load_model(path)
