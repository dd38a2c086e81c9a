"""Data augmentation from the lecture, in NumPy and OpenCV so it runs on every Keras backend.

Four transformations, each optional, chosen per run with a spec such as ``"flip,crop=0.5,color"``:

- ``flip``: horizontal flip with probability 1/2 (not for digits or text: a mirrored 3 is no 3);
- ``crop[=MIN_AREA]``: random resized crop (Szegedy et al., "Going deeper with convolutions", 2015):
  a window of MIN_AREA..100% of the image (default 0.35) and aspect 3/4..4/3, resized to the input;
- ``color[=STRENGTH]``: colour casting (Krizhevsky et al., 2012; He et al.'s "colour casting" in the
  lecture): per-channel gains and a brightness shift of up to STRENGTH (default 0.2);
- ``distort[=DEGREES]``: geometric distortion, a random affine map of up to DEGREES rotation
  (default 10), 10% scale, 0.1 shear and 8% shift.

Segmentation applies the same geometry to the mask (nearest neighbour, 255 = ignore outside).
"""

import dataclasses
import math

import cv2
import numpy as np

from garden.data.base import IGNORE_LABEL
from garden.errors import GardenError


@dataclasses.dataclass(frozen=True)
class Augment:
    """Which augmentations run, and how strongly; ``Augment()`` does nothing."""

    flip: bool = False
    crop: float = 0.0  # smallest crop area as a fraction of the image; 0 = no crop
    color: float = 0.0  # largest relative gain / shift; 0 = no colour casting
    distort: float = 0.0  # largest rotation in degrees; 0 = no geometric distortion

    @property
    def active(self):
        return self.flip or self.crop > 0 or self.color > 0 or self.distort > 0

    def describe(self):
        parts = ["flip"] if self.flip else []
        parts += [f"{name}={getattr(self, name):g}" for name in ("crop", "color", "distort") if getattr(self, name)]
        return ",".join(parts) or "none"


DEFAULTS = {"crop": 0.35, "color": 0.2, "distort": 10.0}


def parse_augment(spec):
    """``"flip,crop=0.5,color,distort"`` or ``"none"`` -> :class:`Augment`; an unknown name raises."""
    if isinstance(spec, Augment):
        return spec
    values = {}
    for item in (spec or "none").replace(" ", "").split(","):
        if item in ("", "none"):
            continue
        name, _, value = item.partition("=")
        if name == "flip":
            if value:
                raise GardenError(f"--augment: flip takes no value, got {item!r}")
            values["flip"] = True
            continue
        if name not in DEFAULTS:
            raise GardenError(f"--augment: unknown augmentation {name!r}; choose from flip, crop, color, distort, none")
        try:
            number = float(value) if value else DEFAULTS[name]
        except ValueError:
            raise GardenError(f"--augment: {item!r} needs a number after '='") from None
        if not math.isfinite(number) or number <= 0 or (name == "crop" and number > 1):
            raise GardenError(f"--augment: {item!r} is out of range")
        values[name] = number
    return Augment(**values)


def resize(image, size, nearest=False):
    """``image`` resized to ``size`` (height, width), keeping a channel axis if it had one."""
    height, width = size
    if image.shape[:2] == (height, width):
        return image
    mode = cv2.INTER_NEAREST if nearest else (cv2.INTER_AREA if image.shape[0] > height else cv2.INTER_LINEAR)
    out = cv2.resize(image, (width, height), interpolation=mode)
    return out[..., None] if image.ndim == 3 and out.ndim == 2 else out


def crop_window(shape, rng, min_area):
    """A random ``(top, left, height, width)`` covering ``min_area``..1 of the image, aspect 3/4..4/3."""
    height, width = shape[:2]
    for _ in range(10):
        area = height * width * rng.uniform(min_area, 1.0)
        aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
        h, w = int(round(np.sqrt(area / aspect))), int(round(np.sqrt(area * aspect)))
        if 0 < h <= height and 0 < w <= width:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    return 0, 0, height, width


def distortion_matrix(shape, rng, degrees):
    """A random 2x3 affine map about the image centre: rotation, scale, shear and shift."""
    height, width = shape[:2]
    angle = np.deg2rad(rng.uniform(-degrees, degrees))
    scale = rng.uniform(0.9, 1.1)
    shear = rng.uniform(-0.1, 0.1)
    linear = (
        scale
        * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        @ np.array([[1.0, shear], [0.0, 1.0]])
    )
    centre = np.array([width / 2, height / 2])
    shift = rng.uniform(-0.08, 0.08, size=2) * [width, height]
    return np.hstack([linear, (centre - linear @ centre + shift)[:, None]]).astype("float32")


def color_cast(image, rng, strength):
    """Per-channel gains in 1 +- strength and one brightness shift of +- strength x 255."""
    channels = image.shape[-1]
    gains = rng.uniform(1 - strength, 1 + strength, size=channels if channels == 3 else 1)
    shift = rng.uniform(-strength, strength) * 255
    return np.clip(image.astype("float32") * gains + shift, 0, 255).astype("uint8")


def augment_image(image, rng, config, size):
    """One classification example: ``image`` (uint8 HxWxC) augmented by ``config`` and resized to ``size``."""
    return augment_pair(image, None, rng, config, size)[0]


def augment_pair(image, mask, rng, config, size):
    """``(image, mask)`` with the same geometry (``mask`` may be None); both end at ``size``."""
    if config.crop:
        top, left, h, w = crop_window(image.shape, rng, config.crop)
        image = image[top : top + h, left : left + w]
        mask = None if mask is None else mask[top : top + h, left : left + w]
    image = resize(image, size)
    mask = None if mask is None else resize(mask, size, nearest=True)
    if config.distort:
        matrix = distortion_matrix(image.shape, rng, config.distort)
        out = cv2.warpAffine(image, matrix, size[::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        image = out[..., None] if out.ndim == 2 else out
        if mask is not None:
            mask = cv2.warpAffine(
                mask,
                matrix,
                size[::-1],
                flags=cv2.INTER_NEAREST,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=IGNORE_LABEL,
            )
    if config.flip and rng.random() < 0.5:
        image = image[:, ::-1]
        mask = None if mask is None else mask[:, ::-1]
    if config.color:
        image = color_cast(image, rng, config.color)
    return np.ascontiguousarray(image), None if mask is None else np.ascontiguousarray(mask)
