"""One name for every data source: ``load_source(spec)`` and the held-out split of each.

``spec`` is ``digits`` (scikit-learn's handwritten digits), ``embedded`` (the generated
segmentation set), ``cifar10:PATH``, or a folder whose layout is detected:

===================================================  =========================================
folder holds                                         read as
===================================================  =========================================
``batches.meta`` + ``test_batch`` (CIFAR-10 python)  :func:`garden.data.classification.cifar10`
``JPEGImages`` + ``SegmentationClass`` (VOC)          :func:`garden.data.segmentation.voc`
``images/`` + ``masks/``                             :func:`garden.data.segmentation.mask_folders`
one sub-folder of images per class                   :func:`garden.data.classification.image_folder`
===================================================  =========================================

Calibration and prediction need no labels: :func:`load_images` also reads a plain folder of
photographs and a ``.npy`` array.
"""

from pathlib import Path

import numpy as np

from garden.data import classification
from garden.data.base import TASKS, Unlabelled, split
from garden.data.classification import is_image, read_image
from garden.errors import GardenError

VOC_FOLDERS = ("JPEGImages", "SegmentationClass")
MASK_FOLDERS = ("masks", "labels", "annotations")


def load_source(spec, task=None):
    """The examples named by ``spec`` (the training part, where the source has its own test split)."""
    return load_splits(spec, task)[0]


def load_splits(spec, task=None, held_out=0.2, seed=0):
    """``(train, held_out)`` for ``spec``: the source's own test split when it has one, else a seeded split."""
    if task is not None and task not in TASKS:
        raise GardenError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    spec = str(spec)
    train, test = _load(spec, held_out, seed)
    if task is not None and train.task != task:
        raise GardenError(f"data {spec!r} is a {train.task} source, but a {task} model needs {task} data")
    return train, test


def _load(spec, held_out, seed):
    if spec == "digits":
        return split(classification.digits(), held_out, seed)
    if spec == "embedded":
        return split(_embedded(), held_out, seed)
    if spec == "photo_digits" or spec.startswith("photo_digits:"):
        return _photo_digits(spec)
    if spec.startswith("cifar10:"):
        root = spec.split(":", 1)[1]
        return classification.cifar10(root, "train"), classification.cifar10(root, "test")
    return _load_folder(Path(spec), held_out, seed)


def is_unlabelled(spec):
    """Whether ``spec`` is a ``.npy`` array or a folder of images with no sub-folders (no labels either way)."""
    path = Path(str(spec))
    if path.suffix == ".npy":
        return True
    if not path.is_dir():
        return False
    entries = [p for p in path.iterdir() if not p.name.startswith(".")]
    return any(is_image(p) for p in entries) and not any(p.is_dir() for p in entries)


def load_images(spec):
    """Unlabelled images: a ``.npy`` array (N, H, W[, C], uint8 or floats in [0, 1]), a plain folder or one image.

    Any labelled source (``load_source``) serves too, its labels dropped.
    """
    path = Path(str(spec))
    if path.suffix == ".npy":
        return Unlabelled(_read_array(path), name=path.stem)
    if is_image(path):
        return Unlabelled([path], read_image, name=path.stem)
    if is_unlabelled(path):
        return Unlabelled(sorted(p for p in path.iterdir() if is_image(p)), read_image, name=path.name)
    examples = load_source(spec)
    return Unlabelled(range(len(examples)), lambda index: examples[index][0], name=examples.name)


def _read_array(path):
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise GardenError(f"cannot read image array {path}: {str(error).splitlines()[0]}") from None
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4 or array.shape[-1] not in (1, 3) or len(array) == 0:
        raise GardenError(f"image array {path} has shape {array.shape}; expected (N, H, W) or (N, H, W, 1 or 3)")
    if array.dtype == np.uint8:
        return array
    if array.dtype.kind != "f" or not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
        raise GardenError(f"image array {path} must be uint8 (0-255) or floats in [0, 1], got {array.dtype}")
    return np.round(array * 255).astype(np.uint8)


def has_own_test_split(spec):
    """True for sources with a fixed test split of their own (photo_digits, CIFAR-10)."""
    spec = str(spec)
    return spec == "photo_digits" or spec.startswith(("photo_digits:", "cifar10:"))


def _photo_digits(spec):
    from garden.data.photo_digits import photo_digits

    size = spec.partition(":")[2] or "32"
    if not size.isdigit() or int(size) < 16:
        raise GardenError(f"data {spec!r}: use photo_digits or photo_digits:SIZE with a size of at least 16")
    return photo_digits("train", int(size)), photo_digits("test", int(size))


def detect_layout(root):
    """The layout of folder ``root``: ``cifar10``, ``voc``, ``mask_folders`` or ``image_folder``."""
    root = Path(root)
    if not root.exists():
        raise GardenError(f"data {root} does not exist (expected digits, embedded, cifar10:PATH or a folder)")
    if not root.is_dir():
        raise GardenError(f"data {root} is not a folder")
    entries = [p for p in root.iterdir() if not p.name.startswith(".")]
    if not entries:
        raise GardenError(f"data folder {root} is empty")
    if classification.find_cifar10(root) is not None:
        return "cifar10", root
    voc = _voc_root(root)
    if voc is not None:
        return "voc", voc
    if (root / "images").is_dir() and any((root / name).is_dir() for name in MASK_FOLDERS):
        return "mask_folders", root
    if any(p.is_dir() for p in entries):
        return "image_folder", root
    if any(is_image(p) for p in entries):
        raise GardenError(f"data folder {root} holds images but no class folders: put each class in its own sub-folder")
    raise GardenError(
        f"cannot tell the layout of data folder {root}: no class folders, VOC, images/masks or CIFAR-10 files"
    )


def _voc_root(root):
    for candidate in (root, root / "VOC2012", *sorted(root.glob("VOCdevkit/VOC*"))):
        if all((candidate / name).is_dir() for name in VOC_FOLDERS):
            return candidate
    return None


def _load_folder(root, held_out, seed):
    layout, where = detect_layout(root)
    if layout == "cifar10":
        return classification.cifar10(where, "train"), classification.cifar10(where, "test")
    if layout == "image_folder":
        return split(classification.image_folder(where), held_out, seed)
    segmentation = _segmentation_module()
    if layout == "voc":
        train = segmentation.voc(where, "train")
        try:
            return train, segmentation.voc(where, "val")
        except GardenError:
            return split(train, held_out, seed)
    masks = next(root / name for name in MASK_FOLDERS if (root / name).is_dir())
    return split(segmentation.mask_folders(root / "images", masks), held_out, seed)


def _segmentation_module():
    try:
        from garden.data import segmentation
    except ImportError:
        raise GardenError("segmentation folders need garden.data.segmentation, which is not installed") from None
    return segmentation


def _embedded():
    try:
        from garden.data.embedded import embedded_segmentation
    except ImportError:
        raise GardenError("the embedded segmentation set needs garden.data.embedded, which is not installed") from None
    return embedded_segmentation()
