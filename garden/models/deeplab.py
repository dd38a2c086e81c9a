"""DeepLabv3 and DeepLabv3+ on any registered backbone.

- DeepLabv3: Chen, Papandreou, Schroff & Adam, "Rethinking Atrous Convolution for Semantic Image
  Segmentation" (2017): an atrous backbone at output stride 16 or 8, then Atrous Spatial Pyramid
  Pooling (a 1x1 branch, three atrous 3x3 branches, image pooling), a 1x1 classifier and bilinear
  upsampling to the input.
- DeepLabv3+: Chen, Zhu, Papandreou, Schroff & Adam, "Encoder-Decoder with Atrous Separable
  Convolution for Semantic Image Segmentation" (ECCV 2018): the ASPP output upsampled 4x, joined
  with the backbone's stride-4 features reduced to 48 channels by a 1x1 convolution, refined by
  two 3x3 convolutions, then upsampled 4x.

As in the v3+ paper the ASPP and decoder 3x3 convolutions are depthwise-separable; ``separable=False``
makes them standard convolutions (the lecture's cost comparison). Resizes are bilinear to a size
known when the model is built (``ResizeLike``), and the atrous rates become dilated convolutions, so
a fixed-size batch-1 export is plain convolutions, pooling and resizes.
"""

import keras

from garden.models._common import model_input
from garden.models._dilation import check_output_stride
from garden.models.decoders import aspp, deeplabv3plus
from garden.models.heads import logits_head
from garden.models.segmenter import backbone_features


def build_deeplab(
    *,
    num_classes=21,
    input_shape=(513, 513, 3),
    backbone="mobilenet_v2",
    output_stride=16,
    backbone_kwargs=None,
    backbone_weights=None,
    decoder=True,
    separable=True,
    aspp_filters=256,
    aspp_rates=None,
    decoder_filters=256,
    low_level_filters=48,
    dropout=0.1,
    name="deeplabv3plus",
):
    """DeepLabv3 (Chen et al., 2017) / v3+ (2018): atrous backbone, ASPP; v3+ adds a stride-4 decoder.

    ``backbone_kwargs`` go to the backbone's builder (``{"alpha": 0.35}`` for a MobileNet);
    ``backbone_weights`` (``"imagenet"`` or a keras.applications weight file) start it pretrained.
    """
    check_output_stride(output_stride, (8, 16))
    inputs = model_input(input_shape, (513, 513, 3))
    features = backbone_features(backbone, inputs, output_stride, backbone_kwargs, backbone_weights)
    options = {
        "output_stride": output_stride,
        "filters": aspp_filters,
        "rates": aspp_rates,
        "separable": separable,
        "dropout": dropout,
    }
    if decoder:
        x = deeplabv3plus(
            features, inputs, decoder_filters=decoder_filters, low_level_filters=low_level_filters, **options
        )
    else:
        x = aspp(features, inputs, **options)
    return keras.Model(inputs, logits_head(x, num_classes, reference=inputs), name=name)
