"""Datasets as indexable examples: the one contract shared by training, export calibration and demos.

``examples[i]`` is ``(image, target)``: ``image`` a ``uint8`` array ``H x W x C`` (C = 1 or 3, RGB),
``target`` an ``int`` class index (classification) or a ``uint8`` ``H x W`` mask of class indices
with 255 meaning "ignore" (segmentation). Files are read only when an example is asked for, so a
layout on disk works the same with three images or three million. Models take ``float32`` pixels
scaled to [0, 1] (``image / 255``); see :func:`to_model_input`.
"""

import numpy as np

IGNORE_LABEL = 255
TASKS = ("classification", "segmentation")


class Examples:
    """Base class: ``len``, indexing, ``task``, ``class_names`` and a ``name`` for reports."""

    task = "classification"
    class_names = ()
    name = "examples"

    def __len__(self):
        raise NotImplementedError

    def __getitem__(self, index):
        raise NotImplementedError

    @property
    def num_classes(self):
        return len(self.class_names)

    def __iter__(self):
        return (self[i] for i in range(len(self)))


class ArrayExamples(Examples):
    """Examples held in memory: ``images`` (N, H, W, C) uint8 and ``targets`` (N,) or (N, H, W)."""

    def __init__(self, images, targets, class_names, task="classification", name="arrays"):
        if len(images) != len(targets):
            raise ValueError(f"{name}: {len(images)} images but {len(targets)} targets")
        self.images, self.targets = images, targets
        self.class_names, self.task, self.name = tuple(class_names), task, name

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        target = self.targets[index]
        return self.images[index], int(target) if self.task == "classification" else target


class FileExamples(Examples):
    """Examples on disk: ``read(path) -> image`` and, for segmentation, ``read_mask(path) -> mask``."""

    def __init__(self, paths, targets, class_names, read, task="classification", read_mask=None, name="files"):
        if len(paths) != len(targets):
            raise ValueError(f"{name}: {len(paths)} images but {len(targets)} targets")
        self.paths, self.targets = list(paths), list(targets)
        self.class_names, self.task, self.name = tuple(class_names), task, name
        self.read, self.read_mask = read, read_mask

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        image = self.read(self.paths[index])
        target = self.targets[index]
        return image, (int(target) if self.task == "classification" else self.read_mask(target))


class Unlabelled(Examples):
    """Images without targets (``examples[i]`` is ``(image, None)``): photographs to calibrate on or predict.

    ``images`` is a uint8 array (N, H, W, C) or a list of paths that ``read(path)`` decodes.
    """

    task = None

    def __init__(self, images, read=None, name="images"):
        self.images, self.read, self.name = images, read, name

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        image = self.images[index]
        return (image if self.read is None else self.read(image)), None


class Subset(Examples):
    """A view on some indices of another ``Examples``."""

    def __init__(self, examples, indices, name=None):
        self.examples, self.indices = examples, np.asarray(indices)
        self.task, self.class_names = examples.task, examples.class_names
        self.name = name or examples.name

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, index):
        return self.examples[int(self.indices[index])]


def split(examples, held_out=0.2, seed=0):
    """``(train, held_out)`` subsets, shuffled by ``seed``; deterministic."""
    order = np.random.default_rng(seed).permutation(len(examples))
    cut = len(examples) - max(1, int(round(held_out * len(examples))))
    return Subset(examples, order[:cut], f"{examples.name}-train"), Subset(
        examples, order[cut:], f"{examples.name}-test"
    )


def to_model_input(images):
    """uint8 images -> float32 in [0, 1], the input convention of every garden model."""
    return np.asarray(images, dtype="float32") / 255.0
