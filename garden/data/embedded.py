"""An embedded segmentation dataset, generated on the fly with nothing downloaded.

Handwritten digits from scikit-learn's bundled copy of the UCI digits (8x8, 1,797 samples) are
upscaled, slanted and inked onto crops of scikit-image's bundled photographs (astronaut, coffee,
chelsea, rocket, ...). Each digit's pixels are labelled with its class (``digit_0`` .. ``digit_9``
are labels 1..10) and everything else is ``background`` (label 0): 11 classes. The photographs are
textured, the ink colour varies and the edges are anti-aliased, so a model must learn shapes, not
a colour threshold. The same ``seed`` gives the same images, on any machine.
"""

import functools

import cv2
import numpy as np

from garden.data.base import ArrayExamples

CLASS_NAMES = ("background",) + tuple(f"digit_{d}" for d in range(10))
PHOTOS = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "brick",
    "grass",
    "gravel",
    "camera",
    "coins",
    "moon",
    "clock",
)


@functools.lru_cache(maxsize=1)
def _photos():
    """The bundled photographs as RGB uint8 arrays (grey ones repeated over three channels)."""
    import skimage.data

    photos = []
    for name in PHOTOS:
        image = np.asarray(getattr(skimage.data, name)())
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=-1)
        photos.append(np.ascontiguousarray(image[..., :3]))
    return photos


@functools.lru_cache(maxsize=1)
def _digits():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return (bunch.images / 16.0).astype("float32"), bunch.target.astype("int64")


def _background(rng, size):
    """A random square crop of a random photograph, resized to ``size`` and possibly mirrored."""
    photo = _photos()[rng.integers(len(PHOTOS))]
    height, width = photo.shape[:2]
    side = int(rng.integers(min(height, width) // 4, min(height, width) + 1))
    top, left = rng.integers(height - side + 1), rng.integers(width - side + 1)
    crop = cv2.resize(photo[top : top + side, left : left + side], (size, size), interpolation=cv2.INTER_AREA)
    return crop[:, ::-1] if rng.random() < 0.5 else crop


def _glyph(rng, digit, side):
    """An anti-aliased alpha map (side x side, values in [0, 1]) of one 8x8 digit, slanted and rotated."""
    alpha = cv2.resize(digit, (side, side), interpolation=cv2.INTER_CUBIC)
    angle, shear = rng.uniform(-15, 15), rng.uniform(-0.2, 0.2)
    matrix = cv2.getRotationMatrix2D((side / 2, side / 2), angle, 1.0)
    matrix[0, 1] += shear
    matrix[0, 2] -= shear * side / 2
    alpha = cv2.warpAffine(alpha, matrix, (side, side), flags=cv2.INTER_LINEAR)
    return np.clip((alpha - 0.25) * 2.0, 0.0, 1.0)


def _ink(rng, patch):
    """An ink colour that stands out from ``patch``: bright on dark ground, dark on bright, random hue."""
    hue = rng.random()
    strong = np.array([abs(hue * 6 - 3) - 1, 2 - abs(hue * 6 - 2), 2 - abs(hue * 6 - 4)]).clip(0, 1)
    if patch.mean() < 110:
        return 255.0 * (0.55 + 0.45 * strong)
    return 255.0 * (0.45 * strong)


def _place(rng, mask, side, tries=20):
    """A top-left corner where a side x side box does not touch an already placed digit, or None."""
    size = mask.shape[0]
    for _ in range(tries):
        top, left = rng.integers(0, size - side + 1, size=2)
        if not mask[top : top + side, left : left + side].any():
            return top, left
    return None


def composite(rng, size=64, digits_per_image=(1, 3), digit_scale=(0.45, 0.75)):
    """One (image, mask) pair: a photograph crop with 1-3 inked digits; mask labels 0 (background), 1..10."""
    images, labels = _digits()
    image = _background(rng, size).astype("float32")
    mask = np.zeros((size, size), dtype="uint8")
    for _ in range(int(rng.integers(digits_per_image[0], digits_per_image[1] + 1))):
        side = int(round(rng.uniform(*digit_scale) * size))
        corner = _place(rng, mask, side)
        if corner is None:
            continue
        top, left = corner
        sample = int(rng.integers(len(images)))
        alpha = _glyph(rng, images[sample], side)
        region = image[top : top + side, left : left + side]
        colour = _ink(rng, region)
        region[:] = region * (1 - alpha[..., None]) + colour * alpha[..., None]
        mask[top : top + side, left : left + side][alpha > 0.5] = labels[sample] + 1
    noise = rng.normal(0.0, 4.0, image.shape)
    return np.clip(image + noise, 0, 255).astype("uint8"), mask


def embedded_segmentation(num_images=512, size=64, seed=0):
    """``num_images`` generated (image, mask) pairs of ``size x size``: 11 classes, deterministic from ``seed``.

    >>> data = embedded_segmentation(num_images=8, size=64, seed=0)
    >>> image, mask = data[0]        # (64, 64, 3) uint8, (64, 64) uint8 with labels 0..10
    """
    if num_images < 1 or size < 16:
        raise ValueError(f"embedded_segmentation needs num_images >= 1 and size >= 16, got {num_images} and {size}")
    rng = np.random.default_rng(seed)
    pairs = [composite(rng, size) for _ in range(num_images)]
    images = np.stack([image for image, _ in pairs])
    masks = np.stack([mask for _, mask in pairs])
    return ArrayExamples(images, masks, CLASS_NAMES, task="segmentation", name=f"embedded-{size}px-seed{seed}")
