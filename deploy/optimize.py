"""QAT, magnitude pruning and weight clustering through tensorflow-model-optimization.

tfmot works only on tf_keras models and switches its process to legacy Keras when imported, so
the work happens in a subprocess (``deploy._tfmot_worker``) on a tf_keras twin of the Keras 3
model, built layer by layer with identical weights (its outputs must match to ``twin_tolerance``
before tuning starts). The tuned file comes back here and goes through the same check, report and
sidecar as every export, compared with the original float Keras 3 model.

Pruning reports speed as well as size: the pruned model is also converted with sparse weight
encoding, and LiteRT latency of the dense original, the pruned dense file and the sparse file are
measured side by side (XNNPACK has a sparse path for fp32 1x1 convolutions at high sparsity).
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from deploy import check
from deploy.export import (
    EXPORT_LIMITS,
    Limit,
    _check_choice,
    check_io_dtype,
    check_name,
    check_numbers,
    prepare,
    scratch_folder,
    write_checked,
)
from deploy.quantization import CALIBRATED_QUANTS, QUANTS
from deploy.tflite import convert_tflite
from garden.errors import GardenError

TECHNIQUES = ("qat", "prune", "cluster")
DEFAULT_QUANT = {"qat": "int8", "prune": "fp32", "cluster": "int8"}

OPTIMIZE_LIMITS = {
    **EXPORT_LIMITS,
    "steps": Limit(int, 1),
    "batch_size": Limit(int, 1),
    "learning_rate": Limit(float, 0, low_inclusive=False),
    "sparsity": Limit(float, 0, 1, low_inclusive=False, high_inclusive=False),
    "clusters": Limit(int, 2),
    "train_count": Limit(int, 1),
    "calib_count": Limit(int, 1),
    "twin_tolerance": Limit(float, 0, low_inclusive=False),
    "timeout": Limit(float, 0, low_inclusive=False),
}


def optimize_and_export(
    model,
    *,
    technique,
    format="tflite",
    quant=None,
    input_size=None,
    calib="digits",
    check_data=None,
    max_drop=None,
    out=".",
    name=None,
    output="logits",
    steps=30,
    batch_size=8,
    learning_rate=1e-4,
    sparsity=0.8,
    clusters=16,
    train_count=64,
    calib_count=32,
    check_count=64,
    io_dtype=None,
    twin_tolerance=1e-5,
    repeats=30,
    timeout=1800,
):
    """Fine-tune ``model`` with ``technique`` (``qat``, ``prune``, ``cluster``) and export it, checked.

    QAT produces a full-integer file only: ``quant`` ``int8`` (default) or ``int8-io``, anything
    else is refused. Pruning and clustering keep ``quant`` (default ``fp32`` for pruning, ``int8``
    for clustering). The file outputs logits (``output="class_map"`` is refused). Training data is
    ``calib``; ``sparsity`` is a fraction in (0, 1).
    """
    quant = check_optimize_options(technique, format=format, quant=quant, output=output, io_dtype=io_dtype, name=name)
    training = dict(steps=steps, batch_size=batch_size, learning_rate=learning_rate, sparsity=sparsity)
    training.update(clusters=clusters, train_count=train_count, calib_count=calib_count, twin_tolerance=twin_tolerance)
    check_numbers(
        OPTIMIZE_LIMITS,
        input_size=input_size,
        max_drop=max_drop,
        check_count=check_count,
        repeats=repeats,
        timeout=timeout,
        **training,
    )
    job = prepare(
        model,
        input_size=input_size,
        calib=calib,
        check_data=check_data,
        calib_count=max(train_count, calib_count),
        check_count=check_count,
    )
    out = Path(out)
    if not out.is_dir():
        raise GardenError(f"output folder {out} does not exist")
    with scratch_folder() as workdir:
        _write_job(job, workdir, technique=technique, quant=quant, io_dtype=io_dtype or "uint8", **training)
        run_worker(workdir, timeout)
        info = json.loads((workdir / "result.json").read_text())
        extra = {"optimization": {"technique": technique, "steps": steps, **info}}
        if technique == "prune":
            extra["optimization"]["speed"] = pruning_speed(job, workdir, repeats)
        path = out / f"{name or f'{job.name}_{technique}_{quant}'}.tflite"
        label = "qat" if technique == "qat" else quant
        return write_checked(
            job,
            lambda temporary: shutil.copyfile(workdir / "model.tflite", temporary),
            path,
            quant=quant,
            max_drop=max_drop,
            repeats=repeats,
            quantization=label,
            extra=extra,
        )


def check_optimize_options(technique, *, format="tflite", quant=None, output="logits", io_dtype=None, name=None):
    """Refuse what ``technique`` cannot do, in one line; returns the quantization mode to use."""
    _check_choice("technique", technique, TECHNIQUES)
    if format != "tflite":
        raise GardenError("tensorflow-model-optimization exports go to TFLite only; use --format tflite")
    if output != "logits":
        raise GardenError(f"--output {output} is not available with --optimize: the tf_keras worker exports logits")
    if technique == "qat" and quant not in (None, *CALIBRATED_QUANTS):
        raise GardenError(f"--optimize qat yields a full-integer file only: use --quant int8 or int8-io, not {quant}")
    quant = quant or DEFAULT_QUANT[technique]
    _check_choice("quant", quant, QUANTS)
    check_io_dtype(io_dtype, quant)
    check_name(name)
    return quant


def _write_job(job, workdir, *, train_count, calib_count, **settings):
    model = job.model
    (workdir / "spec.json").write_text(json.dumps(model.get_config(), default=_jsonable))
    weights = {
        f"{layer.name}:{i}": np.asarray(w) for layer in _flat_layers(model) for i, w in enumerate(layer.get_weights())
    }
    np.savez(workdir / "weights.npz", **weights)
    reference_inputs = job.check_inputs[:8]
    np.savez(
        workdir / "data.npz",
        train_inputs=job.calib_inputs[:train_count],
        train_targets=job.calib_targets[:train_count],
        calib_inputs=job.calib_inputs[:calib_count],
        reference_inputs=reference_inputs,
        reference_outputs=model.predict(reference_inputs, verbose=0),
    )
    job_settings = {**settings, "task": job.task, "input_shape": list(job.input_shape)}
    (workdir / "job.json").write_text(json.dumps(job_settings))


def _flat_layers(model):
    """The layers of ``model`` with nested models opened up (the twin is built flat)."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _flat_layers(layer)
        else:
            yield layer


