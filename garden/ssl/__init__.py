"""Self-supervised learning: pre-train an encoder on unlabeled images, then evaluate it with few labels.

Components apart (``losses``, ``heads``, ``views``) and the methods that put them together
(``methods``: rotnet, jigsaw, colorization, cpc, simclr, moco_v2, byol, barlow_twins, simsiam, swav),
each registered under task "ssl"; ``evaluate`` holds the linear probe, k-NN and fine-tuning. See
docs/ssl.md.

>>> model = garden.create_model("simclr", backbone="small_cnn", input_shape=(32, 32, 3))
>>> model.compile(optimizer="adam"); model.fit(images, epochs=10)
>>> features = model.encoder.predict(images)
"""

from garden.ssl import heads, losses, views  # noqa: F401
from garden.ssl import methods  # noqa: F401  (registers the methods)
