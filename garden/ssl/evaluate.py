"""The two-stage protocol: how good is a pre-trained encoder once labels arrive?

- ``linear_probe``: a logistic regression on frozen, standardised features (the "linear
  evaluation" of Zhang et al., 2016, and of every method since), trained on all training labels.
- ``knn_accuracy``: a weighted k-nearest-neighbour vote on cosine similarity, each neighbour
  weighted by ``exp(s / T)`` (Wu, Xiong, Yu & Lin, "Unsupervised Feature Learning via
  Non-Parametric Instance Discrimination", CVPR 2018, Sec. 3.4); no training at all.
- ``finetune``: the encoder and a new linear classifier trained end to end on a fraction of the
  labels (``label_subset``: ``0.01``, ``0.1`` or ``N`` per class); ``supervised_baseline`` runs the
  same from a random initialisation, so the gain of pre-training is the difference.
"""

import math
import warnings

import keras
import numpy as np
from keras import layers

from garden.console import keras_epochs, stage
from garden.errors import GardenError


def recalibrate_batch_norm(model, images, count=512, seed=0):
    """Set every batch norm's moving statistics to those of ``count`` of ``images`` (no labels used).

    Keras's moving averages (momentum 0.99) are still far from the data after the few hundred
    steps of a small run, and an encoder pre-trained on tiles or patches (Jigsaw, CPC) has never
    seen whole images; one pass in training mode with momentum 0 fixes both.
    """
    norms = [layer for layer in model._flatten_layers() if isinstance(layer, layers.BatchNormalization)]
    if not norms:
        return model
    chosen = np.random.default_rng(seed).permutation(len(images))[:count]
    momenta = [norm.momentum for norm in norms]
    try:
        for norm in norms:
            norm.momentum = 0.0
        model(images[np.sort(chosen)], training=True)
    finally:
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum
    return model


def extract_features(encoder, images, batch_size=256):
    """The encoder's feature vectors (N, D) of float images, in inference mode."""
    with stage(f"features of {len(images)} images"):
        return np.asarray(encoder.predict(images, batch_size=batch_size, verbose=0), dtype="float32")


def linear_probe(train_features, train_labels, test_features, test_labels, regularization=1.0, max_iterations=2000):
    """Accuracy of a multinomial logistic regression on standardised frozen features.

    ``max_iterations`` bounds L-BFGS; a benchmark of many encoders may stop it earlier (on photo_digits'
    10,000 images 300 iterations score within 0.3 points of 2,000 at a fifth of the time).
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train_features)
    classifier = LogisticRegression(C=regularization, max_iter=max_iterations)
    with warnings.catch_warnings():  # a bounded probe is expected to stop before full convergence
        warnings.simplefilter("ignore", ConvergenceWarning)
        classifier.fit(scaler.transform(train_features), train_labels)
    return float(classifier.score(scaler.transform(test_features), test_labels))


def knn_predict(train_features, train_labels, test_features, k=20, temperature=0.07, num_classes=None):
    """Class predictions of the temperature-weighted cosine k-NN of Wu et al. (2018)."""
    train = _normalize(train_features)
    test = _normalize(test_features)
    num_classes = num_classes or int(train_labels.max()) + 1
    k = min(k, len(train))
    similarity = test @ train.T
    neighbours = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
    weights = np.exp(np.take_along_axis(similarity, neighbours, axis=1) / temperature)
    votes = np.zeros((len(test), num_classes))
    np.add.at(votes, (np.arange(len(test))[:, None], train_labels[neighbours]), weights)
    return votes.argmax(axis=1)


def knn_accuracy(train_features, train_labels, test_features, test_labels, k=20, temperature=0.07):
    """Accuracy of ``knn_predict`` on the test features."""
    predictions = knn_predict(train_features, train_labels, test_features, k, temperature)
    return float(np.mean(predictions == test_labels))


def parse_labels(text):
    """``"0.1"`` -> 0.1 (a fraction), ``"10"`` or ``"10-per-class"`` -> 10 (examples per class)."""
    value = str(text).strip().lower().removesuffix("-per-class").removesuffix("/class")
    try:
        number = float(value)
    except ValueError:
        raise GardenError(f"--labels {text!r}: use a fraction such as 0.01 or 0.1, or N-per-class") from None
    if 0 < number < 1:
        return number
    if math.isfinite(number) and number >= 1 and number == int(number):
        return int(number)
    raise GardenError(f"--labels {text!r}: a fraction must be in (0, 1), a count a positive integer")


def label_subset(labels, amount, seed=0):
    """Indices of a class-stratified labelled subset: ``amount`` a fraction (at least one per class) or N per class."""
    if isinstance(amount, str):
        amount = parse_labels(amount)
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        count = max(1, int(round(amount * len(members)))) if isinstance(amount, float) else int(amount)
        chosen.extend(members[:count])
    return np.sort(np.asarray(chosen))


def classifier_on(encoder, num_classes, name="finetune"):
    """A copy of ``encoder`` (weights included) with a new linear classifier on top."""
    copy = keras.models.clone_model(encoder)
    copy.set_weights(encoder.get_weights())
    inputs = keras.Input(shape=encoder.input_shape[1:], name="images")
    outputs = layers.Dense(num_classes, name="classifier")(copy(inputs))
    return keras.Model(inputs, outputs, name=name)


def finetune(
    encoder,
    train_images,
    train_labels,
    test_images,
    test_labels,
    num_classes=None,
    epochs=30,
    batch_size=32,
    learning_rate=1e-3,
    seed=0,
):
    """Test accuracy after training ``encoder`` + a linear classifier end to end on the given labels."""
    keras.utils.set_random_seed(seed)
    num_classes = num_classes or int(max(train_labels.max(), test_labels.max())) + 1
    model = classifier_on(encoder, num_classes)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    shown = [keras_epochs(f"fine-tuning {model.name}", epochs)]
    model.fit(train_images, train_labels, epochs=epochs, batch_size=batch_size, callbacks=shown, verbose=0)
    recalibrate_batch_norm(model, train_images, seed=seed)
    return float(model.evaluate(test_images, test_labels, batch_size=256, verbose=0)[1])


def random_encoder(backbone, input_shape, seed=0):
    """A randomly initialised encoder of ``backbone``: the reference every method must beat."""
    from garden.ssl.methods import build_encoder

    keras.utils.set_random_seed(seed)
    return build_encoder(backbone, input_shape)


def supervised_baseline(backbone, train_images, train_labels, test_images, test_labels, **finetune_kwargs):
    """``finetune`` from a random initialisation: supervised learning on the same labels alone."""
    encoder = random_encoder(backbone, train_images.shape[1:], finetune_kwargs.get("seed", 0))
    return finetune(encoder, train_images, train_labels, test_images, test_labels, **finetune_kwargs)


def _normalize(x):
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
