"""Every segmentation model builds, trains one step and round-trips through .keras (safe mode).

The models tested are those ``garden.list_models("segmentation")`` lists: each gets its small
settings from ``SMALL``, or else from its builder's row in ``FAMILY_SMALL`` (so a new preset of an
existing builder is tested without a row of its own), or else is built as it is at 64x64; one that
cannot build small fails, naming the table to add it to. Decoders are checked against a tiny
stand-in backbone that follows the ``features_only`` contract (the ``tiny_backbone`` fixture,
registered for each test only), and ``build_segmenter`` on real backbones x decoders.
"""

from typing import NamedTuple

import keras
import numpy as np
import pytest
from keras import layers

import garden
from garden.errors import GardenError
from garden.registry import get_entry, register_model, unregister_model
from helpers import TINY_BACKBONE, assert_roundtrip

NUM_CLASSES = 3
TINY = TINY_BACKBONE
# DeepLab heads small enough to build in a blink on the tiny backbone.
TINY_DEEPLAB = {
    "backbone": TINY,
    "input_shape": (64, 64, 3),
    "num_classes": NUM_CLASSES,
    "aspp_filters": 8,
    "decoder_filters": 8,
}
pytestmark = pytest.mark.usefixtures("tiny_backbone")  # TINY is registered during every test here


class Small(NamedTuple):
    """A model's test size: square input ``size``, builder ``overrides``, output side (None: the input's)."""

    size: int
    overrides: dict
    output: int = None


# Width knobs of the backbones and decoders (garden/models/decoders.py), for build_segmenter's kwargs.
BACKBONE_SMALL = {name: {"alpha": 0.35} for name in ("mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small")}
DECODER_SMALL = {
    "aspp": {"filters": 8},
    "deeplabv3plus": {"filters": 8, "decoder_filters": 8, "low_level_filters": 8},
    "fcn": {"fc_units": 16},
    "unet": {"decoder_filters": (8, 8, 8, 8, 8)},
}

# One row per catalog segmentation model: heavy parts shrunk through their arguments, TINY as backbone.
SMALL = {
    "deeplabv3": Small(65, dict(backbone=TINY, output_stride=16, aspp_filters=8)),
    "deeplabv3plus": Small(64, dict(backbone=TINY, output_stride=8, aspp_filters=8, decoder_filters=8)),
    "fcn32s": Small(64, dict(backbone=TINY, fc_units=16)),
    "fcn16s": Small(64, dict(backbone=TINY, fc_units=16)),
    "fcn8s": Small(65, dict(backbone=TINY, fc_units=16)),
    "segmenter": Small(64, dict(backbone=TINY, decoder_kwargs=DECODER_SMALL["deeplabv3plus"])),
    "segnet": Small(64, dict(width=1 / 16)),
    "segnet_builtin": Small(64, dict(width=1 / 16)),
    "unet": Small(64, dict(filters=(4, 8, 8, 16, 16))),
    "unet_valid": Small(92, dict(filters=(4, 8, 8)), output=52),  # valid padding: 92 in, 52 out
}


def _segmenter_small(architecture):
    backbone = architecture.get("backbone", "mobilenet_v2")
    decoder = architecture.get("decoder", "deeplabv3plus")
    return {"backbone_kwargs": BACKBONE_SMALL.get(backbone), "decoder_kwargs": DECODER_SMALL.get(decoder)}


# A preset with no SMALL row: its builder's width knobs (the preset's own backbone kept), at 64x64.
FAMILY_SMALL = {
    "garden.models.deeplab:build_deeplab": lambda architecture: dict(aspp_filters=8, decoder_filters=8),
    "garden.models.fcn:build_fcn": lambda architecture: dict(fc_units=16),
    "garden.models.segnet:build_segnet": lambda architecture: dict(width=1 / 16),
    "garden.models.unet:build_unet": lambda architecture: dict(filters=(4, 8, 8, 16, 16), decoder_filters=(8,) * 5),
    "garden.models.segmenter:build_segmenter": _segmenter_small,
}
DEFAULT_SIZE = 64


def small_settings(name):
    """``(Small, where it came from)`` for the segmentation model ``name``."""
    if name in SMALL:
        return SMALL[name], "SMALL"
    entry = get_entry(name)
    family = FAMILY_SMALL.get(entry.builder_reference)
    if family is None:
        return Small(DEFAULT_SIZE, {}), "the default (no row in SMALL or FAMILY_SMALL)"
    overrides = {key: value for key, value in family(entry.architecture).items() if value is not None}
    return Small(DEFAULT_SIZE, overrides), f"FAMILY_SMALL[{entry.builder_reference!r}]"


