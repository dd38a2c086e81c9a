"""View augmentations: each transformation checked against what it must do to known images."""

import cv2
import keras
import numpy as np
import pytest
from keras import ops

from garden.ssl import views


def _np(x):
    return ops.convert_to_numpy(x)


@pytest.fixture
def images():
    return np.random.default_rng(0).uniform(size=(4, 16, 16, 3)).astype("float32")


@pytest.fixture
def seed():
    return keras.random.SeedGenerator(1)


def test_full_crop_without_flip_is_identity(images, seed):
    out = _np(views.random_resized_crop(images, (1.0, 1.0), (1.0, 1.0), flip=False, seed=seed))
    np.testing.assert_allclose(out, images, atol=1e-5)


def test_full_crop_with_flip_mirrors_or_keeps_each_image(seed):
    batch = np.random.default_rng(1).uniform(size=(16, 8, 8, 1)).astype("float32")
    out = _np(views.random_resized_crop(batch, (1.0, 1.0), (1.0, 1.0), flip=True, seed=seed))
    mirrored = [np.allclose(o, b[:, ::-1], atol=1e-5) for o, b in zip(out, batch)]
    kept = [np.allclose(o, b, atol=1e-5) for o, b in zip(out, batch)]
    assert all(m or k for m, k in zip(mirrored, kept)) and any(mirrored) and any(kept)


def test_small_crop_zooms_in(seed):
    # A left-to-right ramp: a crop of a quarter of the area covers about half the range.
    ramp = np.tile(np.linspace(0, 1, 32, dtype="float32")[None, :, None], (32, 1, 1))[None].repeat(8, 0)
    out = _np(views.random_resized_crop(ramp, (0.25, 0.25), (1.0, 1.0), flip=False, seed=seed))
    spans = out[:, 16, -1, 0] - out[:, 16, 0, 0]
    np.testing.assert_allclose(spans, 0.5 * 31 / 32, atol=0.05)


def test_translate_by_zero_is_identity(images, seed):
    np.testing.assert_allclose(_np(views.random_translate(images, 0.0, seed)), images, atol=1e-5)


def test_color_jitter_without_strength_is_identity(images, seed):
    out = _np(views.color_jitter(images, 0, 0, 0, 0, seed))
    np.testing.assert_allclose(out, images, atol=1e-6)


def test_brightness_scales_each_image_by_one_factor(seed):
    dark = np.random.default_rng(2).uniform(0.1, 0.5, size=(3, 8, 8, 3)).astype("float32")
    out = _np(views.color_jitter(dark, 0.4, 0, 0, 0, seed))
    ratio = out / dark
    for r in ratio:
        assert np.ptp(r) < 1e-4 and 0.6 - 1e-4 <= r.mean() <= 1.4 + 1e-4


def test_saturation_and_hue_keep_gray_images_gray(seed):
    gray = np.repeat(np.random.default_rng(3).uniform(size=(2, 8, 8, 1)), 3, -1).astype("float32")
    out = _np(views.color_jitter(gray, 0, 0, 0.8, 0.5, seed))
    np.testing.assert_allclose(out, gray, atol=1e-5)


def test_grayscale_uses_luma_weights(images):
    out = _np(views.grayscale(images))
    expected = images @ np.array([0.299, 0.587, 0.114], "float32")
    np.testing.assert_allclose(out, np.repeat(expected[..., None], 3, -1), atol=1e-6)


def test_gaussian_blur_matches_opencv(seed):
    image = np.random.default_rng(4).uniform(size=(1, 40, 40, 1)).astype("float32")
    out = _np(views.gaussian_blur(image, (1.3, 1.3), seed))
    expected = cv2.GaussianBlur(image[0, :, :, 0], (5, 5), 1.3, borderType=cv2.BORDER_REFLECT_101)
    np.testing.assert_allclose(out[0, :, :, 0], expected, atol=1e-5)


def test_solarize_inverts_bright_pixels():
    x = np.array([0.0, 0.3, 0.5, 0.9], "float32").reshape(1, 2, 2, 1)
    np.testing.assert_allclose(_np(views.solarize(x)).ravel(), [0.0, 0.3, 0.5, 0.1], atol=1e-6)


def test_random_apply_probability_zero_and_one(images, seed):
    np.testing.assert_allclose(_np(views.random_apply(views.solarize, images, 0.0, seed)), images)
    np.testing.assert_allclose(_np(views.random_apply(views.solarize, images, 1.0, seed)), _np(views.solarize(images)))


def test_make_view_is_random_in_range_and_shape(images, seed):
    recipe = views.ViewRecipe(blur_probability=0.5, solarize_probability=0.5)
    first, second = _np(views.make_view(images, recipe, seed)), _np(views.make_view(images, recipe, seed))
    assert first.shape == images.shape and first.min() >= 0.0 and first.max() <= 1.0
    assert not np.allclose(first, second)


def test_recipe_rejects_unknown_fields():
    assert views.ViewRecipe().updated(flip=False).flip is False
    with pytest.raises(ValueError, match="no field colour"):
        views.ViewRecipe().updated(colour=1)
