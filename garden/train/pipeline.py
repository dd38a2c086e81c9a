"""The input pipeline: ``Examples`` -> batches of model input, on every Keras backend.

:class:`Batches` is a ``keras.utils.PyDataset``: NumPy batches built by OpenCV, so it runs where
TensorFlow is not installed (JAX- or PyTorch-only GPU machines). Examples are read only when their
batch is asked for, so a folder of three million images streams like one of three. The order and
the augmentation of epoch ``e`` depend only on ``(seed, e)``, so a resumed run sees the data a
never-interrupted run would have seen.

A file that cannot be decoded is skipped: its place in the batch goes to the next readable example
(so batches keep their size and a resumed run still sees the same data), it is counted and named
in one warning line an epoch, and more than ``UNREADABLE_SHARE`` of the files read stops the run.
``strict=True`` (``--strict-data``) stops at the first.
"""

import copy
import math
import threading

import cv2
import keras
import numpy as np

from garden.console import note
from garden.data.augment import Augment, augment_pair
from garden.data.base import to_model_input
from garden.errors import GardenError, UnreadableFile

UNREADABLE_SHARE = 0.1  # more undecodable files than this share of those read: the wrong folder, not a few bad files


class Batches(keras.utils.PyDataset):
    """Batches of ``(pixels in [0, 1], targets)`` at ``input_shape`` (height, width, channels).

    Targets are class indices, one-hot rows (``one_hot=True``, for label smoothing) or ``int32``
    masks (segmentation). ``training=True`` shuffles, augments and drops the last partial batch.
    """

    def __init__(
        self,
        examples,
        batch_size,
        input_shape,
        *,
        training=False,
        augment=Augment(),
        one_hot=False,
        seed=0,
        epoch=0,
        workers=1,
        drop_remainder=None,
        strict=False,
        shard=(0, 1),
    ):
        super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=max(2, 2 * workers))
        self.examples, self.batch_size = examples, int(batch_size)
        self.size, self.channels = tuple(input_shape[:2]), int(input_shape[2])
        self.training, self.augment, self.one_hot = training, augment, one_hot
        self.seed, self.epoch = seed, epoch
        self.drop_remainder = training if drop_remainder is None else drop_remainder
        self.error = None  # the first GardenError met while reading, for a clean message after fit
        self.strict, self.unreadable, self.reported, self.reads = strict, {}, 0, 0
        self.shard = shard  # (index, count): this process reads every count-th example of a batch
        self.lock = threading.Lock()
        if self.batch_size <= 0:
            raise GardenError(f"batch size must be positive, got {batch_size}")
        if len(examples) == 0:
            raise GardenError(f"data {examples.name} has no examples")
        if self.drop_remainder and self.batch_size > len(examples):
            raise GardenError(
                f"batch size {self.batch_size} is larger than the {len(examples)} training examples of {examples.name}"
            )

    def __len__(self):
        count = len(self.examples) / self.batch_size
        return math.floor(count) if self.drop_remainder else math.ceil(count)

    def order(self):
        """Example indices of the current epoch."""
        if not self.training:
            return np.arange(len(self.examples))
        return np.random.default_rng((self.seed, self.epoch)).permutation(len(self.examples))

    def on_epoch_end(self):
        if self.training:
            self.epoch += 1

    def __getitem__(self, index):
        try:
            return self._batch(index)
        except GardenError as error:
            self.error = self.error or error
            raise

    def _batch(self, index):
        process, processes = self.shard
        indices = self.order()[index * self.batch_size : (index + 1) * self.batch_size][process::processes]
        rng = np.random.default_rng((self.seed, self.epoch, index))
        augment = self.augment if self.training else Augment()
        images, targets = [], []
        for i in indices:
            image, target = self._example(int(i))
            image = self._channels(np.asarray(image))
            mask = np.asarray(target) if self.examples.task == "segmentation" else None
            image, mask = augment_pair(image, mask, rng, augment, self.size)
            images.append(image)
            targets.append(target if mask is None else mask)
        x = to_model_input(np.stack(images))
        if self.examples.task is None:  # unlabelled images (``garden predict``)
            return x, np.zeros(len(x), "int32")
        if self.examples.task == "segmentation":
            return x, np.stack(targets).astype("int32")
        y = np.asarray(targets, dtype="int32")
        if self.one_hot:
            y = np.eye(self.examples.num_classes, dtype="float32")[y]
        return x, y

    def whole(self):
        """The same batches in full, for a process that evaluates alone (a share is for a joint step)."""
        whole = copy.copy(self)
        whole.shard = (0, 1)
        return whole

    def _example(self, index):
        """Example ``index``, or the next readable one after it when its file cannot be decoded."""
        count = len(self.examples)
        for step in range(count):
            candidate = (index + step) % count
            if candidate in self.unreadable:
                continue
            try:
                example = self.examples[candidate]
            except UnreadableFile as error:
                if self.strict:
                    raise
                self._skip(candidate, error)
                continue
            with self.lock:
                self.reads += 1
            return example
        raise GardenError(f"no file of {self.examples.name} can be decoded")

    def _skip(self, index, error):
        with self.lock:
            self.unreadable[index] = error
            bad, read = len(self.unreadable), self.reads + len(self.unreadable)
        if read >= 20 and bad > UNREADABLE_SHARE * read:
            raise GardenError(
                f"{bad} of {read} files of {self.examples.name} read so far cannot be decoded "
                f"(more than {UNREADABLE_SHARE:.0%}; first: {self._names(3)}): is this the right folder?"
            )

    def report_unreadable(self):
        """One warning line for files skipped since the last report (none: nothing printed)."""
        with self.lock:
            new, total = len(self.unreadable) - self.reported, len(self.unreadable)
            self.reported = total
        if new:
            note(
                f"warning: skipped {new} file(s) of {self.examples.name} that cannot be decoded ({self._names(3)}), "
                f"{total} in all; --strict-data stops at the first"
            )

    def _names(self, count):
        errors = list(self.unreadable.values())
        names = ", ".join(str(error.path) for error in errors[:count])
        return names + (f" and {len(errors) - count} more" if len(errors) > count else "")

    def _channels(self, image):
        if image.ndim == 2:
            image = image[..., None]
        have = image.shape[-1]
        if have == self.channels:
            return image
        if have == 1 and self.channels == 3:
            return np.repeat(image, 3, axis=-1)
        if have == 3 and self.channels == 1:
            return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[..., None]
        raise GardenError(
            f"cannot feed {have}-channel images of {self.examples.name} to a {self.channels}-channel model"
        )


class ReportUnreadable(keras.callbacks.Callback):
    """After each epoch, one warning line per ``Batches`` that skipped new undecodable files."""

    def __init__(self, *batches):
        super().__init__()
        self.batches = batches

    def on_epoch_end(self, epoch, logs=None):
        for batches in self.batches:
            batches.report_unreadable()


def predictions(model, batches):
    """``(predicted classes, targets)`` over ``batches``: class per image or per pixel."""
    predicted, truth = [], []
    for index in range(len(batches)):
        x, y = batches[index]
        logits = keras.ops.convert_to_numpy(model(x, training=False))  # plain call: right under any strategy
        predicted.append(np.argmax(logits, axis=-1))
        truth.append(np.argmax(y, axis=-1) if y.ndim == 2 and batches.one_hot else y)
    return np.concatenate(predicted), np.concatenate(truth)
