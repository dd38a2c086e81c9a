"""``create_model(name, weights=...)``: keras.applications weights on garden's [0, 1] pixels.

Weight files are made here (keras.applications models with random weights and batch-norm statistics,
saved); ``"imagenet"`` goes through a replaced downloader that serves those files, or fails as an
offline machine does. Nothing touches the network.
"""

import cv2
import keras
import numpy as np
import pytest
from skimage import data as photographs

import garden
from garden.errors import GardenError
from garden.weights import cache_folder
from helpers import assert_roundtrip, perturbed

# garden name: (keras.applications constructor, its module's preprocess_input, input side)
CASES = {
    "vgg16": ("VGG16", keras.applications.vgg16.preprocess_input, 32),
    "resnet50": ("ResNet50", keras.applications.resnet.preprocess_input, 32),
    "densenet121": ("DenseNet121", keras.applications.densenet.preprocess_input, 32),
    "mobilenet_v2": ("MobileNetV2", keras.applications.mobilenet_v2.preprocess_input, 32),
    "mobilenet_v3_small": ("MobileNetV3Small", keras.applications.mobilenet_v3.preprocess_input, 32),
    "xception": ("Xception", keras.applications.xception.preprocess_input, 71),
}
CLASSES = 10


def photograph(size):
    """scikit-image's astronaut at ``size x size``, garden's [0, 1] RGB pixels."""
    return (cv2.resize(photographs.astronaut(), (size, size), interpolation=cv2.INTER_AREA) / 255.0).astype("float32")


def reference_model(application, size, **kwargs):
    """A randomised keras.applications model (logits out); MobileNetV3 rescales [0, 255] inside, as Keras ships it."""
    return perturbed(
        getattr(keras.applications, application)(
            weights=None, input_shape=(size, size, 3), classes=CLASSES, classifier_activation=None, **kwargs
        )
    )


def assert_close_on_logit_scale(got, expected):
    scale = max(1.0, float(np.ptp(expected)))
    assert np.abs(got - expected).max() <= 1e-4 * scale, (np.abs(got - expected).max(), scale)


@pytest.mark.parametrize("name", sorted(CASES))
def test_weight_file_gives_keras_applications_output_on_its_own_preprocessing(name, tmp_path):
    application, preprocess, size = CASES[name]
    reference = reference_model(application, size)
    path = tmp_path / f"{name}.weights.h5"
    reference.save_weights(path)
    model = garden.create_model(name, weights=str(path), input_shape=(size, size, 3), num_classes=CLASSES)
    pixels = photograph(size)[None]
    expected = np.asarray(reference(preprocess(pixels * 255.0), training=False))
    assert_close_on_logit_scale(np.asarray(model(pixels, training=False)), expected)


@pytest.fixture
def served(monkeypatch):
    """Replace keras.applications' downloader: it serves the files in ``served`` by name, else fails offline."""
    from keras.src.utils import file_utils

    files, asked = {}, []

    def get_file(fname=None, origin=None, *args, **kwargs):
        asked.append(fname)
        if fname in files:
            return str(files[fname])
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(file_utils, "get_file", get_file)
    return files, asked


def test_imagenet_offline_is_one_line_naming_file_and_folder(served, monkeypatch, tmp_path):
    monkeypatch.setattr("keras.src.backend.config._KERAS_DIR", str(tmp_path / "keras_home"))
    with pytest.raises(GardenError) as error:
        garden.create_model("mobilenet_v2", weights="imagenet", alpha=0.35, input_shape=(32, 32, 3), num_classes=3)
    message = str(error.value)
    _, asked = served
    assert "\n" not in message and asked[0] in message and asked[0].endswith("no_top.h5")
    assert f"{tmp_path / 'keras_home' / 'models'}/" in message and cache_folder() == tmp_path / "keras_home" / "models"


def test_imagenet_through_the_downloader_new_head_normalised_inside(served, tmp_path):
    """ImageNet weights (a served file), a 3-class head: the trunk is keras.applications', the model takes [0, 1]."""
    files, asked = served
    reference = perturbed(keras.applications.MobileNetV2(weights=None, alpha=0.35, include_top=False))
    files["mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"] = tmp_path / "served.weights.h5"
    reference.save_weights(files["mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"])
    model = garden.create_model("mobilenet_v2", weights="imagenet", alpha=0.35, input_shape=(64, 64, 3), num_classes=3)
    assert model.output_shape == (None, 3) and model.layers[1].name == "input_normalization"
    pixels = photograph(64)[None]
    trunk = keras.Model(model.input, model.get_layer("final_act").output)
    keras_trunk = keras.applications.MobileNetV2(weights=None, alpha=0.35, include_top=False, input_shape=(64, 64, 3))
    keras_trunk.set_weights(reference.get_weights())
    expected = np.asarray(keras_trunk(keras.applications.mobilenet_v2.preprocess_input(pixels * 255.0)))
    assert_close_on_logit_scale(np.asarray(trunk(pixels)), expected)
    loaded = assert_roundtrip(model, tmp_path, pixels)  # the normalisation travels in the .keras file
    assert loaded.get_layer("input_normalization").mean == [0.5, 0.5, 0.5]


