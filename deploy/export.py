"""Quantize and export a garden model to TFLite or ONNX, then check and measure the file written.

This module is the orchestration: options checked (``Limit``), the model resolved and its
calibration and check data prepared (``prepare``), the file written under a temporary name,
checked against the Keras model, reported and only then put in place (``write_checked``). The
writers are ``deploy.tflite`` and ``deploy.onnx_export``; the quantization modes they apply are
one table, ``deploy.quantization.MODES``:

- ``fp32``: no quantization; ``fp16``: float16 weights; ``dynamic``: int8 weights, float activations;
- ``int8``: full integer, calibrated on representative data, float input and output;
- ``int8-io``: full integer with integer input/output too (``uint8`` by default), the camera path.

The output is logits or a class map (argmax in the graph); an int8 export of a softmax-ended model
exports its logits (int8 flattens a softmax), a float export keeps the model as it is. The input
is what the model takes, recorded in the sidecar (``deploy.user_model.input_normalization``).
The converters' own intermediate files go to a scratch folder that the next export removes if
this one is killed. Every option is checked before any work: a NaN, an out-of-range number or an
option that means nothing in the chosen mode is a ``GardenError``, never silently changed.
"""

import contextlib
import math
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deploy import calibrate, check, report, sidecar, user_model
from deploy.onnx_export import convert_onnx
from deploy.quantization import CALIBRATED_QUANTS, IO_DTYPES, QUANTS  # noqa: F401  (deploy.QUANTS, the CLI's)
from deploy.tflite import convert_tflite
from garden._files import atomic_path, created_folder, process_alive, write_text
from garden.errors import GardenError
from garden.options import describe_range, in_range, number

FORMATS = ("tflite", "onnx")
DEGENERATE_RANGE = 1e-6  # model outputs spanning less are noise in float32, and one level in int8
OUTPUT_KINDS = ("logits", "class_map")


@dataclass(frozen=True)
class Limit:
    """The values a number option takes: a finite ``kind`` within ``low``..``high`` (None: unbounded).

    ``optional``: None is accepted too (it means the default behaviour, e.g. all examples).
    """

    kind: type
    low: float = None
    high: float = None
    low_inclusive: bool = True
    high_inclusive: bool = True
    optional: bool = False

    def argparse_type(self):
        """The same rule as an argparse ``type`` (``garden.options.number``)."""
        return number(
            self.kind, self.low, self.high, low_inclusive=self.low_inclusive, high_inclusive=self.high_inclusive
        )

    def check(self, name, value):
        """Raise a one-line ``GardenError`` unless ``value`` is acceptable for the argument ``name``."""
        if value is None and self.optional:
            return
        if not _is_number(value, self.kind):
            raise GardenError(
                f"{name} must be {'an integer' if self.kind is int else 'a finite number'}, got {value!r}"
            )
        bounds = (self.low, self.high, self.low_inclusive, self.high_inclusive)
        if not in_range(value, *bounds):
            raise GardenError(f"{name} {describe_range(*bounds)}, got {value!r}")


def _is_number(value, kind):
    if isinstance(value, (bool, np.bool_)):
        return False
    if kind is int:
        return isinstance(value, (int, np.integer))
    return isinstance(value, (int, float, np.integer, np.floating)) and math.isfinite(value)


def check_numbers(limits, **values):
    """Check each ``name=value`` against ``limits[name]``."""
    for name, value in values.items():
        limits[name].check(name, value)


# Points of accuracy or mean IoU lie in 0..100, so a drop lies in -100..100 (negative: the file must
# beat float by that much).
EXPORT_LIMITS = {
    "input_size": Limit(int, 1, optional=True),
    "max_drop": Limit(float, -100, 100, optional=True),
    "calib_count": Limit(int, 1, optional=True),
    "check_count": Limit(int, 1, optional=True),
    "repeats": Limit(int, 1),
}


@dataclass
class ExportResult:
    path: Path
    sidecar_path: Path
    report: dict
    report_paths: list = field(default_factory=list)
    notes: list = field(default_factory=list)  # one line each: what the export changed or assumed


