"""``fit``: any garden model, any data source, one call; a run folder users and scripts can read.

>>> summary = fit("lenet5", data="digits", out="runs/lenet5")   # doctest: +SKIP
>>> summary["metrics"]["accuracy"]                                # doctest: +SKIP
0.98

The run folder holds ``config.json``, ``history.csv``/``history.json`` (one row per finished
epoch), ``best.keras`` and ``last.keras``, ``backup/`` (what ``resume=True`` continues from),
``logs/`` (TensorBoard, where TensorFlow is installed), ``curves.png``, ``confusion_matrix.png``
(classification) or ``overlays.png`` (segmentation) and ``summary.json``.
"""

import dataclasses
import errno
import json
import math
import numbers
import os
import shutil
import time
from pathlib import Path

import keras
import numpy as np

from garden._files import describe_os_error
from garden.console import note
from garden.data.augment import parse_augment
from garden.data.base import IGNORE_LABEL, Examples
from garden.data.sources import load_splits
from garden.errors import GardenError, PeerLost
from garden.options import describe_range, in_range
from garden.train import callbacks as cb
from garden.train import distribute, report
from garden.train.optim import OPTIMIZERS, SCHEDULES, build_optimizer, make_optimizer
from garden.train.pipeline import Batches, ReportUnreadable, predictions

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


@dataclasses.dataclass
class Settings:
    """Every choice of a run; ``None`` means "the default for this model" (see ``MODEL_DEFAULTS``)."""

    epochs: int = 10
    batch_size: int = 32
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    schedule: str = "cosine"
    warmup: float = 0.0  # epochs of linear warm-up
    label_smoothing: float = 0.0
    augment: str = "auto"
    precision: str = "float32"
    strategy: str = "none"
    input_size: tuple = None  # (height, width, channels); None = the model's default
    held_out: float = 0.2
    seed: int = 0
    workers: int = 1
    cpu_replicas: int = None
    tensorboard: bool = True
    model_options: dict = None  # the builder's arguments (``--set``), ``weights``, ``backbone_weights``
    strict_data: bool = False  # stop at the first undecodable file instead of skipping it


# Recipes that reach their goal quickly; anything not named here takes the Settings defaults.
MODEL_DEFAULTS = {
    "lenet5": {"epochs": 20, "batch_size": 32, "optimizer": "adamw", "lr": 3e-3, "schedule": "cosine", "warmup": 1},
}


def settings_for(model_name, **overrides):
    """``Settings`` for ``model_name``: the model's recipe, then ``overrides`` that are not None."""
    unknown = set(overrides) - {f.name for f in dataclasses.fields(Settings)}
    if unknown:
        raise GardenError(f"unknown training option(s): {', '.join(sorted(unknown))}")
    given = {k: v for k, v in overrides.items() if v is not None}
    values = {**MODEL_DEFAULTS.get(model_name, {}), **given}
    if "warmup" not in given and (
        values.get("schedule") == "step" or values.get("warmup", 0) >= values.get("epochs", 10)
    ):
        values["warmup"] = 0.0  # the recipe's own warm-up belongs to its own schedule and length, not to the user's
    settings = Settings(**values)
    _check(settings)
    return settings


# field: (kind, low, high, low_inclusive, high_inclusive); None: no bound
NUMBER_RANGES = {
    "epochs": (int, 1, None, True, True),
    "batch_size": (int, 1, None, True, True),
    "lr": (float, 0, None, False, True),
    "weight_decay": (float, 0, None, True, True),
    "warmup": (float, 0, None, True, True),
    "label_smoothing": (float, 0, 1, True, False),
    "held_out": (float, 0, 1, False, False),
    "seed": (int, 0, 2**32 - 1, True, True),
    "workers": (int, 1, None, True, True),
    "cpu_replicas": (int, 1, None, True, True),
}


def _check(s):
    for field, (kind, *bounds) in NUMBER_RANGES.items():
        _check_number(field, getattr(s, field), kind, *bounds)
    if s.optimizer not in OPTIMIZERS:
        raise GardenError(f"unknown optimizer {s.optimizer!r}; choose from {', '.join(OPTIMIZERS)}")
    if s.schedule not in SCHEDULES:
        raise GardenError(f"unknown schedule {s.schedule!r}; choose from {', '.join(SCHEDULES)}")
    if s.precision not in PRECISIONS:
        raise GardenError(f"unknown precision {s.precision!r}; choose from {', '.join(PRECISIONS)}")
    if s.warmup >= s.epochs:
        raise GardenError(f"warm-up of {s.warmup} epochs must be shorter than the {s.epochs} epochs of training")
    if s.warmup and s.schedule == "step":
        raise GardenError("--warmup works with --schedule cosine or constant, not step")
    if s.cpu_replicas is not None and s.strategy != "mirrored":
        raise GardenError("--cpu-replicas works only with --strategy mirrored")
    if not isinstance(s.tensorboard, bool):
        raise GardenError(f"tensorboard must be True or False, got {s.tensorboard!r}")
    _check_input_size(s.input_size)
    _check_augment(s.augment)
    distribute.check(s.strategy)