def _jsonable(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"cannot serialize {type(value).__name__}")


def run_worker(workdir, timeout=1800):
    """Run ``deploy._tfmot_worker`` on ``workdir``; its last error line becomes a ``GardenError``."""
    # TMPDIR: the worker's converter files land in ``workdir`` too, and go with it.
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3", TMPDIR=str(workdir))
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "deploy._tfmot_worker", str(workdir)],
            env=env,
            check=False,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise GardenError(f"tensorflow-model-optimization worker ran past {timeout} s") from None
    if done.returncode != 0 or not (Path(workdir) / "result.json").exists():
        lines = [line for line in (done.stderr or "").strip().splitlines() if line.strip()]
        raise GardenError(f"tensorflow-model-optimization worker failed: {lines[-1] if lines else done.returncode}")


def pruning_speed(job, workdir, repeats=30):
    """LiteRT fp32 latency: unpruned original vs pruned (dense storage) vs pruned with sparse encoding."""
    original = Path(workdir) / "original_fp32.tflite"
    convert_tflite(job.model, job.input_shape, "fp32", job.calib_inputs, original)
    files = {
        "original": original,
        "pruned_dense": Path(workdir) / "dense_fp32.tflite",
        "pruned_sparse": Path(workdir) / "sparse_fp32.tflite",
    }
    speed = {}
    for label, path in files.items():
        for threads in (1, check.all_threads()):
            timing = check.latency(check.open_runner(path, threads), job.input_shape, repeats)
            speed[f"{label}_{threads}t_ms"] = round(timing["median_ms"], 3)
        speed[f"{label}_bytes"] = path.stat().st_size
    base = speed["original_1t_ms"]
    speed["sparse_speedup_1t"] = round(base / speed["pruned_sparse_1t_ms"], 3)
    speed["faster"] = speed["sparse_speedup_1t"] > 1.2  # below that, timing noise on a shared CPU
    return speed