def export(
    model,
    *,
    format="tflite",
    quant="fp32",
    input_size=None,
    calib="digits",
    check_data=None,
    max_drop=None,
    out=".",
    name=None,
    output="logits",
    io_dtype=None,
    calib_count=64,
    check_count=64,
    repeats=30,
    input_scale=None,
    input_mean=None,
    input_std=None,
    model_options=None,
):
    """Export ``model`` (a Keras model, a registered name or a ``.keras`` file); returns ``ExportResult``.

    ``calib`` and ``check_data`` are data source specs (``garden.data.sources``) or ``Examples``.
    ``max_drop`` (points of accuracy or mean IoU, -100..100) fails the export, leaving no file, when
    exceeded. ``io_dtype`` (``uint8`` when not given) is for ``quant="int8-io"`` only.
    ``calib_count``/``check_count`` None: every example. ``calib`` may be unlabelled (a plain folder of
    images, a ``.npy`` array); the file is then checked for agreement with the Keras model only.
    ``input_scale``/``input_mean``/``input_std`` override the input normalisation read from the model.
    ``model_options``: builder arguments of a registered model (``weights="imagenet"``, ``backbone=...``).

    >>> export("mobilenet_v2", quant="int8", input_size=96, calib="embedded", out="exports")
    """
    _check_choice("format", format, FORMATS)
    _check_choice("quant", quant, QUANTS)
    _check_choice("output", output, OUTPUT_KINDS)
    check_io_dtype(io_dtype, quant, format)
    check_name(name)
    check_numbers(
        EXPORT_LIMITS,
        input_size=input_size,
        max_drop=max_drop,
        calib_count=calib_count,
        check_count=check_count,
        repeats=repeats,
    )
    job = prepare(
        model,
        input_size=input_size,
        calib=calib,
        check_data=check_data,
        calib_count=calib_count,
        check_count=check_count,
        keep_softmax=quant not in CALIBRATED_QUANTS,
        normalization=(input_scale, input_mean, input_std),
        model_options=model_options,
    )
    if max_drop is not None and job.check_targets is None:
        raise GardenError("--max-drop needs labelled check data: give --check a labelled source")
    if format == "onnx" and quant == "int8-io" and not job.normalization.is_unit:
        raise GardenError("ONNX int8-io files take pixels in [0, 1]; this model expects other input: use TFLite")

    def write(temporary):
        if format == "tflite":
            convert_tflite(job.model, job.input_shape, quant, job.calib_inputs, temporary, output, io_dtype or "uint8")
        else:
            convert_onnx(job.model, job.input_shape, quant, job.calib_inputs, temporary, output)

    path = Path(out) / f"{name or f'{job.name}_{quant}'}.{format}"
    return write_checked(job, write, path, quant=quant, output=output, max_drop=max_drop, repeats=repeats)


@dataclass
class Job:
    """A model ready to export, with its calibration and check data at its input size."""

    model: object
    name: str
    task: str
    input_shape: tuple
    calib_inputs: np.ndarray
    calib_targets: np.ndarray
    check_inputs: np.ndarray
    check_targets: np.ndarray
    check_examples: object
    normalization: user_model.Normalization = None
    notes: list = field(default_factory=list)


def prepare(
    model,
    *,
    input_size=None,
    calib="digits",
    check_data=None,
    calib_count=64,
    check_count=64,
    keep_softmax=False,
    normalization=(None, None, None),
    model_options=None,
):
    """The model resolved, its data at its input size; calibration and check inputs as the model takes them.

    ``keep_softmax`` False: a softmax-ended model becomes its logits (a note says so).
    ``normalization``: ``(scale, mean, std)`` overrides, None for the model's own.
    """
    calib_examples = _examples(calib, None)
    keras_model, model_name, task = resolve_model(model, input_size, calib_examples, model_options)
    notes = []
    if not keep_softmax and user_model.ends_in_softmax(keras_model):
        keras_model = user_model.logits_model(keras_model)
        notes.append(f"{model_name} ends in a softmax: the file outputs its logits (int8 would flatten the softmax)")
    if calib_examples.task not in (None, task):
        raise GardenError(f"{model_name} is a {task} model but data source {calib!r} holds {calib_examples.task}")
    check_examples = calib_examples if check_data is None else _examples(check_data, task)
    if check_data is not None and check_examples.task is None:
        raise GardenError(
            f"--check needs labelled data ({'class folders' if task == 'classification' else 'masks'}); "
            f"{check_data} has none (unlabelled images calibrate: use --calib)"
        )
    input_shape = tuple(int(v) for v in keras_model.input_shape[1:])
    inputs = user_model.input_normalization(keras_model, input_shape[-1], *normalization)
    if not inputs.is_unit:
        notes.append(f"input: (pixel * {inputs.scale:.6g} - {list(inputs.mean)}) / {list(inputs.std)}, {inputs.source}")
    calib_inputs, calib_targets = calibrate.prepare(calibrate.take(calib_examples, calib_count), input_shape)
    check_inputs, check_targets = calibrate.prepare(calibrate.take(check_examples, check_count, seed=1), input_shape)
    if task == "segmentation" and check_targets is not None:  # mean IoU needs labelled pixels of the model's classes
        check.check_masks(check_targets, int(keras_model.output_shape[-1]), check_examples.name)
    return Job(
        keras_model,
        model_name,
        task,
        input_shape,
        inputs.apply(calib_inputs),
        calib_targets,
        inputs.apply(check_inputs),
        check_targets,
        check_examples,
        inputs,
        notes,
    )


