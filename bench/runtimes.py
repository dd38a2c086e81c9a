"""The same MobileNetV2 in every runtime, in one run, as ratios.

garden's ``mobilenet_v2`` is exported by ``deploy.export`` to LiteRT fp32, fp16 and int8 and to ONNX
(fp32, int8), and run in LiteRT, onnxruntime and OpenCV's DNN module (where it loads the file). The
baseline is ``keras.applications.MobileNetV2`` exported the standard way (SavedModel, then
``TFLiteConverter.from_saved_model``, fp32). Latency is the median of batch-1 runs on this CPU.

    PYTHONPATH=. python bench/runtimes.py --input-size 224 --out runtimes_out
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deploy import check  # noqa: E402
from deploy.export import export  # noqa: E402


def baseline_tflite(input_size, path):
    """keras.applications.MobileNetV2 (random weights, logits) through SavedModel and the TFLite converter."""
    import keras
    import tensorflow as tf

    model = keras.applications.MobileNetV2(
        weights=None, input_shape=(input_size, input_size, 3), classifier_activation=None
    )
    with tempfile.TemporaryDirectory() as saved:
        model.export(saved, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        Path(path).write_bytes(converter.convert())
    return path


def opencv_latency(path, input_size, repeats):
    """OpenCV DNN on the file, or the reason it does not load."""
    import cv2

    try:
        net = cv2.dnn.readNetFromTFLite(str(path)) if str(path).endswith(".tflite") else cv2.dnn.readNet(str(path))
        blob = np.random.default_rng(0).random((1, input_size, input_size, 3), dtype="float32")
        if str(path).endswith(".onnx"):
            net.setInput(blob)
        else:
            net.setInput(blob)
        net.forward()
    except Exception as error:  # OpenCV raises cv2.error with multi-line text
        return None, str(error).strip().splitlines()[-1][:120]
    cv2.setNumThreads(1)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        net.forward()
        times.append((time.perf_counter() - start) * 1000)
    cv2.setNumThreads(-1)
    return float(np.median(times)), ""


def measure(path, input_size, repeats):
    shape = (input_size, input_size, 3)
    return {
        threads: check.latency(check.open_runner(path, threads), shape, repeats)["median_ms"]
        for threads in (1, check.all_threads())
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--out", default="runtimes_out")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    import garden

    size = args.input_size
    model = garden.create_model("mobilenet_v2", alpha=args.alpha, input_shape=(size, size, 3), num_classes=1000)
    rows = []
    base_path = baseline_tflite(size, out / "keras_applications_mobilenet_v2_fp32.tflite")
    base = measure(base_path, size, args.repeats)
    rows.append({"model": "keras.applications MobileNetV2", "runtime": "LiteRT", "quant": "fp32", "ms": base})
    for fmt, quant in (("tflite", "fp32"), ("tflite", "fp16"), ("tflite", "int8"), ("onnx", "fp32"), ("onnx", "int8")):
        quick = {"calib": "digits", "calib_count": 32, "check_count": 16, "repeats": 3}
        result = export(model, format=fmt, quant=quant, out=out, name=f"mobilenet_v2_{quant}", **quick)
        runtime = "LiteRT" if fmt == "tflite" else "onnxruntime"
        rows.append(
            {
                "model": "garden mobilenet_v2",
                "runtime": runtime,
                "quant": quant,
                "ms": measure(result.path, size, args.repeats),
                "drop": result.report["quality"]["drop"],
                "size_kb": result.path.stat().st_size / 1024,
            }
        )
        if quant == "fp32":
            ms, why = opencv_latency(result.path, size, args.repeats)
            rows.append(
                {
                    "model": "garden mobilenet_v2",
                    "runtime": f"OpenCV DNN ({fmt})",
                    "quant": quant,
                    "ms": {1: ms} if ms else None,
                    "note": why,
                }
            )
    threads = check.all_threads()
    lines = [
        f"MobileNetV2 alpha {args.alpha} at {size}x{size}, batch 1, median of {args.repeats} runs; "
        f"ratio = baseline latency / this latency (above 1 is faster than the baseline)",
        "",
        f"| model | runtime | quant | ms, 1 thread | ms, {threads} threads | ratio (1 thread) | "
        f"ratio ({threads} threads) | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ms = r["ms"]
        if not ms:
            lines.append(
                f"| {r['model']} | {r['runtime']} | {r['quant']} | - | - | - | - | does not load: {r['note']} |"
            )
            continue
        many = ms.get(threads)
        lines.append(
            f"| {r['model']} | {r['runtime']} | {r['quant']} | {ms[1]:.2f} | {many and f'{many:.2f}' or '-'} | "
            f"{base[1] / ms[1]:.2f} | {many and f'{base[threads] / many:.2f}' or '-'} | {r.get('note', '')} |"
        )
    table = "\n".join(lines)
    (out / "runtimes.md").write_text(table + "\n")
    (out / "runtimes.json").write_text(json.dumps(rows, indent=2, default=str) + "\n")
    print(table)


if __name__ == "__main__":
    main()
