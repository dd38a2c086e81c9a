"""Every segmentation model builds, trains one step and round-trips through .keras (safe mode).

Decoders are also checked against a tiny stand-in backbone that follows the ``features_only``
contract, so they are tested whether or not the real backbones are registered.
"""

import keras
import numpy as np
import pytest
from helpers import assert_roundtrip
from keras import layers

import garden
from garden.layers import conv_norm_act
from garden.models._common import classification_model, model_input
from garden.registry import list_models, register_model

NUM_CLASSES = 3


def build_tiny_backbone(*, input_shape=(64, 64, 3), output_stride=32, features_only=False, num_classes=10, name="tiny"):
    """Five stride-2 stages of 8 filters; past ``output_stride`` the stages dilate instead of striding."""
    inputs = model_input(input_shape, (64, 64, 3))
    x, stride, dilation, features = inputs, 1, 1, {}
    for stage in range(1, 6):
        if stride < output_stride:
            x = conv_norm_act(x, 8, 3, strides=2, name=f"s{stage}")
            stride *= 2
        else:
            dilation *= 2
            x = conv_norm_act(x, 8, 3, dilation_rate=dilation, name=f"s{stage}")
        features[2**stage] = x
    return classification_model(inputs, features, name=name, num_classes=num_classes, features_only=features_only)


if "tiny_test_backbone" not in list_models():
    register_model("tiny_test_backbone", build_tiny_backbone, "classification")

TINY = "tiny_test_backbone"

# (registry name, size, overrides) at small sizes; heavy models shrunk through their arguments.
CASES = [
    ("unet", 64, dict(filters=(4, 8, 8, 16, 16))),
    ("unet", 64, dict(backbone=TINY, decoder_filters=(8, 8, 8, 8, 8))),
    ("unet_valid", 92, dict(filters=(4, 8, 8))),
    ("segnet", 64, dict(width=1 / 16)),
    ("segnet_builtin", 64, dict(width=1 / 16)),
    ("fcn32s", 64, dict(backbone=TINY, fc_units=16)),
    ("fcn16s", 64, dict(backbone=TINY, fc_units=16)),
    ("fcn8s", 65, dict(backbone=TINY, fc_units=16)),
    ("deeplabv3", 65, dict(backbone=TINY, output_stride=16, aspp_filters=8)),
    ("deeplabv3plus", 64, dict(backbone=TINY, output_stride=8, aspp_filters=8, decoder_filters=8)),
    ("deeplabv3plus", 64, dict(backbone=TINY, separable=False, aspp_filters=8, decoder_filters=8)),
]


# The same decoders on the garden's real backbones, where those are registered (helpers a1/a2).
REAL = [
    ("deeplabv3plus", 64, dict(backbone="mobilenet_v2", backbone_kwargs={"alpha": 0.35}, aspp_filters=16, decoder_filters=16)),
    ("deeplabv3", 65, dict(backbone="mobilenet_v2", backbone_kwargs={"alpha": 0.35}, output_stride=8, aspp_filters=16)),
    ("unet", 64, dict(backbone="mobilenet_v2", decoder_filters=(16, 16, 8, 8, 8))),
    ("deeplabv3plus", 64, dict(backbone="resnet50", aspp_filters=16, decoder_filters=16)),
    ("deeplabv3plus", 65, dict(backbone="xception", output_stride=8, aspp_filters=16, decoder_filters=16)),
    ("fcn8s", 64, dict(backbone="vgg16", fc_units=32)),
    ("fcn32s", 64, dict(backbone="vgg16", fc_units=32)),
]


def _batch(size, channels=3, batch=2, out=None):
    rng = np.random.default_rng(0)
    x = rng.random((batch, size, size, channels), dtype="float32")
    out = out or size
    y = rng.integers(0, NUM_CLASSES, (batch, out, out)).astype("int32")
    y[:, :2] = 255
    return x, y


