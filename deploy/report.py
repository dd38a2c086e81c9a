"""The report after every export: size, ops, float fallbacks, latency and quality against float."""

import collections
import json
from pathlib import Path

import numpy as np

from deploy.check import all_threads, latency, open_runner

# Ops that only move between integer and float at the edges of a quantized graph.
_EDGE_OPS = {"QUANTIZE", "DEQUANTIZE", "QuantizeLinear", "DequantizeLinear", "Cast", "CAST"}
_COMPUTE_ONNX = {
    "Conv",
    "MatMul",
    "Gemm",
    "ConvTranspose",
    "Add",
    "Mul",
    "Concat",
    "Resize",
    "AveragePool",
    "GlobalAveragePool",
    "MaxPool",
    "Relu",
    "Clip",
}


def tflite_ops(path):
    """``(op counts, ops computing in float)`` of a ``.tflite`` file, read by LiteRT itself."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    counts, floating = collections.Counter(), collections.Counter()
    for op in interpreter._get_ops_details():  # the public API has no op list
        name = op["op_name"]
        counts[name] += 1
        if name in _EDGE_OPS:
            continue
        dtypes = [np.dtype(tensors[i]["dtype"]) for i in list(op["inputs"]) + list(op["outputs"]) if i in tensors]
        if any(d == np.float32 for d in dtypes):
            floating[name] += 1
    return dict(sorted(counts.items())), dict(sorted(floating.items()))


def onnx_ops(path):
    """``(op counts, compute ops fed by float tensors not coming from DequantizeLinear)``."""
    import onnx

    graph = onnx.load(str(path)).graph
    producer = {out: node.op_type for node in graph.node for out in node.output}
    counts, floating = collections.Counter(), collections.Counter()
    quantized = any(node.op_type == "DequantizeLinear" for node in graph.node)
    for node in graph.node:
        counts[node.op_type] += 1
        if quantized and node.op_type in _COMPUTE_ONNX:
            sources = [producer.get(name) for name in node.input if name in producer]
            if sources and all(s != "DequantizeLinear" for s in sources):
                floating[node.op_type] += 1
    return dict(sorted(counts.items())), dict(sorted(floating.items()))


def build_report(path, *, model_name, fmt, quant, input_shape, check_result, repeats=30):
    """The report dictionary for the file at ``path``."""
    path = Path(path)
    ops, floating = tflite_ops(path) if fmt == "tflite" else onnx_ops(path)
    threads = all_threads()
    runtime = "litert" if fmt == "tflite" else "onnxruntime"
    timings = {f"{runtime}_1_thread": latency(open_runner(path, 1), input_shape, repeats)}
    timings[f"{runtime}_{threads}_threads"] = latency(open_runner(path, threads), input_shape, repeats)
    return {
        "model": model_name,
        "file": path.name,
        "format": fmt,
        "quantization": quant,
        "input_shape": list(input_shape),
        "size_bytes": path.stat().st_size,
        "ops": ops,
        "float_ops": floating if quant in ("int8", "int8-io", "qat") else {},
        "latency": timings,
        "quality": check_result,
    }


def to_markdown(reports):
    """One row per report: the table the docs and the closing notes show."""
    lines = [
        (
            "| model | format | quant | size (KB) | latency median / p90 (ms), 1 thread | all threads | "
            "metric | float | file | drop | agreement | max diff | float ops |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        timings = list(r["latency"].values())
        q = r["quality"]
        diff = f"{q['max_abs_diff']:.3g}" if "max_abs_diff" in q else "-"
        if "max_rel_diff" in q:
            diff += f" ({q['max_rel_diff']:.1%} of range)"
        floating = ", ".join(f"{k} x{v}" for k, v in r["float_ops"].items()) or "none"
        lines.append(
            f"| {r['model']} | {r['format']} | {r['quantization']} | {r['size_bytes'] / 1024:,.1f} | "
            f"{timings[0]['median_ms']:.2f} / {timings[0]['p90_ms']:.2f} | "
            f"{timings[1]['median_ms']:.2f} / {timings[1]['p90_ms']:.2f} | {q['metric']} | {_points(q['float'])} | "
            f"{_points(q['artifact'])} | {_points(q['drop'], '+.2f')} | {q['agreement']:.1f}% | {diff} | {floating} |"
        )
    return "\n".join(lines)


def _points(value, spec=".2f"):
    """A quality figure, or ``-`` where the check data had no labels."""
    return "-" if value is None else format(value, spec)


def ops_markdown(report):
    return "ops: " + ", ".join(f"{name} x{count}" for name, count in report["ops"].items())


def dumps(report):
    return json.dumps(report, indent=2) + "\n"
