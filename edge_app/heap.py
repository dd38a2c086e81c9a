"""Keep the memory a frame frees for the next frame, instead of giving it back to the kernel.

Every frame allocates and frees the same few megabytes: the model's output (2.9 MB of float32 scores
for 11 classes at 257x257), the per-class planes of the argmax, the overlay. glibc's ``malloc`` maps
blocks above its mmap threshold (128 KiB, raised as large blocks are freed) straight from the kernel and
trims the top of its heap once more than twice that is free, so each frame's buffers come back as
fresh pages: about 1,300 page faults a frame for a float-output model, 4 ms of a 1.2 ms argmax
(``bench/edge_fps.py``). Fixed thresholds, set once, keep those pages in the process: its size settles
at its peak working set and stays there.
"""

import ctypes
import functools
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
MMAP_THRESHOLD = 64 << 20  # blocks up to this come from the heap, whose freed pages are reused
TRIM_THRESHOLD = 256 << 20  # free memory at the top of the heap kept, up to this


@functools.cache
def keep_freed_memory():
    """Set glibc's malloc thresholds for this process (once); False where the C library is not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
