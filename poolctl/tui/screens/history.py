"""Migration history: this run's moves (running ones included) and the audit log's, newest first."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label
from textual.worker import Worker, WorkerState

from poolctl.audit import MigrationRecord
from poolctl.migration import describe

if TYPE_CHECKING:
    from poolctl.tui.migrations import MigrationCenter

COLUMNS = ("when (UTC)", "pool", "VM", "from", "to", "result", "took", "pings sent/lost", "longest gap",
           "downtime", "error")


def record_row(rec: MigrationRecord, *, this_run: bool) -> tuple[str, ...]:
    gap = f"{rec.ping_longest_gap_s:.2f} s" if rec.ping_longest_gap_s is not None else "–"
    pings = f"{rec.ping_sent}/{rec.ping_lost}" if rec.ping_sent else (rec.ping_error and "no ping") or "–"
    return (
        rec.time.replace("T", " ").split("+")[0] + (" *" if this_run else ""),
        rec.pool, rec.vm, rec.source, rec.destination, rec.result, f"{rec.duration_s:.1f} s", pings, gap,
        f"{rec.downtime_ms:.0f} ms" if rec.downtime_ms is not None else "–",
        rec.error,
    )


class HistoryScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HistoryScreen { align: center middle; }
    #history-box {
        width: 98%; height: 90%; border: thick $accent; border-title-style: bold;
        padding: 0 1; background: $surface;
    }
    #history-table { height: 1fr; }
    #history-note { color: $text-muted; }
    """
    BINDINGS = [
        Binding("escape,H,q", "close", "Close", tooltip="History: close", id="history.close"),
    ]

    def __init__(self, center: MigrationCenter) -> None:
        super().__init__()
        self.center = center

    def compose(self) -> ComposeResult:
        with Vertical(id="history-box") as box:
            box.border_title = "Migration history (newest first; * = this run)"
            yield DataTable(id="history-table", cursor_type="row", zebra_stripes=True)
            yield Label("", id="history-note", markup=False)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns(*COLUMNS)
        for c in reversed(self.center.runs):
            if not c.finished.is_set():
                p = c.plan
                table.add_row(c.requested_at.isoformat(timespec="seconds").replace("T", " ").split("+")[0] + " *",
                              p.pool, p.vm_name, p.source_name, p.destination_name,
                              f"running ({c.progress.phase.value})", f"{c.elapsed_s():.1f} s", "", "", "", "")
        table.focus()
        self.query_one("#history-note", Label).update(f"reading {self.center.audit_log.path}…")
        self._read()

    @work(thread=True, exit_on_error=False, group="history")
    def _read(self) -> tuple[list[MigrationRecord], list[str]]:
        return self.center.audit_log.read()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        event.stop()
        note = self.query_one("#history-note", Label)
        if event.state == WorkerState.ERROR:
            note.update(f"cannot read the migration log: {describe(event.worker.error)}")
        elif event.state == WorkerState.SUCCESS:
            records, problems = event.worker.result
            mine = {c.id for c in self.center.runs}
            # this run's finished moves not (yet) in the file, e.g. the log was not writable
            logged = {r.id for r in records}
            extra = [c.record for c in self.center.runs if c.record is not None and c.id not in logged]
            table = self.query_one(DataTable)
            for rec in sorted(extra, key=lambda r: r.time, reverse=True) + records:
                table.add_row(*record_row(rec, this_run=rec.id in mine))
            text = f"{len(records)} logged in {self.center.audit_log.path}"
            note.update("; ".join([text, *problems[:3]]) + (f" (+{len(problems) - 3} more)" if len(problems) > 3
                                                              else ""))

    def action_close(self) -> None:
        self.dismiss(None)