# More paths through the same builders: U-Net on a backbone, DeepLabv3+ with standard convolutions.
VARIANTS = [
    ("unet", Small(64, dict(backbone=TINY, decoder_filters=(8, 8, 8, 8, 8)))),
    ("deeplabv3plus", Small(64, dict(backbone=TINY, separable=False, aspp_filters=8, decoder_filters=8))),
]

# The same decoders on the garden's real backbones.
REAL = [
    (
        "deeplabv3plus",
        Small(64, dict(backbone="mobilenet_v2", backbone_kwargs={"alpha": 0.35}, aspp_filters=16, decoder_filters=16)),
    ),
    (
        "deeplabv3",
        Small(65, dict(backbone="mobilenet_v2", backbone_kwargs={"alpha": 0.35}, output_stride=8, aspp_filters=16)),
    ),
    ("unet", Small(64, dict(backbone="mobilenet_v2", decoder_filters=(16, 16, 8, 8, 8)))),
    ("deeplabv3plus", Small(64, dict(backbone="resnet50", aspp_filters=16, decoder_filters=16))),
    ("deeplabv3plus", Small(65, dict(backbone="xception", output_stride=8, aspp_filters=16, decoder_filters=16))),
    ("fcn8s", Small(64, dict(backbone="vgg16", fc_units=32))),
    ("fcn32s", Small(64, dict(backbone="vgg16", fc_units=32))),
]


def _channels(name):
    shape = get_entry(name).default_input_shape
    return shape[2] if shape else 3


def _batch(size, channels=3, batch=2, out=None):
    rng = np.random.default_rng(0)
    x = rng.random((batch, size, size, channels), dtype="float32")
    out = out or size
    y = rng.integers(0, NUM_CLASSES, (batch, out, out)).astype("int32")
    y[:, :2] = 255
    return x, y


def build_small(name, small):
    """``name`` at its small settings, with ``NUM_CLASSES`` classes."""
    shape = (small.size, small.size, _channels(name))
    return garden.create_model(name, num_classes=NUM_CLASSES, input_shape=shape, **small.overrides)


def check_trains_and_roundtrips(name, small, tmp_path):
    """Output ``(side, side, classes)``; one SGD step moves the weights; .keras and config round trips."""
    from garden.segmentation.losses import PixelCrossEntropy

    model = build_small(name, small)
    side = small.output or small.size
    assert model.output.shape[1:] == (side, side, NUM_CLASSES)
    x, y = _batch(small.size, _channels(name), out=side)
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss=PixelCrossEntropy())
    before = [np.array(w) for w in model.trainable_weights]
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    assert any(not np.allclose(a, np.array(b)) for a, b in zip(before, model.trainable_weights))
    assert_roundtrip(model, tmp_path, x)


@pytest.mark.parametrize("name", garden.list_models("segmentation"))
def test_builds_trains_and_roundtrips(name, tmp_path):
    small, source = small_settings(name)
    if source != "SMALL":  # a preset without its own row: a failure to build says where the row goes
        try:
            build_small(name, small)
        except Exception as error:
            pytest.fail(f"{name} does not build small from {source} ({small}): {error}; add a row to SMALL")
    check_trains_and_roundtrips(name, small, tmp_path)


@pytest.mark.parametrize(("name", "small"), VARIANTS, ids=[f"{name}-{i}" for i, (name, _) in enumerate(VARIANTS)])
def test_variants_build_train_and_roundtrip(name, small, tmp_path):
    check_trains_and_roundtrips(name, small, tmp_path)


def test_every_segmentation_model_has_small_settings():
    """A row in SMALL, or a default that builds at the expected output shape; no row for a model not listed."""
    listed = garden.list_models("segmentation")
    assert set(SMALL) <= set(listed), f"SMALL has rows for unlisted models: {sorted(set(SMALL) - set(listed))}"
    failures = []
    for name in listed:
        small, source = small_settings(name)
        if source == "SMALL":
            continue
        try:
            shape = tuple(build_small(name, small).output.shape[1:])
        except Exception as error:
            failures.append(f"{name} from {source}: {type(error).__name__}: {error}")
            continue
        if shape != (small.size, small.size, NUM_CLASSES):
            failures.append(f"{name} from {source}: output {shape}, not {(small.size, small.size, NUM_CLASSES)}")
    assert not failures, "add a row to SMALL in tests/test_segmentation_models.py for:\n" + "\n".join(failures)


