"""What more than one test module (or a test's subprocess) shares: assertions, small data, tiny models.

Test modules import from here (``from helpers import ...``; pytest puts tests/ on ``sys.path``), and
never from one another; a subprocess puts tests/ on its path itself. Fixtures are in conftest.py.
"""

import io
import json
import os
import queue
import subprocess
import sys
import threading
import zipfile
from functools import cache
from pathlib import Path

import cv2
import flatbuffers
import keras
import numpy as np

import garden


def assert_roundtrip(model, tmp_path, inputs, atol=1e-5):
    """The model survives ``.keras`` save/load (safe mode) and ``get_config`` with equal outputs."""
    expected = keras.tree.map_structure(np.asarray, model(inputs, training=False))
    path = tmp_path / f"{model.name}.keras"
    model.save(path)
    loaded = garden.load_model(path)
    got = keras.tree.map_structure(np.asarray, loaded(inputs, training=False))
    keras.tree.map_structure(lambda a, b: np.testing.assert_allclose(a, b, atol=atol), expected, got)
    clone = model.__class__.from_config(model.get_config())
    assert clone.count_params() == model.count_params()
    return loaded


def perturbed(model, seed=0):
    """``model`` with random weights and batch-norm statistics, so a wrong mapping shows."""
    rng = np.random.default_rng(seed)
    positive = ("gamma", "moving_variance")
    for layer in model.layers:
        for variable in layer.weights:
            shape = tuple(variable.shape)
            if isinstance(layer, keras.layers.BatchNormalization):
                is_positive = variable.path.split("/")[-1] in positive
                value = rng.uniform(0.5, 2.0, shape) if is_positive else rng.normal(0, 0.2, shape)
            else:
                value = keras.ops.convert_to_numpy(variable) + rng.normal(0, 0.05, shape)
            variable.assign(value.astype("float32"))
    return model


# ---------------------------------------------------------------- data


