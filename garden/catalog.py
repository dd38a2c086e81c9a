"""The catalog: every model garden ships, as data, readable without importing Keras.

Each row names a model, its task, its builder (``"module:function"``, imported only when the model
is built), the architecture arguments that make it that variant, and, where they exist, the
figures its paper publishes and the ``keras.applications`` model whose weights it takes. Adding a
classification model is a builder in its family file and a row here; a segmentation preset is a
row here alone (docs/architecture.md).

``published``: ``params`` are trainable parameters (what papers and torchvision count; batch-norm
moving statistics excluded), ``macs`` multiply-adds at the default input size. Optional keys:
``bias_before_norm`` (the reference keeps convolution biases in front of batch norm, which garden
drops) and ``macs_errata`` (a correction to the published sum, explained in the family's docstring).
"""

from dataclasses import dataclass, field

TASKS = ("classification", "segmentation", "ssl")


@dataclass(frozen=True)
class Weights:
    """Where ImageNet weights come from: a ``keras.applications`` constructor and the layer mapping.

    ``preprocessing`` is the constructor's ``preprocess_input`` mode (``garden.layers.INPUT_NORMALIZATIONS``).
    """

    application: str
    transfer: str  # "module:function(garden_model, keras_model)"
    preprocessing: str = "tf"


@dataclass(frozen=True)
class Entry:
    """One catalog row: ``builder(**architecture, **overrides)`` builds the model ``name``."""

    name: str
    task: str
    builder: str
    description: str
    architecture: dict = field(default_factory=dict)
    published: dict = None
    weights: Weights = None


# One line per family (the builder's docstring says the same, first line; a test keeps them equal).
_FAMILIES = {
    "lenet:build_lenet5": "LeNet-5 (LeCun et al., 1998): two conv-pool stages, C5, F6 and the classifier.",
    "alexnet:build_alexnet": "AlexNet (Krizhevsky et al., 2012), one tower: five convolutions, three fully connected layers.",
    "vgg:build_vgg": "VGG (Simonyan & Zisserman, 2015): five stages of 3x3 convolutions, three fully connected layers.",
    "googlenet:build_googlenet": "GoogLeNet (Szegedy et al., 2015): nine inception modules with 1x1 reductions, auxiliary heads optional.",
    "resnet:build_resnet": "ResNet (He et al., 2016), ResNeXt (Xie et al., 2017) and SE-ResNet (Hu et al., 2018).",
    "densenet:build_densenet": "DenseNet-BC (Huang et al., 2017): dense blocks joined by compressing transition layers.",
    "mobilenet:build_mobilenet_v1": "MobileNet (Howard et al., 2017): a stem and 13 depthwise-separable blocks, width multiplier alpha.",
    "mobilenet:build_mobilenet_v2": "MobileNetV2 (Sandler et al., 2018): inverted residuals with linear bottlenecks, width multiplier alpha.",
    "mobilenet_v3:build_mobilenet_v3": "MobileNetV3 (Howard et al., 2019): searched inverted residuals with SE and hard-swish (``blocks`` table).",
    "xception:build_xception": "Xception (Chollet, 2017): entry, middle and exit flows of residual separable convolutions.",
    "inception_resnet_v2:build_inception_resnet_v2": "Inception-ResNet-v2 (Szegedy et al., 2017): scaled residual Inception blocks, 35/17/8 grids.",
    "small_cnn:build_small_cnn": "A small VGG-style encoder for 32x32 inputs (3x3 conv-BN-ReLU stages, stride-2 downsampling).",
    "deeplab:build_deeplab": "DeepLabv3 (Chen et al., 2017) / v3+ (2018): atrous backbone, ASPP; v3+ adds a stride-4 decoder.",
    "fcn:build_fcn": "FCN (Long et al., 2015): convolutionalized VGG16 with transpose-conv upsampling and skip fusion.",
    "segnet:build_segnet": "SegNet (Badrinarayanan et al., 2017): VGG16 encoder, decoder unpooling with the max-pool switches.",
    "unet:build_unet": "U-Net (Ronneberger et al., 2015): contracting path, expanding path with skip concatenation.",
    "segmenter:build_segmenter": "A segmenter from parts: a registered backbone, a decoder of ``DECODERS``, a head of ``HEADS``.",
}
_METHODS = {
    "pretext:build_rotnet": "RotNet (Gidaris et al., 2018): predict which of four rotations an image was turned by.",
    "pretext:build_jigsaw": "Jigsaw puzzles (Noroozi & Favaro, 2016): predict the permutation index of 3x3 shuffled tiles.",
    "pretext:build_colorization": "Colorization (Zhang et al., 2016): classify the ab colour of each cell from the lightness L.",
    "contrastive:build_cpc": "CPC (van den Oord et al., 2018): predict patch embeddings rows ahead from a GRU context, InfoNCE.",
    "contrastive:build_simclr": "SimCLR (Chen et al., 2020): two augmented views, a projection head and the NT-Xent loss.",
    "contrastive:build_moco_v2": "MoCo v2 (He et al., 2020; Chen et al., 2020): momentum key encoder, a queue of negatives, InfoNCE.",
    "negative_free:build_byol": "BYOL (Grill et al., 2020): online predictor regresses an EMA target network, no negatives.",
    "negative_free:build_barlow_twins": "Barlow Twins (Zbontar et al., 2021): cross-correlation of two views' embeddings to the identity.",
    "negative_free:build_simsiam": "SimSiam (Chen & He, 2021): a Siamese network with a predictor and stop-gradient, no negatives.",
    "clustering:build_swav": "SwAV (Caron et al., 2020): swapped prediction of Sinkhorn cluster codes between two views.",
}

