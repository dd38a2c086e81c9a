"""Training throughput on one GPU, on the Keras backend ``KERAS_BACKEND`` names (JAX or PyTorch), in one table.

The workloads the design card says garden trains on a GPU:

- ResNet-50 (He et al., 2016) at 224x224, batch 256, mixed precision: from synthetic tensors
  already on the device (the compute ceiling), and from garden's own input pipeline
  (``garden.train.pipeline.Batches``: JPEG files decoded by OpenCV, random resized crop and flip,
  worker threads) as ``garden train`` feeds it, through ``model.fit``; the pipeline alone, with
  no model, beside them;
- DeepLabv3+ with MobileNetV2 (Chen et al., 2018) at 513x513, 21 classes, batch 16 (the paper's
  crop and batch);
- one SimCLR step (Chen et al., 2020: two views, projection head, NT-Xent) on ResNet-18 at 224,
  batch 256.

Under JAX or PyTorch, TensorFlow is made unimportable first, so the run also proves that the models,
the input pipeline and the SSL method need none (the GPU machines have no TensorFlow). A step is
timed from the end of one to the end of the next, its loss read back (so the device has finished);
``--warmup`` steps (compilation) are not timed; the table gives medians.

    KERAS_BACKEND=jax python bench/gpu.py            # on the GPU machine; again with KERAS_BACKEND=torch
    python bench/gpu.py --tiny                       # a minute on a CPU: small inputs, shallow ResNet-50 (make test)

On a GPU machine without Keras, carry the wheels (keras, namex, optree; docs/training.md says how).
"""

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

BACKEND = os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
if BACKEND != "tensorflow":
    sys.modules["tensorflow"] = None  # an `import tensorflow` anywhere below now fails: none is needed

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import garden  # noqa: E402
from deploy.op_profile import machine_line  # noqa: E402
from garden._files import write_text  # noqa: E402

keras = garden.import_keras()


@dataclass(frozen=True)
class Case:
    """One row: ``model`` built by ``garden.create_model(model, **overrides)``, trained on ``data``."""

    workload: str
    model: str
    data: str  # "synthetic", "pipeline" (model.fit on garden's Batches) or "pipeline alone" (no model)
    size: int
    batch: int
    classes: int = 0  # 0: a self-supervised method (no labels)
    overrides: dict = field(default_factory=dict)


CASES = (
    Case("ResNet-50", "resnet50", "synthetic", 224, 256, 1000),
    Case("ResNet-50", "resnet50", "pipeline", 224, 256, 1000),
    Case("ResNet-50 input", "resnet50", "pipeline alone", 224, 256, 1000),
    Case("DeepLabv3+ MobileNetV2", "deeplabv3plus", "synthetic", 513, 16, 21),
    Case("SimCLR ResNet-18", "simclr", "synthetic", 224, 256, overrides={"backbone": "resnet18"}),
)
# --tiny: the same code paths in about a minute on a CPU (one bottleneck block per ResNet-50 stage).
TINY = (
    Case("ResNet-50 (1 block a stage)", "resnet50", "synthetic", 32, 4, 10, {"depths": (1, 1, 1, 1)}),
    Case("ResNet-50 (1 block a stage)", "resnet50", "pipeline", 32, 4, 10, {"depths": (1, 1, 1, 1)}),
    Case("ResNet-50 input", "resnet50", "pipeline alone", 32, 4, 10),
    Case("DeepLabv3+ MobileNetV2 0.35", "deeplabv3plus", "synthetic", 65, 2, 21, {"backbone_kwargs": {"alpha": 0.35}}),
    Case("SimCLR ResNet-18", "simclr", "synthetic", 32, 8, overrides={"backbone": "resnet18"}),
)
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field")


def build(case):
    overrides = dict(case.overrides)
    if case.classes:
        overrides["num_classes"] = case.classes
    model = garden.create_model(case.model, input_shape=(case.size, case.size, 3), **overrides)
    if case.classes:
        model.compile(
            optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
    else:
        model.compile(optimizer=keras.optimizers.AdamW(1e-3))
    return model


def synthetic_batch(case):
    """Random pixels and labels (class indices, or a mask for a segmenter), as tensors on the device."""
    rng = np.random.default_rng(0)
    x = keras.ops.convert_to_tensor(rng.random((case.batch, case.size, case.size, 3), dtype=np.float32))
    if not case.classes:
        return x, None
    shape = (case.batch, case.size, case.size) if case.model.startswith("deeplab") else (case.batch,)
    return x, keras.ops.convert_to_tensor(rng.integers(0, case.classes, size=shape).astype("int32"))


def time_synthetic(case, warmup, steps):
    model = build(case)
    x, y = synthetic_batch(case)
    times = []
    for _ in range(warmup + steps):
        started = time.perf_counter()
        float(np.asarray(model.train_on_batch(x, y)))  # the loss on the host: the step has finished
        times.append(time.perf_counter() - started)
    return times[warmup:]


def photo_folder(root, count, seed=0):
    """``count`` JPEG files in two class folders: crops of scikit-image's photographs at about 500x375."""
    import cv2
    from skimage import data as photos

    rng = np.random.default_rng(seed)
    sources = []
    for name in PHOTOS:
        image = np.asarray(getattr(photos, name)())
        sources.append(cv2.resize(image[..., :3], (667, 500), interpolation=cv2.INTER_AREA))
    for index in range(count):
        image = sources[index % len(sources)]
        top, left = rng.integers(0, 125), rng.integers(0, 167)
        crop = image[top : top + 375, left : left + 500]
        folder = Path(root) / f"class{index % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{index:05d}.jpg"), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
    return root


