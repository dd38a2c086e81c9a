"""Methods without negatives: what keeps two views' embeddings from collapsing to a constant.

- ``byol``: Grill et al., "Bootstrap Your Own Latent" (NeurIPS 2020): an online network with a
  predictor regresses the projection of a target network, the target an exponential moving average
  of the online weights with the decay following a cosine schedule from ``momentum`` to 1; the two
  views have asymmetric blur and solarization.
- ``barlow_twins``: Zbontar et al., "Barlow Twins" (ICML 2021): the cross-correlation matrix of the
  two views' projections is pushed to the identity, off-diagonal terms weighted by lambda.
- ``simsiam``: Chen & He, "Exploring Simple Siamese Representation Learning" (CVPR 2021): BYOL
  without the moving average; the stop-gradient alone prevents collapse.
"""

from garden.ssl import losses
from garden.ssl.heads import MLPHead
from garden.ssl.methods._base import MomentumTarget, SSLModel, method, recipe
from garden.ssl.views import ViewRecipe, make_view

# BYOL's two view distributions (Grill et al., 2020, Table 6): blur always in the first, rarely in
# the second, which alone is solarized. Colour strength as in the paper (0.4, 0.4, 0.2, 0.1).
BYOL_VIEWS = (
    ViewRecipe(saturation=0.2, blur_probability=1.0, solarize_probability=0.0),
    ViewRecipe(saturation=0.2, blur_probability=0.1, solarize_probability=0.2),
)

# ---------------------------------------------------------------- BYOL


class BYOL(MomentumTarget, SSLModel):
    """Online encoder + projector + predictor regress an EMA target's projection of the other view."""

    def __init__(
        self,
        projection_units=(512, 128),
        prediction_units=(512, 128),
        momentum=0.99,
        total_steps=1000,
        views=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.momentum, self.total_steps = momentum, total_steps
        self.views = tuple(recipe(views, default) for default in BYOL_VIEWS)
        self.encoder = self.new_encoder()
        self.projector = MLPHead(units=projection_units, name="projection_head")
        self.predictor = MLPHead(units=prediction_units, name="prediction_head")
        self.target_encoder = self.new_encoder()
        self.target_projector = MLPHead(units=projection_units, name="target_projection_head")
        self.online_layers = [self.encoder, self.projector]
        self.target_layers = [self.target_encoder, self.target_projector]
        self.add_ema_step()

    def call(self, images, training=False):
        if training:
            self.update_target()
        outputs = {}
        for index, view in enumerate(self.views, start=1):
            x = make_view(images, view, self.seed_generator)
            projection = self.projector(self.encoder(x, training=training), training=training)
            outputs[f"p{index}"] = self.predictor(projection, training=training)
            outputs[f"t{index}"] = self.target_projector(self.target_encoder(x, training=training), training=training)
        return outputs

    def ssl_loss(self, outputs):
        return losses.negative_cosine(outputs["p1"], outputs["t2"]) + losses.negative_cosine(
            outputs["p2"], outputs["t1"]
        )


@method(BYOL)
def build_byol():
    """BYOL (Grill et al., 2020): online predictor regresses an EMA target network, no negatives."""


# ---------------------------------------------------------------- Barlow Twins


class BarlowTwins(SSLModel):
    """Two views' projections, their cross-correlation pushed to the identity."""

    def __init__(self, projection_units=(512, 512, 512), off_diagonal_weight=5e-3, views=None, **kwargs):
        super().__init__(**kwargs)
        self.off_diagonal_weight = off_diagonal_weight
        self.views = tuple(recipe(views, default) for default in BYOL_VIEWS)
        self.encoder = self.new_encoder()
        self.projector = MLPHead(units=projection_units, name="projection_head")

    def call(self, images, training=False):
        z = [
            self.projector(
                self.encoder(make_view(images, view, self.seed_generator), training=training), training=training
            )
            for view in self.views
        ]
        return {"z1": z[0], "z2": z[1]}

    def ssl_loss(self, outputs):
        return losses.barlow_twins(outputs["z1"], outputs["z2"], self.off_diagonal_weight)


@method(BarlowTwins)
def build_barlow_twins():
    """Barlow Twins (Zbontar et al., 2021): cross-correlation of two views' embeddings to the identity."""


# ---------------------------------------------------------------- SimSiam


class SimSiam(SSLModel):
    """Projector and bottleneck predictor; each view's prediction regresses the other's projection."""

    def __init__(self, projection_units=(512, 512, 512), prediction_units=(128, 512), views=None, **kwargs):
        super().__init__(**kwargs)
        self.views = recipe(views, ViewRecipe())
        self.encoder = self.new_encoder()
        self.projector = MLPHead(units=projection_units, output_norm=True, name="projection_head")
        self.predictor = MLPHead(units=prediction_units, name="prediction_head")

    def call(self, images, training=False):
        outputs = {}
        for index in (1, 2):
            x = make_view(images, self.views, self.seed_generator)
            z = self.projector(self.encoder(x, training=training), training=training)
            outputs[f"z{index}"], outputs[f"p{index}"] = z, self.predictor(z, training=training)
        return outputs

    def ssl_loss(self, outputs):
        # Chen & He's L = D(p1, z2)/2 + D(p2, z1)/2 with D = -cos; (2 - 2 cos)/4 is that plus 1/2 per term.
        return 0.25 * (
            losses.negative_cosine(outputs["p1"], outputs["z2"]) + losses.negative_cosine(outputs["p2"], outputs["z1"])
        )


@method(SimSiam)
def build_simsiam():
    """SimSiam (Chen & He, 2021): a Siamese network with a predictor and stop-gradient, no negatives."""
