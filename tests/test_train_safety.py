"""Training never harms what it did not write (issue 22): the user's files, full and read-only disks, kills.

Every test checks real files: a user's tree (``.git/`` and ``.env`` included) hashed before and
after, checkpoints loaded with ``safe_mode=True``, no garden temporary left behind.
"""

import errno
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest

from garden import _files
from garden.cli import main
from garden.data import Subset
from garden.data.classification import digits
from garden.errors import GardenError
from garden.train import callbacks as cb
from garden.train import fit, settings_for

ROOT = Path(__file__).resolve().parents[1]
FIT = sys.modules["garden.train.trainer"]  # the module behind garden.train.fit
QUICK = dict(epochs=2, batch_size=32, verbose=0, tensorboard=False)


# ---------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def small_digits():
    return Subset(digits(), np.arange(300), name="digits-small")


def make_user_files(root):
    """A user's project: a .git folder, a .env, notes and code."""
    files = {
        ".git/HEAD": b"ref: refs/heads/main\n",
        ".git/objects/ab/cdef0123": bytes(range(256)) * 4,
        ".env": b"TOKEN=do-not-lose\n",
        "notes.txt": b"my notes\n",
        "src/model.py": b"print('mine')\n",
    }
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    return root


def digest(root):
    """Relative path -> sha256 of every file under ``root`` (folders map to "folder")."""
    tree = {}
    for folder, folders, files in os.walk(root):
        for name in folders:
            tree[os.path.relpath(os.path.join(folder, name), root)] = "folder"
        for name in files:
            path = os.path.join(folder, name)
            tree[os.path.relpath(path, root)] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return tree


def assert_kept(before, root):
    """Every file and folder of ``before`` (a :func:`digest`) is still under ``root``, byte for byte."""
    after = digest(root)
    changed = {path for path, value in before.items() if after.get(path) != value}
    assert not changed, f"user files changed or gone: {sorted(changed)}"


def temporaries(root):
    """Garden's temporary names (marked, or the old unmarked backup ones) anywhere under ``root``."""
    found = []
    for folder, _, files in os.walk(root):
        found += [os.path.join(folder, n) for n in files if _files.PARTIAL_MARK in n or n.startswith(".partial-")]
    return found


def assert_outputs_valid(folder):
    """Every output at its target name is complete: checkpoints load in safe mode, the backup names its weights."""
    for name in ("best.keras", "last.keras"):
        if (folder / name).exists():
            assert keras.saving.load_model(folder / name, safe_mode=True).count_params() > 0
    for name in ("config.json", "history.json", "summary.json"):
        if (folder / name).exists():
            json.loads((folder / name).read_text())
    state = cb.read_state(folder)
    if state and state.get("weights"):
        assert (folder / cb.BACKUP / state["weights"]).is_file()


def call(capsys, *argv):
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err.strip()


def one_line_error(code, err, pattern):
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("garden: error:"), err
    assert __import__("re").search(pattern, err), err


def dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def plant_stale_temporaries(folder):
    """Leftovers of a killed garden process (marked with a dead process id) in ``folder`` and its backup."""
    pid = dead_pid()
    (folder / cb.BACKUP).mkdir(parents=True, exist_ok=True)
    planted = [
        folder / f".last{_files.PARTIAL_MARK}{pid}-0a1b2c3d.keras",
        folder / f".state{_files.PARTIAL_MARK}{pid}-0a1b2c3e.json",
        folder / cb.BACKUP / f".epoch-1{_files.PARTIAL_MARK}{pid}-0a1b2c3f.weights.h5",
    ]
    for path in planted:
        path.write_bytes(b"half a file")
    return planted


def broken_model():
    """A model whose loss is NaN from the first batch."""
    inputs = keras.Input((32, 32, 1))
    x = keras.layers.Rescaling(float("nan"))(inputs)
    return keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(x)), name="broken")


def interrupt_at(monkeypatch, epoch, batch=2):
    """Ctrl-C (a KeyboardInterrupt from a callback) at ``batch`` of ``epoch`` (1-based)."""
    original = cb.Guard.on_train_batch_end

    def on_train_batch_end(self, step, logs=None):
        if (self.epoch + 1, step + 1) == (epoch, batch):
            raise KeyboardInterrupt
        return original(self, step, logs)

    monkeypatch.setattr(cb.Guard, "on_train_batch_end", on_train_batch_end)