def pipeline_batches(case, root, needed, workers):
    """garden's training input: ``Batches`` over the photo folder, augmented as ImageNet training is."""
    from garden.data import Subset
    from garden.data.augment import Augment
    from garden.data.sources import load_source
    from garden.train.pipeline import Batches

    examples = load_source(str(root))
    repeated = Subset(examples, np.resize(np.arange(len(examples)), needed * case.batch), name=examples.name)
    return Batches(
        repeated,
        case.batch,
        (case.size, case.size, 3),
        training=True,
        augment=Augment(flip=True, crop=0.08),
        workers=workers,
    )


class StepTimes(keras.callbacks.Callback):
    """The time of each training step in ``model.fit``: loss read back at every batch end."""

    def __init__(self):
        super().__init__()
        self.ends = []

    def on_train_batch_end(self, batch, logs=None):
        float(np.asarray(keras.ops.convert_to_numpy(logs["loss"])))
        self.ends.append(time.perf_counter())


def time_pipeline(case, warmup, steps, root, workers):
    model = build(case)
    batches = pipeline_batches(case, root, warmup + steps + 1, workers)
    timer = StepTimes()
    model.fit(batches, epochs=1, steps_per_epoch=warmup + steps + 1, verbose=0, callbacks=[timer])
    return list(np.diff(timer.ends)[warmup:])


def time_pipeline_alone(case, warmup, steps, root, workers):
    """Batches made by ``workers`` threads, as fast as they come, with no model: the pipeline's ceiling."""
    batches = pipeline_batches(case, root, warmup + steps, workers)
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(batches.__getitem__, range(min(warmup, len(batches)))))
        started = time.perf_counter()
        list(pool.map(batches.__getitem__, range(warmup, len(batches))))
    return [(time.perf_counter() - started) / (len(batches) - warmup)]


def device_name():
    if BACKEND == "jax":
        import jax

        chip = jax.devices()[0]
        return f"{chip.platform}: {getattr(chip, 'device_kind', chip)}"
    if BACKEND == "torch":
        import torch

        return f"cuda: {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "cpu"
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return f"gpu: {gpus[0].name}" if gpus else "cpu"


def run(cases, args):
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        root = None
        for case in cases:
            if case.data != "synthetic" and root is None:
                root = photo_folder(Path(scratch) / "photos", args.images)
            if case.data == "synthetic":
                times = time_synthetic(case, args.warmup, args.steps)
            elif case.data == "pipeline":
                times = time_pipeline(case, args.warmup, args.steps, root, args.workers)
            else:
                times = time_pipeline_alone(case, args.warmup, args.steps, root, args.workers)
            step = float(np.median(times))
            row = {
                "workload": case.workload,
                "data": case.data,
                "size": case.size,
                "batch": case.batch,
                "step_ms": 1000 * step,
                "images_s": case.batch / step,
            }
            print("ROW " + json.dumps(row), file=sys.stderr, flush=True)
            rows.append(row)
    return rows


def to_markdown(rows, args):
    precision = keras.config.dtype_policy().name
    lines = [
        f"Keras {keras.__version__}, backend {BACKEND} on {device_name()}, {precision}; "
        f"tensorflow {'hidden' if sys.modules.get('tensorflow', 0) is None else 'importable'}; "
        f"{args.steps} timed steps after {args.warmup} warm-up, medians; pipeline: {args.workers} worker threads, "
        f"{args.images} JPEG files",
        f"Host: {machine_line()}",
        "",
        "| workload | data | input | batch | ms / step | images / s |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = (r["workload"], r["data"], f"{r['size']}x{r['size']}", r["batch"], f"{r['step_ms']:,.1f}")
        lines.append("| " + " | ".join(map(str, cells)) + f" | {r['images_s']:,.1f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="small inputs and models: about a minute on a CPU")
    parser.add_argument("--steps", type=int, help="timed steps (default 20; 2 with --tiny)")
    parser.add_argument("--warmup", type=int, help="untimed first steps (default 3; 1 with --tiny)")
    parser.add_argument("--precision", default="mixed_bfloat16", choices=("mixed_bfloat16", "mixed_float16", "float32"))
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="input pipeline threads")
    parser.add_argument("--images", type=int, help="JPEG files the pipeline reads (default 1024; 16 with --tiny)")
    parser.add_argument("--only", help="comma-separated workloads to run (substrings of the first column)")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args(argv)
    args.steps = args.steps or (2 if args.tiny else 20)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.tiny else 3)
    args.images = args.images or (16 if args.tiny else 1024)
    keras.config.set_dtype_policy(args.precision)
    cases = TINY if args.tiny else CASES
    if args.only:
        cases = [c for c in cases if any(part.strip() in c.workload for part in args.only.split(","))]
    rows = run(cases, args)
    print(to_markdown(rows, args))
    if args.json:
        write_text(args.json, json.dumps(rows, indent=2) + "\n")
    return rows


if __name__ == "__main__":
    main()
