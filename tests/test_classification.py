"""Every registered classifier: builds, runs, saves, keeps its feature strides and its published costs.

Parametrized over ``garden.list_models("classification")``, so a new family is tested the moment
it registers. Heavy models are built once per session (cached) and at small inputs; the cost
checks build each model once at its default size.
"""

import inspect
import math
import os
import subprocess
import sys
from functools import cache
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pytest
from keras import layers

import garden
from garden.catalog import published_figures
from garden.errors import GardenError
from garden.registry import get_entry
from garden.weights import from_keras_applications, transferable_models
from helpers import assert_roundtrip

MODELS = garden.list_models("classification")
PUBLISHED = published_figures()
ROOT = Path(__file__).resolve().parents[1]

FEATURE_SIZE = 40  # not a multiple of 32, so flooring and rounding up give different maps
# Valid-padded networks shrink their maps below ceil(input / stride); AlexNet's three 3/2 max pools
# need 63 pixels at least, Inception-ResNet-v2's valid stem 75 (as keras.applications).
VALID_PADDED = {"lenet5", "alexnet", "xception", "inception_resnet_v2"}
MIN_SIZE = {"alexnet": 67, "inception_resnet_v2": 75}
# Encoders for 32x32 images that stop downsampling early (small_cnn ends at stride 8, as LeNet at 4).
SMALL_IMAGE = {"small_cnn"}


def _channels(name):
    shape = get_entry(name).default_input_shape
    return shape[-1] if shape else 3


def _small_shape(name, size):
    size = max(size, MIN_SIZE.get(name, 0))
    return (size, size, _channels(name))


def _pixels(shape, batch=2, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (batch, *shape)).astype("float32")


@cache
def at_default_size(name):
    """Build the model once at its default input size: its logits for one image and its cost table.

    Only numbers are kept, so the session does not hold thirty models (VGG alone is 0.5 GB each).
    """
    model = garden.create_model(name)
    logits = np.asarray(model(_pixels(model.input_shape[1:], batch=1), training=False))
    return SimpleNamespace(
        logits=logits,
        total=garden.profile(model).total,
        count_params=model.count_params(),
        conv_biases_dropped=sum(layer.filters for layer in model.layers if _is_conv(layer) and not layer.use_bias),
    )


def feature_model(name):
    return garden.create_model(name, features_only=True, input_shape=_small_shape(name, FEATURE_SIZE))


def _representatives():
    """One model per builder and per flag (str/bool/float architecture values): the smallest name.

    Saving and reloading every depth of the same builder (VGG-11 ... VGG-19) tests nothing new
    and writes gigabytes, so the round trip takes one of each kind.
    """
    kinds = {}
    for name in MODELS:
        entry = get_entry(name)
        flags = tuple(sorted((k, v) for k, v in entry.architecture.items() if isinstance(v, (str, bool, float))))
        kinds.setdefault((entry.builder, flags), []).append(name)
    return sorted(min(names, key=lambda n: (len(n), n)) for names in kinds.values())


# ---------------------------------------------------------------- every model


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_classifier_runs_at_default_size(name):
    logits = at_default_size(name).logits
    entry = get_entry(name)
    classes = entry.architecture.get("num_classes", inspect.signature(entry.builder).parameters["num_classes"].default)
    assert logits.shape == (1, classes)
    assert np.isfinite(logits).all()


@pytest.mark.parametrize("name", MODELS)
def test_feature_strides(name):
    """``features_only`` maps are ``ceil(input / stride)`` wide (valid-padded networks: at most that)."""
    model = feature_model(name)
    shape = model.input_shape[1:]
    outputs = model(_pixels(shape), training=False)
    strides = [int(key.removeprefix("stride_")) for key in outputs]
    assert strides == sorted(strides) and set(strides) <= {2, 4, 8, 16, 32}
    for stride in strides:
        value = np.asarray(outputs[f"stride_{stride}"])
        assert np.isfinite(value).all(), f"stride_{stride} has NaN"
        expected = math.ceil(shape[0] / stride)
        if name in VALID_PADDED:
            assert 1 <= value.shape[1] <= expected
        else:
            assert value.shape[1:3] == (expected, expected), f"stride_{stride}: {value.shape}"
    if name not in VALID_PADDED | SMALL_IMAGE:
        assert strides[-1] == 32


