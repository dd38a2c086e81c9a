"""Pretext tasks: a label made from the image itself (its rotation, its tile order, its colours).

- ``rotnet``: Gidaris, Singh & Komodakis, "Unsupervised Representation Learning by Predicting
  Image Rotations" (ICLR 2018): classify which of 0, 90, 180, 270 degrees an image was turned;
  every image is shown in all four rotations in the same batch, as in the paper.
- ``jigsaw``: Noroozi & Favaro, "Unsupervised Learning of Visual Representations by Solving Jigsaw
  Puzzles" (ECCV 2016): cut a 3x3 grid of tiles (with gaps, so edges do not give the order away),
  shuffle them by one permutation of a set chosen for maximal Hamming distance, and classify which;
  the tiles go through one shared encoder (the "context-free network"). With ``reassemble=True``
  the shuffled tiles are put back on the image's grid and the whole puzzle goes through the encoder
  at once, as in Carlucci et al., "Domain Generalization by Solving Jigsaw Puzzles" (CVPR 2019).
- ``colorization``: Zhang, Isola & Efros, "Colorful Image Colorization" (ECCV 2016): from the
  lightness L of CIE Lab predict the colour channels ab, at a quarter of the resolution, as the
  paper does: a distribution over the in-gamut bins of a 10-unit ab grid, soft-encoded targets and
  class rebalancing (``loss="bins"``); ``loss="regression"`` is the paper's L2 baseline.
"""

import functools
import itertools

import keras
import numpy as np
from keras import layers, ops

from garden.ssl import losses
from garden.ssl.heads import MLPHead
from garden.ssl.methods._base import SSLModel, check_crop_scale, check_square, method
from garden.ssl.views import random_translate

# ---------------------------------------------------------------- RotNet


class RotNet(SSLModel):
    """Predict the rotation (0, 90, 180, 270 degrees) of every image, shown in all four."""

    def __init__(self, hidden_units=256, crop_scale=None, **kwargs):
        super().__init__(**kwargs)
        check_square(self.image_shape, "rotnet")
        self.crop_scale = check_crop_scale(crop_scale)
        self.encoder = self.new_encoder()
        self.classifier = MLPHead(units=(hidden_units, 4), name="rotation_head")

    def call(self, images, training=False):
        images = self.crop_in_training(images, training)
        rotated = ops.concatenate([ops.rot90(images, k, axes=(1, 2)) for k in range(4)], axis=0)
        labels = ops.repeat(ops.arange(4, dtype="int32"), ops.shape(images)[0])
        return {
            "logits": self.classifier(self.encoder(rotated, training=training), training=training),
            "labels": labels,
        }

    def ssl_loss(self, outputs):
        return losses.cross_entropy(outputs["labels"], outputs["logits"])


@method(RotNet)
def build_rotnet():
    """RotNet (Gidaris et al., 2018): predict which of four rotations an image was turned by.

    ``crop_scale=(low, high)``: a random resized crop of each image before it is rotated (in
    training), so that a small dataset is not learnt by heart (docs/ssl.md measures it on digits).
    """


# ---------------------------------------------------------------- Jigsaw


def maximal_hamming_permutations(count, tiles=9, seed=0):
    """``count`` permutations of ``range(tiles)`` spread out in Hamming distance, shape (count, tiles).

    Noroozi & Favaro (2016), Sec. 3.3, select the permutation set for maximal Hamming distance: here
    by farthest-point selection over all ``tiles!`` permutations, each new one maximising its
    minimum distance to those already chosen (ties: the first in lexicographic order), starting
    from a random one drawn with ``seed``.
    """
    every = np.array(list(itertools.permutations(range(tiles))), dtype=np.int8)
    if not 1 <= count <= len(every):
        raise ValueError(f"count must be in 1..{len(every)}, got {count}")
    chosen = [int(np.random.default_rng(seed).integers(len(every)))]
    nearest = np.sum(every != every[chosen[0]], axis=1)
    for _ in range(count - 1):
        index = int(np.argmax(nearest))
        chosen.append(index)
        nearest = np.minimum(nearest, np.sum(every != every[index], axis=1))
    return every[chosen].astype("int32")


