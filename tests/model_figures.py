"""Every registered model's parameter count, multiply-adds and layer names, as plain data.

The structure test compares these with ``tests/data/model_figures.json``, recorded before the
refactor into backbones, decoders and heads; ``python tests/model_figures.py`` rewrites the file.
"""

import json
import sys
from pathlib import Path

FIGURES = Path(__file__).parent / "data" / "model_figures.json"


def layer_names(model, prefix=""):
    """Every layer's name, nested models' layers under ``outer/inner``, in build order."""
    names = []
    for layer in model.layers:
        names.append(prefix + layer.name)
        if hasattr(layer, "layers"):
            names.extend(layer_names(layer, f"{prefix}{layer.name}/"))
    return names


def figures(name):
    import garden

    model = garden.create_model(name)
    total = garden.profile(model).total
    return {"params": int(model.count_params()), "macs": int(total["macs"]), "layers": layer_names(model)}


def model_names():
    import garden

    return garden.list_models("classification") + garden.list_models("segmentation")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    table = {name: figures(name) for name in model_names()}
    FIGURES.write_text(json.dumps(table, indent=0, sort_keys=True) + "\n")
    print(f"wrote {len(table)} models to {FIGURES}")
