"""``make demo``: the garden's main job end to end, on nothing but what the project generates.

Today: the lecture's cost tables and charts for a few classic networks, the 1x1-bottleneck and
depthwise-separable lessons, and a Markdown report tying them together. Later capabilities
(training, export, the edge app) add their steps here.
"""

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

DEMO_MODELS = ("lenet5", "alexnet")


def profile_step(out, report):
    import garden
    from garden import profiler
    from garden.profiler.plots import plot_compare, plot_layers

    results = []
    for name in DEMO_MODELS:
        result = garden.profile(name)
        results.append(result)
        plot_layers(result, out / f"{name}_layers.png")
        report += [f"## {name}", "", profiler.to_markdown(result), "", f"![{name} per layer]({name}_layers.png)", ""]
    plot_compare(results, out / "compare.png")
    report += ["## Comparing complexity", "", "![models compared](compare.png)", ""]


def lessons_step(out, report):
    from garden.profiler import bottleneck_example, separable_ratio

    direct, reduce, then = bottleneck_example()
    report += [
        "## The 1x1 bottleneck",
        "",
        f"28x28x192 -> 32 filters of 5x5: {direct:,} multiply-adds; with a 1x1 reduction to 16 channels "
        f"first: {reduce:,} + {then:,} = {reduce + then:,} ({direct / (reduce + then):.1f}x fewer).",
        "",
        "## Depthwise-separable convolution",
        "",
        "| N | K | 1/N + 1/K^2 |",
        "|---|---|---|",
    ]
    report += [f"| {n} | 3 | {separable_ratio(n, 3):.4f} |" for n in (32, 64, 128, 256, 512, 1024)]
    report.append("")


STEPS = (("cost tables and charts", profile_step), ("lessons", lessons_step))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="demo_out", help="folder for the report and pictures")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = ["# garden demo", ""]
    for title, step in STEPS:
        start = time.perf_counter()
        step(out, report)
        print(f"[demo] {title}: {time.perf_counter() - start:.1f} s", flush=True)
    from garden._files import write_text

    write_text(out / "report.md", "\n".join(report))
    print(f"[demo] report: {out / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
