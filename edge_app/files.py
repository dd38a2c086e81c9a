"""Temporary output names, the same convention as ``garden/_files.py`` (which edge_app may not import).

A file being written is named ``.{stem}.garden-partial-{pid}-{hex}{suffixes}`` beside its target:
hidden, marked and carrying the writer's process id, so that a later run (of garden or of
garden-edge) can tell a killed run's leftovers from a user's files and from a run still writing.
"""

import contextlib
import os
import re
import secrets
from pathlib import Path

PARTIAL_MARK = ".garden-partial-"
_PARTIAL_NAME = re.compile(r"^\..*" + re.escape(PARTIAL_MARK) + r"(\d+)-[0-9a-f]+(\..*)?$")


def temporary_name(path):
    """A hidden, marked sibling name for ``path``, unique to this process, keeping its suffixes."""
    path = Path(path)
    stem, _, suffixes = path.name.partition(".")
    suffixes = f".{suffixes}" if suffixes else ""
    return path.with_name(f".{stem}{PARTIAL_MARK}{os.getpid()}-{secrets.token_hex(4)}{suffixes}")


def is_temporary(name):
    """True for a name :func:`temporary_name` makes (from any process)."""
    return bool(_PARTIAL_NAME.match(name))


def process_alive(pid):
    """True if a process with this id runs (ours, or someone else's we may not signal)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(folder):
    """Delete the marked temporary files in ``folder`` whose writing process no longer runs.

    Returns the names removed. Nothing without the mark is touched, nor a live process's file.
    """
    removed = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _PARTIAL_NAME.match(entry.name)
        if not match or process_alive(int(match.group(1))) or entry.is_symlink() or not entry.is_file():
            continue
        with contextlib.suppress(OSError):
            entry.unlink()
            removed.append(entry.name)
    return removed
