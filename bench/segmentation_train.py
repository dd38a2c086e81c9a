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

import garden  # noqa: E402

keras = garden.import_keras()  # before anything else imports it: no TensorFlow start-up lines
import numpy as np  # noqa: E402

from garden.data import to_model_input  # noqa: E402
from garden.data.embedded import CLASS_NAMES, embedded_segmentation  # noqa: E402
from garden.segmentation.losses import CrossEntropyDice  # noqa: E402
from garden.segmentation.metrics import evaluate  # noqa: E402

# Each model's architecture arguments and optimiser settings for this small task.
# DeepLabv3+ trains at 80 px: its decoder predicts at stride 4, and the ground truth itself, pooled to
# stride 4 and upsampled back, scores 0.90 mean IoU at 64 px, 0.93 at 80 px and 0.95 at 96 px.
CONFIGS = {
    "unet": dict(
        size=64,
        images=3000,
        model=dict(filters=(8, 16, 32, 64, 128)),
        learning_rate=3e-3,
    ),
    "deeplabv3plus": dict(
        size=80,
        images=3000,
        model=dict(
            backbone="mobilenet_v2",
            backbone_kwargs={"alpha": 0.35},
            output_stride=16,
            aspp_filters=96,
            decoder_filters=96,
        ),
        learning_rate=3e-3,
    ),
}


class TimeBudget(keras.callbacks.Callback):
    """Cosine learning-rate decay over wall-clock time, stopping when ``seconds`` have passed.

    The machine is shared, so a schedule over a fixed number of steps would end early or late;
    this one always decays from ``learning_rate`` to ``final`` x that within the budget.
    """

    def __init__(self, seconds, learning_rate, final=0.02):
        super().__init__()
        self.seconds, self.learning_rate, self.final = seconds, learning_rate, final
        self.start, self.steps = None, 0

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_begin(self, batch, logs=None):
        progress = min(1.0, (time.perf_counter() - self.start) / self.seconds)
        cosine = 0.5 * (1 + np.cos(np.pi * progress))
        self.model.optimizer.learning_rate.assign(self.learning_rate * (self.final + (1 - self.final) * cosine))

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if time.perf_counter() - self.start >= self.seconds:
            self.model.stop_training = True


def arrays(examples):
    return to_model_input(examples.images), examples.targets.astype("int32")


def train_one(name, args):
    config = CONFIGS[name]
    size = args.size or config["size"]
    images = args.train or config["images"]
    train = arrays(embedded_segmentation(images, size, seed=args.seed))
    test = arrays(embedded_segmentation(args.test, size, seed=args.seed + 1000))
    keras.utils.set_random_seed(args.seed)
    model = garden.create_model(name, num_classes=len(CLASS_NAMES), input_shape=(size, size, 3), **config["model"])
    model.compile(optimizer=keras.optimizers.Adam(config["learning_rate"]), loss=CrossEntropyDice())
    budget = TimeBudget(args.budget, config["learning_rate"])
    print(
        f"{name}: {images} training / {args.test} held-out images of {size}x{size}, load average "
        f"{os.getloadavg()[0]:.1f}",
        flush=True,
    )
    start, cpu_start = time.perf_counter(), time.process_time()
    model.fit(
        train[0],
        train[1],
        batch_size=args.batch_size,
        epochs=1000,
        shuffle=True,
        callbacks=[budget],
        verbose=2 if args.verbose else 0,
    )
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    scores = evaluate(model, test[0], test[1], len(CLASS_NAMES))
    if args.save:
        model.save(f"{args.save}/{name}.keras")
    return {
        "model": name,
        "size": size,
        "params": model.count_params(),
        "epochs": budget.steps * args.batch_size / images,
        "train_s": seconds,
        "cpu_s": cpu_seconds,
        "load": os.getloadavg()[0],
        **scores,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--size", type=int, help="image size (default: per model, see CONFIGS)")
    parser.add_argument("--train", type=int, help="training images (default: per model)")
    parser.add_argument("--test", type=int, default=300, help="held-out images (generated from another seed)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--budget", type=float, default=540, help="training time per model in seconds (default 540)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", metavar="DIR", help="save each trained model as DIR/NAME.keras")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)

    print(
        f"embedded digits-on-photographs, {len(CLASS_NAMES)} classes; {os.cpu_count()} CPUs shared, "
        f"load average {os.getloadavg()[0]:.1f} at start",
        flush=True,
    )
    rows = []
    for name in args.models:
        row = train_one(name, args)
        rows.append(row)
        print(
            f"{name}: mean IoU {row['mean_iou']:.4f} after {row['epochs']:.1f} epochs in {row['train_s']:.0f} s",
            flush=True,
        )
    print()
    print(
        "| model | input | params | epochs | training time (s) | process CPU time (s) | load avg at end "
        "| held-out mean IoU | pixel accuracy | target |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ok = r["mean_iou"] >= 0.85 and r["train_s"] < 600
        print(
            f"| {r['model']} | {r['size']}x{r['size']} | {r['params']:,} | {r['epochs']:.1f} | {r['train_s']:.0f} "
            f"| {r['cpu_s']:.0f} | {r['load']:.1f} | {r['mean_iou']:.4f} | {r['pixel_accuracy']:.4f} "
            f"| {'met' if ok else 'missed'} |"
        )
    print()
    print("per-class IoU (" + ", ".join(CLASS_NAMES) + "):")
    for r in rows:
        print(f"  {r['model']}: " + " ".join(f"{v:.3f}" for v in r["iou"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
