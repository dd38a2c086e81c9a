"""``garden train MODEL --data SOURCE``: one command from data to a trained ``.keras`` file.

``garden predict`` runs a run folder, a ``.keras`` file or a registered model on images;
``garden evaluate`` gives its metrics on a data source.
"""

import argparse
import os
import subprocess
import sys

from garden.cli import add_model_options, model_options
from garden.console import note, print_json
from garden.errors import UsageError
from garden.options import fraction, non_negative_float, number, positive_float, positive_int

SEED = number(int, 0, 2**32 - 1)

BACKENDS = ("tensorflow", "jax", "torch")

# --progress: Keras's verbose levels
KERAS_PROGRESS = {"bar": 1, "epoch": 2, "none": 0}


COMMANDS = {
    "train": "train a model on a data source; writes a run folder",
    "predict": "run a model on images: top classes, or segmentation overlays",
    "evaluate": "a model's metrics on a data source (accuracy, mean IoU)",
}


def add_commands(commands):
    add_train(commands)
    add_predict(commands)
    add_evaluate(commands)


def add_predict(commands):
    p = commands.add_parser("predict", help=COMMANDS["predict"])
    p.add_argument("model", help="a run folder, a .keras file or a registered model name")
    p.add_argument("images", help="an image, a folder of images, a .npy array or any data source")
    p.add_argument("--out", required=True, help="folder for predictions.json and the overlays (created)")
    p.add_argument("--top-k", type=positive_int, default=3, help="classes listed per image (classifiers)")
    add_model_options(p, weights=True)
    p.set_defaults(run=run_predict)


