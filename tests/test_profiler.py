"""Profiler numbers against hand-computed values, the lecture's examples and ``count_params``."""

import json

import keras
import pytest
from keras import layers

import garden
from garden import profiler
from garden.profiler import (
    UnevenStrideError,
    bottleneck_example,
    conv_output_size,
    receptive_field,
    separable_comparison,
    separable_ratio,
    stack_receptive_field,
)


def _rows(model):
    return {row.name: row for row in profiler.profile(model).layers}


def _chain(shape, *stack):
    inputs = keras.Input(shape, name="x")
    x = inputs
    for layer in stack:
        x = layer(x)
    return keras.Model(inputs, x)


def test_conv_row_by_hand():
    rows = _rows(_chain((8, 8, 3), layers.Conv2D(4, 3, name="c")))
    c = rows["c"]
    assert c.output_shape == [6, 6, 4]
    assert c.params == 3 * 3 * 3 * 4 + 4
    assert c.macs == 6 * 6 * 4 * 3 * 3 * 3
    assert c.memory_kb == pytest.approx(6 * 6 * 4 * 4 / 1024, abs=1e-3)
    assert c.receptive_field == 3
    assert rows["x"].memory_kb == pytest.approx(8 * 8 * 3 * 4 / 1024, abs=1e-3)


