"""``make demo``: the garden's whole story on data the project generates, in one report page.

1. The lecture's cost tables and charts for classic networks, and the 1x1-bottleneck and
   depthwise-separable lessons.
2. Train a DeepLabv3+ (MobileNetV2 backbone, separable head) and its standard-convolution twin on
   the embedded segmentation data (digits composited onto photographs), with the same budget: the
   same images, epochs, schedule and seed.
3. Export both to full-int8 TFLite at the training size and, with the same weights, at 257x257
   (the models are fully convolutional), each file checked against the float model by running it.
4. Render a video from held-out embedded images generated at the video's size and run the edge
   app on it, headless, the separable model beside its twin, each panel with its own legend.
5. Time the four files in turn: the separable lesson at two sizes, in multiply-adds and in ms.
6. Write ``report.md`` and ``report.html`` (one page, the pictures inline as data URIs).

``--quick`` trains for a few seconds only (the test suite runs the story that way).
"""

import argparse
import base64
import json
import os
import re
import shlex
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
LARGE = 257  # the second size of the separable lesson: DeepLab's usual input
VIDEO_SIZE = 480  # frames generated at this size (6x the models' input): crisp, with room for two legends
HEADS = ("separable", "standard")
EPOCHS, QUICK_EPOCHS = 8, 1  # the same for both heads: the comparison's budget
TRAIN_IMAGES, HELD_OUT_IMAGES = 1800, 200
DOT_PRODUCTS = (("amx_int8", "AMX"), ("avx512_vnni", "AVX-512 VNNI"), ("avx_vnni", "AVX-VNNI"), ("asimddp", "sdot"))


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


def build_head(separable, size, label=None):
    """The demo's DeepLabv3+ with a separable or a standard-convolution head at ``size x size``."""
    import garden

    label = label or ("separable" if separable else "standard")
    return garden.create_model(
        "deeplabv3plus",
        **SEGMENTER,
        separable=separable,
        num_classes=11,
        input_shape=(size, size, 3),
        name=f"deeplabv3plus_{label}",
    )


def train_step(out, report, quick, state):
    from garden.data.embedded import embedded_segmentation
    from garden.train import fit

    epochs = QUICK_EPOCHS if quick else EPOCHS
    train = embedded_segmentation(num_images=64 if quick else TRAIN_IMAGES, size=SIZE, seed=0)
    held_out = embedded_segmentation(num_images=32 if quick else HELD_OUT_IMAGES, size=SIZE, seed=1)
    rows, summaries, histories = [], {}, {}
    for label in HEADS:
        run = out / f"train_{label}"
        shutil.rmtree(run, ignore_errors=True)  # a new demo run starts its training afresh
        summary = fit(
            build_head(label == "separable", SIZE),
            data=(train, held_out),
            out=run,
            epochs=epochs,
            batch_size=16,
            lr=3e-3,
            seed=0,
            verbose=2,
            tensorboard=False,
        )
        state[label] = run / "best.keras"
        summaries[label] = summary
        histories[label] = json.loads((run / "history.json").read_text())
        settings = json.loads((run / "config.json").read_text())["settings"]
        metrics = summary["metrics"]
        rows.append(
            f"| {label} | {len(histories[label])} | {len(train)} | {summary['wall_s']:.0f} | "
            f"{metrics['mean_iou']:.3f} | {metrics['pixel_accuracy']:.3f} |"
        )
    state["held_out"] = held_out
    plot_curves(histories, epochs, out / "training_curves.png")
    plot_predictions(state, held_out, out / "predictions.png")
    sep, std = (summaries[h]["metrics"]["mean_iou"] for h in HEADS)
    wall = summaries["standard"]["wall_s"] / summaries["separable"]["wall_s"]
    report += [
        "## Training DeepLabv3+ (MobileNetV2 x0.35) and its standard-convolution twin, the same budget",
        "",
        (
            f"{len(train)} training images of {SIZE}x{SIZE}, {len(held_out)} held out; 11 classes (background and "
            f"the ten digits). Both heads get the same budget: **{epochs} epoch(s)** over the same images, batch "
            f"{settings['batch_size']}, {settings['optimizer']} at {settings['lr']:g} with {settings['schedule']} "
            f"decay, seed {settings['seed']}. The backbone is the same; only the ASPP and decoder differ "
            "(depthwise-separable or standard 3x3 convolutions)."
        ),
        "",
        "| head | epochs | training images | wall (s) | held-out mean IoU | held-out pixel accuracy |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        (
            f"Measured with this budget: the standard head reaches a held-out mean IoU of {std:.3f}, the separable "
            f"one {sep:.3f} (standard minus separable: {std - sep:+.3f}); the standard head took {wall:.1f}x the "
            "training time."
        ),
        "",
        "![both heads' learning curves](training_curves.png)",
        "",
        "![held-out predictions of both heads](predictions.png)",
        "",
    ]


