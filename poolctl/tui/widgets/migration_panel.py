"""The migration panel: one per running (or just ended) migration, docked under the panes.

Cheap over SSH by construction: fixed size (no re-layout after mount), text drawn line by
line and a line repainted only when its text changed, the sparkline in one style, and all
of it polled from the controller at ``TICK_S`` instead of on every probe.
"""

from __future__ import annotations

import os
import textwrap
import threading

from rich.cells import cell_len
from rich.segment import Segment
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.geometry import Region
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Label
from textual.worker import Worker, WorkerState

from poolctl.audit import MigrationRecord
from poolctl.backends.base import CancelRefused
from poolctl.errors import describe
from poolctl.format import size
from poolctl.migration.compare import prediction_line
from poolctl.migration.controller import MigrationController
from poolctl.migration.words import cancel_refusal, clock, downtime_text, headline, ping_summary
from poolctl.ping.stats import PingStats
from poolctl.safe_text import shown, shown_line
from poolctl.tui.widgets.cells import ellipsize
from poolctl.tui.widgets.sparkline import PingSparkline

# 2 Hz: each tick moves the sparkline by ~5 probes and costs a few hundred bytes on the wire
TICK_S = 0.5
QUIT_REASON = "poolctl quit while the migration was running; the hypervisor carried on with it"
BAR_CELLS = 20


