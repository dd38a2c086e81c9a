"""View augmentations: the random transformations that make two "views" of one image.

Batched ``keras.ops`` functions of float images in [0, 1] (N, H, W, C), drawing per-image random
numbers from a ``keras.random.SeedGenerator``; they run inside a model's training step on every
backend. The recipe is SimCLR's (Chen et al., 2020, Appendix A): random resized crop with flip,
colour jitter applied with probability 0.8, random grayscale 0.2, Gaussian blur; BYOL (Grill et al.,
2020, Table 6) adds solarization and makes the blur and solarization asymmetric between the views.

>>> seed = keras.random.SeedGenerator(0)
>>> view = make_view(images, ViewRecipe(), seed)
"""

import math
from dataclasses import asdict, dataclass, replace

from keras import ops, random


@dataclass(frozen=True)
class ViewRecipe:
    """How one view is drawn; the defaults are SimCLR's CIFAR-10 recipe (colour strength 0.5)."""

    crop_scale: tuple = (0.2, 1.0)
    crop_ratio: tuple = (3 / 4, 4 / 3)
    flip: bool = True
    jitter_probability: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1
    grayscale_probability: float = 0.2
    blur_probability: float = 0.0
    blur_sigma: tuple = (0.1, 2.0)
    solarize_probability: float = 0.0

    def to_dict(self):
        return asdict(self)

    def updated(self, **changes):
        unknown = sorted(set(changes) - set(asdict(self)))
        if unknown:
            raise ValueError(f"ViewRecipe has no field {', '.join(unknown)}; fields: {', '.join(asdict(self))}")
        return replace(self, **changes)


def make_view(images, recipe, seed):
    """One random view of each image: crop (and flip), jitter, grayscale, blur, solarize."""
    x = random_resized_crop(images, recipe.crop_scale, recipe.crop_ratio, recipe.flip, seed)
    if recipe.jitter_probability:
        jitter = lambda y: color_jitter(  # noqa: E731
            y, recipe.brightness, recipe.contrast, recipe.saturation, recipe.hue, seed
        )
        x = random_apply(jitter, x, recipe.jitter_probability, seed)
    if recipe.grayscale_probability:
        x = random_apply(grayscale, x, recipe.grayscale_probability, seed)
    if recipe.blur_probability:
        x = random_apply(lambda y: gaussian_blur(y, recipe.blur_sigma, seed), x, recipe.blur_probability, seed)
    if recipe.solarize_probability:
        x = random_apply(solarize, x, recipe.solarize_probability, seed)
    return x


def random_apply(transform, images, probability, seed):
    """``transform(images)`` for each image with ``probability``, the image unchanged otherwise."""
    chosen = random.uniform((ops.shape(images)[0], 1, 1, 1), seed=seed) < probability
    return ops.where(chosen, transform(images), images)


def random_resized_crop(images, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3), flip=True, seed=None):
    """Crop a random box of ``scale`` of the area and aspect ``ratio``, resize it back (bilinear).

    Szegedy et al., "Going Deeper with Convolutions" (2015), the "Inception crop"; with ``flip`` the
    crop is mirrored left-right for half of the images. One affine resampling per image.
    """
    n = ops.shape(images)[0]
    height, width = images.shape[1], images.shape[2]
    area = random.uniform((n,), scale[0], scale[1], seed=seed)
    aspect = ops.exp(random.uniform((n,), math.log(ratio[0]), math.log(ratio[1]), seed=seed))
    box_w = ops.minimum(ops.sqrt(area * aspect), 1.0) * width
    box_h = ops.minimum(ops.sqrt(area / aspect), 1.0) * height
    x0 = random.uniform((n,), seed=seed) * (width - box_w)
    y0 = random.uniform((n,), seed=seed) * (height - box_h)
    sx, sy = box_w / width, box_h / height
    # Output pixel centre (x + 0.5) maps to input x0 + (x + 0.5) * sx, in pixel-centre coordinates.
    if flip:
        sign = ops.where(random.uniform((n,), seed=seed) < 0.5, -1.0, 1.0)
    else:
        sign = ops.ones((n,))
    a2 = x0 + ops.where(sign < 0, width - 0.5, 0.5) * sx - 0.5
    b2 = y0 + 0.5 * sy - 0.5
    zeros = ops.zeros((n,))
    transform = ops.stack([sign * sx, zeros, a2, zeros, sy, b2, zeros, zeros], axis=1)
    return ops.image.affine_transform(images, transform, interpolation="bilinear", fill_mode="nearest")


