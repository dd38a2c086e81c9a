"""Data sources, layout detection, augmentation and the batch pipeline: real files, exact values."""

import pickle

import cv2
import numpy as np
import pytest
from sklearn.datasets import load_digits

from garden.data import ArrayExamples
from garden.data.augment import Augment, augment_pair, crop_window, parse_augment
from garden.data.classification import cifar10, digits, image_folder
from garden.data.sources import detect_layout, load_source, load_splits
from garden.errors import GardenError
from garden.train.pipeline import Batches


def write_image(path, rgb):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def test_digits_are_the_scikit_learn_digits_upscaled():
    examples = digits()
    reference = load_digits()
    assert len(examples) == 1797 and examples.class_names == tuple("0123456789")
    image, label = examples[5]
    assert image.shape == (32, 32, 1) and image.dtype == np.uint8 and label == reference.target[5]
    # block-averaging 32x32 back to 8x8 recovers the original ink levels (0..16 scaled to 0..255)
    small = image[..., 0].astype(float).reshape(8, 4, 8, 4).mean(axis=(1, 3))
    np.testing.assert_allclose(small, reference.images[5] * 255 / 16, atol=40)
    assert digits(size=16, channels=3)[0][0].shape == (16, 16, 3)


def test_image_folder_reads_rgb_lazily_with_sorted_classes(tmp_path):
    red, blue = np.zeros((6, 5, 3), np.uint8), np.zeros((6, 5, 3), np.uint8)
    red[..., 0], blue[..., 2] = 200, 150
    write_image(tmp_path / "zebra" / "a.png", blue)
    write_image(tmp_path / "apple" / "a.png", red)
    write_image(tmp_path / "apple" / "b.png", red)
    (tmp_path / "apple" / "notes.txt").write_text("not an image")
    examples = image_folder(tmp_path)
    assert examples.class_names == ("apple", "zebra") and len(examples) == 3
    image, label = examples[2]
    assert label == 1 and image.shape == (6, 5, 3) and tuple(image[0, 0]) == (0, 0, 150)
    assert tuple(examples[0][0][0, 0]) == (200, 0, 0)


def test_image_folder_errors_name_the_cause(tmp_path):
    with pytest.raises(GardenError, match="does not exist"):
        image_folder(tmp_path / "missing")
    write_image(tmp_path / "cats" / "a.png", np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "dogs").mkdir()
    with pytest.raises(GardenError, match="class folder .*dogs has no images"):
        image_folder(tmp_path)
    (tmp_path / "dogs" / "broken.png").write_bytes(b"not a png at all")
    examples = image_folder(tmp_path)
    with pytest.raises(GardenError, match="cannot decode image .*broken.png"):
        examples[1]


def write_cifar(root, per_batch=3):
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    with open(root / "batches.meta", "wb") as handle:
        pickle.dump({b"label_names": [f"class{i}".encode() for i in range(10)]}, handle)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        with open(root / name, "wb") as handle:
            pickle.dump({b"data": data, b"labels": list(rng.integers(0, 10, per_batch))}, handle)
    return root


def test_cifar10_pickle_layout(tmp_path):
    root = write_cifar(tmp_path / "cifar-10-batches-py")
    train, test = cifar10(tmp_path, "train"), cifar10(root, "test")
    assert len(train) == 15 and len(test) == 3 and train.class_names[3] == "class3"
    with open(root / "test_batch", "rb") as handle:
        raw = pickle.load(handle)
    image, label = test[1]
    row = raw[b"data"][1]  # 1024 red, then 1024 green, then 1024 blue, row-major
    assert tuple(image[2, 5]) == (row[2 * 32 + 5], row[1024 + 2 * 32 + 5], row[2048 + 2 * 32 + 5])
    assert label == raw[b"labels"][1]
    (root / "data_batch_3").unlink()
    with pytest.raises(GardenError, match="data_batch_3 is missing"):
        cifar10(root, "train")