def test_grouped_depthwise_separable_transpose_dense_by_hand():
    model = _chain(
        (16, 16, 8),
        layers.Conv2D(8, 3, padding="same", groups=4, name="grouped"),
        layers.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2, name="dw"),
        layers.SeparableConv2D(12, 3, padding="same", name="sep"),
        layers.Conv2DTranspose(6, 4, strides=2, padding="same", name="up"),
        layers.GlobalAveragePooling2D(name="gap"),
        layers.Dense(5, name="fc"),
    )
    rows = _rows(model)
    assert rows["grouped"].macs == 16 * 16 * 8 * (8 // 4) * 9
    assert rows["grouped"].params == 3 * 3 * 2 * 8 + 8
    assert rows["dw"].output_shape == [8, 8, 16]
    assert rows["dw"].macs == 8 * 8 * 16 * 9
    assert rows["sep"].macs == 8 * 8 * 16 * 9 + 8 * 8 * 16 * 12
    assert rows["sep"].params == 3 * 3 * 16 + 16 * 12 + 12
    assert rows["up"].output_shape == [16, 16, 6]
    assert rows["up"].macs == 8 * 8 * 12 * 4 * 4 * 6
    assert rows["fc"].macs == 6 * 5
    assert sum(r.params for r in rows.values()) == model.count_params()


def test_batch_norm_params_split_and_no_macs():
    rows = _rows(_chain((4, 4, 6), layers.BatchNormalization(name="bn")))
    assert (rows["bn"].trainable_params, rows["bn"].non_trainable_params) == (12, 12)
    assert rows["bn"].macs == 0


def test_receptive_field_through_pooling_and_dilation():
    model = _chain(
        (32, 32, 1),
        layers.Conv2D(1, 3, padding="same", name="a"),
        layers.Conv2D(1, 3, padding="same", name="b"),
        layers.MaxPooling2D(2, name="pool"),
        layers.Conv2D(1, 3, padding="same", dilation_rate=2, name="dilated"),
        layers.UpSampling2D(2, name="up"),
        layers.Conv2D(1, 3, padding="same", name="after_up"),
    )
    rows = _rows(model)
    assert rows["b"].receptive_field == stack_receptive_field(2, 3) == 5
    assert rows["pool"].receptive_field == 6
    # dilation 2 widens by 2 * (3 - 1) pixels of stride 2: 6 + 8
    assert rows["dilated"].receptive_field == 14 == receptive_field([(3, 1, 1), (3, 1, 1), (2, 2, 1), (3, 1, 2)])
    assert rows["after_up"].receptive_field == 16


def test_merges_take_the_widest_branch_and_nested_models_recurse():
    inner_in = keras.Input((None, None, 4))
    inner = keras.Model(inner_in, layers.Conv2D(4, 5, padding="same", name="wide")(inner_in), name="inner")
    inputs = keras.Input((10, 10, 4))
    narrow = layers.Conv2D(4, 1, name="narrow")(inputs)
    added = layers.Add(name="add")([narrow, inner(inputs)])
    model = keras.Model(inputs, added)
    result = profiler.profile(model)
    rows = {r.name: r for r in result.layers}
    assert rows["inner/wide"].output_shape == [10, 10, 4]
    assert rows["inner/wide"].macs == 10 * 10 * 4 * 4 * 25
    assert rows["add"].receptive_field == 5
    assert result.total["params"] == model.count_params()


def test_folded_padding_and_uneven_stride_reported():
    model = _chain((7, 7, 1), layers.ZeroPadding2D(1, name="pad"), layers.Conv2D(1, 3, strides=3, name="c"))
    rows = _rows(model)
    assert "pad" not in rows
    assert rows["c"].padding == 1 and rows["c"].input_shape == [7, 7, 1]
    # (7 - 3 + 2) / 3 + 1 = 3 exactly: no note
    assert rows["c"].notes == []
    uneven = _rows(_chain((7, 7, 1), layers.Conv2D(1, 3, strides=3, name="c")))["c"]
    assert uneven.output_shape == [2, 2, 1]
    assert uneven.notes and "2.33" in uneven.notes[0]


def test_conv_output_size_reports_uneven_stride():
    assert conv_output_size(227, 11, stride=4, padding=2) == 56
    assert conv_output_size(32, 3, padding=1) == 32
    with pytest.raises(UnevenStrideError, match="2.33"):
        conv_output_size(7, 3, stride=3)
    assert float(conv_output_size(7, 3, stride=3, strict=False)) == pytest.approx(7 / 3)
    assert conv_output_size(9, 3, dilation=2) == 5


def test_lecture_bottleneck_example():
    direct, reduce, then = bottleneck_example()
    assert direct == 28 * 28 * 32 * 192 * 5 * 5 == 120_422_400
    assert (reduce, then) == (2_408_448, 10_035_200)
    assert (reduce + then) / 1e6 == pytest.approx(12.4, abs=0.05)
    # the same numbers from the profiler on real layers
    direct_model = _chain((28, 28, 192), layers.Conv2D(32, 5, padding="same"))
    reduced_model = _chain((28, 28, 192), layers.Conv2D(16, 1), layers.Conv2D(32, 5, padding="same"))
    assert profiler.profile(direct_model).total["macs"] == direct
    assert profiler.profile(reduced_model).total["macs"] == reduce + then


def test_separable_comparison_matches_theory():
    model = _chain(
        (14, 14, 32),
        layers.Conv2D(64, 3, padding="same", name="standard"),
        layers.DepthwiseConv2D(3, padding="same", name="dw"),
        layers.BatchNormalization(),
        layers.ReLU(),
        layers.Conv2D(128, 1, name="pw"),
    )
    entries = {e.name: e for e in separable_comparison(profiler.profile(model))}
    assert entries["standard"].form == "standard" and entries["dw"].form == "separable"
    assert entries["dw"].out_channels == 128
    for entry in entries.values():
        assert entry.ratio == pytest.approx(separable_ratio(entry.out_channels, 3))
    assert separable_ratio(64, 3) == pytest.approx(1 / 64 + 1 / 9)


def test_alexnet_table_is_the_lectures():
    result = garden.profile("alexnet", input_shape=(227, 227, 3))
    rows = {r.name: r for r in result.layers}
    assert rows["conv1_conv"].output_shape == [56, 56, 64] and rows["conv1_conv"].padding == 2
    assert rows["conv1_pool"].notes  # (56 - 3) / 2 + 1 = 27.5
    assert rows["conv5_pool"].output_shape == [6, 6, 256]
    assert result.total["params"] == 61_100_840
    convs = sum(r.macs for r in result.layers if r.type == "Conv2D")
    fcs = sum(r.macs for r in result.layers if r.type == "Dense")
    conv_params = sum(r.params for r in result.layers if r.type == "Conv2D")
    fc_params = sum(r.params for r in result.layers if r.type == "Dense")
    # the lecture's lessons: operations in the convolutions, parameters in the fully connected layers,
    # memory early
    assert convs > 5 * fcs and fc_params > 20 * conv_params
    memory = [r.memory_kb for r in result.layers if r.type == "Conv2D"]
    assert memory[0] == max(memory)


def test_json_schema_keys():
    data = json.loads(profiler.to_json(garden.profile("lenet5")))
    assert set(data) >= {"model", "input_shape", "layers", "total"}
    assert set(data["total"]) >= {"params", "macs", "memory_kb"}
    for row in data["layers"]:
        assert set(row) >= {
            "name",
            "type",
            "input_shape",
            "output_shape",
            "memory_kb",
            "params",
            "macs",
            "receptive_field",
        }


def test_lenet_by_hand():
    result = garden.profile("lenet5")
    assert result.total["params"] == 61_706
    rows = {r.name: r for r in result.layers}
    assert rows["c1_conv"].macs == 28 * 28 * 6 * 25
    assert rows["c3_conv"].macs == 10 * 10 * 16 * 6 * 25
    assert rows["c5_conv"].macs == 120 * 16 * 25


def test_profile_rebuilds_a_model_at_another_size():
    model = garden.create_model("lenet5", include_top=False)
    result = garden.profile(model, input_shape=(64, 64, 1))
    assert result.input_shape == [64, 64, 1]
    assert result.layers[-1].output_shape == [13, 13, 16]


# SSL methods are subclassed training wrappers; their functional encoders are profiled in test_ssl_components.
@pytest.mark.parametrize("name", [n for n in garden.list_models() if n not in garden.list_models("ssl")])
def test_profile_params_equal_count_params(name):
    from garden.registry import get_entry

    default = get_entry(name).default_input_shape
    # unet_valid needs an even size at every level of its valid-padded encoder: its own 572 is one
    small = (96, 96, default[-1]) if default and default[0] > 96 and name != "unet_valid" else default
    model = garden.create_model(name, **({"input_shape": small} if small else {}))
    assert profiler.profile(model).total["params"] == model.count_params()