def image_folder(root, per_class=24):
    rng = np.random.default_rng(0)
    for index, cls in enumerate(("a", "b")):
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            image = rng.integers(0, 60, (16, 16, 3), dtype=np.uint8) + 150 * index
            cv2.imwrite(str(root / cls / f"{i}.png"), image.astype(np.uint8))
    return root


# ---------------------------------------------------------------- number options


@pytest.mark.parametrize(
    "option, value",
    [
        ("--lr", "nan"),
        ("--lr", "0"),
        ("--lr", "-1e-3"),
        ("--lr", "inf"),
        ("--epochs", "0"),
        ("--epochs", "1.5"),
        ("--batch-size", "-2"),
        ("--warmup", "nan"),
        ("--warmup", "-1"),
        ("--weight-decay", "-1"),
        ("--weight-decay", "nan"),
        ("--label-smoothing", "1"),
        ("--label-smoothing", "nan"),
        ("--held-out", "0"),
        ("--held-out", "1"),
        ("--held-out", "nan"),
        ("--seed", "-1"),
        ("--workers", "0"),
        ("--cpu-replicas", "0"),
    ],
)
def test_train_number_options_refused_in_one_line(tmp_path, capsys, option, value):
    out = tmp_path / "out"
    code, err = call(capsys, "train", "lenet5", "--data", "digits", "--out", out, f"{option}={value}")
    one_line_error(code, err, f"argument {option}: .*(not a finite number|out of range|not an integer)")
    assert not out.exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["ssl", "simclr", "--learning-rate", "nan"],
        ["ssl", "simclr", "--learning-rate", "0"],
        ["ssl", "simclr", "--epochs", "0"],
        ["ssl", "simclr", "--size", "-4"],
        ["ssl", "simclr", "--batch-size", "0"],
        ["ssl", "simclr", "--limit", "0"],
        ["ssl", "simclr", "--seed", "-1"],
        ["ssl-eval", "somewhere", "--k", "0"],
        ["ssl-eval", "somewhere", "--epochs", "nan"],
    ],
)
def test_ssl_number_options_refused_in_one_line(tmp_path, capsys, argv):
    out = tmp_path / "out"
    extra = ["--out", out] if argv[0] == "ssl" else []
    code, err = call(capsys, *argv, *extra)
    one_line_error(code, err, "(not a finite number|out of range|not an integer)")
    assert not out.exists()


