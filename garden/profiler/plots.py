"""The lecture's pictures: per-layer memory, parameters and multiply-adds, and models compared."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from garden._files import atomic_path  # noqa: E402

# Rows worth a bar: layers that hold weights, pool or resize (not activations, norms, merges).
_MAIN_TYPES = ("Conv", "Dense", "Pooling", "UpSampling", "Unpooling", "Resize", "Input")


def _main_rows(profile):
    return [row for row in profile.layers if any(word in row.type for word in _MAIN_TYPES)]


def plot_layers(profile, path):
    """Three bar charts over the main layers: activation memory, parameters, multiply-adds."""
    rows = _main_rows(profile)
    names = [row.name for row in rows]
    series = (
        ("activation memory (KB)", [row.memory_kb for row in rows], "tab:blue"),
        ("parameters", [row.params for row in rows], "tab:orange"),
        ("multiply-adds", [row.macs for row in rows], "tab:green"),
    )
    fig, axes = plt.subplots(3, 1, figsize=(max(8, 0.35 * len(rows)), 9), sharex=True)
    for axis, (title, values, colour) in zip(axes, series):
        axis.bar(range(len(rows)), values, color=colour)
        axis.set_ylabel(title)
        axis.grid(axis="y", alpha=0.3)
    axes[0].set_title(f"{profile.model}: cost per layer at {'x'.join(map(str, profile.input_shape))}")
    if len(rows) <= 80:
        axes[-1].set_xticks(range(len(rows)), names, rotation=90, fontsize=7)
    else:
        axes[-1].set_xlabel(f"{len(rows)} layers, input to output")
    fig.tight_layout()
    _save(fig, path)


def plot_compare(profiles, path):
    """Models placed by multiply-adds against parameters, bubble area by activation memory."""
    fig, axis = plt.subplots(figsize=(8, 6))
    biggest = max(p.total["memory_kb"] for p in profiles) or 1
    for p in profiles:
        total = p.total
        axis.scatter(
            total["macs"] / 1e9,
            total["params"] / 1e6,
            s=60 + 2000 * total["memory_kb"] / biggest,
            alpha=0.5,
        )
        axis.annotate(p.model, (total["macs"] / 1e9, total["params"] / 1e6), ha="center", fontsize=8)
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("multiply-adds (G)")
    axis.set_ylabel("parameters (M)")
    axis.set_title("Comparing complexity (bubble area: activation memory)")
    axis.grid(alpha=0.3, which="both")
    fig.tight_layout()
    _save(fig, path)


def _save(fig, path):
    try:
        with atomic_path(path) as temporary:
            fig.savefig(temporary, dpi=110)
    finally:
        plt.close(fig)
