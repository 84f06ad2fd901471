"""The backend's own thread: turns libvirt events into model Changes, refreshes with
bulk calls every few seconds, and brings lost hosts back with back-off."""

from __future__ import annotations

import queue
import threading
import time
from typing import TYPE_CHECKING

import libvirt

from poolctl.backends.base import AuthenticationError, BackendError, ChangeCallback, StateCallback
from poolctl.model import ConnectionState, ConnectionStatus

if TYPE_CHECKING:
    from poolctl.backends.kvm.backend import KvmBackend
    from poolctl.backends.kvm.hostconn import HostConn

BACKOFF_S = (1, 2, 4, 8, 15, 30)


class Watcher(threading.Thread):
    def __init__(self, backend: KvmBackend, on_change: ChangeCallback, on_state: StateCallback):
        super().__init__(name=f"kvm-watch-{backend.config.name}", daemon=True)
        self.b = backend
        self.on_change = on_change
        self.on_state = on_state
        self.stop_event = threading.Event()
        self._reconnecting: set[str] = set()

    def stop(self) -> None:
        self.stop_event.set()
        self.b.queue.put(("stop",))

    # -- delivery (consumer errors must not kill the thread) ------------------------------
    def _state(self, hc: HostConn | None, status: ConnectionStatus, message: str = "", retry: float | None = None):
        if self.stop_event.is_set():
            return
        try:
            self.on_state(
                ConnectionState(
                    pool=self.b.config.name,
                    status=status,
                    host=hc.ref if hc else "",
                    message=message,
                    retry_in_s=retry,
                )
            )
        except Exception:
            pass

    def _emit(self) -> None:
        for change in self.b.take_changes():
            if self.stop_event.is_set():
                return
            try:
                self.on_change(change)
            except Exception:
                pass

    # -- the loop ---------------------------------------------------------------------
    def run(self) -> None:
        for hc in self.b.hosts:
            if hc.live:
                self._state(hc, ConnectionStatus.CONNECTED, f"connected to {hc.name} ({hc.uri})")
            else:
                self._lost(hc, "not reachable")
        self._emit()
        next_tick = time.monotonic() + self.b.REFRESH_S
        while not self.stop_event.is_set():
            try:
                items = [self.b.queue.get(timeout=max(0.0, next_tick - time.monotonic()))]
            except queue.Empty:
                items = []
            while True:  # coalesce a burst of events into one diff
                try:
                    items.append(self.b.queue.get_nowait())
                except queue.Empty:
                    break
            if self.stop_event.is_set():
                return
            if time.monotonic() >= next_tick:
                items.append(("tick",))
                next_tick = time.monotonic() + self.b.REFRESH_S
            for item in items:
                try:
                    self._handle(item)
                except Exception:
                    pass
            self._emit()

    def _handle(self, item: tuple) -> None:
        kind = item[0]
        if kind in ("stop", "emit"):  # nothing to load: the loop's diff step does the rest
            return
        hc = self.b.host_by_uri(item[1]) if len(item) > 1 else None
        if kind == "domain" and hc is not None and hc.live:
            self._guard(hc, lambda: hc.reload_domain(item[2]))
        elif kind == "reload" and hc is not None and hc.live:
            self._guard(hc, lambda: hc.load(full=False))
        elif kind == "lost" and hc is not None:
            if not (hc.live and hc.alive()):  # else a stale report about a good connection
                self._lost(hc, item[2])
        elif kind == "reconnected" and hc is not None:
            self._reconnecting.discard(hc.uri)
            if self._guard(hc, lambda: hc.load(full=True)):
                self._state(hc, ConnectionStatus.CONNECTED, f"reconnected to {hc.name} ({hc.uri})")
        elif kind == "tick":
            for h in self.b.hosts:
                if h.live:
                    self._guard(h, lambda h=h: h.load(full=False))

    def _guard(self, hc: HostConn, fn) -> bool:
        """Run a load under the backend's lock; a dead connection becomes LOST."""
        try:
            with self.b.lock:
                fn()
                self.b.rebuild()
            return True
        except libvirt.libvirtError as err:
            if not hc.alive():
                self._lost(hc, err.get_error_message() or "connection closed")
            return False

    def _lost(self, hc: HostConn, why: str) -> None:
        if hc.uri in self._reconnecting:
            return
        with self.b.lock:
            hc.close()
            self.b.rebuild()
        self._state(hc, ConnectionStatus.LOST, f"lost {hc.name} ({hc.uri}): {why}", BACKOFF_S[0])
        self._reconnecting.add(hc.uri)
        threading.Thread(target=self._reconnect, args=(hc,), name=f"kvm-reconnect-{hc.name}", daemon=True).start()

    def _reconnect(self, hc: HostConn) -> None:
        attempt = 0
        while not self.stop_event.wait(BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)]):
            attempt += 1
            try:
                hc.open()
            except AuthenticationError as err:
                self._state(hc, ConnectionStatus.FAILED, str(err))
                return
            except BackendError as err:
                retry = BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)]
                self._state(hc, ConnectionStatus.LOST, str(err), retry)
                continue
            if self.stop_event.is_set():
                hc.close()
                return
            self.b.queue.put(("reconnected", hc.uri))
            return
