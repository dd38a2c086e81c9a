"""Heads, the Jigsaw permutation set, Lab conversion, the EMA target and the MoCo queue."""

import itertools

import keras
import numpy as np
import pytest
from keras import ops

import garden
from garden.ssl.heads import MLPHead
from garden.ssl.methods import Lightness, maximal_hamming_permutations, momentum_schedule, rgb_to_lab


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
    return garden.create_model("byol", input_shape=(16, 16, 3), projection_units=(16, 8), prediction_units=(16, 8),
                               total_steps=10)


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
