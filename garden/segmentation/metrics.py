"""Segmentation metrics from one confusion matrix: mean IoU and pixel accuracy, ignoring label 255.

``confusion[t, p]`` counts pixels of true class ``t`` predicted as ``p``. Then
``IoU_c = C[c, c] / (sum_p C[c, p] + sum_t C[t, c] - C[c, c])`` and pixel accuracy is
``trace(C) / sum(C)`` (Long, Shelhamer & Darrell, "Fully Convolutional Networks", CVPR 2015, Sec. 5).
Mean IoU averages over the classes present in the ground truth or the prediction.

The NumPy functions evaluate arrays; :class:`MeanIoU` and :class:`PixelAccuracy` are Keras metrics
(``keras.ops``, any backend) that take integer masks and logits, for ``model.compile``.
"""

import keras
import numpy as np
from keras import ops

from garden.segmentation import IGNORE_LABEL


def confusion_matrix(y_true, y_pred, num_classes, ignore_label=IGNORE_LABEL):
    """``(num_classes, num_classes)`` int64 counts; pixels labelled ``ignore_label`` are left out.

    ``y_pred`` holds class indices, or logits/probabilities with a trailing class axis.
    A true label outside ``[0, num_classes)`` (other than the ignore label) is an error.
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_pred.ndim == y_true.ndim + 1:
        y_pred = y_pred.argmax(axis=-1)
    y_true = y_true.reshape(-1).astype("int64")
    y_pred = y_pred.reshape(-1).astype("int64")
    if y_true.shape != y_pred.shape:
        raise ValueError(f"masks of different sizes: {y_true.size} true pixels, {y_pred.size} predicted")
    keep = y_true != ignore_label
    y_true, y_pred = y_true[keep], y_pred[keep]
    bad = (y_true < 0) | (y_true >= num_classes)
    if bad.any():
        raise ValueError(f"true label {int(y_true[bad][0])} is outside 0..{num_classes - 1}")
    return np.bincount(y_true * num_classes + y_pred, minlength=num_classes**2).reshape(num_classes, num_classes)


def per_class_iou(confusion):
    """IoU of each class; NaN for a class absent from both ground truth and prediction."""
    confusion = np.asarray(confusion, dtype="float64")
    intersection = np.diag(confusion)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - intersection
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, intersection / union, np.nan)


def mean_iou(confusion):
    """Mean of :func:`per_class_iou` over the classes that occur."""
    iou = per_class_iou(confusion)
    return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")


def pixel_accuracy(confusion):
    """Fraction of the counted (not ignored) pixels predicted correctly."""
    confusion = np.asarray(confusion)
    total = confusion.sum()
    return float(np.trace(confusion) / total) if total else float("nan")


def evaluate(model, images, masks, num_classes, batch_size=16, ignore_label=IGNORE_LABEL):
    """Run ``model`` (float inputs) over ``images``; return ``{"mean_iou", "pixel_accuracy", "iou", "confusion"}``."""
    confusion = np.zeros((num_classes, num_classes), dtype="int64")
    for start in range(0, len(images), batch_size):
        logits = model.predict_on_batch(images[start : start + batch_size])
        confusion += confusion_matrix(masks[start : start + batch_size], logits, num_classes, ignore_label)
    return {
        "mean_iou": mean_iou(confusion),
        "pixel_accuracy": pixel_accuracy(confusion),
        "iou": per_class_iou(confusion),
        "confusion": confusion,
    }


# ---------------------------------------------------------------- Keras metrics


def confusion_counts(y_true, logits, num_classes, ignore_label=IGNORE_LABEL):
    """The confusion matrix with ``keras.ops`` from integer masks and logits (float32, any backend)."""
    y_true = ops.reshape(ops.cast(y_true, "int32"), (-1,))
    y_pred = ops.reshape(ops.cast(ops.argmax(logits, axis=-1), "int32"), (-1,))
    valid = ops.logical_and(ops.not_equal(y_true, ignore_label), ops.less(y_true, num_classes))
    index = ops.where(valid, y_true * num_classes + y_pred, 0)
    counts = ops.bincount(index, weights=ops.cast(valid, "float32"), minlength=num_classes * num_classes)
    return ops.reshape(ops.cast(counts, "float32"), (num_classes, num_classes))


class _ConfusionMetric(keras.metrics.Metric):
    """Accumulates a confusion matrix over batches of ``(mask, logits)``."""

    default_name = None

    def __init__(self, num_classes, ignore_label=IGNORE_LABEL, name=None, **kwargs):
        super().__init__(name=name or self.default_name, **kwargs)
        self.num_classes, self.ignore_label = int(num_classes), int(ignore_label)
        self.confusion = self.add_variable(
            shape=(self.num_classes, self.num_classes), initializer="zeros", name="confusion"
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        if y_true.ndim == len(y_pred.shape) and y_true.shape[-1] == 1:
            y_true = ops.squeeze(y_true, -1)
        self.confusion.assign_add(confusion_counts(y_true, y_pred, self.num_classes, self.ignore_label))

    def reset_state(self):
        self.confusion.assign(ops.zeros_like(self.confusion))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "ignore_label": self.ignore_label}


@keras.saving.register_keras_serializable(package="garden")
class MeanIoU(_ConfusionMetric):
    """Mean intersection-over-union over the classes that occur, ignoring ``ignore_label`` pixels."""

    default_name = "mean_iou"

    def result(self):
        c = self.confusion
        intersection = ops.diagonal(c)
        union = ops.sum(c, axis=0) + ops.sum(c, axis=1) - intersection
        present = ops.cast(union > 0, "float32")
        iou = intersection / ops.maximum(union, 1.0)
        return ops.sum(iou * present) / ops.maximum(ops.sum(present), 1.0)


@keras.saving.register_keras_serializable(package="garden")
class PixelAccuracy(_ConfusionMetric):
    """Fraction of non-ignored pixels whose arg-max class is right."""

    default_name = "pixel_accuracy"

    def result(self):
        c = self.confusion
        return ops.sum(ops.diagonal(c)) / ops.maximum(ops.sum(c), 1.0)
