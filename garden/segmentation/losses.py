"""Segmentation losses over logits ``(N, H, W, C)`` and integer masks ``(N, H, W)``, with ignore label 255.

All use ``keras.ops`` and average over the pixels that are not ignored (a batch whose pixels are
all ignored gives 0, not NaN).

- pixel-wise cross-entropy: ``-log softmax(z)_y`` per pixel (Long et al., "Fully Convolutional
  Networks", CVPR 2015);
- dice: ``1 - mean_c (2 |P_c . T_c| + s) / (|P_c| + |T_c| + s)`` on softmax probabilities
  (Milletari, Navab & Ahmadi, "V-Net", 3DV 2016);
- focal: ``-alpha (1 - p_y)^gamma log p_y`` (Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017).

Cross-entropy plus dice (:class:`CrossEntropyDice`) is a common pairing when the background
dominates: the cross-entropy gives every pixel a gradient, the dice term weighs each class equally.
"""

import keras
from keras import ops

from garden.segmentation import IGNORE_LABEL


def _prepare(y_true, logits, ignore_label):
    """Flat labels (ignored ones replaced by 0), a float validity mask and flat logits (P, C)."""
    num_classes = logits.shape[-1]
    labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
    logits = ops.reshape(ops.cast(logits, "float32"), (-1, num_classes))
    valid = ops.not_equal(labels, ignore_label)
    return ops.where(valid, labels, 0), ops.cast(valid, "float32"), logits


def _masked_mean(values, valid):
    return ops.sum(values * valid) / ops.maximum(ops.sum(valid), 1.0)


def pixel_cross_entropy(y_true, logits, ignore_label=IGNORE_LABEL, class_weights=None):
    """Mean per-pixel softmax cross-entropy over the non-ignored pixels (optionally class-weighted)."""
    labels, valid, logits = _prepare(y_true, logits, ignore_label)
    log_probs = ops.log_softmax(logits, axis=-1)
    picked = ops.take_along_axis(log_probs, ops.expand_dims(labels, -1), axis=-1)[:, 0]
    if class_weights is not None:
        valid = valid * ops.take(ops.convert_to_tensor(class_weights, "float32"), labels)
    return _masked_mean(-picked, valid)


def focal_loss(y_true, logits, gamma=2.0, alpha=1.0, ignore_label=IGNORE_LABEL):
    """Mean focal loss ``-alpha (1 - p_y)^gamma log p_y``; ``gamma=0`` is the cross-entropy."""
    labels, valid, logits = _prepare(y_true, logits, ignore_label)
    log_probs = ops.log_softmax(logits, axis=-1)
    log_p = ops.take_along_axis(log_probs, ops.expand_dims(labels, -1), axis=-1)[:, 0]
    return _masked_mean(-alpha * ops.power(1.0 - ops.exp(log_p), gamma) * log_p, valid)


def dice_loss(y_true, logits, smooth=1.0, ignore_label=IGNORE_LABEL):
    """Soft multi-class dice loss, averaged over classes; ignored pixels count for neither side."""
    num_classes = logits.shape[-1]
    labels, valid, logits = _prepare(y_true, logits, ignore_label)
    probs = ops.softmax(logits, axis=-1) * valid[:, None]
    target = ops.one_hot(labels, num_classes) * valid[:, None]
    intersection = ops.sum(probs * target, axis=0)
    sizes = ops.sum(probs, axis=0) + ops.sum(target, axis=0)
    return 1.0 - ops.mean((2.0 * intersection + smooth) / (sizes + smooth))


# ---------------------------------------------------------------- Keras Loss objects, for compile()


class _SegmentationLoss(keras.losses.Loss):
    """Returns the already-averaged scalar, so Keras's own reduction leaves it unchanged."""

    def __init__(self, ignore_label=IGNORE_LABEL, name=None, options=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.ignore_label = int(ignore_label)
        self.options = {key: float(value) for key, value in (options or {}).items()}
        for key, value in self.options.items():
            setattr(self, key, value)

    def get_config(self):
        """The loss's own numbers (``options``) beside Keras's: ``cls(**config)`` rebuilds it."""
        return {**super().get_config(), "ignore_label": self.ignore_label, **self.options}


@keras.saving.register_keras_serializable(package="garden")
class PixelCrossEntropy(_SegmentationLoss):
    """:func:`pixel_cross_entropy` as a Keras loss."""

    def __init__(self, ignore_label=IGNORE_LABEL, name="pixel_cross_entropy", **kwargs):
        super().__init__(ignore_label, name=name, **kwargs)

    def call(self, y_true, y_pred):
        return pixel_cross_entropy(y_true, y_pred, self.ignore_label)


@keras.saving.register_keras_serializable(package="garden")
class DiceLoss(_SegmentationLoss):
    """:func:`dice_loss` as a Keras loss."""

    def __init__(self, smooth=1.0, ignore_label=IGNORE_LABEL, name="dice_loss", **kwargs):
        super().__init__(ignore_label, name, {"smooth": smooth}, **kwargs)

    def call(self, y_true, y_pred):
        return dice_loss(y_true, y_pred, self.smooth, self.ignore_label)


@keras.saving.register_keras_serializable(package="garden")
class FocalLoss(_SegmentationLoss):
    """:func:`focal_loss` as a Keras loss."""

    def __init__(self, gamma=2.0, alpha=1.0, ignore_label=IGNORE_LABEL, name="focal_loss", **kwargs):
        super().__init__(ignore_label, name, {"gamma": gamma, "alpha": alpha}, **kwargs)

    def call(self, y_true, y_pred):
        return focal_loss(y_true, y_pred, self.gamma, self.alpha, self.ignore_label)


@keras.saving.register_keras_serializable(package="garden")
class CrossEntropyDice(_SegmentationLoss):
    """``pixel_cross_entropy + dice_weight * dice_loss``."""

    def __init__(self, dice_weight=1.0, ignore_label=IGNORE_LABEL, name="cross_entropy_dice", **kwargs):
        super().__init__(ignore_label, name, {"dice_weight": dice_weight}, **kwargs)

    def call(self, y_true, y_pred):
        return pixel_cross_entropy(y_true, y_pred, self.ignore_label) + self.dice_weight * dice_loss(
            y_true, y_pred, ignore_label=self.ignore_label
        )
