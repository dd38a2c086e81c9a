"""Writing outputs safely: to a temporary name beside the target, renamed only when complete.

Every temporary name garden makes carries a mark and the writing process's id
(``.last.garden-partial-4242-k3j9.keras``), so a later run can tell its own leftovers from a
user's files and from a run still writing: :func:`remove_stale_temporaries` deletes only marked
names whose process is gone.
"""

import contextlib
import errno
import os
import re
import secrets
from pathlib import Path

PARTIAL_MARK = ".garden-partial-"
_PARTIAL_NAME = re.compile(r"^\..*" + re.escape(PARTIAL_MARK) + r"(\d+)-[0-9a-f]+(\..*)?$")


def check_writable(path):
    """Raise ``OSError`` naming the problem if ``path`` could not be written (before any work)."""
    parent = Path(path).expanduser().resolve().parent
    if not parent.is_dir():
        raise OSError(f"cannot write {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise OSError(f"cannot write {path}: folder {parent} is not writable")
    if Path(path).is_dir():
        raise OSError(f"cannot write {path}: it is a folder")


def temporary_name(path):
    """A hidden, marked sibling name for ``path``, unique to this process, keeping its suffixes."""
    path = Path(path)
    stem, _, suffixes = path.name.partition(".")
    suffixes = f".{suffixes}" if suffixes else ""
    return path.with_name(f".{stem}{PARTIAL_MARK}{os.getpid()}-{secrets.token_hex(4)}{suffixes}")


def is_temporary(name):
    """Whether ``name`` is one of garden's marked temporary names (of any process)."""
    return _PARTIAL_NAME.match(name) is not None


def process_alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def remove_stale_temporaries(folder):
    """Delete the marked temporary files in ``folder`` left by garden processes that no longer run.

    Returns the names removed. Nothing without the mark is touched, nor a live process's file.
    """
    removed = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _PARTIAL_NAME.match(entry.name)
        if not match or process_alive(int(match.group(1))) or not entry.is_file() or entry.is_symlink():
            continue
        with contextlib.suppress(OSError):
            entry.unlink()
            removed.append(entry.name)
    return removed


def describe_os_error(error, what, kept=None):
    """One line for an ``OSError`` while writing ``what``: the cause in words, and what is safe on disk."""
    reasons = {
        errno.ENOSPC: "no space left on the device",
        errno.EDQUOT: "disk quota exceeded",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.EROFS: "the filesystem is read-only",
    }
    reason = reasons.get(error.errno) or error.strerror or str(error)
    line = f"cannot write {what}: {reason}"
    return f"{line}; {kept}" if kept else line


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path with the same suffix; on success it replaces ``path``, on error it is removed.

    Stale temporaries of killed garden processes in the same folder are removed first.
    """
    path = Path(path)
    check_writable(path)
    remove_stale_temporaries(path.resolve().parent)
    temporary = temporary_name(path.resolve())
    umask = os.umask(0)
    os.umask(umask)
    try:
        yield str(temporary)
        if temporary.exists():
            os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
            os.unlink(temporary)
        raise


def write_text(path, text):
    """Atomically write ``text`` to ``path``."""
    with atomic_path(path) as temporary:
        Path(temporary).write_text(text)


@contextlib.contextmanager
def created_folder(folder):
    """Create ``folder`` and its missing parents; if the block fails, remove those this call made (when empty).

    Yields the folder. A folder that existed before is never removed, nor one something else filled.
    """
    folder = Path(folder)
    made, probe = [], folder
    while not probe.exists() and probe != probe.parent:
        made.append(probe)
        probe = probe.parent
    if not probe.is_dir():
        raise OSError(f"cannot make folder {folder}: {probe} is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    try:
        yield folder
    except BaseException:
        for path in made:  # innermost first
            with contextlib.suppress(OSError):
                path.rmdir()
        raise