def squares(count=48, size=32, seed=0):
    """Images with a bright square (class 1) and a dark-red disc (class 2) on grey noise."""
    from garden.data import ArrayExamples

    rng = np.random.default_rng(seed)
    images = rng.integers(90, 140, size=(count, size, size, 3)).astype(np.uint8)
    masks = np.zeros((count, size, size), np.uint8)
    for i in range(count):
        top, left = rng.integers(0, size // 2, size=2)
        images[i, top : top + size // 2, left : left + size // 2] = 240
        masks[i, top : top + size // 2, left : left + size // 2] = 1
        centre = tuple(int(c) for c in rng.integers(size // 4, 3 * size // 4, size=2))
        cv2.circle(images[i], centre, size // 5, (120, 10, 10), -1)
        cv2.circle(masks[i], centre, size // 5, 2, -1)
    return ArrayExamples(images, masks, ["background", "square", "disc"], task="segmentation", name="squares")


# ---------------------------------------------------------------- a tiny backbone

TINY_BACKBONE = "tiny_test_backbone"  # its registry name while the ``tiny_backbone`` fixture holds it


def build_tiny_backbone(*, input_shape=(64, 64, 3), output_stride=32, features_only=False, num_classes=10, name="tiny"):
    """Five stride-2 stages of 8 filters; past ``output_stride`` the stages dilate instead of striding.

    It follows the backbone contract (``features_only``, ``model.features`` by stride), so decoders
    are tested on it whatever real backbones exist.
    """
    from garden.layers import conv_norm_act
    from garden.models._common import classification_model, model_input

    inputs = model_input(input_shape, (64, 64, 3))
    x, stride, dilation, features = inputs, 1, 1, {}
    for stage in range(1, 6):
        if stride < output_stride:
            x = conv_norm_act(x, 8, 3, strides=2, name=f"s{stage}")
            stride *= 2
        else:
            dilation *= 2
            x = conv_norm_act(x, 8, 3, dilation_rate=dilation, name=f"s{stage}")
        features[2**stage] = x
    return classification_model(inputs, features, name=name, num_classes=num_classes, features_only=features_only)


# ---------------------------------------------------------------- self-supervised methods, tiny

# Tiny versions: 16x16 images, narrow heads.
SSL_TINY = {
    "barlow_twins": dict(projection_units=(32, 32)),
    "byol": dict(projection_units=(32, 16), prediction_units=(32, 16)),
    "colorization": dict(decoder_filters=16),
    "cpc": dict(patch=8, stride=4, context_units=16),
    "jigsaw": dict(num_permutations=8, hidden_units=32),
    "moco_v2": dict(projection_units=(32, 16), queue_size=16),
    "rotnet": dict(hidden_units=16),
    "simclr": dict(projection_units=(32, 16)),
    "simsiam": dict(projection_units=(32, 32), prediction_units=(8, 32)),
    "swav": dict(projection_units=(32, 16), num_prototypes=6),
}
# What trains: every method, and the variants that take another path through the model.
SSL_CASES = {name: (name, options) for name, options in SSL_TINY.items()}
SSL_CASES["jigsaw_reassembled_plus_plus"] = ("jigsaw", {**SSL_TINY["jigsaw"], "reassemble": True, "foreign_tiles": 2})


def train_tiny_ssl(case):
    """Build ``SSL_CASES[case]`` at 16x16, fit two steps on eight photo_digits images; return (losses,
    encoder features, encoder weights moved)."""
    from garden.data.photo_digits import photo_digits

    images = np.asarray(photo_digits("test", size=16).images[:8], dtype="float32") / 255.0
    name, options = SSL_CASES[case]
    model = garden.create_model(name, input_shape=(16, 16, 3), **options)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    before = [keras.ops.convert_to_numpy(w).copy() for w in model.encoder.trainable_weights]
    history = model.fit(images, batch_size=4, epochs=1, verbose=0)
    after = [keras.ops.convert_to_numpy(w) for w in model.encoder.trainable_weights]
    moved = any(not np.allclose(a, b) for a, b in zip(before, after))
    features = model.encoder.predict(images[:2], verbose=0)
    return history.history["loss"], features, moved


# ---------------------------------------------------------------- garden-edge (tests/test_edge_app*.py)

# The edge tests' data and models: generated videos of coloured shapes on grey, and TFLite models built
# here whose right answer is known from how a frame was drawn (a nearest-colour classifier written as a
# 1x1 convolution: logit_k = s * (2 p_k . x - |p_k|^2) for prototype colour p_k).
ROOT = Path(__file__).resolve().parents[1]
SIZE = 48  # model input side
FRAME_W, FRAME_H = 160, 120
# RGB prototypes in [0, 1]: background, red, green, blue
PROTOTYPES = np.array([[0.2, 0.2, 0.2], [0.9, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.2, 0.9]], np.float32)
NAMES = ["background", "red", "green", "blue"]
COLORS = [[0, 0, 0], [250, 200, 0], [0, 200, 250], [250, 0, 250]]  # overlay colours, unlike the objects


def draw_frame(index, width=FRAME_W, height=FRAME_H):
    """A BGR frame with three moving coloured shapes on grey, and its true class map."""
    rgb = (PROTOTYPES * 255).astype(np.uint8)
    mask = np.zeros((height, width), np.uint8)
    cx = 20 + (index * 3) % (width - 60)
    cv2.rectangle(mask, (cx, 15), (cx + 40, 55), 1, cv2.FILLED)
    cv2.circle(mask, (width - 35, height - 35 + (index % 7)), 22, 2, cv2.FILLED)
    cv2.rectangle(mask, (10, height - 40), (55, height - 8), 3, cv2.FILLED)
    frame = rgb[mask][..., ::-1].copy()
    return frame, mask


def write_video(path, frames=24, fps=12, draw=draw_frame, codec="mp4v"):
    """A video of ``draw(i)[0]`` for each frame ``i`` (the moving shapes), written with ``codec``."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, (FRAME_W, FRAME_H))
    for i in range(frames):
        writer.write(draw(i)[0])
    writer.release()
    return path


def prototype_weights(prototypes=PROTOTYPES, scale=8.0):
    """1x1-convolution kernel (1 x 1 x 3 x K) and bias of the nearest-prototype classifier above."""
    kernel = (2 * scale * prototypes.T)[None, None]
    bias = -scale * (prototypes**2).sum(axis=1)
    return kernel.astype(np.float32), bias.astype(np.float32)


def edge_convert(model, path, int8=None, sidecar=None, samples=None):
    """``model`` converted to TFLite at ``path`` (int8 weights and I/O of type ``int8`` when given), its sidecar."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([s[None].astype(np.float32)] for s in samples)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = int8
    path.write_bytes(converter.convert())
    if sidecar:
        path.with_suffix(".json").write_text(json.dumps(sidecar))
    return path


def _edge_sidecar(task, kind, quantization, size, macs):
    return {
        "format_version": 1,
        "model": f"prototypes_{task}",
        "task": task,
        "input": {
            "height": size,
            "width": size,
            "channels": 3,
            "layout": "NHWC",
            "dtype": "float32",
            "scale": 1 / 255,
            "mean": [0, 0, 0],
            "std": [1, 1, 1],
        },
        "output": {"kind": kind, "num_classes": len(NAMES)},
        "class_names": NAMES,
        "colors": COLORS,
        "quantization": quantization,
        "params": 16,
        "macs": macs,
        "garden_version": "0.1.0",
    }


@cache
def build_models(folder):
    """Convert the edge test models into ``folder`` once per session (all edge test files share it); {name: path}."""
    import tensorflow as tf

    folder = Path(folder)
    folder.mkdir(exist_ok=True)
    kernel, bias = prototype_weights()
    samples = [cv2.resize(draw_frame(i)[0][..., ::-1], (SIZE, SIZE)).astype(np.float32) / 255 for i in range(16)]

    inputs = keras.Input((SIZE, SIZE, 3))
    conv = keras.layers.Conv2D(len(NAMES), 1, name="logits")
    seg = keras.Model(inputs, conv(inputs))
    conv.set_weights([kernel, bias])
    macs = SIZE * SIZE * 3 * len(NAMES)

    cmap_in = keras.Input((SIZE, SIZE, 3))
    argmax = keras.layers.Lambda(lambda t: tf.argmax(t, axis=-1, output_type=tf.int32))
    cmap = keras.Model(cmap_in, argmax(conv(cmap_in)))

    cls_in = keras.Input((32, 32, 3))
    dense = keras.layers.Dense(len(NAMES))
    cls = keras.Model(cls_in, dense(keras.layers.GlobalAveragePooling2D()(cls_in)))
    dense.set_weights([kernel[0, 0], bias])

    vec_in = keras.Input((10,))
    vector = keras.Model(vec_in, keras.layers.Dense(2)(vec_in))
    seg_sidecar, int8_sidecar = (_edge_sidecar("segmentation", "logits", q, SIZE, macs) for q in ("fp32", "int8"))
    return {
        "float": str(edge_convert(seg, folder / "seg_float.tflite", sidecar=seg_sidecar)),
        "int8": str(edge_convert(seg, folder / "seg_int8.tflite", tf.int8, int8_sidecar, samples)),
        "uint8": str(edge_convert(seg, folder / "seg_uint8.tflite", tf.uint8, None, samples)),
        "class_map": str(edge_convert(cmap, folder / "seg_class_map.tflite")),
        "classifier": str(
            edge_convert(
                cls, folder / "cls_float.tflite", sidecar=_edge_sidecar("classification", "logits", "fp32", 32, 12)
            )
        ),
        "vector": str(edge_convert(vector, folder / "vector.tflite")),
    }


def garden_edge(*args, timeout=120):
    """Run ``python -m edge_app`` in a subprocess (as a user would); returns CompletedProcess."""
    return run_program("edge_app", *args, timeout=timeout)


def garden_command(*args, timeout=300):
    """Run ``python -m garden`` in a subprocess (as a user would); returns CompletedProcess."""
    return run_program("garden", *args, timeout=timeout)


def run_program(module, *args, timeout):
    env = dict(os.environ, PYTHONPATH=str(ROOT), GARDEN_DEBUG="")
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=ROOT,
    )


def start_serving(model, video, *args, timeout=60):
    """``python -m edge_app --serve`` on a looping ``video``: (printed URL, the process, a queue of its stdout
    lines, ``None`` after the last).

    The caller ends the process (SIGTERM for the summary, or kill).
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "edge_app", "--model", model, "--source", str(video), "--loop", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT), GARDEN_DEBUG=""),
    )
    lines = queue.Queue()
    threading.Thread(target=lambda: [*map(lines.put, process.stdout), lines.put(None)], daemon=True).start()
    try:
        first = lines.get(timeout=timeout) or ""
    except queue.Empty:
        first = ""
    if "serving on " not in first:
        process.kill()
        raise AssertionError("garden-edge --serve printed no address: " + process.stderr.read())
    return first.split("serving on ")[1].strip(), process, lines


def read_video(path):
    """Every frame OpenCV's read() gives of the video at ``path``, until its first failure."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            return frames
        frames.append(frame)


class FakeCapture:
    """The part of ``cv2.VideoCapture`` a fake camera shares: always open, every setting taken, nothing to free.
    A fake camera adds ``read`` and, as the factory tests put in ``edge_app.sources.open_capture``, ``__call__``."""

    def isOpened(self):
        return True

    def set(self, *args):
        return True

    def release(self):
        pass


def assert_one_line_error(done, code, *words):
    """A finished garden-edge run exited ``code`` with one ``garden-edge: ...`` line on stderr holding ``words``."""
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr and lines[0].startswith("garden-edge: ")
    for word in words:
        assert word in lines[0], lines[0]


# ---------------------------------------------------------------- packing labels the TFLite metadata way


def _vector(builder, offsets):
    builder.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        builder.PrependUOffsetTRelative(offset)
    return builder.EndVector()


def _floats(builder, values):
    builder.StartVector(4, len(values), 4)
    for value in reversed(values):
        builder.PrependFloat32(value)
    return builder.EndVector()


def _table(builder, slots, fields):
    """A table of ``slots`` fields from (slot, kind, value): kind "offset", "int8" or "uint8"."""
    builder.StartObject(slots)
    for slot, kind, value in fields:
        {"offset": builder.PrependUOffsetTRelativeSlot, "int8": builder.PrependInt8Slot}.get(
            kind, builder.PrependUint8Slot
        )(slot, value, 0)
    return builder.EndObject()


def model_metadata(label_file, mean, std):
    """A ``ModelMetadata`` flatbuffer (tflite-support's metadata_schema.fbs, identifier M001): the input's
    NormalizationOptions and the output's TENSOR_AXIS_LABELS file, written field by field."""
    b = flatbuffers.Builder(256)
    label_name = b.CreateString(label_file)
    label = _table(b, 4, [(0, "offset", label_name), (2, "int8", 2)])  # AssociatedFile: name, type
    out_name = b.CreateString("probabilities")
    output = _table(b, 7, [(0, "offset", out_name), (6, "offset", _vector(b, [label]))])  # TensorMetadata
    mean_v, std_v = _floats(b, mean), _floats(b, std)
    norm = _table(b, 2, [(0, "offset", mean_v), (1, "offset", std_v)])  # NormalizationOptions
    unit = _table(b, 2, [(0, "uint8", 1), (1, "offset", norm)])  # ProcessUnit: options_type, options
    in_name = b.CreateString("image")
    inp = _table(b, 7, [(0, "offset", in_name), (4, "offset", _vector(b, [unit]))])
    inputs, outputs = _vector(b, [inp]), _vector(b, [output])
    graph = _table(b, 9, [(2, "offset", inputs), (3, "offset", outputs)])  # SubGraphMetadata
    name, graphs = b.CreateString("prototype classifier"), _vector(b, [graph])
    root = _table(b, 8, [(0, "offset", name), (3, "offset", graphs)])  # ModelMetadata
    b.Finish(root, file_identifier=b"M001")
    return bytes(b.Output())


def pack_labels(path, names, mean=(127.5,) * 3, std=(127.5,) * 3, label_file="labels.txt"):
    """Put TFLite metadata in the model at ``path`` and append its label file as a zip archive."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(path))
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(model_metadata(label_file, list(mean), list(std)), np.uint8)
    entry = schema.MetadataT()
    entry.name, entry.buffer = "TFLITE_METADATA", len(model.buffers)
    model.buffers.append(buffer)
    model.metadata = [*(model.metadata or []), entry]
    flatbuffer_utils.write_model(model, str(path))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as packed:
        packed.writestr(label_file, "\n".join(names) + "\n")
    path.write_bytes(path.read_bytes() + archive.getvalue())
    return path
