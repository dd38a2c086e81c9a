"""Segmentation data: the embedded dataset, VOC and mask-folder loaders, joint augmentation."""

import cv2
import numpy as np
import pytest
from PIL import Image

from garden.data.base import Examples
from garden.data.embedded import CLASS_NAMES, embedded_segmentation
from garden.data.segmentation import augment_pair, mask_folders, voc, voc_palette
from garden.errors import GardenError


@pytest.fixture(scope="module")
def embedded():
    return embedded_segmentation(num_images=24, size=64, seed=3)


def test_embedded_is_deterministic_and_well_formed(embedded):
    again = embedded_segmentation(num_images=24, size=64, seed=3)
    other = embedded_segmentation(num_images=24, size=64, seed=4)
    assert isinstance(embedded, Examples) and embedded.task == "segmentation"
    assert embedded.class_names == CLASS_NAMES and len(CLASS_NAMES) == 11
    np.testing.assert_array_equal(embedded.images, again.images)
    np.testing.assert_array_equal(embedded.targets, again.targets)
    assert not np.array_equal(embedded.images, other.images)
    image, mask = embedded[0]
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    assert mask.shape == (64, 64) and mask.dtype == np.uint8
    labels = np.unique(embedded.targets)
    assert labels.min() == 0 and labels.max() <= 10 and len(labels) >= 6


def test_embedded_images_look_like_photographs_not_flat_shapes(embedded):
    for image, mask in list(embedded)[:8]:
        background = image[mask == 0].astype("float32")
        # Textured backgrounds: many distinct colours and real spread, unlike flat fills.
        assert len(np.unique(background.reshape(-1, 3), axis=0)) > 500
        assert background.std() > 5
        # Every digit covers a sensible share of the image: visible, not the whole picture.
        assert 0.01 < (mask > 0).mean() < 0.5


def _write_voc(root, stems, size=(20, 16)):
    (root / "JPEGImages").mkdir(parents=True)
    (root / "SegmentationClass").mkdir()
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    palette = voc_palette().reshape(-1).tolist()
    rng = np.random.default_rng(0)
    for stem in stems:
        cv2.imwrite(
            str(root / "JPEGImages" / f"{stem}.jpg"), rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        )
        mask = np.zeros((size[1], size[0]), np.uint8)
        mask[2:6, 3:9] = 15
        mask[6, :] = 255
        png = Image.fromarray(mask, mode="P")
        png.putpalette(palette)
        png.save(root / "SegmentationClass" / f"{stem}.png")
    (root / "ImageSets" / "Segmentation" / "train.txt").write_text("\n".join(stems) + "\n")


def test_voc_palette_matches_the_published_colours():
    palette = voc_palette()
    assert tuple(palette[1]) == (128, 0, 0) and tuple(palette[2]) == (0, 128, 0)
    assert tuple(palette[15]) == (192, 128, 128) and tuple(palette[255]) == (224, 224, 192)


def test_voc_reads_palette_indices(tmp_path):
    _write_voc(tmp_path, ["2007_000032", "2007_000039"])
    data = voc(tmp_path, "train")
    assert len(data) == 2 and data.num_classes == 21 and data.task == "segmentation"
    image, mask = data[1]
    assert image.shape == (16, 20, 3) and mask.shape == (16, 20)
    assert set(np.unique(mask)) == {0, 15, 255}
    assert mask[3, 4] == 15 and mask[6, 0] == 255


def test_voc_errors_name_the_file(tmp_path):
    with pytest.raises(GardenError, match="does not exist"):
        voc(tmp_path / "nowhere")
    _write_voc(tmp_path, ["a", "b"])
    with pytest.raises(GardenError, match="val.txt"):
        voc(tmp_path, "val")
    (tmp_path / "JPEGImages" / "b.jpg").unlink()
    with pytest.raises(GardenError, match="b.jpg"):
        voc(tmp_path)


