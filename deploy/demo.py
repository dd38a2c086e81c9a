"""``make demo``: the garden's whole story on data the project generates, in one report page.

1. The lecture's cost tables and charts for classic networks, and the 1x1-bottleneck and
   depthwise-separable lessons.
2. Train a DeepLabv3+ (MobileNetV2 backbone, separable head) and its standard-convolution twin on
   the embedded segmentation data (digits composited onto photographs).
3. Export both to full-int8 TFLite, each checked against the float model by running the file.
4. Render a video from held-out embedded images and run the edge app on it, headless, comparing
   the separable model with its twin.
5. Write ``report.md`` with the annotated video's path, the pictures and the tables.

``--quick`` trains for a few seconds only (the test suite runs the story that way).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

DEMO_MODELS = ("lenet5", "alexnet", "vgg16", "resnet50", "mobilenet_v1", "mobilenet_v2")
SEGMENTER = {
    "backbone": "mobilenet_v2",
    "backbone_kwargs": {"alpha": 0.35},
    "output_stride": 16,
    "aspp_filters": 96,
    "decoder_filters": 96,
}
SIZE = 80  # DeepLab predicts at stride 4; 80 px keeps the digits' outlines (see bench/segmentation_train.py)
VIDEO_SIZE = 320


def profile_step(out, report, quick, state):
    import garden
    from garden import profiler
    from garden.profiler.plots import plot_compare, plot_layers

    alexnet = garden.profile("alexnet")
    plot_layers(alexnet, out / "alexnet_layers.png")
    report += [
        "## The lecture's cost table: AlexNet at 227x227x3",
        "",
        profiler.to_markdown(alexnet),
        "",
        "![AlexNet per layer](alexnet_layers.png)",
        "",
    ]
    results = [alexnet if name == "alexnet" else garden.profile(name) for name in DEMO_MODELS]
    plot_compare(results, out / "compare.png")
    report += [
        "## Comparing complexity",
        "",
        "| model | input | params | multiply-adds | activations (MB) |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        t = r.total
        report.append(
            f"| {r.model} | {'x'.join(map(str, r.input_shape))} | {t['params']:,} | {t['macs']:,} | "
            f"{t['memory_kb'] / 1024:,.1f} |"
        )
    report += ["", "![models compared](compare.png)", ""]


def lessons_step(out, report, quick, state):
    from garden.profiler import bottleneck_example, separable_ratio

    direct, reduce, then = bottleneck_example()
    report += [
        "## The 1x1 bottleneck",
        "",
        (
            f"28x28x192 -> 32 filters of 5x5: {direct:,} multiply-adds; with a 1x1 reduction to 16 channels "
            f"first: {reduce:,} + {then:,} = {reduce + then:,} ({direct / (reduce + then):.1f}x fewer)."
        ),
        "",
        "## Depthwise-separable convolution: 1/N + 1/K^2",
        "",
        "| N | K=3 |",
        "|---|---|",
    ]
    report += [f"| {n} | {separable_ratio(n, 3):.4f} |" for n in (32, 64, 128, 256, 512, 1024)]
    report.append("")


def train_step(out, report, quick, state):
    import garden
    from garden.data.embedded import embedded_segmentation
    from garden.train import fit

    train = embedded_segmentation(num_images=64 if quick else 2000, size=SIZE, seed=0)
    held_out = embedded_segmentation(num_images=32 if quick else 200, size=SIZE, seed=1)
    rows = []
    for label, separable, epochs in (("separable", True, 1 if quick else 12), ("standard", False, 1 if quick else 6)):
        model = garden.create_model(
            "deeplabv3plus",
            **SEGMENTER,
            separable=separable,
            num_classes=11,
            input_shape=(SIZE, SIZE, 3),
            name=f"deeplabv3plus_{label}",
        )
        run = out / f"train_{label}"
        shutil.rmtree(run, ignore_errors=True)  # a new demo run starts its training afresh
        summary = fit(
            model, data=(train, held_out), out=run, epochs=epochs, batch_size=16, lr=3e-3, verbose=2, tensorboard=False
        )
        state[label] = run / "best.keras"
        rows.append(f"| {label} | {epochs} | {summary['wall_s']:.0f} | {summary['metrics']['mean_iou']:.3f} |")
    state["held_out"] = held_out
    report += [
        "## Training DeepLabv3+ (MobileNetV2 x0.35) on the embedded data",
        "",
        (
            f"{len(train)} training images of {SIZE}x{SIZE}, {len(held_out)} held out; 11 classes "
            "(background and the ten digits)."
        ),
        "",
        "| head | epochs | wall (s) | held-out mean IoU |",
        "|---|---|---|---|",
        *rows,
        "",
        "![separable training curves](train_separable/curves.png)",
        "",
        "![held-out predictions](train_separable/overlays.png)",
        "",
    ]


def export_step(out, report, quick, state):
    from deploy import export

    folder = out / "export"
    folder.mkdir(exist_ok=True)
    results = {}
    for label in ("separable", "standard"):
        results[label] = export(
            str(state[label]),
            quant="int8",
            calib=state["held_out"],
            check_data=state["held_out"],
            out=folder,
            name=f"deeplabv3plus_{label}_int8",
            calib_count=32 if quick else 64,
            check_count=32 if quick else 100,
            repeats=5 if quick else 20,
        )
        state[f"{label}_tflite"] = results[label].path
    report += ["## Export: full-int8 TFLite, checked by running the file", ""]
    for label, result in results.items():
        markdown = [p for p in result.report_paths if str(p).endswith(".md")]
        report += [f"### {label} head", "", Path(markdown[0]).read_text() if markdown else "", ""]


def video_step(out, report, quick, state):
    import cv2
    import numpy as np

    from garden.data.embedded import embedded_segmentation

    frames = embedded_segmentation(num_images=12 if quick else 60, size=SIZE, seed=7)
    path = out / "embedded.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 4, (VIDEO_SIZE, VIDEO_SIZE))
    for image, _ in frames:
        frame = cv2.resize(np.asarray(image), (VIDEO_SIZE, VIDEO_SIZE), interpolation=cv2.INTER_CUBIC)
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    state["video"] = path


def edge_step(out, report, quick, state):
    import cv2

    annotated = out / "annotated.mp4"
    command = [
        sys.executable,
        "-m",
        "edge_app",
        "--model",
        str(state["separable_tflite"]),
        "--compare",
        str(state["standard_tflite"]),
        "--source",
        str(state["video"]),
        "--headless",
        "--output",
        str(annotated),
        "--threads",
        "1",
        "--json",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"edge app failed: {result.stderr.strip().splitlines()[-1:]}")
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    capture = cv2.VideoCapture(str(annotated))
    capture.set(cv2.CAP_PROP_POS_FRAMES, int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) // 2)  # timings have settled
    ok, frame = capture.read()
    capture.release()
    if ok:
        cv2.imwrite(str(out / "annotated_frame.png"), frame)
    stages = ("capture", "preprocess", "inference", "postprocess", "render")
    report += [
        "## On the device: `garden-edge` with `--compare`",
        "",
        f"Annotated video: `{annotated.resolve()}`",
        "",
        "![an annotated frame](annotated_frame.png)",
        "",
        "```",
        " ".join(command[1:]),
        "```",
        "",
        "| stage | median ms |",
        "|---|---|",
    ]
    report += [f"| {stage} | {summary.get(stage, float('nan')):.2f} |" for stage in stages]
    report += [f"| FPS | {summary.get('fps', float('nan')):.1f} |", ""]
    if "compare" in summary:
        ours, twin = summary["model"], summary["compare"]["model"]
        ms_ours, ms_twin = summary["inference"], summary["compare"]["inference"]
        report += [
            "### Depthwise-separable against standard convolution, measured on this CPU",
            "",
            "| head | multiply-adds | inference ms (median, 1 thread) |",
            "|---|---|---|",
            f"| separable | {ours['macs']:,} | {ms_ours:.2f} |",
            f"| standard | {twin['macs']:,} | {ms_twin:.2f} |",
            f"| ratio separable / standard | {ours['macs'] / twin['macs']:.3f} | {ms_ours / ms_twin:.3f} |",
            "",
        ]


STEPS = (
    ("cost tables and charts", profile_step),
    ("lessons", lessons_step),
    ("train DeepLabv3+ and its standard twin", train_step),
    ("export int8 with the quality check", export_step),
    ("render a video", video_step),
    ("edge app with --compare", edge_step),
)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="demo_out", help="folder for the report and pictures")
    parser.add_argument("--quick", action="store_true", help="train for a few seconds only")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report, state, started = ["# garden demo", ""], {}, time.perf_counter()
    for title, step in STEPS:
        start = time.perf_counter()
        step(out, report, args.quick, state)
        print(f"[demo] {title}: {time.perf_counter() - start:.1f} s", flush=True)
    report.append(f"_Whole demo: {time.perf_counter() - started:.0f} s._")
    from garden._files import write_text

    write_text(out / "report.md", "\n".join(report))
    print(f"[demo] report: {out / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