def test_load_source_detects_layouts(tmp_path):
    cifar = write_cifar(tmp_path / "c" / "cifar-10-batches-py")
    assert detect_layout(tmp_path / "c")[0] == "cifar10"
    train, test = load_splits(f"cifar10:{cifar}")
    assert (len(train), len(test)) == (15, 3)
    for name in ("JPEGImages", "SegmentationClass"):
        (tmp_path / "v" / "VOCdevkit" / "VOC2012" / name).mkdir(parents=True)
    assert detect_layout(tmp_path / "v") == ("voc", tmp_path / "v" / "VOCdevkit" / "VOC2012")
    (tmp_path / "m" / "images").mkdir(parents=True)
    (tmp_path / "m" / "masks").mkdir()
    assert detect_layout(tmp_path / "m")[0] == "mask_folders"
    for cls in ("a", "b"):
        for i in range(5):
            write_image(tmp_path / "f" / cls / f"{i}.png", np.full((4, 4, 3), i, np.uint8))
    train, test = load_splits(tmp_path / "f", held_out=0.2)
    assert (len(train), len(test)) == (8, 2) and not set(train.indices) & set(test.indices)
    assert len(load_source("digits", task="classification")) == 1438


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p / "missing", "does not exist"),
        (lambda p: p, "is empty"),
        (lambda p: (p / "x.png").write_bytes(b"") or p / "x.png", "is not a folder"),
    ],
)
def test_load_source_bad_folders(tmp_path, make, message):
    with pytest.raises(GardenError, match=message):
        load_source(str(make(tmp_path)))


