"""tensorflow-model-optimization in its own process: ``python -m deploy._tfmot_worker WORKDIR``.

tfmot supports only tf_keras (legacy Keras 2) models, and importing it switches the process to
legacy Keras, so this module never runs inside a Keras 3 process. The parent (``deploy.optimize``)
leaves in WORKDIR the Keras 3 model's config (``spec.json``), its weights layer by layer
(``weights.npz``), data (``data.npz``: training inputs/targets and reference inputs/outputs) and
``job.json``. Here a tf_keras twin is built layer by layer with identical weights, checked against
the reference outputs, wrapped for QAT, pruning or clustering, fine-tuned briefly, stripped and
converted to TFLite; ``result.json`` says what happened.

Techniques: Jacob et al., "Quantization and Training of Neural Networks for Efficient
Integer-Arithmetic-Only Inference" (CVPR 2018); Zhu & Gupta, "To prune, or not to prune" (2017);
Han et al., "Deep Compression" (ICLR 2016) for weight sharing by clustering.
"""

import json
import os
import sys
import time
from pathlib import Path

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# (after the environment above: tf_keras must be chosen before TensorFlow is imported)
import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras

from deploy.quantization import CALIBRATED_QUANTS, tflite_converter

L = tf_keras.layers


# ---------------------------------------------------------------- tf_keras layers for garden's own


class HardSwish(L.Layer):
    """``x * relu6(x + 3) / 6`` (MobileNetV3); tf_keras has no such activation."""

    def call(self, x):
        return x * tf.nn.relu6(x + 3.0) * (1.0 / 6.0)


class HardSigmoid(L.Layer):
    """``relu6(x + 3) / 6``, Keras 3's ``hard_sigmoid`` (tf_keras's differs: slope 0.2)."""

    def call(self, x):
        return tf.nn.relu6(x + 3.0) * (1.0 / 6.0)


class ResizeLike(L.Layer):
    """garden.layers.ResizeLike: resize ``inputs[0]`` to the spatial size of ``inputs[1]``."""

    def __init__(self, interpolation="bilinear", **kwargs):
        super().__init__(**kwargs)
        self.interpolation = interpolation

    def call(self, inputs):
        x, reference = inputs
        return tf.image.resize(x, tf.shape(reference)[1:3], method=self.interpolation)

    def get_config(self):
        return {**super().get_config(), "interpolation": self.interpolation}


CUSTOM = {"HardSwish": HardSwish, "HardSigmoid": HardSigmoid, "ResizeLike": ResizeLike}

_ARGUMENTS = {  # Keras 3 config keys that mean the same in tf_keras, per layer
    "Conv2D": ("filters", "kernel_size", "strides", "padding", "dilation_rate", "groups", "use_bias", "activation"),
    "DepthwiseConv2D": (
        "kernel_size",
        "strides",
        "padding",
        "depth_multiplier",
        "dilation_rate",
        "use_bias",
        "activation",
    ),
    "SeparableConv2D": (
        "filters",
        "kernel_size",
        "strides",
        "padding",
        "dilation_rate",
        "depth_multiplier",
        "use_bias",
        "activation",
    ),
    "Conv2DTranspose": (
        "filters",
        "kernel_size",
        "strides",
        "padding",
        "output_padding",
        "dilation_rate",
        "use_bias",
        "activation",
    ),
    "Dense": ("units", "activation", "use_bias"),
    "BatchNormalization": ("axis", "momentum", "epsilon", "center", "scale"),
    "ReLU": ("max_value", "negative_slope", "threshold"),
    "Activation": ("activation",),
    "Add": (),
    "Multiply": (),
    "Subtract": (),
    "Average": (),
    "Concatenate": ("axis",),
    "GlobalAveragePooling2D": ("keepdims",),
    "GlobalMaxPooling2D": ("keepdims",),
    "AveragePooling2D": ("pool_size", "strides", "padding"),
    "MaxPooling2D": ("pool_size", "strides", "padding"),
    "ZeroPadding2D": ("padding",),
    "Dropout": ("rate",),
    "SpatialDropout2D": ("rate",),
    "Flatten": (),
    "Reshape": ("target_shape",),
    "UpSampling2D": ("size", "interpolation"),
    "Rescaling": ("scale", "offset"),
    "Resizing": ("height", "width", "interpolation"),
    "Identity": (),
    "ResizeLike": ("interpolation",),
}