_ENTRIES = []
# keras.applications' preprocess_input mode per application (the rest: "tf", x / 127.5 - 1).
_PREPROCESSING = {
    **{name: "caffe" for name in ("VGG16", "VGG19", "ResNet50", "ResNet101", "ResNet152")},
    **{name: "torch" for name in ("DenseNet121", "DenseNet169", "DenseNet201")},
}


def _model(name, task, family, published=None, weights=None, **architecture):
    builder = f"garden.models.{family}"
    _ENTRIES.append(Entry(name, task, builder, _FAMILIES[family], architecture, published, weights))


def _method(name, method):
    _ENTRIES.append(Entry(name, "ssl", f"garden.ssl.methods.{method}", _METHODS[method]))


def _classifier(name, family, weights=None, **architecture):
    """A classification row; ``weights`` is ``(keras.applications name, "family:transfer")``."""
    weights = (
        Weights(weights[0], f"garden.models.{weights[1]}", _PREPROCESSING.get(weights[0], "tf")) if weights else None
    )
    _model(name, "classification", family, PUBLISHED.get(name), weights, **architecture)


# ---------------------------------------------------------------- published figures

_VGG = "Simonyan & Zisserman 2015, Table 2; exact params and MACs torchvision"
_GOOGLENET = "params BVLC bvlc_googlenet; MACs Szegedy et al. 2015, Table 1 (conv1 row 34M, recomputed 118M)"
_HE = "He et al. 2016, Table 1; params torchvision"
_HU = "Hu et al. 2018, Table 2; params torchvision"
_SE = "Hu et al. 2018, Table 2; params of the released model"
_DENSENET = "torchvision (Huang et al. 2017, Table 1 layout)"
_XCEPTION = (
    "Chollet 2017, Table 3 (trainable parameters); the paper gives no multiply-adds, 8.4 G at 299 is the commonly "
    "cited figure"
)
_INCEPTION_RESNET = (
    "Keras applications table (55.9 M parameters); 13.2 G multiply-adds at 299 as commonly cited; Szegedy et al. "
    "2017 give neither"
)
_BN = {"bias_before_norm": True}
# name: (params, multiply-adds, source[, extra keys])
_FIGURES = {
    "vgg11": (132_863_336, 7.61e9, _VGG),
    "vgg13": (133_047_848, 11.31e9, _VGG),
    "vgg16": (138_357_544, 15.47e9, _VGG),
    "vgg19": (143_667_240, 19.63e9, _VGG),
    "vgg11_bn": (132_868_840, 7.61e9, "torchvision", _BN),
    "vgg13_bn": (133_053_736, 11.31e9, "torchvision", _BN),
    "vgg16_bn": (138_365_992, 15.47e9, "torchvision", _BN),
    "vgg19_bn": (143_678_248, 19.63e9, "torchvision", _BN),
    "googlenet": (6_998_552, 1.502e9, _GOOGLENET, {"macs_errata": 118_013_952 - 34_000_000}),
    "resnet18": (11_689_512, 1.8e9, _HE),
    "resnet34": (21_797_672, 3.6e9, _HE),
    "resnet50": (25_557_032, 3.86e9, _HU),
    "resnet101": (44_549_160, 7.58e9, _HU),
    "resnet152": (60_192_808, 11.30e9, _HU),
    "resnext50_32x4d": (25_028_904, 4.23e9, "torchvision (Xie et al. 2017: 4.2 G)"),
    "resnext101_32x8d": (88_791_336, 16.41e9, "torchvision"),
    "se_resnet50": (28_088_024, 3.87e9, _SE),
    "se_resnet101": (49_326_872, 7.60e9, _SE),
    "se_resnet152": (66_821_848, 11.32e9, _SE),
    "se_resnext50_32x4d": (27_559_896, 4.25e9, _SE),
    "densenet121": (7_978_856, 2.83e9, _DENSENET),
    "densenet169": (14_149_480, 3.36e9, _DENSENET),
    "densenet201": (20_013_928, 4.29e9, _DENSENET),
    "mobilenet_v1": (4.2e6, 569e6, "Howard et al. 2017, Table 8 (1.0 MobileNet-224)"),
    "mobilenet_v2": (3.4e6, 300e6, "Sandler et al. 2018, Table 4"),
    "mobilenet_v3_large": (5.4e6, 219e6, "Howard et al. 2019, Table 3"),
    "mobilenet_v3_small": (2.5e6, 56e6, "Howard et al. 2019, Table 3"),
    "xception": (22_855_952, 8.4e9, _XCEPTION),
    "inception_resnet_v2": (55.8e6, 13.2e9, _INCEPTION_RESNET),
}
PUBLISHED = {
    name: {"params": row[0], "macs": row[1], "source": row[2], **(row[3] if len(row) > 3 else {})}
    for name, row in _FIGURES.items()
}

