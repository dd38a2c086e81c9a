"""The evaluation protocol (k-NN, linear probe, label subsets, fine-tuning), the data and the CLI."""

import json

import keras
import numpy as np
import pytest

from garden.cli import main
from garden.data.classification import digits
from garden.errors import GardenError
from garden.ssl import evaluate
from garden.ssl.cli import method_option
from garden.ssl.data import colour_by_orientation, is_gray, load_split


def test_knn_weights_neighbours_by_exp_similarity_over_temperature():
    train = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [0.7, 0.7]], "float32")
    labels = np.array([0, 0, 1, 1, 2])
    query = np.array([[0.8, 0.6]], "float32")
    k, temperature = 3, 0.5
    cos = (train / np.linalg.norm(train, axis=1, keepdims=True)) @ (query[0] / np.linalg.norm(query[0]))
    top = np.argsort(-cos)[:k]
    votes = np.zeros(3)
    for i in top:
        votes[labels[i]] += np.exp(cos[i] / temperature)
    assert evaluate.knn_predict(train, labels, query, k=k, temperature=temperature)[0] == votes.argmax()
    assert evaluate.knn_accuracy(train, labels, train, labels, k=1) == 1.0


def test_linear_probe_separates_separable_features():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 5)) * 5
    labels = np.repeat(np.arange(3), 20)
    features = centres[labels] + rng.normal(size=(60, 5)) * 0.1
    assert evaluate.linear_probe(features, labels, features, labels) == 1.0


@pytest.mark.parametrize("text,expected", [("0.1", 0.1), ("0.01", 0.01), ("10", 10), ("5-per-class", 5)])
def test_parse_labels(text, expected):
    assert evaluate.parse_labels(text) == expected


@pytest.mark.parametrize("text", ["abc", "0", "-1", "1.5"])
def test_parse_labels_rejects_nonsense(text):
    with pytest.raises(GardenError, match="--labels"):
        evaluate.parse_labels(text)


def test_label_subset_is_stratified():
    labels = np.repeat(np.arange(4), [100, 50, 10, 3])
    tenth = evaluate.label_subset(labels, 0.1)
    assert np.bincount(labels[tenth]).tolist() == [10, 5, 1, 1]  # at least one per class
    two = evaluate.label_subset(labels, 2)
    assert np.bincount(labels[two]).tolist() == [2, 2, 2, 2]
    assert np.array_equal(evaluate.label_subset(labels, 0.1, seed=0), tenth)


def test_digits_upscaled_and_split():
    examples = digits(size=32)
    assert len(examples) == 1797 and examples[0][0].shape == (32, 32, 1) and examples[0][0].dtype == np.uint8
    train_x, train_y, test_x, test_y, classes = load_split("digits", size=16, limit=100)
    assert train_x.shape == (80, 16, 16, 3) and test_x.shape == (20, 16, 16, 3) and len(classes) == 10
    assert train_x.dtype == np.float32 and 0 <= train_x.min() and train_x.max() <= 1 and is_gray(train_x)


def test_colour_by_orientation_keeps_brightness_and_adds_colour():
    gray, _, _, _, _ = load_split("digits", size=32, limit=20)
    colour = colour_by_orientation(gray)
    assert not is_gray(colour)
    np.testing.assert_allclose(colour.max(axis=-1), gray[..., 0], atol=1e-5)  # HSV value = gray level


def test_finetune_and_baseline_learn_a_trivial_task():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 16)
    images = np.zeros((32, 16, 16, 3), "float32")
    images[labels == 1, :8] = 1.0  # top half bright for class 1
    images += rng.uniform(0, 0.1, images.shape).astype("float32")
    accuracy = evaluate.supervised_baseline("small_cnn", images, labels, images, labels, epochs=15, batch_size=8)
    assert accuracy >= 0.9


