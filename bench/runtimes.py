"""The same MobileNetV2 in every runtime, in one run, as ratios.

garden's ``mobilenet_v2`` is exported by ``deploy.export`` to LiteRT fp32, fp16 and int8 and to ONNX
(fp32, int8), and run in LiteRT, onnxruntime and OpenCV's DNN module (where it loads the file). The
baseline is ``keras.applications.MobileNetV2`` exported the standard way (SavedModel, then
``TFLiteConverter.from_saved_model``, fp32). Latency is the median of batch-1 runs on this CPU.

    PYTHONPATH=. python bench/runtimes.py --input-size 224 --out runtimes_out
    PYTHONPATH=. python bench/runtimes.py --levers --out levers_out     # int8 closer to the hardware

``--levers``: every lever the converters and runtimes offer for int8, each file and runtime setting
timed interleaved with the others at 1 thread (``deploy.check.interleaved_latency``), as ratios to
the keras.applications fp32 baseline: LiteRT int8 with float or integer input/output, per-channel or
per-tensor weights, the ``Interpreter`` (XNNPACK) or the ``CompiledModel`` runtime or the builtin
kernels; onnxruntime fp32 against static int8 in QDQ and QOperator form, signed or unsigned
activations, per-channel or per-tensor, with the ops onnxruntime's graph optimizer leaves in float.
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
from deploy.op_profile import machine_line  # noqa: E402


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


class CompiledRunner(check.LiteRTRunner):
    """A ``.tflite`` file in LiteRT's ``CompiledModel`` runtime (CPU), with ``check.LiteRTRunner``'s interface."""

    def __init__(self, path, num_threads=1, **cpu_options):
        from ai_edge_litert.compiled_model import CompiledModel
        from ai_edge_litert.hardware_accelerator import HardwareAccelerator
        from ai_edge_litert.options import CpuOptions, Options

        super().__init__(path, num_threads)  # the tensor details (dtype, quantization) feed and dequantize read
        options = Options(HardwareAccelerator.CPU, CpuOptions(num_threads=num_threads, **cpu_options))
        self.model = CompiledModel.from_file(str(path), options=options)
        self.inputs, self.outputs = self.model.create_input_buffers(0), self.model.create_output_buffers(0)
        self.output_size = int(np.prod(self.output["shape"]))

    def invoke(self, fed):
        self.inputs[0].write(fed)
        self.model.run_by_index(0, self.inputs, self.outputs)
        return self.outputs[0].read(self.output_size, self.output["dtype"]).reshape(self.output["shape"])


class BuiltinRunner(check.LiteRTRunner):
    """The TFLite builtin kernels (ruy, no XNNPACK delegate)."""

    def __init__(self, path, num_threads=1):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        self.interpreter = Interpreter(
            model_path=str(path),
            num_threads=num_threads,
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]


def tflite_variant(model, size, quant, calib, path, *, io_dtype="uint8", per_channel=True):
    """garden's TFLite writer's converter, with per-channel weights optionally turned off."""
    from deploy.quantization import tflite_converter
    from deploy.serving import serving_module
    from deploy.tflite import run_converter

    module = serving_module(model, (size, size, 3), "logits")
    converter = tflite_converter(module.serve.get_concrete_function(), module, quant, calib, io_dtype=io_dtype)
    converter._experimental_disable_per_channel = not per_channel  # the converter's only per-tensor switch
    Path(path).write_bytes(run_converter(converter, model.name))
    return path


def onnx_variant(float_path, path, calib, *, quant_format, activation, per_channel):
    """onnxruntime's static quantization of the float file in one format."""
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    from deploy.onnx_export import _Reader

    quantize_static(
        str(float_path),
        str(path),
        _Reader(onnx.load(str(float_path)).graph.input[0].name, calib),
        quant_format=getattr(QuantFormat, quant_format),
        activation_type=getattr(QuantType, activation),
        weight_type=QuantType.QInt8,
        per_channel=per_channel,
    )
    return path


INT8_QDQ = {"session.qdqisint8allowed": "1"}  # fuse QDQ nodes with int8 activations on x86 too


class ConfiguredOnnx(check.OnnxRunner):
    """``check.OnnxRunner``'s session with session config entries, optionally saving the optimized graph."""

    def __init__(self, path, num_threads=1, config=None, optimized_path=None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = num_threads, 1
        options.log_severity_level = 3
        self.config = dict(config or {})
        for key, value in self.config.items():
            options.add_session_config_entry(key, value)
        if optimized_path:
            options.optimized_model_filepath = str(optimized_path)
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0]
        self.output_name = self.session.get_outputs()[0].name


def onnx_float_ops(path, runner):
    """The op types onnxruntime's optimized graph runs (fused integer ops, what stays float), as ``runner`` runs it."""
    import collections

    import onnx

    with tempfile.TemporaryDirectory() as scratch:
        optimized = Path(scratch) / "optimized.onnx"
        ConfiguredOnnx(path, 1, getattr(runner, "config", None), optimized)
        graph = onnx.load(str(optimized)).graph
    counts = collections.Counter(node.op_type for node in graph.node)
    return ", ".join(f"{op} {n}" for op, n in counts.most_common(6))


