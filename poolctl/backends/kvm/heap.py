"""Giving the C heap's free memory back to the system after a host's first read.

libvirt's in-process drivers parse a whole host when they open it: the test driver's XML of
5,000 domains is ~50 MB of libxml2 tree, freed once the domains are built, but glibc keeps the
freed pages resident. Python's own objects live in separate arenas and never reuse them, so
everything poolctl reads next (the domains' records, the TUI) was stacked on top: trimming the
heap then took a 5,000-domain TUI from 192 to ~170 MB peak RSS. A no-op where the C library
has no ``malloc_trim`` (it is glibc's).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable


def _find() -> Callable[[int], int] | None:
    # The process's own symbols (libc is always loaded), not ctypes.util.find_library: that
    # runs ldconfig in a child process (~5 ms of every start-up).
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_TRIM = _find()


def give_back() -> None:
    """Return the C heap's free pages to the system (a few ms for tens of MB)."""
    if _TRIM is not None:
        _TRIM(0)
