"""Draw docs/images/photo_digits.png: ten training images of each class of ``photo_digits``, a row a class.

python bench/photo_digits_grid.py [--out docs/images/photo_digits.png] [--size 32]
"""

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from garden.data.photo_digits import photo_digits  # noqa: E402


def grid(examples, per_class=10, scale=3):
    """Rows of ``per_class`` images of each class, each image enlarged ``scale`` times (nearest: pixels shown)."""
    labels = np.asarray(examples.targets)
    rows = []
    for digit in range(10):
        chosen = np.flatnonzero(labels == digit)[:per_class]
        big = [np.kron(examples.images[i], np.ones((scale, scale, 1), np.uint8)) for i in chosen]
        rows.append(np.concatenate([np.pad(t, ((2, 2), (2, 2), (0, 0)), constant_values=255) for t in big], axis=1))
    return np.concatenate(rows, axis=0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/images/photo_digits.png")
    parser.add_argument("--size", type=int, default=32)
    args = parser.parse_args(argv)
    picture = grid(photo_digits("train", args.size))
    cv2.imwrite(args.out, cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    print(f"wrote {args.out} ({picture.shape[1]}x{picture.shape[0]})")


if __name__ == "__main__":
    main()