def plot_curves(histories, epochs, path):
    """Both heads' loss and held-out mean IoU per epoch on one chart (training solid, held-out dashed)."""
    from garden.train.report import _figure, _save

    plt, figure = _figure(figsize=(10, 4))
    loss, iou = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
    for (label, rows), colour in zip(histories.items(), ("tab:blue", "tab:orange")):
        x = [row["epoch"] for row in rows]
        loss.plot(x, [r["loss"] for r in rows], "-o", color=colour, markersize=3, label=f"{label}: training")
        loss.plot(x, [r["val_loss"] for r in rows], "--o", color=colour, markersize=3, label=f"{label}: held out")
        iou.plot(x, [r["val_mean_iou"] for r in rows], "--o", color=colour, markersize=3, label=f"{label}: held out")
    for axes, title in ((loss, "loss"), (iou, "held-out mean IoU")):
        axes.set_xlabel("epoch")
        axes.set_title(title)
        axes.grid(alpha=0.3)
        axes.legend()
    figure.suptitle(f"the same budget for both heads: {epochs} epoch(s), the same images, schedule and seed")
    figure.tight_layout()
    _save(plt, figure, path)


def plot_predictions(state, held_out, path, count=4):
    """Held-out images, their truth and each head's prediction, in the edge app's colours (the sidecar's
    VOC palette), with the class names beside their colours."""
    import matplotlib.patches as patches
    import numpy as np

    from garden import load_model
    from garden.data.base import to_model_input
    from garden.data.segmentation import voc_palette
    from garden.train.report import _figure, _save

    palette = voc_palette(len(held_out.class_names))
    images, truths = held_out.images[:count], held_out.targets[:count]
    predicted = {h: load_model(state[h], compile=False).predict(to_model_input(images), verbose=0) for h in HEADS}
    columns = [("image", images), ("truth", palette[truths])]
    columns += [(f"{h} head", palette[np.argmax(p, axis=-1)]) for h, p in predicted.items()]
    plt, figure = _figure(figsize=(9, 2.3 * count + 0.8))
    for row in range(count):
        for column, (title, pictures) in enumerate(columns):
            axes = figure.add_subplot(count, len(columns), row * len(columns) + column + 1)
            axes.imshow(pictures[row], interpolation="nearest")
            axes.axis("off")
            if row == 0:
                axes.set_title(title)
    handles = [patches.Patch(color=palette[i] / 255.0, label=n) for i, n in enumerate(held_out.class_names)]
    figure.legend(handles=handles, loc="lower center", ncol=6, fontsize=8, frameon=False)
    figure.tight_layout(rect=(0, 0.06, 1, 1))
    _save(plt, figure, path)


def export_step(out, report, quick, state):
    """Both heads to full-int8 TFLite at the training size and, with the same weights, at ``LARGE``."""
    from deploy import export
    from deploy.report import to_markdown
    from garden import load_model
    from garden.data.embedded import embedded_segmentation

    folder = out / "export"
    folder.mkdir(exist_ok=True)
    large_data = embedded_segmentation(num_images=8 if quick else 32, size=LARGE, seed=2)
    reports = []
    for label in HEADS:
        trained = load_model(state[label], compile=False)
        larger = build_head(label == "separable", LARGE, label=f"{label}_{LARGE}")
        larger.set_weights(trained.get_weights())  # fully convolutional: the same weights fit any input size
        for model, size, data in ((trained, SIZE, state["held_out"]), (larger, LARGE, large_data)):
            suffix = "" if size == SIZE else f"_{size}"
            result = export(
                model,
                quant="int8",
                calib=data,
                check_data=data,
                out=folder,
                name=f"deeplabv3plus_{label}_int8{suffix}",
                calib_count=(8 if quick else 32) if size == LARGE else (32 if quick else 64),
                check_count=(8 if quick else 32) if size == LARGE else (32 if quick else 100),
                repeats=5 if quick else 20,
            )
            state[f"{label}_{size}"] = result.path
            reports.append(result.report)
    report += [
        "## Export: full-int8 TFLite, checked by running the file",
        "",
        (
            f"Each head exported at {SIZE}x{SIZE} and, with the same weights (no retraining), at {LARGE}x{LARGE}; "
            f"the {LARGE} px check data is generated at {LARGE} px, where the digits are larger than any the models "
            "saw in training, so their quality there says little: those files are for timing."
        ),
        "",
        to_markdown(reports),
        "",
    ]


