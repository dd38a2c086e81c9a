"""``garden export`` refuses bad numbers and meaningless option combinations in one line, and a
killed export's temporary files are removed by the next export in the same folder."""

import importlib
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import deploy
from deploy.cli import refuse_unused_options
from deploy.export import SCRATCH_PREFIX, remove_stale_scratch
from deploy.optimize import check_optimize_options, optimize_and_export
from deploy.separable import run_bench
from garden._files import PARTIAL_MARK
from garden.cli import build_parser, main
from garden.errors import GardenError

REPO = Path(__file__).resolve().parent.parent
NAN = float("nan")


@pytest.fixture
def no_work(monkeypatch):
    """Refusals must come before any work: building the model or loading data fails the test."""

    def work(*args, **kwargs):
        raise AssertionError("the export started working before refusing its options")

    for module in ("deploy.export", "deploy.optimize"):  # (deploy.export is also a function's name)
        monkeypatch.setattr(importlib.import_module(module), "prepare", work)
    monkeypatch.setattr(importlib.import_module("deploy.separable"), "model_rows", work)


def _refused(capsys, argv, out):
    """Run ``garden ARGV`` in this process; assert exit 2, one error line, nothing in ``out``; return it."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("garden: error: "), captured.err
    assert captured.out == ""
    assert not out.exists() or list(out.iterdir()) == []
    return lines[0]


def _export_refused(capsys, tmp_path, *options):
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    return _refused(capsys, ["export", "lenet5", "--out", str(out), *options], out)


# ---------------------------------------------------------------- numbers


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "101", "-100.5"])
def test_max_drop_not_finite_or_out_of_range_is_refused(no_work, capsys, tmp_path, value):
    line = _export_refused(capsys, tmp_path, "--quant", "int8", "--max-drop", value)
    assert "--max-drop" in line


@pytest.mark.parametrize(
    ("options", "option"),
    [
        (("--check-count", "-1"), "--check-count"),
        (("--check-count", "0"), "--check-count"),
        (("--calib-count", "0", "--quant", "int8"), "--calib-count"),
        (("--calib-count", "1.5", "--quant", "int8"), "--calib-count"),
        (("--input-size", "0"), "--input-size"),
        (("--input-size", "nan"), "--input-size"),
        (("--optimize", "qat", "--steps", "0"), "--steps"),
    ],
)
def test_counts_and_sizes_out_of_range_name_the_option(no_work, capsys, tmp_path, options, option):
    line = _export_refused(capsys, tmp_path, *options)
    assert option in line and "empty" not in line


@pytest.mark.parametrize(
    ("settings", "argument"),
    [
        ({"max_drop": NAN}, "max_drop"),
        ({"max_drop": float("inf")}, "max_drop"),
        ({"max_drop": 250.0}, "max_drop"),
        ({"calib_count": 0}, "calib_count"),
        ({"check_count": -1}, "check_count"),
        ({"check_count": 2.5}, "check_count"),
        ({"input_size": 0}, "input_size"),
        ({"repeats": 0}, "repeats"),
        ({"max_drop": True}, "max_drop"),
    ],
)
def test_python_export_refuses_bad_numbers(no_work, tmp_path, settings, argument):
    with pytest.raises(GardenError, match=argument) as refused:
        deploy.export("lenet5", quant="int8", out=tmp_path, **settings)
    assert "\n" not in str(refused.value) and "empty" not in str(refused.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("settings", "argument"),
    [
        ({"max_drop": NAN}, "max_drop"),
        ({"steps": 0}, "steps"),
        ({"sparsity": 1.0}, "sparsity"),
        ({"learning_rate": NAN}, "learning_rate"),
        ({"clusters": 1}, "clusters"),
        ({"calib_count": 0}, "calib_count"),
    ],
)
def test_python_optimize_refuses_bad_numbers(no_work, tmp_path, settings, argument):
    with pytest.raises(GardenError, match=argument):
        optimize_and_export("lenet5", technique="prune", out=tmp_path, **settings)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("options", "option"),
    [
        (("--alpha", "nan"), "--alpha"),
        (("--alpha", "0"), "--alpha"),
        (("--input-size", "16"), "--input-size"),
        (("--repeats", "0"), "--repeats"),
        (("--per-op",), "--per-op"),  # --quick shortens the single-layer sweep --per-op replaces
    ],
)
def test_bench_separable_numbers_are_checked(no_work, capsys, tmp_path, options, option):
    out = tmp_path / "bench"
    line = _refused(capsys, ["bench", "separable", "--quick", "--out", str(out), *options], out)
    assert option in line
    assert not out.exists()


def test_python_bench_separable_refuses_nan_alpha(no_work, tmp_path):
    with pytest.raises(GardenError, match="alpha"):
        run_bench(alpha=NAN, input_size=32, out=tmp_path / "bench", repeats=1, quick=True)
    assert not (tmp_path / "bench").exists()


# ---------------------------------------------------------------- combinations


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (("--quant", "fp16", "--optimize", "qat"), "qat"),
        (("--quant", "fp32", "--optimize", "qat"), "qat"),
        (("--quant", "dynamic", "--optimize", "qat"), "qat"),
        (("--io-dtype", "int8"), "--io-dtype"),
        (("--io-dtype", "uint8", "--quant", "int8"), "--io-dtype"),
        (("--io-dtype", "int8", "--quant", "int8-io", "--format", "onnx"), "--io-dtype"),
        (("--io-dtype", "int8", "--optimize", "prune"), "--io-dtype"),
        (("--output", "class_map", "--optimize", "prune"), "--output"),
        (("--output", "class_map", "--optimize", "qat", "--quant", "int8-io"), "--output"),
        (("--format", "onnx", "--optimize", "cluster"), "TFLite"),
        (("--steps", "5"), "--steps"),
        (("--calib-count", "8"), "--calib-count"),
        (("--calib-count", "8", "--quant", "dynamic", "--format", "onnx"), "--calib-count"),
        (("--calib-count", "8", "--optimize", "prune"), "--calib-count"),
        (("--name", "../elsewhere"), "--name"),
    ],
)
def test_incompatible_options_are_refused(no_work, capsys, tmp_path, options, named):
    assert named in _export_refused(capsys, tmp_path, *options)


@pytest.mark.parametrize(
    "options",
    [
        ("--optimize", "qat"),
        ("--optimize", "qat", "--quant", "int8-io", "--io-dtype", "int8", "--calib-count", "8", "--steps", "3"),
        ("--optimize", "cluster", "--calib-count", "8"),
        ("--quant", "int8-io", "--io-dtype", "uint8", "--format", "onnx", "--calib-count", "8"),
    ],
)
def test_meaningful_combinations_pass_the_command_line_checks(options):
    refuse_unused_options(build_parser("export").parse_args(["export", "lenet5", *options]))


def test_optimize_quantization_defaults_and_refusals():
    assert check_optimize_options("qat") == "int8"
    assert check_optimize_options("qat", quant="int8-io", io_dtype="int8") == "int8-io"
    assert check_optimize_options("prune") == "fp32"
    assert check_optimize_options("cluster", quant="fp16") == "fp16"
    with pytest.raises(GardenError, match="full-integer"):
        check_optimize_options("qat", quant="fp16")


def test_io_dtype_int8_reaches_the_file(capsys, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    out = tmp_path / "out"
    out.mkdir()
    argv = "export lenet5 --quant int8-io --io-dtype int8 --calib-count 8 --check-count 8 --out".split()
    assert main([*argv, str(out)]) == 0
    interpreter = Interpreter(model_path=str(out / "lenet5_int8-io.tflite"))
    assert interpreter.get_input_details()[0]["dtype"] == np.int8
    assert json.loads((out / "lenet5_int8-io.json").read_text())["input"]["dtype"] == "int8"


# ---------------------------------------------------------------- killed exports


def _dead_pid():
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=False
    )
    return int(done.stdout)


def test_stale_scratch_folders_of_dead_processes_only_are_removed(tmp_path):
    dead = tmp_path / f"{SCRATCH_PREFIX}{_dead_pid()}-abc"
    live = tmp_path / f"{SCRATCH_PREFIX}{os.getpid()}-def"
    other = tmp_path / "garden-scratch-notes"
    for folder in (dead, live, other):
        folder.mkdir()
        (folder / "inside.bin").write_bytes(b"x" * 100)
    assert remove_stale_scratch(tmp_path) == [dead.name]
    assert not dead.exists() and live.exists() and other.exists()


EXPORT_COMMAND = [
    sys.executable,
    "-m",
    "garden",
    "export",
    "lenet5",
    "--quant",
    "int8",
    "--calib-count",
    "8",
    "--check-count",
    "16",
]
EXPECTED = {"lenet5_int8.tflite", "lenet5_int8.json", "lenet5_int8.report.json", "lenet5_int8.report.md"}


def _start_export(out, scratch_root):
    env = dict(os.environ, TMPDIR=str(scratch_root), KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.Popen(
        [*EXPORT_COMMAND, "--out", str(out)], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def _temporaries(out, scratch_root, pid=""):
    """``(marked files in out, scratch folders in scratch_root)``, of process ``pid`` if given."""
    marked = [p.name for p in out.iterdir() if f"{PARTIAL_MARK}{pid}" in p.name]
    return marked, [p.name for p in scratch_root.iterdir() if p.name.startswith(f"{SCRATCH_PREFIX}{pid}")]


def _watch(process, out, scratch_root, timeout=300):
    """Poll until ``process`` ends: ``(seconds until its first temporary or None, seconds in all)``."""
    start, first = time.monotonic(), None
    while process.poll() is None:
        if first is None and any(_temporaries(out, scratch_root)):
            first = time.monotonic() - start
        assert time.monotonic() - start < timeout, "export did not finish"
        time.sleep(0.01)
    return first, time.monotonic() - start


def _kill_after(out, scratch_root, delay):
    process = _start_export(out, scratch_root)
    time.sleep(delay)
    process.kill()
    process.communicate()


def _kill_once_made(out, scratch_root, which, delay):
    """Start an export, wait until it has made its own ``which`` (0: marked file, 1: scratch folder),
    then SIGKILL it ``delay`` seconds later."""
    process = _start_export(out, scratch_root)
    while process.poll() is None and not _temporaries(out, scratch_root, f"{process.pid}-")[which]:
        time.sleep(0.005)
    time.sleep(delay)
    process.kill()
    process.communicate()


def _user_files(folder):
    rng = np.random.default_rng(7)
    files = {
        "notes.txt": b"my notes\n",
        ".hidden-settings": b"keep=1\n",
        "lenet5_fp32.tflite": rng.bytes(4096),
        "lenet5_int8.bak": rng.bytes(1000),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return files


def test_killed_exports_leave_nothing_after_the_next_export(tmp_path):
    measure_out, out, scratch_root = tmp_path / "measure", tmp_path / "out", tmp_path / "tmp"
    for folder in (measure_out, out, scratch_root):
        folder.mkdir()
    process = _start_export(measure_out, scratch_root)
    first_temporary, duration = _watch(process, measure_out, scratch_root)
    assert process.returncode == 0, process.stderr.read().decode()
    assert first_temporary is not None and sorted(p.name for p in measure_out.iterdir()) == sorted(EXPECTED)

    user_files = _user_files(out)
    rng = random.Random(22)
    _kill_after(out, scratch_root, rng.uniform(0, duration))
    _kill_once_made(out, scratch_root, 1, rng.uniform(0, (duration - first_temporary) / 2))
    _kill_after(out, scratch_root, rng.uniform(first_temporary, duration))
    _kill_once_made(out, scratch_root, 0, 0.0)
    marked, scratch = _temporaries(out, scratch_root)
    assert marked and scratch, "the kills left nothing to clean: they did not test the cleaning"

    env = dict(os.environ, TMPDIR=str(scratch_root), KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([*EXPORT_COMMAND, "--out", str(out)], cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

    assert sorted(p.name for p in out.iterdir()) == sorted(EXPECTED | set(user_files))
    assert all((out / name).read_bytes() == data for name, data in user_files.items())
    assert [p.name for p in scratch_root.iterdir() if p.is_dir()] == []  # no scratch or converter folder
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(out / "lenet5_int8.tflite"))
    interpreter.allocate_tensors()
    assert interpreter.get_input_details()[0]["shape"].tolist() == [1, 32, 32, 1]
    assert json.loads((out / "lenet5_int8.json").read_text())["quantization"] == "int8"
