"""Segmentation heads: from a decoder's feature map to per-pixel class logits."""

from keras import layers

from garden.layers import ResizeLike


def logits_head(x, num_classes, reference=None, name="logits"):
    """A 1x1 convolution to ``num_classes`` logits, resized (bilinear) to ``reference`` when given."""
    x = layers.Conv2D(num_classes, 1, name=name)(x)
    if reference is not None and tuple(x.shape[1:3]) != tuple(reference.shape[1:3]):
        x = ResizeLike(name=f"{name}_resize")([x, reference])
    return x


HEADS = {"logits": logits_head}
