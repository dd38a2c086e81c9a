"""Pictures of segmentations: colour-palette masks, overlays, boundaries, boxes and
prediction-versus-ground-truth strips. Pure NumPy/OpenCV functions on uint8 RGB arrays; only
:func:`save_comparison` (a labelled figure) uses matplotlib.
"""

import cv2
import numpy as np

from garden._files import atomic_path
from garden.errors import GardenError
from garden.segmentation import IGNORE_LABEL

IGNORE_COLOUR = (224, 224, 192)


def class_palette(count=256):
    """The Pascal VOC palette (label -> RGB); label 0 is black, 255 the cream of "ignore"."""
    from garden.data.segmentation import voc_palette

    return voc_palette(count)


def region_palette(count, seed=0):
    """``count`` distinct-looking random colours, for label maps of many regions (superpixels)."""
    rng = np.random.default_rng(seed)
    hsv = np.stack(
        [rng.integers(0, 180, count), rng.integers(120, 256, count), rng.integers(140, 256, count)], axis=-1
    ).astype("uint8")
    return cv2.cvtColor(hsv[None], cv2.COLOR_HSV2RGB)[0]


def colorize(mask, palette=None):
    """HxW labels -> HxWx3 uint8 RGB through ``palette`` (default: the class palette), by NumPy indexing."""
    mask = np.asarray(mask)
    palette = class_palette() if palette is None else np.asarray(palette, dtype="uint8")
    if mask.size and (mask.min() < 0 or (mask[mask != IGNORE_LABEL].max(initial=0) >= len(palette))):
        raise GardenError(f"labels {mask.min()}..{mask.max()} do not fit a palette of {len(palette)} colours")
    colours = palette[np.where(mask == IGNORE_LABEL, 0, mask).astype("int64") % len(palette)]
    colours[mask == IGNORE_LABEL] = IGNORE_COLOUR
    return colours


def overlay(image, mask, alpha=0.55, palette=None, background=0):
    """Blend the coloured ``mask`` over ``image``; pixels labelled ``background`` stay untouched."""
    image = to_rgb(image)
    if image.shape[:2] != np.shape(mask):
        raise GardenError(
            f"image is {image.shape[1]}x{image.shape[0]} but the mask is {np.shape(mask)[1]}x{np.shape(mask)[0]}"
        )
    colours = colorize(mask, palette).astype("float32")
    blended = image.astype("float32") * (1 - alpha) + colours * alpha
    keep = (np.asarray(mask) == background)[..., None] if background is not None else False
    return np.where(keep, image, blended.round()).astype("uint8")


def boundaries(labels):
    """Boolean HxW map of pixels whose right or lower neighbour has another label."""
    labels = np.asarray(labels)
    edge = np.zeros(labels.shape, bool)
    edge[:, :-1] |= labels[:, 1:] != labels[:, :-1]
    edge[:-1, :] |= labels[1:, :] != labels[:-1, :]
    return edge


def draw_regions(image, labels, alpha=0.45, seed=0, edge_colour=(255, 255, 255)):
    """Each region of a label map (any number of labels) in a random colour, with white boundaries."""
    labels = np.asarray(labels)
    _, inverse = np.unique(labels, return_inverse=True)
    dense = inverse.reshape(labels.shape)
    palette = region_palette(int(dense.max()) + 1, seed)
    picture = overlay(image, dense, alpha=alpha, palette=palette, background=None)
    picture[boundaries(dense)] = edge_colour
    return picture


def draw_boxes(image, boxes, colour=(255, 220, 0), thickness=1):
    """Rectangles ``(x, y, w, h)`` drawn on a copy of ``image``."""
    picture = np.ascontiguousarray(to_rgb(image)).copy()
    for x, y, w, h in np.asarray(boxes, dtype="int64").reshape(-1, 4):
        cv2.rectangle(picture, (int(x), int(y)), (int(x + w - 1), int(y + h - 1)), colour, thickness)
    return picture


def comparison_strip(image, truth, prediction, palette=None, gap=4):
    """One RGB picture: image | ground truth | prediction | errors (red where they differ, ignore excluded)."""
    image = to_rgb(image)
    truth, prediction = np.asarray(truth), np.asarray(prediction)
    if truth.shape != prediction.shape or truth.shape != image.shape[:2]:
        raise GardenError(
            f"image {image.shape[:2]}, truth {truth.shape} and prediction {prediction.shape} differ in size"
        )
    wrong = (truth != prediction) & (truth != IGNORE_LABEL)
    errors = (image.astype("float32") * 0.35).astype("uint8")
    errors[wrong] = (230, 30, 30)
    panels = [image, colorize(truth, palette), colorize(prediction, palette), errors]
    spacer = np.full((image.shape[0], gap, 3), 255, "uint8")
    return np.concatenate([p for panel in panels for p in (panel, spacer)][:-1], axis=1)


def save_comparison(path, rows, class_names=None, palette=None, scale=3, title=None):
    """Write a PNG figure of ``rows`` ``(image, truth, prediction)``: one labelled strip per row and a legend."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    rows = list(rows)
    if not rows:
        raise GardenError("save_comparison needs at least one (image, truth, prediction) row")
    strips = [comparison_strip(*row, palette=palette) for row in rows]
    height, width = strips[0].shape[:2]
    figure, axes = plt.subplots(
        len(strips), 1, figsize=(width * scale / 100, height * scale * len(strips) / 100 + 0.8), squeeze=False
    )
    for axis, strip in zip(axes[:, 0], strips):
        axis.imshow(strip, interpolation="nearest")
        axis.set_axis_off()
    panel = (width - 12) / 4
    for index, label in enumerate(("image", "ground truth", "prediction", "errors")):
        axes[0, 0].text(panel * index + panel / 2 + 4 * index, -3, label, ha="center", va="bottom", fontsize=9)
    if class_names:
        colours = (class_palette() if palette is None else np.asarray(palette))[: len(class_names)] / 255.0
        handles = [Patch(color=c, label=n) for c, n in zip(colours, class_names)]
        figure.legend(handles=handles, loc="lower center", ncol=min(6, len(handles)), fontsize=7, frameon=False)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout(rect=(0, 0.08 if class_names else 0, 1, 1))
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=100)
    plt.close(figure)


def to_rgb(image):
    """uint8 RGB ``HxWx3`` from grey ``HxW``/``HxWx1`` or floats in [0, 1]."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = (np.clip(image, 0, 1) * 255).round().astype("uint8")
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    return image[..., :3]


def save_image(path, rgb):
    """Write an RGB uint8 picture (PNG/JPEG by suffix) through a temporary file."""
    with atomic_path(path) as temporary:
        if not cv2.imwrite(temporary, cv2.cvtColor(to_rgb(rgb), cv2.COLOR_RGB2BGR)):
            raise GardenError(f"cannot write {path}: OpenCV does not know the format {path!s}")