def _write_pairs(tmp_path, masks, image_size=(12, 10)):
    images_dir, masks_dir = tmp_path / "images", tmp_path / "masks"
    images_dir.mkdir()
    masks_dir.mkdir()
    for stem, mask in masks.items():
        cv2.imwrite(str(images_dir / f"{stem}.jpg"), np.full((image_size[1], image_size[0], 3), 90, np.uint8))
        if mask is not None:
            cv2.imwrite(str(masks_dir / f"{stem}.png"), mask)
    return images_dir, masks_dir


def test_mask_folders_pairs_by_stem_and_infers_classes(tmp_path):
    good = np.zeros((10, 12), np.uint8)
    good[1:4, 1:4] = 2
    images_dir, masks_dir = _write_pairs(tmp_path, {"cat": good, "dog": np.full((10, 12), 1, np.uint8)})
    data = mask_folders(images_dir, masks_dir)
    assert data.num_classes == 3 and len(data) == 2
    image, mask = data[0]
    np.testing.assert_array_equal(mask, good)
    assert image.shape == (10, 12, 3)


@pytest.mark.parametrize(
    ("masks", "problem"),
    [
        ({"a": np.zeros((9, 12), np.uint8)}, r"a\.png is 12x9 but image .*a\.jpg is 12x10"),
        ({"a": np.full((10, 12), 7, np.uint8)}, r"a\.png has label 7, outside 0\.\.2"),
    ],
)
def test_mask_folders_bad_pairs_name_the_file(tmp_path, masks, problem):
    data = mask_folders(*_write_pairs(tmp_path, masks), num_classes=3)
    with pytest.raises(GardenError, match=problem):
        data[0]


def test_mask_folders_missing_empty_and_unreadable(tmp_path):
    with pytest.raises(GardenError, match="does not exist"):
        mask_folders(tmp_path / "x", tmp_path / "y")
    images_dir, masks_dir = _write_pairs(tmp_path, {"a": None})
    with pytest.raises(GardenError, match=r"image .*a\.jpg has no mask"):
        mask_folders(images_dir, masks_dir)
    (masks_dir / "a.png").write_bytes(b"not a png")
    with pytest.raises(GardenError, match=r"cannot read mask .*a\.png"):
        mask_folders(images_dir, masks_dir, num_classes=2)[0]
    (images_dir / "a.jpg").unlink()
    with pytest.raises(GardenError, match="has no images"):
        mask_folders(images_dir, masks_dir)


def test_augment_pair_moves_image_and_mask_together():
    rng = np.random.default_rng(0)
    image = np.zeros((40, 60, 3), np.uint8)
    mask = np.zeros((40, 60), np.uint8)
    image[10:20, 5:25] = 200
    mask[10:20, 5:25] = 3
    for _ in range(20):
        out_image, out_mask = augment_pair(image, mask, rng, 32, colour=0.0)
        assert out_image.shape == (32, 32, 3) and out_mask.shape == (32, 32)
        assert set(np.unique(out_mask)) <= {0, 3, 255}
        # Nearest-neighbour masks keep labels; the bright patch and label 3 coincide up to a pixel rim.
        bright = out_image[..., 0] > 100
        agree = (bright == (out_mask == 3)) | (out_mask == 255)
        assert agree.mean() > 0.93
        assert not (out_image[out_mask == 255] > 0).any()
    flipped_seen = False
    for seed in range(6):
        out_image, out_mask = augment_pair(image, mask, np.random.default_rng(seed), (40, 60), scale=(1, 1), colour=0.0)
        flipped_seen |= out_mask[15, 50] == 3
    assert flipped_seen


def test_augment_pair_colour_jitter_only_touches_the_image():
    rng = np.random.default_rng(1)
    image = np.full((16, 16, 3), 120, np.uint8)
    mask = np.ones((16, 16), np.uint8)
    out_image, out_mask = augment_pair(image, mask, rng, 16, scale=(1, 1), flip=False, colour=0.3)
    assert not np.array_equal(out_image, image)
    np.testing.assert_array_equal(out_mask, mask)
    with pytest.raises(GardenError, match="mask"):
        augment_pair(image, mask[:8], rng, 16)
