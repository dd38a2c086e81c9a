"""``make demo`` tells the whole story; here in its quick form (one epoch of training), run once for the module."""

import json
import re
import shlex
import subprocess

import cv2
import numpy as np
import pytest

from deploy import demo

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    assert demo.main(["--quick", "--out", str(folder)]) == 0
    return folder


@pytest.fixture(scope="module")
def report(out):
    return (out / "report.md").read_text()


def table_rows(report, first_cell):
    """The cells of the report's table rows whose first cell is ``first_cell``."""
    rows = [line.strip("|").split("|") for line in report.splitlines() if line.startswith(f"| {first_cell} |")]
    return [[cell.strip() for cell in row] for row in rows]


def test_quick_demo_writes_the_report_video_and_pictures(out, report):
    for section in (
        "AlexNet at 227x227x3",
        "The 1x1 bottleneck",
        "Training DeepLabv3+",
        "full-int8 TFLite",
        "garden-edge",
        "ratio separable / standard",
    ):
        assert section in report
    for picture in (
        "alexnet_layers.png",
        "compare.png",
        "annotated_frame.png",
        "training_curves.png",
        "predictions.png",
    ):
        assert cv2.imread(str(out / picture)) is not None, picture
        assert f"]({picture})" in report
    for name in ("separable_int8", "standard_int8", "separable_int8_257", "standard_int8_257"):
        assert (out / "export" / f"deeplabv3plus_{name}.tflite").stat().st_size > 10_000
        assert (out / "export" / f"deeplabv3plus_{name}.json").exists()
    video = cv2.VideoCapture(str(out / "annotated.mp4"))
    frames = int(video.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, frame = video.read()
    video.release()
    assert ok and frames >= 10
    # two panels side by side, each at the size the frames were generated at (no upscaling)
    assert frame.shape[:2] == (demo.VIDEO_SIZE, 2 * demo.VIDEO_SIZE)
    source = cv2.VideoCapture(str(out / "embedded.mp4"))
    assert source.get(cv2.CAP_PROP_FRAME_WIDTH) == demo.VIDEO_SIZE >= demo.SIZE
    source.release()


def test_both_heads_train_with_the_same_budget(out, report):
    (separable,), (standard,) = table_rows(report, "separable"), table_rows(report, "standard")
    assert separable[1:3] == standard[1:3] == [str(demo.QUICK_EPOCHS), "64"]  # epochs and training images
    for head in ("separable", "standard"):
        history = json.loads((out / f"train_{head}" / "history.json").read_text())
        assert len(history) == demo.QUICK_EPOCHS  # the table states what ran
    config = [json.loads((out / f"train_{h}" / "config.json").read_text()) for h in ("separable", "standard")]
    assert config[0]["settings"] == config[1]["settings"]  # the same schedule, batch, seed
    assert config[0]["data"] == config[1]["data"] and config[0]["train_examples"] == config[1]["train_examples"]


def test_the_printed_command_runs_and_each_panel_legend_is_the_app_own(out, report):
    block = re.search(r"```bash\n(.+?)\n```", report, re.S).group(1)
    command = shlex.split(block)
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["frames"] == 12 and "compare" in summary
    # the report names each panel's classes on its own row: the left one is the main model's result ...
    (left,), (right,) = table_rows(report, "left"), table_rows(report, "right")
    assert left[1] == "deeplabv3plus_separable_int8" and right[1] == "deeplabv3plus_standard_int8"
    assert left[2] == demo.classes_text(summary)
    # ... and the right one what the app finds when the standard model is the main one
    model, other = command.index("--model") + 1, command.index("--compare") + 1
    command[model], command[other] = command[other], command[model]
    swapped = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert right[2] == demo.classes_text(json.loads(swapped.stdout.strip().splitlines()[-1]))
    html = (out / "report.html").read_text()
    assert f"<td>{left[2]}</td>" in html and f"<td>{right[2]}</td>" in html


def test_each_panel_draws_its_own_legend_unhidden(out, report, tmp_path):
    """The printed command on one frame, written losslessly: in each panel's top-right corner a legend
    swatch in a class colour of the sidecar sits inside the legend's box, which no other text covers."""
    command = shlex.split(re.search(r"```bash\n(.+?)\n```", report, re.S).group(1))
    video = cv2.VideoCapture(command[command.index("--source") + 1])
    ok, frame = video.read()
    video.release()
    assert ok
    cv2.imwrite(str(tmp_path / "frame.png"), frame)
    command[command.index("--source") + 1] = str(tmp_path / "frame.png")
    command[command.index("--output") + 1] = str(tmp_path / "shown.png")
    assert subprocess.run(command, capture_output=True, timeout=300).returncode == 0
    shown = cv2.imread(str(tmp_path / "shown.png"))
    width = demo.VIDEO_SIZE
    assert shown.shape[:2] == (width, 2 * width)
    colours = json.loads((out / "export" / "deeplabv3plus_separable_int8.json").read_text())["colors"]
    swatch = np.isin(shown[..., ::-1] @ [65536, 256, 1], np.asarray(colours) @ [65536, 256, 1])
    box = (shown == 32).all(axis=-1)  # the legend box's fill, edge_app.render.PANEL
    for panel in (slice(0, width), slice(width, 2 * width)):
        rows = slice(8, 14)  # inside the first legend line's swatch
        inside = swatch[rows, panel][:, 1:] & box[rows, panel][:, :-1]  # a swatch pixel right of box fill
        assert inside[:, 2 * width // 3 :].any()


def test_the_html_page_holds_every_picture_inline(out, report):
    html = (out / "report.html").read_text()
    pictures = re.findall(r"!\[[^]]*\]\(([^)]+)\)", report)
    assert len(pictures) == html.count('src="data:image/png;base64,') == 5
    assert not re.search(r'src="(?!data:)', html)


def test_the_separable_lesson_at_two_sizes_from_the_exported_files(out, report):
    rows = {size: table_rows(report, f"{size}x{size}")[0] for size in (demo.SIZE, demo.LARGE)}
    for size, row in rows.items():
        suffix = "" if size == demo.SIZE else f"_{size}"
        sidecars = [
            json.loads((out / "export" / f"deeplabv3plus_{h}_int8{suffix}.json").read_text())
            for h in ("separable", "standard")
        ]
        assert all(s["input"]["height"] == s["input"]["width"] == size for s in sidecars)
        macs = [s["macs"] for s in sidecars]
        assert row[1:3] == [f"{macs[0]:,}", f"{macs[1]:,}"]
        assert float(row[5]) == pytest.approx(macs[0] / macs[1], abs=5e-4)
        assert float(row[6]) == pytest.approx(float(row[3]) / float(row[4]), abs=0.01)
    assert "memory" in report and "dot-product" in report


def test_the_report_ends_with_the_time_of_each_stage_and_the_whole(out, report):
    stages = [float(table_rows(report, title)[0][1]) for title, _ in demo.STEPS]
    (whole,) = table_rows(report, "whole demo")
    assert all(seconds >= 0 for seconds in stages) and sum(stages) - 0.5 <= float(whole[1]) < sum(stages) + 30
    assert report.index("| whole demo |") > report.index("ratio separable / standard")  # at the end
