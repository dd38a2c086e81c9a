"""Inception-ResNet-v2: Inception modules whose outputs are added, scaled down, to a residual path.

Szegedy, Ioffe, Vanhoucke & Alemi, "Inception-v4, Inception-ResNet and the Impact of Residual
Connections on Learning" (AAAI 2017), Figures 15-19: 10 Inception-ResNet-A (35x35), 20 -B (17x17)
and 10 -C (8x8) blocks separated by two reduction modules. Each block concatenates its branches,
projects them with a linear 1x1 convolution back to the input width and adds them scaled by
0.17, 0.1 or 0.2 (Section 3.3: scaling the residuals stabilizes training).

The layout is that of the released checkpoint, which ``keras.applications.InceptionResNetV2``
follows and the paper's figures differ from in places: the stem is Inception-v3's plus a 35x35
Inception module (``mixed_5b``) instead of Figure 3's, the branch widths are the checkpoint's, and
the last C block is unscaled and has no ReLU. Batch norm has no learned scale (a ReLU follows, so
the next convolution absorbs it). Parameter counts equal Keras's (55,873,736 with the top).
"""

import re

from keras import layers

from garden.models._common import classifier
from garden.models.transfer import copy_pairs

# A branch is a sequence of operations: a convolution (filters, kernel[, strides, padding]) or a
# pool ("avg" | "max", size, strides, padding). Convolutions default to stride 1, "same".
STEM = (
    (32, 3, 2, "valid"),
    (32, 3, 1, "valid"),
    (64, 3),
    ("max", 3, 2, "valid"),
    (80, 1, 1, "valid"),
    (192, 3, 1, "valid"),
    ("max", 3, 2, "valid"),
)
MIXED_5B = (((96, 1),), ((48, 1), (64, 5)), ((64, 1), (96, 3), (96, 3)), (("avg", 3, 1, "same"), (64, 1)))
REDUCTION_A = (((384, 3, 2, "valid"),), ((256, 1), (256, 3), (384, 3, 2, "valid")), (("max", 3, 2, "valid"),))
REDUCTION_B = (
    ((256, 1), (384, 3, 2, "valid")),
    ((256, 1), (288, 3, 2, "valid")),
    ((256, 1), (288, 3), (320, 3, 2, "valid")),
    (("max", 3, 2, "valid"),),
)
BLOCK_A = (((32, 1),), ((32, 1), (32, 3)), ((32, 1), (48, 3), (64, 3)))
BLOCK_B = (((192, 1),), ((128, 1), (160, (1, 7)), (192, (7, 1))))
BLOCK_C = (((192, 1),), ((192, 1), (224, (1, 3)), (256, (3, 1))))

# (name, branches, repeats, residual scale, last repeat unscaled and linear); repeats None: one
# plain Inception module, halving the grid unless it is mixed_5b
STAGES = (
    ("mixed_5b", MIXED_5B, None, None, False),
    ("block35", BLOCK_A, 10, 0.17, False),
    ("mixed_6a", REDUCTION_A, None, None, False),
    ("block17", BLOCK_B, 20, 0.1, False),
    ("mixed_7a", REDUCTION_B, None, None, False),
    ("block8", BLOCK_C, 10, 0.2, True),
)
FINAL_FILTERS = 1536
MIN_SIZE = 75  # the unpadded stem and reductions leave 1x1 at 75x75


