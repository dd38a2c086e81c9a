"""A user's own material: a keras.applications model saved as .keras, a plain folder of photographs.

The model is keras.applications' MobileNetV2 (softmax-ended, expecting ``x / 127.5 - 1``) with random
weights and batch-norm statistics; the photographs are scikit-image's. Nothing is downloaded.
"""

import json
import zipfile
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest
from skimage import data as photographs

import garden
from deploy import check
from deploy.export import export
from garden.cli import main
from garden.errors import GardenError
from helpers import garden_edge, perturbed, squares

SIZE = 32
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera")


@pytest.fixture(scope="module")
def user(tmp_path_factory):
    """``(folder, model)``: ``user.keras`` (MobileNetV2 0.35, 5 classes, softmax) and ``photos/`` (no labels)."""
    folder = tmp_path_factory.mktemp("user")
    model = perturbed(keras.applications.MobileNetV2(weights=None, alpha=0.35, input_shape=(SIZE, SIZE, 3), classes=5))
    model.save(folder / "user.keras")
    (folder / "photos").mkdir()
    for name in PHOTOS:
        image = getattr(photographs, name)()
        image = np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else image
        cv2.imwrite(str(folder / "photos" / f"{name}.png"), cv2.resize(image, (64, 64))[..., ::-1])
    return folder, model


def keras_top1(model, folder):
    """The Keras model's top-1 on each photograph, fed as its weights expect (keras.applications' preprocessing)."""
    tops = {}
    for name in PHOTOS:
        rgb = cv2.imread(str(folder / "photos" / f"{name}.png"))[..., ::-1]
        x = cv2.resize(rgb, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR).astype("float32")
        x = keras.applications.mobilenet_v2.preprocess_input(x[None])
        tops[name] = int(np.argmax(model.predict(x, verbose=0)))
    return tops


def edge_top1(path, folder):
    """Top-1 of garden-edge's own pipeline (its preprocessing from the sidecar, LiteRT, its postprocessing)."""
    from edge_app.model import infer, load_model, preprocess
    from edge_app.postprocess import postprocess

    model = load_model(path)
    tops = {}
    for name in PHOTOS:
        frame = cv2.imread(str(folder / "photos" / f"{name}.png"))
        tops[name] = postprocess(infer(model, preprocess(frame, model)), model.info).top[0][0]
    return tops


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_int8_export_of_a_softmax_model_calibrated_on_plain_photos(user, capsys):
    folder, model = user
    out = folder / "new" / "folder"
    code, table, err = run(
        capsys, "export", folder / "user.keras", "--quant", "int8", "--calib", folder / "photos", "--out", out
    )
    assert code == 0, err
    notes = [line for line in err.splitlines() if line.startswith("note:")]
    assert any("softmax" in line and "logits" in line for line in notes), err
    path = out / "user_int8.tflite"
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar["input"]["scale"] == pytest.approx(1 / 127.5)
    assert sidecar["input"]["mean"] == [1, 1, 1] and sidecar["input"]["std"] == [1, 1, 1]
    report = json.loads((out / "user_int8.report.json").read_text())
    assert report["quality"]["float"] is None and report["quality"]["agreement"] >= 80  # no labels: agreement only
    assert "| - | - | - |" in table
    assert edge_top1(path, folder) == keras_top1(model, folder)
    done = garden_edge("--model", path, "--source", folder / "photos", "--headless", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["frames"] == len(PHOTOS)


def test_float_export_keeps_the_softmax_and_overrides_the_input(user, tmp_path):
    folder, model = user
    result = export(
        str(folder / "user.keras"),
        calib=str(folder / "photos"),
        out=tmp_path,
        input_mean=(0.5,),
        input_std=(0.25, 0.5, 1.0),
        input_scale=1 / 255,
        repeats=1,
    )
    assert result.notes == [
        f"input: (pixel * {1 / 255:.6g} - [0.5, 0.5, 0.5]) / [0.25, 0.5, 1.0], --scale/--mean/--std"
    ]
    sidecar = json.loads(result.sidecar_path.read_text())["input"]
    assert sidecar["mean"] == [0.5, 0.5, 0.5] and sidecar["std"] == [0.25, 0.5, 1.0]
    probabilities = check.open_runner(result.path).run(np.full((1, SIZE, SIZE, 3), 0.5, "float32"))
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    assert result.report["quality"]["max_abs_diff"] < 1e-5


def test_calibration_from_a_npy_array(user, tmp_path):
    folder, model = user
    photos = np.stack([cv2.resize(photographs.chelsea(), (40, 40)) for _ in range(4)])
    np.save(tmp_path / "photos.npy", photos.astype("float32") / 255)
    result = export(model, quant="int8", calib=str(tmp_path / "photos.npy"), out=tmp_path, repeats=1)
    assert result.path.is_file() and result.report["quality"]["examples"] == 4


def test_check_needs_labels_and_max_drop_needs_them_too(user, tmp_path, capsys):
    folder, _ = user
    keras_file, photos = folder / "user.keras", folder / "photos"
    code, _, err = run(capsys, "export", keras_file, "--calib", photos, "--check", photos, "--out", tmp_path / "a")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--check needs labelled data" in err
    code, _, err = run(capsys, "export", keras_file, "--calib", photos, "--max-drop", "1", "--out", tmp_path / "b")
    assert code == 2 and "--max-drop needs labelled" in err
    assert list(tmp_path.iterdir()) == []  # refused before any folder was made


def test_a_failed_export_removes_only_the_folders_it_made(user, tmp_path, capsys):
    folder, _ = user
    (tmp_path / "kept").mkdir()
    out = tmp_path / "kept" / "made" / "deeper"
    argv = ("export", folder / "user.keras", "--calib", folder / "photos", "--check", "digits", "--max-drop", "-100")
    code, _, err = run(capsys, *argv, "--out", out)
    assert code == 2 and "more than --max-drop" in err, err
    assert list(tmp_path.iterdir()) == [tmp_path / "kept"] and list((tmp_path / "kept").iterdir()) == []


def _lambda_model_file(path):
    inputs = keras.Input((4,))
    keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs)).save(path)
    return path


