"""Let a process that handles image-sized buffers keep the memory it frees.

glibc serves each allocation above 128 KiB with its own mmap and gives freed memory at the
top of a heap back to the kernel. A request or job that allocates a few buffers of some
hundred KiB to a few MiB (an image, its body, its decoded pixels) then faults in fresh
zeroed pages every time: in the API that was a tenth of its CPU per 1080p image. Raising
both thresholds to 32 MiB keeps such buffers in the process for reuse, and bounds what a
process may hold on to that it does not use.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1  # from glibc's malloc.h
M_MMAP_THRESHOLD = -3
KEEP_BYTES = 32 * 1024 * 1024


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds; False where that did not happen (another libc)."""
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        mallopt = None
    if mallopt is None:
        log.debug("no glibc mallopt here: malloc keeps its defaults")
        return False
    applied = [mallopt(option, KEEP_BYTES) == 1 for option in (M_MMAP_THRESHOLD, M_TRIM_THRESHOLD)]
    if not all(applied):
        log.debug("mallopt refused a threshold: malloc keeps that default")
    return all(applied)
