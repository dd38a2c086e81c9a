"""The building blocks behave as the lecture describes, and every custom layer round-trips."""

import keras
import numpy as np
import pytest
from keras import layers

from garden.layers import (
    BedOfNailsUnpooling,
    MaskedMaxUnpooling,
    MaxPoolingWithSwitches,
    MaxUnpooling,
    ResizeLike,
    atrous_spatial_pyramid_pooling,
    conv_matrix,
    conv_norm_act,
    depthwise_separable,
    normalization,
    squeeze_excite,
)
from helpers import assert_roundtrip


def _model(block, shape=(8, 8, 4)):
    inputs = keras.Input(shape)
    return keras.Model(inputs, block(inputs))


def test_conv_norm_act_names_padding_and_bias():
    model = _model(lambda x: conv_norm_act(x, 6, 5, strides=2, padding=2, name="c"), shape=(9, 9, 3))
    names = [layer.name for layer in model.layers]
    assert names == ["input_layer", "c_pad", "c_conv", "c_bn", "c_act"] or names[1:] == [
        "c_pad",
        "c_conv",
        "c_bn",
        "c_act",
    ]
    conv = model.get_layer("c_conv")
    assert conv.use_bias is False and conv.padding == "valid"
    assert model.output.shape[1:] == (5, 5, 6)  # (9 - 5 + 2*2) / 2 + 1 = 5


def test_dilated_conv_keeps_size_with_same_padding():
    model = _model(lambda x: conv_norm_act(x, 4, 3, dilation_rate=2, norm=None, name="d"))
    assert model.output.shape[1:] == (8, 8, 4)
    assert model.get_layer("d_conv").use_bias is True


def test_depthwise_separable_structure():
    model = _model(lambda x: depthwise_separable(x, 16, name="s"))
    assert isinstance(model.get_layer("s_dw"), layers.DepthwiseConv2D)
    assert model.get_layer("s_pw_conv").kernel_size == (1, 1)
    # depthwise 3*3*4, BN 4*4, pointwise 4*16, BN 4*16
    assert model.count_params() == 36 + 16 + 64 + 64


@pytest.mark.parametrize("kind", ["batch", "instance", "layer", "group"])
def test_normalization_choices_have_per_channel_affine(kind):
    layer = normalization(kind, groups=2)
    layer.build((None, 4, 4, 8))
    shapes = sorted(tuple(w.shape) for w in layer.trainable_weights)
    assert shapes == [(8,), (8,)]


def test_instance_norm_same_at_train_and_test_batch_norm_differs():
    x = np.random.default_rng(0).normal(3.0, 2.0, (4, 5, 5, 3)).astype("float32")
    instance = normalization("instance")
    np.testing.assert_allclose(instance(x, training=True), instance(x, training=False), atol=1e-6)
    normed = np.asarray(instance(x))
    np.testing.assert_allclose(normed.mean(axis=(1, 2)), 0.0, atol=1e-4)
    batch = normalization("batch")
    train = np.asarray(batch(x, training=True))
    np.testing.assert_allclose(train.mean(axis=(0, 1, 2)), 0.0, atol=1e-4)
    # At inference the running averages (barely moved from 0/1 after one step) are used instead.
    test = np.asarray(batch(x, training=False))
    assert abs(test.mean() - train.mean()) > 1.0


def test_layer_norm_normalizes_each_sample_over_all_axes():
    x = np.random.default_rng(1).normal(2.0, 3.0, (2, 4, 4, 6)).astype("float32")
    out = np.asarray(normalization("layer")(x))
    np.testing.assert_allclose(out.reshape(2, -1).mean(axis=1), 0.0, atol=1e-4)
    np.testing.assert_allclose(out.reshape(2, -1).std(axis=1), 1.0, atol=1e-2)


def test_unknown_normalization_is_an_error():
    with pytest.raises(ValueError, match="unknown normalization"):
        normalization("batchnorm")


def test_squeeze_excite_recalibrates_channels():
    model = _model(lambda x: squeeze_excite(x, ratio=0.5, name="se"))
    # reduce 4->2 (8 + 2), expand 2->4 (8 + 4)
    assert model.count_params() == 10 + 12
    x = np.random.default_rng(2).random((1, 8, 8, 4)).astype("float32")
    y = np.asarray(model(x))
    gate = y / x
    # one gate value per channel, between 0 and 1
    np.testing.assert_allclose(gate, gate[:, :1, :1, :] * np.ones_like(gate), rtol=1e-4)
    assert ((gate > 0) & (gate < 1)).all()


def test_bed_of_nails_places_values_top_left():
    x = np.arange(1, 5, dtype="float32").reshape(1, 2, 2, 1)
    y = np.asarray(BedOfNailsUnpooling(2)(x))[0, :, :, 0]
    expected = np.array([[1, 0, 2, 0], [0, 0, 0, 0], [3, 0, 4, 0], [0, 0, 0, 0]], dtype="float32")
    np.testing.assert_array_equal(y, expected)


