"""A run killed mid-epoch (SIGKILL) and restarted with --resume loses and repeats nothing."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from garden.cli import main

ROOT = Path(__file__).resolve().parents[1]


def garden_command(*argv):
    return [sys.executable, "-m", "garden", "train", *argv]


def environment():
    return {**os.environ, "PYTHONPATH": str(ROOT), "KERAS_BACKEND": "tensorflow", "PYTHONUNBUFFERED": "1"}


def epochs_in(folder):
    with open(folder / "history.csv") as handle:
        return [int(row["epoch"]) for row in csv.DictReader(handle)]


@pytest.mark.slow
def test_sigkill_then_resume(tmp_path, capsys):
    out = tmp_path / "run"
    argv = [*"lenet5 --data digits --epochs 2 --batch-size 16 --out".split(), str(out)]
    argv += ["--progress", "epoch", "--no-tensorboard"]
    process = subprocess.Popen(
        garden_command(*argv), env=environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    state = out / "backup" / "state.json"
    deadline = time.monotonic() + 180
    while not state.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert state.exists(), process.communicate()[0] if process.poll() is not None else "no checkpoint in time"
    process.send_signal(signal.SIGKILL)  # epoch 2 has just begun: 89 steps of it are left
    process.wait(30)
    assert process.returncode == -signal.SIGKILL
    assert json.loads(state.read_text())["epoch"] == 1
    assert epochs_in(out) == [1] and not (out / "summary.json").exists()
    first_row = (out / "history.csv").read_text().splitlines()[1]

    resumed = subprocess.run(
        garden_command(*argv, "--resume"), env=environment(), capture_output=True, text=True, timeout=240
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Epoch 2/2" in resumed.stdout and "Epoch 1/2" not in resumed.stdout
    assert epochs_in(out) == [1, 2]
    assert (out / "history.csv").read_text().splitlines()[1] == first_row
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs"] == 2 and summary["metrics"]["accuracy"] > 0.85
    assert [row["epoch"] for row in json.loads((out / "history.json").read_text())] == [1, 2]
    assert main(["train", *argv, "--resume"]) == 2 and "has finished" in capsys.readouterr().err