def test_load_source_loose_images_and_task_mismatch(tmp_path):
    write_image(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(GardenError, match="no class folders"):
        load_source(tmp_path)
    with pytest.raises(GardenError, match="classification source, but a segmentation model"):
        load_source("digits", task="segmentation")


def test_parse_augment():
    assert parse_augment("none") == Augment() and not Augment().active
    config = parse_augment("flip, crop=0.5,color,distort=15")
    assert config == Augment(flip=True, crop=0.5, color=0.2, distort=15.0)
    assert config.describe() == "flip,crop=0.5,color=0.2,distort=15"
    for bad in ("blur", "crop=2", "color=x", "flip=1"):
        with pytest.raises(GardenError, match="--augment"):
            parse_augment(bad)


def test_crop_window_bounds():
    rng = np.random.default_rng(1)
    for _ in range(200):
        top, left, h, w = crop_window((40, 30), rng, 0.35)
        assert 0 <= top and top + h <= 40 and 0 <= left and left + w <= 30
        assert h * w >= 0.3 * 40 * 30  # rounding may shave a little off the 35% floor


def test_augment_pair_moves_image_and_mask_together():
    mask = np.zeros((48, 48), np.uint8)
    mask[10:30, 5:20] = 1
    mask[30:45, 25:45] = 2
    image = np.repeat((mask * 100)[..., None], 3, axis=-1).astype(np.uint8)
    rng = np.random.default_rng(3)
    config = Augment(flip=True, crop=0.5, distort=12)
    for _ in range(10):
        out_image, out_mask = augment_pair(image, mask, rng, config, (32, 32))
        assert out_image.shape == (32, 32, 3) and out_mask.shape == (32, 32)
        assert set(np.unique(out_mask)) <= {0, 1, 2, 255}
        valid = out_mask != 255
        agree = np.abs(out_image[..., 0].astype(int) - out_mask.astype(int) * 100) < 30
        assert agree[valid].mean() > 0.9
    flipped = augment_pair(image, mask, np.random.default_rng(0), Augment(flip=True), (48, 48))
    plain = augment_pair(image, mask, np.random.default_rng(0), Augment(), (48, 48))
    assert np.array_equal(plain[1], mask)
    assert np.array_equal(flipped[1], mask) or np.array_equal(flipped[1], mask[:, ::-1])


def test_batches_shapes_order_and_errors():
    images = np.arange(10, dtype=np.uint8)[:, None, None, None] * np.ones((1, 8, 8, 1), np.uint8)
    examples = ArrayExamples(images, np.arange(10) % 3, ["a", "b", "c"])
    batches = Batches(examples, 4, (8, 8, 3), training=True, seed=1)
    assert len(batches) == 2
    x, y = batches[0]
    assert x.shape == (4, 8, 8, 3) and x.dtype == np.float32 and y.dtype == np.int32
    np.testing.assert_array_equal(y, (x[:, 0, 0, 0] * 255).round().astype(int) % 3)
    first = np.concatenate([batches[i][0][:, 0, 0, 0] for i in range(2)])
    again = np.concatenate([batches[i][0][:, 0, 0, 0] for i in range(2)])
    np.testing.assert_array_equal(first, again)  # an epoch's order is fixed by (seed, epoch)
    batches.on_epoch_end()
    second = np.concatenate([batches[i][0][:, 0, 0, 0] for i in range(2)])
    assert not np.array_equal(first, second)
    held_out = Batches(examples, 4, (8, 8, 1), one_hot=True)
    assert len(held_out) == 3 and held_out[2][0].shape == (2, 8, 8, 1) and held_out[0][1].shape == (4, 3)
    with pytest.raises(GardenError, match="batch size 11 is larger than the 10 training examples"):
        Batches(examples, 11, (8, 8, 1), training=True)


def test_batches_segmentation_masks():
    masks = np.zeros((3, 12, 12), np.uint8)
    masks[:, :, :6] = 1  # left half is class 1
    examples = ArrayExamples(np.zeros((3, 12, 12, 3), np.uint8), masks, ["bg", "fg"], task="segmentation")
    x, y = Batches(examples, 3, (6, 6, 3))[0]
    assert x.shape == (3, 6, 6, 3) and y.shape == (3, 6, 6) and y.dtype == np.int32
    np.testing.assert_array_equal(y[0, :, :3], 1)
    np.testing.assert_array_equal(y[0, :, 3:], 0)


def test_embedded_and_mask_folders_sources(tmp_path, monkeypatch):
    import garden.data.embedded as embedded

    calls = []
    real = embedded.embedded_segmentation
    monkeypatch.setattr(embedded, "embedded_segmentation", lambda: calls.append(1) or real(num_images=10, size=16))
    train, test = load_splits("embedded", task="segmentation")
    assert calls and (len(train), len(test)) == (8, 2) and train.task == "segmentation"
    assert train[0][1].shape == (16, 16)
    for i in range(5):
        mask = np.zeros((6, 6), np.uint8)
        mask[:3] = 1 + i % 2
        write_image(tmp_path / "images" / f"{i}.png", np.full((6, 6, 3), 30 * i, np.uint8))
        (tmp_path / "masks").mkdir(exist_ok=True)
        assert cv2.imwrite(str(tmp_path / "masks" / f"{i}.png"), mask)
    train, test = load_splits(tmp_path, task="segmentation")
    assert (len(train), len(test)) == (4, 1) and train.num_classes == 3
    image, mask = test[0]
    assert image.shape == (6, 6, 3) and set(np.unique(mask)) <= {0, 1, 2}


def test_photo_digits_is_a_fixed_colour_split_with_unseen_test_glyphs():
    from garden.data import photo_digits as module
    from garden.data.embedded import _digits
    from garden.ssl.data import is_gray

    train, test = load_splits("photo_digits")
    assert (len(train), len(test)) == (10_000, 2_000) and train.class_names == tuple("0123456789")
    assert train.images.shape[1:] == (32, 32, 3) and train.images.dtype == np.uint8
    counts = np.bincount(train.targets, minlength=10)
    assert counts.min() > 800  # every class about a tenth
    assert not is_gray(train.images[:50].astype("float32"))
    # The same on every call (and machine): rebuilt from nothing, identical.
    module._images.cache_clear()
    again = module.photo_digits("test")
    assert np.array_equal(again.images, test.images) and np.array_equal(again.targets, test.targets)
    # Test images show digit samples the training images never do, and both draw on many.
    assert set(train.glyph_indices).isdisjoint(test.glyph_indices)
    assert len(set(test.glyph_indices)) > 300 and len(set(train.glyph_indices)) > 1300
    assert np.array_equal(train.targets, _digits()[1][train.glyph_indices])  # the label is the digit drawn
    big, _ = load_splits("photo_digits:64")
    assert big.images.shape[1:] == (64, 64, 3)
    with pytest.raises(GardenError, match="photo_digits:SIZE"):
        load_splits("photo_digits:8")
