"""The app's first paint: the frame held until the first pool is in, and what waits for it.

The poolctl command holds the first frame (``hold_first_frame``) and pauses the collector until
the first pool is on screen (its ``after_first_paint`` resumes it); the migration center is made
(its modules imported) only a while after that paint.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from textual.app import App
    from textual.screen import Screen

WARM_S = 1.0  # after the first paint, the migration center is made (its modules imported) this late
HOLD_FIRST_FRAME_S = 0.4  # with hold_first_frame, the first frame waits this long at most for a pool
FIRST_PAINT_WAIT_S = 10.0  # ``after_first_paint`` runs by then, whether a pool is on screen or not


class FirstPaint:
    """One app's first paint: ``hold`` and ``start_deadline`` on mount, ``shown`` once a pool is
    on screen, ``release`` when the news is a failure, ``end`` on unmount. UI thread only."""

    def __init__(
        self,
        app: App[Any],
        *,
        after_first_paint: Callable[[], None] | None,
        hold_first_frame: bool,
        warm: Callable[[], object],
    ) -> None:
        self.app = app
        self._after_first_paint = after_first_paint
        self._hold_first_frame = hold_first_frame
        self._warm = warm  # makes what the first keys will need, after the paint
        self._warming = False
        self._frame_hold: AbstractContextManager[None] | None = None

    def hold(self) -> None:
        if self._hold_first_frame:
            # No frame until the first pool is in (or HOLD_FIRST_FRAME_S): the empty screen's
            # frames (~50 ms of layout and rendering) ran beside the host's open and its first
            # read, on the same CPUs, and the first frame with the pool had to lay it all out again.
            self._frame_hold = self.app.batch_update()
            self._frame_hold.__enter__()
            self.app.set_timer(HOLD_FIRST_FRAME_S, self.release)

    def start_deadline(self) -> None:
        if self._after_first_paint is not None:  # no pool on screen by then: not to wait for ever
            self.app.set_timer(FIRST_PAINT_WAIT_S, self._run_after_first_paint)

    def painted(self) -> None:
        """A pool is on screen (called after the refresh that showed it)."""
        self._run_after_first_paint()
        if not self._warming:
            self._warming = True
            self.app.set_timer(WARM_S, self._warm)

    def shown(self, screen: Screen[Any], watcher_go: threading.Event | None) -> None:
        """A pool's load is on ``screen``: the frame is let go, then, once it is drawn,
        ``watcher_go`` (the pool's watcher waits for it) is set and ``painted`` runs. In that order: while
        the frame is held, Textual runs "after refresh" callbacks at once, so the watcher (its
        per-domain reads) and the collector started before the first frame and competed with it
        for the interpreter (~15 ms at 1,000 VMs)."""
        self.release()
        if watcher_go is not None:
            screen.call_after_refresh(watcher_go.set)
        screen.call_after_refresh(self.painted)

    def release(self) -> None:
        """Let frames be drawn again (once; later calls do nothing)."""
        hold, self._frame_hold = self._frame_hold, None
        if hold is not None:
            hold.__exit__(None, None, None)
            # The screen's frame timer ticks on a fixed grid (1/60 s): let go, the first frame
            # waited for its next tick, 8-18 ms measured. Drawn now, by the timer's own handler.
            draw = getattr(self.app.screen, "_on_timer_update", None)
            if callable(draw):
                draw()

    def end(self) -> None:
        """The app is closing: nothing held, and ``after_first_paint`` has run."""
        self.release()
        self._run_after_first_paint()

    def _run_after_first_paint(self) -> None:
        done, self._after_first_paint = self._after_first_paint, None
        if done is not None:
            done()
