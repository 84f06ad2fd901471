"""Loading a pool: config -> backend -> connect -> inventory, for the TUI and every command.

For the TUI, each pool's first connect and read is started before the TUI is imported.
Importing Textual and building the screens takes ~0.3 s; a pool's login and bulk read is
largely waiting on the network and on the hypervisor. Started first, the two overlap: the app
takes over each pool's first attempt (``FirstLoad``) instead of starting it once its screens
are up. No Textual here: the CLI runs this before importing the TUI.
"""

from __future__ import annotations

import gc
import threading
from typing import TYPE_CHECKING

from poolctl import backends
from poolctl.gcpause import gc_paused

if TYPE_CHECKING:
    from poolctl.backends.base import Backend
    from poolctl.config import PoolConfig
    from poolctl.model import Inventory


def load_pool(config: PoolConfig, *, full: bool = False) -> tuple[Backend, Inventory]:
    """A connected backend and what it read; the backend is closed again on failure.

    By default its ``first_inventory()``, the TUI's (the rest arrives as changes once ``watch()``
    runs); ``full``: its whole ``inventory()``, for a command that prints or acts on one snapshot.

    The collector is paused for the read and what it built is frozen before it resumes: the
    inventory lives as long as the connection, and resuming with ~1 M new objects pending would
    start a full collection of them (~0.1 s at 10,000 VMs) for nothing."""
    backend: Backend | None = None
    try:
        with gc_paused():
            backend = backends.load(config.backend)(config)
            backend.connect()
            inventory = backend.inventory() if full else backend.first_inventory()
            gc.freeze()
    except BaseException:
        close_quietly(backend)
        raise
    return backend, inventory


def close_quietly(backend: Backend | None) -> None:
    """Close without raising: the caller is already done with the pool, or reporting why not."""
    if backend is None:
        return
    try:
        backend.close()
    except Exception:
        pass


class FirstLoad:
    """``load_pool(config)`` in a daemon thread; ``result()`` waits for it."""

    def __init__(self, config: PoolConfig):
        self.config = config
        self._done = threading.Event()
        self._result: tuple[Backend, Inventory] | None = None
        self._error: BaseException | None = None
        threading.Thread(target=self._run, name=f"poolctl-load-{config.name}", daemon=True).start()

    def _run(self) -> None:
        try:
            self._result = load_pool(self.config)
        except BaseException as exc:
            self._error = exc
        finally:
            self._done.set()

    def result(self, stopping: threading.Event | None = None) -> tuple[Backend, Inventory] | None:
        """The loaded pool, or what went wrong raised here; None when ``stopping`` was set
        first (the backend is then closed when the load ends)."""
        while not self._done.wait(0.1):
            if stopping is not None and stopping.is_set():
                threading.Thread(target=self._discard, daemon=True).start()
                return None
        if self._error is not None:
            raise self._error
        return self._result

    def _discard(self) -> None:
        self._done.wait()
        if self._result is not None:
            close_quietly(self._result[0])


def start(pools: list[PoolConfig]) -> dict[str, FirstLoad]:
    return {p.name: FirstLoad(p) for p in pools}
