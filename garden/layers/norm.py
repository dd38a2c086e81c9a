"""Normalization as one choice: batch, instance, layer or group norm.

Wu & He, "Group Normalization" (ECCV 2018), Figure 2 draws the four as the same operation over
different axes; here they are the same factory. Layer and instance norm are group norm with one
group and one group per channel, so all four carry a per-channel gamma and beta and behave the same
at train and test time, except batch norm, which uses batch statistics while training and running
averages at inference (Ioffe & Szegedy, 2015).
"""

from keras import layers

NORMS = ("batch", "instance", "layer", "group", None)


def normalization(kind="batch", name=None, *, groups=32, epsilon=1e-3, momentum=0.99):
    """A normalization layer over the channel axis (channels-last), or None for ``kind=None``.

    ``groups`` applies to group norm; it is reduced to the channel count at build time when the
    layer sees fewer channels (see :class:`keras.layers.GroupNormalization`).
    """
    if kind == "batch":
        return layers.BatchNormalization(epsilon=epsilon, momentum=momentum, name=name)
    if kind == "instance":
        return layers.GroupNormalization(groups=-1, epsilon=epsilon, name=name)
    if kind == "layer":
        return layers.GroupNormalization(groups=1, epsilon=epsilon, name=name)
    if kind == "group":
        return layers.GroupNormalization(groups=groups, epsilon=epsilon, name=name)
    if kind is None or kind == "none":
        return None
    raise ValueError(f"unknown normalization {kind!r}; choose one of batch, instance, layer, group, none")


def apply_norm(x, kind, name, **kwargs):
    """Apply ``normalization(kind)`` to ``x``; group norm's group count is fitted to the channels."""
    if kind == "group":
        channels = x.shape[-1]
        groups = kwargs.pop("groups", 32)
        while channels % groups:
            groups -= 1
        kwargs["groups"] = groups
    layer = normalization(kind, name=name, **kwargs)
    return x if layer is None else layer(x)