class Jigsaw(SSLModel):
    """Classify which permutation of the set shuffled a 3x3 grid of tiles."""

    def __init__(
        self,
        num_permutations=64,
        hidden_units=512,
        gap=0.2,
        upscale=1,
        normalize_tiles=False,
        crop_scale=None,
        reassemble=False,
        foreign_tiles=0,
        **kwargs,
    ):
        if reassemble and upscale != 1:
            raise ValueError("reassemble=True takes no upscale (the tiles go back at the image's own size)")
        if not 0 <= foreign_tiles <= 8:
            raise ValueError(f"foreign_tiles must be 0 to 8 (of the 9 tiles), got {foreign_tiles}")
        super().__init__(**kwargs)
        check_square(self.image_shape, "jigsaw")
        self.crop_scale = check_crop_scale(crop_scale)
        self.num_permutations, self.gap, self.upscale = num_permutations, gap, upscale
        self.normalize_tiles, self.reassemble, self.foreign_tiles = normalize_tiles, reassemble, foreign_tiles
        self.permutations = maximal_hamming_permutations(num_permutations, seed=self.seed)
        self.cell = self.image_shape[0] * upscale // 3
        self.tile = max(1, int(round(self.cell * (1.0 - gap))))
        self.margin = (self.cell - self.tile) // 2
        self.starts = [index * self.cell for index in range(3)]
        if reassemble:
            # The head reads the puzzle's whole feature map, so that it knows where each part sits.
            self.trunk = self.new_encoder(pooling=None)
            pooled = layers.GlobalAveragePooling2D(name="avg_pool")(self.trunk.output)
            self.encoder = keras.Model(self.trunk.input, pooled, name=f"{self.trunk.name}_pooled")
        else:  # the tiles are smaller than the image, so the encoder takes any size
            self.encoder = self.new_encoder(any_size=True)
        self.classifier = MLPHead(units=(hidden_units, num_permutations), name="permutation_head")

    def call(self, images, training=False):
        n = ops.shape(images)[0]
        tiles = self.cut_tiles(images, training)
        if self.foreign_tiles:
            tiles = self.swap_in_foreign_tiles(tiles, n)
        labels = keras.random.randint((n,), 0, self.num_permutations, seed=self.seed_generator)
        order = ops.take(ops.convert_to_tensor(self.permutations), labels, axis=0)
        flat = ops.reshape(order + 9 * ops.expand_dims(ops.arange(n, dtype="int32"), 1), (-1,))
        shuffled = ops.take(tiles, flat, axis=0)
        if self.reassemble:
            feature_map = self.trunk(self.assemble(shuffled), training=training)
            features = ops.reshape(feature_map, (n, -1))
        else:
            features = self.encoder(shuffled, training=training)
            features = ops.reshape(features, (n, 9 * features.shape[-1]))
        return {"logits": self.classifier(features, training=training), "labels": labels}

    def swap_in_foreign_tiles(self, tiles, n):
        """Jigsaw++: 0 to ``foreign_tiles`` tiles of each image, in cells drawn at random, become
        the same cells' tiles of the image before it in the batch; the permutation to predict is unchanged."""
        grid = ops.reshape(tiles, (n, 9, *tiles.shape[1:]))
        counts = keras.random.randint((n, 1), 0, self.foreign_tiles + 1, seed=self.seed_generator)
        ranks = ops.argsort(ops.argsort(keras.random.uniform((n, 9), seed=self.seed_generator), axis=1), axis=1)
        foreign = ops.reshape(ranks < counts, (n, 9, 1, 1, 1))
        return ops.reshape(ops.where(foreign, ops.roll(grid, 1, axis=0), grid), (-1, *tiles.shape[1:]))

    def assemble(self, tiles):
        """Tiles (9 N, tile, tile, C), row by row per image, back into images (N, H, W, C).

        Tile ``k`` of an image goes to grid cell ``k`` (row ``k // 3``, column ``k % 3``), in the
        middle of its cell; the gaps and the border left by the cells are black.
        """
        cell, tile, margin, channels = self.cell, self.tile, self.margin, tiles.shape[-1]
        after = cell - tile - margin
        cells = ops.pad(tiles, ((0, 0), (margin, after), (margin, after), (0, 0)))
        grid = ops.reshape(cells, (-1, 3, 3, cell, cell, channels))
        images = ops.reshape(ops.transpose(grid, (0, 1, 3, 2, 4, 5)), (-1, 3 * cell, 3 * cell, channels))
        border = self.image_shape[0] - 3 * cell
        before = border // 2
        return ops.pad(images, ((0, 0), (before, border - before), (before, border - before), (0, 0)))

    def cut_tiles(self, images, training=False):
        """The 3x3 tiles of each image, (9 N, tile, tile, C), row by row for each image in turn."""
        images = self.crop_in_training(images, training)  # a tile's content then does not fix its place
        if self.upscale != 1:  # tiles closer in size to the whole images the encoder will see later
            side = images.shape[1] * self.upscale
            images = ops.image.resize(images, (side, side), interpolation="bilinear")
        # Each tile is cut at its own random place inside its cell (Noroozi & Favaro's per-tile jitter),
        # so that neither the gaps nor the strokes running across them give the order away.
        cell, margin, tile = self.cell, self.margin, self.tile
        cells = ops.stack(
            [images[:, top : top + cell, left : left + cell] for top in self.starts for left in self.starts], 1
        )
        cells = random_translate(ops.reshape(cells, (-1, cell, cell, images.shape[-1])), margin, self.seed_generator)
        tiles = cells[:, margin : margin + tile, margin : margin + tile]
        if self.normalize_tiles:  # Noroozi & Favaro: each tile's own mean and spread, so ink amount says nothing
            mean = ops.mean(tiles, axis=(1, 2, 3), keepdims=True)
            tiles = (tiles - mean) / (ops.std(tiles, axis=(1, 2, 3), keepdims=True) + 0.05)
        return tiles

    def ssl_loss(self, outputs):
        return losses.cross_entropy(outputs["labels"], outputs["logits"])


