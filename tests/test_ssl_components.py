"""Heads, the Jigsaw permutation set, Lab conversion, the EMA target and the MoCo queue."""

import itertools

import keras
import numpy as np
import pytest
from keras import ops

import garden
from garden.errors import GardenError
from garden.ssl.heads import MLPHead
from garden.ssl.methods import Lightness, maximal_hamming_permutations, momentum_schedule, rgb_to_lab
from garden.ssl.pretrain import pretrain


def test_mlp_head_sizes_and_layers():
    head = MLPHead(units=(32, 16, 8), output_norm=True)
    out = head(np.zeros((5, 12), "float32"))
    assert tuple(out.shape) == (5, 8)
    assert [d.units for d in head.dense_layers] == [32, 16, 8]
    assert [n is not None for n in head.norm_layers] == [True, True, True]
    assert not head.norm_layers[-1].scale and not head.dense_layers[0].use_bias
    plain = MLPHead(units=(4,), norm=False)
    assert plain(np.ones((2, 3), "float32")).shape == (2, 4) and plain.norm_layers == [None]
    with pytest.raises(ValueError, match="positive"):
        MLPHead(units=(8, 0))


def test_mlp_head_saves_and_loads(tmp_path):
    inputs = keras.Input((6,))
    model = keras.Model(inputs, MLPHead(units=(10, 3), name="head")(inputs))
    x = np.random.default_rng(0).normal(size=(4, 6)).astype("float32")
    path = tmp_path / "head.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    assert loaded.get_layer("head").get_config()["units"] == (10, 3) or list(loaded.get_layer("head").units) == [10, 3]


def test_jigsaw_permutations_are_distinct_and_far_apart():
    chosen = maximal_hamming_permutations(30, seed=0)
    assert chosen.shape == (30, 9) and len({tuple(p) for p in chosen}) == 30
    assert all(sorted(p) == list(range(9)) for p in chosen)
    distance = lambda a, b: int(np.sum(a != b))  # noqa: E731
    closest = min(distance(a, b) for a, b in itertools.combinations(chosen, 2))
    random_set = np.array([np.random.default_rng(s).permutation(9) for s in range(30)])
    random_closest = min(distance(a, b) for a, b in itertools.combinations(random_set, 2))
    assert closest >= 7 and closest >= random_closest


def test_rgb_to_lab_matches_scikit_image():
    from skimage.color import rgb2lab

    rgb = np.random.default_rng(0).uniform(size=(2, 5, 5, 3)).astype("float32")
    got = ops.convert_to_numpy(rgb_to_lab(rgb))
    np.testing.assert_allclose(got, rgb2lab(rgb.astype("float64")), atol=0.05)
    gray = np.full((1, 2, 2, 1), 0.5, "float32")
    lightness = ops.convert_to_numpy(Lightness()(gray))
    np.testing.assert_allclose(lightness, rgb2lab(np.full((2, 2, 3), 0.5))[..., :1][None] / 100, atol=1e-3)


def test_momentum_schedule_runs_from_base_to_one():
    values = [float(ops.convert_to_numpy(momentum_schedule(k, 100, 0.99))) for k in (0, 50, 100, 200)]
    assert values == pytest.approx([0.99, 0.995, 1.0, 1.0], abs=1e-6)


@pytest.fixture(scope="module")
def byol():
    return garden.create_model(
        "byol", input_shape=(16, 16, 3), projection_units=(16, 8), prediction_units=(16, 8), total_steps=10
    )


def test_byol_target_starts_as_a_copy_and_is_frozen(byol):
    for online, target in zip(byol.encoder.weights, byol.target_encoder.weights):
        np.testing.assert_array_equal(ops.convert_to_numpy(online), ops.convert_to_numpy(target))
    assert not byol.target_encoder.trainable_weights and not byol.target_projector.trainable_weights
    trainable = {id(v) for v in byol.trainable_variables}
    assert all(id(v) not in trainable for v in byol.target_encoder.weights)


