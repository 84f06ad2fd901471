"""The Xen event stream under faults (issue 17, defect 5), through the fault proxy: the wait
before reconnecting doubles over a run of failures and starts over after a healthy while, so
a blip now and then costs a second, not 30; an ``event.from`` that hangs makes the pool
"stale", and its late reply makes it "connected" again. The real SDK against the simulator."""

from __future__ import annotations

import threading
import time

import pytest

from poolctl.backends.xen import events
from poolctl.model import ConnectionStatus
from tests.support import fault_proxy as fp
from tests.support.xen import connected, lab, wait_state, watching

pytestmark = pytest.mark.timeout(120)

LOST, CONNECTED, STALE = ConnectionStatus.LOST, ConnectionStatus.CONNECTED, ConnectionStatus.STALE


def waits_since(rec, after: int) -> list[float | None]:
    return [s.retry_in_s for s in rec.states[after:] if s.status == LOST]


def blip(proxy: fp.FaultProxy, rec) -> list[float | None]:
    """A short outage (a cut alone is survived: the SDK resends event.from on a new connection);
    the waits announced until the stream is connected again."""
    n = len(rec.states)
    proxy.refuse(0.5)
    wait_state(rec, CONNECTED, timeout=40, after=n + 1)
    return waits_since(rec, n)


def test_the_reconnect_wait_doubles_over_failures_and_starts_over_after_a_healthy_while(monkeypatch):
    monkeypatch.setattr(events, "HEALTHY_S", 2.0)
    with lab() as (_sim, server), fp.FaultProxy(server.url) as proxy, connected(proxy.url) as backend:
        backend.inventory()
        rec = watching(backend)
        wait_state(rec, CONNECTED)

        n = len(rec.states)
        proxy.refuse(5.0)  # the stream is cut and every reconnect reset for 5 s: a run of failures
        wait_state(rec, CONNECTED, timeout=40, after=n + 1)
        assert waits_since(rec, n)[:3] == [1.0, 2.0, 4.0], rec.states[n:]

        time.sleep(events.HEALTHY_S + 0.5)  # healthy a while: the next loss waits the first step again
        assert blip(proxy, rec) == [1.0]
        assert blip(proxy, rec) == [2.0]  # lost again at once: no healthy while in between
        time.sleep(events.HEALTHY_S + 0.5)
        assert blip(proxy, rec) == [1.0]
        time.sleep(events.HEALTHY_S + 0.5)
        assert blip(proxy, rec) == [1.0]  # before the fix: 8, 16, 30, 30 …


def test_a_hanging_event_from_makes_the_pool_stale_and_its_reply_connected_again():
    hold = threading.Event()
    with lab() as (_sim, server), fp.FaultProxy(server.url) as proxy, connected(proxy.url) as backend:
        backend.inventory()
        rec = watching(backend)
        wait_state(rec, CONNECTED)
        n = len(rec.states)
        proxy.on("event.from", before=lambda request: hold.wait(60))  # the server never hears the call
        stale = wait_state(rec, STALE, timeout=events.EVENT_TIMEOUT_S + events.STALE_AFTER_S + 10, after=n)
        assert "event.from has not answered" in stale.message and proxy.url.split("//")[1] in stale.message
        assert "what is shown may be out of date" in stale.message
        assert [s.status for s in rec.states[n:]] == [STALE]  # not lost: the call is still open
        m = len(rec.states)
        hold.set()
        wait_state(rec, CONNECTED, timeout=10, after=m)
        assert LOST not in [s.status for s in rec.states[m:]]


def test_a_hang_past_the_sockets_timeout_is_lost_then_the_stream_reconnects():
    # the hang outlasts the call's own socket timeout: stale first, then lost, then connected
    hold = threading.Event()
    with lab() as (_sim, server), fp.FaultProxy(server.url) as proxy, connected(proxy.url) as backend:
        backend.inventory()
        rec = watching(backend)
        wait_state(rec, CONNECTED)
        n = len(rec.states)
        proxy.on("event.from", before=lambda request: hold.wait(60), times=1)
        wait_state(rec, STALE, timeout=30, after=n)
        wait_state(rec, LOST, timeout=40, after=n)
        wait_state(rec, CONNECTED, timeout=15, after=n + 2)
        assert [s.status for s in rec.states[n:]][:3] == [STALE, LOST, CONNECTED]
        hold.set()
