"""Classical segmentation behind one interface, the pictures, and `garden segment-classic`."""

import cv2
import numpy as np
import pytest

from garden.cli import main
from garden.errors import GardenError
from garden.segmentation.classical import METHODS, segment
from garden.segmentation.visualize import colorize, comparison_strip, draw_regions, overlay, save_comparison


@pytest.fixture(scope="module")
def scene():
    """Three flat regions with mild noise: a left half, a right half and a disc across both."""
    rng = np.random.default_rng(0)
    image = np.zeros((60, 80, 3), np.float32)
    image[:, :40] = (200, 40, 40)
    image[:, 40:] = (40, 60, 200)
    cv2.circle(image, (40, 30), 14, (40, 200, 60), -1)
    truth = np.zeros((60, 80), np.int32)
    truth[:, 40:] = 1
    cv2.circle(truth, (40, 30), 14, 2, -1)
    image = np.clip(image + rng.normal(0, 3, image.shape), 0, 255).astype(np.uint8)
    return image, truth


def _purity(labels, truth):
    """Share of pixels whose region's majority true class is their own class (1.0 = no region straddles)."""
    correct = 0
    for region in np.unique(labels):
        inside = truth[labels == region]
        correct += np.bincount(inside).max()
    return correct / truth.size


@pytest.mark.parametrize("method", METHODS)
def test_every_method_returns_a_label_map_that_respects_edges(method, scene):
    image, truth = scene
    result = segment(image, method)
    assert result.labels.shape == image.shape[:2] and result.labels.dtype == np.int32
    assert result.labels.min() == 0 and result.num_regions == len(np.unique(result.labels))
    assert 2 <= result.num_regions < image.shape[0] * image.shape[1] / 10
    assert _purity(result.labels, truth) > 0.95
    if method == "selective-search":
        assert len(result.boxes) > 0
        x, y, w, h = result.boxes.T
        assert (x >= 0).all() and (y >= 0).all() and (x + w <= 80).all() and (y + h <= 60).all()
    else:
        assert len(result.boxes) == 0


def test_kmeans_finds_the_three_colours(scene):
    image, truth = scene
    labels = segment(image, "kmeans", k=3, spatial_weight=0.0).labels
    assert _purity(labels, truth) > 0.99


def test_bad_input_is_a_garden_error(scene):
    image, _ = scene
    with pytest.raises(GardenError, match="unknown segmentation method"):
        segment(image, "grabcut")
    with pytest.raises(GardenError, match="uint8"):
        segment(image.astype(np.float32), "slic")
    with pytest.raises(GardenError, match="slic"):
        segment(image, "slic", nonsense=1)


def test_colorize_overlay_and_comparison(scene):
    image, truth = scene
    colours = colorize(np.array([[0, 1, 255]]))
    assert colours.tolist() == [[[0, 0, 0], [128, 0, 0], [224, 224, 192]]]
    blended = overlay(image, truth, alpha=0.5)
    np.testing.assert_array_equal(blended[truth == 0], image[truth == 0])
    expected = (image[5, 60].astype(float) * 0.5 + np.array([128, 0, 0]) * 0.5).round()
    np.testing.assert_allclose(blended[5, 60], expected, atol=1)
    prediction = truth.copy()
    prediction[:10, :10] = 1
    strip = comparison_strip(image, truth, prediction, gap=4)
    assert strip.shape == (60, 4 * 80 + 3 * 4, 3)
    errors = strip[:, 3 * 84 :]
    assert (errors[:10, :10] == (230, 30, 30)).all() and not (errors[20:, :] == (230, 30, 30)).all(-1).any()
    regions = draw_regions(image, truth)
    assert regions.shape == image.shape and (regions == 255).all(-1).sum() > 50


def test_save_comparison_writes_a_png(tmp_path, scene):
    image, truth = scene
    path = tmp_path / "compare.png"
    save_comparison(path, [(image, truth, truth), (image, truth, np.zeros_like(truth))], class_names=["a", "b", "c"])
    picture = cv2.imread(str(path))
    assert picture is not None and picture.shape[1] > 300


def test_cli_segment_classic(tmp_path, scene, capsys):
    image, _ = scene
    source, out, labels = tmp_path / "scene.png", tmp_path / "overlay.png", tmp_path / "labels.png"
    cv2.imwrite(str(source), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert main(["segment-classic", "felzenszwalb", str(source), "--out", str(out), "--labels", str(labels)]) == 0
    assert cv2.imread(str(out)).shape == (60, 80, 3)
    assert cv2.imread(str(labels), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    assert "felzenszwalb:" in capsys.readouterr().err
    assert main(["segment-classic", "selective-search", str(source), "--out", str(out), "--boxes", "3"]) == 0
    assert main(["segment-classic", "slic", str(tmp_path / "missing.jpg"), "--out", str(out)]) == 2
    assert "missing.jpg" in capsys.readouterr().err
    assert main(["segment-classic", "blobs", str(source), "--out", str(out)]) == 2
    assert main(["segment-classic", "slic", str(source), "--out", str(tmp_path / "no" / "o.png")]) == 2