def make_layer(layer_config):
    """The tf_keras counterpart of one Keras 3 layer config."""
    kind, config = layer_config["class_name"], layer_config["config"]
    if kind == "Activation" and config["activation"] in ("hard_swish", "hard_silu"):
        return HardSwish(name=config["name"])
    if kind == "Activation" and config["activation"] == "hard_sigmoid":
        return HardSigmoid(name=config["name"])
    if kind not in _ARGUMENTS:
        raise SystemExit(f"layer {config['name']!r} of type {kind} has no tf_keras twin in deploy._tfmot_worker")
    arguments = {key: config[key] for key in _ARGUMENTS[kind] if key in config}
    for key in ("activation",):
        if isinstance(arguments.get(key), dict):
            raise SystemExit(f"layer {config['name']!r}: custom activation {arguments[key]} has no tf_keras twin")
    if kind == "Identity":
        return L.Activation("linear", name=config["name"])
    cls = CUSTOM.get(kind) or getattr(L, kind)
    return cls(name=config["name"], **arguments)


def build_twin(spec, weights):
    """A flat tf_keras functional model with the Keras 3 model's graph, layer names and weights.

    Nested models (a segmentation model's backbone) are built inline, layer by layer, because
    tfmot cannot quantize a model inside a model.
    """
    layers = {}
    inputs, outputs = _graph(spec, None, layers)
    twin = tf_keras.Model(
        inputs[0] if len(inputs) == 1 else inputs, outputs[0] if len(outputs) == 1 else outputs, name=spec["name"]
    )
    for name, layer in layers.items():
        count = len(layer.weights)
        if count:
            layer.set_weights([weights[f"{name}:{i}"] for i in range(count)])
    return twin


def _graph(spec, inputs, layers):
    """Build ``spec``'s layers on ``inputs`` (new ``Input``s when None): ``(inputs, outputs)``."""
    tensors = {}
    input_names = [ref[0] for ref in _refs(spec["input_layers"])]
    created = []
    for layer_config in spec["layers"]:
        name = layer_config["config"]["name"]
        kind = layer_config["class_name"]
        if kind == "InputLayer":
            if inputs is None:
                shape = layer_config["config"].get("batch_shape") or layer_config["config"]["batch_input_shape"]
                tensor = tf_keras.Input(shape=tuple(shape[1:]), name=name)
            else:
                tensor = inputs[input_names.index(name)]
            tensors[(name, 0, 0)] = tensor
            created.append(tensor)
            continue
        for node_index, node in enumerate(layer_config["inbound_nodes"]):
            args = [_resolve(a, tensors) for a in node["args"]]
            if kind in ("Functional", "Model"):
                _, outputs = _graph(layer_config["config"], tf.nest.flatten(args), layers)
            else:
                if name not in layers:
                    layers[name] = make_layer(layer_config)
                kwargs = {
                    k: _resolve(v, tensors) for k, v in node.get("kwargs", {}).items() if k not in ("training", "mask")
                }
                outputs = layers[name](*args, **kwargs)
            for index, tensor in enumerate(outputs if isinstance(outputs, (list, tuple)) else [outputs]):
                tensors[(name, node_index, index)] = tensor
    outputs = [tensors[tuple(ref)] for ref in _refs(spec["output_layers"])]
    return (created if inputs is None else inputs), outputs


def _refs(value):
    """``output_layers`` is one ``[name, node, index]``, a list of them, or a dict (flattened by sorted key)."""
    if isinstance(value, dict):
        return [value[key] for key in sorted(value)]
    if value and isinstance(value[0], str):
        return [value]
    return value