def video_step(out, report, quick, state):
    """A video of held-out embedded images generated at ``VIDEO_SIZE`` (no upscaling)."""
    import cv2

    from garden.data.embedded import embedded_segmentation

    frames = embedded_segmentation(num_images=12 if quick else 60, size=VIDEO_SIZE, seed=7)
    path = out / "embedded.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 4, (VIDEO_SIZE, VIDEO_SIZE))
    for image, _ in frames:
        writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    writer.release()
    state["video"] = path


def edge_command(*arguments):
    """``garden-edge`` as this interpreter runs it: a command line that runs as written."""
    return [sys.executable, "-m", "edge_app", *(str(a) for a in arguments)]


def run_edge(command):
    """Run the edge app; its ``--json`` summary."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"edge app failed: {result.stderr.strip().splitlines()[-1:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def classes_text(summary):
    """The classes a panel's legend lists for the last frame, largest first."""
    return ", ".join(f"{name} {100 * share:.0f}%" for name, share in summary["result"]["classes"])


def edge_step(out, report, quick, state):
    import cv2

    annotated = (out / "annotated.mp4").resolve()
    separable, standard = (state[f"{h}_{SIZE}"].resolve() for h in HEADS)
    common = ("--source", state["video"].resolve(), "--headless", "--threads", 1, "--json")
    command = edge_command("--model", separable, "--compare", standard, *common[:3], "--output", annotated, *common[3:])
    summary = run_edge(command)
    alone = run_edge(edge_command("--model", standard, *common))  # the right panel's classes, by the app itself
    capture = cv2.VideoCapture(str(annotated))
    capture.set(cv2.CAP_PROP_POS_FRAMES, int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) - 1)  # timings have settled
    ok, frame = capture.read()
    capture.release()
    if not ok:
        raise RuntimeError(f"the edge app's video {annotated} does not play back")
    cv2.imwrite(str(out / "annotated_frame.png"), frame)
    stages = ("capture", "preprocess", "inference", "postprocess", "render")
    report += [
        "## On the device: `garden-edge` with `--compare`",
        "",
        (
            f"Annotated video: `{annotated}` ({2 * VIDEO_SIZE}x{VIDEO_SIZE}: two panels of the {VIDEO_SIZE}x"
            f"{VIDEO_SIZE} frames, generated at that size; the models see them at {SIZE}x{SIZE}). The command, "
            "runnable as written:"
        ),
        "",
        "```bash",
        shlex.join(command),
        "```",
        "",
        "The last frame; each panel's title (top-left) names its model, and its legend (top-right) lists the "
        "classes that model found, with their share of the frame:",
        "",
        "![the last annotated frame](annotated_frame.png)",
        "",
        "| panel | model | classes in this frame (its legend) |",
        "|---|---|---|",
        f"| left | {separable.stem} | {classes_text(summary)} |",
        f"| right | {standard.stem} | {classes_text(alone)} |",
        "",
        "| stage | median ms |",
        "|---|---|",
    ]
    report += [f"| {stage} | {summary.get(stage, float('nan')):.2f} |" for stage in stages]
    report += [f"| FPS | {summary.get('fps', float('nan')):.1f} |", ""]