@pytest.mark.slow
@pytest.mark.parametrize("name", _representatives())
def test_save_load_and_config_roundtrip(name, tmp_path):
    shape = _small_shape(name, 32)
    model = garden.create_model(name, input_shape=shape, num_classes=10)
    assert_roundtrip(model, tmp_path, _pixels(shape))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(n for n, f in PUBLISHED.items() if isinstance(f["params"], int)))
def test_parameters_match_published(name):
    """Trainable parameters equal the reference definition's exact count (rounded figures: the family's tests)."""
    built = at_default_size(name)
    figures = PUBLISHED[name]
    expected = figures["params"]
    if figures.get("bias_before_norm"):
        expected -= built.conv_biases_dropped
    assert built.total["trainable_params"] == expected
    assert built.total["params"] == built.count_params


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_multiply_adds_within_two_percent_of_published(name):
    figures = PUBLISHED[name]
    expected = figures["macs"] + figures.get("macs_errata", 0)
    assert at_default_size(name).total["macs"] == pytest.approx(expected, rel=0.02)


def _is_conv(layer):
    return isinstance(layer, layers.Conv2D) and not isinstance(layer, (layers.DepthwiseConv2D,))


# ---------------------------------------------------------------- weight transfer


def _perturbed_reference(application, shape):
    """A keras.applications model with random weights, random biases and random batch-norm statistics."""
    reference = getattr(keras.applications, application)(
        weights=None, input_shape=shape, classes=10, classifier_activation=None
    )
    rng = np.random.default_rng(1)
    for layer in reference.layers:
        weights = layer.get_weights()
        if isinstance(layer, layers.BatchNormalization):
            gamma, beta, mean, variance = (w.shape for w in weights)
            weights = [
                rng.uniform(0.5, 1.5, gamma),
                rng.normal(0, 0.2, beta),
                rng.normal(0, 0.2, mean),
                rng.uniform(0.5, 1.5, variance),
            ]
        elif len(weights) == 2:
            weights = [weights[0], rng.normal(0, 0.05, weights[1].shape)]
        layer.set_weights([np.asarray(w, dtype="float32") for w in weights])
    return reference


# The families whose transfer this file checks (MobileNet/Xception: tests/test_mobilenets.py).
TRANSFER_FAMILIES = ("garden.models.vgg", "garden.models.resnet", "garden.models.densenet")


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", sorted(n for n in transferable_models() if get_entry(n).builder.__module__ in TRANSFER_FAMILIES)
)
def test_weight_transfer_matches_keras_applications(name):
    shape = (32, 32, 3)
    reference = _perturbed_reference(transferable_models()[name], shape)
    model = garden.create_model(name, input_shape=shape, num_classes=10)
    # Convolution biases in front of batch norm are the only difference in count (garden drops them).
    biases = lambda m: sum(layer.filters for layer in m.layers if _is_conv(layer) and layer.use_bias)  # noqa: E731
    assert reference.count_params() - model.count_params() == biases(reference) - biases(model)
    from_keras_applications(model, reference)
    x = _pixels(shape, batch=2, seed=3)
    expected = np.asarray(reference(x, training=False))
    np.testing.assert_allclose(np.asarray(model(x, training=False)), expected, atol=1e-4, rtol=1e-4)


def test_transfer_from_a_weight_file(tmp_path):
    shape = (32, 32, 3)
    reference = _perturbed_reference("DenseNet121", shape)
    path = tmp_path / "densenet121.weights.h5"
    reference.save_weights(path)
    model = garden.create_model("densenet121", input_shape=shape, num_classes=10)
    from_keras_applications(model, str(path))
    x = _pixels(shape)
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(reference(x)), atol=1e-4, rtol=1e-4)
    with pytest.raises(GardenError, match="no keras.applications counterpart"):
        from_keras_applications(garden.create_model("resnet18", input_shape=shape), reference)


# ---------------------------------------------------------------- family specifics


@pytest.mark.parametrize(("name", "output_stride"), [("resnet18", 16), ("resnet50", 8)])
def test_resnet_output_stride_by_dilation(name, output_stride):
    shape = (64, 64, 3)
    model = garden.create_model(name, features_only=True, input_shape=shape, output_stride=output_stride)
    outputs = model(_pixels(shape))
    assert list(outputs) == [f"stride_{s}" for s in (2, 4, 8, 16, 32) if s <= output_stride]
    for key, value in outputs.items():
        assert value.shape[1] == 64 // int(key.removeprefix("stride_"))
    assert outputs[f"stride_{output_stride}"].shape[-1] == 512 * (1 if name == "resnet18" else 4)
    dilations = {layer.dilation_rate[0] for layer in model.layers if _is_conv(layer) and layer.kernel_size == (3, 3)}
    assert dilations == ({1, 2} if output_stride == 16 else {1, 2, 4})
    with pytest.raises(GardenError, match="output_stride"):
        garden.create_model(name, output_stride=12)


