"""Contrastive methods: attract the positive, repel the negatives.

- ``cpc``: van den Oord, Li & Vinyals, "Representation Learning with Contrastive Predictive Coding"
  (2018), Sec. 3.2 for images: the image is cut into a grid of overlapping patches, each encoded
  to ``z``; an autoregressive network (a GRU running down every column) summarises the rows seen so
  far into a context ``c``; ``W_k c`` predicts the embedding ``k`` rows below, and InfoNCE picks it
  out among every patch embedding of the batch.
- ``simclr``: Chen, Kornblith, Norouzi & Hinton, "A Simple Framework for Contrastive Learning of
  Visual Representations" (ICML 2020): two augmented views, encoder f, projection head g, NT-Xent.
- ``moco_v2``: He et al., "Momentum Contrast" (CVPR 2020) with the v2 changes of Chen, Fan,
  Girshick & He, "Improved Baselines with Momentum Contrastive Learning" (2020): MLP head, blur in
  the views, temperature 0.2; the negatives are a queue of keys from a momentum (EMA) key encoder.
"""

import keras
from keras import layers, ops

from garden.ssl import losses
from garden.ssl.heads import MLPHead
from garden.ssl.methods._base import MomentumTarget, SSLModel, method, recipe
from garden.ssl.views import ViewRecipe, make_view

# ---------------------------------------------------------------- CPC


class CPC(SSLModel):
    """Predict the embeddings of the patches below from the context of the rows above (InfoNCE)."""

    def __init__(self, patch=16, stride=8, steps=2, context_units=256, temperature=None, views=None, **kwargs):
        super().__init__(**kwargs)
        self.temperature = temperature
        self.views = None if views is None else recipe(views, ViewRecipe())
        height, width = self.image_shape[0], self.image_shape[1]
        self.rows, self.cols = (height - patch) // stride + 1, (width - patch) // stride + 1
        if patch > min(height, width) or self.rows < 2:
            raise ValueError(f"cpc: patches of {patch} at stride {stride} give fewer than 2 rows in {self.image_shape}")
        self.patch, self.stride, self.steps = patch, stride, min(steps, self.rows - 1)
        self.encoder = self.new_encoder(any_size=True)
        self.context = layers.GRU(context_units, return_sequences=True, name="context_gru")
        self.predictors = [
            layers.Dense(self.encoder.output.shape[-1], use_bias=False, name=f"predict_{k}")
            for k in range(1, self.steps + 1)
        ]

    def call(self, images, training=False):
        n, rows, cols, p, s = ops.shape(images)[0], self.rows, self.cols, self.patch, self.stride
        if self.views is not None:
            images = make_view(images, self.views, self.seed_generator)
        patches = ops.stack(
            [images[:, i * s : i * s + p, j * s : j * s + p] for i in range(rows) for j in range(cols)], axis=1
        )
        z = self.encoder(ops.reshape(patches, (-1, p, p, images.shape[-1])), training=training)
        dim = z.shape[-1]
        grid = ops.reshape(z, (n, rows, cols, dim))
        # The GRU reads each column top to bottom: c[i, j] has seen rows 0..i of column j.
        columns = ops.reshape(ops.transpose(grid, (0, 2, 1, 3)), (-1, rows, dim))
        context = ops.transpose(
            ops.reshape(self.context(columns, training=training), (n, cols, rows, -1)), (0, 2, 1, 3)
        )
        # Index of patch (b, i, j) among all n * rows * cols keys.
        index = ops.reshape(ops.arange(n * rows * cols, dtype="int32"), (n, rows, cols))
        predictions, positives = [], []
        for k, predictor in enumerate(self.predictors, start=1):
            predictions.append(ops.reshape(predictor(context[:, : rows - k]), (-1, dim)))
            positives.append(ops.reshape(index[:, k:], (-1,)))
        return {
            "predictions": ops.concatenate(predictions, axis=0),
            "positives": ops.concatenate(positives, axis=0),
            "keys": z,
        }

    def ssl_loss(self, outputs):
        if self.temperature is None:  # the paper's log-bilinear score
            return losses.info_nce(outputs["predictions"], outputs["keys"], outputs["positives"])
        return losses.info_nce(
            outputs["predictions"], outputs["keys"], outputs["positives"], temperature=self.temperature, normalize=True
        )


