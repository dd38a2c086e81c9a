"""Writing outputs safely: to a temporary name beside the target, renamed only when complete."""

import contextlib
import os
import tempfile
from pathlib import Path


def check_writable(path):
    """Raise ``OSError`` naming the problem if ``path`` could not be written (before any work)."""
    parent = Path(path).expanduser().resolve().parent
    if not parent.is_dir():
        raise OSError(f"cannot write {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise OSError(f"cannot write {path}: folder {parent} is not writable")
    if Path(path).is_dir():
        raise OSError(f"cannot write {path}: it is a folder")


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path with the same suffix; on success it replaces ``path``, on error it is removed."""
    path = Path(path)
    check_writable(path)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.resolve().parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        yield temporary
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes files private; outputs get the usual mode
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def write_text(path, text):
    """Atomically write ``text`` to ``path``."""
    with atomic_path(path) as temporary:
        Path(temporary).write_text(text)
