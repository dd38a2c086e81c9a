"""Convolution blocks: conv-norm-act, depthwise-separable convolution and the 1x1 bottleneck.

Padding follows the lecture: an integer pads explicitly with zeros before a 'valid' convolution
(so the cost table shows ``P`` as in ``(N - F + 2P) / S + 1``), or use Keras's ``"same"``/``"valid"``.
"""

from keras import layers

from garden.layers.norm import apply_norm

ACTIVATIONS = ("relu", "relu6", "hard_swish", "swish", "sigmoid", "hard_sigmoid", "gelu", "tanh", None)


def activation(x, kind, name=None):
    """Apply a named nonlinearity (``relu``, ``relu6``, ``hard_swish``, ...); ``None`` is identity."""
    if kind is None:
        return x
    if kind == "relu6":
        return layers.ReLU(max_value=6.0, name=name)(x)
    if kind == "hard_swish":
        # Howard et al., "Searching for MobileNetV3" (2019): x * ReLU6(x + 3) / 6.
        return layers.Activation("hard_swish", name=name)(x)
    if kind not in ACTIVATIONS:
        raise ValueError(f"unknown activation {kind!r}; choose one of {', '.join(map(str, ACTIVATIONS))}")
    return layers.Activation(kind, name=name)(x)


def pad(x, padding, name):
    """Zero padding before a 'valid' op: returns ``(x, keras_padding)``.

    ``padding`` is ``"same"``/``"valid"`` (passed through) or an int / ``((top, bottom), (left, right))``
    of explicit zeros, applied by a ``ZeroPadding2D`` named ``{name}_pad``.
    """
    if isinstance(padding, str):
        return x, padding
    if padding:
        x = layers.ZeroPadding2D(padding, name=f"{name}_pad")(x)
    return x, "valid"


def conv_norm_act(
    x,
    filters,
    kernel_size=3,
    strides=1,
    padding="same",
    dilation_rate=1,
    groups=1,
    norm="batch",
    act="relu",
    use_bias=None,
    name="conv",
    norm_kwargs=None,
):
    """Conv2D -> normalization -> activation, with layers named ``{name}_conv``, ``_bn``/``_norm``, ``_act``.

    ``use_bias`` defaults to ``norm is None``: a bias before a normalization is cancelled by its mean.
    """
    x, keras_padding = pad(x, padding, name)
    x = layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=keras_padding,
        dilation_rate=dilation_rate,
        groups=groups,
        use_bias=(norm is None) if use_bias is None else use_bias,
        name=f"{name}_conv",
    )(x)
    x = apply_norm(x, norm, _norm_name(name, norm), **(norm_kwargs or {}))
    return activation(x, act, name=f"{name}_act" if act else None)


def depthwise_separable(
    x,
    filters,
    kernel_size=3,
    strides=1,
    padding="same",
    dilation_rate=1,
    norm="batch",
    act="relu",
    name="sep",
    norm_kwargs=None,
):
    """Depthwise ``k x k`` conv per channel, then a pointwise 1x1 conv, each with norm and activation.

    Howard et al., "MobileNets" (2017), Figure 3. Its cost against a standard ``k x k`` convolution
    with ``N`` output channels is ``1/N + 1/k^2`` (Eq. 5); see ``garden.profiler.separable_ratio``.
    Layers: ``{name}_dw``, ``{name}_dw_bn``, ``{name}_dw_act``, ``{name}_pw``, ``{name}_pw_bn``, ``{name}_pw_act``.
    """
    x, keras_padding = pad(x, padding, name)
    x = layers.DepthwiseConv2D(
        kernel_size,
        strides=strides,
        padding=keras_padding,
        dilation_rate=dilation_rate,
        use_bias=norm is None,
        name=f"{name}_dw",
    )(x)
    x = apply_norm(x, norm, _norm_name(f"{name}_dw", norm), **(norm_kwargs or {}))
    x = activation(x, act, name=f"{name}_dw_act" if act else None)
    return conv_norm_act(x, filters, 1, norm=norm, act=act, name=f"{name}_pw", norm_kwargs=norm_kwargs)


def bottleneck_1x1(x, filters, norm="batch", act="relu", name="reduce"):
    """1x1 convolution as dimension reduction (Lin et al., "Network in Network"; Szegedy et al., 2015).

    The lecture's example: 28x28x192 into 32 filters of 5x5 costs about 120M multiplies; a 1x1
    reduction to 16 channels first brings it to 2.4M + 10M = 12.4M.
    """
    return conv_norm_act(x, filters, 1, norm=norm, act=act, name=name)


def _norm_name(name, norm):
    if norm is None or norm == "none":
        return None
    return f"{name}_bn" if norm == "batch" else f"{name}_norm"