def test_a_new_preset_is_tested_from_its_family():
    """A preset with no SMALL row gets its builder's knobs, its own backbone and decoder kept, and builds."""
    register_model(
        "tiny_test_preset",
        "garden.models.segmenter:build_segmenter",
        "segmentation",
        backbone="mobilenet_v3_small",
        decoder="unet",
    )
    try:
        small, source = small_settings("tiny_test_preset")
        assert source == "FAMILY_SMALL['garden.models.segmenter:build_segmenter']"
        assert small == Small(64, {"backbone_kwargs": {"alpha": 0.35}, "decoder_kwargs": DECODER_SMALL["unet"]})
        assert build_small("tiny_test_preset", small).output.shape[1:] == (64, 64, NUM_CLASSES)
    finally:
        unregister_model("tiny_test_preset")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "small"), REAL, ids=[f"{n}-{s.overrides['backbone']}-{i}" for i, (n, s) in enumerate(REAL)]
)
def test_real_backbones(name, small, tmp_path):
    check_trains_and_roundtrips(name, small, tmp_path)


# build_segmenter: real backbones x decoders at 64x96 (non-square, so height and width are both checked).
COMBINATIONS = [
    ("mobilenet_v3_small", "aspp", {}),
    ("mobilenet_v3_small", "deeplabv3plus", {}),
    ("resnet18", "aspp", {}),
    ("resnet18", "deeplabv3plus", {"output_stride": 8}),
    ("xception", "aspp", {}),
    ("xception", "deeplabv3plus", {}),
    ("vgg11", "fcn", {}),
    ("vgg11", "unet", {}),
    ("resnet18", "fcn", {}),
    ("resnet18", "unet", {}),
]


@pytest.mark.parametrize(
    ("backbone", "decoder", "options"),
    COMBINATIONS,
    ids=[f"{backbone}-{decoder}" for backbone, decoder, _ in COMBINATIONS],
)
def test_segmenter_combines_backbones_and_decoders(backbone, decoder, options):
    model = garden.create_model(
        "segmenter",
        backbone=backbone,
        decoder=decoder,
        num_classes=NUM_CLASSES,
        input_shape=(64, 96, 3),
        backbone_kwargs=BACKBONE_SMALL.get(backbone),
        decoder_kwargs=DECODER_SMALL[decoder],
        **options,
    )
    assert model.output.shape[1:] == (64, 96, NUM_CLASSES)
    x = np.random.default_rng(0).random((1, 64, 96, 3), dtype="float32")
    assert np.asarray(model(x, training=False)).shape == (1, 64, 96, NUM_CLASSES)


@pytest.mark.parametrize(("backbone", "input_shape"), [("small_cnn", (32, 32, 3)), ("lenet5", (32, 32, 1))])
def test_a_decoder_needing_a_stride_the_backbone_lacks_is_one_line(backbone, input_shape):
    with pytest.raises(GardenError) as error:
        garden.create_model(
            "segmenter", backbone=backbone, decoder="fcn", input_shape=input_shape, decoder_kwargs=DECODER_SMALL["fcn"]
        )
    message = str(error.value)
    assert "\n" not in message and "fcn decoder needs the backbone's stride-32 features" in message, message


def test_unet_valid_is_the_paper_shape():
    model = garden.create_model("unet_valid")
    assert model.input.shape[1:] == (572, 572, 1) and model.output.shape[1:] == (388, 388, 2)
    assert model.count_params() == 31_030_658
    assert not any(isinstance(layer, layers.BatchNormalization) for layer in model.layers)
    # Skips are centre-cropped: the first level's 568x568 map to the last decoder's 392x392.
    assert model.get_layer("up1_crop").cropping == ((88, 88), (88, 88))


def test_unet_rejects_sizes_that_do_not_halve():
    with pytest.raises(ValueError, match="odd size"):
        garden.create_model("unet", input_shape=(60, 60, 3), filters=(4, 8, 8, 8, 8))


def test_fcn_upsampling_starts_as_bilinear_interpolation():
    from garden.models.decoders import BilinearUpsampling

    kernel = np.asarray(BilinearUpsampling()((4, 4, 2, 2)))
    np.testing.assert_allclose(kernel[:, :, 0, 0][0], [0.0625, 0.1875, 0.1875, 0.0625])
    assert np.all(kernel[:, :, 0, 1] == 0)
    # A fresh 2x layer reproduces linear interpolation in the interior of a ramp.
    ramp = np.tile(np.arange(8, dtype="float32"), (8, 1))[None, :, :, None]
    up = layers.Conv2DTranspose(
        1, 4, strides=2, padding="same", use_bias=False, kernel_initializer=BilinearUpsampling()
    )
    out = np.asarray(up(ramp))[0, 4, 2:-2, 0]
    np.testing.assert_allclose(np.diff(out), 0.5, atol=1e-6)


