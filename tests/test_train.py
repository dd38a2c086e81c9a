"""Training in-process: a short LeNet-5 run on digits, segmentation, options, NaN, bad input."""

import csv
import json

import cv2
import keras
import numpy as np
import pytest

from garden.cli import main
from garden.data import Subset
from garden.data.classification import digits
from garden.errors import GardenError
from garden.layers import conv_norm_act
from garden.train import fit, report
from garden.train.callbacks import read_history, write_history
from garden.train.optim import build_optimizer, learning_rate, make_optimizer
from helpers import squares


def rate_at(schedule, step):
    return float(schedule(step)) if callable(schedule) else schedule


def test_cosine_schedule_with_warmup():
    schedule = learning_rate("cosine", 0.1, total_steps=110, warmup_steps=10)
    assert rate_at(schedule, 0) == pytest.approx(0.0)
    assert rate_at(schedule, 5) == pytest.approx(0.05)
    assert rate_at(schedule, 10) == pytest.approx(0.1)
    assert rate_at(schedule, 60) == pytest.approx(0.05, abs=1e-6)  # half-way down the cosine
    assert rate_at(schedule, 110) == pytest.approx(0.0, abs=1e-6)
    constant = learning_rate("constant", 0.1, 100, 10)
    assert rate_at(constant, 5) == pytest.approx(0.05) and rate_at(constant, 80) == pytest.approx(0.1)


def test_step_schedule_and_optimizers():
    schedule = learning_rate("step", 0.1, total_steps=100)
    assert [rate_at(schedule, s) for s in (0, 49, 51, 74, 76)] == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001])
    sgd = make_optimizer("sgd", 0.1, weight_decay=5e-4, schedule="constant", total_steps=10)
    assert isinstance(sgd, keras.optimizers.SGD) and sgd.momentum == 0.9 and sgd.weight_decay == 5e-4
    adamw = make_optimizer("adamw", 1e-3, weight_decay=0.05, schedule="cosine", total_steps=10)
    assert isinstance(adamw, keras.optimizers.AdamW) and adamw.weight_decay == 0.05
    with pytest.raises(GardenError, match="warmup works with"):
        learning_rate("step", 0.1, 100, 10)
    with pytest.raises(GardenError, match="unknown optimizer"):
        make_optimizer("rmsprop", 0.1)


def test_optimizer_variables_are_created_before_the_first_step():
    inputs = keras.Input((8,))
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Dense(4)(inputs)))
    model.compile(optimizer=make_optimizer("adamw", 1e-2), loss="mse")
    assert not model.optimizer.built
    build_optimizer(model)
    # AdamW: a first and a second moment per trainable variable (4 here), made eagerly, not in the step.
    moments = [v for v in model.optimizer.variables if "momentum" in v.path or "velocity" in v.path]
    assert len(moments) == 2 * len(model.trainable_variables) == 8
    before = [np.array(w) for w in model.get_weights()]
    model.train_on_batch(np.ones((2, 8), "float32"), np.zeros((2, 3), "float32"))
    assert all(not np.allclose(b, a) for b, a in zip(before, model.get_weights()))
    assert build_optimizer(model) is model  # already built: nothing changes


def test_confusion_accuracy_and_mean_iou():
    truth = np.array([[0, 0, 1], [1, 2, 255]])
    predicted = np.array([[0, 1, 1], [1, 2, 0]])
    matrix = report.confusion(truth, predicted, 3)
    np.testing.assert_array_equal(matrix, [[1, 1, 0], [0, 2, 0], [0, 0, 1]])
    assert report.accuracy(matrix) == pytest.approx(4 / 5)
    # IoU: class 0: 1/(1+1+0)=0.5, class 1: 2/(2+0+1)=2/3, class 2: 1
    assert report.mean_iou(matrix) == pytest.approx((0.5 + 2 / 3 + 1) / 3)


def test_history_trimmed_to_the_backup_epoch(tmp_path):
    rows = [{"epoch": e, "loss": 1.0 / e} for e in (1, 2, 3)]
    write_history(tmp_path, rows)
    assert [r["epoch"] for r in read_history(tmp_path, 2)] == [1, 2]
    assert json.loads((tmp_path / "history.json").read_text()) == rows