def test_weights_refused_where_there_are_none():
    with pytest.raises(GardenError, match="no keras.applications weights"):
        garden.create_model("resnet18", weights="imagenet")
    with pytest.raises(GardenError, match="does not exist"):
        garden.create_model("mobilenet_v2", weights="missing.weights.h5", input_shape=(32, 32, 3))


# ---------------------------------------------------------------- segmenters on pretrained backbones

# backbone: (application, preprocess_input, input side, {stride: the keras.applications tensor at that stride})
BACKBONES = {
    "resnet50": (
        "ResNet50",
        keras.applications.resnet.preprocess_input,
        64,
        {4: "conv2_block3_out", 8: "conv3_block4_out"},
    ),
    "mobilenet_v2": (
        "MobileNetV2",
        keras.applications.mobilenet_v2.preprocess_input,
        64,
        {4: "block_2_add", 8: "block_5_add"},
    ),
    # Xception's residual adds are unnamed: the activation after each takes the stride's map as its input
    "xception": (
        "Xception",
        keras.applications.xception.preprocess_input,
        71,
        {4: "block3_sepconv1_act<", 8: "block4_sepconv1_act<"},
    ),
}


def _tensor(model, name):
    return model.get_layer(name[:-1]).input if name.endswith("<") else model.get_layer(name).output


@pytest.mark.parametrize("backbone", sorted(BACKBONES))
def test_deeplabv3plus_backbone_weights_give_keras_applications_features(backbone, tmp_path):
    application, preprocess, size, taps = BACKBONES[backbone]
    reference = perturbed(
        getattr(keras.applications, application)(weights=None, include_top=False, input_shape=(size, size, 3))
    )
    reference.save_weights(tmp_path / "backbone.weights.h5")
    model = garden.create_model(
        "deeplabv3plus",
        backbone=backbone,
        backbone_weights=str(tmp_path / "backbone.weights.h5"),
        num_classes=3,
        input_shape=(size, size, 3),
    )
    inner = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    pixels = photograph(size)[None]
    ours = inner(pixels)
    theirs = keras.Model(reference.input, [_tensor(reference, name) for name in taps.values()])(
        preprocess(pixels * 255.0)
    )
    for stride, expected in zip(taps, theirs):
        assert_close_on_logit_scale(np.asarray(ours[f"stride_{stride}"]), np.asarray(expected))


@pytest.mark.slow
def test_fcn32s_fc6_fc7_are_vgg16s_fully_connected_layers_as_convolutions(tmp_path):
    reference = perturbed(keras.applications.VGG16(weights=None, classifier_activation=None))
    reference.save_weights(tmp_path / "vgg16.weights.h5")
    model = garden.create_model("fcn32s", backbone_weights=str(tmp_path / "vgg16.weights.h5"), num_classes=3)
    pixels = photograph(224)[None]
    fc = keras.Model(model.input, [model.get_layer("fc6").output, model.get_layer("fc7").output])(pixels)
    keras_fc = keras.Model(reference.input, [reference.get_layer("fc1").output, reference.get_layer("fc2").output])
    expected = keras_fc(keras.applications.vgg16.preprocess_input(pixels * 255.0))
    for ours, theirs in zip(fc, expected):  # the centre of the 7x7 map sees all of pool5, as VGG's fc6 does
        assert_close_on_logit_scale(np.asarray(ours)[:, 3, 3], np.asarray(theirs))


def test_imagenet_class_names_from_keras_cache_only(monkeypatch, tmp_path):
    import json

    from garden.weights import imagenet_class_names

    monkeypatch.setattr("keras.src.backend.config._KERAS_DIR", str(tmp_path))
    assert imagenet_class_names() is None  # not cached: nothing is fetched
    (tmp_path / "models").mkdir()
    index = {str(i): [f"n{i:08d}", f"class_{i}"] for i in range(1000)}
    (tmp_path / "models" / "imagenet_class_index.json").write_text(json.dumps(index))
    names = imagenet_class_names()
    assert len(names) == 1000 and names[0] == "class_0" and names[999] == "class_999"
