"""Every SSL loss against a NumPy reference written from the paper's equation, term by term."""

import keras
import numpy as np
import pytest
from keras import ops

from garden.ssl import losses


def _np(x):
    return float(ops.convert_to_numpy(x))


def _cos(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture
def rng():
    return np.random.default_rng(3)


def test_cross_entropy_matches_log_softmax(rng):
    logits = rng.normal(size=(6, 4)).astype("float32")
    labels = rng.integers(0, 4, size=6)
    expected = np.mean([-np.log(np.exp(row[y]) / np.exp(row).sum()) for row, y in zip(logits, labels)])
    assert _np(losses.cross_entropy(labels, logits)) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("temperature", [0.1, 0.5, 1.0])
def test_nt_xent_matches_simclr_equation(rng, temperature):
    z1, z2 = rng.normal(size=(2, 5, 8)).astype("float32")
    views = np.concatenate([z1, z2])  # index i and i + N are the two views of image i
    n = len(z1)
    terms = []
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        numerator = np.exp(_cos(views[i], views[j]) / temperature)
        denominator = sum(np.exp(_cos(views[i], views[k]) / temperature) for k in range(2 * n) if k != i)
        terms.append(-np.log(numerator / denominator))
    assert _np(losses.nt_xent(z1, z2, temperature)) == pytest.approx(np.mean(terms), rel=1e-4)


def test_nt_xent_is_low_for_matching_views(rng):
    z = rng.normal(size=(8, 16)).astype("float32")
    other = rng.normal(size=(8, 16)).astype("float32")
    assert _np(losses.nt_xent(z, z, 0.1)) < _np(losses.nt_xent(z, other, 0.1))


@pytest.mark.parametrize("normalize,temperature", [(False, 1.0), (True, 0.2)])
def test_info_nce_matches_reference(rng, normalize, temperature):
    predictions = rng.normal(size=(4, 6)).astype("float32")
    keys = rng.normal(size=(7, 6)).astype("float32")
    positives = np.array([0, 3, 6, 2])
    terms = []
    for p, positive in zip(predictions, positives):
        scores = [(_cos(p, k) if normalize else float(p @ k)) / temperature for k in keys]
        terms.append(-np.log(np.exp(scores[positive]) / np.sum(np.exp(scores))))
    got = losses.info_nce(predictions, keys, positives, temperature=temperature, normalize=normalize)
    assert _np(got) == pytest.approx(np.mean(terms), rel=1e-4)


def test_moco_loss_matches_reference(rng):
    queries, keys = rng.normal(size=(2, 4, 6)).astype("float32")
    queue = rng.normal(size=(10, 6)).astype("float32")
    queue /= np.linalg.norm(queue, axis=1, keepdims=True)
    terms = []
    for q, k in zip(queries, keys):
        positive = np.exp(_cos(q, k) / 0.2)
        negatives = sum(np.exp(_cos(q, m) / 0.2) for m in queue)
        terms.append(-np.log(positive / (positive + negatives)))
    assert _np(losses.moco_loss(queries, keys, queue, 0.2)) == pytest.approx(np.mean(terms), rel=1e-4)


def test_negative_cosine_matches_byol_equation(rng):
    p, z = rng.normal(size=(2, 5, 8)).astype("float32")
    expected = np.mean([2 - 2 * _cos(a, b) for a, b in zip(p, z)])
    assert _np(losses.negative_cosine(p, z)) == pytest.approx(expected, rel=1e-5)
    assert _np(losses.negative_cosine(p, 3.0 * p)) == pytest.approx(0.0, abs=1e-5)


def test_negative_cosine_stops_the_gradient_into_the_target(rng):
    tf = pytest.importorskip("tensorflow")
    p = tf.Variable(rng.normal(size=(3, 4)).astype("float32"))
    z = tf.Variable(rng.normal(size=(3, 4)).astype("float32"))
    with tf.GradientTape() as tape:
        loss = losses.negative_cosine(p, z)
    grad_p, grad_z = tape.gradient(loss, [p, z])
    assert grad_z is None and np.abs(grad_p.numpy()).sum() > 0


@pytest.mark.parametrize("weight", [5e-3, 0.1])
def test_barlow_twins_matches_reference(rng, weight):
    z1, z2 = rng.normal(size=(2, 16, 5)).astype("float64")
    z2 = z2 + 0.5 * z1  # some real correlation
    a = (z1 - z1.mean(0)) / np.sqrt(z1.var(0) + 1e-5)
    b = (z2 - z2.mean(0)) / np.sqrt(z2.var(0) + 1e-5)
    dim, n = z1.shape[1], z1.shape[0]
    expected = 0.0
    for i in range(dim):
        for j in range(dim):
            c = sum(a[k, i] * b[k, j] for k in range(n)) / n
            expected += (1 - c) ** 2 if i == j else weight * c**2
    got = losses.barlow_twins(z1.astype("float32"), z2.astype("float32"), weight)
    assert _np(got) == pytest.approx(expected, rel=1e-4)


def test_barlow_twins_is_zero_for_identical_decorrelated_views():
    # Hadamard columns other than the first: zero mean, unit variance, orthogonal, so C = I.
    from scipy.linalg import hadamard

    z = hadamard(64)[:, 1:9].astype("float32")
    assert _np(losses.barlow_twins(z, z, 5e-3)) == pytest.approx(0.0, abs=1e-3)


def test_l2_normalize_unit_rows_and_zero_safe():
    x = np.array([[3.0, 4.0], [0.0, 0.0]], "float32")
    np.testing.assert_allclose(ops.convert_to_numpy(losses.l2_normalize(x)), [[0.6, 0.8], [0.0, 0.0]], atol=1e-6)


def _sinkhorn_reference(scores, epsilon, iterations):
    """Caron et al. (2020), Algorithm 1, in the paper's layout: Q is K x B (prototypes x samples)."""
    q = np.exp(scores.T.astype("float64") / epsilon)
    q /= q.sum()
    k, b = q.shape
    for _ in range(iterations):
        for row in range(k):  # each prototype's total over the batch: 1/K
            q[row] /= q[row].sum() * k
        for column in range(b):  # each sample's total over the prototypes: 1/B
            q[:, column] /= q[:, column].sum() * b
    return (q * b).T


@pytest.mark.parametrize("epsilon,iterations", [(0.05, 3), (0.5, 1), (0.1, 10)])
def test_sinkhorn_matches_algorithm_1(rng, epsilon, iterations):
    z = rng.normal(size=(12, 8))
    prototypes = rng.normal(size=(8, 5))
    scores = (z / np.linalg.norm(z, axis=1, keepdims=True)) @ (prototypes / np.linalg.norm(prototypes, axis=0))
    got = ops.convert_to_numpy(losses.sinkhorn(scores.astype("float32"), epsilon, iterations))
    np.testing.assert_allclose(got, _sinkhorn_reference(scores, epsilon, iterations), rtol=1e-4, atol=1e-6)
    # The last step normalises each sample: its assignment sums to exactly 1.
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)


