"""``garden bench separable``: depthwise-separable against standard convolution, counted and timed.

Howard et al., "MobileNets" (2017), Section 3.1 and Table 4: a depthwise-separable block costs
``1/N + 1/D_K^2`` of a standard ``D_K x D_K`` convolution with ``N`` output channels; their
"Conv MobileNet" (every separable block a full 3x3 convolution) has about 8 times the
multiply-adds for 1.1% more ImageNet accuracy. Here the two MobileNet V1s and single layers across
channel counts and resolutions are exported (fp32 and int8 TFLite) and timed in LiteRT, so the
multiply-adds ratio sits beside the measured latency ratio.
"""

import json
from pathlib import Path

import numpy as np

from deploy import check
from deploy.export import Limit, check_numbers, convert_tflite, export
from garden._files import atomic_path, write_text

# MobileNet V1's stem has int(32 * alpha) channels (none below 1/32); above 2 the standard-convolution
# twin runs to hundreds of millions of parameters.
BENCH_LIMITS = {
    "input_size": Limit(int, 32),
    "alpha": Limit(float, 1 / 32, 2),
    "repeats": Limit(int, 1),
}

LAYER_CHANNELS = (32, 64, 128, 256, 512)
LAYER_SIZES = (56, 28, 14)
QUICK_CHANNELS, QUICK_SIZES = (32, 128), (28,)


def build_standard_mobilenet_v1(
    *, alpha=1.0, num_classes=1000, input_shape=(224, 224, 3), name="mobilenet_v1_standard"
):
    """MobileNet V1 with each depthwise-separable block replaced by a standard 3x3 convolution."""
    from garden.layers import conv_norm_act
    from garden.models._common import classification_model, model_input
    from garden.models.mobilenet import SEPARABLE_STAGES

    inputs = model_input(input_shape, (224, 224, 3))
    x = conv_norm_act(inputs, int(32 * alpha), 3, 2, act="relu6", name="stem")
    features, stride = {}, 2
    for stage, (filters, first_stride, blocks) in enumerate(SEPARABLE_STAGES, start=1):
        for block in range(1, blocks + 1):
            strides = first_stride if block == 1 else 1
            x = conv_norm_act(x, int(filters * alpha), 3, strides, act="relu6", name=f"stage{stage}_block{block}")
            stride *= strides
        features[stride] = x
    return classification_model(inputs, features, name=name, num_classes=num_classes, dropout=1e-3)


def single_layer(size, channels, separable):
    """One 3x3 layer ``channels -> channels`` at ``size x size``: standard, or depthwise + pointwise."""
    import keras

    inputs = keras.Input((size, size, channels))
    if separable:
        x = keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(inputs)
        x = keras.layers.Conv2D(channels, 1, name="pw")(x)
    else:
        x = keras.layers.Conv2D(channels, 3, padding="same", name="conv")(inputs)
    return keras.Model(inputs, x, name=f"{'separable' if separable else 'standard'}_{size}_{channels}")


def _timed(path, shape, repeats):
    return check.latency(check.open_runner(path, 1), shape, repeats)["median_ms"]


def mobilenets(alpha, input_size):
    """``{"separable": MobileNet V1, "standard": its twin}``, 10 classes."""
    import garden

    shape = (input_size, input_size, 3)
    return {
        "separable": garden.create_model("mobilenet_v1", alpha=alpha, num_classes=10, input_shape=shape),
        "standard": build_standard_mobilenet_v1(alpha=alpha, num_classes=10, input_shape=shape),
    }


def model_rows(alpha, input_size, out, repeats, files=None):
    """Both MobileNet V1s, exported (with sidecars) fp32 and int8: MACs and LiteRT latency.

    ``files``, a dict, receives ``(model, path of its file)`` under ``(form, quant)``.
    """
    import garden

    models = mobilenets(alpha, input_size)
    files = {} if files is None else files
    rows = []
    for quant in ("fp32", "int8"):
        timing, macs = {}, {}
        for form, model in models.items():
            small = dict(calib="digits", calib_count=16, check_count=16, repeats=repeats)
            result = export(model, quant=quant, out=out, name=f"{model.name}_{quant}", **small)
            timing[form] = result.report["latency"]["litert_1_thread"]["median_ms"]
            files[(form, quant)] = (model, result.path)
            macs[form] = garden.profile(model).total["macs"]
        rows.append(_row(f"MobileNet V1 alpha {alpha}", f"{input_size}x{input_size}", quant, macs, timing, None))
    return rows


def layer_rows(channels, sizes, out, repeats):
    """Single layers across channel counts and resolutions, fp32 and int8."""
    from garden.profiler import conv_macs, separable_macs, separable_ratio

    rows = []
    rng = np.random.default_rng(0)
    for size in sizes:
        for width in channels:
            shape = (size, size, width)
            calib = rng.random((8, *shape), dtype="float32")
            macs = {
                "separable": separable_macs(size, size, width, width, 3),
                "standard": conv_macs(size, size, width, width, 3),
            }
            for quant in ("fp32", "int8"):
                timing = {}
                for form in ("separable", "standard"):
                    model = single_layer(size, width, form == "separable")
                    path = Path(out) / f"layer_{model.name}_{quant}.tflite"
                    with atomic_path(path) as temporary:
                        convert_tflite(model, shape, quant, calib, temporary)
                        timing[form] = _timed(temporary, shape, repeats)
                rows.append(
                    _row(f"3x3 layer C=N={width}", f"{size}x{size}", quant, macs, timing, separable_ratio(width, 3))
                )
    return rows