def test_ssl_refuses_an_out_that_is_a_file_before_pretraining(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("garden.ssl.data.load_split", lambda *a, **k: pytest.fail("pre-training started"))
    (tmp_path / "out").write_text("mine")
    code, err = call(capsys, "ssl", "simclr", "--out", tmp_path / "out")
    one_line_error(code, err, "exists and is not a folder")
    assert (tmp_path / "out").read_text() == "mine"


@pytest.mark.parametrize(
    "option, value",
    [
        ("lr", float("nan")),
        ("lr", 0.0),
        ("lr", float("inf")),
        ("lr", "0.1"),
        ("epochs", 0),
        ("epochs", 2.5),
        ("epochs", True),
        ("batch_size", 0),
        ("weight_decay", float("nan")),
        ("warmup", -1.0),
        ("label_smoothing", 1.0),
        ("held_out", float("nan")),
        ("held_out", 1.0),
        ("seed", -1),
        ("seed", 2**32),
        ("workers", 0),
        ("cpu_replicas", 0),
        ("tensorboard", "yes"),
        ("input_size", (0, 32)),
        ("input_size", "32"),
        ("augment", "crop=nan"),
        ("augment", "distort=inf"),
    ],
)
def test_python_api_refuses_bad_numbers(tmp_path, small_digits, option, value):
    with pytest.raises(GardenError, match=option.split("_")[0]):
        settings_for("lenet5", **{option: value})
    with pytest.raises(GardenError):
        fit("lenet5", small_digits, out=tmp_path / "out", **{option: value})
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--cpu-replicas", "2"], "--cpu-replicas works only with --strategy mirrored"),
        (["--warmup", "1", "--schedule", "step"], "--warmup works with --schedule cosine or constant, not step"),
        (["--resume"], "--resume needs --out"),
    ],
)
def test_incompatible_options_refused(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    out = [] if "--resume" in argv else ["--out", tmp_path / "out"]
    code, err = call(capsys, "train", "lenet5", "--data", "digits", *out, *argv)
    one_line_error(code, err, message)
    assert list(tmp_path.iterdir()) == []


def test_label_smoothing_refused_for_segmentation(tmp_path):
    with pytest.raises(GardenError, match="--label-smoothing is for classification"):
        fit("unet", "embedded", out=tmp_path / "out", label_smoothing=0.1)
    assert not (tmp_path / "out").exists()


def test_resume_keeps_the_recorded_settings(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    config = {"model": "lenet5", "data": "digits", "settings": {"lr": 0.01, "batch_size": 16, "epochs": 3}}
    (out / "config.json").write_text(json.dumps(config))
    before = digest(out)
    code, err = call(capsys, "train", "lenet5", "--data", "digits", "--out", out, "--resume", "--lr", "0.02")
    one_line_error(code, err, "was trained with lr 0.01, not 0.02; --resume continues a run with its own settings")
    assert digest(out) == before
    assert FIT._as_recorded(config, {"lr": None, "epochs": None}, out) == {"lr": 0.01, "batch_size": 16, "epochs": 3}


# ---------------------------------------------------------------- folders that are not a garden run


@pytest.mark.parametrize(
    "contents, resume",
    [
        ("dot-files", False),
        ("dot-files", True),
        ("project", True),
        ("run plus a user file", True),
    ],
)
def test_a_folder_that_is_not_a_run_is_refused_untouched(tmp_path, capsys, contents, resume):
    out = tmp_path / "out"
    out.mkdir()
    if contents == "dot-files":
        (out / ".git").mkdir()
        (out / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
        (out / ".env").write_text("TOKEN=1\n")
    elif contents == "project":
        make_user_files(out)
    else:
        (out / "config.json").write_text(json.dumps({"model": "lenet5", "data": "digits"}))
        (out / "history.csv").write_text("epoch\n1\n")
        (out / "my-analysis.ipynb").write_text("{}")
    before = digest(out)
    code, err = call(
        capsys, "train", "lenet5", "--data", "digits", "--out", out, *(["--resume"] if resume else []), "--epochs", "1"
    )
    one_line_error(code, err, "holds .*which no garden run writes")
    assert digest(out) == before


@pytest.mark.parametrize(
    "extra, message",
    [
        ([], "output folder . holds .env, .git/, notes.txt and 1 more, which no garden run writes"),
        (["--lr", "nan"], "argument --lr: 'nan' is not a finite number"),
    ],
)
def test_out_dot_in_a_project_is_refused(tmp_path, capsys, monkeypatch, extra, message):
    project = make_user_files(tmp_path / "project")
    before = digest(project)
    monkeypatch.chdir(project)
    code, err = call(capsys, "train", "lenet5", "--data", "digits", "--out", ".", "--resume", *extra)
    one_line_error(code, err, message)
    assert digest(project) == before


def test_python_api_refuses_a_user_folder(tmp_path, small_digits):
    project = make_user_files(tmp_path / "project")
    before = digest(project)
    with pytest.raises(GardenError, match="which no garden run writes"):
        fit("lenet5", small_digits, out=project, resume=True, **QUICK)
    assert digest(project) == before


# ---------------------------------------------------------------- failing before the first epoch finishes


def _prepare_folder(tmp_path, state):
    """``out`` inside a user's project: absent (two folders deep), empty, or a run killed before epoch 1."""
    project = make_user_files(tmp_path / "project")
    out = project / "runs" / "first"
    planted = []
    if state == "empty":
        out.mkdir(parents=True)
    elif state == "killed-before-epoch-1":
        out.mkdir(parents=True)
        (out / "config.json").write_text(json.dumps({"model": "lenet5", "data": "digits-small"}))
        planted = plant_stale_temporaries(out)
    return project, out, planted


@pytest.mark.parametrize("state", ["absent", "empty", "killed-before-epoch-1"])
@pytest.mark.parametrize("failure", ["nan", "interrupt"])
def test_failure_in_the_first_epoch_takes_back_exactly_this_run(tmp_path, small_digits, monkeypatch, state, failure):
    project, out, planted = _prepare_folder(tmp_path, state)
    before = digest(project)
    if failure == "nan":
        model, kind, match = broken_model(), GardenError, "loss became NaN at epoch 1, batch 1"
        if state == "killed-before-epoch-1":
            (out / "config.json").write_text(json.dumps({"model": "broken", "data": "digits-small"}))
            before = digest(project)
    else:
        model, kind, match = "lenet5", KeyboardInterrupt, None
        interrupt_at(monkeypatch, epoch=1)
    with pytest.raises(kind, match=match):
        fit(model, small_digits, out=out, resume=state != "empty", **QUICK)
    planted_names = {os.path.relpath(p, project) for p in planted}
    rewritten = {os.path.join("runs", "first", "config.json")}  # garden's own, written again by this run
    assert_kept({k: v for k, v in before.items() if k not in planted_names | rewritten}, project)
    assert set(digest(project)) == set(before) - planted_names  # nothing added, the stale leftovers gone
    if state == "absent":
        assert not (project / "runs").exists()  # both folders this run made are gone


def test_interrupt_on_the_command_line_exits_130_and_leaves_an_existing_folder_empty(tmp_path, capsys, monkeypatch):
    data = image_folder(tmp_path / "data")
    (tmp_path / "out").mkdir()
    interrupt_at(monkeypatch, epoch=1, batch=1)
    code = main(
        [
            "train",
            "lenet5",
            "--data",
            str(data),
            "--out",
            str(tmp_path / "out"),
            "--batch-size",
            "8",
            "--epochs",
            "2",
            "--progress",
            "none",
            "--no-tensorboard",
        ]
    )
    assert code == 130 and "interrupted" in capsys.readouterr().err
    assert list((tmp_path / "out").iterdir()) == []


def test_interrupt_after_an_epoch_then_resume(tmp_path, small_digits, monkeypatch):
    project = make_user_files(tmp_path / "project")
    before = digest(project)
    out = project / "runs" / "lenet5"
    interrupt_at(monkeypatch, epoch=2)
    with pytest.raises(KeyboardInterrupt):
        fit("lenet5", small_digits, out=out, **QUICK)
    assert_kept(before, project)
    assert cb.read_state(out)["epoch"] == 1 and not temporaries(project)
    assert_outputs_valid(out)
    monkeypatch.undo()
    summary = fit("lenet5", small_digits, out=out, resume=True, **QUICK)
    assert summary["epochs"] == 2 and [row["epoch"] for row in cb.read_history(out, 2)] == [1, 2]
    assert_kept(before, project)
    assert_outputs_valid(out)
    assert not temporaries(project)


def test_stale_temporaries_are_removed_by_the_resume_and_a_live_ones_kept(tmp_path, small_digits, monkeypatch):
    out = tmp_path / "run"
    interrupt_at(monkeypatch, epoch=2)
    with pytest.raises(KeyboardInterrupt):
        fit("lenet5", small_digits, out=out, **QUICK)
    monkeypatch.undo()
    planted = plant_stale_temporaries(out)
    live = out / f".best{_files.PARTIAL_MARK}{os.getppid()}-0a1b2c40.keras"  # a running process's write
    live.write_bytes(b"being written")
    fit("lenet5", small_digits, out=out, resume=True, **QUICK)
    assert not any(path.exists() for path in planted) and live.read_bytes() == b"being written"
    assert_outputs_valid(out)


# ---------------------------------------------------------------- storage faults


def fail_writes(monkeypatch, method, on_call):
    """``keras.Model.<method>`` writes half a file, then fails with ENOSPC, at its ``on_call``-th call."""
    original, calls = getattr(keras.Model, method), []

    def write(self, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == on_call:
            Path(path).write_bytes(b"PK\x03\x04 half")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return original(self, path, *args, **kwargs)

    monkeypatch.setattr(keras.Model, method, write)


@pytest.mark.parametrize(
    "method, on_call, message, backup_epoch",
    [
        ("save", 1, r"^cannot write last\.keras: no space left on the device; no epoch had finished", 0),
        (
            "save",
            3,
            r"^cannot write last\.keras: no space left on the device; the checkpoint of epoch 1 "
            r"\(last\.keras, best\.keras, backup/\) is intact; --resume continues from epoch 1$",
            1,
        ),
        (
            "save_weights",
            2,
            r"^cannot write backup/epoch-2\.weights\.h5: no space left on the device; the checkpoints "
            r"of epoch 2 \(last\.keras.*\) and epoch 1 \(.*backup/\) are intact; --resume continues "
            r"from epoch 1$",
            1,
        ),
    ],
)
def test_no_space_at_a_write_keeps_the_last_good_checkpoint(
    tmp_path, small_digits, monkeypatch, method, on_call, message, backup_epoch
):
    out = tmp_path / "run"
    fail_writes(monkeypatch, method, on_call)
    with pytest.raises(OSError, match=message) as caught:
        fit("lenet5", small_digits, out=out, **QUICK)
    assert caught.value.errno == errno.ENOSPC and len(str(caught.value).splitlines()) == 1
    assert not temporaries(tmp_path)
    if not backup_epoch:
        assert not out.exists()  # this run made the folder and finished no epoch
        return
    assert cb.read_state(out)["epoch"] == backup_epoch
    assert sorted(p.name for p in (out / cb.BACKUP).iterdir()) == ["epoch-1.weights.h5", "state.json"]
    assert_outputs_valid(out)
    monkeypatch.undo()
    assert fit("lenet5", small_digits, out=out, resume=True, **QUICK)["epochs"] == 2
    assert_outputs_valid(out)


@pytest.fixture
def tmpfs(tmp_path):
    """A 16 MB tmpfs, or a skip where this machine cannot mount one (the simulated tests cover the same)."""
    point = tmp_path / "fs"
    point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(point)], capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.decode().strip()}")
    yield point
    subprocess.run(["umount", "-l", str(point)], check=False)


def fill(filesystem, leave):
    """Fill ``filesystem`` with a file of its own, then give back ``leave`` bytes."""
    filler = filesystem / "filler"
    with open(filler, "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
        except OSError as error:
            assert error.errno == errno.ENOSPC
    os.truncate(filler, max(0, filler.stat().st_size - leave))
    return filler


def test_a_full_filesystem_keeps_the_checkpoint_of_the_last_epoch(tmpfs, small_digits, monkeypatch):
    out = tmpfs / "run"
    backup = cb.Backup.finished

    def backup_then_fill(self, epoch, logs):
        backup(self, epoch, logs)
        if epoch == 2:
            fill(tmpfs, leave=64 * 1024)  # the history of epoch 3 fits, its last.keras does not

    monkeypatch.setattr(cb.Backup, "finished", backup_then_fill)
    with pytest.raises(
        OSError,
        match=r"^cannot write last\.keras: no space left on the device; the checkpoints? of "
        r"epoch 2 \(last\.keras.*backup/\).* intact; --resume continues from epoch 2$",
    ):
        fit("lenet5", small_digits, out=out, **{**QUICK, "epochs": 3})
    assert not temporaries(tmpfs)
    assert cb.read_state(out)["epoch"] == 2
    assert_outputs_valid(out)
    (tmpfs / "filler").unlink()
    monkeypatch.undo()
    summary = fit("lenet5", small_digits, out=out, resume=True, verbose=0, tensorboard=False)
    assert summary["epochs"] == 3 and [row["epoch"] for row in cb.read_history(out, 3)] == [1, 2, 3]
    assert not temporaries(tmpfs)


def test_a_read_only_filesystem_is_one_line_before_training(tmpfs, capsys, monkeypatch):
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    monkeypatch.setattr(FIT, "_prepare", lambda *a, **k: pytest.fail("training started"))
    code, err = call(capsys, "train", "lenet5", "--data", "digits", "--out", tmpfs / "run")
    one_line_error(
        code,
        err,
        f"cannot write the folder {tmpfs}: the filesystem is read-only; nothing was changed; training did not start",
    )


def honour_write_bits(monkeypatch):
    """As root, permission bits do not stop writes: make ``os.access`` answer as for an ordinary user."""
    if os.geteuid() != 0:
        return
    access = os.access

    def user_access(path, mode, **kwargs):
        denied = mode & os.W_OK and not os.stat(path).st_mode & 0o200
        return access(path, mode, **kwargs) and not denied

    monkeypatch.setattr(os, "access", user_access)


@pytest.mark.parametrize("read_only", ["run folder", "its backup", "parent of a new run folder"])
def test_a_read_only_folder_is_one_line_before_training(tmp_path, capsys, monkeypatch, read_only):
    out = tmp_path / "run"
    if read_only != "parent of a new run folder":
        (out / cb.BACKUP).mkdir(parents=True)
        (out / "config.json").write_text(json.dumps({"model": "lenet5", "data": "digits"}))
    target = {"run folder": out, "its backup": out / cb.BACKUP, "parent of a new run folder": tmp_path}[read_only]
    before = digest(tmp_path)
    honour_write_bits(monkeypatch)
    monkeypatch.setattr(FIT, "_prepare", lambda *a, **k: pytest.fail("training started"))
    target.chmod(0o555)
    try:
        code, err = call(capsys, "train", "lenet5", "--data", "digits", "--out", out, "--resume")
    finally:
        target.chmod(0o755)
    one_line_error(code, err, f"cannot write the folder {target}: permission denied; nothing was changed")
    assert digest(tmp_path) == before


# ---------------------------------------------------------------- killed runs


def garden_train(*argv):
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "KERAS_BACKEND": "tensorflow", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "garden", "train", *argv],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def kill_when(process, ready, deadline_s=120):
    """SIGKILL ``process`` the moment ``ready()`` holds; False if it ended first."""
    deadline = time.monotonic() + deadline_s
    while process.poll() is None and time.monotonic() < deadline:
        if ready():
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.003)
    process.wait(30)
    return process.returncode == -signal.SIGKILL


@pytest.mark.slow
def test_killed_runs_leave_no_temporary_after_the_next_resume(tmp_path):
    out = tmp_path / "run"
    argv = [*"lenet5 --data digits --epochs 4 --batch-size 64 --out".split(), str(out)]
    argv += ["--resume", "--progress", "none", "--no-tensorboard"]
    moment = random.Random(22)
    started = {}
    triggers = [
        lambda: bool(temporaries(out)),  # in the middle of a checkpoint's write
        lambda: (
            any(_files.PARTIAL_MARK in name for name in os.listdir(out / cb.BACKUP))
            if (out / cb.BACKUP).is_dir()
            else False
        ),  # in the middle of the backup's weights
        lambda: time.monotonic() - started["at"] > moment.uniform(8, 14),  # any moment, start-up included
    ]
    left_behind = []
    for trigger in triggers:
        process = garden_train(*argv)
        started["at"] = time.monotonic()
        if not kill_when(process, trigger):
            pytest.fail(f"the run ended before it was killed: {process.stderr.read()[-2000:]}")
        left_behind += temporaries(out)
        if out.exists():
            assert_outputs_valid(out)
    assert left_behind, "no kill landed in the middle of a write"
    final = garden_train(*argv)
    assert final.wait(300) == 0, final.stderr.read()[-2000:]
    assert not temporaries(out)
    assert [row["epoch"] for row in cb.read_history(out, 4)] == [1, 2, 3, 4]
    assert_outputs_valid(out)


def test_no_space_while_finishing_keeps_every_epoch_and_resume_finishes(tmp_path, small_digits, monkeypatch):
    out = tmp_path / "run"

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(FIT.report, "plot_curves", no_space)
    with pytest.raises(
        OSError,
        match=r"^cannot write curves\.png: no space left on the device; the checkpoint of "
        r"epoch 2 \(last\.keras, best\.keras, backup/\) is intact; --resume continues",
    ):
        fit("lenet5", small_digits, out=out, **QUICK)
    assert not (out / "summary.json").exists() and cb.read_state(out)["epoch"] == 2
    monkeypatch.undo()
    assert fit("lenet5", small_digits, out=out, resume=True, **QUICK)["epochs"] == 2
    assert (out / "curves.png").is_file() and not temporaries(out)
