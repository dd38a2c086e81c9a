"""``photo_digits``: colour digits on photographs, built offline the way MNIST-M is.

Ganin & Lempitsky, "Unsupervised Domain Adaptation by Backpropagation" (ICML 2015) made MNIST-M by
blending MNIST digits over patches of BSDS500 photographs. Here scikit-learn's bundled 8x8 digits
(1,797, upscaled) are composited onto crops of scikit-image's bundled photographs (the embedded
set's, ``garden.data.embedded``) with a varied position, scale, slant, ink colour and blending:
either MNIST-M's difference blend (the photograph's colours inverted under the stroke) or an ink
of a random hue. One digit per image, classes ``"0"`` .. ``"9"``. The split is fixed: the digit
samples are divided 80/20 once, so no test image shows a glyph seen in training; 10,000 training
and 2,000 test images, the same on every machine.
"""

import functools

import numpy as np

from garden.data.base import ArrayExamples
from garden.data.embedded import _background, _digits, _glyph, _ink

SPLITS = {"train": 10_000, "test": 2_000}
CLASS_NAMES = tuple(str(d) for d in range(10))


def photo_digits(split="train", size=32, seed=0):
    """The ``split`` ("train" or "test") of photo_digits at ``size x size`` RGB, as ``ArrayExamples``.

    >>> train = photo_digits("train")        # 10,000 images, (32, 32, 3) uint8, labels 0..9
    """
    if split not in SPLITS:
        raise ValueError(f"photo_digits: split must be one of {', '.join(SPLITS)}, got {split!r}")
    if size < 16:
        raise ValueError(f"photo_digits needs a size of at least 16, got {size}")
    images, labels, glyphs = _images(split, size, seed)
    examples = ArrayExamples(images, labels, CLASS_NAMES, name=f"photo_digits-{split}-{size}px")
    examples.glyph_indices = glyphs  # which of scikit-learn's 1,797 digit samples each image shows
    return examples


@functools.lru_cache(maxsize=4)
def _images(split, size, seed):
    glyphs, targets = _digits()
    order = np.random.default_rng(seed).permutation(len(glyphs))
    cut = int(0.8 * len(glyphs))
    pool = order[:cut] if split == "train" else order[cut:]
    rng = np.random.default_rng((seed, list(SPLITS).index(split), size))
    chosen = pool[rng.integers(len(pool), size=SPLITS[split])]
    images = np.stack([_composite(rng, glyphs[index], size) for index in chosen])
    images.setflags(write=False)
    return images, targets[chosen], chosen


def _composite(rng, glyph, size):
    """One photograph crop with one digit, blended by difference (MNIST-M) or as coloured ink."""
    image = _background(rng, size).astype("float32")
    side = int(round(rng.uniform(0.6, 0.95) * size))
    top, left = rng.integers(0, size - side + 1, size=2)
    alpha = _glyph(rng, glyph, side)[..., None]
    region = image[top : top + side, left : left + side]
    if rng.random() < 0.5:
        region[:] = region * (1 - alpha) + np.abs(region - 255.0) * alpha
    else:
        region[:] = region * (1 - alpha) + _ink(rng, region) * alpha
    noise = rng.normal(0.0, 3.0, image.shape)
    return np.clip(image + noise, 0, 255).astype("uint8")
