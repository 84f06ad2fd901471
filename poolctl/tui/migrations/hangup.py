"""The terminal hung up (an SSH connection dropped): nothing can be shown or asked any more, but
the moves under way are followed to their end, so that the audit log says how each ended (by
default a hang-up kills poolctl and leaves no line); then poolctl quits.

Batches start no further move: their running ones are followed to the end like single moves,
and each batch's record says it was stopped by the hang-up and names the VMs not moved."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from textual.app import App

if TYPE_CHECKING:
    from poolctl.tui.migrations.center import MigrationCenter

FOLLOW_S = 3600.0  # after a hang-up, moves under way are followed this long at most
REASON = "the terminal hung up (the SSH connection dropped?)"


class HangUp:
    """SIGHUP's handler while the app runs (``install`` on mount, ``uninstall`` on unmount)."""

    def __init__(self, app: App[Any], center: Callable[[], MigrationCenter], follow_s: float = FOLLOW_S) -> None:
        self.app = app
        self.center = center  # the app's, made on first use
        self.follow_s = follow_s
        self._before: signal.Handlers | Callable[..., object] | int | None = None

    def install(self) -> None:
        with contextlib.suppress(ValueError):  # not the main thread: no hang-ups to handle
            self._before = signal.signal(signal.SIGHUP, self._on_signal)

    def uninstall(self) -> None:
        if self._before is not None:
            with contextlib.suppress(ValueError):
                signal.signal(signal.SIGHUP, self._before)
            self._before = None

    def _on_signal(self, signum: int, frame: object) -> None:
        """Runs as a signal handler, at once: the screen's writes go to /dev/null from here on, or
        the first write to the dead terminal (EIO) would end Textual's writer thread and the next
        ones would block the app for good."""
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            with contextlib.suppress(OSError):
                os.dup2(devnull, fd)
        os.close(devnull)
        asyncio.get_running_loop().call_soon_threadsafe(self.follow_then_quit)

    def follow_then_quit(self) -> None:
        """(the UI thread) Stop the batches' new starts, wait for every move under way and every
        batch's record, then quit with 128 + SIGHUP."""
        center = self.center()
        ends = center.batches.halt_all(REASON) + [c.finished for c in center.moving()]
        self.app.run_worker(lambda: self._wait(ends), thread=True, group="hangup", exit_on_error=False)

    def _wait(self, ends: list[threading.Event]) -> None:
        deadline = time.monotonic() + self.follow_s
        for finished in ends:
            finished.wait(max(0.0, deadline - time.monotonic()))
        self.app.call_from_thread(self.app.exit, return_code=128 + signal.SIGHUP)
