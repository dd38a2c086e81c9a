"""What the segmentation families share: a backbone's features by stride and the logits head.

Every segmentation model takes float32 RGB in [0, 1] and returns logits ``(N, H, W, classes)``
(before softmax), at the input resolution unless its paper says otherwise (the valid-padding U-Net).
Backbones come from the registry through the feature contract of ``garden.models._common``:
``create_model(name, features_only=True, ...)`` returns ``{"stride_2": ..., "stride_32": ...}``.
"""

import keras
from keras import layers

from garden.layers import ResizeLike


def backbone_features(backbone, inputs, output_stride=None, **backbone_kwargs):
    """Run a registered backbone (by name) on ``inputs``: ``{stride: tensor}``, shallowest first.

    ``output_stride`` (8 or 16) is passed on for atrous backbones; the features deeper than it then
    keep that resolution but stay under their nominal stride keys.
    """
    from garden.registry import create_model

    kwargs = {"features_only": True, "input_shape": tuple(inputs.shape[1:]), **backbone_kwargs}
    if output_stride is not None:
        kwargs["output_stride"] = output_stride
    model = backbone if isinstance(backbone, keras.Model) else create_model(backbone, **kwargs)
    outputs = model(inputs)
    features = {int(key.split("_")[-1]): tensor for key, tensor in outputs.items()}
    return dict(sorted(features.items()))


def logits_head(x, num_classes, reference=None, name="logits"):
    """A 1x1 convolution to ``num_classes`` logits, resized (bilinear) to ``reference`` when given."""
    x = layers.Conv2D(num_classes, 1, name=name)(x)
    if reference is not None and tuple(x.shape[1:3]) != tuple(reference.shape[1:3]):
        x = ResizeLike(name=f"{name}_resize")([x, reference])
    return x


def check_stride(output_stride):
    if output_stride not in (8, 16):
        raise ValueError(f"output_stride must be 8 or 16, got {output_stride!r}")
