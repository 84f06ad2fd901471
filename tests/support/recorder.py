"""Collects what a backend's ``watch`` delivers, for tests that wait on a particular change."""

from __future__ import annotations

import queue
import time

from poolctl.model import VM, Change, ConnectionState

EVENT_WAIT_S = 10.0


class Recorder:
    """Collects what ``watch`` delivers, for waiting on a particular change."""

    def __init__(self):
        self.changes: queue.Queue[Change] = queue.Queue()
        self.states: list[ConnectionState] = []
        self.seen: list[Change] = []  # everything, in order (``changes`` is consumed by waits)

    def on_change(self, change: Change) -> None:
        self.seen.append(change)
        self.changes.put(change)

    def on_state(self, state: ConnectionState) -> None:
        self.states.append(state)

    def wait_vm(self, ref: str, predicate, timeout: float = EVENT_WAIT_S) -> VM:
        deadline = time.monotonic() + timeout
        seen = []
        while (left := deadline - time.monotonic()) > 0:
            try:
                change = self.changes.get(timeout=left)
            except queue.Empty:
                break
            if change.object_kind == "vm" and change.ref == ref and change.obj is not None:
                seen.append(change.obj)
                if predicate(change.obj):
                    return change.obj
        raise AssertionError(
            f"no matching change for VM {ref} within {timeout} s; saw {[(v.power_state, v.host) for v in seen]}"
        )
