"""What the TUI says about a Xen pool under faults (issue 17, defects 5 and 7), through the
fault proxy in front of the simulator: a hanging ``event.from`` shows the pool stale, not
connected; a first connect answered with garbage, an HTML page or a cut reply is retried with
back-off (a refused login is not: tests/tui/test_first_load.py); the retry key reconnects a
connected pool's lost event stream at once; a countdown never says "0s"."""

from __future__ import annotations

import threading
import time

import pytest

from poolctl.backends.xen import events
from poolctl.model import ConnectionState, ConnectionStatus
from poolctl.tui.app import create_app
from poolctl.tui.session import PoolSession
from tests.support import fault_proxy as fp
from tests.support.tui import loaded, screen_text, wait_for

pytestmark = pytest.mark.timeout(90)

LOGIN = "session.login_with_password"


def tree_line(app, pool: str = "lab") -> str:
    return next(line for line in screen_text(app).splitlines() if f"{pool} " in line and ("—" in line or ":" in line))


async def test_a_hanging_event_from_shows_the_pool_stale_until_it_answers(lab):
    hold = threading.Event()
    with fp.FaultProxy(lab.url) as proxy:
        pool = lab.pool().model_copy(update={"url": proxy.url})
        app = create_app([pool])
        async with app.run_test(size=(180, 45)) as pilot:
            await loaded(pilot)
            session = app.sessions["lab"]
            assert "lab connected" in screen_text(app)
            proxy.on("event.from", before=lambda request: hold.wait(60))
            await wait_for(
                pilot,
                lambda: session.state.status == ConnectionStatus.STALE,
                "the pool to be shown stale",
                timeout=events.EVENT_TIMEOUT_S + events.STALE_AFTER_S + 10,
            )
            await pilot.pause()
            text = screen_text(app)
            assert "lab stale: no news from 127.0.0.1:" in text and "lab connected" not in text
            assert not session.connected
            assert app.main_screen.vm_list.row_count > 0  # what was read stays on screen, marked old
            hold.set()
            await wait_for(pilot, lambda: session.connected, "the late reply to reconnect the pool", timeout=10)
            await pilot.pause()
            assert "lab connected" in screen_text(app) and "stale" not in screen_text(app)


@pytest.mark.parametrize(
    "reply",
    [fp.replace(fp.html_page()), fp.replace(fp.garbage()), fp.truncated, fp.replace(fp.http_status(502))],
    ids=["html", "garbage", "truncated", "http-502"],
)
async def test_a_first_connect_answered_with_what_xapi_never_sends_is_retried(lab, reply):
    with fp.FaultProxy(lab.url) as proxy:
        proxy.on(LOGIN, reply, times=1)  # one bad answer (a proxy in front of a restarting XAPI)
        app = create_app([lab.pool().model_copy(update={"url": proxy.url})])
        async with app.run_test(size=(180, 45)) as pilot:
            session = app.sessions["lab"]
            await wait_for(pilot, lambda: session.state.status == ConnectionStatus.LOST, "the pool to be retried")
            await pilot.pause()
            assert session.state.retry_in_s == 2.0 and "lab lost — retrying in" in screen_text(app)
            assert "\x1b" not in screen_text(app)
            await loaded(pilot)  # the retry, by itself
            assert proxy.seen.count(LOGIN, "rewritten") == 1 and proxy.seen.count(LOGIN) >= 2


async def test_the_retry_key_reconnects_a_lost_event_stream_at_once(lab):
    with fp.FaultProxy(lab.url) as proxy:
        app = create_app([lab.pool().model_copy(update={"url": proxy.url})])
        async with app.run_test(size=(180, 45)) as pilot:
            await loaded(pilot)
            session = app.sessions["lab"]
            proxy.refuse(120)  # the stream is lost and every reconnect reset: its wait grows
            await wait_for(
                pilot,
                lambda: session.state.status == ConnectionStatus.LOST and (session.state.retry_in_s or 0) >= 4,
                "the event stream's wait to grow",
                timeout=20,
            )
            proxy.admit()  # the pool is back; without the key the stream waits out its 4 s or more
            pressed = time.monotonic()
            await pilot.press("R")
            await wait_for(pilot, lambda: session.connected, "the retry key's reconnect", timeout=3)
            assert time.monotonic() - pressed < 3
            assert "lab connected" in screen_text(app)


def test_a_countdown_at_its_end_says_retrying_now_never_0s(lab):
    session = PoolSession(lab.pool())
    lost = ConnectionState(pool="lab", status=ConnectionStatus.LOST, message="gone", retry_in_s=0.4)
    session.set_state(lost)
    assert session.status_text() == "lost — retrying in 1s: gone"  # 0.4 s left: rounded up
    session.set_state(lost.model_copy(update={"retry_in_s": 0.0}))
    assert session.status_text() == "lost — retrying now: gone"
    session.set_state(lost.model_copy(update={"retry_in_s": 2.6, "host": "h1"}))
    assert session.status_text() == "lost — retrying in 3s: gone"
