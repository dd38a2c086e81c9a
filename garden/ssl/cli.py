"""``garden ssl`` (pre-train a method, keep its encoder) and ``garden ssl-eval`` (probe it with labels).

For example::

    garden ssl simclr --backbone small_cnn --data digits --epochs 20 --out runs/simclr
    garden ssl rotnet --option crop_scale=0.5,1.0 --out runs/rotnet
    garden ssl-eval runs/simclr --protocol linear
    garden ssl-eval runs/simclr --protocol finetune --labels 0.1
"""

import ast
import json
from pathlib import Path

from garden.console import note, print_json
from garden.errors import GardenError, UsageError
from garden.options import number, positive_float, positive_int

PROTOCOLS = ("linear", "knn", "finetune")


COMMANDS = {
    "ssl": "pre-train a self-supervised method on unlabeled images",
    "ssl-eval": "evaluate a pre-trained encoder: linear probe, k-NN or fine-tuning",
}


def add_commands(commands):
    p = commands.add_parser("ssl", help=COMMANDS["ssl"])
    p.add_argument("method", help="a registered ssl method (see `garden models --task ssl`)")
    p.add_argument("--backbone", default="small_cnn", help="a registered classification model (default small_cnn)")
    p.add_argument("--data", default="digits", help="data source: digits, embedded, cifar10:PATH or a folder")
    p.add_argument("--epochs", type=positive_int, default=10)
    p.add_argument("--out", required=True, help="folder for encoder.keras, history.json, learning_curve.png")
    p.add_argument("--size", type=positive_int, default=32, help="image side in pixels (default 32)")
    p.add_argument("--batch-size", type=positive_int, default=128)
    p.add_argument("--learning-rate", type=positive_float, default=1e-3)
    p.add_argument("--limit", type=positive_int, help="use only the first N images of the source (quick runs)")
    p.add_argument("--seed", type=number(int, 0, 2**32 - 1), default=0)
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        type=method_option,
        help="a builder argument of the method, e.g. temperature=0.2 or crop_scale=0.5,1.0 (repeatable)",
    )
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(run=run_ssl)

    p = commands.add_parser("ssl-eval", help=COMMANDS["ssl-eval"])
    p.add_argument("run_dir", metavar="DIR", help="a folder written by `garden ssl`")
    p.add_argument("--protocol", choices=PROTOCOLS, default="linear")
    p.add_argument("--labels", default="0.1", help="fine-tuning labels: a fraction (0.01, 0.1) or N-per-class")
    p.add_argument("--data", help="data source (default: the one it was pre-trained on)")
    p.add_argument("--epochs", type=positive_int, default=30, help="fine-tuning epochs (default 30)")
    p.add_argument("--k", type=positive_int, default=20, help="neighbours of the k-NN vote (default 20)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(run=run_ssl_eval)


def method_option(text):
    """``"name=value"`` -> ``(name, value)``, the value read as a Python literal where it is one."""
    name, equals, value = text.partition("=")
    value = value.strip()
    if not equals or not name.strip().isidentifier():
        raise UsageError(f"--option takes NAME=VALUE (e.g. crop_scale=0.5,1.0), got {text!r}")
    try:
        value = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        value = {"true": True, "false": False, "none": None}.get(value.lower(), value)
    return name.strip(), value


def run_ssl(args):
    from garden._files import atomic_path, write_text
    from garden.registry import get_entry, list_models
    from garden.ssl.data import load_split
    from garden.ssl.pretrain import plot_learning_curve, pretrain

    if args.method not in list_models("ssl"):
        get_entry(args.method)  # an unknown name raises with close matches
        raise UsageError(
            f"{args.method!r} is not a self-supervised method; choose one of {', '.join(list_models('ssl'))}"
        )
    check_out(Path(args.out))
    options = dict(args.option)
    images, _, _, _, _ = load_split(args.data, args.size, args.limit, seed=args.seed)
    note(f"pre-training {args.method} on {len(images)} unlabeled {args.data} images")
    result = pretrain(
        args.method,
        images,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        backbone=args.backbone,
        verbose=2,
        **options,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "encoder.keras") as temporary:
        result.encoder.save(temporary)
    history = {key: [float(v) for v in values] for key, values in result.history.items()}
    write_text(out / "history.json", json.dumps(history, indent=1) + "\n")
    plot_learning_curve(history, out / "learning_curve.png", f"{args.method} on {args.data} ({args.backbone})")
    record = {
        "method": args.method,
        "backbone": args.backbone,
        "data": args.data,
        "size": args.size,
        "limit": args.limit,
        "seed": args.seed,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "options": options,
        "seconds": round(result.seconds, 2),
        "images": len(images),
    }
    write_text(out / "ssl.json", json.dumps(record, indent=1) + "\n")
    if args.json:
        return print_json({**record, "final_loss": history["loss"][-1], "out": str(out)})
    print(
        f"{args.method}: final loss {history['loss'][-1]:.4f} after {result.seconds:.1f} s; wrote {out}/encoder.keras"
    )


def check_out(out):
    """Refuse, before pre-training, an ``--out`` that could not take the outputs (it only ever gains files)."""
    import os

    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a folder")
    folder = next(path for path in (out.absolute(), *out.absolute().parents) if path.exists())
    if not folder.is_dir():
        raise UsageError(f"--out {out}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OSError(f"cannot write {out}: folder {folder} is not writable; nothing was written")


def load_run(run_dir):
    """The record and the encoder of a ``garden ssl`` output folder."""
    from garden.saving import load_model

    folder = Path(run_dir)
    record_path, encoder_path = folder / "ssl.json", folder / "encoder.keras"
    for path in (record_path, encoder_path):
        if not path.is_file():
            raise GardenError(f"{path} not found: is {folder} a folder written by `garden ssl`?")
    try:
        record = json.loads(record_path.read_text())
    except json.JSONDecodeError as error:
        raise GardenError(f"{record_path} is not valid JSON: {error}") from None
    try:
        encoder = load_model(encoder_path)
    except Exception as error:  # noqa: BLE001  (any failure to read is the file's fault)
        raise GardenError(f"cannot load {encoder_path}: {str(error).splitlines()[0]}") from None
    return record, encoder


def run_ssl_eval(args):
    from garden._files import write_text
    from garden.ssl import evaluate
    from garden.ssl.data import load_split

    record, encoder = load_run(args.run_dir)
    data = args.data or record["data"]
    train_x, train_y, test_x, test_y, classes = load_split(
        data, record["size"], record.get("limit"), seed=record["seed"]
    )
    result = {"protocol": args.protocol, "data": data, "method": record["method"], "backbone": record["backbone"]}
    if args.protocol in ("linear", "knn"):
        train_f = evaluate.extract_features(encoder, train_x)
        test_f = evaluate.extract_features(encoder, test_x)
        if args.protocol == "linear":
            result["accuracy"] = evaluate.linear_probe(train_f, train_y, test_f, test_y)
        else:
            result["accuracy"] = evaluate.knn_accuracy(train_f, train_y, test_f, test_y, k=args.k)
        if not args.json:
            print(
                f"{record['method']} {args.protocol}: test accuracy {result['accuracy']:.4f} "
                f"({len(train_y)} labelled, {len(test_y)} test images)"
            )
    else:
        amount = evaluate.parse_labels(args.labels)
        subset = evaluate.label_subset(train_y, amount, seed=record["seed"])
        options = dict(num_classes=len(classes) or None, epochs=args.epochs, seed=record["seed"])
        labelled = (train_x[subset], train_y[subset], test_x, test_y)
        result["labels"] = args.labels
        result["labelled_images"] = int(len(subset))
        result["accuracy"] = evaluate.finetune(encoder, *labelled, **options)
        result["supervised_baseline"] = evaluate.supervised_baseline(record["backbone"], *labelled, **options)
        if not args.json:
            print(f"| labels | images | {record['method']} fine-tuned | supervised from scratch |")
            print("|---|---|---|---|")
            scores = f"{result['accuracy']:.4f} | {result['supervised_baseline']:.4f}"
            print(f"| {args.labels} | {len(subset)} | {scores} |")
    path = Path(args.run_dir) / "eval.json"
    previous = json.loads(path.read_text()) if path.is_file() else []
    write_text(path, json.dumps(previous + [result], indent=1) + "\n")
    if args.json:
        print_json(result)