def test_dilated_resnet_keeps_the_parameters():
    plain = garden.create_model("resnet18", input_shape=(32, 32, 3))
    dilated = garden.create_model("resnet18", input_shape=(32, 32, 3), output_stride=8)
    assert plain.count_params() == dilated.count_params()


@pytest.mark.slow
def test_googlenet_auxiliary_classifiers(tmp_path):
    shape = (96, 96, 3)
    model = garden.create_model("googlenet", aux_logits=True, num_classes=7, input_shape=shape)
    outputs = assert_roundtrip(model, tmp_path, _pixels(shape))(_pixels(shape), training=False)
    assert [tuple(o.shape) for o in outputs] == [(2, 7)] * 3
    assert {"aux1_predictions", "aux2_predictions"} <= {layer.name for layer in model.layers}
    with pytest.raises(GardenError, match="80x80"):
        garden.create_model("googlenet", aux_logits=True, input_shape=(32, 32, 3))


# Szegedy et al. 2015, Table 1, "ops" column (multiply-adds, millions). Two rows disagree with the
# table's own filter counts: conv1 (34 M listed, 118 M computed) and inception 5a (54 M listed; its
# filters give 51 M, and the released model has them), so they are left out here.
GOOGLENET_TABLE_1 = {
    "conv2": 360,
    "inception3a": 128,
    "inception3b": 304,
    "inception4a": 73,
    "inception4b": 88,
    "inception4c": 100,
    "inception4d": 119,
    "inception4e": 170,
    "inception5b": 71,
}


def test_googlenet_rows_match_table_1():
    """The paper's rows agree to 1%; conv1 is 112*112*64*7*7*3, the published figure's errata."""
    rows = garden.profile("googlenet").layers
    for block, published in GOOGLENET_TABLE_1.items():
        measured = sum(row.macs for row in rows if row.name.split("_")[0] == block)
        assert measured / 1e6 == pytest.approx(published, rel=0.01), block
    conv1 = sum(row.macs for row in rows if row.name.split("_")[0] == "conv1")
    assert conv1 == 112 * 112 * 64 * 7 * 7 * 3 == 34_000_000 + PUBLISHED["googlenet"]["macs_errata"]


def test_resnext_and_se_blocks_are_what_they_say():
    model = feature_model("se_resnext50_32x4d")
    grouped = model.get_layer("conv2_block1_2_conv")
    assert grouped.groups == 32 and grouped.filters == 128 and grouped.strides == (1, 1)
    assert model.get_layer("conv3_block1_2_conv").strides == (2, 2)  # ResNeXt strides in the 3x3
    assert model.get_layer("conv2_block1_se_reduce").filters == 256 // 16
    plain = feature_model("resnet50")
    assert plain.get_layer("conv3_block1_1_conv").strides == (2, 2)  # ResNet v1 strides in the 1x1


def test_classifier_options():
    model = garden.create_model("resnet18", input_shape=(32, 32, 3), include_top=False, pooling="max")
    assert model.output_shape == (None, 512)
    model = garden.create_model(
        "vgg11_bn", input_shape=(32, 32, 3), num_classes=5, dropout=0.0, classifier_activation="softmax"
    )
    probabilities = np.asarray(model(_pixels((32, 32, 3))))
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)
    assert not any(isinstance(layer, layers.Dropout) for layer in model.layers)


# ---------------------------------------------------------------- portability

TRAIN_ONE_STEP = """
import sys
import numpy as np, keras, garden
model = garden.create_model("resnet18", input_shape=(32, 32, 3), num_classes=10)
model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
x = np.random.default_rng(0).uniform(0, 1, (4, 32, 32, 3)).astype("float32")
loss = model.train_on_batch(x, np.arange(4) % 10)
assert np.isfinite(loss), loss
print(keras.backend.backend(), float(loss), "tensorflow" in sys.modules)
"""


@pytest.mark.backend
@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_resnet18_trains_one_step_on_every_backend(backend):
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", TRAIN_ONE_STEP], env=env, capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr[-2000:]
    reported, loss, imported_tf = result.stdout.split()[-3:]
    assert reported == backend and math.isfinite(float(loss))
    if backend != "tensorflow":
        assert imported_tf == "False", "garden imported TensorFlow under another backend"
