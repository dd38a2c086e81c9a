"""What a run leaves behind as it goes: history, checkpoints, the backup to resume from.

Every file is written to a temporary name and renamed, so a run killed at any instant leaves
either the old file or the new one. At the end of an epoch the history row is written first and
the backup last; a resumed run trims the history to the backup's epoch, so no row is lost or
written twice.

A write that fails (a full disk, say) stops training; the message names the file and the
checkpoints still intact on disk, which ``--resume`` continues from.

A run folder holds only the names below; anything else in it belongs to the user, who keeps it:
garden refuses such a folder, and a run that fails before its first epoch takes back exactly what it
added (see :class:`Claim`).
"""

import contextlib
import csv
import io
import json
import math
import os
import re
import time
from pathlib import Path

import keras

from garden._files import atomic_path, describe_os_error, is_temporary, remove_stale_temporaries, write_text
from garden.errors import GardenError
from garden.train.optim import build_optimizer, current_rate

BACKUP = "backup"
STATE = "state.json"
RUN_FILES = frozenset(
    {
        "config.json",
        "history.csv",
        "history.json",
        "best.keras",
        "last.keras",
        "curves.png",
        "confusion_matrix.png",
        "overlays.png",
        "summary.json",
    }
)
RUN_FOLDERS = frozenset({BACKUP, "logs"})
_WORKER_FOLDER = re.compile(r"^\.worker-\d+$")


# ---------------------------------------------------------------- the run folder


def is_run_entry(path):
    """Whether ``path``, an entry of a run folder, is a name a garden run writes (of the right kind)."""
    path = Path(path)
    if path.is_symlink():
        return False
    if path.name in RUN_FILES or is_temporary(path.name):
        return path.is_file()
    if path.name in RUN_FOLDERS or _WORKER_FOLDER.match(path.name):
        return path.is_dir()
    return False


def foreign_entries(folder):
    """The entries of ``folder`` that no garden run writes, sorted by name ([] for a missing folder)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted((entry for entry in folder.iterdir() if not is_run_entry(entry)), key=lambda entry: entry.name)


def remove_leftovers(folder):
    """Delete the marked temporaries of killed garden processes in a run folder, its backup and workers' folders."""
    folder = Path(folder)
    places = [folder, folder / BACKUP]
    if folder.is_dir():
        workers = [entry for entry in folder.iterdir() if _WORKER_FOLDER.match(entry.name) and entry.is_dir()]
        places += [place for worker in workers for place in (worker, worker / BACKUP)]
    return [name for place in places for name in remove_stale_temporaries(place)]


class Claim:
    """What this run adds to its run folder, so that a run failing before its first epoch takes back exactly that.

    Only new entries under run names are removed (a file the user drops in meanwhile stays), and
    folders only when empty: ``rmdir``, never a tree removal.
    """

    def __init__(self, folder):
        self.folder = Path(folder)
        self.made = [path for path in (self.folder, *self.folder.parents) if not path.exists()]  # deepest first
        self.before = _tree(self.folder)

    def make_folder(self):
        with writing(f"the run folder {self.folder}"):
            self.folder.mkdir(parents=True, exist_ok=True)

    def take_back(self):
        added = [path for path in _tree(self.folder) - self.before if self._under_a_run_name(path)]
        for path in sorted(added, key=lambda path: len(path.parts), reverse=True):
            with contextlib.suppress(OSError):
                path.rmdir() if path.is_dir() and not path.is_symlink() else path.unlink()
        for folder in self.made:
            with contextlib.suppress(OSError):
                folder.rmdir()

    def _under_a_run_name(self, path):
        return is_run_entry(self.folder / path.relative_to(self.folder).parts[0])


def _tree(folder):
    """Every path under ``folder`` (symbolic links not followed); empty for a missing folder."""
    paths = set()
    for root, folders, files in os.walk(folder):
        paths.update(Path(root) / name for name in folders + files)
    return paths


# ---------------------------------------------------------------- failed writes


class WriteFailed(Exception):
    """A write of ``what`` failed with ``error`` (an ``OSError``); raised by :func:`writing`."""

    def __init__(self, what, error):
        super().__init__(what, error)
        self.what, self.error = what, error

    def explained(self, saved):
        """The ``OSError`` to show: what failed, why, and which checkpoints are safe on disk."""
        failure = OSError(describe_os_error(self.error, self.what, saved.describe()))
        failure.errno = self.error.errno
        return failure


@contextlib.contextmanager
def writing(what):
    """Name the output being written: an ``OSError`` inside becomes :class:`WriteFailed` naming ``what``."""
    try:
        yield
    except OSError as error:
        raise WriteFailed(what, error) from error


