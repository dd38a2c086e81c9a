"""The two ways LiteRT runs a model: its ``CompiledModel`` API (LiteRT 2.x) and the classic ``Interpreter``.

The ``Interpreter`` always opens the file first: it reads the tensors' shapes, types and quantization
and the graph's operators, and it names an operator the installed LiteRT lacks. Inference then runs
on a :class:`CompiledRunner` where the installed LiteRT has ``CompiledModel`` (``--runtime compiled``,
the default there), else on an :class:`InterpreterRunner`.
"""

import atexit
import contextlib
import functools
import os
import re
import sys
import tempfile

import numpy as np

from edge_app.errors import EdgeError

RUNTIMES = ("compiled", "interpreter")
# LiteRT's own progress lines on stderr (C level): delegate created, environment and accelerators set up
_CHATTER = re.compile(r"^(INFO: |WARNING: \[|└ Could not load shared library)")
_MISSING_OP = (
    re.compile(r"unresolved custom op: ([\w.-]+)"),
    re.compile(r"op for builtin opcode '(\w+)' version '(\d+)'"),
)


def compiled_model_class():
    """LiteRT's ``CompiledModel`` class, or None where the installed ai-edge-litert has none."""
    try:
        from ai_edge_litert.compiled_model import CompiledModel
    except ImportError:
        return None
    return CompiledModel


def default_runtime():
    return "compiled" if compiled_model_class() else "interpreter"


def litert_version():
    try:
        from importlib.metadata import version

        return version("ai-edge-litert")
    except Exception:  # noqa: BLE001 - a version is only shown in messages
        return "?"


@contextlib.contextmanager
def chatter_filtered():
    """Drop LiteRT's INFO/set-up lines from stderr (C level) while the block runs; pass the rest on."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            lines = caught.read().decode(errors="replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if not _CHATTER.match(line)))


def open_interpreter(path, threads):
    """An allocated ``Interpreter`` for ``path``; one line naming a missing operator or what LiteRT said."""
    from ai_edge_litert.interpreter import Interpreter

    try:
        with chatter_filtered():
            interpreter = Interpreter(model_path=str(path), num_threads=int(threads))
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as error:
        raise EdgeError(_load_failure(path, str(error))) from None
    return interpreter


def _load_failure(path, text):
    custom, builtin = (pattern.search(text) for pattern in _MISSING_OP)
    if custom:
        return f"{path} needs the custom op {custom.group(1)}, which the installed LiteRT ({litert_version()}) lacks"
    if builtin:
        op, version = builtin.groups()
        return f"{path} needs the op {op} version {version}, which the installed LiteRT ({litert_version()}) lacks"
    reason = text.strip().splitlines()[0] if text.strip() else "unknown error"
    return f"{path} could not be loaded by LiteRT (corrupt or truncated?): {reason}"


@functools.cache
def _quiet_teardown():
    """At exit, after everything of ours is printed, send stderr to /dev/null.

    LiteRT keeps one environment of its own from a CompiledModel's first run to the process's end, and its
    C++ teardown announces each accelerator it destroys (``INFO: ... DestroyAccelerator``) on stderr, where
    the app promises one line or none.
    """

    def silence():
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)

    atexit.register(silence)


class InterpreterRunner:
    """Inference through ``Interpreter.invoke``: set the input, invoke, copy the chosen output."""

    name = "interpreter"

    def __init__(self, interpreter, input_index, output_index):
        self.interpreter, self.input_index, self.output_index = interpreter, input_index, output_index

    def run(self, tensor):
        self.interpreter.set_tensor(self.input_index, tensor)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output_index)

    def close(self):
        self.interpreter = None


class CompiledRunner:
    """Inference through LiteRT's ``CompiledModel``: input and output buffers made once, reused every frame."""

    name = "compiled"

    def __init__(self, path, threads, output):
        from ai_edge_litert.hardware_accelerator import HardwareAccelerator
        from ai_edge_litert.options import CpuOptions, Options

        options = Options(hardware_accelerators=HardwareAccelerator.CPU, cpu_options=CpuOptions(num_threads=threads))
        try:
            with chatter_filtered():
                self.model = compiled_model_class().from_file(str(path), options=options)
                signature = next(iter(self.model.get_signature_list()))
                indices = [d["index"] for d in self.model.get_output_tensor_details(signature).values()]
                self.inputs = self.model.create_input_buffers(0)
                self.outputs = self.model.create_output_buffers(0)
                self.model.run_by_index(0, self.inputs, self.outputs)  # the first run sets LiteRT up, and says so
        except (ValueError, RuntimeError, StopIteration) as error:
            raise EdgeError(f"{path} could not be compiled by LiteRT ({error}); try --runtime interpreter") from None
        if output["index"] not in indices:
            raise EdgeError(f"{path}: output {output['name']} is not in its signature; try --runtime interpreter")
        _quiet_teardown()
        self.position = indices.index(output["index"])
        self.shape = tuple(int(s) for s in output["shape"])
        self.size, self.dtype = int(np.prod(self.shape)), np.dtype(output["dtype"])

    def run(self, tensor):
        self.inputs[0].write(tensor)
        self.model.run_by_index(0, self.inputs, self.outputs)
        return self.outputs[self.position].read(self.size, self.dtype).reshape(self.shape)

    def close(self):
        """Free the buffers and the model (LiteRT says goodbye on stderr, filtered here)."""
        with chatter_filtered():
            self.inputs = self.outputs = self.model = None


def open_runner(path, threads, runtime, interpreter, input_detail, output_detail):
    """The runner for ``runtime`` (``compiled`` or ``interpreter``; None: compiled where LiteRT has it).

    A model whose input size is set at load time (a dynamic input), that has no signature or that
    ``CompiledModel`` cannot take runs on the interpreter unless ``compiled`` was asked for.
    """
    asked = runtime
    runtime = runtime or default_runtime()
    if runtime == "compiled" and not compiled_model_class():
        raise EdgeError(f"--runtime compiled: the installed LiteRT ({litert_version()}) has no CompiledModel API")
    dynamic = -1 in [int(s) for s in input_detail.get("shape_signature", input_detail["shape"])][1:]
    if runtime == "compiled" and (asked or (interpreter.get_signature_list() and not dynamic)):
        try:
            return CompiledRunner(path, threads, output_detail)
        except EdgeError:
            if asked:
                raise
    return InterpreterRunner(interpreter, input_detail["index"], output_detail["index"])