@pytest.mark.slow
def test_cli_pretrains_then_evaluates(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        [
            "ssl",
            "rotnet",
            "--data",
            "digits",
            "--epochs",
            "2",
            "--limit",
            "60",
            "--size",
            "16",
            "--batch-size",
            "16",
            "--option",
            "crop_scale=0.5,1.0",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    assert json.loads((out / "ssl.json").read_text())["options"] == {"crop_scale": [0.5, 1.0]}
    for name in ("encoder.keras", "history.json", "learning_curve.png", "ssl.json"):
        assert (out / name).is_file(), name
    assert len(json.loads((out / "history.json").read_text())["loss"]) == 2
    assert (out / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    encoder = keras.saving.load_model(out / "encoder.keras", safe_mode=True)
    assert encoder.predict(np.zeros((1, 16, 16, 3), "float32"), verbose=0).shape == (1, 256)
    capsys.readouterr()
    assert main(["ssl-eval", str(out), "--protocol", "knn"]) == 0
    assert "knn: test accuracy" in capsys.readouterr().out
    assert main(["ssl-eval", str(out), "--protocol", "finetune", "--labels", "2-per-class", "--epochs", "1"]) == 0
    table = capsys.readouterr().out
    assert "supervised from scratch" in table and "| 2-per-class | " in table
    results = json.loads((out / "eval.json").read_text())
    assert [r["protocol"] for r in results] == ["knn", "finetune"] and results[1]["labelled_images"] > 0


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["ssl", "alexnet", "--out", str(tmp_path)]) == 2
    assert "not a self-supervised method" in capsys.readouterr().err
    assert main(["ssl", "simclrr", "--out", str(tmp_path)]) == 2
    assert "did you mean simclr" in capsys.readouterr().err
    assert main(["ssl-eval", str(tmp_path / "nothing")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["ssl", "rotnet", "--backbone", "nonet", "--limit", "40", "--out", str(tmp_path)]) == 2
    assert "backbone" in capsys.readouterr().err
    assert main(["ssl", "rotnet", "--option", "crop_scale", "--out", str(tmp_path)]) == 2
    assert "NAME=VALUE" in capsys.readouterr().err
    fresh = tmp_path / "fresh"
    assert main(["ssl", "rotnet", "--option", "temprature=0.1", "--limit", "40", "--out", str(fresh)]) == 2
    assert "does not take temprature" in capsys.readouterr().err
    assert not fresh.exists()  # nothing written before the method was built
    assert main(["ssl", "rotnet", "--option", "crop_scale=0.5", "--limit", "40", "--out", str(fresh)]) == 2
    assert "crop_scale must be two numbers" in capsys.readouterr().err
    assert main(["ssl", "colorization", "--option", "loss='l1'", "--limit", "40", "--out", str(fresh)]) == 2
    assert "cannot build colorization: colorization loss must be one of" in capsys.readouterr().err


@pytest.mark.parametrize(
    "text, expected",
    [
        ("temperature=0.2", ("temperature", 0.2)),
        ("crop_scale=0.5,1.0", ("crop_scale", (0.5, 1.0))),
        ("loss=regression", ("loss", "regression")),
        ("normalize_tiles=true", ("normalize_tiles", True)),
        (" views = {'flip': False}", ("views", {"flip": False})),
    ],
)
def test_method_options_are_read_as_literals(text, expected):
    assert method_option(text) == expected


def test_pretraining_and_evaluation_on_photo_digits_use_its_fixed_split(tmp_path, capsys):
    """A few steps of SimCLR on the colour set; the k-NN probe scores its own test images, not a re-split."""
    run = tmp_path / "simclr"
    argv = ["ssl", "simclr", "--data", "photo_digits", "--limit", "64", "--epochs", "1", "--batch-size", "32"]
    assert main([*argv, "--out", str(run)]) == 0, capsys.readouterr().err
    train_x, train_y, test_x, test_y, _ = load_split("photo_digits", 32, limit=64)
    assert len(train_x) == len(test_x) == 64 and not is_gray(train_x)
    capsys.readouterr()
    assert main(["ssl-eval", str(run), "--protocol", "knn", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["data"] == "photo_digits" and 0.0 <= result["accuracy"] <= 1.0
    from garden.data.sources import load_splits

    _, test = load_splits("photo_digits")
    assert np.array_equal(test_x, test.images[:64].astype("float32") / 255.0)  # the fixed test split's first 64
