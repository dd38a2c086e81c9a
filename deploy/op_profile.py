"""``garden bench separable --per-op``: time and multiply-adds per kind of convolution, against this CPU's peak.

The pip package of LiteRT (ai-edge-litert 2.3) has no op profiler to call: its ``Interpreter``
takes ``experimental_force_delegate_node_profiling`` but gives no way to read a profile, the
``benchmark_model`` binary (``--enable_op_profiling``) is not in the wheel (``litert-cli`` fetches
it from the web at run time), and the ``CompiledModel`` API and its benchmark script time whole
models. So each convolution is timed on its own: rebuilt as a one-layer model (same input shape,
kernel, strides, dilation, filters, with a bias as the converter folds batch norm into one),
converted in the same mode, and run in LiteRT (XNNPACK) with 1 thread, all of a model's distinct
convolutions in interleaved rounds; a one-op model's invoke overhead is subtracted. The sum per
kind (depthwise, pointwise 1x1, standard KxK) is set beside the whole model's latency: the rest
("other") is pooling, the classifier and what running ops back to back saves or costs.

The peak of each kind comes from the instruction sets ``/proc/cpuinfo`` lists and its clock:
float convolutions do fused multiply-adds in 32-bit lanes; integer pointwise and standard
convolutions are matrix products that take 8-bit dot products (AVX-512 VNNI / AVX-VNNI ``vpdpbusd``,
Arm ``sdot``: 4 multiply-adds per 32-bit lane) or a matrix unit (AMX-INT8: 1024 a cycle); an
integer depthwise convolution sums 9 taps of one channel, not channels, so no dot product fits it:
XNNPACK widens its int8 values and multiplies in 32-bit lanes, at the float rate.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

KINDS = ("depthwise", "pointwise", "standard")
PIPES = 2  # vector multiply-add pipes per core: x86 since Haswell / Zen, Cortex-A72 and A76
ARM_PARTS = {"0xd03": "Cortex-A53", "0xd08": "Cortex-A72", "0xd0b": "Cortex-A76", "0xd4b": "Cortex-A78C"}


@dataclass(frozen=True)
class Cpu:
    """What ``/proc/cpuinfo`` says about one core."""

    model: str
    vendor: str
    family: int
    mhz: float
    flags: frozenset

    @property
    def vector_bits(self):
        if "avx512f" in self.flags:
            return 512
        if "avx2" in self.flags:
            return 256
        return 128  # SSE or NEON (asimd)

    @property
    def datapath_bits(self):
        """Bits a vector pipe handles per cycle: AMD's family 25 (Zen 3, Zen 4) runs AVX-512 as two 256-bit halves."""
        if self.vendor == "AuthenticAMD" and self.family == 25:
            return min(self.vector_bits, 256)
        return self.vector_bits


def read_cpu(text=None):
    """The first processor of ``/proc/cpuinfo`` (or of ``text``)."""
    if text is None:
        try:
            text = Path("/proc/cpuinfo").read_text()
        except OSError:
            text = ""
    fields = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    flags = frozenset((fields.get("flags") or fields.get("Features") or "").split())
    family = fields.get("cpu family", "0")
    part = fields.get("CPU part", "")
    return Cpu(
        model=fields.get("model name") or ARM_PARTS.get(part) or part or "unknown",
        vendor=fields.get("vendor_id") or fields.get("CPU implementer", ""),
        family=int(family) if family.isdigit() else 0,
        mhz=float(fields.get("cpu MHz") or 0.0) or _max_mhz(),
        flags=flags,
    )


def _max_mhz():
    """Arm kernels print no clock in /proc/cpuinfo: the cpufreq maximum, or 0 (peaks then unknown)."""
    try:
        return int(Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text()) / 1000
    except (OSError, ValueError):
        return 0.0


