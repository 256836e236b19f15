"""Giving the C heap's free memory back to the operating system (glibc's ``malloc``).

Decoding a list of 100,000 objects allocates far more than the cache keeps: each page's body,
its decoded items, their ``managedFields``, all freed again item by item. CPython keeps its
small objects in arenas of its own; everything larger (page bodies, long strings, big dict
tables, a group's packed status, TLS buffers) comes from the C library's ``malloc``, which
kept that garbage resident long after it was freed, for two reasons:

- glibc returns freed memory to the system only from the top of its heap, never from the
  middle: :func:`release_free_heap` (``malloc_trim(0)``) releases every whole free page
  wherever it lies; the informers call it when their lists are done;
- each time a block it had mapped on its own (from 128 KiB up) is freed, glibc raises that
  threshold to the block's size (up to 32 MiB) and the top-of-heap trim threshold to twice
  that: after one list page of a few MB, every later page body was carved from the heap, and
  up to tens of MB free at its top stayed resident. :func:`fix_mmap_threshold` pins it.

Where the C library has neither call (musl, macOS) nothing changes. Figures: docs/operator.md,
"Memory"."""

from __future__ import annotations

import ctypes
import functools
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

#: ``mallopt``'s parameter for the mmap threshold (``M_MMAP_THRESHOLD`` in ``malloc.h``).
M_MMAP_THRESHOLD = -3
#: Blocks from this size up get pages of their own, unmapped when freed (glibc's initial
#: value, kept instead of raised).
MMAP_THRESHOLD = 128 * 1024


def libc_function(name: str, load: Callable[[str | None], object] = ctypes.CDLL) -> Callable[..., Any] | None:
    """The C library's function ``name``, or None where it has none."""
    try:
        libc = load(None)  # the process's own symbols: whichever C library it runs on
    except OSError:
        return None
    function = getattr(libc, name, None)
    return function if callable(function) else None


def release_free_heap(trim: Callable[[int], int] | None) -> bool:
    """Hand the heap's whole free pages back to the system (``trim``: ``malloc_trim``);
    whether any were released. Best effort: memory kept is no error."""
    if trim is None:
        return False
    try:
        return bool(trim(0))  # pad 0: keep nothing spare at the top
    except Exception as exc:
        log.debug("malloc_trim failed: %r", exc)
        return False


def fix_mmap_threshold(mallopt: Callable[[int, int], int] | None, threshold: int = MMAP_THRESHOLD) -> bool:
    """Pin glibc's mmap threshold (setting it turns off the raising, of the trim threshold
    too): large blocks are unmapped when freed, the heap's free top is returned at once.
    Whether it took. Call at process start, before the first large allocation."""
    if mallopt is None:
        return False
    try:
        return bool(mallopt(M_MMAP_THRESHOLD, threshold))
    except Exception as exc:
        log.debug("mallopt failed: %r", exc)
        return False


#: :func:`release_free_heap` with this process's C library (looked up once, at import).
release: Callable[[], bool] = functools.partial(release_free_heap, libc_function("malloc_trim"))