def _check_number(field, value, kind, low, high, low_inclusive, high_inclusive):
    """A finite ``kind`` (an int is also a float) within the bounds, or a one-line ``GardenError``."""
    if value is None and field == "cpu_replicas":
        return
    kinds = (numbers.Integral,) if kind is int else (numbers.Real,)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise GardenError(f"{field} must be {'an integer' if kind is int else 'a number'}, got {value!r}")
    if not math.isfinite(value) or not in_range(value, low, high, low_inclusive, high_inclusive):
        raise GardenError(f"{field} {describe_range(low, high, low_inclusive, high_inclusive)}, got {value!r}")


def _check_input_size(size):
    if size is None:
        return
    if (
        isinstance(size, (str, bytes))
        or not all(isinstance(n, numbers.Integral) and not isinstance(n, bool) and n > 0 for n in size)
        or len(size) not in (2, 3)
    ):
        raise GardenError(f"input_size must be (height, width[, channels]) in positive integers, got {size!r}")


def _check_augment(spec):
    if spec == "auto":
        return
    augment = parse_augment(spec)
    for name in ("crop", "color", "distort"):
        if not math.isfinite(getattr(augment, name)):
            raise GardenError(f"--augment: {name} must be a finite number, got {getattr(augment, name)}")


def fit(model, data="digits", *, out=None, resume=False, verbose="auto", **options):
    """Train ``model`` (a registered name or a ``keras.Model``) on ``data``; returns the summary dict.

    ``data`` is a source spec (``digits``, ``embedded``, ``cifar10:PATH``, a folder), an
    ``Examples`` or a ``(train, held_out)`` pair. ``options`` are the fields of :class:`Settings`.
    With ``resume=True`` a run folder left by a killed run continues from its last finished epoch,
    with the settings it was started with. A folder holding anything but a garden run is refused.
    """
    started = time.perf_counter()
    name = model if isinstance(model, str) else model.name
    recipe = name if isinstance(model, str) else None
    settings = settings_for(recipe, **options)
    if resume and not out:
        raise GardenError("--resume needs --out, the run folder to continue")
    out = Path(out) if out else Path("runs") / f"{name}-{_data_name(data)}-{time.strftime('%Y%m%d-%H%M%S')}"
    previous = _check_folder(out, resume, name, data)
    if previous:
        settings = settings_for(recipe, **_as_recorded(previous, options, out))
    plan = distribute.prepare(settings.strategy, settings.batch_size, settings.cpu_replicas)
    policy = keras.config.dtype_policy()
    try:
        summary = _run(model, name, data, settings, out, previous, plan, verbose, started)
    finally:
        plan.close()
        keras.config.set_dtype_policy(policy)
    return {**summary, "out": str(out)}


