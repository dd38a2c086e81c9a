"""Stage one: pre-train a registered SSL method on unlabeled images and keep its encoder.

>>> result = pretrain("simclr", images, epochs=10)
>>> result.encoder.save("encoder.keras"); result.history["loss"]
"""

import inspect
import time
from dataclasses import dataclass, field

import keras
import numpy as np

from garden.errors import GardenError
from garden.ssl.evaluate import recalibrate_batch_norm
from garden.train.optim import build_optimizer


@dataclass
class PretrainResult:
    method: str
    model: object
    encoder: object
    history: dict
    seconds: float
    arguments: dict = field(default_factory=dict)


class ShuffledBatches(keras.utils.PyDataset):
    """Unlabeled images in shuffled full batches (the last partial batch is dropped each epoch).

    Contrastive and correlation losses need whole batches: a batch of one has no negatives and no
    batch statistics.
    """

    def __init__(self, images, batch_size, seed=0, **kwargs):
        super().__init__(**kwargs)
        if len(images) < batch_size:
            raise GardenError(f"{len(images)} images are fewer than one batch of {batch_size}")
        self.images, self.batch_size = images, batch_size
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(images))

    def __len__(self):
        return len(self.images) // self.batch_size

    def __getitem__(self, index):
        return self.images[self.order[index * self.batch_size : (index + 1) * self.batch_size]]

    def on_epoch_end(self):
        self.order = self.rng.permutation(len(self.images))


def pretext_images(method, images):
    """The images a method pre-trains on: colorization gets gray images painted by stroke orientation."""
    from garden.ssl.data import colour_by_orientation, is_gray

    if method == "colorization" and is_gray(images):
        return colour_by_orientation(images)
    return images


def pretrain(
    method, images, *, epochs=10, batch_size=128, learning_rate=1e-3, weight_decay=1e-4, seed=0, verbose=0, **arguments
):
    """Build ``method`` for ``images``' shape, train it ``epochs`` with AdamW, return a ``PretrainResult``.

    The encoder's batch-norm statistics are then set from the images (``recalibrate_batch_norm``).

    ``arguments`` go to the method's builder (``backbone=``, ``temperature=``, ``views=``...);
    ``total_steps`` of a momentum schedule is set to the length of this run.
    """
    from garden.registry import create_model, get_entry

    entry = get_entry(method)
    if entry.task != "ssl":
        raise GardenError(f"{method!r} is a {entry.task} model, not a self-supervised method")
    keras.utils.set_random_seed(seed)
    images = pretext_images(method, np.asarray(images, dtype="float32"))
    batch_size = min(batch_size, len(images))
    batches = ShuffledBatches(images, batch_size, seed)
    if "total_steps" in inspect.signature(entry.builder).parameters:
        arguments.setdefault("total_steps", max(1, epochs * len(batches)))
    try:
        model = create_model(method, input_shape=images.shape[1:], seed=seed, **arguments)
    except ValueError as error:  # a builder argument out of range
        raise GardenError(f"cannot build {method}: {str(error).splitlines()[0]}") from None
    model.compile(optimizer=keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay))
    build_optimizer(model)
    start = time.perf_counter()
    history = model.fit(batches, epochs=epochs, verbose=verbose)
    seconds = time.perf_counter() - start
    recalibrate_batch_norm(model.encoder, images, seed=seed)
    return PretrainResult(method, model, model.encoder, dict(history.history), seconds, dict(arguments))


def plot_learning_curve(history, path, title):
    """Write the pre-training loss per epoch as a PNG (atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from garden._files import atomic_path

    losses = history["loss"]
    figure, axis = plt.subplots(figsize=(5, 3.2), dpi=100)
    axis.plot(range(1, len(losses) + 1), losses, marker="o", markersize=3)
    axis.set_xlabel("epoch")
    axis.set_ylabel("pre-training loss")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png")
    plt.close(figure)