def test_byol_target_moves_by_the_scheduled_ema(byol):
    for variable in byol.encoder.trainable_weights:  # make online and target differ
        variable.assign(variable + 0.1)
    # Kernels only: the target's batch norms also update their statistics from the batch.
    pairs = [(o, t) for o, t in zip(byol.encoder.weights, byol.target_encoder.weights) if "kernel" in o.path]
    online = [ops.convert_to_numpy(o).copy() for o, _ in pairs]
    target = [ops.convert_to_numpy(t).copy() for _, t in pairs]
    step = float(ops.convert_to_numpy(byol.ema_step))
    momentum = float(ops.convert_to_numpy(momentum_schedule(step, 10, 0.99)))
    byol(np.random.default_rng(0).uniform(size=(4, 16, 16, 3)).astype("float32"), training=True)
    assert pairs
    for o, t, (_, new) in zip(online, target, pairs):
        np.testing.assert_allclose(ops.convert_to_numpy(new), momentum * t + (1 - momentum) * o, atol=1e-5)
    assert float(ops.convert_to_numpy(byol.ema_step)) == step + 1


def test_moco_queue_takes_the_new_keys_in_order():
    model = garden.create_model("moco_v2", input_shape=(16, 16, 3), projection_units=(16, 8), queue_size=6)
    images = np.random.default_rng(0).uniform(size=(4, 16, 16, 3)).astype("float32")
    before = ops.convert_to_numpy(model.queue).copy()
    outputs = model(images, training=True)
    queue = ops.convert_to_numpy(model.queue)
    np.testing.assert_allclose(queue[:4], ops.convert_to_numpy(outputs["keys"]), atol=1e-6)
    np.testing.assert_allclose(queue[4:], before[4:])
    np.testing.assert_allclose(ops.convert_to_numpy(outputs["queue"]), before)  # negatives: the old queue
    model(images, training=True)
    assert int(ops.convert_to_numpy(model.queue_pointer)) == 2  # (4 + 4) mod 6


def test_small_cnn_is_a_classification_model():
    model = garden.create_model("small_cnn", input_shape=(32, 32, 3))
    assert model.output.shape[-1] == 10
    features = garden.create_model("small_cnn", features_only=True)
    assert sorted(features.output) == ["stride_2", "stride_4", "stride_8"]
    assert features.output["stride_8"].shape[1:3] == (4, 4)


@pytest.mark.parametrize("name", ["simclr", "colorization"])
def test_ssl_encoders_are_functional_and_profile(name):
    model = garden.create_model(name, input_shape=(16, 16, 3))
    result = garden.profile(model.encoder)
    assert result.total["params"] == model.encoder.count_params()


def test_ab_bins_cover_the_srgb_gamut_on_a_10_unit_grid():
    from garden.ssl.methods.pretext import ab_bin_centres

    centres = ab_bin_centres()
    assert np.allclose((centres - 5.0) % 10.0, 0.0)  # bin centres of a 10-unit grid
    colours = np.random.default_rng(1).uniform(size=(1, 500, 1, 3)).astype("float32")
    ab = ops.convert_to_numpy(rgb_to_lab(colours)).reshape(-1, 3)[:, 1:]
    nearest = np.min(np.abs(ab[:, None, :] - centres[None]).max(axis=-1), axis=1)
    assert np.all(nearest <= 5.0 + 1e-4)  # every random colour falls in a kept bin
    assert 200 < len(centres) < 330  # Zhang et al. keep 313 with their gamut estimate


def test_soft_encoding_weights_the_five_nearest_bins_by_a_gaussian():
    from garden.ssl.methods.pretext import soft_encode

    centres = np.array([[0, 0], [10, 0], [0, 10], [10, 10], [20, 0], [30, 30], [-10, 0]], "float32")
    ab = np.array([[2.0, 1.0]], "float32")
    got = ops.convert_to_numpy(soft_encode(ab, centres, neighbours=5, sigma=5.0))[0]
    distance2 = np.sum((centres - ab) ** 2, axis=1)
    nearest = np.argsort(distance2)[:5]
    expected = np.zeros(len(centres))
    expected[nearest] = np.exp(-distance2[nearest] / 50.0)
    np.testing.assert_allclose(got, expected / expected.sum(), atol=1e-6)


def test_colorization_loss_is_rebalanced_cross_entropy():
    model = garden.create_model("colorization", input_shape=(8, 8, 3), decoder_filters=4, rebalance=0.5)
    rng = np.random.default_rng(0)
    count = len(model.centres)
    prior = rng.dirichlet(np.ones(count)).astype("float32")
    model.prior.assign(prior)
    target = rng.dirichlet(np.ones(count), size=(2, 2, 2)).astype("float32")
    logits = rng.normal(size=(2, 2, 2, count)).astype("float32")
    outputs = {"logits": logits, "target": target, "weights": model.rebalancing_weights(target)}
    got = float(ops.convert_to_numpy(model.ssl_loss(outputs)))

    weights = 1.0 / (0.5 * prior + 0.5 / count)
    weights /= np.sum(prior * weights)  # expected weight under the prior is 1
    log_softmax = logits - np.log(np.sum(np.exp(logits), axis=-1, keepdims=True))
    per_cell = -np.sum(target * log_softmax, axis=-1) * weights[np.argmax(target, axis=-1)]
    assert got == pytest.approx(float(per_cell.mean()), rel=1e-5)


