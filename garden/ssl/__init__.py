"""Self-supervised learning: pre-train an encoder on unlabeled images, then evaluate it with few labels.

Components apart (``losses``, ``heads``, ``views``) and the methods that put them together
(``methods``: rotnet, jigsaw, colorization, cpc, simclr, moco_v2, byol, barlow_twins, simsiam, swav),
each registered under task "ssl"; ``evaluate`` holds the linear probe, k-NN and fine-tuning, ``benchmark``
the protocol and tables of the benchmarks. See
docs/ssl.md.

>>> model = garden.create_model("simclr", backbone="small_cnn", input_shape=(32, 32, 3))
>>> model.compile(optimizer="adam"); model.fit(images, epochs=10)
>>> features = model.encoder.predict(images)
"""

import importlib

_SUBMODULES = ("benchmark", "cli", "data", "evaluate", "heads", "losses", "methods", "pretrain", "views")


def __getattr__(name):
    """Submodules on first use: importing the package stays light (``garden --help``)."""
    if name in _SUBMODULES:
        return importlib.import_module(f"garden.ssl.{name}")
    raise AttributeError(f"module 'garden.ssl' has no attribute {name!r}")
