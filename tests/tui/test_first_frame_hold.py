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


async def test_the_first_frame_is_drawn_on_release_and_the_watcher_waits_for_it(served, monkeypatch):
    """Released, the frame is drawn at once (not at the frame timer's next tick); only then do the
    watcher (its per-domain reads) and ``after_first_paint`` (the collector) start."""
    monkeypatch.setattr(first_paint, "HOLD_FIRST_FRAME_S", 30.0)
    cfg = config(served)
    pending = _Pending(loading.FirstLoad(cfg))
    frames: list[str] = []
    after_paint: list[int] = []  # frames drawn when after_first_paint ran
    app = create_app(
        [cfg],
        first_loads=cast(dict[str, loading.FirstLoad], {"lab": pending}),
        hold_first_frame=True,
        after_first_paint=lambda: after_paint.append(len(frames)),
    )
    frames = _frames(app)
    watcher_go: list[int] = []  # frames drawn when the watcher was let start
    take_painted = app._connector.take_painted

    def take(pool: str) -> threading.Event | None:
        event = take_painted(pool)
        if event is not None:
            let_go = event.set

            def set_() -> None:
                watcher_go.append(len(frames))
                let_go()

            event.set = set_  # type: ignore[method-assign]
        return event

    app._connector.take_painted = take  # type: ignore[method-assign]
    on_release: list[int] = []  # frames drawn by the time the hold's release returned
    release = app._first_paint.release

    def release_and_count() -> None:
        release()
        on_release.append(len(frames))

    app._first_paint.release = release_and_count  # type: ignore[method-assign]
    async with app.run_test(size=(120, 40)) as pilot:
        pending.go.set()
        await loaded(pilot, "lab")
        await wait_for(pilot, lambda: bool(watcher_go) and bool(after_paint), "the watcher and after_first_paint")
        assert on_release and on_release[0] >= 1, "the release did not draw the frame"
        assert "web-01" in frames[0]
        assert watcher_go[0] >= 1, "the watcher was let start before the first frame was drawn"
        assert after_paint[0] >= 1, "after_first_paint ran before the first frame was drawn"
