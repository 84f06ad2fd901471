"""The poolctl command's TUI draws no frame until its first pool is in (``hold_first_frame``):
the empty screen's frames cost ~50 ms of CPU beside the hosts' opens. A pool that takes longer
than ``HOLD_FIRST_FRAME_S``, or fails, is shown without waiting further."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import cast

import pytest

from poolctl import loading
from poolctl.model import ConnectionStatus
from poolctl.tui import first_paint
from poolctl.tui.app import create_app
from tests.support.tui import loaded, screen_text, wait_for
from tests.support.xen import config
from tests.support.xen import lab as serve_lab

pytestmark = pytest.mark.timeout(60)


class _Pending:
    """A first load still under way (until the test lets it end)."""

    def __init__(self, inner: loading.FirstLoad) -> None:
        self.inner = inner
        self.go = threading.Event()

    def result(self, stopping: threading.Event | None = None):
        while not self.go.wait(0.02):
            if stopping is not None and stopping.is_set():
                return None
        return self.inner.result(stopping)


@pytest.fixture
def served() -> Iterator[str]:
    with serve_lab() as (_sim, server):
        yield server.url


def _frames(app) -> list[str]:
    """What each frame the app sends to the terminal shows (its text), from now on. Headless, the
    app sends nothing: the frames are taken where Textual would write them, past its batch gate."""
    shown: list[str] = []
    real = app._display

    def display(screen, renderable) -> None:
        if renderable is not None and not app._batch_count:
            shown.append(screen_text(app))
        real(screen, renderable)

    app._display = display
    return shown


async def test_no_frame_until_the_pool_is_in_then_the_pool_at_once(served, monkeypatch):
    monkeypatch.setattr(first_paint, "HOLD_FIRST_FRAME_S", 30.0)  # only the pool ends the hold
    cfg = config(served)
    pending = _Pending(loading.FirstLoad(cfg))
    app = create_app([cfg], first_loads=cast(dict[str, loading.FirstLoad], {"lab": pending}), hold_first_frame=True)
    frames = _frames(app)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.3)
        assert not frames, "a frame was drawn before the pool was in"
        pending.go.set()
        await loaded(pilot, "lab")
        assert frames and "web-01" in frames[0], "the first frame drawn is not the pool's"


async def test_a_pool_slower_than_the_hold_is_shown_connecting(served, monkeypatch):
    monkeypatch.setattr(first_paint, "HOLD_FIRST_FRAME_S", 0.2)
    cfg = config(served)
    pending = _Pending(loading.FirstLoad(cfg))
    app = create_app([cfg], first_loads=cast(dict[str, loading.FirstLoad], {"lab": pending}), hold_first_frame=True)
    frames = _frames(app)
    async with app.run_test(size=(120, 40)) as pilot:
        started = time.monotonic()
        await wait_for(pilot, lambda: bool(frames), "a frame while the pool connects", timeout=5)
        assert time.monotonic() - started < 3
        assert "lab connecting" in frames[0]
        assert app.sessions["lab"].state.status == ConnectionStatus.CONNECTING
        pending.go.set()
        await loaded(pilot, "lab")


async def test_a_pool_that_fails_ends_the_hold(served, monkeypatch):
    monkeypatch.setattr(first_paint, "HOLD_FIRST_FRAME_S", 30.0)
    cfg = config(served, password="not-The-Password-77")
    app = create_app([cfg], first_loads=loading.start([cfg]), hold_first_frame=True)
    frames = _frames(app)
    async with app.run_test(size=(120, 40)) as pilot:
        session = app.sessions["lab"]
        await wait_for(pilot, lambda: session.state.status == ConnectionStatus.FAILED, "the pool to fail")
        await wait_for(pilot, lambda: bool(frames), "a frame once the pool failed", timeout=5)
        assert "refused" in frames[-1] or "failed" in frames[-1], frames[-1]