def write_checked(
    job, write, path, *, quant, output="logits", max_drop=None, repeats=30, quantization=None, extra=None
):
    """``write(temporary)`` the file, check it against ``job.model``, report it; then put it at ``path``.

    On any failure, a quality drop beyond ``max_drop`` included, nothing is left at ``path``.
    """
    path = Path(path)
    fmt = path.suffix[1:]
    with created_folder(path.parent), scratch_folder(), atomic_path(path) as temporary:
        write(temporary)
        reference = job.model.predict(job.check_inputs, batch_size=16, verbose=0)
        runner = check.open_runner(temporary)
        artifact = runner.run(job.check_inputs)
        num_classes = int(job.model.output_shape[-1])
        quality = check.compare(
            reference, artifact, job.check_targets, task=job.task, output_kind=output, num_classes=num_classes
        )
        if max_drop is not None and not (
            quality["drop"] is not None and quality["drop"] <= max_drop
        ):  # a NaN drop fails too
            raise GardenError(
                f"{path.name}: {quality['metric']} fell {quality['drop']:.2f} points "
                f"({quality['float']:.2f} -> {quality['artifact']:.2f}), more than --max-drop {max_drop}; file removed"
            )
        result = report.build_report(
            temporary,
            model_name=job.name,
            fmt=fmt,
            quant=quantization or quant,
            input_shape=job.input_shape,
            check_result=quality,
            repeats=repeats,
        )
        result["file"] = path.name
        if quality.get("output_range", 1.0) < DEGENERATE_RANGE:
            job.notes.append(
                f"the Keras model's outputs span only {quality['output_range']:.3g}: an untrained model? "
                "quantized or not, such outputs carry no ranking to check"
            )
        result.update(extra or {})
        meta = _sidecar(
            job.model,
            job.name,
            job.task,
            job.input_shape,
            runner.input_dtype,
            output,
            quantization or quant,
            job.check_examples,
            job.normalization,
        )
        write_text(sidecar.sidecar_path(path), sidecar.dumps(meta))
    stem = path.with_suffix("")
    report_json, report_md = Path(f"{stem}.report.json"), Path(f"{stem}.report.md")
    write_text(report_json, report.dumps(result))
    write_text(report_md, report.to_markdown([result]) + "\n\n" + report.ops_markdown(result) + "\n")
    return ExportResult(path, sidecar.sidecar_path(path), result, [report_json, report_md], job.notes)


def _check_choice(what, value, choices):
    if value not in choices:
        raise GardenError(f"unknown {what} {value!r}; choose one of {', '.join(choices)}")


def check_io_dtype(io_dtype, quant, format="tflite"):
    """``io_dtype`` (None: not given) means something only for ``int8-io``, and ONNX takes only uint8."""
    if io_dtype is None:
        return
    _check_choice("io_dtype", io_dtype, IO_DTYPES)
    if quant != "int8-io":
        raise GardenError(f"--io-dtype (io_dtype) applies only to --quant int8-io, not {quant}")
    if format == "onnx" and io_dtype != "uint8":
        raise GardenError(f"ONNX int8-io files take uint8 pixels; --io-dtype {io_dtype} is for TFLite only")


def check_name(name):
    """A file stem (None: the default one): not empty, no folder in it, not hidden."""
    if name is None:
        return
    text = str(name)
    if not text or text.startswith(".") or "/" in text or os.sep in text:
        raise GardenError(f"--name (name) must be a plain file stem, not {text!r}: no folders, not starting with '.'")


# ---------------------------------------------------------------- the converters' own temporary files

SCRATCH_PREFIX = "garden-scratch-"
_SCRATCH_NAME = re.compile(rf"^{re.escape(SCRATCH_PREFIX)}(\d+)-")


