"""What a third-party ``.tflite`` file says about itself: its TFLite metadata and the files packed in it.

The TFLite metadata tools (and Model Maker) store a ``ModelMetadata`` flatbuffer (tensorflow/tflite-support,
``metadata_schema.fbs``) in the model's ``metadata`` list under ``TFLITE_METADATA``, and append the
associated files (the label file) to the ``.tflite`` as a zip archive. This module reads the two parts
the app uses, the input normalisation and the output's label file, with the flatbuffers runtime LiteRT
ships and the standard library's ``zipfile``; no TensorFlow, no tflite-support.
"""

import mmap
import struct
import zipfile
import zlib
from dataclasses import dataclass, field

import flatbuffers
from flatbuffers.number_types import Float32Flags, Int8Flags, Uint8Flags

from edge_app.errors import EdgeError

METADATA_NAME = "TFLITE_METADATA"
MAX_PACKED_BYTES = 16 << 20  # a packed file larger than this is no label file: not unpacked
TENSOR_AXIS_LABELS = 2  # AssociatedFileType: one label per index of the output's class axis
NORMALIZATION_OPTIONS = 1  # ProcessUnitOptions union: NormalizationOptions
# Field slots of the tables read here (declaration order in metadata_schema.fbs; a union takes two).
MODEL_SUBGRAPHS, MODEL_FILES = 3, 6
SUBGRAPH_INPUTS, SUBGRAPH_OUTPUTS, SUBGRAPH_FILES = 2, 3, 4
TENSOR_PROCESS_UNITS, TENSOR_FILES = 4, 6
UNIT_OPTIONS_TYPE, UNIT_OPTIONS = 0, 1
NORM_MEAN, NORM_STD = 0, 1
FILE_NAME, FILE_TYPE = 0, 2
# What reading a damaged flatbuffer raises: offsets past the end, impossible lengths, bad bytes.
_DAMAGED = (IndexError, AttributeError, ValueError, TypeError, OverflowError, struct.error, UnicodeDecodeError, OSError)


@dataclass(frozen=True)
class Metadata:
    """``mean``/``std`` of the first input in pixel units (0-255), label file names per output, packed files."""

    mean: tuple = ()
    std: tuple = ()
    output_labels: tuple = ()  # for each output: the name of its TENSOR_AXIS_LABELS file, or ""
    other_labels: tuple = ()  # TENSOR_AXIS_LABELS files of the subgraph or model
    packed: dict = field(default_factory=dict)  # name -> bytes of the zip appended to the file


def read_metadata(path):
    """The metadata and packed files of the ``.tflite`` at ``path`` (empty where it has none).

    Metadata that is there but cannot be read is refused in one line: its normalisation and labels
    would otherwise be guessed.
    """
    packed = _packed_files(path)
    try:
        with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
            root = _metadata_table(data)
        return Metadata(packed=packed) if root is None else _parse(root, packed)
    except _DAMAGED as error:
        raise EdgeError(
            f"{path}: its TFLite metadata ({METADATA_NAME}) is damaged and cannot be read ({type(error).__name__})"
        ) from None


def _parse(root, packed):
    subgraphs = _tables(root, MODEL_SUBGRAPHS)
    if not subgraphs:
        return Metadata(other_labels=_label_files(root, MODEL_FILES), packed=packed)
    graph = subgraphs[0]
    inputs, outputs = _tables(graph, SUBGRAPH_INPUTS), _tables(graph, SUBGRAPH_OUTPUTS)
    mean, std = _normalisation(inputs[0]) if inputs else ((), ())
    return Metadata(
        mean=mean,
        std=std,
        output_labels=tuple((_label_files(t, TENSOR_FILES) or ("",))[0] for t in outputs),
        other_labels=_label_files(graph, SUBGRAPH_FILES) + _label_files(root, MODEL_FILES),
        packed=packed,
    )


