"""Self-supervised losses, as plain functions of tensors (``keras.ops``, every backend).

Each returns a scalar mean over the batch. tests/test_ssl_losses.py checks every one against a
NumPy reference written independently from the papers' equations.

>>> from garden.ssl import losses
>>> loss = losses.nt_xent(z1, z2, temperature=0.5)     # two views of the same batch
"""

import keras
from keras import ops


def l2_normalize(x, axis=-1, epsilon=1e-12):
    """``x / ||x||`` along ``axis`` (guarded against zero vectors)."""
    return x / ops.sqrt(ops.maximum(ops.sum(ops.square(x), axis=axis, keepdims=True), epsilon))


def cross_entropy(labels, logits):
    """Mean softmax cross-entropy of integer ``labels`` (N,) under ``logits`` (N, K).

    The loss of the pretext classifiers: RotNet's four rotations (Gidaris et al., "Unsupervised
    Representation Learning by Predicting Image Rotations", ICLR 2018) and the Jigsaw permutation
    index (Noroozi & Favaro, "Unsupervised Learning of Visual Representations by Solving Jigsaw
    Puzzles", ECCV 2016).
    """
    log_probabilities = logits - ops.logsumexp(logits, axis=-1, keepdims=True)
    picked = ops.take_along_axis(log_probabilities, ops.expand_dims(ops.cast(labels, "int32"), -1), axis=-1)
    return -ops.mean(picked)


def soft_cross_entropy(targets, logits):
    """``-sum_k targets_k log softmax(logits)_k`` along the last axis, one value per position (no mean).

    The loss of a soft target distribution: colorization's soft-encoded ab bins, SwAV's codes.
    """
    return keras.losses.categorical_crossentropy(targets, logits, from_logits=True)


def nt_xent(z1, z2, temperature=0.5):
    """NT-Xent, the normalized temperature-scaled cross-entropy of SimCLR.

    Chen et al., "A Simple Framework for Contrastive Learning of Visual Representations" (ICML
    2020), Eq. 1: for the 2N views, ``l(i, j) = -log exp(sim(z_i, z_j)/t) / sum_{k != i}
    exp(sim(z_i, z_k)/t)`` with cosine similarity; the loss averages ``l`` over all 2N anchors, so
    each view's positive is its twin and the other 2N - 2 views are its negatives.
    """
    z = l2_normalize(ops.concatenate([z1, z2], axis=0))
    n = ops.shape(z1)[0]
    similarity = ops.matmul(z, ops.transpose(z)) / temperature
    # An anchor is never its own negative: push the diagonal to -inf (a large negative number).
    similarity = similarity - 1e9 * ops.eye(2 * n, dtype=similarity.dtype)
    positives = ops.concatenate([ops.arange(n, 2 * n), ops.arange(0, n)], axis=0)
    return cross_entropy(positives, similarity)


def info_nce(predictions, keys, positives, temperature=1.0, normalize=False):
    """InfoNCE: classify the positive key of each prediction among all ``keys``.

    van den Oord et al., "Representation Learning with Contrastive Predictive Coding" (2018),
    Eq. 4: ``L = -E log f(x_pos, c) / sum_j f(x_j, c)`` with the log-bilinear score
    ``f = exp(z^T W c)``; ``predictions`` are ``W c`` (N, D), ``keys`` the candidate ``z`` (M, D)
    and ``positives`` (N,) the index of each prediction's true key, every other key a negative.
    ``normalize=True`` scores cosine similarities instead (as MoCo does), divided by ``temperature``.
    """
    if normalize:
        predictions, keys = l2_normalize(predictions), l2_normalize(keys)
    logits = ops.matmul(predictions, ops.transpose(keys)) / temperature
    return cross_entropy(positives, logits)


def moco_loss(queries, keys, queue, temperature=0.2):
    """MoCo's InfoNCE: each query's positive is its key, the negatives a queue of past keys.

    He et al., "Momentum Contrast for Unsupervised Visual Representation Learning" (CVPR 2020),
    Eq. 1, with the v2 temperature 0.2 (Chen et al., "Improved Baselines with Momentum Contrastive
    Learning", 2020). ``queries`` and ``keys`` (N, D) are two views; ``queue`` (K, D) is normalized.
    """
    queries, keys = l2_normalize(queries), l2_normalize(keys)
    positive = ops.sum(queries * keys, axis=-1, keepdims=True)
    negatives = ops.matmul(queries, ops.transpose(queue))
    logits = ops.concatenate([positive, negatives], axis=-1) / temperature
    return cross_entropy(ops.zeros((ops.shape(queries)[0],), dtype="int32"), logits)


