"""Train U-Net and DeepLabv3+ (MobileNetV2) on the embedded digits-on-photographs dataset; print
held-out mean IoU, pixel accuracy and training time.

Target (issue 4): mean IoU >= 0.85 for both, each in under 10 minutes on a 2-core CPU.

    PYTHONPATH=. python bench/segmentation_train.py                 # both models
    PYTHONPATH=. python bench/segmentation_train.py --models unet --budget 300
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import garden  # noqa: E402
from garden.data import to_model_input  # noqa: E402
from garden.data.embedded import CLASS_NAMES, embedded_segmentation  # noqa: E402
from garden.segmentation.losses import CrossEntropyDice  # noqa: E402
from garden.segmentation.metrics import evaluate  # noqa: E402

# Each model's architecture arguments and optimiser settings for this small task.
# DeepLabv3+ trains at 128 px: its decoder predicts at stride 4, and at 64 px even the ground truth
# pooled to stride 4 and upsampled back scores only 0.85 mean IoU (0.95 at 128 px) on these digits.
CONFIGS = {
    "unet": dict(
        size=64, images=3000, epochs=12,
        model=dict(filters=(16, 32, 64, 128, 256)),
        learning_rate=3e-3,
    ),
    "deeplabv3plus": dict(
        size=128, images=2000, epochs=10,
        model=dict(backbone="mobilenet_v2", output_stride=16, aspp_filters=128, decoder_filters=128),
        learning_rate=3e-3,
    ),
}


class TimeBudget(keras.callbacks.Callback):
    """Stop training at the end of the first epoch that finishes past ``seconds``."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds, self.start = seconds, None

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if time.perf_counter() - self.start > self.seconds:
            self.model.stop_training = True


def arrays(examples):
    return to_model_input(examples.images), examples.targets.astype("int32")


def train_one(name, args):
    config = CONFIGS[name]
    size = args.size or config["size"]
    images = args.train or config["images"]
    epochs = args.epochs or config["epochs"]
    train = arrays(embedded_segmentation(images, size, seed=args.seed))
    test = arrays(embedded_segmentation(args.test, size, seed=args.seed + 1000))
    keras.utils.set_random_seed(args.seed)
    model = garden.create_model(name, num_classes=len(CLASS_NAMES), input_shape=(size, size, 3), **config["model"])
    steps = epochs * int(np.ceil(images / args.batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(config["learning_rate"], steps, alpha=0.02)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=CrossEntropyDice())
    print(f"{name}: {images} training / {args.test} held-out images of {size}x{size}, load average "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    start = time.perf_counter()
    history = model.fit(
        train[0], train[1], batch_size=args.batch_size, epochs=epochs, shuffle=True,
        callbacks=[TimeBudget(args.budget)], verbose=2 if args.verbose else 0,
    )
    seconds = time.perf_counter() - start
    scores = evaluate(model, test[0], test[1], len(CLASS_NAMES))
    if args.save:
        model.save(f"{args.save}/{name}.keras")
    return {"model": name, "size": size, "params": model.count_params(), "epochs": len(history.history["loss"]),
            "train_s": seconds, "load": os.getloadavg()[0], **scores}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--size", type=int, help="image size (default: per model, see CONFIGS)")
    parser.add_argument("--train", type=int, help="training images (default: per model)")
    parser.add_argument("--test", type=int, default=300, help="held-out images (generated from another seed)")
    parser.add_argument("--epochs", type=int, help="epochs (default: per model)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--budget", type=float, default=540, help="stop after the epoch that passes this many seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", metavar="DIR", help="save each trained model as DIR/NAME.keras")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)

    print(f"embedded digits-on-photographs, {len(CLASS_NAMES)} classes; {os.cpu_count()} CPUs shared, "
          f"load average {os.getloadavg()[0]:.1f} at start", flush=True)
    rows = []
    for name in args.models:
        row = train_one(name, args)
        rows.append(row)
        print(f"{name}: mean IoU {row['mean_iou']:.4f} after {row['epochs']} epochs in {row['train_s']:.0f} s", flush=True)
    print()
    print("| model | input | params | epochs | training time (s) | load avg at end | held-out mean IoU | pixel accuracy | target |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ok = r["mean_iou"] >= 0.85 and r["train_s"] < 600
        print(f"| {r['model']} | {r['size']}x{r['size']} | {r['params']:,} | {r['epochs']} | {r['train_s']:.0f} "
              f"| {r['load']:.1f} | {r['mean_iou']:.4f} | {r['pixel_accuracy']:.4f} | {'met' if ok else 'missed'} |")
    print()
    print("per-class IoU (" + ", ".join(CLASS_NAMES) + "):")
    for r in rows:
        print(f"  {r['model']}: " + " ".join(f"{v:.3f}" for v in r["iou"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