def test_colorization_prior_follows_the_targets_in_training_only():
    model = garden.create_model("colorization", input_shape=(8, 8, 3), decoder_filters=4)
    uniform = ops.convert_to_numpy(model.prior).copy()
    red = np.zeros((2, 8, 8, 3), "float32")
    red[..., 0] = 1.0
    model(red, training=False)
    np.testing.assert_allclose(ops.convert_to_numpy(model.prior), uniform)
    outputs = model(red, training=True)
    frequency = ops.convert_to_numpy(outputs["target"]).reshape(-1, len(uniform)).mean(axis=0)
    np.testing.assert_allclose(ops.convert_to_numpy(model.prior), 0.99 * uniform + 0.01 * frequency, atol=1e-7)
    assert np.argmax(ops.convert_to_numpy(model.prior)) == np.argmax(frequency)  # red's bin now most frequent


def test_jigsaw_tiles_stay_inside_their_cells_despite_the_jitter():
    model = garden.create_model("jigsaw", input_shape=(30, 30, 1), num_permutations=4, hidden_units=8, gap=0.4)
    assert (model.cell, model.tile, model.margin) == (10, 6, 2)
    values = np.arange(1, 10, dtype="float32").reshape(3, 3)
    images = np.stack([np.kron(values, np.ones((10, 10), "float32")), np.kron(values.T, np.ones((10, 10), "float32"))])
    tiles = ops.convert_to_numpy(model.cut_tiles(images[..., None], training=True)).reshape(2, 9, -1)
    np.testing.assert_allclose(tiles.min(axis=-1), tiles.max(axis=-1))  # each tile from one cell only
    np.testing.assert_allclose(tiles[..., 0], [values.ravel(), values.T.ravel()])  # in row-major cell order


def test_jigsaw_jitters_each_tile_on_its_own():
    model = garden.create_model("jigsaw", input_shape=(30, 30, 1), num_permutations=4, hidden_units=8, gap=0.4)
    ramp = np.tile(np.arange(30, dtype="float32"), (30, 1))[None, ..., None]  # value = x coordinate
    tiles = ops.convert_to_numpy(model.cut_tiles(np.repeat(ramp, 4, axis=0), training=True))
    offsets = tiles[:, 0, 0, 0] - np.tile([0.0, 10.0, 20.0], 12)  # left edge minus the cell's
    assert np.all((offsets >= 0) & (offsets <= 4))  # inside the cell: 2-pixel margin either way around 2
    assert len(np.unique(np.round(offsets, 3))) > 3  # tiles of one image move independently


def test_jigsaw_normalised_tiles_have_zero_mean():
    model = garden.create_model(
        "jigsaw", input_shape=(30, 30, 3), num_permutations=4, hidden_units=8, normalize_tiles=True
    )
    images = np.random.default_rng(0).uniform(size=(2, 30, 30, 3)).astype("float32")
    tiles = ops.convert_to_numpy(model.cut_tiles(images))
    np.testing.assert_allclose(tiles.mean(axis=(1, 2, 3)), 0.0, atol=1e-5)


def test_jigsaw_crops_before_cutting_in_training_only():
    model = garden.create_model(
        "jigsaw", input_shape=(30, 30, 1), num_permutations=4, hidden_units=8, gap=0.4, crop_scale=(0.2, 0.2)
    )
    values = np.arange(1, 10, dtype="float32").reshape(3, 3)
    image = np.kron(values, np.ones((10, 10), "float32"))[None, ..., None]
    plain = ops.convert_to_numpy(model.cut_tiles(image, training=False)).reshape(9, -1)
    np.testing.assert_allclose(plain.mean(axis=-1), values.ravel())
    cropped = ops.convert_to_numpy(model.cut_tiles(image, training=True)).reshape(9, -1)
    assert np.ptp(cropped.mean(axis=-1)) < np.ptp(values)  # a fifth of the image: fewer cells' values in view


