"""``make demo`` tells the whole story; here in its quick form (one epoch of training)."""

import cv2
import pytest

from deploy import demo


@pytest.mark.slow
def test_quick_demo_writes_the_report_video_and_pictures(tmp_path):
    assert demo.main(["--quick", "--out", str(tmp_path)]) == 0
    report = (tmp_path / "report.md").read_text()
    for section in (
        "AlexNet at 227x227x3",
        "The 1x1 bottleneck",
        "Training DeepLabv3+",
        "full-int8 TFLite",
        "garden-edge",
        "ratio separable / standard",
    ):
        assert section in report
    for picture in ("alexnet_layers.png", "compare.png", "annotated_frame.png", "train_separable/curves.png"):
        assert cv2.imread(str(tmp_path / picture)) is not None, picture
    for name in ("deeplabv3plus_separable_int8", "deeplabv3plus_standard_int8"):
        assert (tmp_path / "export" / f"{name}.tflite").stat().st_size > 10_000
        assert (tmp_path / "export" / f"{name}.json").exists()
    video = cv2.VideoCapture(str(tmp_path / "annotated.mp4"))
    frames = int(video.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, frame = video.read()
    video.release()
    assert ok and frames >= 10
    assert frame.shape[1] > frame.shape[0]  # the two models side by side
