"""Draw docs/images/edge_modes.jpg: garden-edge's --mode overlay, blur and replace on one photograph.

    PYTHONPATH=. python bench/edge_modes_picture.py --out docs/images

The model is a stand-in for a binary (sky / not sky) segmenter with one sigmoid output, the shape
of a portrait or salient-object model: a 1x1 convolution, sigmoid(20 (R + G - 2B + 0.12)), so blue
sky is background. It is converted to TFLite and run by garden-edge itself (a subprocess, as a user
would) on scikit-image's ``rocket`` photograph; the three annotated frames are put side by side.
"""

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SIDE = 256  # model input


def sky_model(path):
    """The sky / not-sky 1x1 convolution with a sigmoid, as a float TFLite file."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf

    inputs = keras.Input((SIDE, SIDE, 3))
    conv = keras.layers.Conv2D(1, 1, activation="sigmoid", name="not_sky")
    model = keras.Model(inputs, conv(inputs))
    conv.set_weights([np.array([20.0, 20.0, -40.0], np.float32).reshape(1, 1, 3, 1), np.array([2.4], np.float32)])
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return path


def sunset(width, height):
    """A vertical orange-to-purple gradient (BGR), the replacement sky."""
    t = np.linspace(0.0, 1.0, height)[:, None, None]
    top, bottom = np.array([90, 30, 60.0]), np.array([40, 140, 250.0])
    return np.broadcast_to(top * (1 - t) + bottom * t, (height, width, 3)).astype(np.uint8)


def main():
    import cv2
    import skimage.data

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "images"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="edge_modes_"))
    photo = work / "rocket.png"
    cv2.imwrite(str(photo), cv2.resize(skimage.data.rocket()[..., ::-1], (480, 320), interpolation=cv2.INTER_AREA))
    cv2.imwrite(str(work / "sunset.png"), sunset(480, 320))
    model = sky_model(work / "sky.tflite")
    panels = []
    for mode in ("overlay", "blur", f"replace={work / 'sunset.png'}"):
        out = work / f"{mode.split('=')[0]}.png"
        command = [sys.executable, "-m", "edge_app", "--model", str(model), "--source", str(photo), "--headless"]
        done = subprocess.run(
            [*command, "--output", str(out), "--mode", mode],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
        )
        if done.returncode:
            sys.exit(done.stderr)
        panel = cv2.imread(str(out))
        label = f"--mode {mode.split('=')[0]}{'=sunset.png' if '=' in mode else ''}"
        cv2.putText(panel, label, (8, 308), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(panel, label, (8, 308), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
        panels.append(panel)
    target = Path(args.out) / "edge_modes.jpg"  # a photograph: JPEG
    cv2.imwrite(str(target), cv2.hconcat(panels), [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