@pytest.mark.slow
def test_lenet5_on_digits_short_run(tmp_path):
    out = tmp_path / "run"
    summary = fit("lenet5", "digits", out=out, epochs=6, verbose=0)
    assert summary["metrics"]["accuracy"] >= 0.93
    assert summary["epochs"] == 6 and summary["model"] == "lenet5" and summary["data"] == "digits"
    assert set(summary) >= {"model", "data", "epochs", "wall_s", "metrics"}
    with open(out / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == list(range(1, 7))
    assert float(rows[-1]["val_accuracy"]) == pytest.approx(summary["metrics"]["accuracy"], abs=1e-6)
    for picture in ("curves.png", "confusion_matrix.png"):
        assert cv2.imread(str(out / picture)).shape[0] > 300
    best = keras.saving.load_model(out / "best.keras", safe_mode=True)
    last = keras.saving.load_model(out / "last.keras", safe_mode=True)
    test = Subset(digits(), np.random.default_rng(0).permutation(1797)[-359:])  # the held-out split
    x = np.stack([test[i][0] for i in range(len(test))]).astype("float32") / 255
    y = np.array([test[i][1] for i in range(len(test))])
    assert (np.argmax(last.predict(x, verbose=0), -1) == y).mean() == pytest.approx(summary["metrics"]["accuracy"])
    best_accuracy = max(float(r["val_accuracy"]) for r in rows)
    assert (np.argmax(best.predict(x, verbose=0), -1) == y).mean() == pytest.approx(best_accuracy, abs=1e-6)
    assert json.loads((out / "backup" / "state.json").read_text())["finished"] is True


def tiny_segmenter(num_classes=3, size=32):
    """A small encoder-decoder from garden.layers (stride 4 down, bilinear back up; no batch norm,
    whose running averages would need more steps than a test takes)."""
    inputs = keras.Input((size, size, 3))
    x = conv_norm_act(inputs, 8, 3, strides=2, norm=None, name="enc1")
    x = conv_norm_act(x, 16, 3, strides=2, norm=None, name="enc2")
    x = keras.layers.UpSampling2D(4, interpolation="bilinear", name="up")(x)
    x = conv_norm_act(x, 8, 3, norm=None, name="dec1")
    outputs = keras.layers.Conv2D(num_classes, 1, name="logits")(x)
    return keras.Model(inputs, outputs, name="tiny_segmenter")


@pytest.mark.slow
def test_segmentation_run(tmp_path):
    out = tmp_path / "seg"
    summary = fit(tiny_segmenter(), squares(96), out=out, epochs=4, batch_size=8, lr=1e-2, verbose=0, tensorboard=False)
    assert summary["metrics"]["mean_iou"] > 0.5
    last = read_history(out, 4)[-1]  # keras.metrics.MeanIoU during training agrees with the final count
    assert last["val_mean_iou"] == pytest.approx(summary["metrics"]["mean_iou"], abs=1e-4)
    assert cv2.imread(str(out / "overlays.png")).shape[1] > 400
    assert keras.saving.load_model(out / "best.keras", safe_mode=True).output_shape == (None, 32, 32, 3)


@pytest.mark.slow
def test_options_sgd_step_label_smoothing(tmp_path):
    data = digits()
    small = Subset(data, np.arange(400), name="digits-small")
    summary = fit(
        "lenet5",
        small,
        out=tmp_path / "r",
        epochs=2,
        optimizer="sgd",
        lr=0.05,
        schedule="step",
        weight_decay=5e-4,
        label_smoothing=0.1,
        augment="crop=0.8,color",
        precision="mixed_bfloat16",
        verbose=0,
        tensorboard=False,
    )
    assert summary["epochs"] == 2 and 0 <= summary["metrics"]["accuracy"] <= 1
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored
    last = keras.saving.load_model(tmp_path / "r" / "last.keras", safe_mode=True)
    assert last.get_layer("c1_conv").dtype_policy.name == "mixed_bfloat16"
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["settings"]["optimizer"] == "sgd" and config["settings"]["label_smoothing"] == 0.1


def test_nan_loss_stops_with_a_clear_message(tmp_path):
    inputs = keras.Input((32, 32, 1))
    x = keras.layers.Rescaling(float("nan"))(inputs)
    outputs = keras.layers.Dense(10)(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs, name="broken")
    data = Subset(digits(), np.arange(200))
    with pytest.raises(GardenError, match="loss became NaN at epoch 1, batch 1"):
        fit(model, data, out=tmp_path / "nan", epochs=2, verbose=0, tensorboard=False)
    assert not (tmp_path / "nan").exists()


def call(capsys, *argv):
    code = main(list(argv))
    return code, capsys.readouterr().err.strip()


def write_png(path, value=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((8, 8, 3), value, np.uint8))


def make_folder(root, broken=False, empty_class=False):
    for cls in ("a", "b"):
        for i in range(3):
            write_png(root / cls / f"{i}.png", 40 * i)
    if broken:
        for path in root.glob("*/*.png"):
            path.write_bytes(b"\x89PNG broken")
    if empty_class:
        (root / "c").mkdir()
    return root


@pytest.mark.parametrize(
    "setup, extra, message",
    [
        (lambda p: p / "nowhere", [], "does not exist"),
        (lambda p: p.mkdir() or p, [], "is empty"),
        (lambda p: make_folder(p, empty_class=True), [], "class folder .*c has no images"),
        (lambda p: make_folder(p, broken=True), ["--batch-size", "2"], "no file of data-train can be decoded"),
        (lambda p: make_folder(p, broken=True), ["--batch-size", "2", "--strict-data"], "cannot decode image"),
        (lambda p: make_folder(p), ["--batch-size", "64"], "batch size 64 is larger than the 5 training examples"),
        (lambda p: make_folder(p), ["--bogus"], "unrecognized arguments: --bogus"),
        (lambda p: make_folder(p), ["--warmup", "3", "--epochs", "2"], "warm-up of 3.0 epochs"),
    ],
)
def test_bad_input_one_line_exit_2_no_folder(tmp_path, capsys, setup, extra, message):
    data = setup(tmp_path / "data")
    out = tmp_path / "out"
    code, err = call(
        capsys,
        "train",
        "lenet5",
        "--data",
        str(data),
        "--out",
        str(out),
        "--epochs",
        "1",
        "--no-tensorboard",
        "--progress",
        "none",
        *extra,
    )
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("garden: error:")
    assert __import__("re").search(message, err), err
    assert not out.exists()


def folder_with_bad_files(root, good, bad):
    """``good`` PNGs over two classes, then ``bad`` undecodable files: empty, text, a truncated PNG."""
    for i in range(good):
        write_png(root / "ab"[i % 2] / f"{i:03d}.png", 5 * i)
    broken = [b"", b"plain text, not an image", cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1][:20].tobytes()]
    paths = [root / "ab"[i % 2] / f"zz_bad_{i}.{'jpg' if i % 3 else 'png'}" for i in range(bad)]
    for i, path in enumerate(paths):
        path.write_bytes(broken[i % 3])
    return paths