def _run(model, name, data, s, out, previous, plan, verbose, started):
    model, train_batches, test_batches = _prepare(model, data, s, plan)
    folder = out if plan.chief else out / f".worker-{plan.worker}"
    state = cb.read_state(folder) if previous else None
    initial_epoch = state["epoch"] if state else 0
    if initial_epoch > s.epochs:
        raise GardenError(f"{out} already ran {initial_epoch} epochs, more than the {s.epochs} asked for")
    rows = cb.read_history(folder, initial_epoch)
    monitor = _monitor(train_batches.examples)
    saved = cb.Saved.on_disk(folder, initial_epoch, rows, monitor)
    claim = cb.Claim(folder)
    wall_before = state.get("wall_s", 0.0) if state else 0.0
    try:
        claim.make_folder()
        if state:
            cb.restore(model, folder, state)
            train_batches.epoch = initial_epoch
        config = _config(name, data, train_batches.examples, test_batches.examples, s, tuple(model.input_shape[1:]))
        _write_json(folder / "config.json", config)
        clock = lambda: wall_before + time.perf_counter() - started  # noqa: E731  (the run's wall time so far)
        guard, callbacks = _callbacks(folder, monitor, rows, s, saved, clock)
        callbacks.append(ReportUnreadable(train_batches, test_batches))
        model.fit(
            train_batches,
            validation_data=test_batches,
            epochs=s.epochs,
            initial_epoch=initial_epoch,
            callbacks=callbacks,
            verbose=verbose,
        )
        if guard.failed:
            raise guard.error()
        summary = _finish(model, name, data, folder, test_batches, s, clock(), plan)
        test_batches.report_unreadable()
    except BaseException as error:
        if cb.finished_epoch(folder) == initial_epoch:  # no epoch finished: leave the folder as it was
            claim.take_back()
        if isinstance(error, cb.WriteFailed):
            raise error.explained(saved) from None
        reading = train_batches.error or test_batches.error
        if reading is not None and not isinstance(error, KeyboardInterrupt):
            raise reading from None
        if plan.processes > 1 and type(error).__name__ == "JaxRuntimeError":
            done = cb.finished_epoch(folder)
            raise PeerLost(
                f"another process of this run stopped ({str(error).strip().splitlines()[0][:160]}); "
                f"{out} keeps {done} finished epoch(s): start every process again with --resume"
            ) from None
        raise
    if not plan.chief:
        shutil.rmtree(folder, ignore_errors=True)  # a worker's own copy, in garden's .worker-N folder
    return summary


def _prepare(model, data, s, plan):
    """The compiled model and its batches; every input error surfaces here, before any output is written."""
    task = _task(model)
    if s.label_smoothing and task != "classification":
        raise GardenError(f"--label-smoothing is for classification; a {task} model trains with cross-entropy and dice")
    train, test = _splits(data, task, s)
    augment = _augment(s.augment, train)
    one_hot = s.label_smoothing > 0
    keras.utils.set_random_seed(s.seed)
    keras.config.set_dtype_policy(s.precision)
    with plan.scope():
        model = _build(model, train, s)
        input_shape = tuple(model.input_shape[1:])
        train_batches = Batches(
            train,
            s.batch_size,
            input_shape,
            training=True,
            augment=augment,
            one_hot=one_hot,
            seed=s.seed,
            workers=s.workers,
            strict=s.strict_data,
            shard=plan.shard,
        )
        test_batches = Batches(
            test,
            s.batch_size,
            input_shape,
            one_hot=one_hot,
            workers=s.workers,
            drop_remainder=plan.name == "jax-data-parallel",
            strict=s.strict_data,
            shard=plan.shard,
        )
        if not len(test_batches):
            raise GardenError(f"the {len(test)} held-out examples are fewer than one batch of {s.batch_size}")
        train_batches[0], test_batches[0]  # decode errors and shape mismatches surface before any output
        steps = len(train_batches)
        optimizer = make_optimizer(
            s.optimizer,
            s.lr,
            weight_decay=s.weight_decay,
            schedule=s.schedule,
            total_steps=steps * s.epochs,
            warmup_steps=round(s.warmup * steps),
        )
        model.compile(optimizer=optimizer, loss=_loss(train, s), metrics=[_metric(train, one_hot)])
        build_optimizer(model)
        if plan.name == "multiworker":
            distribute.build_before_fit(model, train_batches[0])
    return model, train_batches, test_batches


def _task(model):
    if isinstance(model, str):
        from garden.registry import get_entry

        task = get_entry(model).task
        if task not in ("classification", "segmentation"):
            raise GardenError(f"{model} is a {task} model; garden train takes classification and segmentation models")
        return task
    return "segmentation" if len(model.output_shape) == 4 else "classification"


def _splits(data, task, s):
    if isinstance(data, tuple):
        train, test = data
    elif isinstance(data, Examples):
        from garden.data.base import split

        train, test = split(data, s.held_out, s.seed)
    else:
        train, test = load_splits(data, task, s.held_out, s.seed)
    if train.task != task:
        raise GardenError(f"data {train.name} is {train.task} data, but the model does {task}")
    return train, test


def _augment(spec, train):
    if spec != "auto":
        return parse_augment(spec)
    if train.name.startswith("digits"):
        return parse_augment("distort=8")  # digits must not be mirrored or cropped away
    if train.name.startswith("embedded"):
        return parse_augment("none")  # its digits, too: a mirrored 2 is no 2
    return parse_augment("flip,crop=0.5" if train.task == "segmentation" else "flip,crop=0.35,color=0.1")


