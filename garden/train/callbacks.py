"""What a run leaves behind as it goes: history, checkpoints, the backup to resume from.

Every file is written to a temporary name and renamed, so a run killed at any instant leaves
either the old file or the new one. At the end of an epoch the history row is written first and
the backup last; a resumed run trims the history to the backup's epoch, so no row is lost or
written twice.
"""

import csv
import io
import json
import math
import os
import time
from pathlib import Path

import keras

from garden._files import atomic_path, write_text
from garden.errors import GardenError
from garden.train.optim import build_optimizer, current_rate

BACKUP = "backup"
STATE = "state.json"


class NaNGuard(keras.callbacks.Callback):
    """Stop at the first non-finite training loss and remember where, for a clear message."""

    def __init__(self):
        super().__init__()
        self.where = None
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)) and self.where is None:
            self.where = (self.epoch + 1, batch + 1)
            self.model.stop_training = True

    @property
    def failed(self):
        return self.where is not None

    def error(self):
        epoch, batch = self.where
        return GardenError(
            f"training loss became NaN at epoch {epoch}, batch {batch}; lower --lr or check the data "
            "(checkpoints of the finished epochs are kept)"
        )


class EpochEnd(keras.callbacks.Callback):
    """Base: act at epoch end only if the epoch really finished (no NaN)."""

    def __init__(self, guard):
        super().__init__()
        self.guard = guard

    def on_epoch_end(self, epoch, logs=None):
        if not self.guard.failed:
            self.finished(epoch + 1, dict(logs or {}))

    def finished(self, epoch, logs):
        raise NotImplementedError


class HistoryWriter(EpochEnd):
    """``history.csv`` and ``history.json``: one row per finished epoch, rewritten as each ends."""

    def __init__(self, folder, guard, rows=()):
        super().__init__(guard)
        self.folder, self.rows = Path(folder), list(rows)
        self.started = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def finished(self, epoch, logs):
        row = {"epoch": epoch}
        row.update({key: float(value) for key, value in sorted(logs.items()) if key != "learning_rate"})
        row["lr"] = current_rate(self.model.optimizer)
        row["time_s"] = round(time.perf_counter() - self.started, 3)
        self.rows.append(row)
        write_history(self.folder, self.rows)


class Checkpoints(EpochEnd):
    """``last.keras`` after every epoch; ``best.keras`` when ``monitor`` improves (``mode`` max or min)."""

    def __init__(self, folder, guard, monitor, mode="max", best=None):
        super().__init__(guard)
        self.folder, self.monitor, self.mode, self.best = Path(folder), monitor, mode, best

    def finished(self, epoch, logs):
        save_model(self.model, self.folder / "last.keras")
        value = logs.get(self.monitor)
        if value is None or not math.isfinite(value):
            return
        if self.best is None or (value > self.best if self.mode == "max" else value < self.best):
            self.best = value
            save_model(self.model, self.folder / "best.keras")


class Backup(EpochEnd):
    """The training state (weights, optimizer, epoch) after each finished epoch, for ``--resume``.

    Like ``keras.callbacks.BackupAndRestore``, but crash-safe: weights go to a new file first and
    ``state.json`` names it only once it is complete.
    """

    def __init__(self, folder, guard, clock=None):
        super().__init__(guard)
        self.folder, self.clock = Path(folder) / BACKUP, clock

    def finished(self, epoch, logs):
        self.folder.mkdir(parents=True, exist_ok=True)
        weights = self.folder / f"epoch-{epoch}.weights.h5"
        temporary = self.folder / f".partial-{weights.name}"  # save_weights insists on the .weights.h5 ending
        self.model.save_weights(temporary)
        os.replace(temporary, weights)
        previous = read_state(self.folder.parent)
        state = {"epoch": epoch, "weights": weights.name}
        if self.clock is not None:
            state["wall_s"] = round(self.clock(), 3)
        write_text(self.folder / STATE, json.dumps(state))
        if previous and previous.get("weights") != weights.name:
            (self.folder / previous["weights"]).unlink(missing_ok=True)


def read_state(folder):
    """The backup state of run ``folder`` (``{"epoch": N, "weights": ...}``), or None."""
    path = Path(folder) / BACKUP / STATE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError:
        raise GardenError(f"backup state {path} is damaged; start a new run") from None


def restore(model, folder, state):
    """Load the backed-up weights and optimizer state into ``model`` (compiled)."""
    path = Path(folder) / BACKUP / state["weights"]
    build_optimizer(model)
    try:
        model.load_weights(path)
    except (OSError, ValueError) as error:
        raise GardenError(f"cannot restore the backup {path}: {error}") from None


def finish_backup(folder):
    """A finished run needs no backup weights; its state stays, marked finished."""
    state = read_state(folder)
    if state:
        (Path(folder) / BACKUP / state["weights"]).unlink(missing_ok=True)
        write_text(Path(folder) / BACKUP / STATE, json.dumps({**state, "weights": None, "finished": True}))


def save_model(model, path):
    with atomic_path(path) as temporary:
        model.save(temporary)


def write_history(folder, rows):
    folder = Path(folder)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    text = io.StringIO()
    writer = csv.DictWriter(text, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(folder / "history.csv", text.getvalue())
    write_text(folder / "history.json", json.dumps(rows, indent=1))


def read_history(folder, up_to_epoch):
    """Rows of ``history.csv`` for epochs ``1 .. up_to_epoch`` (later rows belong to a lost epoch)."""
    path = Path(folder) / "history.csv"
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    out = []
    for row in rows:
        parsed = {key: (int(value) if key == "epoch" else float(value)) for key, value in row.items() if value != ""}
        if parsed["epoch"] <= up_to_epoch:
            out.append(parsed)
    return out


def tensorboard(folder):
    """A TensorBoard callback writing to ``folder/logs``, or None where TensorFlow or TensorBoard is missing."""
    import importlib.util

    if importlib.util.find_spec("tensorflow") is None or importlib.util.find_spec("tensorboard") is None:
        return None
    os.makedirs(Path(folder) / "logs", exist_ok=True)
    return keras.callbacks.TensorBoard(log_dir=str(Path(folder) / "logs"), write_graph=False)