# ---------------------------------------------------------------- classification

_classifier("lenet5", "lenet:build_lenet5")
_classifier("alexnet", "alexnet:build_alexnet")

_VGG_CONVS = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}
for _depth, _convs in _VGG_CONVS.items():
    _weights = (f"VGG{_depth}", "vgg:transfer") if _depth in (16, 19) else None
    _classifier(f"vgg{_depth}", "vgg:build_vgg", _weights, convs_per_stage=_convs)
    _classifier(f"vgg{_depth}_bn", "vgg:build_vgg", convs_per_stage=_convs, batch_norm=True)

_classifier("googlenet", "googlenet:build_googlenet")

_DEPTHS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
_RESNEXT = {"groups": 32, "width_per_group": 4, "stride_in": "3x3"}
_SE_RATIO = {"se_ratio": 1 / 16}
_RESNETS = {
    "resnet18": {"block": "basic", "depths": _DEPTHS[18]},
    "resnet34": {"block": "basic", "depths": _DEPTHS[34]},
    "resnet50": {"depths": _DEPTHS[50]},
    "resnet101": {"depths": _DEPTHS[101]},
    "resnet152": {"depths": _DEPTHS[152]},
    "resnext50_32x4d": {"depths": _DEPTHS[50], **_RESNEXT},
    "resnext101_32x8d": {"depths": _DEPTHS[101], **_RESNEXT, "width_per_group": 8},
    "se_resnet50": {"depths": _DEPTHS[50], **_SE_RATIO},
    "se_resnet101": {"depths": _DEPTHS[101], **_SE_RATIO},
    "se_resnet152": {"depths": _DEPTHS[152], **_SE_RATIO},
    "se_resnext50_32x4d": {"depths": _DEPTHS[50], **_RESNEXT, **_SE_RATIO},
}
for _name, _architecture in _RESNETS.items():
    _weights = (
        (f"ResNet{_name[6:]}", "transfer:transfer_by_name") if _name in ("resnet50", "resnet101", "resnet152") else None
    )
    _classifier(_name, "resnet:build_resnet", _weights, **_architecture)

for _depth, _blocks in {121: (6, 12, 24, 16), 169: (6, 12, 32, 32), 201: (6, 12, 48, 32)}.items():
    _classifier(
        f"densenet{_depth}", "densenet:build_densenet", (f"DenseNet{_depth}", "densenet:transfer"), blocks=_blocks
    )