def random_translate(images, max_shift, seed=None):
    """Shift each image by up to ``max_shift`` pixels in x and y (bilinear, edges repeated)."""
    n = ops.shape(images)[0]
    dx = random.uniform((n,), -max_shift, max_shift, seed=seed)
    dy = random.uniform((n,), -max_shift, max_shift, seed=seed)
    ones, zeros = ops.ones((n,)), ops.zeros((n,))
    transform = ops.stack([ones, zeros, dx, zeros, ones, dy, zeros, zeros], axis=1)
    return ops.image.affine_transform(images, transform, interpolation="bilinear", fill_mode="nearest")


def color_jitter(images, brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1, seed=None):
    """Random brightness, contrast, saturation and hue per image, in that order, clipped to [0, 1].

    Each factor is drawn uniformly from ``[1 - s, 1 + s]`` (hue: a shift in ``[-hue, hue]`` of a turn),
    as torchvision's ``ColorJitter`` which SimCLR uses. Saturation and hue need RGB images.
    """
    n = ops.shape(images)[0]

    def factor(strength):
        return random.uniform((n, 1, 1, 1), 1.0 - strength, 1.0 + strength, seed=seed)

    x = images
    if brightness:
        x = ops.clip(x * factor(brightness), 0.0, 1.0)
    if contrast:
        mean = ops.mean(_luma(x), axis=(1, 2, 3), keepdims=True)
        x = ops.clip(mean + (x - mean) * factor(contrast), 0.0, 1.0)
    if images.shape[-1] == 3 and saturation:
        gray = _luma(x)
        x = ops.clip(gray + (x - gray) * factor(saturation), 0.0, 1.0)
    if images.shape[-1] == 3 and hue:
        hsv = ops.image.rgb_to_hsv(x)
        shift = random.uniform((n, 1, 1), -hue, hue, seed=seed)
        hsv = ops.stack([(hsv[..., 0] + shift) % 1.0, hsv[..., 1], hsv[..., 2]], axis=-1)
        x = ops.clip(ops.image.hsv_to_rgb(hsv), 0.0, 1.0)
    return x


def grayscale(images):
    """ITU-R 601 luma, repeated over the channels (the image keeps its shape)."""
    return ops.repeat(_luma(images), images.shape[-1], axis=-1)


def gaussian_blur(images, sigma=(0.1, 2.0), seed=None):
    """Gaussian blur with a standard deviation drawn from ``sigma`` (in pixels) once per batch.

    The kernel spans about a tenth of the image side (odd, at least 3), as in SimCLR.
    """
    size = max(3, int(0.1 * min(images.shape[1], images.shape[2])) // 2 * 2 + 1)
    std = random.uniform((), sigma[0], sigma[1], seed=seed)
    offsets = ops.arange(size, dtype="float32") - (size - 1) / 2
    kernel = ops.exp(-ops.square(offsets) / (2.0 * ops.square(std)))
    kernel = kernel / ops.sum(kernel)
    channels = images.shape[-1]
    rows = ops.tile(ops.reshape(kernel, (size, 1, 1, 1)), (1, 1, channels, 1))
    cols = ops.tile(ops.reshape(kernel, (1, size, 1, 1)), (1, 1, channels, 1))
    pad = size // 2
    x = ops.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
    x = ops.depthwise_conv(x, rows, padding="valid")
    return ops.depthwise_conv(x, cols, padding="valid")


def solarize(images, threshold=0.5):
    """Invert the pixels at or above ``threshold`` (``x -> 1 - x``)."""
    return ops.where(images >= threshold, 1.0 - images, images)


def _luma(images):
    if images.shape[-1] == 1:
        return images
    weights = ops.convert_to_tensor([0.299, 0.587, 0.114], dtype=images.dtype)
    return ops.sum(images * weights, axis=-1, keepdims=True)
