"""MobileNet V1/V2/V3 and Xception against keras.applications: sizes, costs, weight transfer, strides."""

import keras
import numpy as np
import pytest

import garden
from garden.errors import GardenError
from garden.models import mobilenet
from garden.profiler import profile
from garden.weights import from_keras_applications


def perturbed(model, seed=0):
    """``model`` with random weights and batch-norm statistics, so a wrong mapping shows."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, variance = weights
            weights = [
                rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.2, beta.shape),
                rng.normal(0, 0.2, mean.shape), rng.uniform(0.5, 2.0, variance.shape),
            ]
        else:
            weights = [w + rng.normal(0, 0.05, w.shape) for w in weights]
        layer.set_weights([w.astype("float32") for w in weights])
    return model


def assert_transfer(name, reference, atol=1e-4, **overrides):
    """Transfer a perturbed ``reference`` into ``name`` and compare outputs on random [0, 1] input."""
    perturbed(reference)
    model = garden.create_model(name, input_shape=reference.input_shape[1:], **overrides)
    from_keras_applications(model, reference)
    images = np.random.default_rng(1).uniform(0, 1, (2, *reference.input_shape[1:])).astype("float32")
    expected = np.asarray(reference(images, training=False))
    got = np.asarray(model(images, training=False))
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=atol, rtol=1e-4)


def feature_shapes(model):
    return {key: tuple(tensor.shape[1:]) for key, tensor in model.output.items()}


# ---------------------------------------------------------------- parameter counts


@pytest.mark.parametrize("alpha", [0.35, 0.5, 0.75, 1.0, 1.3, 1.4])
def test_mobilenet_v2_params_equal_keras(alpha):
    ours = garden.create_model("mobilenet_v2", alpha=alpha, input_shape=(32, 32, 3))
    reference = keras.applications.MobileNetV2(weights=None, alpha=alpha, input_shape=(32, 32, 3))
    assert ours.count_params() == reference.count_params()


@pytest.mark.parametrize("alpha", [0.25, 0.5, 0.75, 1.0])
def test_mobilenet_v1_params_equal_keras(alpha):
    ours = garden.create_model("mobilenet_v1", alpha=alpha, input_shape=(32, 32, 3))
    reference = keras.applications.MobileNet(weights=None, alpha=alpha, input_shape=(32, 32, 3))
    assert ours.count_params() == reference.count_params()


def test_headless_params_equal_keras():
    ours = garden.create_model("mobilenet_v2", include_top=False, pooling="avg", input_shape=(32, 32, 3))
    reference = keras.applications.MobileNetV2(weights=None, include_top=False, pooling="avg", input_shape=(32, 32, 3))
    assert ours.count_params() == reference.count_params()
    assert ours.output.shape[-1] == 1280


# ---------------------------------------------------------------- multiply-adds


@pytest.mark.parametrize(
    "key",
    ["mobilenet_v1", "mobilenet_v1@alpha=0.5", "mobilenet_v1@input=128", "mobilenet_v2", "mobilenet_v2@alpha=1.4"],
)
def test_mobilenet_macs_match_paper(key):
    name, _, variant = key.partition("@")
    overrides, size = {}, 224
    if variant.startswith("alpha="):
        overrides["alpha"] = float(variant.split("=")[1])
    elif variant.startswith("input="):
        size = int(variant.split("=")[1])
    model = garden.create_model(name, input_shape=(size, size, 3), **overrides)
    published = mobilenet.PUBLISHED[key]["macs"]
    assert profile(model).total["macs"] == pytest.approx(published, rel=0.02)


# ---------------------------------------------------------------- weight transfer


@pytest.mark.parametrize("alpha", [0.35, 1.0])
def test_mobilenet_v2_transfer_matches_keras(alpha):
    reference = keras.applications.MobileNetV2(
        weights=None, alpha=alpha, input_shape=(64, 64, 3), classes=10, classifier_activation=None
    )
    assert_transfer("mobilenet_v2", reference, alpha=alpha, num_classes=10)


def test_mobilenet_v1_transfer_matches_keras():
    reference = keras.applications.MobileNet(
        weights=None, alpha=0.5, input_shape=(64, 64, 3), classes=10, classifier_activation=None
    )
    assert_transfer("mobilenet_v1", reference, alpha=0.5, num_classes=10)


def test_transfer_into_headless_and_features_model():
    reference = perturbed(keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(64, 64, 3)))
    model = garden.create_model("mobilenet_v2", features_only=True, input_shape=(64, 64, 3))
    from_keras_applications(model, reference, garden_name="mobilenet_v2")
    images = np.random.default_rng(1).uniform(0, 1, (1, 64, 64, 3)).astype("float32")
    inner = keras.Model(reference.input, reference.get_layer("block_16_project_BN").output)
    np.testing.assert_allclose(model(images)["stride_32"], inner(images), atol=1e-4, rtol=1e-4)


def test_transfer_refuses_a_missing_head():
    reference = keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(32, 32, 3))
    model = garden.create_model("mobilenet_v2", input_shape=(32, 32, 3))
    with pytest.raises(GardenError, match="predictions"):
        from_keras_applications(model, reference)


# ---------------------------------------------------------------- strides and sizes


def test_mobilenet_v2_features_by_stride():
    model = garden.create_model("mobilenet_v2", features_only=True, input_shape=(64, 64, 3))
    assert feature_shapes(model) == {
        "stride_2": (32, 32, 16), "stride_4": (16, 16, 24), "stride_8": (8, 8, 32),
        "stride_16": (4, 4, 96), "stride_32": (2, 2, 320),
    }


@pytest.mark.parametrize("output_stride", [8, 16])
def test_mobilenet_v2_output_stride_dilates(output_stride):
    model = garden.create_model("mobilenet_v2", features_only=True, output_stride=output_stride, input_shape=(64, 64, 3))
    shapes = feature_shapes(model)
    assert list(shapes)[-1] == f"stride_{output_stride}"
    assert shapes[f"stride_{output_stride}"] == (64 // output_stride, 64 // output_stride, 320)
    rates = {layer.dilation_rate[0] for layer in model.layers if isinstance(layer, keras.layers.DepthwiseConv2D)}
    assert max(rates) == 32 // output_stride
    # the weights do not change with the stride: a DeepLab backbone takes classification weights
    assert model.count_params() == garden.create_model("mobilenet_v2", features_only=True).count_params()


def test_output_stride_is_checked():
    with pytest.raises(GardenError, match="output_stride"):
        garden.create_model("mobilenet_v2", output_stride=12)


@pytest.mark.parametrize("shape", [(32, 32, 3), (33, 33, 3), (45, 61, 3)])
def test_mobilenet_v1_any_size_from_32(shape):
    model = garden.create_model("mobilenet_v1", num_classes=5, input_shape=shape)
    images = np.random.default_rng(0).uniform(0, 1, (1, *shape)).astype("float32")
    assert model(images).shape == (1, 5)
    features = garden.create_model("mobilenet_v1", features_only=True, input_shape=shape)
    height = shape[0]
    for stride, tensor_shape in zip((2, 4, 8, 16, 32), feature_shapes(features).values()):
        assert tensor_shape[0] == -(-height // stride)  # "same" padding: ceil(H / stride)


def test_too_small_input_is_refused():
    with pytest.raises(ValueError, match="at least 32"):
        garden.create_model("mobilenet_v1", input_shape=(31, 40, 3))
