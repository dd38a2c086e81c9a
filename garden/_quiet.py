"""Importing Keras without TensorFlow's start-up log lines on the terminal.

Since TensorFlow 2.19 the lines its C++ core writes on import (oneDNN, CUDA probes, "All log
messages before absl::InitializeLog()") ignore ``TF_CPP_MIN_LOG_LEVEL`` (tensorflow/tensorflow
#100442), so a one-line error of the ``garden`` command reached the terminal seven lines long.
"""

import contextlib
import os
import sys


@contextlib.contextmanager
def native_stderr_discarded():
    """Send what is written to file descriptor 2 (C and C++ libraries included) to nowhere, meanwhile."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def import_keras_quietly():
    """Import Keras (and so its backend) with file descriptor 2 silenced, unless the caller wants the logs.

    The logs stay when Keras is already imported, when ``TF_CPP_MIN_LOG_LEVEL`` asks for them (below
    3) or when ``GARDEN_DEBUG`` is set. A failed import is retried aloud, so that its error shows.
    """
    wanted = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3") != "3" or os.environ.get("GARDEN_DEBUG")
    if "keras" in sys.modules or wanted:
        return
    try:
        with native_stderr_discarded():
            import keras  # noqa: F401
    except Exception:  # noqa: BLE001  (the import below raises it again, with its messages)
        pass
    import keras  # noqa: F401,F811
