"""MobileNet V1/V2/V3 and Xception against keras.applications: sizes, costs, weight transfer, strides."""

import keras
import numpy as np
import pytest

import garden
from garden.catalog import CATALOG, PUBLISHED_VARIANTS
from garden.errors import GardenError
from garden.models._dilation import OutputStride
from garden.profiler import profile
from garden.weights import from_keras_applications
from helpers import perturbed


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


@pytest.mark.parametrize("alpha", [0.75, 1.0])
@pytest.mark.parametrize("size", ["large", "small"])
def test_mobilenet_v3_params_equal_keras(size, alpha):
    application = {"large": keras.applications.MobileNetV3Large, "small": keras.applications.MobileNetV3Small}[size]
    for include_top in (True, False):
        ours = garden.create_model(
            f"mobilenet_v3_{size}", alpha=alpha, include_top=include_top, input_shape=(32, 32, 3)
        )
        reference = application(
            weights=None, alpha=alpha, include_top=include_top, input_shape=(32, 32, 3), include_preprocessing=False
        )
        assert ours.count_params() == reference.count_params()


def test_xception_params_equal_keras():
    for include_top in (True, False):
        ours = garden.create_model("xception", include_top=include_top, input_shape=(71, 71, 3))
        reference = keras.applications.Xception(weights=None, include_top=include_top, input_shape=(71, 71, 3))
        assert ours.count_params() == reference.count_params()
    trainable = sum(int(np.prod(w.shape)) for w in ours.trainable_weights) + 2048 * 1000 + 1000
    assert trainable == CATALOG["xception"].published["params"]


def test_headless_params_equal_keras():
    ours = garden.create_model("mobilenet_v2", include_top=False, pooling="avg", input_shape=(32, 32, 3))
    reference = keras.applications.MobileNetV2(weights=None, include_top=False, pooling="avg", input_shape=(32, 32, 3))
    assert ours.count_params() == reference.count_params()
    assert ours.output.shape[-1] == 1280


# ---------------------------------------------------------------- multiply-adds


FAMILIES = (
    "mobilenet_v1",
    "mobilenet_v2",
    "mobilenet_v3_large",
    "mobilenet_v3_small",
    "xception",
    "inception_resnet_v2",
)
PUBLISHED = [
    *({"model": name, "overrides": {}, **CATALOG[name].published} for name in FAMILIES),
    *PUBLISHED_VARIANTS,
]


@pytest.mark.parametrize("published", PUBLISHED, ids=lambda p: f"{p['model']}{p['overrides'] or ''}")
def test_macs_match_paper(published):
    model = garden.create_model(published["model"], **published["overrides"])
    assert profile(model).total["macs"] == pytest.approx(published["macs"], rel=0.02)


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


@pytest.mark.parametrize("size", ["large", "small"])
def test_mobilenet_v3_transfer_matches_keras(size):
    application = {"large": keras.applications.MobileNetV3Large, "small": keras.applications.MobileNetV3Small}[size]
    reference = application(
        weights=None, input_shape=(64, 64, 3), classes=10, classifier_activation=None, include_preprocessing=False
    )
    assert_transfer(f"mobilenet_v3_{size}", reference, num_classes=10)


def test_xception_transfer_matches_keras():
    reference = keras.applications.Xception(
        weights=None, input_shape=(71, 71, 3), classes=10, classifier_activation=None
    )
    assert_transfer("xception", reference, num_classes=10)


@pytest.mark.slow
def test_inception_resnet_v2_params_and_transfer_match_keras():
    reference = keras.applications.InceptionResNetV2(
        weights=None, input_shape=(75, 75, 3), classes=10, classifier_activation=None
    )
    ours = garden.create_model("inception_resnet_v2", num_classes=10, input_shape=(75, 75, 3))
    assert ours.count_params() == reference.count_params()
    assert_transfer("inception_resnet_v2", reference, num_classes=10)
    features = garden.create_model("inception_resnet_v2", features_only=True, input_shape=(75, 75, 3))
    # unpadded: 75 -> 37 -> 35 (stride 2) -> pool 17 -> 15 (stride 4) -> pool 7 -> 3 -> 1
    assert feature_shapes(features) == {
        "stride_2": (35, 35, 64),
        "stride_4": (15, 15, 192),
        "stride_8": (7, 7, 320),
        "stride_16": (3, 3, 1088),
        "stride_32": (1, 1, 1536),
    }


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
        "stride_2": (32, 32, 16),
        "stride_4": (16, 16, 24),
        "stride_8": (8, 8, 32),
        "stride_16": (4, 4, 96),
        "stride_32": (2, 2, 320),
    }


@pytest.mark.parametrize("output_stride", [8, 16])
def test_mobilenet_v2_output_stride_dilates(output_stride):
    model = garden.create_model(
        "mobilenet_v2", features_only=True, output_stride=output_stride, input_shape=(64, 64, 3)
    )
    shapes = feature_shapes(model)
    assert list(shapes)[-1] == f"stride_{output_stride}"
    assert shapes[f"stride_{output_stride}"] == (64 // output_stride, 64 // output_stride, 320)
    rates = {layer.dilation_rate[0] for layer in model.layers if isinstance(layer, keras.layers.DepthwiseConv2D)}
    assert max(rates) == 32 // output_stride
    # the weights do not change with the stride: a DeepLab backbone takes classification weights
    assert model.count_params() == garden.create_model("mobilenet_v2", features_only=True).count_params()


def test_mobilenet_v3_features_by_stride():
    large = garden.create_model("mobilenet_v3_large", features_only=True, input_shape=(64, 64, 3))
    small = garden.create_model("mobilenet_v3_small", features_only=True, output_stride=16, input_shape=(64, 64, 3))
    assert feature_shapes(large) == {
        "stride_2": (32, 32, 16),
        "stride_4": (16, 16, 24),
        "stride_8": (8, 8, 40),
        "stride_16": (4, 4, 112),
        "stride_32": (2, 2, 160),
    }
    assert feature_shapes(small) == {
        "stride_2": (32, 32, 16),
        "stride_4": (16, 16, 16),
        "stride_8": (8, 8, 24),
        "stride_16": (4, 4, 96),
    }


@pytest.mark.parametrize("output_stride", [8, 16, 32])
def test_xception_output_stride(output_stride):
    model = garden.create_model("xception", features_only=True, output_stride=output_stride, input_shape=(96, 96, 3))
    sizes = {"stride_2": 45, "stride_4": 23, "stride_8": 12, "stride_16": 6, "stride_32": 3}  # unpadded stem
    expected = {key: size for key, size in sizes.items() if int(key.split("_")[1]) <= output_stride}
    shapes = feature_shapes(model)
    assert {key: shape[0] for key, shape in shapes.items()} == expected
    assert shapes[f"stride_{output_stride}"][-1] == 2048


def test_output_stride_walk_turns_late_strides_into_dilation():
    walk = OutputStride(8)
    steps = [walk.step(s) for s in (2, 1, 2, 2, 1, 2, 1, 2, 1)]
    # the layer whose stride is removed keeps the old rate; the layers after it dilate
    assert steps == [(2, 1), (1, 1), (2, 1), (2, 1), (1, 1), (1, 1), (1, 2), (1, 2), (1, 4)]
    assert (walk.stride, walk.rate) == (8, 4)


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
    with pytest.raises(ValueError, match="at least 75"):
        garden.create_model("inception_resnet_v2", input_shape=(64, 64, 3))
