"""``garden predict`` and ``garden evaluate``: a model on your images, and its metrics on a data source.

The model is a run folder (its ``best.keras`` and the class names its ``config.json`` records), a
``.keras`` file, or a registered name (with ``--weights`` and ``--set``). Images are read as
``garden.data.sources.load_images`` reads them (one file, a plain folder, a ``.npy`` array, any
data source) and fed as training feeds them (``garden.train.pipeline.Batches``: resized, [0, 1]).
"""

import json
from pathlib import Path

import cv2
import numpy as np

from garden._files import atomic_path, created_folder, write_text
from garden.errors import GardenError
from garden.train import report
from garden.train.pipeline import Batches, predictions

RUN_MODEL_FILES = ("best.keras", "last.keras")


def open_model(spec, model_options=None):
    """``(keras model, class names or None, name)`` for a run folder, a ``.keras`` file or a registered name."""
    from garden.saving import load_model_file

    path = Path(str(spec))
    if path.is_dir():
        found = next((path / name for name in RUN_MODEL_FILES if (path / name).is_file()), None)
        if found is None:
            raise GardenError(f"{path} is not a garden run folder: it has no {' or '.join(RUN_MODEL_FILES)}")
        config = path / "config.json"
        names = json.loads(config.read_text()).get("classes") if config.is_file() else None
        return load_model_file(found), names, path.name
    if model_options and path.suffix == ".keras":
        raise GardenError("--set and --weights build a registered model; a .keras file is built already")
    if path.suffix == ".keras":
        return load_model_file(path), None, path.stem
    from garden.registry import build_model

    return build_model(str(spec), **(model_options or {})), None, str(spec)


def task_of(model):
    return "segmentation" if len(model.output_shape) == 4 else "classification"


def class_names(names, count):
    """``names`` when they are one per class; ImageNet's for 1,000 classes where Keras has them cached; else indices."""
    if names and len(names) == count:
        return [str(n) for n in names]
    if count == 1000:
        from garden.weights import imagenet_class_names

        return imagenet_class_names() or [str(i) for i in range(count)]
    return [str(i) for i in range(count)]


def predict(model, images, names=None, top_k=3, batch_size=8):
    """One result per image: ``{"image", "top": [(class, probability), ...]}`` or ``{"image", "mask", "areas"}``."""
    shape = tuple(int(v) for v in model.input_shape[1:])
    batches = Batches(images, batch_size, shape)
    count = int(model.output_shape[-1])
    names = class_names(names, count)
    results = []
    for index in range(len(batches)):
        logits = np.asarray(model.predict_on_batch(batches[index][0]), dtype="float64")
        for row in logits:
            results.append(_classified(row, names, top_k) if row.ndim == 1 else {"mask": np.argmax(row, axis=-1)})
    for index, result in enumerate(results):
        result["image"] = _label(images, index)
    return results


def _classified(logits, names, top_k):
    probabilities = logits if logits.min() >= 0 and abs(logits.sum() - 1) < 1e-3 else _softmax(logits)
    order = np.argsort(-probabilities, kind="stable")[:top_k]
    return {"top": [(names[c], float(probabilities[c])) for c in order]}


def _softmax(logits):
    exp = np.exp(logits - logits.max())
    return exp / exp.sum()


def _label(images, index):
    item = images.images[index] if hasattr(images, "images") else index
    return Path(item).name if isinstance(item, (str, Path)) else f"{index:04d}"


def write_predictions(results, images, out, names, num_classes):
    """``predictions.json`` and, for a segmenter, one overlay PNG per image (at the image's own size)."""
    from garden.segmentation.visualize import overlay

    with created_folder(out):
        rows = []
        for index, result in enumerate(results):
            row = {"image": result["image"]}
            if "top" in result:
                row["top"] = [{"class": c, "probability": round(p, 6)} for c, p in result["top"]]
            else:
                image = np.asarray(images[index][0])
                mask = cv2.resize(result["mask"].astype("uint8"), image.shape[1::-1], interpolation=cv2.INTER_NEAREST)
                stem = Path(result["image"]).stem
                with atomic_path(Path(out) / f"{stem}_overlay.png") as temporary:
                    cv2.imwrite(temporary, overlay(image, mask)[..., ::-1])
                areas = np.bincount(mask.ravel(), minlength=num_classes) / mask.size
                row["overlay"] = f"{stem}_overlay.png"
                row["areas"] = {
                    class_names(names, num_classes)[c]: round(float(a), 6) for c, a in enumerate(areas) if a
                }
            rows.append(row)
        write_text(Path(out) / "predictions.json", json.dumps(rows, indent=2) + "\n")
    return rows


def evaluate(model, examples, batch_size=16):
    """The task's metrics of ``model`` on labelled ``examples``: accuracy, or mean IoU and pixel accuracy."""
    if examples.task is None:
        raise GardenError(f"garden evaluate needs labelled data; {examples.name} has no labels")
    task = task_of(model)
    if examples.task != task:
        raise GardenError(f"the model is a {task} model but {examples.name} holds {examples.task} data")
    count = int(model.output_shape[-1])
    if examples.num_classes and examples.num_classes != count:
        raise GardenError(f"the model has {count} classes but {examples.name} has {examples.num_classes}")
    batches = Batches(examples, batch_size, tuple(int(v) for v in model.input_shape[1:]))
    predicted, truth = predictions(model, batches)
    matrix = report.confusion(truth, predicted, count)
    if task == "classification":
        return {"accuracy": report.accuracy(matrix), "examples": len(examples)}
    return {"mean_iou": report.mean_iou(matrix), "pixel_accuracy": report.accuracy(matrix), "examples": len(examples)}