def _build(model, train, s):
    if not isinstance(model, str):
        if s.precision != "float32":
            raise GardenError("--precision needs a model name: a built model keeps its dtype policy")
        return model
    from garden.registry import create_model, get_entry

    shape = s.input_size or _data_size(train) or get_entry(model).default_input_shape
    kwargs = {**(s.model_options or {}), "num_classes": train.num_classes}
    if shape:
        kwargs["input_shape"] = tuple(shape)
    try:
        return create_model(model, **kwargs)
    except ValueError as error:
        raise GardenError(f"cannot build {model} at {shape}: {str(error).splitlines()[0]}") from None


def _data_size(train):
    """A segmentation source of arrays all of one size (embedded: 64x64) trains at that size, not at
    the model's default (513 for DeepLab), which would only upscale its images and their masks."""
    base = getattr(train, "examples", train)
    images = getattr(base, "images", None)
    if train.task != "segmentation" or not isinstance(images, np.ndarray) or images.ndim != 4:
        return None
    note(f"training at {images.shape[1]}x{images.shape[2]}, the size of {base.name}'s images (--input-size changes it)")
    return tuple(images.shape[1:])


def _loss(train, s):
    if train.task == "segmentation":
        # Cross-entropy plus dice: the dice term keeps small classes (thin digits) from drowning in background.
        from garden.segmentation.losses import CrossEntropyDice

        return CrossEntropyDice(ignore_label=IGNORE_LABEL)
    if s.label_smoothing:
        return keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=s.label_smoothing)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _metric(train, one_hot):
    if train.task == "segmentation":
        return keras.metrics.MeanIoU(train.num_classes, name="mean_iou", ignore_class=IGNORE_LABEL, sparse_y_pred=False)
    if one_hot:
        return keras.metrics.CategoricalAccuracy(name="accuracy")
    return keras.metrics.SparseCategoricalAccuracy(name="accuracy")


def _monitor(train):
    return "val_mean_iou" if train.task == "segmentation" else "val_accuracy"


def _callbacks(folder, monitor, rows, s, saved, clock):
    guard = cb.Guard(saved)
    best = max((row[monitor] for row in rows if monitor in row), default=None)
    backup = cb.Backup(folder, guard, clock=clock)
    callbacks = [
        guard,
        cb.HistoryWriter(folder, guard, rows),
        cb.Checkpoints(folder, guard, monitor, "max", best),
        backup,
    ]
    board = cb.tensorboard(folder) if s.tensorboard else None
    return guard, callbacks + ([board] if board else [])


def _finish(model, name, data, folder, test_batches, s, wall_s, plan):
    test = test_batches.examples
    predicted, truth = predictions(model, test_batches.whole())
    matrix = report.confusion(truth, predicted, test.num_classes)
    rows = cb.read_history(folder, s.epochs)
    title = f"{name} on {_data_name(data)}"
    if rows:
        with cb.writing("curves.png"):
            report.plot_curves(rows, folder / "curves.png", title)
    if test.task == "classification":
        metrics = {"accuracy": report.accuracy(matrix)}
        with cb.writing("confusion_matrix.png"):
            report.plot_confusion(matrix, list(test.class_names), folder / "confusion_matrix.png", title)
    else:
        metrics = {"mean_iou": report.mean_iou(matrix), "pixel_accuracy": report.accuracy(matrix)}
        x, _ = test_batches[0]
        count = min(4, len(x))
        with cb.writing("overlays.png"):
            report.plot_overlays(
                x[:count], truth[:count], predicted[:count], test.num_classes, folder / "overlays.png", title
            )
    summary = {
        "model": name,
        "data": _data_name(data),
        "epochs": len(rows),
        "wall_s": round(wall_s, 2),
        "metrics": metrics,
        "held_out_examples": len(test),
        "backend": keras.backend.backend(),
        "strategy": s.strategy,
        "replicas": plan.replicas,
        "precision": s.precision,
        "checkpoints": {"best": "best.keras", "last": "last.keras"},
    }
    _write_json(folder / "summary.json", summary)
    cb.finish_backup(folder)
    return summary


