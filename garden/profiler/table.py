"""The lecture's per-layer cost table for any Keras functional model.

For each layer: input and output shape, filters, kernel, stride, padding, dilation, activation
memory (fp32 output elements x 4 / 1024 KB), parameters (trainable and non-trainable apart),
multiply-adds and receptive field. Multiply-adds count the weighted layers (convolutions, dense)
as the published figures do: output elements x ``C_in / groups`` x ``K x K`` for a convolution.
Pooling, normalization, activations, merges and resizing have no multiply-adds by that convention.

Explicit ``ZeroPadding2D`` layers that only feed convolutions or pooling are folded into the row of
the layer they pad, so the table reads ``pad 2`` as the lecture writes it.
"""

import math
from dataclasses import asdict, dataclass, field

import keras
from keras import layers as kl

from garden.layers.upsampling import MaxPoolingWithSwitches, ResizeLike
from garden.profiler.arithmetic import describe_uneven

WINDOWED = (kl.Conv2D, kl.DepthwiseConv2D, kl.SeparableConv2D, kl.MaxPooling2D, kl.AveragePooling2D)
GLOBAL = (kl.GlobalAveragePooling2D, kl.GlobalMaxPooling2D, kl.Flatten)


@dataclass
class LayerCost:
    name: str
    type: str
    input_shape: list
    output_shape: list
    filters: int | None = None
    kernel: list | None = None
    stride: list | None = None
    padding: object = None
    dilation: list | None = None
    groups: int | None = None
    memory_kb: float = 0.0
    params: int = 0
    trainable_params: int = 0
    non_trainable_params: int = 0
    macs: int = 0
    receptive_field: object = None
    notes: list = field(default_factory=list)


@dataclass
class ModelProfile:
    model: str
    input_shape: list
    layers: list

    @property
    def total(self):
        return {
            "params": sum(row.params for row in self.layers),
            "trainable_params": sum(row.trainable_params for row in self.layers),
            "non_trainable_params": sum(row.non_trainable_params for row in self.layers),
            "macs": sum(row.macs for row in self.layers),
            "memory_kb": round(sum(row.memory_kb for row in self.layers), 3),
        }

    @property
    def notes(self):
        return [f"{row.name}: {note}" for row in self.layers for note in row.notes]

    def to_dict(self):
        return {
            "model": self.model,
            "input_shape": self.input_shape,
            "layers": [asdict(row) for row in self.layers],
            "total": self.total,
        }


# ---------------------------------------------------------------- walking the graph


def profile(model_or_name, input_shape=None):
    """Profile a model or a registered model name at ``input_shape`` (H, W, C).

    >>> garden.profile("alexnet", input_shape=(227, 227, 3)).total["params"]
    61100840
    """
    if isinstance(model_or_name, str):
        from garden.registry import create_model

        overrides = {} if input_shape is None else {"input_shape": tuple(input_shape)}
        model = create_model(model_or_name, **overrides)
    else:
        model = model_or_name
        if input_shape is not None and tuple(model.input_shape[1:]) != tuple(input_shape):
            model = with_input_shape(model, input_shape)
    rows = []
    _walk(model, {}, rows, seen=set())
    return ModelProfile(model.name, list(model.input_shape[1:]), rows)


def with_input_shape(model, input_shape):
    """The same functional architecture rebuilt for another input shape (weights are not copied)."""
    config = model.get_config()
    input_layers = [layer for layer in config["layers"] if layer["class_name"] == "InputLayer"]
    if len(input_layers) != 1:
        raise ValueError(f"cannot change the input shape of {model.name}: it has {len(input_layers)} inputs")
    input_layers[0]["config"]["batch_shape"] = (None, *input_shape)
    return keras.Model.from_config(config)


def _nodes(model):
    """The model's nodes from inputs to outputs."""
    for depth in sorted(model._nodes_by_depth, reverse=True):
        yield from model._nodes_by_depth[depth]