@contextlib.contextmanager
def scratch_folder():
    """A fresh folder for an export's intermediate files, removed afterwards; yields its path.

    Python's ``tempfile`` points into it meanwhile, so the TFLite converter's intermediate
    SavedModel, tf2onnx's and onnxruntime's calibration files land there. Its name carries this
    process's id: the folders of killed exports (their process gone) are removed first.
    """
    root = Path(tempfile.gettempdir())
    remove_stale_scratch(root)
    folder = tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-", dir=root)
    previous, tempfile.tempdir = tempfile.tempdir, folder
    try:
        yield Path(folder)
    finally:
        tempfile.tempdir = previous
        shutil.rmtree(folder, ignore_errors=True)


def remove_stale_scratch(root):
    """Remove the scratch folders in ``root`` whose process no longer runs; returns their names."""
    removed = []
    with contextlib.suppress(OSError):
        for entry in Path(root).iterdir():
            match = _SCRATCH_NAME.match(entry.name)
            if match and entry.is_dir() and not entry.is_symlink() and not process_alive(int(match.group(1))):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry.name)
    return removed


def _examples(source, task):
    from garden.data import Examples

    if isinstance(source, Examples):
        return source
    return calibrate.load_source(source, task)


# ---------------------------------------------------------------- the model


def resolve_model(model, input_size=None, examples=None, model_options=None):
    """``(keras_model, name, task)`` from a Keras model, a ``.keras`` file or a registered name.

    A registered model is built with as many classes as ``examples`` has, at ``input_size``, with
    ``model_options`` (builder arguments; a built model or a file takes none).
    """
    import keras

    if model_options and (isinstance(model, keras.Model) or str(model).endswith(".keras")):
        raise GardenError("builder arguments (--set, --weights) apply to a registered model name, not a built model")
    if isinstance(model, keras.Model):
        keras_model, name = model, model.name
    elif str(model).endswith(".keras"):
        from garden.saving import load_model_file

        keras_model = load_model_file(model)
        name = Path(model).stem
    else:
        keras_model, name = _build_registered(str(model), input_size, examples, model_options), str(model)
        input_size = None
    if input_size is not None:
        keras_model = at_input_size(keras_model, input_size)
    task = "segmentation" if len(keras_model.output_shape) == 4 else "classification"
    return keras_model, name, task


def _build_registered(name, input_size, examples, model_options=None):
    """``garden.registry.build_model`` with the data's class count, at ``input_size`` (None: the model's own)."""
    from garden.registry import build_model, get_entry

    entry = get_entry(name)
    overrides = dict(model_options or {})
    if examples is not None and examples.num_classes and "num_classes" in entry.arguments:
        overrides["num_classes"] = examples.num_classes
    shape = None
    if input_size is not None:
        default = entry.default_input_shape
        shape = (int(input_size), int(input_size), default[-1] if default else 3)
    return build_model(name, shape, **overrides)


def at_input_size(model, size):
    """The same functional model and weights at a new ``size x size`` input."""
    shape = tuple(model.input_shape[1:])
    if shape[:2] == (size, size):
        return model
    config = model.get_config()
    for layer in config["layers"]:
        if layer["class_name"] == "InputLayer":
            key = "batch_shape" if "batch_shape" in layer["config"] else "batch_input_shape"
            layer["config"][key] = [None, size, size, shape[-1]]
    try:
        resized = model.__class__.from_config(config)
        resized.set_weights(model.get_weights())
    except Exception as error:  # noqa: BLE001  (a model whose weights depend on the input size: flatten + dense)
        raise GardenError(f"{model.name} cannot run at {size}x{size}: {str(error).splitlines()[0]}") from None
    return resized


def _sidecar(model, name, task, input_shape, input_dtype, output, quant, examples, normalization):
    from garden.profiler import profile

    totals = profile(model).total
    num_classes = int(model.output_shape[-1])
    names = examples.class_names if len(examples.class_names) == num_classes else ()
    inputs = normalization or user_model.Normalization(1 / 255, (0.0,) * input_shape[-1], (1.0,) * input_shape[-1])
    fields = dict(model_name=name, task=task, input_shape=input_shape, input_dtype=input_dtype, output_kind=output)
    fields.update(num_classes=num_classes, class_names=names, quantization=quant)
    fields.update(params=totals["params"], macs=totals["macs"], normalization=(inputs.scale, inputs.mean, inputs.std))
    return sidecar.sidecar(**fields)
