"""What a ``garden`` command prints: its own lines, progress on long work, and nothing from beneath.

TensorFlow, the TFLite converter, LiteRT, tf2onnx and onnxruntime write to the process's file
descriptors 1 and 2 from C++ ("fully_quantize: 0, ...", "INFO: Created TensorFlow Lite XNNPACK
delegate") and through Python's ``warnings`` and ``logging``. While a command runs
(:func:`command_output`), descriptors 1 and 2 point at a scratch file and ``sys.stderr`` with them,
so all of that is kept off the terminal; ``sys.stdout`` (the command's results, Keras's progress
bar) and the command's own notes, progress and errors go to the terminal. ``--verbose`` or
``GARDEN_DEBUG=1`` leave everything as it is; ``--quiet`` keeps errors only.

Outside a command (``garden`` used from Python) nothing is redirected: :func:`note` and
:func:`progress` write to ``sys.stderr`` as it is.
"""

import contextlib
import io
import json
import os
import sys
import tempfile
import time


class _State:
    terminal = None  # the real stderr while a command runs; None outside one
    quiet = False


_state = _State()


def terminal():
    """Where the command's own lines go: the real stderr during a command, else ``sys.stderr``."""
    return _state.terminal or sys.stderr


def note(message):
    """One line of the command's own on stderr (``wrote ...``); nothing under ``--quiet``."""
    if not _state.quiet:
        print(message, file=terminal(), flush=True)


def print_json(figures):
    """A command's figures on stdout as JSON (``--json``): numbers as numbers, paths as text."""
    print(json.dumps(figures, indent=1, default=str))


def debugging():
    return bool(os.environ.get("GARDEN_DEBUG"))


@contextlib.contextmanager
def command_output(quiet=False, verbose=False, capture=True):
    """Run a command with the libraries' output captured (see the module docstring).

    On an error the captured text is dropped too: the command's one-line error says what failed,
    and ``--verbose`` shows the rest. ``capture=False`` (a command called from Python, as the tests
    do) leaves the descriptors alone and applies ``quiet`` only.
    """
    _state.quiet = quiet
    if verbose or debugging() or not capture:
        try:
            with open(os.devnull, "w") if quiet else contextlib.nullcontext() as null:
                with contextlib.redirect_stdout(null) if quiet else contextlib.nullcontext():
                    yield
        finally:
            _state.quiet = False
        return
    saved_stdout, saved_stderr = sys.stdout, sys.stderr
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    real_out, real_err = os.dup(1), os.dup(2)
    scratch = tempfile.TemporaryFile(prefix="garden-output-")
    try:
        os.dup2(scratch.fileno(), 1)
        os.dup2(scratch.fileno(), 2)
        sys.stdout = open(os.devnull, "w") if quiet else _reopen(real_out, saved_stdout)  # noqa: SIM115
        sys.stderr = _reopen(2, saved_stderr)
        _state.terminal = _reopen(real_err, saved_stderr)  # Python's warnings go to sys.stderr: the scratch file
        yield
    finally:
        for stream in (sys.stdout, sys.stderr, _state.terminal):
            if stream is not None:
                with contextlib.suppress(OSError, ValueError):
                    stream.flush()
        os.dup2(real_out, 1)
        os.dup2(real_err, 2)
        for descriptor in (real_out, real_err):
            os.close(descriptor)
        scratch.close()
        if quiet:
            sys.stdout.close()  # the devnull stream opened above
        sys.stdout, sys.stderr = saved_stdout, saved_stderr
        _state.terminal, _state.quiet = None, False


def release_terminal():
    """Point descriptors 1 and 2 back at the terminal (before ``exec``: the new program keeps them)."""
    if _state.terminal is not None:
        sys.stdout.flush()
        os.dup2(sys.stdout.fileno(), 1)
        os.dup2(_state.terminal.fileno(), 2)


def _reopen(descriptor, like):
    """A line-buffered text stream on ``descriptor`` with ``like``'s encoding, that does not close it."""
    encoding = getattr(like, "encoding", None) or "utf-8"
    errors = getattr(like, "errors", None) or "backslashreplace"
    return io.TextIOWrapper(
        open(descriptor, "wb", buffering=0, closefd=False),  # noqa: SIM115
        encoding=encoding,
        errors=errors,
        line_buffering=True,
        write_through=True,
    )


@contextlib.contextmanager
def stage(label):
    """``with stage("converting to ONNX"):`` one line on the terminal while a step with no count runs."""
    stream = terminal()
    shown = not _state.quiet and _isatty(stream)
    if shown:
        stream.write(f"\r{label}...\033[K")
        stream.flush()
    try:
        yield
    finally:
        if shown:
            stream.write("\r\033[K")
            stream.flush()


class progress:
    """``for item in progress(items, "calibrating", total)``: a counter on the terminal, on one line.

    Shown only when the command's stderr is a terminal (never in a pipe or a CI log) and not under
    ``--quiet``; the line is cleared when the loop ends. Also usable by hand: ``bar.advance()``.
    """

    def __init__(self, items=None, label="", total=None, stream=None):
        self.items, self.label = items, label
        self.total = total if total is not None else _length(items)
        self.stream = stream or terminal()
        self.shown = not _state.quiet and _isatty(self.stream)
        self.done, self.start, self.last_drawn = 0, time.monotonic(), 0.0

    def __iter__(self):
        try:
            for item in self.items:
                yield item
                self.advance()
        finally:
            self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def advance(self, count=1):
        self.done += count
        now = time.monotonic()
        if self.shown and (now - self.last_drawn > 0.1 or self.done == self.total):
            self.last_drawn = now
            of = f"/{self.total}" if self.total else ""
            self.stream.write(f"\r{self.label} {self.done}{of} ({now - self.start:.0f} s)\033[K")
            self.stream.flush()

    def close(self):
        if self.shown and self.done:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.shown = False


def keras_epochs(label, epochs):
    """A Keras callback that shows ``label epoch/epochs`` with :class:`progress` (for ``verbose=0`` fits)."""
    import keras

    class EpochProgress(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.shown = progress(label=label, total=epochs)

        def on_epoch_end(self, epoch, logs=None):
            self.shown.advance()

        def on_train_end(self, logs=None):
            self.shown.close()

    return EpochProgress()


def _length(items):
    try:
        return len(items)
    except TypeError:
        return None


def _isatty(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