@pytest.mark.parametrize(("name", "size", "overrides"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_builds_trains_and_roundtrips(name, size, overrides, tmp_path):
    from garden.segmentation.losses import PixelCrossEntropy

    channels = 1 if name == "unet_valid" else 3
    model = garden.create_model(name, num_classes=NUM_CLASSES, input_shape=(size, size, channels), **overrides)
    out = model.output.shape
    expected = size if name != "unet_valid" else out[1]
    assert out[1:] == (expected, expected, NUM_CLASSES)
    x, y = _batch(size, channels, out=expected)
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss=PixelCrossEntropy())
    before = [np.array(w) for w in model.trainable_weights]
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    assert any(not np.allclose(a, np.array(b)) for a, b in zip(before, model.trainable_weights))
    assert_roundtrip(model, tmp_path, x)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "size", "overrides"), REAL, ids=[f"{c[0]}-{c[2]['backbone']}-{i}" for i, c in enumerate(REAL)])
def test_real_backbones(name, size, overrides, tmp_path):
    if overrides["backbone"] not in garden.list_models("classification"):
        pytest.skip(f"backbone {overrides['backbone']} is not registered on this branch")
    test_builds_trains_and_roundtrips(name, size, overrides, tmp_path)


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
    from garden.models.fcn import BilinearUpsampling

    kernel = np.asarray(BilinearUpsampling()((4, 4, 2, 2)))
    np.testing.assert_allclose(kernel[:, :, 0, 0][0], [0.0625, 0.1875, 0.1875, 0.0625])
    assert np.all(kernel[:, :, 0, 1] == 0)
    # A fresh 2x layer reproduces linear interpolation in the interior of a ramp.
    ramp = np.tile(np.arange(8, dtype="float32"), (8, 1))[None, :, :, None]
    up = layers.Conv2DTranspose(1, 4, strides=2, padding="same", use_bias=False, kernel_initializer=BilinearUpsampling())
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
    plus = garden.create_model("deeplabv3plus", backbone=TINY, input_shape=(64, 64, 3), num_classes=NUM_CLASSES,
                               output_stride=8, aspp_filters=8, decoder_filters=8)
    assert plus.get_layer("aspp_b1_dw").dilation_rate == (12, 12)
    assert isinstance(plus.get_layer("decoder_conv1_dw"), layers.DepthwiseConv2D)
    assert plus.get_layer("decoder_upsample").output.shape[1:3] == (16, 16)
    assert plus.get_layer("decoder_low_level_conv").filters == 48
    standard = garden.create_model("deeplabv3plus", backbone=TINY, input_shape=(64, 64, 3), num_classes=NUM_CLASSES,
                                   separable=False, aspp_filters=8, decoder_filters=8)
    assert standard.get_layer("aspp_b3_conv").dilation_rate == (18, 18)
    assert standard.get_layer("decoder_conv2_conv").kernel_size == (3, 3)
    v3 = garden.create_model("deeplabv3", backbone=TINY, input_shape=(64, 64, 3), num_classes=NUM_CLASSES, aspp_filters=8)
    assert not any(layer.name.startswith("decoder") for layer in v3.layers)
    with pytest.raises(ValueError, match="output_stride"):
        garden.create_model("deeplabv3", backbone=TINY, output_stride=32)


def test_segmentation_models_are_registered():
    names = set(garden.list_models("segmentation"))
    assert {"fcn32s", "fcn16s", "fcn8s", "segnet", "segnet_builtin", "unet", "unet_valid",
            "deeplabv3", "deeplabv3plus"} <= names


@pytest.mark.slow
def test_deeplab_exports_to_plain_tflite_builtins(tmp_path):
    """Batch 1, fixed size, output stride 8: dilated convolutions, not SPACE_TO_BATCH_ND, and full int8."""
    tf = pytest.importorskip("tensorflow")
    interpreter = pytest.importorskip("ai_edge_litert.interpreter")
    model = garden.create_model("deeplabv3plus", backbone=TINY, input_shape=(64, 64, 3), num_classes=NUM_CLASSES,
                                output_stride=8, aspp_filters=8, decoder_filters=8)
    model.export(str(tmp_path / "saved"), format="tf_saved_model", verbose=False,
                 input_signature=[keras.InputSpec(shape=(1, 64, 64, 3), dtype="float32")])
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