def test_sinkhorn_splits_the_batch_equally_only_in_the_limit(rng):
    scores = rng.uniform(-1, 1, size=(16, 4)).astype("float32")
    # After the final (per-sample) step the prototype totals are near B/K = 4, not equal to it ...
    few = ops.convert_to_numpy(losses.sinkhorn(scores, 0.05, 3)).sum(axis=0)
    many = ops.convert_to_numpy(losses.sinkhorn(scores, 0.05, 500)).sum(axis=0)
    assert np.abs(few - 4.0).max() > 1e-4
    # ... and reach it as the iterations converge.
    np.testing.assert_allclose(many, 4.0, atol=1e-3)
    assert np.abs(many - 4.0).max() < np.abs(few - 4.0).max()


def test_sinkhorn_is_stable_for_large_scores_and_stops_the_gradient(rng):
    scores = rng.normal(size=(6, 3)).astype("float32")
    shifted = ops.convert_to_numpy(losses.sinkhorn(scores + 100.0, 0.05, 3))  # exp(2,000) without the max
    assert np.all(np.isfinite(shifted))
    np.testing.assert_allclose(shifted, ops.convert_to_numpy(losses.sinkhorn(scores, 0.05, 3)), atol=1e-5)
    if keras.backend.backend() != "tensorflow":
        pytest.skip("gradient checked with TensorFlow's tape")
    tf = pytest.importorskip("tensorflow")
    variable = tf.Variable(scores)
    with tf.GradientTape() as tape:
        codes = ops.sum(losses.sinkhorn(variable) * tf.range(3, dtype="float32"))
    assert tape.gradient(codes, variable) is None


@pytest.mark.parametrize("temperature", [0.1, 1.0])
def test_swav_loss_matches_swapped_prediction(rng, temperature):
    scores1, scores2 = rng.uniform(-1, 1, size=(2, 6, 4)).astype("float32")
    q1, q2 = rng.dirichlet(np.ones(4), size=(2, 6)).astype("float32")

    def cross_entropy(codes, scores):  # -sum_k q^(k) log p^(k), p = softmax(scores / t)
        p = np.exp(scores / temperature) / np.exp(scores / temperature).sum()
        return -sum(codes[k] * np.log(p[k]) for k in range(len(codes)))

    n = len(scores1)
    expected = sum(cross_entropy(q2[i], scores1[i]) + cross_entropy(q1[i], scores2[i]) for i in range(n)) / (2 * n)
    got = losses.swav_loss(scores1, scores2, q1, q2, temperature)
    assert _np(got) == pytest.approx(expected, rel=1e-5)


def test_swav_loss_gradient_reaches_the_scores_not_the_codes(rng):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("gradient checked with TensorFlow's tape")
    tf = pytest.importorskip("tensorflow")
    scores1, scores2 = (tf.Variable(s) for s in rng.uniform(-1, 1, size=(2, 4, 3)).astype("float32"))
    q1, q2 = (tf.Variable(q) for q in rng.dirichlet(np.ones(3), size=(2, 4)).astype("float32"))
    with tf.GradientTape() as tape:
        loss = losses.swav_loss(scores1, scores2, q1, q2)
    grads = tape.gradient(loss, [scores1, scores2, q1, q2])
    assert grads[2] is None and grads[3] is None
    assert all(np.abs(g.numpy()).sum() > 0 for g in grads[:2])