def levers(args, out):
    """Every int8 lever, timed interleaved at 1 thread; agreement with the Keras model on random inputs."""
    import garden
    from deploy.onnx_export import convert_onnx
    from garden.ssl.evaluate import recalibrate_batch_norm

    size = args.input_size
    model = garden.create_model("mobilenet_v2", alpha=args.alpha, input_shape=(size, size, 3), num_classes=1000)
    rng = np.random.default_rng(0)
    calib = rng.random((32, size, size, 3), dtype="float32")
    probe = rng.random((8, size, size, 3), dtype="float32")
    # Batch norm statistics from the images: at initialisation a deep network's logits shrink to ~1e-11,
    # which int8 rounds to one constant, and no file could be told from another.
    recalibrate_batch_norm(model, calib)
    reference = np.asarray(model.predict(probe, verbose=0)).ravel()
    tflite = {
        "keras.applications fp32 (default converter)": baseline_tflite(size, out / "base_fp32.tflite"),
        "garden fp32": tflite_variant(model, size, "fp32", calib, out / "fp32.tflite"),
        "garden int8, float in/out": tflite_variant(model, size, "int8", calib, out / "int8.tflite"),
        "garden int8-io, uint8 in/out": tflite_variant(model, size, "int8-io", calib, out / "int8_io.tflite"),
        "garden int8-io, int8 in/out": tflite_variant(
            model, size, "int8-io", calib, out / "int8_io_s8.tflite", io_dtype="int8"
        ),
        "garden int8-io, per-tensor weights": tflite_variant(
            model, size, "int8-io", calib, out / "int8_io_tensor.tflite", per_channel=False
        ),
    }
    runs = []  # (label, runtime, runner, file)
    for label, path in tflite.items():
        runs.append((label, "LiteRT Interpreter (XNNPACK)", check.LiteRTRunner(path, 1), path))
    refused = []
    for label in ("garden fp32", "garden int8-io, uint8 in/out"):
        runs.append((label, "LiteRT CompiledModel (XNNPACK)", CompiledRunner(tflite[label], 1), tflite[label]))
        runs.append((label, "TFLite builtin kernels (no XNNPACK)", BuiltinRunner(tflite[label], 1), tflite[label]))
        try:
            ynnpack = CompiledRunner(tflite[label], 1, enable_ynnpack=True)
            runs.append((label, "LiteRT CompiledModel, enable_ynnpack", ynnpack, tflite[label]))
        except RuntimeError as error:
            refused.append((label, "LiteRT CompiledModel, enable_ynnpack", str(error).strip().splitlines()[0][:80]))
    float_onnx = out / "fp32.onnx"
    convert_onnx(model, (size, size, 3), "fp32", calib, float_onnx)
    onnx_files = {"garden fp32": float_onnx}
    for name, fmt, activation, per_channel in (
        ("QDQ, int8 activations, per-channel (garden's int8 until now)", "QDQ", "QInt8", True),
        ("QDQ, uint8 activations, per-channel (garden's int8)", "QDQ", "QUInt8", True),
        ("QDQ, int8 activations, per-tensor", "QDQ", "QInt8", False),
        ("QOperator, uint8 activations, per-channel", "QOperator", "QUInt8", True),
        ("QOperator, uint8 activations, per-tensor", "QOperator", "QUInt8", False),
    ):
        target = out / f"int8_{fmt}_{activation}_{'channel' if per_channel else 'tensor'}.onnx"
        onnx_files[f"garden int8 {name}"] = onnx_variant(
            float_onnx, target, calib, quant_format=fmt, activation=activation, per_channel=per_channel
        )
    for label, path in onnx_files.items():
        runs.append((label, "onnxruntime", check.OnnxRunner(path, 1), path))
    signed = onnx_files["garden int8 QDQ, int8 activations, per-channel (garden's int8 until now)"]
    forced = ConfiguredOnnx(signed, 1, INT8_QDQ)
    runs.append(("garden int8 QDQ, int8 activations, per-channel", "onnxruntime, qdqisint8allowed=1", forced, signed))
    shape = (size, size, 3)
    times = check.interleaved_latency([(runner, shape) for _, _, runner, _ in runs], rounds=args.repeats)
    base = times[0]
    rows = []
    for (label, runtime, runner, path), ms in zip(runs, times):
        correlation = float(np.corrcoef(runner.run(probe).ravel(), reference)[0, 1])
        note = onnx_float_ops(path, runner) if str(path).endswith(".onnx") else ""
        rows.append(
            {
                "file": label,
                "runtime": runtime,
                "ms": ms,
                "ratio": ms / base,
                "kb": Path(path).stat().st_size / 1024,
                "correlation": correlation if "keras.applications" not in label else None,
                "ops": note,
            }
        )
    for label, runtime, why in refused:
        rows.append({"file": label, "runtime": runtime, "ms": None, "ops": f"does not load: {why}"})
    return rows


def levers_markdown(rows, args):
    lines = [
        f"MobileNetV2 alpha {args.alpha} at {args.input_size}x{args.input_size}, batch 1, 1 thread, interleaved "
        f"({args.repeats} rounds of 5, medians); ratio = this / keras.applications fp32 (below 1 is faster); "
        "correlation: of the file's logits with the Keras model's on 8 random images (random weights, batch norm "
        "statistics set from the calibration images)",
        f"Machine: {machine_line()}",
        "",
        "| file | runtime | ms | ratio | KB | correlation | onnxruntime's optimized graph (most common ops) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["ms"] is None:
            lines.append(f"| {r['file']} | {r['runtime']} | - | - | - | - | {r['ops']} |")
            continue
        correlation = "-" if r["correlation"] is None else f"{r['correlation']:.4f}"
        lines.append(
            f"| {r['file']} | {r['runtime']} | {r['ms']:.2f} | {r['ratio']:.2f} | {r['kb']:,.0f} | {correlation} | "
            f"{r['ops']} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--out", default="runtimes_out")
    parser.add_argument("--levers", action="store_true", help="int8 levers, interleaved at 1 thread (see above)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.levers:
        table = levers_markdown(levers(args, out), args)
        (out / "levers.md").write_text(table + "\n")
        print(table)
        return

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