@pytest.mark.parametrize("damage", ["corrupt", "truncated", "lambda", "missing"])
def test_damaged_or_unsafe_model_files_are_one_line(user, tmp_path, capsys, damage):
    folder, _ = user
    path = tmp_path / "damaged.keras"
    whole = (folder / "user.keras").read_bytes()
    if damage == "corrupt":
        path.write_bytes(b"\x00garbage" * 100)
    elif damage == "truncated":
        path.write_bytes(whole[: len(whole) // 2])
    elif damage == "lambda":
        _lambda_model_file(path)
    words = {"corrupt": "corrupt", "truncated": "corrupt", "lambda": "safe mode", "missing": "does not exist"}
    code, _, err = run(capsys, "export", path, "--out", tmp_path / "out")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("garden: error: ") and words[damage] in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_a_zip_that_is_not_a_model_is_one_line(tmp_path):
    from garden.saving import load_model_file

    path = tmp_path / "other.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "not a model")
    with pytest.raises(GardenError, match="cannot load model file"):
        load_model_file(path)


def test_agreement_counts_ties_and_the_difference_is_relative():
    # A model whose logits span 1e-10: the file's zeros are 100% of that range off, whatever their absolute size.
    reference = np.array([[1e-10, 0.0, 0.0], [0.0, 1e-10, 0.0]])
    quality = check.compare(
        reference, np.zeros_like(reference), None, task="classification", output_kind="logits", num_classes=3
    )
    assert quality["agreement"] == 50.0 and quality["max_rel_diff"] == pytest.approx(1.0)
    # Ties in the model's own scores (within 1e-5 of their spread): either class is its top-1.
    tied = np.array([[2.0, 2.0 + 1e-9, -1.0], [0.0, 3.0, 3.0]])
    assert check.agreement(tied, np.array([0, 2])) == 1.0
    assert check.agreement(tied, np.array([2, 0])) == 0.0


# ---------------------------------------------------------------- builder arguments from the command line


def test_set_values_parse_to_python():
    from garden.options import parse_setting

    assert parse_setting("output_stride=8") == ("output_stride", 8)
    assert parse_setting("alpha=0.35") == ("alpha", 0.35)
    assert parse_setting("separable=false") == ("separable", False)
    assert parse_setting("aspp_rates=6,12,18") == ("aspp_rates", (6, 12, 18))
    assert parse_setting("input_shape=(64, 64, 3)") == ("input_shape", (64, 64, 3))
    assert parse_setting("backbone=resnet50") == ("backbone", "resnet50")
    with pytest.raises(GardenError, match="KEY=VALUE"):
        parse_setting("output_stride")


def test_profile_with_set_backbone_and_output_stride(capsys):
    code, out, err = run(
        capsys, "profile", "deeplabv3plus", "--set", "backbone=resnet50", "--set", "output_stride=8", "--json"
    )
    assert code == 0, err
    shapes = [row["output_shape"] for row in json.loads(out)["layers"]]
    assert [65, 65, 2048] in shapes  # ResNet-50's last stage dilated: 513 / 8 -> 65, not 513 / 32 -> 17


def test_a_misspelt_key_is_one_line_naming_the_closest(capsys):
    for command in (
        ("profile", "deeplabv3plus"),
        ("export", "deeplabv3plus"),
        ("train", "deeplabv3plus", "--data", "embedded"),
    ):
        code, _, err = run(capsys, *command, "--set", "output_strid=8")
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert "did you mean output_stride?" in err


def test_export_with_set_and_weights_keeps_the_keras_applications_output(tmp_path, capsys):
    reference = perturbed(
        keras.applications.MobileNetV2(
            weights=None, alpha=0.35, input_shape=(SIZE, SIZE, 3), classes=10, classifier_activation=None
        )
    )
    reference.save_weights(tmp_path / "mine.weights.h5")
    argv = ("export", "mobilenet_v2", "--set", "alpha=0.35", "--weights", tmp_path / "mine.weights.h5")
    code, _, err = run(capsys, *argv, "--input-size", SIZE, "--calib", "digits", "--out", tmp_path / "out")
    assert code == 0, err
    path = tmp_path / "out" / "mobilenet_v2_fp32.tflite"
    assert json.loads(path.with_suffix(".json").read_text())["input"]["mean"] == [0, 0, 0]  # normalised inside
    pixels = (cv2.resize(photographs.coffee(), (SIZE, SIZE)) / 255.0).astype("float32")[None]
    expected = np.asarray(reference(keras.applications.mobilenet_v2.preprocess_input(pixels * 255.0)))
    got = check.open_runner(path).run(pixels)
    assert np.abs(got - expected).max() <= 1e-4 * max(1.0, float(np.ptp(expected)))


@pytest.mark.slow
def test_train_with_set_backbone(tmp_path, capsys):
    """``garden train deeplabv3plus --set backbone=resnet50`` on a tiny images/masks folder (embedded: the report)."""
    examples = squares(count=8, size=32)
    for folder in ("images", "masks"):
        (tmp_path / "data" / folder).mkdir(parents=True)
    for index, (image, mask) in enumerate(examples):
        cv2.imwrite(str(tmp_path / "data" / "images" / f"{index}.png"), image[..., ::-1])
        cv2.imwrite(str(tmp_path / "data" / "masks" / f"{index}.png"), mask)
    argv = ("train", "deeplabv3plus", "--data", tmp_path / "data", "--set", "backbone=resnet50", "--epochs", 1)
    code, _, err = run(
        capsys, *argv, "--input-size", 32, "--batch-size", 4, "--out", tmp_path / "run", "--progress", "none"
    )
    assert code == 0, err
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["settings"]["model_options"] == {"backbone": "resnet50"}
    model = garden.load_model(tmp_path / "run" / "last.keras", compile=False)
    assert any(layer.name == "resnet50_features" for layer in model.layers)


# ---------------------------------------------------------------- garden predict and garden evaluate


def test_predict_top_k_of_a_model_with_imagenet_style_weights(user, tmp_path, capsys):
    folder, _ = user
    reference = perturbed(
        keras.applications.MobileNetV2(
            weights=None, alpha=0.35, input_shape=(SIZE, SIZE, 3), classes=5, classifier_activation=None
        )
    )
    reference.save_weights(tmp_path / "w.weights.h5")
    model = garden.create_model(
        "mobilenet_v2", weights=str(tmp_path / "w.weights.h5"), alpha=0.35, input_shape=(SIZE, SIZE, 3), num_classes=5
    )
    model.save(tmp_path / "mine.keras")
    code, out, err = run(
        capsys, "predict", tmp_path / "mine.keras", folder / "photos", "--out", tmp_path / "p", "--top-k", 2
    )
    assert code == 0, err
    rows = {row["image"]: row for row in json.loads((tmp_path / "p" / "predictions.json").read_text())}
    expected = keras_top1(reference, folder)  # keras.applications on its own preprocessing, the same resize
    assert {Path(name).stem: int(row["top"][0]["class"]) for name, row in rows.items()} == expected
    assert len(out.strip().splitlines()) == len(PHOTOS) and all(len(row["top"]) == 2 for row in rows.values())


def test_predict_overlays_a_segmenter_and_evaluate_scores_it(tmp_path, capsys):
    from garden.data.sources import load_splits

    model = garden.create_model(
        "unet", num_classes=3, input_shape=(32, 32, 3), filters=(4, 8, 16), decoder_filters=(8, 4)
    )
    model.save(tmp_path / "seg.keras")
    images = squares(count=2, size=48).images
    np.save(tmp_path / "two.npy", images)
    code, _, err = run(capsys, "predict", tmp_path / "seg.keras", tmp_path / "two.npy", "--out", tmp_path / "p")
    assert code == 0, err
    overlay = cv2.imread(str(tmp_path / "p" / "0000_overlay.png"))
    assert overlay.shape == (48, 48, 3)  # at the image's own size
    rows = json.loads((tmp_path / "p" / "predictions.json").read_text())
    assert sum(rows[0]["areas"].values()) == pytest.approx(1.0, abs=1e-5)

    inference_model = garden.create_model("lenet5", num_classes=10)
    inference_model.save(tmp_path / "lenet.keras")
    code, out, err = run(capsys, "evaluate", tmp_path / "lenet.keras", "--data", "digits", "--json")
    assert code == 0, err
    held_out = load_splits("digits", "classification")[1]
    x = np.stack([image for image, _ in held_out]).astype("float32") / 255
    truth = np.array([label for _, label in held_out])
    accuracy = float(np.mean(np.argmax(inference_model.predict(x, verbose=0), axis=-1) == truth))
    assert json.loads(out)["accuracy"] == pytest.approx(accuracy) and json.loads(out)["examples"] == len(truth)
    code, _, err = run(capsys, "evaluate", tmp_path / "seg.keras", "--data", "digits")
    assert code == 2 and "segmentation model" in err and len(err.strip().splitlines()) == 1
