"""Migration history: this run's moves (running ones included) and the audit log's, newest first.

The table fits the screen: columns are dropped, least useful first, until the rest fit, and
the error column takes what width is left. Nothing is lost: the line under the table spells
out the highlighted move in full (times, route, outcome, pings, downtime, the error).
Running moves are refreshed every second, and become their record when they end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from rich.cells import cell_len
from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label
from textual.worker import Worker, WorkerState

from poolctl.audit import AuditLog, MigrationRecord
from poolctl.errors import describe
from poolctl.migration.controller import MigrationController
from poolctl.migration.words import clock, downtime_text, headline, ping_summary
from poolctl.safe_text import shown, shown_lines
from poolctl.tui.widgets.cells import ellipsize

CELL_PADDING = 1  # DataTable's, each side of a cell
MIN_ERROR_WIDTH = 16


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    cap: int  # widest it gets; longer values end in "…"
    drop: int  # 0: always shown; otherwise dropped at narrow widths, highest first


COLUMNS = (
    Column("when", "when (UTC)", 18, 0),
    Column("pool", "pool", 12, 6),
    Column("vm", "VM", 20, 0),
    Column("route", "from → to", 30, 1),
    Column("result", "result", 12, 0),
    Column("took", "took", 8, 3),
    Column("pings", "sent/lost", 9, 2),
    Column("gap", "gap", 7, 4),
    Column("downtime", "downtime", 8, 7),
    Column("error", "error", 10_000, 5),  # gets the width the others leave, at least MIN_ERROR_WIDTH
)
EMPTY = ("", "–")

Row = dict[str, str]


class MigrationRuns(Protocol):
    """Where the screen reads moves from (the app's ``MigrationCenter``)."""

    @property
    def runs(self) -> list[MigrationController]:
        """This run's moves, oldest first."""
        ...

    @property
    def audit_log(self) -> AuditLog:
        """The log of earlier runs' moves."""
        ...


def _stamp(iso: str) -> str:
    """``2026-11-25T21:52:19+00:00`` -> ``2026-11-25 21:52:19 UTC``."""
    return iso.replace("T", " ").replace("+00:00", " UTC")


def _when(iso: str) -> str:
    """``2026-11-25T21:52:19+00:00`` -> ``2026-11-25 21:52``: minutes; the detail line has seconds."""
    return iso.replace("T", " ")[:16]


def record_row(rec: MigrationRecord, *, this_run: bool) -> Row:
    return {
        "when": _when(rec.time) + (" *" if this_run else ""),
        "pool": rec.pool,
        "vm": rec.vm,
        "route": f"{rec.source} → {rec.destination}",
        "result": rec.result,
        "took": f"{rec.duration_s:.1f} s",
        "pings": f"{rec.ping_sent}/{rec.ping_lost}" if rec.ping_sent else "–",
        "gap": f"{rec.ping_longest_gap_s:.2f} s" if rec.ping_longest_gap_s is not None else "–",
        "downtime": f"{rec.downtime_ms:.0f} ms" if rec.downtime_ms is not None else "–",
        "error": ("" if rec.error.strip().lower() in ("cancelled", "canceled") else rec.error)
        or (f"no ping: {rec.ping_error}" if rec.ping_error else ""),
    }


def running_row(c: MigrationController) -> Row:
    p, progress = c.plan, c.progress
    pct = f" {round(100 * progress.fraction)}%" if progress.fraction is not None else ""
    stats = c.ping_stats()
    return {
        "when": _when(c.requested_at.isoformat(timespec="seconds")) + " *",
        "pool": p.pool,
        "vm": p.vm_name,
        "route": p.route,
        "result": f"running{pct}",
        "took": f"{c.elapsed_s():.1f} s",
        "pings": f"{stats.sent}/{stats.lost}" if stats is not None and stats.sent else "–",
        "gap": f"{stats.longest_gap_s:.2f} s" if stats is not None and stats.sent else "–",
        "downtime": "–",
        "error": "",
    }


def record_detail(rec: MigrationRecord) -> str:
    parts = [f"{_stamp(rec.time)} {rec.pool}: {rec.vm} {rec.source} → {rec.destination}. {headline(rec)}"]
    if rec.error and rec.error.strip().lower() not in ("cancelled", "canceled"):
        parts.append(f"{rec.result}: {rec.error}")
    parts.append(ping_summary(rec) + (f", probe {rec.ping_method}" if rec.ping_method and rec.ping_sent else ""))
    parts.append(downtime_text(rec))
    return " · ".join(parts)


def running_detail(c: MigrationController) -> str:
    p = c.plan
    progress = c.progress
    pct = f" {round(100 * progress.fraction)}%" if progress.fraction is not None else ""
    return (
        f"{_stamp(c.requested_at.isoformat(timespec='seconds'))} {p.pool}: {p.vm_name} {p.route}. "
        f"Running: {progress.phase.value}{pct}, elapsed {clock(c.elapsed_s())} (its panel shows the ping)"
    )


def fit_columns(rows: list[Row], width: int) -> list[tuple[Column, int]]:
    """The columns that fit in ``width`` cells, each with its width; a column with nothing
    to say (every downtime unknown, no error at all) is left out."""

    def natural(col: Column) -> int:
        return min(col.cap, max([cell_len(col.title), *(cell_len(r[col.key]) for r in rows)]))

    shown = [c for c in COLUMNS if c.drop == 0 or any(r[c.key] not in EMPTY for r in rows)]
    widths = {c.key: natural(c) for c in shown}
    wanted = widths.get("error", 0)
    if "error" in widths:
        widths["error"] = min(wanted, MIN_ERROR_WIDTH)

    def cost() -> int:
        return sum(widths[c.key] + 2 * CELL_PADDING for c in shown)

    while cost() > width and any(c.drop for c in shown):
        shown.remove(max(shown, key=lambda c: c.drop))
    if any(c.key == "error" for c in shown):
        widths["error"] = min(wanted, widths["error"] + max(0, width - cost()))
    return [(c, widths[c.key]) for c in shown]


def _cell(text: str, width: int) -> Text:
    # Text, not str: a DataTable reads a str as markup, and error messages hold brackets
    return Text(ellipsize(shown(text, None), width), no_wrap=True)


class HistoryScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HistoryScreen { align: center middle; }
    #history-box {
        width: 98%; height: 90%; border: thick $accent; border-title-style: bold;
        border-subtitle-align: right; padding: 0 1; background: $surface;
    }
    #history-table { height: 1fr; scrollbar-size-vertical: 1; }
    #history-detail { width: 1fr; height: auto; max-height: 4; margin-top: 1; }
    #history-note { color: $text-muted; }
    """
    BINDINGS = [
        Binding("escape,H,q", "close", "Close", tooltip="History: close", id="history.close"),
    ]

    def __init__(self, center: MigrationRuns) -> None:
        super().__init__()
        self.center = center
        self.logged: list[MigrationRecord] = []
        self.rows: list[Row] = []  # what the table shows, every column, newest first
        self._details: list[str] = []
        self._keys: list[str] = []
        self._layout: tuple[tuple[str, int], ...] = ()  # (column key, width) as drawn
        self._reader: Worker[tuple[list[MigrationRecord], list[str]]] | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="history-box") as box:
            box.border_title = "Migration history (newest first; * = this run)"
            box.border_subtitle = "Esc closes"
            yield DataTable(id="history-table", cursor_type="row", zebra_stripes=True, cell_padding=CELL_PADDING)
            yield Label("", id="history-detail", markup=False)
            yield Label("", id="history-note", markup=False)

    def on_mount(self) -> None:
        self.query_one(DataTable).focus()
        self.query_one("#history-note", Label).update(f"reading {self.center.audit_log.path}…")
        self._rebuild()
        self._reader = self._read()
        self.set_interval(1.0, self._rebuild)  # running moves: progress, then their record

    @work(thread=True, exit_on_error=False, group="history")
    def _read(self) -> tuple[list[MigrationRecord], list[str]]:
        return self.center.audit_log.read()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        event.stop()
        reader = self._reader
        if reader is None or event.worker is not reader:
            return
        note = self.query_one("#history-note", Label)
        if event.state == WorkerState.ERROR and reader.error is not None:
            note.update(f"cannot read the migration log: {describe(reader.error)}")
        elif event.state == WorkerState.SUCCESS and reader.result is not None:
            self.logged, problems = reader.result
            text = f"{len(self.logged)} logged in {self.center.audit_log.path}"
            note.update(
                "; ".join([text, *problems[:3]]) + (f" (+{len(problems) - 3} more)" if len(problems) > 3 else "")
            )
            self._rebuild()

    def on_resize(self, event: events.Resize) -> None:
        self.call_after_refresh(self._rebuild)

    # --- the table -----------------------------------------------------------------------

    def _entries(self) -> list[tuple[str, Row, str]]:
        """(key, row, detail) newest first: this run's (running or ended), then the log's."""
        runs = self.center.runs
        mine = {c.id for c in runs}
        entries = []
        for c in reversed(runs):
            rec = c.record
            if rec is None:
                entries.append((c.id, running_row(c), running_detail(c)))
            else:
                entries.append((c.id, record_row(rec, this_run=True), record_detail(rec)))
        entries += [(r.id, record_row(r, this_run=False), record_detail(r)) for r in self.logged if r.id not in mine]
        return entries

    def _rebuild(self) -> None:
        table = self.query_one(DataTable)
        width = table.size.width - 1  # the vertical scrollbar
        if width <= 0:
            return
        entries = self._entries()
        rows = [row for _, row, _ in entries]
        keys = [k for k, _, _ in entries]
        cols = fit_columns(rows, width)
        layout = tuple((c.key, w) for c, w in cols)
        old_rows, old_keys = self.rows, self._keys
        cursor_key = old_keys[table.cursor_row] if 0 <= table.cursor_row < len(old_keys) else None
        self.rows, self._details, self._keys = rows, [d for _, _, d in entries], keys
        if layout == self._layout and keys == old_keys:
            # the same rows in the same columns: only running moves changed, a few cells
            for key, row, old in zip(keys, rows, old_rows):
                for col, w in cols:
                    if row[col.key] != old[col.key]:
                        table.update_cell(key, col.key, _cell(row[col.key], w))
        else:
            self._layout = layout
            table.clear(columns=True)
            for col, w in cols:
                table.add_column(col.title, width=w, key=col.key)
            for key, row in zip(keys, rows):
                table.add_row(*(_cell(row[c.key], w) for c, w in cols), key=key)
            if cursor_key in keys:
                table.move_cursor(row=keys.index(cursor_key), animate=False)
        self._show_detail(table.cursor_row)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail(event.cursor_row)

    def _show_detail(self, index: int) -> None:
        text = self._details[index] if 0 <= index < len(self._details) else ""
        self.query_one("#history-detail", Label).update(shown_lines(text))

    def action_close(self) -> None:
        self.dismiss(None)