def _packed_files(path):
    """Files of the zip archive appended to the flatbuffer ({} when there is none)."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = [i for i in archive.infolist() if not i.is_dir() and i.file_size <= MAX_PACKED_BYTES]
            return {info.filename: archive.read(info) for info in entries}
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, RuntimeError, EOFError, zlib.error):
        return {}  # no archive, or one too damaged to hold a label file


def _metadata_table(data):
    """The ``ModelMetadata`` table of the model in ``data``, or None."""
    from ai_edge_litert.schema_py_generated import Model

    model = Model.GetRootAs(data, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if (entry.Name() or b"").decode(errors="replace") != METADATA_NAME:
            continue
        buffer = model.Buffers(entry.Buffer())
        if buffer.Offset() > 1:  # large models keep buffers after the flatbuffer
            if buffer.Offset() + buffer.Size() > len(data):
                raise ValueError("metadata beyond the end of the file")
            blob = bytes(data[buffer.Offset() : buffer.Offset() + buffer.Size()])
        else:
            blob = buffer.DataAsNumpy().tobytes() if buffer.DataLength() else b""
        if len(blob) < 8:
            raise ValueError("metadata too short")
        root = flatbuffers.encode.Get(flatbuffers.packer.uoffset, blob, 0)
        return flatbuffers.table.Table(bytearray(blob), root)
    return None


def _slot(table, slot):
    return table.Offset(4 + 2 * slot)


def _tables(table, slot):
    """The vector of tables in field ``slot``."""
    offset = _slot(table, slot)
    if not offset:
        return []
    start, length = table.Vector(offset), table.VectorLen(offset)
    if start + 4 * length > len(table.Bytes):
        raise ValueError("a vector runs past the end of the metadata")
    return [flatbuffers.table.Table(table.Bytes, table.Indirect(start + 4 * i)) for i in range(table.VectorLen(offset))]


def _subtable(table, slot):
    offset = _slot(table, slot)
    return flatbuffers.table.Table(table.Bytes, table.Indirect(table.Pos + offset)) if offset else None


def _string(table, slot):
    offset = _slot(table, slot)
    return table.String(table.Pos + offset).decode(errors="replace") if offset else ""


def _scalar(table, slot, flags, default=0):
    offset = _slot(table, slot)
    return table.Get(flags, table.Pos + offset) if offset else default


def _floats(table, slot):
    offset = _slot(table, slot)
    return tuple(float(v) for v in table.GetVectorAsNumpy(Float32Flags, offset)) if offset else ()


def _label_files(table, slot):
    """Names of the TENSOR_AXIS_LABELS files among the associated files in field ``slot``."""
    files = _tables(table, slot)
    return tuple(_string(f, FILE_NAME) for f in files if _scalar(f, FILE_TYPE, Int8Flags) == TENSOR_AXIS_LABELS)


def _normalisation(tensor):
    """(mean, std) of the tensor's NormalizationOptions process unit, ((), ()) without one."""
    for unit in _tables(tensor, TENSOR_PROCESS_UNITS):
        if _scalar(unit, UNIT_OPTIONS_TYPE, Uint8Flags) == NORMALIZATION_OPTIONS:
            options = _subtable(unit, UNIT_OPTIONS)
            if options is not None:
                return _floats(options, NORM_MEAN), _floats(options, NORM_STD)
    return (), ()


def packed_labels(metadata, output_position):
    """(file name, names) of the label file packed for output ``output_position``, or ("", [])."""
    named = metadata.output_labels[output_position] if output_position < len(metadata.output_labels) else ""
    candidates = [named] if named else list(metadata.other_labels)
    if not candidates:  # no metadata: a lone text file with "label" in its name
        candidates = [n for n in metadata.packed if n.lower().endswith(".txt") and "label" in n.lower()][:1]
    for name in candidates:
        if name in metadata.packed:
            return name, label_lines(metadata.packed[name].decode("utf-8", errors="replace"))
    return "", []


def label_lines(text):
    """One class name a line (blank lines skipped); a ``0 name`` index prefix on every line is dropped."""
    names = [line.strip() for line in text.splitlines() if line.strip()]
    split = [name.split(maxsplit=1) for name in names]
    if names and all(len(p) == 2 and p[0].rstrip(":") == str(i) for i, p in enumerate(split)):
        names = [p[1] for p in split]
    return names
