"""Clustering methods: the views agree on which cluster an image falls in, not on its embedding.

- ``swav``: Caron, Misra, Mairal, Goyal, Bojanowski & Joulin, "Unsupervised Learning of Visual
  Features by Contrasting Cluster Assignments" (NeurIPS 2020): two views, encoder, projection head,
  l2-normalised embedding scored against K learnable unit-norm prototypes; the Sinkhorn-Knopp
  algorithm turns each view's scores into codes that split the batch equally among the prototypes,
  and each view predicts the other view's codes (the swapped prediction loss).
"""

import keras
from keras import layers

from garden.ssl import losses
from garden.ssl.heads import MLPHead
from garden.ssl.methods._base import SSLModel, method, recipe
from garden.ssl.views import ViewRecipe, make_view

# ---------------------------------------------------------------- SwAV


class SwAV(SSLModel):
    """Two views' prototype scores; each predicts the Sinkhorn codes of the other.

    The prototypes are a bias-free Dense layer (kernel ``(D, K)``, one prototype per column) whose
    columns are kept at unit norm: normalised once when built, then by a ``UnitNorm`` constraint
    that the optimizer applies after every update, which is the paper's renormalisation after each
    step. The scores use the kernel as it is, so they are cosine similarities in [-1, 1].
    """

    def __init__(
        self,
        projection_units=(512, 128),
        num_prototypes=30,
        temperature=0.1,
        epsilon=0.05,
        sinkhorn_iterations=3,
        views=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_prototypes, self.temperature = num_prototypes, temperature
        self.epsilon, self.sinkhorn_iterations = epsilon, sinkhorn_iterations
        self.views = recipe(views, ViewRecipe())
        self.encoder = self.new_encoder()
        self.projector = MLPHead(units=projection_units, name="projection_head")
        self.prototypes = layers.Dense(
            num_prototypes, use_bias=False, kernel_constraint=keras.constraints.UnitNorm(axis=0), name="prototypes"
        )
        self.prototypes.build((None, projection_units[-1]))
        self.prototypes.kernel.assign(losses.l2_normalize(self.prototypes.kernel, axis=0))

    def call(self, images, training=False):
        outputs = {}
        for index in (1, 2):
            x = make_view(images, self.views, self.seed_generator)
            z = losses.l2_normalize(self.projector(self.encoder(x, training=training), training=training))
            scores = self.prototypes(z)
            outputs[f"scores{index}"] = scores
            outputs[f"q{index}"] = losses.sinkhorn(scores, self.epsilon, self.sinkhorn_iterations)
        return outputs

    def ssl_loss(self, outputs):
        return losses.swav_loss(outputs["scores1"], outputs["scores2"], outputs["q1"], outputs["q2"], self.temperature)


@method(SwAV)
def build_swav():
    """SwAV (Caron et al., 2020): swapped prediction of Sinkhorn cluster codes between two views.

    ``num_prototypes`` is K (the paper's 3,000 are for ImageNet; a few times the number of classes
    suits small data), ``temperature`` that of the softmax over the prototypes, ``epsilon`` and
    ``sinkhorn_iterations`` those of the codes; ``views`` a ``ViewRecipe`` or a dict of changes to
    SimCLR's. Simplifications: two views of the same size (no multi-crop), the prototypes trained
    from the first step (the paper freezes them for its first epoch), and no queue of past features
    to fill the batch for the codes (the paper's for batches smaller than K).
    """
