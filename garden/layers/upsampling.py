"""In-network upsampling: the lecture's unpooling family, transpose convolution and bilinear resize.

- nearest-neighbour unpooling: ``keras.layers.UpSampling2D`` (each value copied into its k x k block);
- bed-of-nails unpooling: :class:`BedOfNailsUnpooling` (value in the top-left corner, zeros elsewhere);
- max unpooling with the pooling switches (Badrinarayanan et al., "SegNet", TPAMI 2017):
  :class:`MaxPoolingWithSwitches` records where each maximum came from and :class:`MaxUnpooling`
  puts values back there; :class:`MaskedMaxUnpooling` does the same from the pre-pooling features
  with elementwise ops only, so a model that uses it converts to TFLite builtin ops;
- transpose convolution: ``keras.layers.Conv2DTranspose``, which is the transpose of the
  convolution's matrix (see :func:`conv_matrix`);
- bilinear: ``UpSampling2D(interpolation="bilinear")`` by a factor, or :class:`ResizeLike` to the
  size of another tensor.
"""

import keras
import numpy as np
from keras import layers, ops

_PACKAGE = "garden"


def _check_divisible(shape, k):
    height, width = shape[1], shape[2]
    if height is not None and height % k or width is not None and width % k:
        raise ValueError(f"max pooling with switches needs a size divisible by {k}, got {height}x{width}")


def _blocks(x, k):
    """(B, H, W, C) -> (B, H/k, W/k, C, k*k): each k x k window's values on the last axis."""
    _, height, width, channels = x.shape
    _check_divisible(x.shape, k)
    x = ops.reshape(x, (-1, height // k, k, width // k, k, channels))
    x = ops.transpose(x, (0, 1, 3, 5, 2, 4))
    return ops.reshape(x, (-1, height // k, width // k, channels, k * k))


def _unblocks(x, k):
    """Inverse of :func:`_blocks`: (B, h, w, C, k*k) -> (B, h*k, w*k, C)."""
    _, height, width, channels, _ = x.shape
    x = ops.reshape(x, (-1, height, width, channels, k, k))
    x = ops.transpose(x, (0, 1, 4, 2, 5, 3))
    return ops.reshape(x, (-1, height * k, width * k, channels))


@keras.saving.register_keras_serializable(package=_PACKAGE)
class BedOfNailsUnpooling(layers.Layer):
    """Upsample by ``size``: each value goes to the top-left of its ``size x size`` block, zeros elsewhere."""

    def __init__(self, size=2, **kwargs):
        super().__init__(**kwargs)
        self.size = int(size)

    def call(self, x):
        k = self.size
        _, height, width, channels = x.shape
        x = ops.reshape(x, (-1, height, 1, width, 1, channels))
        x = ops.pad(x, ((0, 0), (0, 0), (0, k - 1), (0, 0), (0, k - 1), (0, 0)))
        return ops.reshape(x, (-1, height * k, width * k, channels))

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        return (b, None if h is None else h * self.size, None if w is None else w * self.size, c)

    def get_config(self):
        return {**super().get_config(), "size": self.size}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MaxPoolingWithSwitches(layers.Layer):
    """``pool_size`` x ``pool_size`` max pooling (stride = pool size) that also returns the switches.

    Returns ``[pooled, switches]``; ``switches`` holds, per output value, the int32 position of the
    maximum inside its window (row-major, first maximum on ties), which :class:`MaxUnpooling` reuses.
    """

    def __init__(self, pool_size=2, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = int(pool_size)

    def call(self, x):
        windows = _blocks(x, self.pool_size)
        return [ops.max(windows, axis=-1), ops.cast(ops.argmax(windows, axis=-1), "int32")]

    def compute_output_spec(self, x):
        k = self.pool_size
        _check_divisible(x.shape, k)
        b, h, w, c = x.shape
        shape = (b, None if h is None else h // k, None if w is None else w // k, c)
        return [keras.KerasTensor(shape, x.dtype), keras.KerasTensor(shape, "int32")]

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MaxUnpooling(layers.Layer):
    """SegNet's unpooling: ``[values, switches]`` -> each value placed where its maximum was, zeros elsewhere."""

    def __init__(self, pool_size=2, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = int(pool_size)

    def call(self, inputs):
        values, switches = inputs
        k = self.pool_size
        placed = ops.one_hot(switches, k * k, dtype=values.dtype) * ops.expand_dims(values, -1)
        return _unblocks(placed, k)

    def compute_output_shape(self, input_shapes):
        b, h, w, c = input_shapes[0]
        k = self.pool_size
        return (b, None if h is None else h * k, None if w is None else w * k, c)

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MaskedMaxUnpooling(layers.Layer):
    """Max unpooling from ``[values, features_before_pooling]`` with elementwise ops only.

    The switch mask is ``features == nearest_upsample(max_pool(features))``; values are copied by
    nearest-neighbour upsampling and kept where the mask is set. Everything here is a TFLite builtin
    (MAX_POOL_2D, RESIZE_NEAREST_NEIGHBOR, EQUAL, MUL), unlike TensorFlow's MaxPoolWithArgmax. On an
    exact tie inside a window (a window of zeros after ReLU) every tied position receives the value,
    where :class:`MaxUnpooling` picks the first.
    """

    def __init__(self, pool_size=2, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = int(pool_size)

    def call(self, inputs):
        values, features = inputs
        k = self.pool_size
        pooled = ops.max_pool(features, k, k, padding="valid")
        mask = ops.cast(ops.equal(features, ops.repeat(ops.repeat(pooled, k, axis=1), k, axis=2)), values.dtype)
        return ops.repeat(ops.repeat(values, k, axis=1), k, axis=2) * mask

    def compute_output_shape(self, input_shapes):
        return input_shapes[1][:3] + (input_shapes[0][-1],)

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ResizeLike(layers.Layer):
    """Resize ``inputs[0]`` to the spatial size of ``inputs[1]`` (bilinear or nearest).

    Used where the target size is only known from another branch: ASPP image pooling, decoder skips.
    """

    def __init__(self, interpolation="bilinear", **kwargs):
        super().__init__(**kwargs)
        self.interpolation = interpolation

    def call(self, inputs):
        x, reference = inputs
        size = ops.shape(reference)[1:3]
        return ops.image.resize(x, size, interpolation=self.interpolation)

    def compute_output_shape(self, input_shapes):
        return input_shapes[0][:1] + tuple(input_shapes[1][1:3]) + input_shapes[0][-1:]

    def get_config(self):
        return {**super().get_config(), "interpolation": self.interpolation}


def conv_matrix(kernel, input_size, stride=1):
    """The matrix ``C`` of a 1-D 'valid' convolution (cross-correlation) with ``kernel``.

    ``C @ x`` is the convolution of ``x``; ``C.T @ y`` is the transpose convolution of ``y``
    with the same kernel and stride, which is what ``Conv2DTranspose`` computes along one axis.
    """
    kernel = np.asarray(kernel, dtype="float64")
    outputs = (input_size - len(kernel)) // stride + 1
    matrix = np.zeros((outputs, input_size))
    for row in range(outputs):
        matrix[row, row * stride : row * stride + len(kernel)] = kernel
    return matrix