_classifier("mobilenet_v1", "mobilenet:build_mobilenet_v1", ("MobileNet", "mobilenet:transfer_mobilenet_v1"), alpha=1.0)
_classifier(
    "mobilenet_v2", "mobilenet:build_mobilenet_v2", ("MobileNetV2", "mobilenet:transfer_mobilenet_v2"), alpha=1.0
)
for _size, _last in (("large", 1280), ("small", 1024)):
    _classifier(
        f"mobilenet_v3_{_size}",
        "mobilenet_v3:build_mobilenet_v3",
        (f"MobileNetV3{_size.title()}", f"mobilenet_v3:transfer_{_size}"),
        blocks=_size,
        last_channels=_last,
    )
_classifier("xception", "xception:build_xception", ("Xception", "xception:transfer_xception"))
_IRV2 = ("InceptionResNetV2", "inception_resnet_v2:transfer_inception_resnet_v2")
_classifier("inception_resnet_v2", "inception_resnet_v2:build_inception_resnet_v2", _IRV2)
_classifier("small_cnn", "small_cnn:build_small_cnn")

# Published figures at other widths and resolutions: (model, overrides, params, multiply-adds, source).
PUBLISHED_VARIANTS = tuple(
    dict(zip(("model", "overrides", "params", "macs", "source"), row))
    for row in (
        ("mobilenet_v1", {"alpha": 0.75}, 2.6e6, 325e6, "Howard et al. 2017, Table 6"),
        ("mobilenet_v1", {"alpha": 0.5}, 1.3e6, 149e6, "Howard et al. 2017, Table 6"),
        ("mobilenet_v1", {"alpha": 0.25}, 0.5e6, 41e6, "Howard et al. 2017, Table 6"),
        ("mobilenet_v1", {"input_shape": (192, 192, 3)}, 4.2e6, 418e6, "Howard et al. 2017, Table 7"),
        ("mobilenet_v1", {"input_shape": (160, 160, 3)}, 4.2e6, 290e6, "Howard et al. 2017, Table 7"),
        ("mobilenet_v1", {"input_shape": (128, 128, 3)}, 4.2e6, 186e6, "Howard et al. 2017, Table 7"),
        ("mobilenet_v2", {"alpha": 1.4}, 6.9e6, 585e6, "Sandler et al. 2018, Table 4"),
        ("mobilenet_v3_large", {"alpha": 0.75}, 4.0e6, 155e6, "Howard et al. 2019, Table 3"),
        ("mobilenet_v3_small", {"alpha": 0.75}, 2.0e6, 44e6, "Howard et al. 2019, Table 3"),
    )
)

# ---------------------------------------------------------------- segmentation

_model("deeplabv3", "segmentation", "deeplab:build_deeplab", decoder=False)
_model("deeplabv3plus", "segmentation", "deeplab:build_deeplab", decoder=True)
_model("fcn32s", "segmentation", "fcn:build_fcn", skips=())
_model("fcn16s", "segmentation", "fcn:build_fcn", skips=(16,))
_model("fcn8s", "segmentation", "fcn:build_fcn", skips=(16, 8))
_model("segnet", "segmentation", "segnet:build_segnet", unpooling="switches")
_model("segnet_builtin", "segmentation", "segnet:build_segnet", unpooling="builtin")
_model("unet", "segmentation", "unet:build_unet")
_model("unet_valid", "segmentation", "unet:build_unet", padding="valid", input_shape=(572, 572, 1), norm=None)
# Any backbone with any decoder: create_model("segmenter", backbone="resnet50", decoder="unet").
_model("segmenter", "segmentation", "segmenter:build_segmenter")

# ---------------------------------------------------------------- self-supervised methods

for _name, _method_builder in {
    "rotnet": "pretext:build_rotnet",
    "jigsaw": "pretext:build_jigsaw",
    "colorization": "pretext:build_colorization",
    "cpc": "contrastive:build_cpc",
    "simclr": "contrastive:build_simclr",
    "moco_v2": "contrastive:build_moco_v2",
    "byol": "negative_free:build_byol",
    "barlow_twins": "negative_free:build_barlow_twins",
    "simsiam": "negative_free:build_simsiam",
    "swav": "clustering:build_swav",
}.items():
    _method(_name, _method_builder)

CATALOG = {entry.name: entry for entry in _ENTRIES}


def published_figures():
    """``{model name: published figures}`` for every catalog model that has them."""
    return {name: entry.published for name, entry in CATALOG.items() if entry.published}