@method(CPC)
def build_cpc():
    """CPC (van den Oord et al., 2018): predict patch embeddings rows ahead from a GRU context, InfoNCE.

    ``temperature`` switches the score to cosine similarity over a temperature; ``views`` (a
    ``ViewRecipe`` or a dict of changes to SimCLR's) augments each image before it is cut into
    patches, as CPC v2 does (Henaff et al., 2020).
    """


# ---------------------------------------------------------------- SimCLR


class SimCLR(SSLModel):
    """Two views, encoder, projection head, NT-Xent with a temperature."""

    def __init__(self, projection_units=(512, 128), temperature=0.5, views=None, **kwargs):
        super().__init__(**kwargs)
        self.temperature = temperature
        self.views = recipe(views, ViewRecipe())
        self.encoder = self.new_encoder()
        self.projector = MLPHead(units=projection_units, name="projection_head")

    def call(self, images, training=False):
        z = [
            self.projector(
                self.encoder(make_view(images, self.views, self.seed_generator), training=training), training=training
            )
            for _ in range(2)
        ]
        return {"z1": z[0], "z2": z[1]}

    def ssl_loss(self, outputs):
        return losses.nt_xent(outputs["z1"], outputs["z2"], self.temperature)


@method(SimCLR)
def build_simclr():
    """SimCLR (Chen et al., 2020): two augmented views, a projection head and the NT-Xent loss."""


# ---------------------------------------------------------------- MoCo v2


class MoCoV2(MomentumTarget, SSLModel):
    """Query encoder against a momentum key encoder and a queue of past keys as negatives."""

    def __init__(
        self,
        projection_units=(512, 128),
        queue_size=1024,
        temperature=0.2,
        momentum=0.99,
        total_steps=1000,
        views=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.temperature, self.momentum, self.total_steps = temperature, momentum, total_steps
        self.views = recipe(views, ViewRecipe(blur_probability=0.5))
        self.encoder = self.new_encoder()
        self.projector = MLPHead(units=projection_units, name="projection_head")
        self.key_encoder = self.new_encoder()
        self.key_projector = MLPHead(units=projection_units, name="key_projection_head")
        self.online_layers = [self.encoder, self.projector]
        self.target_layers = [self.key_encoder, self.key_projector]
        queue = keras.random.normal((queue_size, projection_units[-1]), seed=self.seed)
        self.queue = self.add_weight(
            shape=(queue_size, projection_units[-1]),
            trainable=False,
            name="queue",
            initializer=lambda shape, dtype=None: losses.l2_normalize(queue),
        )
        self.add_ema_step()
        self.queue_pointer = self.add_weight(
            shape=(), initializer="zeros", trainable=False, dtype="int32", name="queue_pointer"
        )

    def call(self, images, training=False):
        if training:
            self.update_target()
        queries = self.projector(
            self.encoder(make_view(images, self.views, self.seed_generator), training=training), training=training
        )
        keys = self.key_projector(
            self.key_encoder(make_view(images, self.views, self.seed_generator), training=training), training=training
        )
        keys = losses.l2_normalize(ops.stop_gradient(keys))
        queue = ops.copy(ops.convert_to_tensor(self.queue))  # before this batch's keys join it
        if training:
            n = ops.shape(keys)[0]
            slots = (self.queue_pointer + ops.arange(n, dtype="int32")) % self.queue.shape[0]
            self.queue.assign(ops.scatter_update(self.queue, ops.expand_dims(slots, 1), keys))
            self.queue_pointer.assign((self.queue_pointer + n) % self.queue.shape[0])
        return {"queries": queries, "keys": keys, "queue": queue}

    def ssl_loss(self, outputs):
        return losses.moco_loss(outputs["queries"], outputs["keys"], outputs["queue"], self.temperature)


@method(MoCoV2)
def build_moco_v2():
    """MoCo v2 (He et al., 2020; Chen et al., 2020): momentum key encoder, a queue of negatives, InfoNCE."""