def conv_bn(x, filters, kernel, strides=1, padding="same", name="conv"):
    """Conv2D (no bias) -> batch norm without scale -> ReLU: ``{name}_conv``, ``_bn``, ``_act``."""
    x = layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(scale=False, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_act")(x)


def _apply(x, operations, name):
    """One branch: its pools and convolutions in order, named ``{name}_{index}``."""
    for index, op in enumerate(operations, start=1):
        if op[0] in ("avg", "max"):
            pool = layers.AveragePooling2D if op[0] == "avg" else layers.MaxPooling2D
            x = pool(op[1], op[2], padding=op[3], name=f"{name}_{index}_pool")(x)
        else:
            x = conv_bn(x, *op, name=f"{name}_{index}")
    return x


def inception_module(x, branches, name):
    """Parallel branches concatenated along channels: ``{name}_branch{b}_{i}_*`` and ``{name}_concat``."""
    outputs = [_apply(x, branch, f"{name}_branch{b}") for b, branch in enumerate(branches)]
    return layers.Concatenate(name=f"{name}_concat")(outputs)


def inception_resnet_block(x, branches, scale, relu=True, name="block"):
    """``x + scale * W(concat(branches(x)))`` with a linear 1x1 ``W`` (``{name}_up``), then ReLU."""
    mixed = inception_module(x, branches, name)
    up = layers.Conv2D(x.shape[-1], 1, name=f"{name}_up")(mixed)
    up = layers.Rescaling(scale, name=f"{name}_scale")(up)
    x = layers.Add(name=f"{name}_add")([x, up])
    return layers.Activation("relu", name=f"{name}_act")(x) if relu else x


@classifier(name="inception_resnet_v2", input_shape=(299, 299, 3))
def build_inception_resnet_v2(inputs):
    """Inception-ResNet-v2 (Szegedy et al., 2017): scaled residual Inception blocks, 35/17/8 grids."""
    if min(size or MIN_SIZE for size in inputs.shape[1:3]) < MIN_SIZE:
        raise ValueError(f"input size must be at least {MIN_SIZE}x{MIN_SIZE}, got {inputs.shape[1]}x{inputs.shape[2]}")
    x, features, stride = inputs, {}, 1
    for index, op in enumerate(STEM, start=1):
        if op[0] == "max":
            features[stride] = x
            x = layers.MaxPooling2D(op[1], op[2], padding=op[3], name=f"stem{index}_pool")(x)
        else:
            x = conv_bn(x, *op, name=f"stem{index}")
        stride *= op[2] if len(op) > 2 else 1
    for stage, branches, repeats, scale, plain_last in STAGES:
        if repeats is None:
            if stage != "mixed_5b":
                features[stride] = x
                stride *= 2
            x = inception_module(x, branches, stage)
            continue
        for block in range(1, repeats + 1):
            plain = plain_last and block == repeats
            x = inception_resnet_block(x, branches, 1.0 if plain else scale, not plain, name=f"{stage}_{block}")
    features[stride] = conv_bn(x, FINAL_FILTERS, 1, name="final")
    return features


def _creation_order():
    """Our convolutions in the order Keras creates its layers, each with Keras's name where it has one."""
    order = [(f"stem{index}", None) for index, op in enumerate(STEM, start=1) if op[0] != "max"]
    for stage, branches, repeats, _, _ in STAGES:
        prefixes = [stage] if repeats is None else [f"{stage}_{block}" for block in range(1, repeats + 1)]
        for prefix in prefixes:
            for b, branch in enumerate(branches):
                convolutions = [i for i, op in enumerate(branch, start=1) if op[0] not in ("avg", "max")]
                order += [(f"{prefix}_branch{b}_{i}", None) for i in convolutions]
            if repeats is not None:
                order.append((f"{prefix}_up", f"{prefix}_conv"))
    return [*order, ("final", "conv_7b")]


def _unnamed_convolutions(reference):
    """Keras's auto-named ``conv2d``, ``conv2d_1``, ... in creation order, each with the norm after it."""
    norm_after = {}
    for layer in reference.layers:
        if isinstance(layer, layers.BatchNormalization):
            norm_after[layer.input._keras_history.operation.name] = layer.name
    unnamed = [layer.name for layer in reference.layers if re.fullmatch(r"conv2d(_\d+)?", layer.name)]
    unnamed.sort(key=lambda name: int(name.rpartition("_")[2]) if "_" in name else 0)
    return [(name, norm_after[name]) for name in unnamed]


def transfer_inception_resnet_v2(model, reference):
    """Weights of ``keras.applications.InceptionResNetV2`` into ``inception_resnet_v2``."""
    unnamed, pairs = iter(_unnamed_convolutions(reference)), []
    for ours, theirs in _creation_order():
        if ours.endswith("_up"):
            pairs.append((ours, theirs))
            continue
        conv, norm = next(unnamed) if theirs is None else (theirs, f"{theirs}_bn")
        pairs += [(f"{ours}_conv", conv), (f"{ours}_bn", norm)]
    return copy_pairs(model, reference, [*pairs, ("predictions", "predictions")])