def _walk(model, fields, rows, seen, prefix=""):
    """Append one row per layer call of ``model`` to ``rows``; ``fields`` maps tensors to (rf, jump)."""
    consumers = {}
    for node in _nodes(model):
        for tensor in node.input_tensors:
            consumers.setdefault(id(tensor), []).append(node.operation)
    folded = {}  # id(padded tensor) -> (unpadded tensor, padding)
    for node in _nodes(model):
        layer = node.operation
        inputs, outputs = list(node.input_tensors), list(node.outputs)
        for tensor in inputs:
            fields.setdefault(id(tensor), (1.0, 1.0, 1.0, 1.0))
        if isinstance(layer, kl.InputLayer):
            if not prefix:
                rows.append(_row(prefix, layer, [], outputs, seen))
            continue
        if isinstance(layer, keras.Model):
            _walk_nested(layer, inputs, outputs, fields, rows, seen, prefix)
            continue
        if isinstance(layer, kl.ZeroPadding2D) and all(
            isinstance(c, WINDOWED) for c in consumers.get(id(outputs[0]), [None])
        ):
            folded[id(outputs[0])] = (inputs[0], layer.padding)
            fields[id(outputs[0])] = fields[id(inputs[0])]
            continue
        padding = None
        if len(inputs) == 1 and id(inputs[0]) in folded:
            inputs[0], padding = folded[id(inputs[0])]
        row = _row(prefix, layer, inputs, outputs, seen, explicit_padding=padding)
        field_out = _receptive_field(layer, inputs, outputs, fields)
        for tensor in outputs:
            fields[id(tensor)] = field_out
        row.receptive_field = _as_int_field(field_out)
        rows.append(row)


def _walk_nested(model, inputs, outputs, fields, rows, seen, prefix):
    inner_shape = tuple(model.inputs[0].shape[1:])
    outer_shape = tuple(inputs[0].shape[1:])
    if len(model.inputs) == 1 and inner_shape != outer_shape:
        rebuilt = with_input_shape(model, outer_shape)
        rebuilt.set_weights(model.get_weights())
        model = rebuilt
    for outer, inner in zip(inputs, model.inputs):
        fields[id(inner)] = fields[id(outer)]
    _walk(model, fields, rows, seen, prefix=f"{prefix}{model.name}/")
    for outer, inner in zip(outputs, keras.tree.flatten(model.outputs)):
        fields[id(outer)] = fields[id(inner)]


# ---------------------------------------------------------------- one row


def _shape(tensor):
    return [int(d) if d is not None else None for d in tensor.shape[1:]]


def _elements(tensor):
    return math.prod(d or 0 for d in tensor.shape[1:])


def _row(prefix, layer, inputs, outputs, seen, explicit_padding=None):
    shapes_in = [_shape(t) for t in inputs]
    row = LayerCost(
        name=prefix + layer.name,
        type=type(layer).__name__,
        input_shape=shapes_in[0] if len(shapes_in) == 1 else shapes_in,
        output_shape=_shape(outputs[0]) if len(outputs) == 1 else [_shape(t) for t in outputs],
        memory_kb=round(sum(_elements(t) for t in outputs) * 4 / 1024, 3),
    )
    if id(layer) not in seen:  # a shared layer's weights count once
        seen.add(id(layer))
        row.trainable_params = sum(math.prod(w.shape) for w in layer.trainable_weights)
        row.non_trainable_params = sum(math.prod(w.shape) for w in layer.non_trainable_weights)
        row.params = row.trainable_params + row.non_trainable_params
    _describe_window(row, layer, inputs, outputs, explicit_padding)
    row.macs = _macs(layer, inputs, outputs)
    return row


def _describe_window(row, layer, inputs, outputs, explicit_padding):
    if isinstance(layer, (kl.Conv2D, kl.SeparableConv2D, kl.Conv2DTranspose)):
        row.filters = layer.filters
    elif isinstance(layer, kl.DepthwiseConv2D):
        row.filters = outputs[0].shape[-1]
    elif isinstance(layer, kl.Dense):
        row.filters = layer.units
    window = _window(layer)
    if window is None:
        return
    row.kernel, row.stride, row.dilation = (list(pair) for pair in window)
    row.groups = getattr(layer, "groups", None)
    padding = getattr(layer, "padding", "valid")
    row.padding = padding if explicit_padding is None else _padding_amount(explicit_padding)
    if padding == "valid" and isinstance(layer, WINDOWED):
        pads = _padding_pairs(explicit_padding)
        for axis in (0, 1):
            size = inputs[0].shape[1 + axis]
            extent = row.dilation[axis] * (row.kernel[axis] - 1) + 1
            total = sum(pads[axis])
            if size is not None and (size + total - extent) % row.stride[axis]:
                note = describe_uneven(size, extent, row.stride[axis], total)
                if note not in row.notes:
                    row.notes.append(note)


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _window(layer):
    """``(kernel, strides, dilation)`` as pairs for a layer that slides a window, else None.

    Pooling that records its switches slides a non-overlapping window: its stride is its size.
    """
    kernel = getattr(layer, "kernel_size", None) or getattr(layer, "pool_size", None)
    strides = getattr(layer, "strides", None)
    if kernel is not None and strides is None and isinstance(layer, MaxPoolingWithSwitches):
        strides = kernel
    if kernel is None or strides is None:
        return None
    return _pair(kernel), _pair(strides), _pair(getattr(layer, "dilation_rate", 1))


