"""Connecting the app's pools: each pool's connect loop, run in the app's connect worker (a
thread), and its backend's callbacks. Neither touches the app's state: what they learn goes to
the UI thread as messages (``InventoryLoaded``, ``ChangesPending``, ``ConnectionChanged``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from poolctl.errors import describe
from poolctl.loading import close_quietly, load_pool
from poolctl.model import Change, ConnectionState, ConnectionStatus
from poolctl.tui.messages import ChangesPending, ConnectionChanged, InventoryLoaded
from poolctl.tui.session import PoolSession, retries_itself

if TYPE_CHECKING:
    from textual.message import Message

RETRY_FIRST_S = 2.0
RETRY_MAX_S = 60.0
PAINT_WAIT_S = 2.0  # the watcher starts after the first paint, or this long after its snapshot at most


class Connector:
    """Connects pools and relays their backends' news through ``post`` (the app's
    ``post_message``, safe from any thread)."""

    def __init__(self, post: Callable[[Message], bool]) -> None:
        self._post = post
        self._painted: dict[str, threading.Event] = {}  # pool -> set once its first load is on screen

    def post_state(
        self, session: PoolSession, status: ConnectionStatus, message: str = "", *, retry_in_s: float | None = None
    ) -> None:
        state = ConnectionState(pool=session.name, status=status, message=message, retry_in_s=retry_in_s)
        self._post(ConnectionChanged(state))

    def take_painted(self, pool: str) -> threading.Event | None:
        """(UI thread, on ``InventoryLoaded``) The event to set once that load is on screen: the
        pool's watcher waits for it."""
        return self._painted.pop(pool, None)

    def run(self, session: PoolSession) -> None:
        """The connect worker's body: connect (again, with back-off, while the failure is one that
        retries itself), hand over the first snapshot, then watch the pool."""
        session.connecting = True
        try:
            self._loop(session)
        finally:
            session.connecting = False

    def _loop(self, session: PoolSession) -> None:
        delay = RETRY_FIRST_S
        while not session.stopping.is_set():
            first, session.first_load = session.first_load, None
            try:
                if first is None:
                    backend, inventory = load_pool(session.config)
                else:  # started before the TUI was imported (poolctl.loading)
                    loaded = first.result(session.stopping)
                    if loaded is None:
                        return
                    backend, inventory = loaded
            except Exception as err:
                if not retries_itself(err):
                    self.post_state(session, ConnectionStatus.FAILED, describe(err))
                    return
                self.post_state(session, ConnectionStatus.LOST, describe(err), retry_in_s=delay)
                session.wait_retry(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            if session.stopping.is_set():
                close_quietly(backend)
                return
            painted = threading.Event()
            self._painted[session.name] = painted
            self._post(InventoryLoaded(session.name, backend, inventory))
            # The per-VM reads the watcher starts (KVM: each domain's definition and addresses,
            # many at once) come after the first frame that shows the list, not in its way.
            deadline = time.monotonic() + PAINT_WAIT_S
            while not painted.wait(0.05) and time.monotonic() < deadline and not session.stopping.is_set():
                pass
            try:
                backend.watch(
                    lambda change: self._backend_change(session, change),
                    lambda state: self._backend_state(session, state),
                )
            except Exception as err:
                self.post_state(session, ConnectionStatus.FAILED, describe(err))
            return

    def _backend_change(self, session: PoolSession, change: Change) -> None:
        # backend thread: hand over only
        if session.push_changes([change]):
            self._post(ChangesPending(session.name))

    def _backend_state(self, session: PoolSession, state: ConnectionState) -> None:
        # backend thread: re-key by our pool name, whatever the backend called it
        self._post(ConnectionChanged(state.model_copy(update={"pool": session.name})))
