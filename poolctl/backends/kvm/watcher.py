"""The backend's own thread: turns libvirt events into model Changes, refreshes with
bulk calls every few seconds, and brings lost hosts back with back-off.

What the hosts' bulk calls leave out (each domain's definition and addresses) is read by one
background reader per host (``details.read_many``), whose results come back on the queue and
are applied in bursts. A host is reported CONNECTED once its reader has delivered: the
consumer then holds what ``inventory()`` would give."""

from __future__ import annotations

import functools
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import libvirt

from poolctl.backends.base import BackendError, ChangeCallback, StateCallback
from poolctl.backends.kvm import details
from poolctl.backends.kvm.errors import words
from poolctl.backends.kvm.events import (
    DetailsDone,
    DetailsRead,
    DomainChanged,
    Emit,
    Event,
    HostEvent,
    HostLost,
    HostReconnected,
    HostStale,
    Refresh,
    Stop,
)
from poolctl.backends.kvm.hostconn import HostConn
from poolctl.backends.kvm.openfail import retried
from poolctl.model import Change, ConnectionState, ConnectionStatus

BACKOFF_S = (1, 2, 4, 8, 15, 30)
# A background reader hands over what it has read in about BATCHES parts, DELIVER_S apart at
# least (the screen fills in that many steps): the loop's merge and diff of the whole pool are paid
# per batch. Test-driver domains, delivered: 1,000 one per batch 8.7 s, every 0.1 s 0.4 s; 5,000
# every 0.1 s 5.6 s (46 merges, each slower for the reader's calls beside it), in 10 parts 1.4 s.
BATCHES = 10
DELIVER_S = 0.1


@dataclass(frozen=True)
class Feed:
    """What the watcher works with, handed over by the backend."""

    pool: str  # the pool's name, for states and thread names
    hosts: Sequence[HostConn]
    events: queue.Queue[Event]
    lock: threading.RLock  # the pool's: guards the hosts' caches
    # Runs a change to host caches under the pool's lock, then merges the hosts again.
    update: Callable[[Callable[[], None]], None]
    take_changes: Callable[[], list[Change]]  # the diff since the last delivery
    refresh_s: float  # how often every live host is reloaded with bulk calls


