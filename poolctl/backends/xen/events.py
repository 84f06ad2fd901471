"""The ``event.from`` loop: one thread, one session of its own, a local cache of raw records.

It starts from what ``inventory()`` read (records and the event token taken just before them,
see snapshot.py), so the pool is read once, not twice. After a lost connection or a token
XAPI no longer honours it reads everything again (token first, then the records) and delivers
the differences against what the consumer last received; each event batch updates the cache
and the models it touches. Without a token (``event.inject`` refused) the full read is an
``event.from`` with an empty token, which returns every live object.

Two clocks keep what the consumer is told true: the wait before reconnecting doubles while
attempts fail and starts over once a connection has stayed healthy a while (a blip an hour
does not cost 30 s of staleness each time); and an ``event.from`` that has not answered
well past its own timeout makes the pool "stale" (the socket's timeout, much longer, then
ends the call) instead of leaving it "connected" on data nobody refreshes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import NamedTuple

import XenAPI

from poolctl.backends.base import AuthenticationError, BackendError, ChangeCallback, StateCallback
from poolctl.backends.xen.connection import Connector, abort
from poolctl.backends.xen.snapshot import read_all, read_classes
from poolctl.backends.xen.translate import CLASSES, DEVICES, Raw, Record, Translator, affected, project
from poolctl.gcpause import gc_paused
from poolctl.inventory import diff
from poolctl.model import Change, ConnectionState, ConnectionStatus, InventoryObject, ObjectKind

log = logging.getLogger("poolctl.backends.xen")

EVENT_TIMEOUT_S = 5.0
# event.from returns within its timeout; this much later with no reply, the pool is stale
STALE_AFTER_S = EVENT_TIMEOUT_S + 5.0
BACKOFF_START_S = 1.0
BACKOFF_CAP_S = 30.0
# A connection that served events this long was healthy: its loss waits BACKOFF_START_S again.
HEALTHY_S = 20.0
# Failures after which the token is useless but the connection is fine: read everything again.
RESYNC_CODES = {"EVENTS_LOST", "EVENT_FROM_TOKEN_PARSE_FAILURE", "SESSION_NOT_REGISTERED", "EVENT_FROM_TOKEN_INVALID"}

Models = dict[tuple[ObjectKind, str], InventoryObject]
# the SDK's event.from(classes, token, timeout) -> {"events": [...], "token": ...}
EventFrom = Callable[[list[str], str, float], Record]


class Start(NamedTuple):
    """Where the loop begins: the token taken before ``raw`` was read (None: read first), the
    records and the models the consumer already has."""

    token: str | None
    raw: Raw
    models: Models


class EventWatcher:
    def __init__(
        self,
        connector: Connector,
        on_change: ChangeCallback,
        on_state: StateCallback,
        start: Start | None,
        publish: Callable[[Raw], None],
        lock: threading.Lock,
    ):
        self.connector = connector
        self.on_change = on_change
        self.on_state = on_state
        start = start or Start(None, {}, {})
        self.models: Models = dict(start.models)
        self.raw: Raw = start.raw if start.token is not None else {}
        self._token: str | None = start.token  # None: read everything before following events
        self._publish = publish  # hands the live cache to the backend (for migration checks)
        self._lock = lock  # guards self.raw against readers on other threads
        self._stop = threading.Event()
        self._kick = threading.Event()  # the user's retry: the back-off ends now
        self._session: XenAPI.Session | None = None
        self._thread = threading.Thread(target=self._run, name=f"xapi-events-{connector.config.name}", daemon=True)
        # monotonic times: since when the connection is healthy, when the pending event.from went out
        self._healthy_since: float | None = None
        self._asked_at: float | None = None
        self._stale = False
        self._clock = threading.Lock()  # orders the stale report against the reply that ends it

    @property
    def pool(self) -> str:
        return self.connector.config.name

    def start(self) -> None:
        self._thread.start()
        threading.Thread(target=self._watch_replies, name=f"xapi-events-stale-{self.pool}", daemon=True).start()

    @property
    def alive(self) -> bool:
        """The loop runs (connected or retrying); False once it gave up (a refused login)."""
        return self._thread.is_alive() and not self._stop.is_set()

    def retry_now(self) -> None:
        """End the back-off: the next attempt starts at once."""
        self._kick.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._kick.set()
        session = self._session
        if session is not None:
            abort(session)  # breaks the long poll at once
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    # -- delivery -------------------------------------------------------------------------

    def _state(self, status: ConnectionStatus, message: str = "", retry_in_s: float | None = None) -> None:
        if self._stop.is_set() and status != ConnectionStatus.CLOSED:
            return
        try:
            self.on_state(
                ConnectionState(
                    pool=self.pool, status=status, host=self.connector.where, message=message, retry_in_s=retry_in_s
                )
            )
        except Exception:
            log.exception("pool %s: on_state callback failed", self.pool)

    def _emit(self, changes: list[Change]) -> None:
        for change in changes:
            if self._stop.is_set():
                return
            try:
                self.on_change(change)
            except Exception:
                log.exception("pool %s: on_change callback failed", self.pool)

    # -- the loop ---------------------------------------------------------------------------

    def _run(self) -> None:
        backoff = BACKOFF_START_S
        try:
            while not self._stop.is_set():
                try:
                    self._session_loop()
                except Exception as exc:
                    if self._stop.is_set():
                        break
                    self._token = None  # whatever broke, read everything again before going on
                    err = self._classify(exc)
                    if err is None:  # token trouble: resync right away on the same session
                        continue
                    if isinstance(err, AuthenticationError) or err.code in ("TLS_VERIFY_FAILED", "BAD_CONFIG"):
                        self._state(ConnectionStatus.FAILED, err.message)
                        return
                    self._drop_session()
                    if self._healthy_for() >= HEALTHY_S:
                        backoff = BACKOFF_START_S  # a blip after a good while, not a run of failures
                    self._healthy_since = None
                    log.warning(
                        "pool %s: event stream lost: %s; retrying in %s s", self.pool, err.message, f"{backoff:g}"
                    )
                    self._state(ConnectionStatus.LOST, err.message, retry_in_s=backoff)
                    if self._pause(backoff):
                        break
                    backoff = min(backoff * 2, BACKOFF_CAP_S)
                    continue
        finally:
            self._drop_session(logout=True)
        log.debug("pool %s: event thread stopped", self.pool)

    def _pause(self, seconds: float) -> bool:
        """The back-off, cut short by ``retry_now``; True when stopping."""
        if self._kick.wait(seconds):
            self._kick.clear()
        return self._stop.is_set()

    def _healthy_for(self) -> float:
        since = self._healthy_since
        return 0.0 if since is None else time.monotonic() - since

    def _watch_replies(self) -> None:
        """Say "stale" while an ``event.from`` is overdue (the loop itself is blocked in it)."""
        while not self._stop.wait(0.25):
            with self._clock:
                asked = self._asked_at
                if self._stale or asked is None or (waited := time.monotonic() - asked) < STALE_AFTER_S:
                    continue
                self._stale = True
                self._healthy_since = None  # a hang is not a healthy period
                self._state(
                    ConnectionStatus.STALE,
                    f"no news from {self.connector.where} for {waited:.0f} s: event.from has not answered "
                    f"(it should within {EVENT_TIMEOUT_S:g} s); what is shown may be out of date",
                )

    def _poll(self, event_from: EventFrom, classes: list[str]) -> Record:
        """One ``event.from``, timed for ``_watch_replies``; a late reply ends the stale state."""
        with self._clock:
            self._asked_at = time.monotonic()
        try:
            batch = event_from(classes, self._token or "", EVENT_TIMEOUT_S)
        finally:
            with self._clock:
                self._asked_at = None
                was_stale, self._stale = self._stale, False
        if was_stale:
            log.info("pool %s: event.from answered again", self.pool)
            self._healthy_since = time.monotonic()
            self._state(ConnectionStatus.CONNECTED)
        return batch

    def _classify(self, exc: Exception) -> BackendError | None:
        if self._session is not None:
            self.connector.remember(self._session)  # the SDK may have logged in again
        if isinstance(exc, XenAPI.Failure):
            code, _params = self.connector.errors.parts(exc)
            if code in RESYNC_CODES:
                log.info("pool %s: event token no longer valid (%s); reading everything again", self.pool, code)
                return None
        return self.connector.errors.map(exc, "watching events", where=self.connector.where)

    def _drop_session(self, logout: bool = False) -> None:
        session, self._session = self._session, None
        if session is not None:
            if logout:
                self.connector.logout(session)
            else:
                try:
                    session("close")()
                except Exception:
                    pass

    def _session_loop(self) -> None:
        if self._session is None:
            self._session = self.connector.open(timeout=EVENT_TIMEOUT_S + 25.0)
        session = self._session
        event_from = getattr(session.xenapi.event, "from")
        classes = list(CLASSES.values())
        if self._token is None:
            self._resync(session, event_from, classes)
        else:
            self._read_devices(session)
        self._healthy_since = time.monotonic()
        self._state(ConnectionStatus.CONNECTED)
        while not self._stop.is_set():
            batch = self._poll(event_from, classes)
            self._token = batch.get("token", self._token)
            self._apply(batch.get("events") or [])

    def _resync(self, session: XenAPI.Session, event_from: EventFrom, classes: list[str]) -> None:
        """Read everything, deliver the differences from what the consumer has."""
        with gc_paused():
            token, raw = read_all(session, self.connector)
        self.connector.remember(session)
        if token is None:
            # An empty token returns every live object of the subscribed classes: the full read.
            batch = event_from(classes, "", EVENT_TIMEOUT_S)
            raw = {cls: {} for cls in CLASSES}
            for ev in batch.get("events") or []:
                _record(raw, ev)
            token = batch.get("token", "")
        with self._lock:
            self.raw = raw
        self._publish(raw)
        fresh = Translator(raw, pool_name=self.pool).models()
        changes = diff(self.models, fresh)
        self.models = fresh
        self._token = token
        self._emit(changes)

    def _read_devices(self, session: XenAPI.Session) -> None:
        """After a staged first read (``first_inventory``): read the device classes it left
        out and deliver the VMs with their disks and nics. Events since the token then apply
        on top, as after any read (snapshot.py)."""
        missing = [cls for cls in DEVICES if cls not in self.raw]
        if not missing:
            return
        with gc_paused():
            records = read_classes(session, self.connector, missing)
            self.connector.remember(session)
            with self._lock:
                self.raw.update(records)
                translator = Translator(self.raw, pool_name=self.pool)
                fresh = {key: translator.build(*key) for key in self.models if key[0] == "vm"}
        changes = []
        for key, obj in fresh.items():
            if obj is not None and obj != self.models[key]:
                self.models[key] = obj
                changes.append(Change(kind="modified", object_kind="vm", ref=key[1], obj=obj))
        self._emit(changes)

    def _apply(self, events: list[Record]) -> None:
        touched: set[tuple[ObjectKind, str]] = set()
        with self._lock:
            for ev in events:
                hit = _record(self.raw, ev)
                if hit is None:
                    continue
                cls, ref, old, new = hit
                touched |= affected(self.raw, cls, ref, old, new)
            if not touched:
                return
            translator = Translator(self.raw, pool_name=self.pool)
            fresh = {key: translator.build(*key) for key in touched}
        changes = []
        for key, obj in fresh.items():
            before = self.models.get(key)
            if obj is None:
                if before is not None:
                    del self.models[key]
                    changes.append(Change(kind="removed", object_kind=key[0], ref=key[1]))
            elif before != obj:
                self.models[key] = obj
                changes.append(
                    Change(kind="added" if before is None else "modified", object_kind=key[0], ref=key[1], obj=obj)
                )
        self._emit(changes)


def _record(raw: Raw, ev: Record) -> tuple[str, str, Record | None, Record | None] | None:
    """Apply one event to ``raw``; (class, ref, old, new) when it was one of ours."""
    cls = str(ev.get("class", "")).lower()
    ref = ev.get("ref") or ""
    if cls not in CLASSES or not ref:
        return None
    table = raw.setdefault(cls, {})
    old = table.get(ref)
    if ev.get("operation") == "del":
        table.pop(ref, None)
        return cls, ref, old, None
    new = ev.get("snapshot")
    if not isinstance(new, dict):  # no snapshot: nothing to go on
        return None
    new = project(cls, new)
    table[ref] = new
    return cls, ref, old, new