def test_undecodable_files_are_skipped_and_named_once(tmp_path, capsys):
    bad = folder_with_bad_files(tmp_path / "data", good=40, bad=3)
    common = ["--out", str(tmp_path / "out"), "--epochs", "2", "--batch-size", "8", "--held-out", "0.25"]
    code, err = call(capsys, "train", "lenet5", "--data", str(tmp_path / "data"), *common, "--no-tensorboard")
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("warning: skipped")]
    named = {path.name for path in bad if path.name in " ".join(warnings)}
    assert named == {path.name for path in bad}  # each bad file named, in the epoch it was first met
    assert sum(int(line.split()[2]) for line in warnings) == 3  # counted once, not again in epoch 2
    assert (tmp_path / "out" / "last.keras").is_file()


def test_strict_data_stops_at_the_first_undecodable_file(tmp_path, capsys):
    folder_with_bad_files(tmp_path / "data", good=40, bad=3)
    code, err = call(
        capsys, "train", "lenet5", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "out"), "--strict-data"
    )
    assert code == 2 and len(err.splitlines()) == 1 and "cannot decode image" in err and "zz_bad_" in err
    assert not (tmp_path / "out").exists()


def test_a_folder_of_mostly_bad_files_stops_in_one_line(tmp_path, capsys):
    folder_with_bad_files(tmp_path / "data", good=30, bad=12)
    code, err = call(capsys, "train", "lenet5", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "out"))
    assert code == 2 and len(err.splitlines()) == 1
    assert "cannot be decoded (more than 10%" in err and "right folder" in err


def test_failed_run_leaves_an_existing_empty_folder_empty(tmp_path, capsys):
    (tmp_path / "out").mkdir()
    data = make_folder(tmp_path / "data", broken=True)
    code, err = call(
        capsys, "train", "lenet5", "--data", str(data), "--out", str(tmp_path / "out"), "--batch-size", "2"
    )
    assert code == 2 and list((tmp_path / "out").iterdir()) == []


def test_refuses_a_used_folder_without_resume(tmp_path, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "history.csv").write_text("epoch\n1\n")
    code, err = call(capsys, "train", "lenet5", "--data", "digits", "--out", str(tmp_path / "out"))
    assert code == 2 and "not empty; pass --resume" in err


def test_a_segmenter_trains_at_the_size_of_array_data(tmp_path, capsys):
    """squares are 40x40: a U-Net named without --input-size trains at 40x40, not its default, and says so."""
    from helpers import squares

    options = dict(epochs=1, batch_size=4, verbose=0, model_options={"filters": (4, 8)}, tensorboard=False)
    summary = fit("unet", squares(count=16, size=40), out=tmp_path / "run", **options)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["settings"]["input_size"] == [40, 40, 3] and summary["epochs"] == 1
    assert "training at 40x40, the size of" in capsys.readouterr().err