@method(Jigsaw)
def build_jigsaw():
    """Jigsaw puzzles (Noroozi & Favaro, 2016): predict the permutation index of 3x3 shuffled tiles.

    Each tile is cut at its own random offset in its cell (the paper's per-tile jitter).
    ``normalize_tiles`` standardises every tile by its own mean and spread (the paper's guard against
    low-level cues); ``crop_scale=(low, high)`` takes a random resized crop of each image first, so
    that the same content lands in different cells; ``upscale`` enlarges the image before cutting,
    so that tiles are nearer the encoder's later input size. ``reassemble=True`` (Carlucci et al.,
    2019) puts the shuffled tiles back on the grid, gaps black, and classifies the permutation from
    the encoder's feature map of that one image: the encoder learns at the size it is later read at.
    ``foreign_tiles=k`` is Noroozi et al.'s Jigsaw++ ("Boosting Self-Supervised Learning via Knowledge
    Transfer", CVPR 2018): 0 to k random tiles of each puzzle come from another image, so that the
    encoder must tell which parts belong together.
    """


# ---------------------------------------------------------------- Colorization

# sRGB (D65) to CIE XYZ, and the D65 white point.
_RGB_TO_XYZ = np.array(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]], "float32"
)
_WHITE = np.array([0.950456, 1.0, 1.088754], "float32")


def rgb_to_lab(images):
    """sRGB in [0, 1] (N, H, W, 3) to CIE L*a*b* (L in [0, 100], a and b about [-110, 110])."""
    linear = ops.where(images > 0.04045, ops.power((images + 0.055) / 1.055, 2.4), images / 12.92)
    xyz = ops.matmul(linear, ops.convert_to_tensor(_RGB_TO_XYZ.T)) / ops.convert_to_tensor(_WHITE)
    delta = 6.0 / 29.0
    f = ops.where(xyz > delta**3, ops.power(ops.maximum(xyz, delta**3), 1.0 / 3.0), xyz / (3 * delta**2) + 4.0 / 29.0)
    fx, fy, fz = f[..., 0], f[..., 1], f[..., 2]
    return ops.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1)


@keras.saving.register_keras_serializable(package="garden")
class Lightness(layers.Layer):
    """RGB (or gray) in [0, 1] to CIE lightness L / 100, one channel: the colorization encoder's input."""

    def call(self, images):
        if images.shape[-1] == 1:
            images = ops.repeat(images, 3, axis=-1)
        return rgb_to_lab(images)[..., :1] / 100.0

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (1,)


@functools.cache
def ab_bin_centres(grid=10.0, samples=65):
    """Centres (Q, 2) of the ``grid``-unit ab bins that hold at least one sRGB colour (Q = 264 for 10).

    Zhang et al. (2016), Sec. 2.1, quantise the ab plane into bins of size 10 and keep the in-gamut
    ones; here the gamut is sampled on a ``samples``^3 grid of sRGB colours. Computed once per
    process (the array is shared: do not modify it).
    """
    axis = np.linspace(0.0, 1.0, samples, dtype="float32")
    rgb = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(1, -1, 1, 3)
    ab = ops.convert_to_numpy(rgb_to_lab(rgb)).reshape(-1, 3)[:, 1:]
    occupied = np.unique(np.floor(ab / grid).astype("int64"), axis=0)
    return ((occupied + 0.5) * grid).astype("float32")


def soft_encode(ab, centres, neighbours=5, sigma=5.0):
    """Each ab value (..., 2) as weights on its ``neighbours`` nearest bin centres (Q, 2), Gaussian in distance.

    Zhang et al. (2016), Sec. 2.1: 5 nearest neighbours (bins tied with the fifth kept too), sigma = 5;
    the weights sum to one.
    """
    distance2 = ops.sum(ops.square(ops.expand_dims(ab, -2) - centres), axis=-1)
    nearest = -ops.top_k(-distance2, neighbours)[0]
    kept = ops.cast(distance2 <= nearest[..., -1:], distance2.dtype)
    weights = kept * ops.exp((nearest[..., :1] - distance2) / (2.0 * sigma**2))
    return weights / ops.sum(weights, axis=-1, keepdims=True)


