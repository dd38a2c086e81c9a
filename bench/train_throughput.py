"""Training throughput on synthetic data: images/second per Keras backend, and our ResNet-50
against keras.applications.ResNet50 in the same process (a ratio of step times, not absolute time).

    python bench/train_throughput.py                       # every installed backend, CPU-sized steps
    python bench/train_throughput.py --backends jax --steps 50 --batch-size 128 --precision mixed_bfloat16

Each backend runs in its own process (Keras fixes its backend at import). A step is one
``train_on_batch`` with SGD and sparse cross-entropy on random pixels and labels; the first
``--warmup`` steps (compilation) are not timed; the table gives the median of ``--steps`` steps.
"""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ("tensorflow", "jax", "torch")
# (label, how to build, input size, classes)
CASES = (
    ("resnet50", "garden", 224, 1000),
    ("keras.applications.ResNet50", "keras", 224, 1000),
    ("resnet18", "garden", 32, 10),
)


def build(kind, name, size, classes):
    import keras

    if kind == "keras":
        return keras.applications.ResNet50(
            weights=None, input_shape=(size, size, 3), classes=classes, classifier_activation=None
        )
    import garden

    return garden.create_model(name, num_classes=classes, input_shape=(size, size, 3))


def prepare(kind, name, size, classes, batch_size, warmup):
    import keras
    import numpy as np

    model = build(kind, name, size, classes)
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    rng = np.random.default_rng(0)
    x = rng.random((batch_size, size, size, 3), dtype=np.float32)
    y = rng.integers(0, classes, size=batch_size)
    for _ in range(warmup):
        model.train_on_batch(x, y)
    return lambda: _timed_step(model, x, y)


def _timed_step(model, x, y):
    import numpy as np

    started = time.perf_counter()
    float(np.asarray(model.train_on_batch(x, y)))  # the loss value waits for the step to finish
    return time.perf_counter() - started


def worker(args):
    """Time every case; cases at the same input size are interleaved step by step, so a machine
    whose load drifts (shared CPUs) slows both sides of the ResNet-50 ratio alike. Medians."""
    import keras
    import numpy as np

    if args.precision:
        keras.config.set_dtype_policy(args.precision)
    device = _device(keras.backend.backend())
    for size in dict.fromkeys(case[2] for case in CASES):
        cases = [case for case in CASES if case[2] == size]
        batch = args.batch_size if size > 64 else args.small_batch_size
        steps = [prepare(kind, name, size, classes, batch, args.warmup) for name, kind, _, classes in cases]
        times = [[] for _ in cases]
        for _ in range(args.steps):
            for step, record in zip(steps, times):
                record.append(step())
        for (name, _, _, _), record in zip(cases, times):
            step_s = float(np.median(record))
            row = {
                "model": name,
                "size": size,
                "batch": batch,
                "step_ms": 1000 * step_s,
                "images_s": batch / step_s,
                "backend": keras.backend.backend(),
                "device": device,
            }
            print("ROW " + json.dumps(row), flush=True)


def _device(backend):
    if backend == "jax":
        import jax

        return jax.devices()[0].platform
    if backend == "torch":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    import tensorflow as tf

    return "gpu" if tf.config.list_physical_devices("GPU") else "cpu"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default=",".join(b for b in BACKENDS if _installed(b)))
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=8, help="batch at 224x224")
    parser.add_argument("--small-batch-size", type=int, default=64, help="batch at 32x32")
    parser.add_argument("--precision", choices=("mixed_float16", "mixed_bfloat16"))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    rows = []
    for backend in args.backends.split(","):
        command = [sys.executable, __file__, "--worker", *_forward(args)]
        env = {
            **os.environ,
            "KERAS_BACKEND": backend,
            "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        }
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        found = [json.loads(line[4:]) for line in done.stdout.splitlines() if line.startswith("ROW ")]
        if done.returncode:
            print(
                f"{backend}: failed: "
                f"{done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}",
                file=sys.stderr,
            )
        for row in found:
            print(f"{row['backend']} {row['model']} {row['size']}px: {row['images_s']:.1f} images/s", file=sys.stderr)
        rows += found
    print_table(rows, args)


def print_table(rows, args):
    print(
        f"Training throughput, synthetic data, {args.steps} timed steps after {args.warmup} warm-up"
        f"{', ' + args.precision if args.precision else ''}\n"
    )
    print("| backend | device | model | input | batch | ms / step | images / s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['backend']} | {r['device']} | {r['model']} | {r['size']}x{r['size']} | {r['batch']} | "
            f"{r['step_ms']:,.1f} | {r['images_s']:,.1f} |"
        )
    print("\n| backend | garden resnet50 / keras.applications.ResNet50 (step time) |")
    print("|---|---|")
    for backend in dict.fromkeys(r["backend"] for r in rows):
        ours = next((r for r in rows if r["backend"] == backend and r["model"] == "resnet50"), None)
        theirs = next((r for r in rows if r["backend"] == backend and r["model"].startswith("keras")), None)
        if ours and theirs:
            print(f"| {backend} | {ours['step_ms'] / theirs['step_ms']:.3f} |")


def _forward(args):
    out = [
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
        "--batch-size",
        str(args.batch_size),
        "--small-batch-size",
        str(args.small_batch_size),
    ]
    return out + (["--precision", args.precision] if args.precision else [])


def _installed(backend):
    return importlib.util.find_spec(backend) is not None


if __name__ == "__main__":
    main()
