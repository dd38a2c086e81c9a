"""Projection and prediction heads: one multilayer perceptron parametrised by its sizes.

SimCLR's projection head g (Chen et al., 2020, Sec. 2.1: Dense-BN-ReLU then Dense), BYOL's
projector and predictor (Grill et al., 2020, Sec. 3.3), SimSiam's 3-layer projector with a batch
norm on the output (Chen & He, 2021) and Barlow Twins' wide projector (Zbontar et al., 2021) are all
``MLPHead(units=(hidden, ..., output))`` with different sizes and normalisation.

>>> head = MLPHead(units=(512, 128))                     # SimCLR-style g(h)
>>> predictor = MLPHead(units=(512, 128))                # BYOL's q, same shape
>>> projector = MLPHead(units=(512, 512, 512), output_norm=True)   # SimSiam-style
"""

import keras
from keras import layers


@keras.saving.register_keras_serializable(package="garden")
class MLPHead(keras.layers.Layer):
    """Dense layers ``units[0] ... units[-1]``; every hidden layer is Dense -> BatchNorm -> ReLU.

    ``norm=False`` drops the hidden batch norms; ``output_norm=True`` adds a batch norm (without
    scale and shift) after the last Dense, as SimSiam's projector does.
    """

    def __init__(self, units=(512, 128), norm=True, output_norm=False, **kwargs):
        super().__init__(**kwargs)
        if not units or min(units) <= 0:
            raise ValueError(f"MLPHead units must be positive sizes, got {units!r}")
        self.units, self.norm, self.output_norm = tuple(int(u) for u in units), bool(norm), bool(output_norm)
        self.dense_layers, self.norm_layers = [], []
        for index, width in enumerate(self.units, start=1):
            last = index == len(self.units)
            self.dense_layers.append(layers.Dense(width, use_bias=not (self.norm and not last), name=f"dense{index}"))
            if (self.norm and not last) or (last and self.output_norm):
                self.norm_layers.append(layers.BatchNormalization(center=not last, scale=not last, name=f"bn{index}"))
            else:
                self.norm_layers.append(None)

    def build(self, input_shape):
        shape = tuple(input_shape)
        for dense, norm in zip(self.dense_layers, self.norm_layers):
            dense.build(shape)
            shape = shape[:-1] + (dense.units,)
            if norm is not None:
                norm.build(shape)

    def call(self, x, training=None):
        for index, (dense, norm) in enumerate(zip(self.dense_layers, self.norm_layers), start=1):
            x = dense(x)
            if norm is not None:
                x = norm(x, training=training)
            if index < len(self.units):
                x = keras.activations.relu(x)
        return x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)[:-1] + (self.units[-1],)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "norm": self.norm, "output_norm": self.output_norm}
