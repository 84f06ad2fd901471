"""Where migration panels live: under the main screen's panes, two side by side per row; batch
panels (evacuation, bulk move, restore) above them, a row each, as tall as their VMs need."""

from __future__ import annotations

from textual import on
from textual.containers import Container

from poolctl.tui.widgets.batch_panel import BatchPanel
from poolctl.tui.widgets.migration_panel import MigrationPanel

PANEL_ROWS = 8  # a migration panel's height


class MigrationDock(Container):
    """Panels side by side, two per row; grows by a row per two panels."""

    DEFAULT_CSS = """
    MigrationDock {
        layout: grid;
        grid-size: 2;
        grid-rows: 8;
        grid-gutter: 0 1;
        height: auto;
        max-height: 50%;
    }
    MigrationDock.-single { grid-size: 1; }
    MigrationPanel {
        height: 8;
        border: round $primary-darken-2;
        border-title-style: bold;
        padding: 0 1;
    }
    MigrationPanel:focus { border: round $accent; }
    MigrationPanel.-problem { border: round $warning; }
    MigrationPanel #mp-ping-row { height: 1; }
    BatchPanel {
        border: round $primary-darken-2;
        border-title-style: bold;
        padding: 0 1;
    }
    BatchPanel:focus { border: round $accent; }
    BatchPanel.-problem { border: round $warning; }
    """

    def on_mount(self) -> None:
        self.arrange_panels()

    def add_panel(self, panel: MigrationPanel | BatchPanel) -> None:
        first_single = next((c for c in self.children if isinstance(c, MigrationPanel)), None)
        if isinstance(panel, BatchPanel) and first_single is not None:
            # batch panels go on top, a row each: the grid cannot move a panel spanning both
            # columns past a half-filled row, so none may follow a migration panel
            self.mount(panel, before=first_single)
        else:
            self.mount(panel)
        self.arrange_panels()

    def arrange_panels(self) -> None:
        single = len(self.children) <= 1
        self.set_class(single, "-single")
        self.display = bool(self.children)
        batches = [c for c in self.children if isinstance(c, BatchPanel)]
        if not batches:
            self.styles.clear_rule("grid_rows")  # the stylesheet's rows
            return
        for b in batches:
            b.styles.column_span = 1 if single else 2
        singles = len(self.children) - len(batches)
        rows = [b.height_rows for b in batches] + [PANEL_ROWS] * ((singles + 1) // 2)
        self.styles.grid_rows = " ".join(str(r) for r in rows)

    @on(MigrationPanel.Dismissed)
    @on(BatchPanel.Dismissed)
    async def _dismissed(self, event: MigrationPanel.Dismissed | BatchPanel.Dismissed) -> None:
        event.stop()
        await event.panel.remove()
        self.arrange_panels()
