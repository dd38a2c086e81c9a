"""Losses and metrics against independent NumPy references, ignore label 255 included."""

import keras
import numpy as np
import pytest

from garden.segmentation import losses, metrics

C = 4


@pytest.fixture
def batch():
    rng = np.random.default_rng(7)
    logits = rng.normal(0, 2, (2, 5, 6, C)).astype("float32")
    labels = rng.integers(0, C, (2, 5, 6)).astype("int32")
    labels[0, 0, :] = 255
    labels[1, 2:4, 1:3] = 255
    return labels, logits


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _reference_terms(labels, logits):
    """Per valid pixel: probability of the true class and full softmax, by explicit loops."""
    p_true, probs, truths = [], [], []
    for n, i, j in np.ndindex(labels.shape):
        y = labels[n, i, j]
        if y == 255:
            continue
        p = _softmax(logits[n, i, j].astype("float64"))
        p_true.append(p[y])
        probs.append(p)
        truths.append(y)
    return np.array(p_true), np.array(probs), np.array(truths)


def test_cross_entropy_ignores_255(batch):
    labels, logits = batch
    p_true, _, _ = _reference_terms(labels, logits)
    expected = -np.log(p_true).mean()
    assert float(losses.pixel_cross_entropy(labels, logits)) == pytest.approx(expected, rel=1e-5)
    # Changing logits under ignored pixels changes nothing.
    moved = logits.copy()
    moved[labels == 255] += 100.0
    assert float(losses.pixel_cross_entropy(labels, moved)) == pytest.approx(expected, rel=1e-5)
    # A (N, H, W, 1) mask and the Keras loss object give the same.
    assert float(losses.PixelCrossEntropy()(labels[..., None], logits)) == pytest.approx(expected, rel=1e-5)


def test_cross_entropy_class_weights(batch):
    labels, logits = batch
    p_true, _, truths = _reference_terms(labels, logits)
    weights = np.array([0.5, 1.0, 2.0, 4.0])
    expected = (-np.log(p_true) * weights[truths]).sum() / weights[truths].sum()
    got = float(losses.pixel_cross_entropy(labels, logits, class_weights=weights))
    assert got == pytest.approx(expected, rel=1e-5)


def test_all_ignored_gives_zero_not_nan():
    labels = np.full((1, 3, 3), 255, "int32")
    logits = np.zeros((1, 3, 3, C), "float32")
    for fn in (losses.pixel_cross_entropy, losses.focal_loss):
        assert float(fn(labels, logits)) == 0.0


def test_focal_loss_matches_reference_and_reduces_to_ce(batch):
    labels, logits = batch
    p_true, _, _ = _reference_terms(labels, logits)
    expected = (-0.25 * (1 - p_true) ** 2 * np.log(p_true)).mean()
    assert float(losses.focal_loss(labels, logits, gamma=2.0, alpha=0.25)) == pytest.approx(expected, rel=1e-5)
    ce = float(losses.pixel_cross_entropy(labels, logits))
    assert float(losses.focal_loss(labels, logits, gamma=0.0)) == pytest.approx(ce, rel=1e-5)


def test_dice_loss_matches_reference(batch):
    labels, logits = batch
    _, probs, truths = _reference_terms(labels, logits)
    onehot = np.eye(C)[truths]
    scores = [
        (2 * (probs[:, c] * onehot[:, c]).sum() + 1) / (probs[:, c].sum() + onehot[:, c].sum() + 1) for c in range(C)
    ]
    expected = 1 - np.mean(scores)
    assert float(losses.dice_loss(labels, logits)) == pytest.approx(expected, rel=1e-5)
    perfect = np.where(np.eye(C, dtype=bool)[np.where(labels == 255, 0, labels)], 50.0, -50.0).astype("float32")
    assert float(losses.dice_loss(labels, perfect)) == pytest.approx(0.0, abs=1e-5)
    combined = losses.CrossEntropyDice(dice_weight=0.5)(labels, logits)
    assert float(combined) == pytest.approx(
        float(losses.pixel_cross_entropy(labels, logits)) + 0.5 * expected, rel=1e-5
    )


def _reference_confusion(labels, predicted, num_classes):
    matrix = np.zeros((num_classes, num_classes), "int64")
    for t, p in zip(labels.ravel(), predicted.ravel()):
        if t != 255:
            matrix[t, p] += 1
    return matrix


def test_confusion_matrix_iou_and_accuracy(batch):
    labels, logits = batch
    predicted = logits.argmax(-1)
    expected = _reference_confusion(labels, predicted, C)
    confusion = metrics.confusion_matrix(labels, logits, C)
    np.testing.assert_array_equal(confusion, expected)
    np.testing.assert_array_equal(metrics.confusion_matrix(labels, predicted, C), expected)
    ious = []
    for c in range(C):
        tp = ((labels == c) & (predicted == c)).sum()
        fp = ((labels != c) & (labels != 255) & (predicted == c)).sum()
        fn = ((labels == c) & (predicted != c)).sum()
        ious.append(tp / (tp + fp + fn))
    np.testing.assert_allclose(metrics.per_class_iou(confusion), ious)
    assert metrics.mean_iou(confusion) == pytest.approx(np.mean(ious))
    valid = labels != 255
    assert metrics.pixel_accuracy(confusion) == pytest.approx((predicted[valid] == labels[valid]).mean())


def test_mean_iou_skips_absent_classes_and_checks_labels():
    labels = np.array([[0, 0, 1, 255]])
    predicted = np.array([[0, 1, 1, 3]])
    confusion = metrics.confusion_matrix(labels, predicted, 4)
    iou = metrics.per_class_iou(confusion)
    assert iou[0] == pytest.approx(0.5) and iou[1] == pytest.approx(0.5) and np.isnan(iou[2]) and np.isnan(iou[3])
    assert metrics.mean_iou(confusion) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="true label 7"):
        metrics.confusion_matrix(np.array([7]), np.array([0]), 4)


def test_keras_metrics_accumulate_over_batches(batch):
    labels, logits = batch
    expected = metrics.confusion_matrix(labels, logits, C)
    miou, accuracy = metrics.MeanIoU(C), metrics.PixelAccuracy(C)
    for n in range(2):
        miou.update_state(labels[n : n + 1], logits[n : n + 1])
        accuracy.update_state(labels[n : n + 1, ..., None], logits[n : n + 1])
    np.testing.assert_allclose(np.asarray(miou.confusion), expected)
    assert float(miou.result()) == pytest.approx(metrics.mean_iou(expected), rel=1e-6)
    assert float(accuracy.result()) == pytest.approx(metrics.pixel_accuracy(expected), rel=1e-6)
    miou.reset_state()
    assert float(np.asarray(miou.confusion).sum()) == 0.0
    clone = metrics.MeanIoU.from_config(metrics.MeanIoU(C, name="miou").get_config())
    assert clone.num_classes == C and clone.ignore_label == 255


def test_losses_and_metrics_compile_and_serialize(tmp_path, batch):
    labels, logits = batch
    inputs = keras.Input((5, 6, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(C, 1)(inputs))
    model.compile("sgd", loss=losses.CrossEntropyDice(), metrics=[metrics.MeanIoU(C), metrics.PixelAccuracy(C)])
    x = np.random.default_rng(0).random((2, 5, 6, 3)).astype("float32")
    results = model.evaluate(x, labels, verbose=0, return_dict=True)
    assert 0.0 <= results["mean_iou"] <= 1.0 and np.isfinite(results["loss"])
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert isinstance(loaded.loss, losses.CrossEntropyDice)
