"""Pause Python's cyclic garbage collector around a bulk load, and keep what it built out of later
collections (``freeze_long_lived``).

Reading a large pool allocates millions of container objects that all stay alive (records,
models). Each allocation burst triggers collections that find them alive, promote them, and
end in repeated full collections of the whole heap: at 10,000 VMs that was ~40 % of the load.
Reference counting still frees everything that is not a cycle while paused.
Counted, so overlapping pauses in other threads do not turn collection back on early.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_pauses = 0
_was_enabled = False


def pause() -> None:
    """One pause, until its ``resume()`` (``gc_paused`` is the block form)."""
    global _pauses, _was_enabled
    with _lock:
        if _pauses == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pauses += 1


def resume() -> None:
    global _pauses
    with _lock:
        _pauses -= 1
        if _pauses == 0 and _was_enabled:
            gc.enable()


@contextmanager
def gc_paused() -> Iterator[None]:
    pause()
    try:
        yield
    finally:
        resume()


def freeze_long_lived() -> None:
    """Move everything alive now (a freshly loaded inventory above all) out of the collector's
    generations. At 10k VMs the store holds ~100k long-lived objects; left in the oldest
    generation, every full collection (triggered by the allocations of ordinary keystrokes and
    repaints) walks them all and the UI pauses. Frozen, they are never scanned. Collect first so
    no garbage cycle is frozen with them; the models are acyclic, so reference counting still
    frees a replaced store."""
    gc.collect()
    gc.freeze()