class Watcher(threading.Thread):
    def __init__(self, feed: Feed, on_change: ChangeCallback, on_state: StateCallback):
        super().__init__(name=f"kvm-watch-{feed.pool}", daemon=True)
        self.feed = feed
        self.on_change = on_change
        self.on_state = on_state
        self.stop_event = threading.Event()
        self._reconnecting: set[str] = set()
        self._reading: set[str] = set()  # hosts with a background reader running
        self._renewed: dict[str, int] = {}  # uri -> stamp of its last full reload (a reconnect)
        # uri -> the CONNECTED message to send once its domains are read; ready: to send now
        self._unannounced: dict[str, str] = {}
        self._ready: list[str] = []
        self._kick = threading.Event()  # set by retry_now: back-offs end at once

    def stop(self) -> None:
        self.stop_event.set()
        self._kick.set()
        self.feed.events.put(Stop())

    # -- delivery (consumer errors must not kill the thread) ------------------------------
    def _state(
        self, hc: HostConn | None, status: ConnectionStatus, message: str = "", retry: float | None = None
    ) -> None:
        if self.stop_event.is_set():
            return
        try:
            self.on_state(
                ConnectionState(
                    pool=self.feed.pool,
                    status=status,
                    host=hc.ref if hc else "",
                    message=message,
                    retry_in_s=retry,
                )
            )
        except Exception:
            pass

    def _emit(self) -> None:
        for change in self.feed.take_changes():
            if self.stop_event.is_set():
                return
            try:
                self.on_change(change)
            except Exception:
                pass

    # -- the loop ---------------------------------------------------------------------
    def run(self) -> None:
        feed = self.feed
        for hc in feed.hosts:
            if hc.live:
                self._unannounced[hc.uri] = f"connected to {hc.name} ({hc.uri})"
                self._read_details(hc)
            elif not hc.opening:  # one still opening arrives as HostReconnected or HostLost
                self._lost(hc, str(hc.open_error) if hc.open_error else "not reachable")
        self._emit()
        self._announce()
        next_tick = time.monotonic() + feed.refresh_s
        while not self.stop_event.is_set():
            items: list[Event]
            try:
                items = [feed.events.get(timeout=max(0.0, next_tick - time.monotonic()))]
            except queue.Empty:
                items = []
            while True:  # coalesce a burst of events into one diff
                try:
                    items.append(feed.events.get_nowait())
                except queue.Empty:
                    break
            if self.stop_event.is_set():
                return
            if time.monotonic() >= next_tick:
                items.append(Refresh())
                next_tick = time.monotonic() + feed.refresh_s
            try:
                self._apply_reads([i for i in items if isinstance(i, DetailsRead)])
            except Exception:
                pass
            for item in items:
                if isinstance(item, DetailsRead):
                    continue
                try:
                    self._handle(item)
                except Exception:
                    pass
            self._emit()
            self._announce()

    def _host(self, uri: str) -> HostConn | None:
        return next((hc for hc in self.feed.hosts if hc.uri == uri), None)

    def _handle(self, event: Event) -> None:
        match event:
            case Stop() | Emit():
                pass  # nothing to load: the loop's diff step does the rest
            case Refresh():
                for hc in self.feed.hosts:
                    if hc.live and self._guard(hc, functools.partial(hc.load, full=False)):
                        self._read_details(hc)
            case DomainChanged() | HostStale() | HostLost() | HostReconnected() | DetailsDone():
                if (host := self._host(event.uri)) is not None:
                    self._handle_host(host, event)

    def _handle_host(self, hc: HostConn, event: HostEvent) -> None:
        match event:
            case DomainChanged(uuid=uuid):
                if hc.live:
                    self._guard(hc, functools.partial(hc.reload_domain, uuid))
            case HostStale():
                if hc.live and self._guard(hc, functools.partial(hc.load, full=False)):
                    self._read_details(hc)
            case HostLost(why=why):
                if not (hc.live and hc.alive()):  # else a stale report about a good connection
                    self._lost(hc, why)
            case HostReconnected():
                self._reconnecting.discard(hc.uri)
                with self.feed.lock:
                    self._renewed[hc.uri] = hc.stamp()
                if self._guard(hc, functools.partial(hc.load, full=True)):
                    self._unannounced[hc.uri] = f"reconnected to {hc.name} ({hc.uri})"
                    self._read_details(hc)
            case DetailsDone(stamp=stamp, attempted=attempted):
                self._reading.discard(hc.uri)
                if hc.live:
                    # A reconnect since the reader began: what it tried is due again.
                    self._read_details(hc, skip=attempted if stamp > self._renewed.get(hc.uri, 0) else frozenset())

    # -- the domains' own calls, in the background -------------------------------------------
    def _read_details(self, hc: HostConn, skip: frozenset[str] = frozenset()) -> None:
        """Start reading what ``hc``'s domains lack (but ``skip``), unless a reader runs already:
        its end looks again. With nothing to read, the host is ready to be announced."""
        if hc.uri in self._reading:
            return
        with self.feed.lock:
            conn, stamp = hc.conn, hc.stamp()
            jobs = [job for job in hc.pending() if job.uuid not in skip]
        if conn is None:
            return
        if not jobs:
            if hc.uri in self._unannounced:
                self._ready.append(hc.uri)
            return
        self._reading.add(hc.uri)
        threading.Thread(
            target=self._reader, args=(hc, conn, jobs, stamp), name=f"kvm-read-{hc.name}", daemon=True
        ).start()

    def _reader(self, hc: HostConn, conn: libvirt.virConnect, jobs: list[details.Job], stamp: int) -> None:
        put = self.feed.events.put
        batch: list[tuple[str, details.Details | None, int]] = []
        sent = time.monotonic()
        taken = threading.Event()
        taken.set()
        least = -(-len(jobs) // BATCHES)

        def deliver(uuid: str, got: details.Details | None) -> None:
            # In a few batches, one at a time: each costs the loop a merge and diff of the whole
            # pool, so a batch grows while the loop is busy with the one before.
            nonlocal sent, taken
            batch.append((uuid, got, stamp))
            if taken.is_set() and len(batch) >= least and time.monotonic() - sent >= DELIVER_S:
                taken = threading.Event()
                put(DetailsRead(hc.uri, tuple(batch), taken))
                batch.clear()
                sent = time.monotonic()

        try:
            details.read_many(
                conn,
                jobs,
                deliver,
                alive=hc.alive,
                stop=self.stop_event,
                in_flight=hc.in_flight,
            )
        except libvirt.libvirtError as err:
            if not hc.alive():
                put(HostLost(hc.uri, words(err)))
        finally:
            if batch:
                put(DetailsRead(hc.uri, tuple(batch), threading.Event()))
            put(DetailsDone(hc.uri, stamp, frozenset(job.uuid for job in jobs)))

    def _apply_reads(self, reads: list[DetailsRead]) -> None:
        """A burst of results, one update (one merge and diff) per host."""
        by_host: dict[str, list[tuple[str, details.Details | None, int]]] = defaultdict(list)
        for r in reads:
            by_host[r.uri].extend(r.reads)
        try:
            for uri, batch in by_host.items():
                hc = self._host(uri)
                if hc is not None and hc.live:
                    self.feed.update(functools.partial(hc.apply, batch))
        finally:
            for r in reads:
                r.taken.set()

    def _announce(self) -> None:
        """CONNECTED for the hosts whose domains are read, after the changes that brought them."""
        ready, self._ready = self._ready, []
        for uri in ready:
            hc = self._host(uri)
            message = self._unannounced.pop(uri, None)
            if hc is not None and message is not None and hc.live:
                self._state(hc, ConnectionStatus.CONNECTED, message)

    def _guard(self, hc: HostConn, load: Callable[[], None]) -> bool:
        """Run a load under the pool's lock; a dead connection becomes LOST."""
        try:
            self.feed.update(load)
            return True
        except libvirt.libvirtError as err:
            if not hc.alive():
                self._lost(hc, err.get_error_message() or "connection closed")
            return False

    def _lost(self, hc: HostConn, why: str) -> None:
        if hc.uri in self._reconnecting:
            return
        self._unannounced.pop(hc.uri, None)
        self.feed.update(hc.close)
        err = hc.open_error
        if err is not None and not retried(err):
            # A refused login or an untrusted host key: retrying would only repeat it (and fill
            # the server's log with failed logins); the user retries (``retry_host``).
            self._state(hc, ConnectionStatus.FAILED, str(err))
            return
        message = str(err) if err is not None else f"lost {hc.name} ({hc.uri}): {why}"
        self._state(hc, ConnectionStatus.LOST, message, BACKOFF_S[0])
        self._reconnecting.add(hc.uri)
        threading.Thread(target=self._reconnect, args=(hc,), name=f"kvm-reconnect-{hc.name}", daemon=True).start()

    def retry_now(self) -> None:
        """The user's retry: hosts waiting to retry try at once, failed ones (a refused login,
        an untrusted key) are tried again."""
        self._kick.set()
        for hc in self.feed.hosts:
            if not hc.live and not hc.opening and hc.uri not in self._reconnecting:
                self._reconnecting.add(hc.uri)
                self._state(hc, ConnectionStatus.CONNECTING, f"retrying {hc.name} ({hc.uri})")
                threading.Thread(
                    target=self._reconnect, args=(hc, 0.0), name=f"kvm-reconnect-{hc.name}", daemon=True
                ).start()

    def _pause(self, seconds: float) -> bool:
        """Wait out a back-off, cut short by ``retry_now``; True when stopping."""
        if self._kick.wait(seconds):
            self._kick.clear()
        return self.stop_event.is_set()

    def _reconnect(self, hc: HostConn, first_s: float | None = None) -> None:
        attempt = 0
        while not self._pause(BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)] if attempt or first_s is None else first_s):
            attempt += 1
            try:
                hc.open()
                hc.open_error = hc.lost_reason = None
            except BackendError as err:
                hc.open_error = err
                if not retried(err):
                    self._reconnecting.discard(hc.uri)
                    self._state(hc, ConnectionStatus.FAILED, str(err))
                    return
                retry = BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)]
                self._state(hc, ConnectionStatus.LOST, str(err), retry)
                continue
            if self.stop_event.is_set():
                hc.close()
                return
            self.feed.events.put(HostReconnected(hc.uri))
            return