def _resolve(value, tensors):
    if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
        return tensors[tuple(value["config"]["keras_history"])]
    if isinstance(value, list):
        return [_resolve(v, tensors) for v in value]
    return value


# ---------------------------------------------------------------- the three techniques


class OutputQuantizeConfig(tfmot.quantization.keras.QuantizeConfig):
    """For layers tfmot does not know (hard-swish, resize, multiply): quantize their output only."""

    def get_weights_and_quantizers(self, layer):
        return []

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_weights(self, layer, quantize_weights):
        pass

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return [
            tfmot.quantization.keras.quantizers.MovingAverageQuantizer(
                num_bits=8, per_axis=False, symmetric=False, narrow_range=False
            )
        ]

    def get_config(self):
        return {}


def _scope():
    return {"OutputQuantizeConfig": OutputQuantizeConfig, **CUSTOM}


def quantization_aware(model):
    """Annotate every layer (unknown ones quantize their output) and apply fake quantization."""
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_registry as registry_module,
    )

    registry = registry_module.Default8BitQuantizeRegistry()
    annotate = tfmot.quantization.keras.quantize_annotate_layer

    def clone(layer):
        fresh = layer.__class__.from_config(layer.get_config())
        if isinstance(layer, L.BatchNormalization) or registry.supports(layer):
            if isinstance(layer, L.Activation) and getattr(layer.activation, "__name__", "") == "hard_sigmoid":
                return annotate(fresh, OutputQuantizeConfig())
            return annotate(fresh)
        return annotate(fresh, OutputQuantizeConfig())

    with tfmot.quantization.keras.quantize_scope(_scope()):
        annotated = tf_keras.models.clone_model(model, clone_function=clone)
        annotated.set_weights(model.get_weights())
        return tfmot.quantization.keras.quantize_apply(annotated)


def _is_pointwise_or_dense(layer):
    return isinstance(layer, L.Dense) or (
        isinstance(layer, L.Conv2D) and tuple(layer.kernel_size) == (1, 1) and not isinstance(layer, L.Conv2DTranspose)
    )


def pruned(model, sparsity, steps):
    """Magnitude pruning of the 1x1 convolutions and dense layers, ramped to ``sparsity``."""
    schedule = tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=0.0, final_sparsity=sparsity, begin_step=0, end_step=max(1, steps // 2), frequency=1
    )

    def clone(layer):
        if _is_pointwise_or_dense(layer):
            return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule)
        return layer

    return tf_keras.models.clone_model(model, clone_function=clone)


def clustered(model, clusters):
    """Weight clustering of every convolution and dense layer to ``clusters`` shared values.

    tfmot 0.8 leaves depthwise kernels unclustered (a wrapped DepthwiseConv2D keeps all its values),
    so they are not wrapped.
    """
    centroids = tfmot.clustering.keras.CentroidInitialization.KMEANS_PLUS_PLUS

    def clone(layer):
        if isinstance(layer, (L.Conv2D, L.Dense)) and not isinstance(layer, L.DepthwiseConv2D):
            return tfmot.clustering.keras.cluster_weights(
                layer, number_of_clusters=clusters, cluster_centroids_init=centroids
            )
        return layer

    return tf_keras.models.clone_model(model, clone_function=clone)


def fine_tune(model, x, y, job, callbacks=()):
    """A few steps of Adam on the calibration data, batch norm frozen (its statistics from few
    images at small batches would undo the trained ones)."""
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)  # inside tfmot's wrappers
        if isinstance(inner, L.BatchNormalization):
            inner.trainable = False
    loss = tf_keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, ignore_class=255 if job["task"] == "segmentation" else None
    )
    model.compile(optimizer=tf_keras.optimizers.Adam(job["learning_rate"]), loss=loss)
    batch = job["batch_size"]
    per_epoch = max(1, int(np.ceil(len(x) / batch)))
    epochs = max(1, int(np.ceil(job["steps"] / per_epoch)))
    history = model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, callbacks=list(callbacks), shuffle=True)
    return [float(v) for v in history.history["loss"]]


