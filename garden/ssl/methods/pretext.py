"""Pretext tasks: a label made from the image itself (its rotation, its tile order, its colours).

- ``rotnet``: Gidaris, Singh & Komodakis, "Unsupervised Representation Learning by Predicting
  Image Rotations" (ICLR 2018): classify which of 0, 90, 180, 270 degrees an image was turned;
  every image is shown in all four rotations in the same batch, as in the paper.
- ``jigsaw``: Noroozi & Favaro, "Unsupervised Learning of Visual Representations by Solving Jigsaw
  Puzzles" (ECCV 2016): cut a 3x3 grid of tiles (with gaps, so edges do not give the order away),
  shuffle them by one permutation of a set chosen for maximal Hamming distance, and classify which;
  the tiles go through one shared encoder (the "context-free network").
- ``colorization``: Zhang, Isola & Efros, "Colorful Image Colorization" (ECCV 2016): from the
  lightness L of CIE Lab predict the colour channels ab, at a quarter of the resolution. Regression
  of ab (the paper's baseline loss), not the paper's 313-bin classification with class rebalancing.
"""

import itertools

import keras
import numpy as np
from keras import layers, ops

from garden.registry import register_model
from garden.ssl import losses
from garden.ssl.heads import MLPHead
from garden.ssl.methods._base import SSLModel, build_encoder, check_square
from garden.ssl.views import random_translate

# ---------------------------------------------------------------- RotNet


class RotNet(SSLModel):
    """Predict the rotation (0, 90, 180, 270 degrees) of every image, shown in all four."""

    def __init__(self, backbone="small_cnn", input_shape=(32, 32, 3), hidden_units=256, seed=0, **kwargs):
        check_square(input_shape, "rotnet")
        super().__init__(input_shape=input_shape, seed=seed, **kwargs)
        self.encoder = build_encoder(backbone, input_shape)
        self.classifier = MLPHead(units=(hidden_units, 4), name="rotation_head")

    def call(self, images, training=False):
        rotated = ops.concatenate([ops.rot90(images, k, axes=(1, 2)) for k in range(4)], axis=0)
        labels = ops.repeat(ops.arange(4, dtype="int32"), ops.shape(images)[0])
        return {"logits": self.classifier(self.encoder(rotated, training=training), training=training), "labels": labels}

    def ssl_loss(self, outputs):
        return losses.cross_entropy(outputs["labels"], outputs["logits"])