def negative_cosine(predictions, targets):
    """BYOL's regression loss ``2 - 2 cos(p, z)``, with no gradient into ``targets``.

    Grill et al., "Bootstrap Your Own Latent" (NeurIPS 2020), Eq. 2. SimSiam (Chen & He, "Exploring
    Simple Siamese Representation Learning", CVPR 2021) uses ``-cos``: the same gradient, shifted
    by a constant; methods symmetrise it over the two views.
    """
    targets = ops.stop_gradient(targets)
    return ops.mean(2.0 - 2.0 * ops.sum(l2_normalize(predictions) * l2_normalize(targets), axis=-1))


def barlow_twins(z1, z2, off_diagonal_weight=5e-3, epsilon=1e-5):
    """Barlow Twins: push the two views' cross-correlation matrix to the identity.

    Zbontar et al., "Barlow Twins: Self-Supervised Learning via Redundancy Reduction" (ICML 2021),
    Eq. 1-2: each embedding dimension is standardised over the batch (biased variance, as the
    authors' code does with an affine-free batch norm), ``C = z1^T z2 / N``, and
    ``L = sum_i (1 - C_ii)^2 + lambda * sum_{i != j} C_ij^2`` with ``lambda`` the off-diagonal weight.
    """
    n = ops.cast(ops.shape(z1)[0], z1.dtype)

    def standardise(z):
        mean = ops.mean(z, axis=0, keepdims=True)
        std = ops.sqrt(ops.var(z, axis=0, keepdims=True) + epsilon)
        return (z - mean) / std

    correlation = ops.matmul(ops.transpose(standardise(z1)), standardise(z2)) / n
    identity = ops.eye(ops.shape(correlation)[0], dtype=correlation.dtype)
    on_diagonal = ops.sum(ops.square(ops.diagonal(correlation) - 1.0))
    off_diagonal = ops.sum(ops.square(correlation * (1.0 - identity)))
    return on_diagonal + off_diagonal_weight * off_diagonal


def sinkhorn(scores, epsilon=0.05, iterations=3):
    """SwAV's codes: a soft assignment of the batch to the prototypes, in equal parts (no gradient).

    Caron et al., "Unsupervised Learning of Visual Features by Contrasting Cluster Assignments"
    (NeurIPS 2020), Sec. 3.1 and Algorithm 1: ``Q = exp(scores / epsilon)`` for ``scores`` (B, K)
    of B samples against K prototypes, then ``iterations`` rounds of the Sinkhorn-Knopp algorithm,
    each scaling every prototype's total over the batch to ``1/K``, then every sample's total over
    the prototypes to ``1/B``; multiplied by ``B`` at the end. The last step is the per-sample one,
    so each row of the result (one sample's assignment) sums to exactly 1; the prototypes' totals
    (the equal partition, ``B/K`` each) hold only approximately, closer with more iterations.

    ``scores`` minus their largest entry before ``exp``: a global constant factor that the
    normalisations cancel exactly, so the codes are unchanged and no entry overflows.
    """
    scores = ops.stop_gradient(ops.convert_to_tensor(scores))
    batch, prototypes = ops.shape(scores)[0], ops.shape(scores)[1]
    q = ops.exp((scores - ops.max(scores)) / epsilon)
    q = q / ops.sum(q)
    for _ in range(iterations):
        q = q / (ops.sum(q, axis=0, keepdims=True) * ops.cast(prototypes, q.dtype))  # prototype totals 1/K
        q = q / (ops.sum(q, axis=1, keepdims=True) * ops.cast(batch, q.dtype))  # sample totals 1/B
    return ops.stop_gradient(q * ops.cast(batch, q.dtype))


def swav_loss(scores1, scores2, q1, q2, temperature=0.1):
    """SwAV's swapped prediction: each view's scores predict the other view's codes.

    Caron et al., "Unsupervised Learning of Visual Features by Contrasting Cluster Assignments"
    (NeurIPS 2020), Eq. 1-2: ``l(z_t, q_s) = -sum_k q_s^(k) log p_t^(k)`` with
    ``p_t = softmax(z_t^T C / temperature)``; ``scores`` (B, K) are the ``z^T C`` of the two views
    and ``q`` (B, K) their codes (``sinkhorn``), taken without gradient. Normalisation: the mean
    over the batch of ``l(z_1, q_2) + l(z_2, q_1)``, divided by 2 (as the authors' code divides by
    the number of views that give codes), so the loss is the mean cross-entropy of one prediction.
    """

    def cross_entropy_to(codes, scores):
        codes = ops.stop_gradient(ops.convert_to_tensor(codes))
        return ops.mean(soft_cross_entropy(codes, ops.convert_to_tensor(scores) / temperature))

    return 0.5 * (cross_entropy_to(q2, scores1) + cross_entropy_to(q1, scores2))