def sparsity_of(model):
    """Fraction of zeros in the kernels of 1x1 convolutions and dense layers."""
    zeros = total = 0
    for layer in model.layers:
        if _is_pointwise_or_dense(layer):
            kernel = layer.get_weights()[0]
            zeros, total = zeros + int(np.sum(kernel == 0)), total + kernel.size
    return zeros / total if total else 0.0


def unique_weights(model):
    """Largest number of distinct values in any clustered kernel."""
    counts = [
        len(np.unique(layer.get_weights()[0]))
        for layer in model.layers
        if isinstance(layer, (L.Conv2D, L.Dense)) and not isinstance(layer, L.DepthwiseConv2D)
    ]
    return max(counts) if counts else 0


# ---------------------------------------------------------------- conversion


def convert(model, input_shape, calib, quant, io_dtype="uint8", sparse=False):
    """TFLite bytes from a tf_keras model at a batch-1 signature, builtin ops only, in mode ``quant``."""
    serve = tf.function(
        lambda x: model(x, training=False), input_signature=[tf.TensorSpec((1, *input_shape), tf.float32, name="input")]
    )
    return tflite_converter(
        serve.get_concrete_function(), model, quant, calib, io_dtype=io_dtype, sparse=sparse
    ).convert()


def main(workdir):
    workdir = Path(workdir)
    job = json.loads((workdir / "job.json").read_text())
    spec = json.loads((workdir / "spec.json").read_text())
    weights = np.load(workdir / "weights.npz")
    data = np.load(workdir / "data.npz")
    clock = time.perf_counter()
    twin = build_twin(spec, weights)
    twin_output = twin.predict(data["reference_inputs"], verbose=0)
    result = {"twin_max_abs_diff": float(np.max(np.abs(twin_output - data["reference_outputs"])))}
    scale = max(1.0, float(np.max(np.abs(data["reference_outputs"]))))  # tolerance relative to large logits
    if result["twin_max_abs_diff"] > job["twin_tolerance"] * scale:
        raise SystemExit(f"tf_keras twin differs from the Keras 3 model by {result['twin_max_abs_diff']:.3g}")
    x, y, calib = data["train_inputs"], data["train_targets"], data["calib_inputs"]
    technique, input_shape = job["technique"], tuple(job["input_shape"])
    if technique == "qat":
        with tfmot.quantization.keras.quantize_scope(_scope()):
            model = quantization_aware(twin)
            result["loss"] = fine_tune(model, x, y, job)
            quant = job["quant"] if job["quant"] in CALIBRATED_QUANTS else "int8"
            (workdir / "model.tflite").write_bytes(convert(model, input_shape, calib, quant, job["io_dtype"]))
    elif technique == "prune":
        model = pruned(twin, job["sparsity"], job["steps"])
        result["loss"] = fine_tune(model, x, y, job, [tfmot.sparsity.keras.UpdatePruningStep()])
        model = tfmot.sparsity.keras.strip_pruning(model)
        result["sparsity"] = sparsity_of(model)
        (workdir / "model.tflite").write_bytes(convert(model, input_shape, calib, job["quant"], job["io_dtype"]))
        (workdir / "sparse_fp32.tflite").write_bytes(convert(model, input_shape, calib, "fp32", sparse=True))
        (workdir / "dense_fp32.tflite").write_bytes(convert(model, input_shape, calib, "fp32"))
    elif technique == "cluster":
        model = clustered(twin, job["clusters"])
        result["loss"] = fine_tune(model, x, y, job)
        model = tfmot.clustering.keras.strip_clustering(model)
        result["unique_weights"] = unique_weights(model)
        (workdir / "model.tflite").write_bytes(convert(model, input_shape, calib, job["quant"], job["io_dtype"]))
    else:
        raise SystemExit(f"unknown technique {technique!r}")
    result["worker_seconds"] = round(time.perf_counter() - clock, 1)
    (workdir / "result.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
