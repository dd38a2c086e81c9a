"""SegNet (Badrinarayanan, Kendall & Cipolla, "SegNet: A Deep Convolutional Encoder-Decoder
Architecture for Image Segmentation", TPAMI 2017).

The encoder is VGG16's 13 convolutions (conv-BN-ReLU) with 2x2 max pooling; each pooling records
its switches (where every maximum came from). The decoder mirrors it: each stage unpools with
the switches of its encoder stage (sparse maps, values back at the maxima), then densifies them
with 3x3 convolutions; a 1x1 convolution gives the class logits.

- ``segnet`` stores the switches (``MaxPoolingWithSwitches`` / ``MaxUnpooling``), as the paper does.
- ``segnet_builtin`` recovers them at unpooling time from the features before pooling
  (``MaskedMaxUnpooling``: max pool, nearest resize, equal, multiply), so every op is a TFLite
  builtin; the two differ only on exact ties inside a pooling window.
"""

import keras
from keras import layers

from garden.layers import MaskedMaxUnpooling, MaxPoolingWithSwitches, MaxUnpooling, conv_norm_act
from garden.models._common import model_input
from garden.models.heads import logits_head

# VGG16's convolution widths per encoder stage (the decoder mirrors them).
VGG16_STAGES = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
UNPOOLING = ("switches", "builtin")


def build_segnet(
    *,
    num_classes=12,
    input_shape=(224, 224, 3),
    stages=VGG16_STAGES,
    width=1.0,
    unpooling="switches",
    norm="batch",
    name="segnet",
):
    """SegNet (Badrinarayanan et al., 2017): VGG16 encoder, decoder unpooling with the max-pool switches."""
    if unpooling not in UNPOOLING:
        raise ValueError(f"unpooling must be one of {', '.join(UNPOOLING)}, got {unpooling!r}")
    inputs = model_input(input_shape, (224, 224, 3))
    widths = [[max(1, int(round(f * width))) for f in stage] for stage in stages]
    x, saved = inputs, []
    for stage, convs in enumerate(widths, start=1):
        for block, filters in enumerate(convs, start=1):
            x = conv_norm_act(x, filters, 3, norm=norm, name=f"enc{stage}_conv{block}")
        if unpooling == "switches":
            x, switches = MaxPoolingWithSwitches(2, name=f"enc{stage}_pool")(x)
            saved.append(switches)
        else:
            saved.append(x)
            x = layers.MaxPooling2D(2, name=f"enc{stage}_pool")(x)
    for stage in range(len(widths), 0, -1):
        unpool = MaxUnpooling if unpooling == "switches" else MaskedMaxUnpooling
        x = unpool(2, name=f"dec{stage}_unpool")([x, saved[stage - 1]])
        convs = widths[stage - 1]
        outputs = convs[:-1] + [widths[stage - 2][-1] if stage > 1 else convs[-1]]
        for block, filters in enumerate(outputs, start=1):
            x = conv_norm_act(x, filters, 3, norm=norm, name=f"dec{stage}_conv{block}")
    logits = logits_head(x, num_classes)
    return keras.Model(inputs, logits, name=name)
