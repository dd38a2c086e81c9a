"""docs/transfer-learning.md: its console commands run as written, offline, on local weight files."""

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import cv2
import h5py
import keras
import numpy as np
import pytest
from skimage import data as photographs

from helpers import ROOT, perturbed

PAGE = ROOT / "docs" / "transfer-learning.md"
WEIGHTS = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5"  # keras.applications' name for it
PROGRAMS = {"garden": ["-m", "garden"], "garden-edge": ["-m", "edge_app"]}


def commands():
    """The ``$ ...`` lines of the page's console blocks."""
    blocks = re.findall(r"```console\n(.*?)```", PAGE.read_text(), flags=re.S)
    return [line[2:] for block in blocks for line in block.splitlines() if line.startswith("$ ")]


def prepare(folder):
    """A stand-in ImageNet file in ``KERAS_HOME/models`` (random weights, legacy .h5 as Keras ships them) and photos."""
    from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group

    (folder / "keras_home" / "models").mkdir(parents=True)
    trunk = perturbed(
        keras.applications.MobileNetV2(weights=None, alpha=0.35, include_top=False, input_shape=(96, 96, 3))
    )
    with h5py.File(folder / "keras_home" / "models" / WEIGHTS, "w") as handle:
        save_weights_to_hdf5_group(handle, trunk)
    rng = np.random.default_rng(0)
    for name, photo in (("cat", photographs.chelsea()), ("coffee", photographs.coffee())):
        (folder / "photos" / name).mkdir(parents=True)
        height, width = photo.shape[:2]
        for index in range(8):
            side = int(min(height, width) * rng.uniform(0.6, 0.9))
            top, left = rng.integers(0, height - side), rng.integers(0, width - side)
            crop = photo[top : top + side, left : left + side][:, :: -1 if index % 2 else 1]
            cv2.imwrite(str(folder / "photos" / name / f"{name}{index}.jpg"), cv2.resize(crop, (128, 128))[..., ::-1])


@pytest.mark.slow
def test_the_transfer_learning_page_runs(tmp_path):
    prepare(tmp_path)
    env = dict(os.environ, KERAS_HOME=str(tmp_path / "keras_home"), PYTHONPATH=str(ROOT), GARDEN_DEBUG="")
    ran = []
    for command in commands():
        program, *args = shlex.split(command)
        done = subprocess.run(
            [sys.executable, *PROGRAMS[program], *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, (command, done.stderr[-2000:])
        ran.append(program)
    assert ran == ["garden", "garden", "garden-edge"]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["frames"] == 8 and summary["model"]["quantization"] == "int8"
    sidecar = json.loads((tmp_path / "exports" / "best_int8.json").read_text())
    assert sidecar["input"]["mean"] == [0, 0, 0] and sidecar["class_names"] == ["cat", "coffee"]
    assert Path(tmp_path / "run" / "best.keras").is_file()