def _row(what, size, quant, macs, timing, theory):
    return {
        "what": what,
        "input": size,
        "quant": quant,
        "separable_macs": int(macs["separable"]),
        "standard_macs": int(macs["standard"]),
        "macs_ratio": macs["separable"] / macs["standard"],
        "theory": theory,
        "separable_ms": timing["separable"],
        "standard_ms": timing["standard"],
        "latency_ratio": timing["separable"] / timing["standard"],
    }


def to_markdown(rows):
    lines = [
        (
            "| what | input | quant | separable MACs | standard MACs | MACs ratio | 1/N + 1/9 | separable ms | "
            "standard ms | latency ratio |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        theory = f"{r['theory']:.4f}" if r["theory"] else "-"
        lines.append(
            f"| {r['what']} | {r['input']} | {r['quant']} | {r['separable_macs']:,} | {r['standard_macs']:,} | "
            f"{r['macs_ratio']:.4f} | {theory} | {r['separable_ms']:.3f} | {r['standard_ms']:.3f} | "
            f"{r['latency_ratio']:.4f} |"
        )
    return "\n".join(lines)


def plot(rows, path):
    """Separable/standard ratios of the single layers against channels: counted (theory) and measured."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = [r for r in rows if r["theory"]]
    figure, axis = plt.subplots(figsize=(7, 4.8))
    channels = sorted({int(r["what"].split("=")[-1]) for r in layers})
    axis.plot(channels, [1 / n + 1 / 9 for n in channels], "k-", linewidth=1.5, label="multiply-adds: 1/N + 1/9")
    for quant, marker in (("fp32", "o"), ("int8", "s")):
        for size in sorted({r["input"] for r in layers}, key=lambda s: -int(s.split("x")[0])):
            chosen = [r for r in layers if r["quant"] == quant and r["input"] == size]
            axis.plot(
                [int(r["what"].split("=")[-1]) for r in chosen],
                [r["latency_ratio"] for r in chosen],
                marker=marker,
                linestyle=":",
                label=f"measured, LiteRT {quant}, {size}",
            )
    for r in rows:
        if not r["theory"]:
            axis.axhline(r["latency_ratio"], color="grey", linewidth=0.6, linestyle="--")
            axis.annotate(
                f"{r['what']} {r['quant']}: measured {r['latency_ratio']:.2f}, MACs {r['macs_ratio']:.2f}",
                (channels[0], r["latency_ratio"]),
                fontsize=7,
                va="bottom",
            )
    axis.set_xscale("log", base=2)
    axis.set_xlabel("channels N (= C_in), 3x3 kernel")
    axis.set_ylabel("separable / standard")
    axis.set_title("Depthwise-separable vs standard convolution: counted vs measured (1 thread)")
    axis.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=110)
    plt.close(figure)


def run_bench(*, input_size=128, alpha=0.5, out="separable_out", repeats=20, quick=False, per_op=False):
    """Run the comparison; writes separable.md/.json/.png and the .tflite files (with sidecars) to ``out``.

    ``input_size`` at least 32 (MobileNet V1's five stride-2 stages), ``alpha`` 1/32..2. ``per_op``:
    the two models op by op (``deploy.op_profile``: per_op.md/.json/.png) instead of the single-layer
    sweep; returns ``(model rows, per-op rows)`` then.
    """
    check_numbers(BENCH_LIMITS, input_size=input_size, alpha=alpha, repeats=repeats)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    rows = model_rows(alpha, input_size, out, repeats, files)
    if not per_op:
        sweep = (QUICK_CHANNELS, QUICK_SIZES) if quick else (LAYER_CHANNELS, LAYER_SIZES)
        rows += layer_rows(*sweep, out, repeats)
    table = to_markdown(rows)
    write_text(out / "separable.md", table + "\n")
    write_text(out / "separable.json", json.dumps(rows, indent=2) + "\n")
    print(table)
    if not per_op:
        plot(rows, out / "separable.png")
        return rows
    return rows, per_op_rows(files, out, repeats)


def per_op_rows(files, out, repeats):
    """``deploy.op_profile`` on every exported model file; writes and prints the per-op table."""
    import tempfile

    from deploy import op_profile

    cpu = op_profile.read_cpu()
    found = []
    with tempfile.TemporaryDirectory() as scratch:
        for (_form, quant), (model, path) in files.items():
            found += op_profile.op_rows(model, quant, path, scratch, repeats, cpu)
    table = op_profile.to_markdown(found, cpu)
    write_text(out / "per_op.md", table + "\n")
    write_text(out / "per_op.json", json.dumps(found, indent=2) + "\n")
    op_profile.plot(found, cpu, out / "per_op.png")
    print("\n" + table)
    return found
