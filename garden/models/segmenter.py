"""Segmenters as backbone -> decoder -> head, in any combination that makes sense.

Every segmentation model takes float32 RGB in [0, 1] and returns logits ``(N, H, W, classes)``
(before softmax), at the input resolution unless its paper says otherwise (the valid-padding U-Net).
The backbone is any registered classification model, built once at the segmenter's input through
the backbone contract (``features_only=True``: its maps by integer stride, garden/models/_common.py);
the decoders are in garden/models/decoders.py, the heads in garden/models/heads.py.

>>> model = build_segmenter(backbone="resnet50", decoder="deeplabv3plus", num_classes=21,
...                         input_shape=(257, 257, 3), output_stride=8)
"""

import keras

from garden.errors import GardenError
from garden.models._common import feature_name, model_input
from garden.models._dilation import check_output_stride
from garden.models.decoders import DECODERS, LOGITS
from garden.models.heads import HEADS


def backbone_features(backbone, inputs, output_stride=None, backbone_kwargs=None, backbone_weights=None):
    """Run a backbone (a registered name or a built ``features_only`` model) on ``inputs``.

    Returns ``{stride: tensor}``, shallowest first. ``output_stride`` (8 or 16) is passed on to the
    backbone, which then dilates instead of striding past it. ``backbone_weights`` (``"imagenet"`` or
    a keras.applications weight file) starts the backbone from them (``create_model(weights=...)``),
    normalising the segmenter's [0, 1] input as they expect.
    """
    from garden.registry import create_model, get_entry

    if isinstance(backbone, keras.Model):
        model = backbone
    else:
        kwargs = {"features_only": True, "input_shape": tuple(inputs.shape[1:]), **(backbone_kwargs or {})}
        if backbone_weights is not None:
            kwargs["weights"] = backbone_weights
        if output_stride is not None:
            if "output_stride" not in get_entry(backbone).arguments:
                raise GardenError(
                    f"backbone {backbone} cannot dilate to output stride {output_stride} (it takes no output_stride); "
                    "choose a ResNet, MobileNet or Xception"
                )
            kwargs["output_stride"] = output_stride
        model = create_model(backbone, **kwargs)
    outputs = model(inputs)
    return {stride: outputs[feature_name(stride)] for stride in model.features}


def build_segmenter(
    *,
    backbone="mobilenet_v2",
    decoder="deeplabv3plus",
    head="logits",
    num_classes=21,
    input_shape=(256, 256, 3),
    output_stride=None,
    backbone_kwargs=None,
    backbone_weights=None,
    decoder_kwargs=None,
    name="segmenter",
):
    """A segmenter from parts: a registered backbone, a decoder of ``DECODERS``, a head of ``HEADS``."""
    if decoder not in DECODERS:
        raise GardenError(f"unknown decoder {decoder!r}; choose from {', '.join(DECODERS)}")
    if head not in HEADS:
        raise GardenError(f"unknown head {head!r}; choose from {', '.join(HEADS)}")
    options = dict(decoder_kwargs or {})
    if decoder in ("aspp", "deeplabv3plus"):
        output_stride = 16 if output_stride is None else output_stride
        check_output_stride(output_stride, (8, 16))
        options["output_stride"] = output_stride
    elif output_stride is not None:
        check_output_stride(output_stride)
    if decoder in LOGITS:
        options["num_classes"] = num_classes
    inputs = model_input(input_shape, (256, 256, 3))
    features = backbone_features(backbone, inputs, output_stride, backbone_kwargs, backbone_weights)
    x = DECODERS[decoder](features, inputs, **options)
    logits = x if decoder in LOGITS else HEADS[head](x, num_classes, reference=inputs)
    return keras.Model(inputs, logits, name=name)
