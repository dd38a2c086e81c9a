"""Model output -> what the app draws: a class map with class areas, or the top-k classes."""

import math
from dataclasses import dataclass

import cv2
import numpy as np

# cv2.split handles at most this many channels; more classes fall back to NumPy's argmax.
_CV_MAX_CHANNELS = 512


@dataclass(frozen=True)
class Segmentation:
    """``mask``: uint8 (or uint16) class per pixel at the model's resolution; ``areas``: (class, fraction),
    largest first."""

    mask: np.ndarray
    areas: tuple

    @property
    def foreground(self):
        """Share of pixels not background (class 0): a binary model's foreground."""
        return 1.0 - dict(self.areas).get(0, 0.0)


@dataclass(frozen=True)
class Classification:
    """``top``: (class, probability) pairs, most likely first."""

    top: tuple


def postprocess(raw, info, top_k=3, threshold=0.5):
    """The chosen output of ``info``'s model -> :class:`Segmentation` or :class:`Classification`."""
    if info.task == "classification":
        return Classification(top_classes(raw.reshape(-1), info, top_k))
    if info.output_kind == "binary":
        sides = raw.shape[-2:] if info.output_layout == "NCHW" else raw.shape[1:3]
        mask = binary_mask(raw.reshape(sides), info, threshold)
    elif info.output_kind == "class_map":
        limit = len(info.colors) - 1
        mask = np.clip(raw.reshape(raw.shape[1], raw.shape[2]), 0, limit).astype(np.uint8 if limit < 256 else np.uint16)
    else:
        mask = argmax_channels(raw[0] if info.output_layout == "NHWC" else raw[0].transpose(1, 2, 0))
    return Segmentation(mask, class_areas(mask))


def binary_mask(values, info, threshold):
    """uint8 0/1 foreground mask of an H x W map of probabilities or logits, float or quantized.

    The threshold is moved into the stored units (probability, or its logit for a logit map, then
    quantized), so the map itself is never dequantized: both maps are increasing in the probability.
    """
    probability = info.probability
    if probability is None:  # a float map without a sigmoid in the graph: probabilities if they look like it
        probability = bool(values.min() >= 0.0 and values.max() <= 1.0)
    cut = threshold if probability else math.log(max(threshold, 1e-7) / max(1.0 - threshold, 1e-7))
    scale, zero = info.output_quant
    if scale:
        cut = cut / scale + zero
    return (values > cut).astype(np.uint8)


def argmax_channels(logits):
    """Index of the largest channel of an H x W x K array (any dtype), first one on ties.

    Quantized logits are compared as stored: dequantizing is an increasing affine map, so it
    cannot change the winner. One OpenCV compare/max per class beats ``np.argmax(axis=-1)``,
    which walks the short last axis pixel by pixel (0.5 ms against 3 ms at 257x257x11).
    """
    classes = logits.shape[-1]
    if classes > 255 or classes > _CV_MAX_CHANNELS:
        return np.argmax(logits, axis=-1).astype(np.uint16)
    planes = cv2.split(np.ascontiguousarray(logits))
    best = planes[0].copy()
    index = np.zeros(best.shape, np.uint8)
    for c in range(1, classes):
        wins = cv2.compare(planes[c], best, cv2.CMP_GT)
        index = cv2.bitwise_or(cv2.bitwise_and(index, cv2.bitwise_not(wins)), cv2.bitwise_and(wins, c))
        cv2.max(best, planes[c], dst=best)
    return index


def class_areas(mask):
    """(class, fraction of pixels) for every class present, largest area first."""
    if mask.dtype == np.uint8:  # a histogram, ten times faster than np.bincount on uint8
        counts = cv2.calcHist([mask], [0], None, [256], [0, 256]).ravel().astype(np.int64)
    else:
        counts = np.bincount(mask.ravel())
    present = np.flatnonzero(counts)
    order = present[np.argsort(-counts[present], kind="stable")]
    return tuple((int(c), float(counts[c]) / mask.size) for c in order)


def top_classes(scores, info, k):
    """Top ``k`` (class, probability): dequantize, then softmax unless the scores already sum to one."""
    scale, zero = info.output_quant
    values = (scores.astype(np.float64) - zero) * scale if scale else scores.astype(np.float64)
    if values.min() < 0 or abs(values.sum() - 1.0) > 0.05:
        values = np.exp(values - values.max())
        values /= values.sum()
    order = np.argsort(-values, kind="stable")[:k]
    return tuple((int(c), float(values[c])) for c in order)