def test_jigsaw_reassembles_shuffled_tiles_into_their_cells():
    model = garden.create_model(
        "jigsaw", input_shape=(32, 32, 1), num_permutations=4, hidden_units=8, gap=0.4, reassemble=True
    )
    assert (model.cell, model.tile, model.margin) == (10, 6, 2)
    order = np.array([4, 0, 8, 2, 6, 1, 3, 7, 5])
    tiles = np.stack([np.full((6, 6, 1), k + 1.0, "float32") for k in order])  # tile k carries order[k] + 1
    image = ops.convert_to_numpy(model.assemble(tiles))
    assert image.shape == (1, 32, 32, 1)
    expected = np.zeros((32, 32), "float32")
    for k, value in enumerate(order + 1.0):
        top, left = 1 + 10 * (k // 3) + 2, 1 + 10 * (k % 3) + 2  # a 1-pixel border, then the cell's margin
        expected[top : top + 6, left : left + 6] = value
    np.testing.assert_array_equal(image[0, ..., 0], expected)


def test_jigsaw_plus_plus_swaps_up_to_k_tiles_for_the_previous_images_same_cells():
    model = garden.create_model("jigsaw", input_shape=(30, 30, 1), num_permutations=4, hidden_units=8, foreign_tiles=2)
    n = 300
    own = np.arange(n)[:, None] * 100.0 + np.arange(9)[None, :]  # tile value = 100 * image + cell
    tiles = np.broadcast_to(own.reshape(-1, 1, 1, 1), (9 * n, 2, 2, 1)).astype("float32")
    swapped = ops.convert_to_numpy(model.swap_in_foreign_tiles(tiles, n))[:, 0, 0, 0].reshape(n, 9)
    previous = np.roll(own, 1, axis=0)
    assert np.all((swapped == own) | (swapped == previous))
    counts = (swapped != own).sum(axis=1)
    assert set(counts) == {0, 1, 2}  # 0 to k per puzzle, each count drawn
    cells = (swapped != own).sum(axis=0)
    assert cells.min() > 0.5 * cells.mean()  # any cell can be the foreign one
    with pytest.raises(GardenError, match="foreign_tiles"):
        pretrain("jigsaw", np.zeros((4, 30, 30, 1), "float32"), epochs=1, batch_size=2, foreign_tiles=9)


def test_jigsaw_reassembled_reads_the_whole_feature_map_and_keeps_a_pooled_encoder():
    model = garden.create_model("jigsaw", input_shape=(32, 32, 3), num_permutations=4, hidden_units=8, reassemble=True)
    assert model.encoder.input_shape == (None, 32, 32, 3) and model.encoder.output_shape == (None, 256)
    assert model.classifier.dense_layers[0].kernel.shape[0] == 4 * 4 * 256  # small_cnn's 4x4 map at 32x32
    with pytest.raises(GardenError, match="upscale"):
        pretrain("jigsaw", np.zeros((4, 32, 32, 3), "float32"), epochs=1, batch_size=2, reassemble=True, upscale=2)


@pytest.mark.parametrize(
    "name, options",
    [
        ("rotnet", dict(hidden_units=8)),
        ("colorization", dict(decoder_filters=4)),
        ("jigsaw", dict(num_permutations=4, hidden_units=8)),
    ],
)
def test_pretext_crop_zooms_in_during_training_only(name, options):
    model = garden.create_model(name, input_shape=(12, 12, 3), crop_scale=(0.25, 0.25), **options)
    ramp = np.broadcast_to(np.linspace(0.0, 1.0, 12, dtype="float32")[None, None, :, None], (4, 12, 12, 3))
    np.testing.assert_array_equal(ops.convert_to_numpy(model.crop_in_training(ramp, training=False)), ramp)
    cropped = ops.convert_to_numpy(model.crop_in_training(ramp, training=True))
    spans = cropped.max(axis=(1, 2, 3)) - cropped.min(axis=(1, 2, 3))
    assert np.all(spans < 0.75)  # a quarter of the area: at most about half the ramp's width in view


@pytest.mark.parametrize("crop_scale", [(0.8, 0.2), (0.0, 1.0), (0.5, 1.5), (0.5,), "big"])
def test_pretext_crop_scale_is_checked(crop_scale):
    with pytest.raises(GardenError, match="crop_scale"):
        garden.create_model("rotnet", input_shape=(12, 12, 3), hidden_units=8, crop_scale=crop_scale)