def peaks(cpu):
    """``{(quant, kind): (multiply-adds per cycle, how)}`` for one core of ``cpu``."""
    lanes32 = PIPES * cpu.datapath_bits // 32
    float_rate = (lanes32, f"{PIPES} x {cpu.datapath_bits}-bit FMA, 32-bit lanes")
    if {"amx_int8", "amx_tile"} <= cpu.flags:
        matrix = (1024, "AMX-INT8 tiles")
    elif cpu.flags & {"avx512_vnni", "avx_vnni", "avx512vnni"}:
        matrix = (4 * lanes32, f"VNNI dot products, {PIPES} x {cpu.datapath_bits}-bit")
    elif "asimddp" in cpu.flags:
        matrix = (4 * lanes32, "NEON sdot, 2 x 128-bit")
    elif "asimd" in cpu.flags:
        matrix = (lanes32, "NEON 8x8-bit products widened to 16, summed in 32-bit lanes (no sdot)")
    else:
        matrix = (2 * lanes32, "vpmaddubsw 16-bit pair sums (no VNNI)")
    table = {("fp32", kind): float_rate for kind in KINDS}
    table.update({("int8", "pointwise"): matrix, ("int8", "standard"): matrix})
    table[("int8", "depthwise")] = (lanes32, "int8 widened to 32-bit lanes (no dot product over taps)")
    return table


def describe(cpu):
    isa = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimddp") if f in cpu.flags]
    return f"{cpu.model}, {cpu.mhz:.0f} MHz, {', '.join(isa) or 'no AVX2 / AVX-512 / VNNI / AMX'}"


def machine_line():
    """This machine for a benchmark's header: CPU, clock and ISA, cores, and ``uptime``'s load."""
    import os
    import subprocess

    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    return f"{describe(read_cpu())}; {os.cpu_count()} cores; {uptime}"


# ---------------------------------------------------------------- the convolutions of a model


def conv_kind(layer):
    """``depthwise``, ``pointwise`` (1x1), ``standard`` (KxK) or None (not a convolution)."""
    import keras

    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return "depthwise"
    if isinstance(layer, keras.layers.Conv2D) and not isinstance(layer, keras.layers.Conv2DTranspose):
        return "pointwise" if tuple(layer.kernel_size) == (1, 1) else "standard"
    return None


def convolutions(model):
    """Every convolution layer of ``model``, nested models included, in order."""
    import keras

    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found += convolutions(layer)
        elif conv_kind(layer):
            found.append(layer)
    return found


def _config(layer):
    config = {**layer.get_config(), "use_bias": True, "activation": "linear", "dtype": "float32"}
    config.pop("name", None)
    return config


def signature(layer):
    """What the op's time depends on: its class, input shape and configuration."""
    shape = tuple(layer.input.shape[1:])
    return (type(layer).__name__, shape, json.dumps(_config(layer), sort_keys=True, default=str))


def one_op_model(layer):
    """A model of ``layer``'s convolution alone, at its input shape."""
    import keras

    inputs = keras.Input(tuple(layer.input.shape[1:]))
    return keras.Model(inputs, type(layer).from_config(_config(layer))(inputs), name=f"op_{layer.name}")


def _overhead_model():
    import keras

    inputs = keras.Input((1, 1, 8))
    return keras.Model(inputs, keras.layers.Conv2D(8, 1)(inputs), name="op_overhead")


def op_rows(model, quant, whole_path, scratch, rounds, cpu):
    """Per kind: ops, multiply-adds, summed time, achieved multiply-adds/s, peak and share of it.

    ``whole_path`` is ``model``'s file in mode ``quant``: timed in the same rounds as its ops.
    """
    import garden
    from deploy import check
    from deploy.tflite import convert_tflite

    layers = convolutions(model)
    distinct = {}
    for layer in layers:
        distinct.setdefault(signature(layer), layer)
    rng = np.random.default_rng(0)
    runners, macs = [(check.open_runner(whole_path, 1), tuple(model.input.shape[1:]))], {}
    for index, (key, layer) in enumerate([*distinct.items(), (None, None)]):
        op = one_op_model(layer) if layer is not None else _overhead_model()
        shape = tuple(op.input.shape[1:])
        path = Path(scratch) / f"{model.name}_{quant}_op{index}.tflite"
        convert_tflite(op, shape, quant, rng.random((4, *shape), dtype="float32"), path)
        runners.append((check.open_runner(path, 1), shape))
        if key is not None:
            macs[key] = garden.profile(op).total["macs"]
    whole_ms, *measured = check.interleaved_latency(runners, rounds)
    overhead = measured[-1]
    per_op = {key: max(ms - overhead, 0.0) for key, ms in zip(distinct, measured)}
    peak = peaks(cpu)
    rows = []
    for kind in KINDS:
        keys = [signature(layer) for layer in layers if conv_kind(layer) == kind]
        if not keys:
            continue
        ms = sum(per_op[key] for key in keys)
        total_macs = sum(macs[key] for key in keys)
        per_cycle, how = peak[(quant, kind)]
        peak_rate = per_cycle * cpu.mhz * 1e6
        achieved = total_macs / (ms / 1000) if ms else float("nan")
        rows.append(
            {
                "model": model.name,
                "quant": quant,
                "kind": kind,
                "ops": len(keys),
                "macs": int(total_macs),
                "ms": ms,
                "share": ms / whole_ms,
                "gmacs": achieved / 1e9,
                "peak_gmacs": peak_rate / 1e9,
                "of_peak": achieved / peak_rate if peak_rate else float("nan"),
                "peak_how": how,
            }
        )
    other = whole_ms - sum(r["ms"] for r in rows)
    rows.append({"model": model.name, "quant": quant, "kind": "other", "ms": other, "share": other / whole_ms})
    for r in rows:
        r["whole_ms"] = whole_ms
    return rows


