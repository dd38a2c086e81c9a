import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")

import garden  # noqa: E402

keras = garden.import_keras()
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from garden.registry import register_model, unregister_model  # noqa: E402
from helpers import TINY_BACKBONE, build_tiny_backbone  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)
    np.random.seed(0)


@pytest.fixture
def tiny_backbone():
    """``helpers.build_tiny_backbone`` registered as a classification model for one test; its name.

    Registered through the public ``register_model`` and taken out again after the test, so no other
    test (or a parametrisation over ``list_models``) ever sees it.
    """
    register_model(TINY_BACKBONE, build_tiny_backbone, "classification")
    yield TINY_BACKBONE
    unregister_model(TINY_BACKBONE)


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """The garden-edge tests' TFLite models, converted once per session: {name: path} (``helpers.build_models``)."""
    from helpers import build_models

    return build_models(str(tmp_path_factory.getbasetemp() / "edge_models"))