def test_fcn8s_fuses_two_skips_with_zero_initialised_scores():
    model = garden.create_model("fcn8s", backbone=TINY, input_shape=(64, 64, 3), num_classes=NUM_CLASSES, fc_units=16)
    names = {layer.name for layer in model.layers}
    assert {"fc6", "fc7", "score_fr", "score_pool4", "score_pool3", "fuse_pool4", "fuse_pool3"} <= names
    assert model.get_layer("fc6").kernel_size == (7, 7)
    assert np.all(np.asarray(model.get_layer("score_pool3").kernel) == 0)
    assert model.get_layer("upscore").strides == (8, 8)
    assert model.get_layer("upscore").kernel_size == (16, 16)


def test_segnet_reuses_switches_and_builtin_variant_avoids_argmax():
    switches = garden.create_model("segnet", input_shape=(32, 32, 3), width=1 / 16, num_classes=NUM_CLASSES)
    builtin = garden.create_model("segnet_builtin", input_shape=(32, 32, 3), width=1 / 16, num_classes=NUM_CLASSES)
    kinds = {type(layer).__name__ for layer in switches.layers}
    assert {"MaxPoolingWithSwitches", "MaxUnpooling"} <= kinds
    kinds = {type(layer).__name__ for layer in builtin.layers}
    assert "MaskedMaxUnpooling" in kinds and "MaxPoolingWithSwitches" not in kinds
    # 13 encoder convolutions as in VGG16, mirrored by 13 decoder convolutions.
    convs = [layer for layer in switches.layers if isinstance(layer, layers.Conv2D)]
    assert len(convs) == 27
    # Same weights, so the two forms agree (ties only occur in ReLU zeros, which carry zeros).
    builtin.set_weights(switches.get_weights())
    x = np.random.default_rng(1).random((1, 32, 32, 3), dtype="float32")
    np.testing.assert_allclose(np.asarray(switches(x)), np.asarray(builtin(x)), atol=1e-4)


def test_deeplab_rates_separable_option_and_low_level_decoder():
    plus = garden.create_model("deeplabv3plus", output_stride=8, **TINY_DEEPLAB)
    assert plus.get_layer("aspp_b1_dw").dilation_rate == (12, 12)
    assert isinstance(plus.get_layer("decoder_conv1_dw"), layers.DepthwiseConv2D)
    assert plus.get_layer("decoder_upsample").output.shape[1:3] == (16, 16)
    assert plus.get_layer("decoder_low_level_conv").filters == 48
    standard = garden.create_model(
        "deeplabv3plus",
        backbone=TINY,
        input_shape=(64, 64, 3),
        num_classes=NUM_CLASSES,
        separable=False,
        aspp_filters=8,
        decoder_filters=8,
    )
    assert standard.get_layer("aspp_b3_conv").dilation_rate == (18, 18)
    assert standard.get_layer("decoder_conv2_conv").kernel_size == (3, 3)
    v3 = garden.create_model(
        "deeplabv3", backbone=TINY, input_shape=(64, 64, 3), num_classes=NUM_CLASSES, aspp_filters=8
    )
    assert not any(layer.name.startswith("decoder") for layer in v3.layers)
    with pytest.raises(GardenError, match="output_stride"):
        garden.create_model("deeplabv3", backbone=TINY, output_stride=32)


def test_segmentation_models_are_registered():
    names = set(garden.list_models("segmentation"))
    assert {
        "fcn32s",
        "fcn16s",
        "fcn8s",
        "segnet",
        "segnet_builtin",
        "unet",
        "unet_valid",
        "deeplabv3",
        "deeplabv3plus",
        "segmenter",
    } <= names


@pytest.mark.slow
def test_deeplab_exports_to_plain_tflite_builtins(tmp_path):
    """Batch 1, fixed size, output stride 8: dilated convolutions, not SPACE_TO_BATCH_ND, and full int8."""
    tf = pytest.importorskip("tensorflow")
    interpreter = pytest.importorskip("ai_edge_litert.interpreter")
    model = garden.create_model("deeplabv3plus", output_stride=8, **TINY_DEEPLAB)
    model.export(
        str(tmp_path / "saved"),
        format="tf_saved_model",
        verbose=False,
        input_signature=[keras.InputSpec(shape=(1, 64, 64, 3), dtype="float32")],
    )
    converter = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "saved"))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)
    converter.representative_dataset = lambda: ([rng.random((1, 64, 64, 3), dtype="float32")] for _ in range(4))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    runner = interpreter.Interpreter(model_content=converter.convert())
    ops = {detail["op_name"] for detail in runner._get_ops_details()}
    assert not ops & {"SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND", "CUSTOM"}
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "RESIZE_BILINEAR"} <= ops
    runner.allocate_tensors()
    assert tuple(runner.get_output_details()[0]["shape"]) == (1, 64, 64, NUM_CLASSES)
    assert runner.get_input_details()[0]["dtype"] == np.int8