def build_rotnet(*, backbone="small_cnn", input_shape=(32, 32, 3), hidden_units=256, seed=0, name="rotnet"):
    """RotNet (Gidaris et al., 2018): predict which of four rotations an image was turned by."""
    return RotNet(backbone, input_shape, hidden_units, seed, name=name).build_now()


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
        self, backbone="small_cnn", input_shape=(32, 32, 3), num_permutations=64, hidden_units=512, gap=0.2,
        upscale=1, seed=0, **kwargs,
    ):
        check_square(input_shape, "jigsaw")
        super().__init__(input_shape=input_shape, seed=seed, **kwargs)
        self.num_permutations, self.gap, self.upscale = num_permutations, gap, upscale
        self.permutations = maximal_hamming_permutations(num_permutations, seed=seed)
        self.cell = input_shape[0] * upscale // 3
        self.tile = max(1, int(round(self.cell * (1.0 - gap))))
        # The tiles are smaller than the image, so the encoder takes any size.
        self.encoder = build_encoder(backbone, (None, None, input_shape[-1]))
        self.classifier = MLPHead(units=(hidden_units, num_permutations), name="permutation_head")

    def call(self, images, training=False):
        n = ops.shape(images)[0]
        if self.upscale != 1:  # tiles closer in size to the whole images the encoder will see later
            side = images.shape[1] * self.upscale
            images = ops.image.resize(images, (side, side), interpolation="bilinear")
        # Jitter the whole grid by up to the gap (per image), then cut the tiles at fixed places.
        x = random_translate(images, (self.cell - self.tile) / 2, self.seed_generator)
        starts = [index * self.cell + (self.cell - self.tile) // 2 for index in range(3)]
        tiles = ops.stack(
            [x[:, top:top + self.tile, left:left + self.tile] for top in starts for left in starts], axis=1
        )
        labels = keras.random.randint((n,), 0, self.num_permutations, seed=self.seed_generator)
        order = ops.take(ops.convert_to_tensor(self.permutations), labels, axis=0)
        flat = ops.reshape(order + 9 * ops.expand_dims(ops.arange(n, dtype="int32"), 1), (-1,))
        tiles = ops.reshape(tiles, (-1, self.tile, self.tile, images.shape[-1]))
        shuffled = ops.take(tiles, flat, axis=0)
        features = self.encoder(shuffled, training=training)
        features = ops.reshape(features, (n, 9 * features.shape[-1]))
        return {"logits": self.classifier(features, training=training), "labels": labels}

    def ssl_loss(self, outputs):
        return losses.cross_entropy(outputs["labels"], outputs["logits"])


def build_jigsaw(
    *, backbone="small_cnn", input_shape=(32, 32, 3), num_permutations=64, hidden_units=512, gap=0.2, upscale=1,
    seed=0, name="jigsaw",
):
    """Jigsaw puzzles (Noroozi & Favaro, 2016): predict the permutation index of 3x3 shuffled tiles.

    ``upscale`` enlarges the image before cutting, so that tiles are nearer the encoder's later input size.
    """
    return Jigsaw(backbone, input_shape, num_permutations, hidden_units, gap, upscale, seed, name=name).build_now()


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


class Colorization(SSLModel):
    """Predict the ab channels (CIE Lab) from the lightness L, at a quarter of the input resolution."""

    AB_SCALE = 110.0

    def __init__(self, backbone="small_cnn", input_shape=(32, 32, 3), decoder_filters=128, seed=0, **kwargs):
        super().__init__(input_shape=input_shape, seed=seed, **kwargs)
        height, width = input_shape[0], input_shape[1]
        if height % 4 or width % 4:
            raise ValueError(f"colorization needs a height and width divisible by 4, got {input_shape}")
        self.trunk = build_encoder(backbone, (height, width, 1), pooling=None)
        rgb = keras.Input(shape=tuple(input_shape), name="rgb")
        lightness = Lightness(name="lightness")(rgb)
        pooled = layers.GlobalAveragePooling2D(name="avg_pool")(self.trunk(lightness))
        self.encoder = keras.Model(rgb, pooled, name=f"{self.trunk.name}_lightness")
        self.decoder = keras.Sequential([
            layers.Conv2D(decoder_filters, 3, padding="same", activation="relu", name="decoder_conv"),
            layers.Resizing(height // 4, width // 4, interpolation="bilinear", name="decoder_resize"),
            layers.Conv2D(decoder_filters, 3, padding="same", activation="relu", name="decoder_conv2"),
            layers.Conv2D(2, 1, name="decoder_ab"),
        ], name="ab_decoder")

    def call(self, images, training=False):
        lab = rgb_to_lab(images)
        target = ops.average_pool(lab[..., 1:] / self.AB_SCALE, 4, 4)
        features = self.trunk(lab[..., :1] / 100.0, training=training)
        return {"ab": self.decoder(features, training=training), "target": target}

    def ssl_loss(self, outputs):
        return ops.mean(ops.square(outputs["ab"] - outputs["target"]))


def build_colorization(
    *, backbone="small_cnn", input_shape=(32, 32, 3), decoder_filters=128, seed=0, name="colorization",
):
    """Colorization (Zhang et al., 2016): predict the ab colour channels from the lightness L."""
    return Colorization(backbone, input_shape, decoder_filters, seed, name=name).build_now()


register_model("rotnet", build_rotnet, "ssl")
register_model("jigsaw", build_jigsaw, "ssl")
register_model("colorization", build_colorization, "ssl")