def _check_folder(out, resume, name, data):
    """Refuse, before any work, a folder garden must not write in; returns the config of the run to resume.

    The folder may hold a garden run and nothing else (a user's file, dot-files included, is never
    touched), and must be writable. A fresh run needs it absent or empty; with ``resume`` a run
    there continues (None: there is none yet, start afresh). Marked temporaries of killed runs go.
    """
    if out.exists() and not out.is_dir():
        raise GardenError(f"output {out} exists and is not a folder")
    foreign = cb.foreign_entries(out)
    if foreign:
        raise GardenError(
            f"output folder {out} holds {_some_names(foreign)}, which no garden run writes; "
            "garden leaves that folder alone: choose another --out"
        )
    _check_writable(out)
    cb.remove_leftovers(out)
    if not resume:
        # what is left under a dot-name is garden's: workers' folders, a live process's temporaries
        if out.is_dir() and any(not entry.name.startswith(".") for entry in out.iterdir()):
            raise GardenError(
                f"output folder {out} is not empty; pass --resume to continue that run or choose another --out"
            )
        return None
    if (out / "summary.json").is_file():
        raise GardenError(f"the run in {out} has finished (summary.json); start a new run with another --out")
    config = _read_config(out)
    if config and (config.get("model"), config.get("data")) != (name, _data_name(data)):
        raise GardenError(
            f"{out} holds a run of {config.get('model')} on {config.get('data')}, not {name} on {_data_name(data)}"
        )
    return config


def _some_names(entries, shown=3):
    names = [entry.name + ("/" if entry.is_dir() else "") for entry in entries]
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _check_writable(out):
    """One line if the run folder, its backup, or the folder it would be made in cannot be written."""
    if out.is_dir():
        folders = [out] + ([out / cb.BACKUP] if (out / cb.BACKUP).is_dir() else [])
    else:
        folders = [next(parent for parent in out.absolute().parents if parent.exists())]
        if not folders[0].is_dir():
            raise GardenError(f"cannot make the run folder {out}: {folders[0]} is not a folder")
    for folder in folders:
        if not os.access(folder, os.W_OK | os.X_OK):
            code = errno.EROFS if os.statvfs(folder).f_flag & os.ST_RDONLY else errno.EACCES
            kept = "nothing was changed; training did not start"
            raise _os_error(OSError(code, os.strerror(code)), f"the folder {folder}", kept)


def _os_error(error, what, kept):
    failure = OSError(describe_os_error(error, what, kept))
    failure.errno = error.errno
    return failure


def _read_config(out):
    """The ``config.json`` of the run in ``out``, or None where there is none yet."""
    path = out / "config.json"
    if not path.is_file():
        return None
    try:
        config = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError):
        config = None
    if not isinstance(config, dict):
        raise GardenError(f"{path} is damaged; start a new run with another --out")
    return config


# Settings a resumed run keeps as recorded: changing one midway would silently make another run.
KEPT_ON_RESUME = (
    "batch_size",
    "optimizer",
    "lr",
    "weight_decay",
    "schedule",
    "warmup",
    "label_smoothing",
    "augment",
    "precision",
    "input_size",
    "held_out",
    "seed",
)


def _as_recorded(config, options, out):
    """``options`` for resuming the run ``config`` records: those not given as recorded, a different one refused.

    ``epochs`` may be given anew (to train a run further); otherwise it is the recorded count too.
    """
    recorded = config.get("settings") or {}
    merged = dict(options)
    for field in KEPT_ON_RESUME + ("epochs",):
        if field not in recorded:
            continue
        given, value = options.get(field), recorded[field]
        if isinstance(value, dict):
            continue  # an Augment object, recorded as its fields
        if field == "input_size":
            if not value or not all(isinstance(n, int) for n in value):
                continue  # a model of any input size: nothing to keep
            value, given = tuple(value), None if given is None else tuple(given)
            value = value[: len(given)] if given else value
        if given is None:
            merged[field] = value
        elif field != "epochs" and given != value:
            raise GardenError(
                f"{out} was trained with {field} {value}, not {given}; --resume continues a run "
                "with its own settings: leave the option out, or start a new run with another --out"
            )
    return merged


def _config(name, data, train, test, s, input_shape):
    settings = dataclasses.asdict(s)
    settings["input_size"] = list(input_shape)
    return {
        "model": name,
        "data": _data_name(data),
        "task": train.task,
        "classes": list(train.class_names),
        "train_examples": len(train),
        "held_out_examples": len(test),
        "backend": keras.backend.backend(),
        "settings": settings,
    }


def _data_name(data):
    if isinstance(data, tuple):
        return data[0].name
    if isinstance(data, Examples):
        return data.name
    return str(data)


def _write_json(path, content):
    from garden._files import write_text

    with cb.writing(path.name):
        write_text(path, json.dumps(content, indent=1, default=_plain))


def _plain(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)
