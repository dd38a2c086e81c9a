import pytest

import garden
from garden.registry import UnknownArgumentError, UnknownModelError, get_entry


def test_list_models_by_task():
    everything = garden.list_models()
    classification = garden.list_models("classification")
    assert "alexnet" in classification and "lenet5" in classification
    assert set(classification) <= set(everything)
    assert everything == sorted(everything)
    with pytest.raises(ValueError, match="unknown task"):
        garden.list_models("detection")


def test_unknown_name_suggests_close_ones():
    with pytest.raises(UnknownModelError, match="did you mean alexnet"):
        garden.create_model("alexnett")


def test_unknown_keyword_lists_valid_ones():
    with pytest.raises(UnknownArgumentError) as error:
        garden.create_model("lenet5", num_clases=10)
    message = str(error.value)
    assert "num_clases" in message and "num_classes" in message and "input_shape" in message


def test_overrides_reach_the_builder():
    model = garden.create_model("lenet5", num_classes=7, activation="relu")
    assert model.output.shape[-1] == 7
    assert model.get_layer("c1_act").get_config()["activation"] == "relu"
    assert model.name == "lenet5"
    assert garden.create_model("lenet5", name="digits_net").name == "digits_net"


def test_default_input_shape_from_signature():
    assert get_entry("alexnet").default_input_shape == (227, 227, 3)
    assert get_entry("lenet5").default_input_shape == (32, 32, 1)
