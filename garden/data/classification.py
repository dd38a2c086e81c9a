"""Classification data sources: scikit-learn's bundled digits, an image-folder tree, CIFAR-10.

Nothing is downloaded. ``digits`` are the 1,797 real handwritten 8x8 digits that ship with
scikit-learn (UCI "Optical Recognition of Handwritten Digits"), upscaled to LeNet's 32x32.
``image_folder`` reads one sub-folder per class and decodes an image only when it is asked for,
so it works the same with three images or three million. ``cifar10`` reads the python-pickle
layout (``data_batch_1`` ... ``data_batch_5``, ``test_batch``, ``batches.meta``).
"""

import pickle
from pathlib import Path

import cv2
import numpy as np

from garden.data.base import ArrayExamples, FileExamples
from garden.errors import GardenError, UnreadableFile

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST = ("test_batch",)


def digits(size=32, channels=1):
    """The scikit-learn digits as uint8 ``size x size x channels`` images, classes "0" ... "9"."""
    from sklearn.datasets import load_digits

    if channels not in (1, 3):
        raise GardenError(f"digits: channels must be 1 or 3, got {channels}")
    bunch = load_digits()
    small = (bunch.images * (255.0 / 16.0)).astype("float32")  # 0..16 ink levels -> 0..255
    images = np.stack([cv2.resize(image, (size, size), interpolation=cv2.INTER_CUBIC) for image in small])
    images = np.clip(images, 0, 255).round().astype("uint8")[..., None]
    if channels == 3:
        images = np.repeat(images, 3, axis=-1)
    names = [str(d) for d in range(10)]
    return ArrayExamples(images, bunch.target.astype("int64"), names, name="digits")


def read_image(path):
    """Decode an image file as uint8 RGB ``H x W x 3``; an undecodable file raises ``GardenError``."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise UnreadableFile(path, f"cannot decode image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def is_image(path):
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def image_folder(root):
    """One sub-folder per class (sorted names are the classes), images read lazily."""
    root = Path(root)
    if not root.is_dir():
        raise GardenError(f"data folder {root} does not exist")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise GardenError(f"data folder {root} has no class folders (expected one sub-folder per class)")
    paths, targets = [], []
    for index, folder in enumerate(folders):
        files = sorted(p for p in folder.iterdir() if is_image(p))
        if not files:
            raise GardenError(f"class folder {folder} has no images")
        paths += files
        targets += [index] * len(files)
    if len(folders) < 2:
        raise GardenError(f"data folder {root} has only one class folder ({folders[0].name}); need two or more")
    return FileExamples(paths, targets, [f.name for f in folders], read_image, name=root.name)


def find_cifar10(root):
    """The folder holding the CIFAR-10 pickles: ``root`` itself or ``root/cifar-10-batches-py``."""
    root = Path(root)
    for candidate in (root, root / "cifar-10-batches-py"):
        if (candidate / "batches.meta").is_file() and (candidate / "test_batch").is_file():
            return candidate
    return None


def cifar10(root, split="train"):
    """CIFAR-10 from the python-pickle layout at ``root``; ``split`` is "train" or "test"."""
    if split not in ("train", "test"):
        raise GardenError(f"cifar10: split must be 'train' or 'test', got {split!r}")
    folder = find_cifar10(root)
    if folder is None:
        raise GardenError(f"{root} is not a CIFAR-10 python folder (no batches.meta and test_batch)")
    names = [n.decode() if isinstance(n, bytes) else n for n in _unpickle(folder / "batches.meta")[b"label_names"]]
    images, labels = [], []
    for batch in CIFAR_TRAIN if split == "train" else CIFAR_TEST:
        path = folder / batch
        if not path.is_file():
            raise GardenError(f"CIFAR-10 file {path} is missing")
        content = _unpickle(path)
        images.append(np.asarray(content[b"data"], dtype="uint8").reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.append(np.asarray(content[b"labels"], dtype="int64"))
    return ArrayExamples(np.concatenate(images), np.concatenate(labels), names, name=f"cifar10-{split}")


def _unpickle(path):
    try:
        with open(path, "rb") as handle:
            content = pickle.load(handle, encoding="bytes")
    except (OSError, pickle.UnpicklingError, EOFError, ValueError) as error:
        raise GardenError(f"cannot read CIFAR-10 file {path}: {error}") from None
    if not isinstance(content, dict):
        raise GardenError(f"cannot read CIFAR-10 file {path}: not a pickled dict")
    return {k.encode() if isinstance(k, str) else k: v for k, v in content.items()}