class LineBlock(Widget):
    """A fixed number of text lines in one style; ``set_lines`` repaints only changed lines."""

    DEFAULT_CSS = "LineBlock { height: auto; width: 1fr; }"

    def __init__(self, lines: int, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.lines = [""] * lines
        self._strips: list[Strip | None] = [None] * lines
        self.styles.height = lines

    def set_lines(self, texts: list[str]) -> None:
        width = self.size.width
        for y, text in enumerate(texts[: len(self.lines)]):
            text = shown(text, None)  # names and the hypervisor's words: nothing reaches the terminal raw
            old = self.lines[y]
            if text != old:
                self.lines[y] = text
                self._strips[y] = None
                if width:
                    # Repaint only the span that changed: the terminal gets those cells, not the line.
                    start = cell_len(os.path.commonprefix([old, text]))
                    end = min(width, max(cell_len(old), cell_len(text)))
                    if end > start:
                        self.refresh(Region(start, y, end - start, 1))

    def on_resize(self) -> None:
        self._strips = [None] * len(self.lines)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if not 0 <= y < len(self.lines):
            return Strip.blank(width, self.rich_style)
        strip = self._strips[y]
        if strip is None or strip.cell_length != width:
            style = self.rich_style
            strip = Strip([Segment(ellipsize(self.lines[y], width), style)]).adjust_cell_length(width, style)
            self._strips[y] = strip
        return strip


def outcome_reason(rec: MigrationRecord) -> str:
    """Why a move did not succeed, in the hypervisor's words when it gave some."""
    if rec.result == "cancelled":
        # XAPI's task error for a cancel is just "cancelled": no news after the headline
        error = shown_line(rec.error)
        return "" if rec.error.strip().lower() in ("", "cancelled", "canceled") else f"cancelled: {error}"
    return f"failed: {shown_line(rec.error) or 'no reason given by the hypervisor'}"


def disks_copying(copies: tuple[str, ...]) -> str:
    """A storage motion under way: XAPI's one progress covers the disks, then the memory, and
    does not say when the disks are done; what is known is what is copied and the estimate."""
    if not copies:
        return ""
    return f"first the disks ({shown_line(copies[-1])}), then the memory"


def disks_copied(rec: MigrationRecord) -> str:
    """After a storage motion: what was copied and how long the whole move took."""
    mib, rate = rec.measured.get("disk_copied_mib"), rec.measured.get("disk_rate_mib_s")
    if not isinstance(mib, int | float):
        return ""
    per = f" ({rate:.0f} MiB/s)" if isinstance(rate, int | float) else ""
    return f"copied {size(round(mib * (1 << 20)))} of disks, then the memory, in {clock(rec.duration_s)}{per}"


def fill(parts: list[tuple[str, int]], width: int, lines: int) -> list[str]:
    """Wrap (text, rank) paragraphs into ``lines`` lines, dropping the highest ranks first."""
    parts = [p for p in parts if p[0]]
    while True:
        out = [line for text, _ in parts for line in textwrap.wrap(text, max(10, width))]
        if len(out) <= lines or len(parts) <= 1:
            break
        parts.remove(max(parts, key=lambda p: p[1]))
    if len(out) > lines:
        out = out[: lines - 1] + [ellipsize(" ".join(out[lines - 1 :]), width)]
    return out + [""] * (lines - len(out))


class MigrationPanel(Widget, can_focus=True):
    """Shows one ``MigrationController``: progress, ping sparkline and figures, the outcome."""

    BINDINGS = [
        Binding(
            "c", "cancel_migration", "Cancel move", tooltip="Cancel this migration (asks first)", id="migration.cancel"
        ),
        Binding(
            "x",
            "dismiss_panel",
            "Dismiss",
            tooltip="Close this panel once its migration has ended",
            id="migration.dismiss",
        ),
    ]

    class CancelRequested(Message):
        """The user asked to cancel a move that can still be cancelled: the screen confirms
        it with the user, then calls ``send_cancel``."""

        def __init__(self, panel: MigrationPanel) -> None:
            super().__init__()
            self.panel = panel

    class Dismissed(Message):
        """The user closed the panel of an ended move: its dock removes it."""

        def __init__(self, panel: MigrationPanel) -> None:
            super().__init__()
            self.panel = panel

    def __init__(self, controller: MigrationController, *, backend_name: str = "", id: str | None = None) -> None:
        super().__init__(id=id)
        self.controller = controller
        self.backend_name = backend_name
        self.top = LineBlock(1, id="mp-progress")
        self.ping_label = Label("", id="mp-ping-label", markup=False)
        self.sparkline = PingSparkline(id="mp-sparkline")
        self.info = LineBlock(4, id="mp-info")
        self.ended_shown = False
        self.crash = ""  # set when following the move broke (a bug, not the hypervisor's refusal)
        p = controller.plan
        self.border_title = Text(f"{shown(p.vm_name)}: {p.route}")  # Text: a str title is markup
        self.border_subtitle = "starting"

    def compose(self) -> ComposeResult:
        yield self.top
        with Horizontal(id="mp-ping-row"):
            yield self.ping_label
            yield self.sparkline
        yield self.info

    def on_mount(self) -> None:
        label = f"ping {shown(self.controller.plan.ping_address or '(none)')} "
        self.ping_label.update(label)
        self.ping_label.styles.width = len(label)
        self._timer = self.set_interval(TICK_S, self.tick)
        self._run()
        self.call_after_refresh(self.tick)

    # --- the migration and the cancel run in worker threads ------------------------------

    def _run(self) -> None:
        # A plain daemon thread, not a Textual worker: a move can last many minutes, and thread
        # workers share asyncio's small default executor (prechecks and power operations would
        # queue behind a few migrations) and are waited for when the app quits.
        threading.Thread(target=self._follow, name=f"migration {self.controller.plan.vm_name}", daemon=True).start()

    def _follow(self) -> None:
        try:
            self.controller.run()
        except Exception as err:
            self.crash = describe(err)

    def on_unmount(self) -> None:
        c = self.controller
        if not c.finished.is_set():
            c.abandon(QUIT_REASON)

    @work(thread=True, exit_on_error=False, group="migration-cancel")
    def send_cancel(self) -> bool:
        return self.controller.cancel()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        event.stop()
        worker = event.worker
        if worker.group == "migration-cancel" and event.state == WorkerState.ERROR and worker.error is not None:
            err = worker.error
            refused = isinstance(err, CancelRefused)
            self.notify(
                describe(err),
                title="Cannot cancel" if refused else "Cancel failed",
                severity="warning" if refused else "error",
                timeout=10,
                markup=False,
            )
        elif worker.group == "migration-cancel" and event.state == WorkerState.SUCCESS:
            name = self.controller.plan.vm_name
            if worker.result is False:  # still starting: the controller sends it once it can
                self.notify(f"cancel queued: {name} is still being started; it is sent then", timeout=5, markup=False)
            else:
                self.notify(f"cancel sent: {name}", timeout=3, markup=False)

    # --- keys ------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # the footer offers only the key that applies now (it is short of room at 80 columns)
        if action == "cancel_migration":
            return not self.controller.ended
        if action == "dismiss_panel":
            return self.controller.finished.is_set()
        return True

    def action_cancel_migration(self) -> None:
        c = self.controller
        name = c.plan.vm_name
        if c.ended:
            self.notify(f"the migration of {name} has already ended", severity="warning", markup=False)
            return
        if c.handle is not None and not c.progress.cancellable:
            self.notify(
                cancel_refusal(name, c.progress), title="Cannot cancel", severity="warning", timeout=10, markup=False
            )
            return
        self.post_message(self.CancelRequested(self))

    def action_dismiss_panel(self) -> None:
        if not self.controller.finished.is_set():
            self.notify(
                f"the migration of {self.controller.plan.vm_name} is still running; cancel it first (c)",
                severity="warning",
                markup=False,
            )
            return
        self.post_message(self.Dismissed(self))

    # --- drawing ---------------------------------------------------------------------------

    def tick(self) -> None:
        if self.ended_shown:
            return
        c = self.controller
        width = self.info.size.width or 60
        p = c.progress
        self.top.set_lines([self._progress_line(width)])
        self.sparkline.update_samples(c.ping_samples())
        stats = c.ping_stats()
        if self.crash and not c.finished.is_set():
            self.ended_shown = True
            self._timer.stop()
            self._subtitle("ERROR")
            self.info.set_lines(fill([(f"following the migration failed: {shown_line(self.crash)}", 0)], width, 4))
            return
        if c.finished.is_set() and c.record is not None:
            rec = c.record
            self.ended_shown = True
            self._timer.stop()
            self._subtitle(
                {"success": "complete", "failed": "FAILED", "cancelled": "cancelled", "refused": "REFUSED"}.get(
                    rec.result, rec.result
                )
            )
            self.set_class(rec.result != "success", "-problem")
            pings = ping_summary(rec, with_address=False)
            if rec.result == "success":
                parts = [
                    (headline(rec), 0),
                    (disks_copied(rec), 1),
                    (pings, 1),
                    (downtime_text(rec, self.backend_name), 2),
                    (prediction_line(rec), 3),
                    (self._method_line(c, width), 4),
                ]
            else:
                parts = [(headline(rec), 0), (outcome_reason(rec), 1), (pings, 2)]
            parts.append((ellipsize(shown_line(c.audit_error), width), 1) if c.audit_error else ("x dismiss", 3))
            lines = fill(parts, width, len(self.info.lines))
            self.info.set_lines(lines)
            return
        self._subtitle("ending…" if c.ended else p.phase.value)
        copying = disks_copying(c.plan.disk_copies)
        lines = [self._figures(stats, width), ellipsize(copying, width) if copying else self._method_line(c, width)]
        if c.ended:
            lines.append("measuring the ping a moment longer…")
        elif c.cancel_error:
            lines.append(f"cannot cancel: {shown_line(c.cancel_error)}")
        elif c.cancel_queued and not c.cancel_sent:
            lines.append("cancel queued: sent as soon as the hypervisor can take it")
        elif c.handle is None:
            lines.append("starting…")
        elif p.cancellable:
            lines.append("c cancel (asks first)")
        else:
            lines.append("cannot cancel now: past the point of no return")
        # a failure's words, or a note from the backend (post-copy, a setting it could not apply)
        lines.append(
            ellipsize(shown_line(p.message), width) if p.message else self._method_line(c, width) if copying else ""
        )
        self.info.set_lines(lines)

    def _subtitle(self, text: str) -> None:
        # assigning the border subtitle repaints the whole panel, even with the same text
        if self.border_subtitle != text:
            self.border_subtitle = text
            self.refresh_bindings()  # the state changed: c or x may apply now

    def _progress_line(self, width: int) -> str:
        """Phase, bar, percent, bytes, ETA, elapsed: the longest form that fits ``width``."""
        c = self.controller
        p = c.progress
        pct = f"{round(100 * p.fraction):>3}%" if p.fraction is not None else "  ?%"
        moved = f"{size(p.bytes_done or 0)}/{size(p.bytes_total)}" if p.bytes_total else ""
        eta = c.eta_s()
        eta_text = f"ETA {clock(eta)}" if eta is not None else ""
        elapsed = clock(c.elapsed_s())

        def line(cells: int, phase_w: int, *extra: str) -> str:
            filled = round(cells * (p.fraction or 0.0))
            bar = "█" * filled + "░" * (cells - filled)
            return " ".join([f"{p.phase.value:<{phase_w}}", bar, pct, *(e for e in extra if e)])

        forms = [
            line(BAR_CELLS, 14, moved, eta_text, f"elapsed {elapsed}"),
            line(BAR_CELLS, 14, eta_text, f"elapsed {elapsed}"),
            line(10, 0, eta_text, f"elapsed {elapsed}"),
            line(10, 0, eta_text or elapsed),
            line(5, 0, eta_text or elapsed),
        ]
        return next((f for f in forms if cell_len(f) <= width), forms[-1])

    def _figures(self, stats: PingStats | None, width: int = 10_000) -> str:
        c = self.controller
        if stats is None:
            return f"no ping: {shown_line(c.ping_error)}" if c.ping_error else "ping starting…"
        last = f"{stats.last_rtt_ms:.2f} ms" if stats.last_rtt_ms is not None else "–"
        silent = f" · no reply for {stats.current_gap_s:.1f} s" if stats.current_gap_s else ""
        full = f"sent {stats.sent} · lost {stats.lost} · longest gap {stats.longest_gap_s:.1f} s{silent} · last {last}"
        if cell_len(full) <= width:
            return full
        silent = f" · silent {stats.current_gap_s:.1f} s" if stats.current_gap_s else ""
        return f"sent {stats.sent} lost {stats.lost} gap {stats.longest_gap_s:.1f} s{silent}"

    def _method_line(self, c: MigrationController, width: int = 10_000) -> str:
        if c.pinger is None:
            return f"no ping: {shown_line(c.ping_error)}" if c.ping_error else ""
        full = f"probe: {c.pinger.method} — {shown_line(c.pinger.method_reason)}"
        return full if cell_len(full) <= width else f"probe: {c.pinger.method}"
