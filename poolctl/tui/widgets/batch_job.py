"""What a batch panel needs from the batch it shows: a way to cancel it, before and after its
runner exists (the runner is built in the batch's own thread, after the host is disabled)."""

from __future__ import annotations

import threading

from poolctl.migration.batch import BatchRunner


class BatchJob:
    """One batch (evacuation, bulk move, restore) as the UI follows it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runner: BatchRunner | None = None
        self._cancelled = False
        self._halt = ""  # halt(): why no more moves start
        self.finished = threading.Event()  # the batch thread has ended, whatever happened

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def attach(self, runner: BatchRunner) -> None:
        """The batch thread built its runner: a cancel asked before now applies to it."""
        with self._lock:
            self._runner = runner
            cancelled, halt = self._cancelled, self._halt
        if halt:
            runner.halt(halt)
        if cancelled:
            runner.cancel()

    def halt(self, reason: str) -> None:
        """Start no more moves (before the runner exists too); the running ones go on to their end."""
        with self._lock:
            self._halt = self._halt or reason
            runner = self._runner
        if runner is not None:
            runner.halt(reason)

    def cancel(self) -> list[str]:
        """Start no more moves and ask the running ones to stop (blocks on the hypervisor: a worker
        calls it); what each running move answered, in words."""
        with self._lock:
            self._cancelled = True
            runner = self._runner
        if runner is None:
            return ["cancelled before any move started"]
        return runner.cancel()
