"""The ten self-supervised methods on photo_digits (colour digits on photographs, MNIST-M-like).

Every method pre-trains on the 10,000 training images (labels unused); its encoder is then read on
the 2,000 test images (other digit samples) by a linear probe and a k-NN at 100%, 10% and 1% of the
training labels (the 10% and 1% columns averaged over three stratified draws), and fine-tuned at
1% and 10% (first draw). Beside them: both random-init floors (batch norms as initialised, and
with their statistics from the images), and supervised training from scratch on the same labels.
The margin table marks each cell clear ("ok") when the method's mean beats the reference by more
than twice the larger of the two rows' seed standard deviations.

Backbone: ``small_cnn`` (3x3 conv-BN-ReLU stages of 32-256 channels, 15 M multiply-adds per image),
not the CIFAR-stem ResNet-18 (556 M): at 37x the cost, ten methods and three seeds could not
pre-train for more than a fraction of an epoch each within the hour this benchmark is given on a
2-core CPU.

    PYTHONPATH=. python bench/ssl_photo_digits.py --seeds 3 --plot curves.png   # the whole table
    PYTHONPATH=. python bench/ssl_photo_digits.py --methods rotnet simclr --epochs-scale 0.5
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")

import garden  # noqa: E402

keras = garden.import_keras()  # before anything else imports it: no TensorFlow start-up lines
from garden.ssl.benchmark import Protocol, command_line  # noqa: E402
from garden.ssl.data import load_split  # noqa: E402

BACKBONE = "small_cnn"
# Digits are not mirror-symmetric and small crops lose the digit; the colour jitter stays, as a
# digit's colour and its background's are drawn at random and say nothing of the class.
PHOTO_VIEWS = {"flip": False, "crop_scale": (0.3, 1.0)}
# Per method: epochs over the 10,000 images (batch 128), learning rate (default LEARNING_RATE) and
# builder arguments. The epochs share out the hour: a two-view method's epoch costs about twice
# RotNet's one-image-four-rotations epoch less, a Jigsaw epoch a sixth of it.
SETTINGS = {
    "rotnet": dict(epochs=3, crop_scale=(0.5, 1.0)),
    # At 32 px the 3x3 grid's tiles are 8 px (gap 0.2); reassembled into one image (Carlucci et al., 2019).
    "jigsaw": dict(epochs=6, crop_scale=(0.3, 1.0), learning_rate=5e-4, reassemble=True),
    # Real colour now: L predicts ab as a distribution over the in-gamut bins, rebalanced (Zhang et al.).
    "colorization": dict(epochs=5, crop_scale=(0.5, 1.0), learning_rate=5e-4),
    "cpc": dict(epochs=3, temperature=0.1, views={"flip": False, "crop_scale": (0.5, 1.0)}),
    "simclr": dict(epochs=3, temperature=0.2, views=PHOTO_VIEWS),
    "moco_v2": dict(epochs=3, learning_rate=1e-3, views=PHOTO_VIEWS),
    "byol": dict(epochs=4, views={**PHOTO_VIEWS, "solarize_probability": 0.0}),
    "barlow_twins": dict(epochs=3, views=PHOTO_VIEWS),
    "simsiam": dict(epochs=3, learning_rate=1e-3, views=PHOTO_VIEWS),
    "swav": dict(epochs=3, views=PHOTO_VIEWS),
}
LEARNING_RATE = 2e-3
BATCH_SIZE = 128
PROTOCOL = Protocol(
    fractions=(1.0, 0.1, 0.01),
    finetune_fractions=(0.01, 0.1),
    draws=3,
    finetune=dict(epochs=20, batch_size=32, learning_rate=1e-3),
    probe_iterations=300,
)


def load_photo_digits(args):
    return (*load_split("photo_digits", size=32, limit=args.limit)[:4], "photo_digits")


if __name__ == "__main__":
    settings = {method: {"batch_size": BATCH_SIZE, **options} for method, options in SETTINGS.items()}
    command_line(
        None,
        doc=__doc__,
        settings=settings,
        protocol=PROTOCOL,
        load=load_photo_digits,
        backbone=BACKBONE,
        learning_rate=LEARNING_RATE,
    )