def to_markdown(rows, cpu):
    lines = [
        f"Machine: {machine_line()}",
        f"Peaks for: {describe(cpu)}; 1 thread; convolutions timed alone (one-op models, interleaved), "
        "invoke overhead subtracted; other = whole model - convolutions; peaks at the clock /proc/cpuinfo lists "
        "(a core boosting above it can pass 100%)",
        "",
        "| model | quant | whole model ms | kind | ops | multiply-adds | ms | share | G multiply-adds/s | "
        "peak G/s (1 core) | of peak | peak from |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        head = f"| {r['model']} | {r['quant']} | {r['whole_ms']:.3f} | {r['kind']} |"
        if r["kind"] == "other":
            lines.append(f"{head} - | - | {r['ms']:.3f} | {r['share']:.0%} | - | - | - | - |")
            continue
        lines.append(
            f"{head} {r['ops']} | {r['macs']:,} | {r['ms']:.3f} | {r['share']:.0%} | {r['gmacs']:.1f} | "
            f"{r['peak_gmacs']:.1f} | {r['of_peak']:.0%} | {r['peak_how']} |"
        )
    return "\n".join(lines)


def plot(rows, cpu, path):
    """Achieved multiply-adds/s per kind beside the peak (left) and where each model's time goes (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from garden._files import atomic_path

    convs = [r for r in rows if r["kind"] != "other"]
    figure, (rate, share) = plt.subplots(1, 2, figsize=(12, 4.8))
    labels = [f"{r['model'].replace('mobilenet_v1', 'V1')}\n{r['quant']} {r['kind']}" for r in convs]
    positions = np.arange(len(convs))
    rate.bar(positions, [r["peak_gmacs"] for r in convs], color="#dddddd", label="peak from the ISA (1 core)")
    rate.bar(positions, [r["gmacs"] for r in convs], width=0.5, color="#1f77b4", label="achieved")
    rate.set_xticks(positions, labels, fontsize=6, rotation=60, ha="right")
    rate.set_yscale("log")
    rate.set_ylabel("G multiply-adds / s")
    rate.set_title(f"{cpu.model}, {cpu.mhz:.0f} MHz, 1 thread", fontsize=9)
    rate.legend(fontsize=7)
    models = list(dict.fromkeys((r["model"], r["quant"]) for r in rows))
    colours = {"depthwise": "#2ca02c", "pointwise": "#1f77b4", "standard": "#d62728", "other": "#999999"}
    for index, key in enumerate(models):
        left = 0.0
        for r in [r for r in rows if (r["model"], r["quant"]) == key]:
            width = max(r["ms"], 0.0)
            share.barh(index, width, left=left, color=colours[r["kind"]], label=r["kind"] if index == 0 else None)
            left += width
    share.set_yticks(range(len(models)), [f"{m}\n{q}" for m, q in models], fontsize=7)
    share.set_xlabel("ms, 1 thread (LiteRT, XNNPACK)")
    share.set_title("where the time goes", fontsize=9)
    share.legend(fontsize=7)
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=110)
    plt.close(figure)
