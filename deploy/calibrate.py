"""Representative data for calibration and checking: any source the training engine reads.

A source spec (``digits``, ``embedded``, ``cifar10:PATH``, a folder) is loaded through
``garden.data.sources.load_source``; a plain folder of images or a ``.npy`` array, unlabelled,
through ``garden.data.sources.load_images`` (calibration needs no labels). Images are resized to
the model's input and converted to its input convention (float32 RGB or grey in [0, 1],
``garden.data.to_model_input``). Masks are resized with nearest neighbour so class indices survive.
"""

import cv2
import numpy as np

from garden.data import Subset, to_model_input
from garden.errors import GardenError


def load_source(spec, task=None):
    """The training engine's loader (``garden.data.sources.load_source``), or unlabelled images."""
    from garden.data.sources import is_unlabelled, load_images
    from garden.data.sources import load_source as engine_load

    if is_unlabelled(spec):
        return load_images(spec)
    return engine_load(spec, task=task)


def take(examples, count, seed=0):
    """At most ``count`` examples (None: all), a fixed shuffled subset."""
    if count is not None and not count >= 1:
        raise GardenError(f"cannot take {count!r} examples of {examples.name!r}: the count must be at least 1")
    if count is None or count >= len(examples):
        return examples
    order = np.random.default_rng(seed).permutation(len(examples))[:count]
    return Subset(examples, np.sort(order))


def prepare(examples, input_shape):
    """``(inputs, targets)``: inputs float32 ``(N, H, W, C)`` in [0, 1] at ``input_shape``.

    Targets are class indices ``(N,)`` or nearest-neighbour-resized masks ``(N, H, W)`` uint8;
    None for unlabelled examples.
    """
    height, width, channels = input_shape
    if len(examples) == 0:
        raise GardenError(f"data source {examples.name!r} is empty")
    images, targets = [], []
    for image, target in examples:
        images.append(_resize_image(image, height, width, channels))
        if examples.task == "segmentation":
            target = cv2.resize(np.asarray(target, "uint8"), (width, height), interpolation=cv2.INTER_NEAREST)
        targets.append(target)
    return to_model_input(np.stack(images)), (None if examples.task is None else np.asarray(targets))


def _resize_image(image, height, width, channels):
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[:2] != (height, width):
        interpolation = cv2.INTER_AREA if image.shape[0] > height else cv2.INTER_LINEAR
        image = cv2.resize(image, (width, height), interpolation=interpolation)
        if image.ndim == 2:
            image = image[..., None]
    if image.shape[-1] == channels:
        return image
    if channels == 3 and image.shape[-1] == 1:
        return np.repeat(image, 3, axis=-1)
    if channels == 1 and image.shape[-1] == 3:
        return np.round(image.astype("float32").mean(axis=-1, keepdims=True)).astype("uint8")
    raise GardenError(f"cannot feed {image.shape[-1]}-channel images to a {channels}-channel model")
