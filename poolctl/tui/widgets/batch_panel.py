"""The batch panel: one evacuation, bulk move or restore, one row per VM, docked beside the
migration panels.

Cheap like the migration panel: its size is fixed when it is mounted (a row per VM), every line
is text in one style, a runner event changes only its VM's row, and a line is repainted only
in the span that changed. Sparklines and ping figures of running moves are polled at
``TICK_S``, not drawn per probe.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.cells import cell_len
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widget import Widget
from textual.worker import Worker, WorkerState

from poolctl.errors import describe
from poolctl.migration.batch import (
    BatchDone,
    CancelAnswer,
    LevelChanged,
    MoveFinished,
    MoveProgress,
    MoveStarted,
    Stopping,
)
from poolctl.migration.batch_summary import MoveLine, Summary
from poolctl.migration.controller import MigrationController
from poolctl.migration.planner import Placement, Plan
from poolctl.migration.words import clock
from poolctl.ping.stats import Sample
from poolctl.safe_text import shown, shown_line
from poolctl.tui.messages import BatchEventArrived, BatchNote
from poolctl.tui.widgets.batch_job import BatchJob
from poolctl.tui.widgets.migration_panel import TICK_S, LineBlock
from poolctl.tui.widgets.sparkline import sparkline_text

STATE_W = 11  # "not started"
SPARK_MAX = 24
CHROME = 5  # border (2), the overall line, the level line, the closing line

# a move's outcome (MoveLine.outcome) in the row's words
OUTCOME_WORDS = {
    "success": "done",
    "failed": "FAILED",
    "refused": "REFUSED",
    "unknown": "UNKNOWN",
    "cancelled": "cancelled",
    "unfinished": "unfinished",
    "not started": "not started",
}


@dataclass
class Row:
    """One VM of the batch as the panel shows it."""

    placement: Placement
    state: str = "waiting"
    controller: MigrationController | None = None
    line: MoveLine | None = None  # its summary line, once it ended
    samples: list[Sample] = field(default_factory=list)

    @property
    def moving(self) -> bool:
        return self.controller is not None and self.line is None


def panel_height(moves: int) -> int:
    return moves + CHROME


class BatchPanel(Widget, can_focus=True):
    """Shows one batch of moves (``plan.moves``), fed by ``BatchEventArrived`` and ``BatchNote``."""

    BINDINGS = [
        Binding(
            "c",
            "cancel_batch",
            "Cancel moves",
            tooltip="Cancel the batch: the running moves that can stop, no more starts (asks first)",
            id="batch.cancel",
        ),
        Binding(
            "x", "dismiss_panel", "Dismiss", tooltip="Close this batch panel once it has ended", id="batch.dismiss"
        ),
    ]

    class CancelRequested(Message):
        """The user asked to cancel the batch: the screen confirms, then calls ``send_cancel``."""

        def __init__(self, panel: BatchPanel) -> None:
            super().__init__()
            self.panel = panel

    class Dismissed(Message):
        """The user closed the panel of an ended batch: its dock removes it."""

        def __init__(self, panel: BatchPanel) -> None:
            super().__init__()
            self.panel = panel

    def __init__(self, title: str, plan: Plan, job: BatchJob, *, first_note: str = "", id: str | None = None) -> None:
        super().__init__(id=id)
        self.batch_title = title
        self.job = job
        self.rows: dict[str, Row] = {p.vm.ref: Row(p) for p in plan.moves}
        self.order = [p.vm.ref for p in plan.moves]
        self.block = LineBlock(len(self.order) + CHROME - 2, id="bp-lines")
        self.level = 0
        self.level_reason = ""
        self.note = first_note
        self.problem = False
        self.summary: Summary | None = None
        self.ended = False
        self._elapsed_from: float | None = None
        self.border_title = Text(shown_line(title))  # Text: a str title is markup
        self.border_subtitle = "starting"
        self.height_rows = panel_height(len(self.order))
        self.styles.height = self.height_rows
        self.vm_width = max((cell_len(shown(self.rows[r].placement.vm.name)) for r in self.order), default=0)
        self.host_width = max((cell_len(self._dest(self.rows[r])) for r in self.order), default=0)

    def compose(self) -> ComposeResult:
        yield self.block

    def on_mount(self) -> None:
        self._timer = self.set_interval(TICK_S, self.tick)
        self.call_after_refresh(self.redraw)

    # --- news from the batch's thread ------------------------------------------------------

    def on_batch_event_arrived(self, msg: BatchEventArrived) -> None:
        e = msg.event
        if isinstance(e, MoveStarted):
            row = self.rows[e.placement.vm.ref]
            row.controller, row.state = e.controller, "starting"
        elif isinstance(e, MoveProgress):
            row = self.rows[e.placement.vm.ref]
            p = e.progress
            row.state = f"moving {round(100 * p.fraction):>3}%" if p.fraction is not None else p.phase.value
        elif isinstance(e, MoveFinished):
            row = self.rows[e.placement.vm.ref]
            row.line = e.line
            row.state = OUTCOME_WORDS.get(e.line.outcome, e.line.outcome)
            if row.controller is not None:
                row.samples = row.controller.ping_samples()
            if not e.line.moved:
                self.problem = True
        elif isinstance(e, LevelChanged):
            self.level, self.level_reason = e.decision.level, e.decision.reason
        elif isinstance(e, Stopping):
            self.note = e.reason
        elif isinstance(e, CancelAnswer):
            self.note = e.message
        elif isinstance(e, BatchDone):
            self.summary = e.summary
            by_name = {r.placement.vm.name: r for r in self.rows.values()}
            for line in e.summary.lines:
                left = by_name.get(line.vm)
                if left is not None and left.line is None:
                    left.line, left.state = line, OUTCOME_WORDS.get(line.outcome, line.outcome)
            self.problem = self.problem or not e.summary.ok
        self.redraw()

    def on_batch_note(self, msg: BatchNote) -> None:
        if msg.text:
            self.note = msg.text
        self.problem = self.problem or msg.problem
        if msg.ended:
            self.ended = True
            self._timer.stop()
            for row in self.rows.values():
                if row.line is None and not row.moving:
                    row.state = "not started"
        self.redraw()
        if msg.ended:
            self.refresh_bindings()

    # --- keys ------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_batch":
            return not self.ended and not self.job.cancelled
        if action == "dismiss_panel":
            return self.ended
        return True

    def action_cancel_batch(self) -> None:
        if self.ended:
            self.notify(f"{self.batch_title}: already ended", severity="warning", markup=False)
            return
        if self.job.cancelled:
            self.notify(f"{self.batch_title}: cancel already asked", severity="warning", markup=False)
            return
        self.post_message(self.CancelRequested(self))

    def action_dismiss_panel(self) -> None:
        if not self.ended:
            self.notify(f"{self.batch_title}: still running; cancel it first (c)", severity="warning", markup=False)
            return
        self.post_message(self.Dismissed(self))

    @work(thread=True, exit_on_error=False, group="batch-cancel")
    def send_cancel(self) -> None:
        answers = self.job.cancel()
        self.app.call_from_thread(self._cancel_sent, answers)

    def _cancel_sent(self, answers: list[str]) -> None:
        self.note = "; ".join(answers) if answers else "cancel asked: no more moves start"
        self.refresh_bindings()
        self.redraw()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        event.stop()
        if event.worker.group == "batch-cancel" and event.state == WorkerState.ERROR and event.worker.error:
            self.notify(describe(event.worker.error), title="Cancel failed", severity="error", markup=False)

    # --- drawing ---------------------------------------------------------------------------

    def tick(self) -> None:
        for row in self.rows.values():
            if row.moving and row.controller is not None:
                row.samples = row.controller.ping_samples()
        self.redraw()

    def redraw(self) -> None:
        width = self.block.size.width or 76
        lines = [self._overall(), self._level_line()]
        lines += [self.row_text(self.rows[ref], width) for ref in self.order]
        lines.append(self._closing_line())
        self.block.set_lines(lines)
        self._subtitle()

    def _subtitle(self) -> None:
        if self.ended:
            if self.summary is None:
                text = "FAILED" if self.problem else "ended"
            elif self.summary.cancelled:
                text = "cancelled"
            else:
                text = "complete" if self.summary.ok else "FAILED"
        elif any(r.controller is not None for r in self.rows.values()):
            text = "cancelling" if self.job.cancelled else "running"
        else:
            text = "starting"
        self.set_class(self.problem, "-problem")
        if self.border_subtitle != text:
            self.border_subtitle = text
            self.refresh_bindings()

    def _overall(self) -> str:
        rows = list(self.rows.values())
        done = sum(1 for r in rows if r.line is not None and r.line.moved)
        failed = sum(1 for r in rows if r.line is not None and not r.line.moved)
        moving = sum(1 for r in rows if r.moving)
        n = len(rows)
        cells = 10
        filled = round(cells * done / n) if n else cells
        parts = [f"{'█' * filled}{'░' * (cells - filled)} {done} of {n} moved"]
        if moving:
            parts.append(f"{moving} moving")
        if failed:
            parts.append(f"{failed} not moved")
        waiting = n - done - failed - moving
        if waiting and not self.ended:
            parts.append(f"{waiting} waiting")
        return " · ".join(parts)

    def _level_line(self) -> str:
        if self.ended and self.note:
            return self.note  # what the batch left behind says more than its last level now
        if not self.level:
            return "at once: deciding…"
        return f"at once: {self.level} — {self.level_reason}" if self.level_reason else f"at once: {self.level}"

    def _closing_line(self) -> str:
        if self.ended:
            total = self.summary.total() if self.summary is not None else ""
            return f"{total} · x dismiss" if total else "x dismiss"
        if self.note:
            return self.note
        return "cancel asked: no more moves start" if self.job.cancelled else "c cancel (asks first)"

    @staticmethod
    def _dest(row: Row) -> str:
        d = row.placement.destination
        return shown(d.name) if d is not None else "?"

    def row_text(self, row: Row, width: int) -> str:
        """``db-02 → xcp-lab-1  moving  42%  ▁▁▂×▁  lost 1 · gap 0.30 s``, fitted to ``width``."""
        head = f"{shown(row.placement.vm.name):<{self.vm_width}} → {self._dest(row):<{self.host_width}}"
        figures = self._figures(row)
        state = f"{row.state:<{STATE_W}}"
        room = width - cell_len(head) - cell_len(state) - cell_len(figures) - 3
        spark_w = max(0, min(SPARK_MAX, room))
        spark = sparkline_text(row.samples, spark_w) if spark_w and row.samples else " " * spark_w
        return " ".join(p for p in (head, state, spark, figures) if p)

    @staticmethod
    def _figures(row: Row) -> str:
        if row.line is not None:
            line = row.line
            if line.outcome == "not started":
                return ""
            gap = f"{line.longest_gap_s:.2f} s" if line.longest_gap_s is not None else "–"
            took = f" · {clock(line.seconds)}" if line.moved else ""
            return f"lost {line.lost} · gap {gap}{took}"
        c = row.controller
        if c is None:
            return ""
        stats = c.ping_stats()
        if stats is None:
            return "no ping" if c.ping_error else "ping…"
        return f"lost {stats.lost} · gap {stats.longest_gap_s:.2f} s"