def test_nearest_unpooling_copies_values():
    x = np.arange(1, 5, dtype="float32").reshape(1, 2, 2, 1)
    y = np.asarray(layers.UpSampling2D(2)(x))[0, :, :, 0]
    np.testing.assert_array_equal(y, np.kron(x[0, :, :, 0], np.ones((2, 2))))


def _numpy_max_unpool(x, values):
    """Reference: put each pooled value where its window's first maximum was."""
    out = np.zeros_like(x)
    b, h, w, c = x.shape
    for n in range(b):
        for i in range(0, h, 2):
            for j in range(0, w, 2):
                for ch in range(c):
                    window = x[n, i : i + 2, j : j + 2, ch]
                    r, s = np.unravel_index(np.argmax(window), (2, 2))
                    out[n, i + r, j + s, ch] = values[n, i // 2, j // 2, ch]
    return out


def test_max_pooling_switches_and_unpooling_match_numpy():
    x = np.random.default_rng(3).random((2, 6, 4, 3)).astype("float32")
    pooled, switches = MaxPoolingWithSwitches(2)(x)
    np.testing.assert_allclose(pooled, x.reshape(2, 3, 2, 2, 2, 3).max(axis=(2, 4)))
    assert np.asarray(switches).dtype == np.int32
    values = np.random.default_rng(4).random(pooled.shape).astype("float32")
    unpooled = np.asarray(MaxUnpooling(2)([values, switches]))
    np.testing.assert_allclose(unpooled, _numpy_max_unpool(x, values))
    masked = np.asarray(MaskedMaxUnpooling(2)([values, x]))
    np.testing.assert_allclose(masked, unpooled)


def test_max_pooling_switches_rejects_indivisible_size():
    with pytest.raises(ValueError, match="divisible by 2"):
        MaxPoolingWithSwitches(2)(keras.Input((5, 4, 3)))


def test_transpose_conv_is_the_transpose_of_the_conv_matrix():
    kernel = np.array([1.0, 2.0, 3.0])
    matrix = conv_matrix(kernel, input_size=7, stride=2)
    x = np.random.default_rng(5).random(7)
    conv = layers.Conv2D(1, (1, 3), strides=(1, 2), use_bias=False)
    conv.build((None, 1, 7, 1))
    conv.set_weights([kernel.reshape(1, 3, 1, 1)])
    np.testing.assert_allclose(np.asarray(conv(x.reshape(1, 1, 7, 1))).ravel(), matrix @ x, rtol=1e-5)
    y = np.random.default_rng(6).random(matrix.shape[0])
    transpose = layers.Conv2DTranspose(1, (1, 3), strides=(1, 2), use_bias=False)
    transpose.build((None, 1, len(y), 1))
    transpose.set_weights([kernel.reshape(1, 3, 1, 1)])
    out = np.asarray(transpose(y.reshape(1, 1, -1, 1))).ravel()
    np.testing.assert_allclose(out[: matrix.shape[1]], matrix.T @ y, rtol=1e-5)


def test_resize_like_and_bilinear():
    small = np.random.default_rng(7).random((1, 3, 3, 2)).astype("float32")
    reference = np.zeros((1, 12, 9, 5), "float32")
    assert ResizeLike()([small, reference]).shape == (1, 12, 9, 2)
    constant = np.full((1, 4, 4, 1), 2.5, "float32")
    np.testing.assert_allclose(layers.UpSampling2D(2, interpolation="bilinear")(constant), 2.5)


@pytest.mark.parametrize("separable", [True, False])
def test_aspp_output_and_branches(separable):
    model = _model(lambda x: atrous_spatial_pyramid_pooling(x, 8, rates=(2, 4), separable=separable), (16, 16, 6))
    assert model.output.shape[1:] == (16, 16, 8)
    dilations = {
        layer.dilation_rate for layer in model.layers if isinstance(layer, (layers.Conv2D, layers.DepthwiseConv2D))
    }
    assert {(2, 2), (4, 4)} <= dilations
    kinds = {type(layer) for layer in model.layers}
    assert (layers.DepthwiseConv2D in kinds) is separable


def test_custom_layers_roundtrip(tmp_path):
    inputs = keras.Input((8, 8, 3))
    pooled, switches = MaxPoolingWithSwitches(2, name="pool")(inputs)
    unpooled = MaxUnpooling(2, name="unpool")([pooled, switches])
    masked = MaskedMaxUnpooling(2, name="masked")([pooled, inputs])
    nails = BedOfNailsUnpooling(2, name="nails")(pooled)
    resized = ResizeLike("nearest", name="resize")([pooled, inputs])
    aspp = atrous_spatial_pyramid_pooling(inputs, 4, rates=(2,), dropout=0.0)
    model = keras.Model(inputs, [unpooled, masked, nails, resized, aspp])
    x = np.random.default_rng(8).random((2, 8, 8, 3)).astype("float32")
    loaded = assert_roundtrip(model, tmp_path, x)
    assert loaded.get_layer("resize").interpolation == "nearest"
    assert loaded.get_layer("nails").size == 2
