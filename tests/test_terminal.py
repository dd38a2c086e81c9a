"""What a ``garden`` command prints: its own lines only, progress on a terminal, none in a pipe.

The commands run in subprocesses, as a user runs them: the libraries' C++ output goes to the
process's file descriptors, which only a real process shows.
"""

import json
import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

import pytest

from garden.cli import main
from garden.registry import register_model, unregister_model
from helpers import ROOT, garden_command

# Lines of garden's own: the report table, the file written. Anything else came from beneath.
OWN_STDOUT = re.compile(r"^\|.*\|$")
OWN_STDERR = re.compile(r"^(wrote \S+ and \S+\.json|note: .+)$")  # note: what the export changed or assumed
THIRD_PARTY = ("tensorflow", "warn", "fully_quantize", "INFO", "XNNPACK", "absl", "onnxruntime", "pre-processing")

SMALL = ("--input-size", "64", "--calib-count", "16", "--check-count", "16")


@pytest.fixture(autouse=True)
def as_a_user_runs_it(monkeypatch):
    """No TF_CPP_MIN_LOG_LEVEL: the quiet must not depend on the environment the suite runs in."""
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)


def assert_only_own_lines(done):
    assert done.returncode == 0, done.stderr
    out, err = done.stdout.splitlines(), done.stderr.splitlines()
    assert len(out) == 3 and all(OWN_STDOUT.match(line) for line in out), out
    assert err and err[-1].startswith("wrote ") and all(OWN_STDERR.match(line) for line in err), err
    assert not any(word.lower() in (done.stdout + done.stderr).lower() for word in THIRD_PARTY)
    assert "\r" not in done.stderr  # no progress drawn into a pipe


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_int8_export_prints_only_garden_lines(tmp_path, fmt):
    done = garden_command("export", "mobilenet_v2", "--quant", "int8", "--format", fmt, *SMALL, "--out", tmp_path)
    assert_only_own_lines(done)
    assert (tmp_path / f"mobilenet_v2_int8.{fmt}").is_file()


def test_train_prints_its_summary_only(tmp_path):
    done = garden_command("train", "lenet5", "--data", "digits", "--epochs", 1, "--progress", "none", "--out", tmp_path)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert len(done.stdout.splitlines()) == 1 and done.stdout.startswith("lenet5 on digits: 1 epochs in ")


def test_verbose_shows_what_the_converter_prints(tmp_path):
    done = garden_command("export", "lenet5", "--quant", "int8", "--verbose", "--out", tmp_path)
    assert done.returncode == 0, done.stderr
    assert len(done.stderr.splitlines()) > 1  # the converter's own lines, kept under --verbose


def test_quiet_prints_nothing_but_writes_the_file(tmp_path):
    done = garden_command("export", "lenet5", "--quant", "int8", "--quiet", "--out", tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert (tmp_path / "lenet5_int8.tflite").stat().st_size > 0


def test_quiet_still_prints_the_error(tmp_path):
    done = garden_command("export", "lenet5", "--quiet", "--out", tmp_path / "missing" / "deeper", "--name", "../x")
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith("garden: error:")


def test_export_json_is_the_report_of_the_file_written(tmp_path):
    done = garden_command("export", "lenet5", "--quant", "int8", "--json", "--out", tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    written = tmp_path / "lenet5_int8.tflite"
    assert report["file"] == written.name and report["quantization"] == "int8"
    assert report["size_bytes"] == written.stat().st_size


def test_cost_json_counts_multiply_adds():
    done = garden_command("cost", "--input", "28x28x192", "--filters", 64, "--kernel", 3, "--reduce", 32, "--json")
    figures = json.loads(done.stdout)
    h, w, c, n, k, r = 28, 28, 192, 64, 3, 32
    assert figures["standard_macs"] == h * w * c * n * k * k
    assert figures["separable_macs"] == h * w * c * k * k + h * w * c * n
    assert figures["reduced_macs"] == h * w * c * r + h * w * r * n * k * k


def test_a_closed_pipe_is_not_an_error():
    """The table (160 KB, more than a pipe holds) is cut by ``head``: no error line, no trace."""
    command = f"{sys.executable} -m garden profile inception_resnet_v2 | head -1"
    done = subprocess.run(command, shell=True, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.stdout.count("\n") == 1 and done.stderr == ""


def test_an_internal_error_is_one_line_with_exit_1(capsys, monkeypatch):
    def broken_builder(**_):
        return {}["missing"]

    monkeypatch.delenv("GARDEN_DEBUG", raising=False)
    register_model("broken_for_test", broken_builder, "classification")
    try:
        code = main(["profile", "broken_for_test"])
    finally:
        unregister_model("broken_for_test")
    err = capsys.readouterr().err
    assert code == 1 and len(err.splitlines()) == 1
    assert err.startswith("garden: internal error: KeyError: 'missing'") and "GARDEN_DEBUG=1" in err


def test_progress_shows_on_a_terminal(tmp_path):
    """Under a pseudo-terminal the export draws counters on one line, then clears it."""
    screen = run_in_terminal(
        [sys.executable, "-m", "garden", "export", "lenet5", "--quant", "int8", "--out", str(tmp_path)]
    )
    assert re.search(r"calibrating \d+/64", screen), screen
    assert re.search(r"checking the file \d+/64", screen)
    assert re.search(r"measuring latency \d+/33", screen)
    assert "\x1b[K" in screen  # each counter is cleared, not left behind
    assert (tmp_path / "lenet5_int8.tflite").is_file()


def run_in_terminal(command, timeout=300):
    """Run ``command`` with stdout and stderr on a new pseudo-terminal; everything it showed, as text."""
    leader, follower = pty.openpty()
    env = dict(os.environ, PYTHONPATH=str(ROOT), GARDEN_DEBUG="")
    process = subprocess.Popen(command, stdout=follower, stderr=follower, stdin=subprocess.DEVNULL, env=env, cwd=ROOT)
    os.close(follower)
    shown = bytearray()
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], timeout)
            if not ready:
                raise TimeoutError(f"{Path(command[2]).name}: no output for {timeout} s")
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: the program ended
                break
            if not chunk:
                break
            shown += chunk
    finally:
        process.wait(timeout=timeout)
        os.close(leader)
    assert process.returncode == 0, shown.decode(errors="replace")
    return shown.decode(errors="replace")
