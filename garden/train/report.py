"""The pictures and numbers at the end of a run: curves, confusion matrix, overlays, metrics."""

import numpy as np

from garden._files import atomic_path
from garden.data.base import IGNORE_LABEL


def confusion(truth, predicted, num_classes):
    """``num_classes x num_classes`` counts, rows = truth; entries labelled 255 are ignored."""
    truth, predicted = np.ravel(truth).astype("int64"), np.ravel(predicted).astype("int64")
    keep = (truth != IGNORE_LABEL) & (truth < num_classes)
    index = truth[keep] * num_classes + predicted[keep]
    return np.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def accuracy(matrix):
    return float(np.trace(matrix) / max(1, matrix.sum()))


def mean_iou(matrix):
    """Mean over classes present in truth or prediction of TP / (TP + FP + FN)."""
    tp = np.diag(matrix).astype("float64")
    union = matrix.sum(0) + matrix.sum(1) - tp
    present = union > 0
    return float(np.mean(tp[present] / union[present])) if present.any() else 0.0


def _figure(*args, **kwargs):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt, plt.figure(*args, **kwargs)


def _save(plt, figure, path):
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=110, format="png")
    plt.close(figure)


def plot_curves(rows, path, title=""):
    """Loss (left) and the other metrics (right) per epoch, training solid and held-out dashed."""
    plt, figure = _figure(figsize=(10, 4))
    epochs = [row["epoch"] for row in rows]
    keys = [k for k in rows[0] if k not in ("epoch", "lr", "time_s") and not k.startswith("val_")] if rows else []
    metric_keys = [k for k in keys if k != "loss"]
    for position, names in ((1, ["loss"]), (2, metric_keys)):
        axes = figure.add_subplot(1, 2, position)
        for name in names:
            for key, style in ((name, "-"), (f"val_{name}", "--")):
                values = [row.get(key) for row in rows]
                if any(v is not None for v in values):
                    axes.plot(epochs, values, style, marker="o", markersize=3, label=key)
        axes.set_xlabel("epoch")
        axes.set_title("loss" if position == 1 else "metrics")
        axes.grid(alpha=0.3)
        if axes.lines:
            axes.legend()
    figure.suptitle(title)
    figure.tight_layout()
    _save(plt, figure, path)


def plot_confusion(matrix, class_names, path, title=""):
    """The confusion matrix with counts in each cell, rows = truth."""
    size = max(4.0, 0.45 * len(class_names) + 2)
    plt, figure = _figure(figsize=(size, size))
    axes = figure.add_subplot(1, 1, 1)
    axes.imshow(matrix, cmap="Blues")
    ticks = range(len(class_names))
    axes.set_xticks(ticks, class_names, rotation=90 if len(class_names) > 10 else 0)
    axes.set_yticks(ticks, class_names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("truth")
    if len(class_names) <= 30:
        limit = matrix.max() / 2 if matrix.size else 0
        for (i, j), count in np.ndenumerate(matrix):
            axes.text(
                j, i, str(count), ha="center", va="center", fontsize=7, color="white" if count > limit else "black"
            )
    axes.set_title(title)
    figure.tight_layout()
    _save(plt, figure, path)


def colour_mask(mask, num_classes):
    """A class-index mask -> RGB (class colours from a fixed palette; 255 = black)."""
    palette = (np.random.default_rng(7).integers(40, 255, size=(max(num_classes, 1), 3))).astype("uint8")
    palette[0] = 0
    out = np.zeros(mask.shape + (3,), "uint8")
    valid = mask < num_classes
    out[valid] = palette[mask[valid]]
    return out


def plot_overlays(images, truths, predictions, num_classes, path, title=""):
    """Rows of image | truth overlay | prediction overlay, for a few held-out examples."""
    count = len(images)
    plt, figure = _figure(figsize=(7.5, 2.5 * count))
    for row, (image, truth, predicted) in enumerate(zip(images, truths, predictions)):
        rgb = image if image.shape[-1] == 3 else np.repeat(image, 3, axis=-1)
        rgb = (np.clip(rgb, 0, 1) * 255).astype("uint8") if rgb.dtype != np.uint8 else rgb
        panels = (rgb, _blend(rgb, colour_mask(truth, num_classes)), _blend(rgb, colour_mask(predicted, num_classes)))
        for column, (panel, name) in enumerate(zip(panels, ("image", "truth", "prediction"))):
            axes = figure.add_subplot(count, 3, row * 3 + column + 1)
            axes.imshow(panel)
            axes.axis("off")
            if row == 0:
                axes.set_title(name)
    figure.suptitle(title)
    figure.tight_layout()
    _save(plt, figure, path)


def _blend(image, colours):
    return (0.5 * image + 0.5 * colours).astype("uint8")