def _padding_pairs(padding):
    if padding is None:
        return ((0, 0), (0, 0))
    return tuple(tuple(pair) for pair in padding)


def _padding_amount(padding):
    pairs = _padding_pairs(padding)
    values = {value for pair in pairs for value in pair}
    return values.pop() if len(values) == 1 else [list(pair) for pair in pairs]


def _macs(layer, inputs, outputs):
    out = outputs[0].shape
    if isinstance(layer, kl.Conv2D):
        kh, kw = layer.kernel_size
        return _elements(outputs[0]) * (inputs[0].shape[-1] // layer.groups) * kh * kw
    if isinstance(layer, kl.DepthwiseConv2D):
        kh, kw = layer.kernel_size
        return _elements(outputs[0]) * kh * kw
    if isinstance(layer, kl.SeparableConv2D):
        kh, kw = layer.kernel_size
        spatial = out[1] * out[2]
        middle = inputs[0].shape[-1] * layer.depth_multiplier
        return spatial * middle * kh * kw + spatial * middle * layer.filters
    if isinstance(layer, kl.Conv2DTranspose):
        kh, kw = layer.kernel_size
        return _elements(inputs[0]) * kh * kw * layer.filters
    if isinstance(layer, kl.Dense):
        return _elements(inputs[0]) * layer.units
    return 0


# ---------------------------------------------------------------- receptive field


def _receptive_field(layer, inputs, outputs, fields):
    """(rf_h, rf_w, jump_h, jump_w) of the layer's output, in input pixels."""
    known = [fields[id(t)] for t in inputs]
    rf_h = max(f[0] for f in known)
    rf_w = max(f[1] for f in known)
    jump_h = min(f[2] for f in known)
    jump_w = min(f[3] for f in known)
    if isinstance(layer, (kl.ZeroPadding2D, kl.Cropping2D)):
        return rf_h, rf_w, jump_h, jump_w
    if isinstance(layer, kl.Conv2DTranspose):
        (kh, kw), (sh, sw) = layer.kernel_size, layer.strides
        return (
            rf_h + (math.ceil(kh / sh) - 1) * jump_h,
            rf_w + (math.ceil(kw / sw) - 1) * jump_w,
            jump_h / sh,
            jump_w / sw,
        )
    window = _window(layer)
    if window is not None:
        (kh, kw), (sh, sw), (dh, dw) = window
        return rf_h + dh * (kh - 1) * jump_h, rf_w + dw * (kw - 1) * jump_w, jump_h * sh, jump_w * sw
    if isinstance(layer, GLOBAL) or (isinstance(layer, kl.Dense) and len(inputs[0].shape) > 2):
        height, width = inputs[0].shape[1:3] if len(inputs[0].shape) == 4 else (1, 1)
        return rf_h + ((height or 1) - 1) * jump_h, rf_w + ((width or 1) - 1) * jump_w, jump_h, jump_w
    if isinstance(layer, ResizeLike):
        return rf_h, rf_w, fields[id(inputs[1])][2], fields[id(inputs[1])][3]
    scale = _spatial_scale(inputs[0], outputs[0])
    return rf_h, rf_w, jump_h * scale[0], jump_w * scale[1]


def _spatial_scale(tensor_in, tensor_out):
    """Input over output size per axis, for layers that resize (upsampling, unpooling)."""
    if len(tensor_in.shape) != 4 or len(tensor_out.shape) != 4:
        return 1.0, 1.0
    scales = []
    for axis in (1, 2):
        size_in, size_out = tensor_in.shape[axis], tensor_out.shape[axis]
        scales.append(size_in / size_out if size_in and size_out else 1.0)
    return tuple(scales)


def _as_int_field(field_out):
    rf_h, rf_w = math.ceil(field_out[0]), math.ceil(field_out[1])
    return rf_h if rf_h == rf_w else [rf_h, rf_w]
