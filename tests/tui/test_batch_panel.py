"""The batch panel on its own: runner events change their VM's row in place, nothing re-lays out.

The events are the runner's own dataclasses, built here as the runner builds them; the move's
controller is a real one on the lab's real backend (constructed, never run: the panel only reads it).
"""

from __future__ import annotations

from textual.app import App, ComposeResult

from poolctl.migration.batch import (
    BatchDone,
    LevelChanged,
    MoveFinished,
    MoveProgress,
    MoveStarted,
    migration_plan,
)
from poolctl.migration.batch_summary import MoveLine, Summary
from poolctl.migration.concurrency import Decision, MoveFigures
from poolctl.migration.controller import MigrationController
from poolctl.migration.planner import plan_moves
from poolctl.model import MigrationCheck, MigrationPhase, MigrationProgress
from poolctl.tui.app import create_app
from poolctl.tui.messages import BatchEventArrived, BatchNote
from poolctl.tui.widgets.batch_job import BatchJob
from poolctl.tui.widgets.batch_panel import BatchPanel, panel_height
from tests.support.tui import loaded


class PanelApp(App[None]):
    def __init__(self, panel: BatchPanel) -> None:
        super().__init__()
        self.panel = panel

    def compose(self) -> ComposeResult:
        yield self.panel


async def test_events_change_their_row_in_place(lab):
    # the lab's real records and backend, read once through the real app
    source = create_app([lab.pool()])
    async with source.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        session = source.sessions["lab"]
        store, backend = session.store, session.backend
        hosts = list(store.hosts.values())
        vms = [v for v in store.vms.values() if v.name in ("db-02", "build-01")]
        dest = next(h for h in hosts if h.name == "xcp-lab-1")
        checks = {v.ref: {dest.ref: MigrationCheck(vm=v.ref, host=dest.ref)} for v in vms}
        plan = plan_moves(vms, hosts, checks, to=[dest.ref])
        first, second = plan.moves
        controller = MigrationController(backend, migration_plan("lab", first))

        panel = BatchPanel("Move 2 VMs to xcp-lab-1", plan, BatchJob())
        app = PanelApp(panel)
        async with app.run_test(size=(100, 12)) as p:
            await p.pause(0.1)
            region = panel.region
            assert panel.size.height == panel_height(2)  # fixed when built: a row per VM
            before = list(panel.block.lines)
            assert before[2].startswith(first.vm.name) and "waiting" in before[2]

            def post(event) -> None:
                panel.post_message(BatchEventArrived(event))

            post(LevelChanged(Decision(1, 0, "starting with 1 at a time")))
            post(MoveStarted(first, controller, 1))
            progress = MigrationProgress(phase=MigrationPhase.COPYING, fraction=0.42, cancellable=True)
            post(MoveProgress(first, controller, progress))
            await p.pause(0.1)
            now = list(panel.block.lines)
            assert "moving  42%" in now[2]
            assert now[3] == before[3]  # the other VM's row: untouched
            assert "at once: 1" in now[1] and "1 moving" in now[0]

            line = MoveLine(
                first.vm.name, "xcp-lab-3", "xcp-lab-1", "success", seconds=8.1, sent=81, lost=1, longest_gap_s=0.3
            )
            figures = MoveFigures(first.vm.name, 1, 0.0, 8.1, first.vm.memory, 0.3, 1, 0.1)
            post(MoveFinished(first, line, figures, None))
            failed = MoveLine(second.vm.name, "xcp-lab-3", "xcp-lab-1", "failed", seconds=0.4, error="no")
            post(MoveFinished(second, failed, MoveFigures(second.vm.name, 1, 8.1, 0.4, 0, None, 0, 0.1, True), None))
            post(BatchDone(Summary((line, failed), 9.0, (Decision(1, 0, "starting with 1 at a time"),), 1)))
            panel.post_message(BatchNote("", ended=True))
            await p.pause(0.1)
            done = list(panel.block.lines)
            assert "done" in done[2] and "lost 1 · gap 0.30 s" in done[2]
            assert "FAILED" in done[3]
            assert "1 of 2 moved" in done[0]
            assert "x dismiss" in done[-1] and "not moved" in done[-1]
            assert panel.border_subtitle == "FAILED" and panel.has_class("-problem")
            assert panel.region == region  # the same size and place throughout: no re-layout
