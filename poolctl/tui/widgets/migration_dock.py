"""Where migration panels live: under the main screen's panes, two side by side per row; a batch
panel (evacuation, bulk move, restore) takes a row of its own, as tall as its VMs need."""

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
        self.mount(panel)
        self.arrange_panels()

    def arrange_panels(self) -> None:
        single = len(self.children) <= 1
        self.set_class(single, "-single")
        self.display = bool(self.children)
        if not any(isinstance(c, BatchPanel) for c in self.children):
            self.styles.clear_rule("grid_rows")  # the stylesheet's rows
            return
        # the grid places children in order: a batch panel spans both columns, so it starts a
        # row of its own (a migration panel alone before it keeps half a row)
        rows: list[int] = []
        column = 0
        for child in self.children:
            if isinstance(child, BatchPanel):
                child.styles.column_span = 1 if single else 2
                rows.append(int(child.styles.height.value) if child.styles.height else PANEL_ROWS)
                column = 0
            elif column == 0:
                rows.append(PANEL_ROWS)
                column = 1
            else:
                column = 0
        self.styles.grid_rows = " ".join(str(r) for r in rows)

    @on(MigrationPanel.Dismissed)
    @on(BatchPanel.Dismissed)
    async def _dismissed(self, event: MigrationPanel.Dismissed | BatchPanel.Dismissed) -> None:
        event.stop()
        await event.panel.remove()
        self.arrange_panels()