def add_evaluate(commands):
    p = commands.add_parser("evaluate", help=COMMANDS["evaluate"])
    p.add_argument("model", help="a run folder, a .keras file or a registered model name")
    p.add_argument(
        "--data", required=True, help="labelled data (digits, embedded, a folder...): its held-out part, as train's"
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    add_model_options(p, weights=True)
    p.set_defaults(run=run_evaluate)


def run_predict(args):
    from garden.data.sources import load_images
    from garden.train import inference

    model, names, _ = inference.open_model(args.model, model_options(args))
    images = load_images(args.images)
    results = inference.predict(model, images, names, args.top_k)
    rows = inference.write_predictions(results, images, args.out, names, int(model.output_shape[-1]))
    for row in rows:
        if "top" in row:
            print(f"{row['image']}: " + ", ".join(f"{t['class']} {t['probability']:.3f}" for t in row["top"]))
        else:
            areas = sorted(row["areas"].items(), key=lambda item: -item[1])
            print(f"{row['image']}: {row['overlay']} (" + ", ".join(f"{c} {a:.1%}" for c, a in areas[:3]) + ")")
    note(f"wrote {len(rows)} predictions to {args.out}")


def run_evaluate(args):
    from garden.data.sources import load_splits
    from garden.train import inference

    model, _, name = inference.open_model(args.model, model_options(args))
    _, held_out = load_splits(args.data, inference.task_of(model))  # the part garden train held out
    metrics = inference.evaluate(model, held_out)
    if args.json:
        print_json({"model": name, "data": args.data, **metrics})
        return
    print("| model | data | held-out examples | " + " | ".join(k for k in metrics if k != "examples") + " |")
    print("|---|---|---|" + "---|" * (len(metrics) - 1))
    values = " | ".join(f"{v:.4f}" for k, v in metrics.items() if k != "examples")
    print(f"| {name} | {args.data} | {metrics['examples']} | {values} |")


def add_train(commands):
    from garden.train.distribute import STRATEGIES
    from garden.train.optim import OPTIMIZERS, SCHEDULES
    from garden.train.trainer import PRECISIONS

    p = commands.add_parser("train", help=COMMANDS["train"])
    p.add_argument("model", help="a registered classification or segmentation model (see `garden models`)")
    p.add_argument("--data", required=True, help="digits, embedded, cifar10:PATH, or a data folder (layout detected)")
    p.add_argument("--out", help="run folder (default runs/MODEL-DATA-TIME)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last finished epoch")
    p.add_argument("--epochs", type=positive_int)
    p.add_argument("--batch-size", type=positive_int, help="global batch size (split over replicas)")
    p.add_argument("--lr", type=positive_float, help="peak learning rate")
    p.add_argument("--optimizer", choices=OPTIMIZERS)
    p.add_argument("--schedule", choices=SCHEDULES)
    p.add_argument("--warmup", type=non_negative_float, help="epochs of linear learning-rate warm-up")
    p.add_argument("--weight-decay", type=non_negative_float)
    p.add_argument("--label-smoothing", type=number(float, 0, 1, high_inclusive=False), help="0 to below 1")
    p.add_argument("--augment", help="auto, none, or e.g. flip,crop=0.5,color=0.2,distort=10")
    p.add_argument("--input-size", help="N, HxW or HxWxC (default: the model's own)")
    p.add_argument("--held-out", type=fraction, help="fraction held out when the source has no test split (0.2)")
    p.add_argument("--precision", choices=[p for p in PRECISIONS if p != "float32"])
    p.add_argument("--backend", choices=BACKENDS, help="Keras backend (default: KERAS_BACKEND)")
    p.add_argument("--strategy", choices=STRATEGIES)
    p.add_argument(
        "--cpu-replicas", type=positive_int, help="with --strategy mirrored and no GPU: split the CPU into N devices"
    )
    p.add_argument("--workers", type=positive_int, help="threads preparing batches (1)")
    p.add_argument("--seed", type=SEED)
    p.add_argument("--tensorboard", action=argparse.BooleanOptionalAction, default=None, help="write TensorBoard logs")
    add_model_options(p, weights=True)
    p.add_argument(
        "--strict-data", action="store_true", help="stop at the first file that cannot be decoded (default: skip it)"
    )
    p.add_argument(
        "--progress", choices=KERAS_PROGRESS, help="Keras's progress: a bar, one line an epoch, or none (default: bar)"
    )
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(run=run_train)


def run_train(args):
    import keras

    if args.backend and args.backend != keras.backend.backend():
        return _rerun_with_backend(args)
    if args.strategy == "mirrored" and args.cpu_replicas:
        _split_cpu_early(args.cpu_replicas)
    from garden.options import parse_size
    from garden.train import fit

    architecture = model_options(args)  # checked before any data is read
    options = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "optimizer": args.optimizer,
        "schedule": args.schedule,
        "warmup": args.warmup,
        "weight_decay": args.weight_decay,
        "label_smoothing": args.label_smoothing,
        "augment": args.augment,
        "precision": args.precision,
        "strategy": args.strategy,
        "held_out": args.held_out,
        "seed": args.seed,
        "workers": args.workers,
        "cpu_replicas": args.cpu_replicas,
        "tensorboard": args.tensorboard,
        "model_options": architecture or None,
        "strict_data": args.strict_data or None,
    }
    if args.input_size:
        options["input_size"] = parse_size(args.input_size, _default_channels(args.model))
    summary = fit(
        args.model,
        args.data,
        out=args.out,
        resume=args.resume,
        verbose=0 if args.quiet or args.json else KERAS_PROGRESS.get(args.progress, "auto"),  # stdout: JSON only
        **options,
    )
    if args.json:
        return print_json(summary)
    metrics = ", ".join(f"{k} {v:.4f}" for k, v in summary["metrics"].items())
    print(
        f"{summary['model']} on {summary['data']}: {summary['epochs']} epochs in {summary['wall_s']:.1f} s; "
        f"held-out {metrics}; run folder {summary['out']}"
    )


def _default_channels(name):
    from garden.registry import get_entry

    shape = get_entry(name).default_input_shape
    return shape[-1] if shape else 3


def _rerun_with_backend(args):
    """Keras picks its backend once, at import: run this command again in a fresh interpreter."""
    argv = list(getattr(args, "argv", None) or sys.argv[1:])
    environment = {**os.environ, "KERAS_BACKEND": args.backend}
    command = [sys.executable, "-m", "garden", *argv]
    if getattr(args, "from_command_line", False):
        from garden.console import release_terminal

        sys.stdout.flush()
        sys.stderr.flush()
        release_terminal()
        os.execve(sys.executable, command, environment)  # same process id: signals reach the training
    code = subprocess.call(command, env=environment)
    if code:
        raise UsageError(f"training under the {args.backend} backend failed (exit code {code})")


def _split_cpu_early(count):
    """Logical CPU devices must exist before TensorFlow runs anything: do it first thing."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError as error:
        raise UsageError(f"cannot split the CPU into {count} devices: {error}") from None
