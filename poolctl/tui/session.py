"""One connected (or connecting) pool as the TUI sees it.

A ``PoolSession`` owns the pool's backend and its ``InventoryStore``. Backend threads
only ever touch ``push_changes`` (a locked buffer); everything else belongs to the UI
thread, so the store keeps its single writer.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field

from poolctl.backends.base import AuthenticationError, Backend, BackendError, ConnectionLost
from poolctl.config import PoolConfig
from poolctl.inventory import InventoryStore
from poolctl.loading import FirstLoad
from poolctl.model import Change, ConnectionState, ConnectionStatus


def retries_itself(err: BaseException) -> bool:
    """Whether a failed connect is tried again with back-off: a lost connection, and a pool
    answering what XAPI never sends (garbage, an HTML page, a cut reply, a reply of the wrong
    type: a proxy in front of a restarting XAPI says that for a while). Never a refused login
    (retrying would only fill the server's log with failures and may lock the account), an
    answer XAPI gave (its fault codes), nor a config or certificate only the user can fix:
    those wait for the retry key."""
    if isinstance(err, ConnectionLost):
        return True
    return isinstance(err, BackendError) and not isinstance(err, AuthenticationError) and err.code == "BAD_REPLY"


@dataclass(eq=False)
class PoolSession:
    config: PoolConfig
    backend: Backend | None = None
    store: InventoryStore | None = None
    first_load: FirstLoad | None = None  # the first attempt, when it started before the app
    state: ConnectionState = None  # type: ignore[assignment]  # set in __post_init__
    # host ref -> its last state while not connected, and when it retries (monotonic)
    host_trouble: dict[str, tuple[ConnectionState, float | None]] = field(default_factory=dict)
    _retry_at: float | None = None  # the pool-level state's next retry
    _pending: list[Change] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # Set by the UI when it shuts down: connect loops and retries stop.
    stopping: threading.Event = field(default_factory=threading.Event)
    # The user's retry key: a connect loop waiting out its back-off tries at once.
    retry_kick: threading.Event = field(default_factory=threading.Event)
    connecting: bool = False  # a connect loop (the app's worker) runs for this pool

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
        """A pool's state, or one host's (``state.host``): a host's trouble is remembered until
        that host connects, so the pool's row keeps saying why while the others are fine."""
        retry_at = (
            time.monotonic() + state.retry_in_s
            if state.status == ConnectionStatus.LOST and state.retry_in_s is not None
            else None
        )
        if state.host:
            if state.status == ConnectionStatus.CONNECTED:
                self.host_trouble.pop(state.host, None)
            else:
                self.host_trouble[state.host] = (state, retry_at)
        self.state = state
        self._retry_at = retry_at

    @property
    def retry_at(self) -> float | None:
        """The soonest retry under way (monotonic), for a live countdown; None when none is."""
        times = [t for _, t in self.host_trouble.values() if t is not None]
        if self._retry_at is not None:
            times.append(self._retry_at)
        return min(times) if times else None

    def wait_retry(self, seconds: float) -> None:
        """The back-off before the next attempt, ended early by stopping or the retry key."""
        deadline = time.monotonic() + seconds
        while not self.stopping.is_set() and (left := deadline - time.monotonic()) > 0:
            if self.retry_kick.wait(min(left, 0.2)):
                self.retry_kick.clear()
                return

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
        """The connection state in words (never colour alone), with why it is not connected:
        the state first (a narrow tree clips the end), then the reason."""
        st = self.state
        troubles = [_trouble_text(t, at) for t, at in self.host_trouble.values()]
        if st.status == ConnectionStatus.CONNECTED:
            return "; ".join(["connected", *troubles])
        if st.host and troubles:  # one host's news while others may be fine
            return "; ".join(troubles)
        return _trouble_text(st, self._retry_at)


def _trouble_text(st: ConnectionState, retry_at: float | None) -> str:
    reason = f": {st.message}" if st.message else ""
    if st.status == ConnectionStatus.CONNECTING:
        return f"connecting…{' ' + st.message if st.message else ''}"
    if st.status == ConnectionStatus.CONNECTED:
        return "connected"
    if st.status == ConnectionStatus.STALE:
        return f"stale{reason}"
    if st.status == ConnectionStatus.LOST:
        if retry_at is not None:
            # rounded up: "in 0s" would be a promise already broken; the attempt is under way
            left = math.ceil(retry_at - time.monotonic())
            return f"lost — retrying in {left}s{reason}" if left > 0 else f"lost — retrying now{reason}"
        return f"lost — retrying{reason}"
    if st.status == ConnectionStatus.FAILED:
        return f"failed{reason}" if st.message else "failed"
    return "closed"