class Colorization(SSLModel):
    """Predict the ab channels (CIE Lab) from the lightness L, at a quarter of the input resolution."""

    AB_SCALE = 110.0
    LOSSES = ("bins", "regression")

    def __init__(self, decoder_filters=128, loss="bins", rebalance=0.5, prior_momentum=0.99, crop_scale=None, **kwargs):
        super().__init__(**kwargs)
        self.crop_scale = check_crop_scale(crop_scale)
        height, width = self.image_shape[0], self.image_shape[1]
        if height % 4 or width % 4:
            raise ValueError(f"colorization needs a height and width divisible by 4, got {self.image_shape}")
        if loss not in self.LOSSES:
            raise ValueError(f"colorization loss must be one of {self.LOSSES}, got {loss!r}")
        self.loss_kind, self.rebalance, self.prior_momentum = loss, rebalance, prior_momentum
        self.trunk = self.new_encoder((height, width, 1), pooling=None)
        rgb = keras.Input(shape=self.image_shape, name="rgb")
        lightness = Lightness(name="lightness")(rgb)
        pooled = layers.GlobalAveragePooling2D(name="avg_pool")(self.trunk(lightness))
        self.encoder = keras.Model(rgb, pooled, name=f"{self.trunk.name}_lightness")
        outputs = 2
        if loss == "bins":
            self.centres = ab_bin_centres()
            outputs = len(self.centres)
            # How often each ab bin occurs in the targets, a running average kept for class rebalancing.
            self.prior = self.add_weight(
                shape=(outputs,),
                initializer=keras.initializers.Constant(1.0 / outputs),
                trainable=False,
                name="ab_prior",
            )
        self.decoder = keras.Sequential(
            [
                layers.Conv2D(decoder_filters, 3, padding="same", activation="relu", name="decoder_conv"),
                layers.Resizing(height // 4, width // 4, interpolation="bilinear", name="decoder_resize"),
                layers.Conv2D(decoder_filters, 3, padding="same", activation="relu", name="decoder_conv2"),
                layers.Conv2D(outputs, 1, name="decoder_ab"),
            ],
            name="ab_decoder",
        )

    def call(self, images, training=False):
        images = self.crop_in_training(images, training)
        lab = rgb_to_lab(images)
        features = self.trunk(lab[..., :1] / 100.0, training=training)
        prediction = self.decoder(features, training=training)
        if self.loss_kind == "regression":
            return {"ab": prediction, "target": ops.average_pool(lab[..., 1:] / self.AB_SCALE, 4, 4)}
        # As Zhang et al.: the ab image brought to the output resolution, then soft-encoded.
        target = soft_encode(ops.average_pool(lab[..., 1:], 4, 4), ops.convert_to_tensor(self.centres))
        if training:
            frequency = ops.mean(ops.reshape(target, (-1, target.shape[-1])), axis=0)
            self.prior.assign(self.prior_momentum * self.prior + (1.0 - self.prior_momentum) * frequency)
        return {"logits": prediction, "target": target, "weights": self.rebalancing_weights(target)}

    def rebalancing_weights(self, target):
        """Zhang et al.'s ``w ~ ((1 - lambda) p + lambda / Q)^-1`` with ``E_p[w] = 1``, at each cell's likeliest bin."""
        prior = ops.stop_gradient(ops.convert_to_tensor(self.prior))
        count = float(prior.shape[0])
        weights = 1.0 / ((1.0 - self.rebalance) * prior + self.rebalance / count)
        weights = weights / ops.sum(prior * weights)
        return ops.take(weights, ops.argmax(target, axis=-1))

    def ssl_loss(self, outputs):
        if self.loss_kind == "regression":
            return ops.mean(ops.square(outputs["ab"] - outputs["target"]))
        return ops.mean(outputs["weights"] * losses.soft_cross_entropy(outputs["target"], outputs["logits"]))


@method(Colorization)
def build_colorization():
    """Colorization (Zhang et al., 2016): classify the ab colour of each cell from the lightness L.

    ``loss="bins"`` (the paper's): cross-entropy over in-gamut ab bins, soft targets, rebalanced by
    ``rebalance`` (lambda); ``"regression"``: mean squared error on ab. ``crop_scale=(low, high)``:
    a random resized crop of each colour image before it is split into L and ab (in training).
    """
