"""Training under JAX and PyTorch (TensorFlow hidden), and the distribution strategies."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

# One classification and one segmentation model, trained briefly, with TensorFlow made unimportable
# so the portable pipeline is what runs (as on a JAX- or PyTorch-only GPU machine).
SCRIPT = """
import json, sys
sys.modules["tensorflow"] = None
sys.path.insert(0, sys.argv[2])
import keras, numpy as np
import garden
from garden.data import Subset
from garden.data.classification import digits
from garden.train import fit
from helpers import squares

out = sys.argv[1]
cls = fit("lenet5", Subset(digits(), np.arange(500), name="digits-500"), out=out + "/cls", epochs=2, verbose=0)
unet = garden.create_model("unet", num_classes=3, input_shape=(32, 32, 3), filters=(8, 16))
seg = fit(unet, squares(24), out=out + "/seg", epochs=1, batch_size=8, verbose=0)
print("RESULT", json.dumps({"backend": keras.backend.backend(), "cls": cls, "seg": seg}))
"""


def environment(backend, **extra):
    return {**os.environ, "PYTHONPATH": str(ROOT), "KERAS_BACKEND": backend, "PYTHONUNBUFFERED": "1", **extra}


def run_script(backend, out):
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(out), str(ROOT / "tests")],
        env=environment(backend),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


@pytest.mark.slow
@pytest.mark.backend
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_classification_and_segmentation_without_tensorflow(backend, tmp_path):
    import garden

    result = run_script(backend, tmp_path)
    assert result["backend"] == backend
    assert result["cls"]["metrics"]["accuracy"] > 0.6 and result["cls"]["epochs"] == 2
    assert 0 <= result["seg"]["metrics"]["mean_iou"] <= 1 and result["seg"]["epochs"] == 1
    assert not (tmp_path / "cls" / "logs").exists()  # no TensorBoard without TensorFlow
    for run, picture in (("cls", "confusion_matrix.png"), ("seg", "overlays.png")):
        assert (tmp_path / run / picture).stat().st_size > 1000
        garden.load_model(tmp_path / run / "best.keras")  # loads on TensorFlow too (safe mode, garden's classes)


def garden_train(*argv, env, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "garden", "train", *argv], env=env, capture_output=True, text=True, timeout=timeout
    )


COMMON = ["lenet5", "--data", "digits", "--epochs", "1", "--progress", "epoch", "--no-tensorboard"]


@pytest.mark.slow
def test_mirrored_over_two_cpu_devices(tmp_path):
    done = garden_train(
        *COMMON,
        "--strategy",
        "mirrored",
        "--cpu-replicas",
        "2",
        "--batch-size",
        "32",
        "--out",
        str(tmp_path / "m"),
        env=environment("tensorflow"),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "m" / "summary.json").read_text())
    assert summary["replicas"] == 2 and summary["strategy"] == "mirrored" and summary["metrics"]["accuracy"] > 0.5


@pytest.mark.slow
@pytest.mark.backend
def test_jax_data_parallel_via_backend_flag(tmp_path):
    # Started under TensorFlow: --backend jax re-executes the command under JAX before Keras loads.
    env = environment("tensorflow", XLA_FLAGS="--xla_force_host_platform_device_count=2")
    done = garden_train(
        *COMMON,
        "--backend",
        "jax",
        "--strategy",
        "jax-data-parallel",
        "--batch-size",
        "32",
        "--out",
        str(tmp_path / "j"),
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "j" / "summary.json").read_text())
    assert summary["backend"] == "jax" and summary["replicas"] == 2 and summary["metrics"]["accuracy"] > 0.5


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_multiworker_two_processes(tmp_path):
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    out = tmp_path / "mw"
    argv = [*COMMON, "--strategy", "multiworker", "--batch-size", "32", "--out", str(out)]
    configs = [json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}) for index in range(2)]
    run_together(argv, [environment("tensorflow", TF_CONFIG=config) for config in configs])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["replicas"] == 2 and summary["epochs"] == 1 and summary["metrics"]["accuracy"] > 0.5
    assert not (out / ".worker-1").exists()  # the non-chief worker's files are cleaned away


@pytest.mark.slow
@pytest.mark.backend
def test_jax_data_parallel_across_two_processes(tmp_path):
    """Two JAX processes on loopback train one model, each reading its half of every batch."""
    from garden import load_model
    from garden.data.sources import load_splits
    from garden.data.base import to_model_input

    (port,) = free_ports(1)
    out = tmp_path / "jax2"
    argv = [*COMMON, "--strategy", "jax-data-parallel", "--batch-size", "32", "--out", str(out), "--json"]
    roles = {"KERAS_DISTRIBUTION_JOB_ADDRESSES": f"127.0.0.1:{port}", "KERAS_DISTRIBUTION_NUM_PROCESSES": "2"}
    envs = [environment("jax", **roles, KERAS_DISTRIBUTION_PROCESS_ID=str(index)) for index in range(2)]
    summaries = [json.loads(stdout) for stdout in run_together(argv, envs)]
    assert summaries[0]["metrics"] == summaries[1]["metrics"]  # one model, evaluated alike in both
    assert summaries[0]["replicas"] == 2 and not (out / ".worker-1").exists()
    # The accuracy is that of the saved model on the held-out split's full batches, recomputed here.
    _, held_out = load_splits("digits")
    count = len(held_out) // 32 * 32
    images, labels = zip(*(held_out[i] for i in range(count)))
    logits = load_model(out / "last.keras").predict(to_model_input(np.stack(images)), verbose=0)
    assert summaries[0]["metrics"]["accuracy"] == pytest.approx(np.mean(np.argmax(logits, -1) == labels), abs=1e-6)


def run_together(argv, envs, timeout=240):
    """``garden train ARGV`` in one process per environment, all at once; their stdouts, each exit 0."""
    command = [sys.executable, "-m", "garden", "train", *argv]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    workers = [subprocess.Popen(command, env=env, **pipes) for env in envs]
    try:
        outputs = [worker.communicate(timeout=timeout) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    for worker, (_, err) in zip(workers, outputs):
        trace = "\n".join(line for line in err.splitlines() if not line.startswith(" " * 6))
        assert worker.returncode == 0, trace[-4000:]
    return [stdout for stdout, _ in outputs]


def test_multiworker_needs_tf_config(tmp_path, capsys, monkeypatch):
    from garden.cli import main

    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert main(["train", *COMMON, "--strategy", "multiworker", "--out", str(tmp_path / "x")]) == 2
    assert "needs TF_CONFIG" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_strategy_needs_its_backend(tmp_path, capsys):
    from garden.cli import main

    assert main(["train", *COMMON, "--strategy", "jax-data-parallel", "--out", str(tmp_path / "x")]) == 2
    assert "needs --backend jax" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.backend
def test_gpu_benchmark_tiny_mode_without_tensorflow(tmp_path):
    """bench/gpu.py --tiny: every workload trains (the pipeline one through fit on garden's Batches), TF hidden."""
    rows_path = tmp_path / "rows.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu.py"), "--tiny", "--json", str(rows_path)],
        env=environment("torch"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(rows_path.read_text())
    assert [row["data"] for row in rows] == ["synthetic", "pipeline", "pipeline alone", "synthetic", "synthetic"]
    for row in rows:
        assert row["step_ms"] > 0
        assert row["images_s"] == pytest.approx(1000 * row["batch"] / row["step_ms"])
        assert f"| {row['workload']} | {row['data']} | {row['size']}x{row['size']} | {row['batch']} |" in done.stdout
    assert "backend torch" in done.stdout and "tensorflow hidden" in done.stdout and "mixed_bfloat16" in done.stdout


def test_multiworker_refuses_an_untested_keras():
    from garden.errors import GardenError
    from garden.train.distribute import check_patched_keras

    check_patched_keras("3.15.1")
    with pytest.raises(GardenError, match="untested on Keras 3.16.0: install keras==3.15.*"):
        check_patched_keras("3.16.0")
