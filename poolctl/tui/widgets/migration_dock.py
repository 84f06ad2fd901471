"""Where migration panels live: under the main screen's panes, two side by side per row."""

from __future__ import annotations

from textual import on
from textual.containers import Container

from poolctl.tui.widgets.migration_panel import MigrationPanel


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
    """

    def on_mount(self) -> None:
        self.arrange_panels()

    def add_panel(self, panel: MigrationPanel) -> None:
        self.mount(panel)
        self.arrange_panels()

    def arrange_panels(self) -> None:
        self.set_class(len(self.children) <= 1, "-single")
        self.display = bool(self.children)

    @on(MigrationPanel.Dismissed)
    async def _dismissed(self, event: MigrationPanel.Dismissed) -> None:
        event.stop()
        await event.panel.remove()
        self.arrange_panels()