class Saved:
    """Which epoch each checkpoint on disk holds, to say what is intact when a write fails."""

    def __init__(self, epochs=None):
        self.epochs = dict(epochs or {})  # "last.keras", "best.keras", "backup/" -> epoch

    @classmethod
    def on_disk(cls, folder, backup_epoch, rows, monitor):
        """The checkpoints a resumed run starts from (backup of ``backup_epoch``, history ``rows``)."""
        if not backup_epoch:
            return cls()
        epochs = {"backup/": backup_epoch}
        if (Path(folder) / "last.keras").is_file():
            epochs["last.keras"] = backup_epoch
        scored = [row for row in rows if monitor in row]
        if scored and (Path(folder) / "best.keras").is_file():
            epochs["best.keras"] = max(scored, key=lambda row: row[monitor])["epoch"]
        return cls(epochs)

    def wrote(self, name, epoch):
        self.epochs[name] = epoch

    def describe(self):
        backup = self.epochs.get("backup/")
        if not backup:
            return "no epoch had finished, so there is no checkpoint to keep; the files of this run are removed"
        by_epoch = {}
        for name in ("last.keras", "best.keras", "backup/"):
            if name in self.epochs:
                by_epoch.setdefault(self.epochs[name], []).append(name)
        parts = [f"epoch {epoch} ({', '.join(names)})" for epoch, names in sorted(by_epoch.items(), reverse=True)]
        kept = (
            f"the checkpoint of {parts[0]} is intact"
            if len(parts) == 1
            else f"the checkpoints of {' and '.join(parts)} are intact"
        )
        return f"{kept}; --resume continues from epoch {backup}"


# ---------------------------------------------------------------- callbacks


class Guard(keras.callbacks.Callback):
    """Stop at the first non-finite training loss or failed write, and remember why, for a clear message."""

    def __init__(self, saved=None):
        super().__init__()
        self.where = None  # (epoch, batch) of a non-finite loss
        self.write_failure = None
        self.saved = saved or Saved()
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)) and self.where is None:
            self.where = (self.epoch + 1, batch + 1)
            self.model.stop_training = True

    def write_failed(self, failure):
        self.write_failure = failure
        self.model.stop_training = True

    @property
    def failed(self):
        return self.where is not None or self.write_failure is not None

    def error(self):
        if self.write_failure is not None:
            return self.write_failure.explained(self.saved)
        epoch, batch = self.where
        return GardenError(
            f"training loss became NaN at epoch {epoch}, batch {batch}; lower --lr or check the data "
            "(checkpoints of the finished epochs are kept)"
        )


class EpochEnd(keras.callbacks.Callback):
    """Base: act at epoch end only if the epoch really finished (no NaN, no failed write before)."""

    def __init__(self, guard):
        super().__init__()
        self.guard = guard

    def on_epoch_end(self, epoch, logs=None):
        if self.guard.failed:
            return
        try:
            self.finished(epoch + 1, dict(logs or {}))
        except WriteFailed as failure:
            self.guard.write_failed(failure)

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
        self.save("last.keras", epoch)
        value = logs.get(self.monitor)
        if value is None or not math.isfinite(value):
            return
        if self.best is None or (value > self.best if self.mode == "max" else value < self.best):
            self.save("best.keras", epoch)
            self.best = value

    def save(self, name, epoch):
        with writing(name):
            save_model(self.model, self.folder / name)
        self.guard.saved.wrote(name, epoch)


class Backup(EpochEnd):
    """The training state (weights, optimizer, epoch) after each finished epoch, for ``--resume``.

    Like ``keras.callbacks.BackupAndRestore``, but crash-safe: weights go to a new file first and
    ``state.json`` names it only once it is complete.
    """

    def __init__(self, folder, guard, clock=None):
        super().__init__(guard)
        self.folder, self.clock = Path(folder) / BACKUP, clock

    def finished(self, epoch, logs):
        weights = self.folder / f"epoch-{epoch}.weights.h5"
        with writing(f"{BACKUP}/{weights.name}"):
            self.folder.mkdir(parents=True, exist_ok=True)
            with atomic_path(weights) as temporary:  # a marked name that keeps the .weights.h5 ending
                self.model.save_weights(temporary)
        previous = read_state(self.folder.parent)
        state = {"epoch": epoch, "weights": weights.name}
        if self.clock is not None:
            state["wall_s"] = round(self.clock(), 3)
        try:
            with writing(f"{BACKUP}/{STATE}"):
                write_text(self.folder / STATE, json.dumps(state))
        except WriteFailed:
            if not previous or previous.get("weights") != weights.name:
                weights.unlink(missing_ok=True)  # named by no state: give its space back
            raise
        self.guard.saved.wrote("backup/", epoch)
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
        with writing(f"{BACKUP}/{STATE}"):
            write_text(Path(folder) / BACKUP / STATE, json.dumps({**state, "weights": None, "finished": True}))
        (Path(folder) / BACKUP / state["weights"]).unlink(missing_ok=True)


def finished_epoch(folder):
    """The last epoch backed up in run ``folder`` (0 for none, None where the state cannot be read)."""
    try:
        state = read_state(folder)
    except (GardenError, OSError):
        return None
    return state.get("epoch") if state else 0


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
    for name, content in (("history.csv", text.getvalue()), ("history.json", json.dumps(rows, indent=1))):
        with writing(name):
            write_text(folder / name, content)


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
    with writing("logs/"):
        os.makedirs(Path(folder) / "logs", exist_ok=True)
    return keras.callbacks.TensorBoard(log_dir=str(Path(folder) / "logs"), write_graph=False)