def lesson_step(out, report, quick, state):
    """The separable lesson at two sizes: multiply-adds and measured latency of the exported files."""
    from deploy import check
    from deploy.op_profile import machine_line, read_cpu

    sizes = (SIZE, LARGE)
    files = [state[f"{h}_{size}"] for size in sizes for h in HEADS]
    runners = [(check.open_runner(state[f"{h}_{size}"], 1), (size, size, 3)) for size in sizes for h in HEADS]
    times = check.interleaved_latency(runners, rounds=5 if quick else 40)
    macs = [json.loads(Path(path).with_suffix(".json").read_text())["macs"] for path in files]
    report += [
        f"## Depthwise-separable against standard convolution at {SIZE} and {LARGE} px, measured",
        "",
        (
            "The exported int8 files, timed in LiteRT (1 thread) in interleaved rounds, so a drifting load slows "
            f"all four alike; {machine_line()}."
        ),
        "",
        "| input | separable multiply-adds | standard multiply-adds | separable ms | standard ms | "
        "ratio separable / standard: multiply-adds | ratio separable / standard: latency |",
        "|---|---|---|---|---|---|---|",
    ]
    ratios = {}
    for i, size in enumerate(sizes):
        (m_sep, m_std), (t_sep, t_std) = macs[2 * i : 2 * i + 2], times[2 * i : 2 * i + 2]
        ratios[size] = (m_sep / m_std, t_sep / t_std)
        report.append(
            f"| {size}x{size} | {m_sep:,} | {m_std:,} | {t_sep:.2f} | {t_std:.2f} | {m_sep / m_std:.3f} | "
            f"{t_sep / t_std:.3f} |"
        )
    flags = read_cpu().flags
    dot = next((name for flag, name in DOT_PRODUCTS if flag in flags), None)
    units = f"this CPU's int8 dot-product instructions ({dot})" if dot else "int8 matrix instructions (VNNI, sdot, AMX)"
    report += [
        "",
        (
            f"At {LARGE} px the separable model needs {ratios[LARGE][0]:.2f} of the standard one's multiply-adds "
            f"and takes {ratios[LARGE][1]:.2f} of its time ({ratios[SIZE][0]:.2f} and {ratios[SIZE][1]:.2f} at {SIZE} "
            "px). The time ratio stays above the multiply-add "
            "ratio because a depthwise convolution reads nine inputs for its nine multiply-adds per output, so "
            f"memory, not arithmetic, bounds it and int8 barely speeds it up, while {units} run the standard head's "
            "dense convolutions, matrix products, several times faster per multiply-add (docs/deploy.md, 'Op by "
            "op', measures this per convolution)."
        ),
        "",
    ]


STEPS = (
    ("cost tables and charts", profile_step),
    ("lessons", lessons_step),
    ("train DeepLabv3+ and its standard twin", train_step),
    ("export int8 with the quality check", export_step),
    ("render a video", video_step),
    ("edge app with --compare", edge_step),
    ("the separable lesson at two sizes", lesson_step),
)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="demo_out", help="folder for the report and pictures")
    parser.add_argument("--quick", action="store_true", help="train for a few seconds only")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = shlex.join([sys.executable, "-m", "deploy.demo", "--out", str(out), *(["--quick"] if args.quick else [])])
    report = ["# garden demo", "", f"Made by `{command}` (`make demo`); the page is also `report.html`.", ""]
    state, started, seconds = {}, time.perf_counter(), {}
    for title, step in STEPS:
        start = time.perf_counter()
        step(out, report, args.quick, state)
        seconds[title] = time.perf_counter() - start
        print(f"[demo] {title}: {seconds[title]:.1f} s", flush=True)
    from deploy.op_profile import machine_line
    from garden._files import write_text

    times = stage_table(seconds, time.perf_counter() - started)
    report += ["## The demo's time, stage by stage", "", times, "", f"_On {machine_line()}._"]
    text = "\n".join(report) + "\n"
    write_text(out / "report.md", text)
    write_text(out / "report.html", to_html(text, out))
    print(f"[demo] report: {out / 'report.md'} and {out / 'report.html'}\n{times}", flush=True)
    return 0


def stage_table(seconds, total):
    """Seconds per stage and for the whole of ``main`` (the imports the stages need included), as a Markdown table."""
    rows = [f"| {title} | {value:.1f} |" for title, value in seconds.items()]
    return "\n".join(["| stage | seconds |", "|---|---|", *rows, f"| whole demo | {total:.1f} |"])


def to_html(markdown_text, folder):
    """The report as one HTML page, each picture inline as a base64 ``data:`` URI (the page needs no other file)."""
    import markdown

    body = markdown.markdown(markdown_text, extensions=["tables", "fenced_code"])

    def inline(match):
        data = base64.b64encode((folder / match.group(1)).read_bytes()).decode("ascii")
        return f'src="data:image/png;base64,{data}"'

    body = re.sub(r'src="([^"]+\.png)"', inline, body)
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;line-height:1.4}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:2px 6px;font-size:90%}"
        "img{max-width:100%}pre{background:#f4f4f4;padding:.6em;overflow-x:auto;white-space:pre-wrap}"
    )
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>garden demo</title><style>{style}</style>'
        f"</head><body>\n{body}\n</body></html>\n"
    )


if __name__ == "__main__":
    sys.exit(main())
