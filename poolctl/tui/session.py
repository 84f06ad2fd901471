"""One connected (or connecting) pool as the TUI sees it.

A ``PoolSession`` owns the pool's backend and its ``InventoryStore``. Backend threads
only ever touch ``push_changes`` (a locked buffer); everything else belongs to the UI
thread, so the store keeps its single writer.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from poolctl.backends.base import Backend
from poolctl.config import PoolConfig
from poolctl.inventory import InventoryStore
from poolctl.loading import FirstLoad
from poolctl.model import Change, ConnectionState, ConnectionStatus


@dataclass(eq=False)
class PoolSession:
    config: PoolConfig
    backend: Backend | None = None
    store: InventoryStore | None = None
    first_load: FirstLoad | None = None  # the first attempt, when it started before the app
    state: ConnectionState = None  # type: ignore[assignment]  # set in __post_init__
    # monotonic time of the next retry while LOST, for a live countdown in the tree
    retry_at: float | None = None
    _pending: list[Change] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # Set by the UI when it shuts down: connect loops and retries stop.
    stopping: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        if self.state is None:
            self.state = ConnectionState(pool=self.config.name, status=ConnectionStatus.CONNECTING)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def connected(self) -> bool:
        return self.store is not None and self.state.status == ConnectionStatus.CONNECTED

    def set_state(self, state: ConnectionState) -> None:
        self.state = state
        self.retry_at = (
            time.monotonic() + state.retry_in_s
            if state.status == ConnectionStatus.LOST and state.retry_in_s is not None
            else None
        )

    def push_changes(self, changes: list[Change]) -> bool:
        """Buffer changes from a backend thread; True when the buffer was empty.

        Only the first push into an empty buffer needs to wake the UI: later ones ride
        along with it, which is what coalesces a burst into one redraw.
        """
        with self._lock:
            was_empty = not self._pending
            self._pending.extend(changes)
            return was_empty

    def take_changes(self) -> list[Change]:
        with self._lock:
            pending, self._pending = self._pending, []
            return pending

    def status_text(self) -> str:
        """The connection state in words (never colour alone)."""
        st = self.state
        if st.status == ConnectionStatus.CONNECTING:
            return "connecting…"
        if st.status == ConnectionStatus.CONNECTED:
            return "connected"
        if st.status == ConnectionStatus.LOST:
            if self.retry_at is not None:
                left = max(0, round(self.retry_at - time.monotonic()))
                return f"lost — retrying in {left}s"
            return "lost — retrying"
        if st.status == ConnectionStatus.FAILED:
            return f"failed: {st.message}" if st.message else "failed"
        return "closed"
