"""Draw the pictures of docs/segmentation.md: the classical methods on one photograph, the embedded
dataset, and (given models saved by ``segmentation_train.py --save DIR``) predictions vs ground truth.

    PYTHONPATH=. python bench/segmentation_pictures.py --models /tmp/segmodels --out docs/images
"""

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

import garden  # noqa: E402
from garden.data import to_model_input  # noqa: E402
from garden.data.embedded import CLASS_NAMES, embedded_segmentation  # noqa: E402
from garden.segmentation.classical import METHODS, segment  # noqa: E402
from garden.segmentation.visualize import draw_boxes, draw_regions, save_comparison, save_image  # noqa: E402


def classical_gallery(path):
    import cv2
    import skimage.data

    image = cv2.resize(skimage.data.coffee(), (240, 160), interpolation=cv2.INTER_AREA)
    tiles = [image]
    for method in METHODS:
        result = segment(image, method)
        tile = draw_regions(image, result.labels)
        if len(result.boxes):
            tile = draw_boxes(tile, result.boxes[:30])
        cv2.putText(tile, f"{method}: {result.num_regions}", (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3)
        cv2.putText(
            tile, f"{method}: {result.num_regions}", (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1
        )
        tiles.append(tile)
    tiles.append(np.full_like(image, 255))
    rows = [np.concatenate(tiles[i : i + 4], axis=1) for i in (0, 4)]
    save_image(path, np.concatenate(rows, axis=0))


def predictions(models_dir, out_dir):

    for path in sorted(Path(models_dir).glob("*.keras")):
        model = garden.load_model(path, compile=False)
        size = model.input.shape[1]
        data = embedded_segmentation(4, size, seed=4242)
        logits = model.predict(to_model_input(data.images), verbose=0)
        rows = [(data.images[i], data.targets[i], logits[i].argmax(-1)) for i in range(len(data))]
        save_comparison(
            Path(out_dir) / f"segmentation_{path.stem}.png",
            rows,
            class_names=CLASS_NAMES,
            title=f"{path.stem} on held-out embedded images ({size}x{size})",
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", help="folder of .keras models from segmentation_train.py --save")
    parser.add_argument("--out", default="docs/images")
    args = parser.parse_args(argv)
    classical_gallery(Path(args.out) / "segmentation_classical.png")
    if args.models:
        predictions(args.models, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
