"""`?`: every binding with its id (for the config's [keys] table), key and description."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

if TYPE_CHECKING:
    from poolctl.tui.app import PoolctlApp


def binding_rows(app: PoolctlApp) -> list[tuple[str, str, str]]:
    """(id, key as the user presses it now, description) for every poolctl binding."""
    rows = []
    keymap = app.user_keymap
    for binding in app.all_bindings():
        assert binding.id is not None
        keys = keymap.get(binding.id, binding.key)
        shown = ", ".join(app.get_key_display(Binding(k.strip(), "")) for k in keys.split(","))
        rows.append((binding.id, shown, binding.tooltip or binding.description or binding.action))
    return rows


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close", tooltip="Help: close", id="help.close")]

    app: PoolctlApp

    def compose(self) -> ComposeResult:
        table = Table(box=None, padding=(0, 1), expand=False)
        table.add_column("Binding id", style="bold", no_wrap=True)
        table.add_column("Key", no_wrap=True)
        table.add_column("Does")
        for binding_id, key, description in binding_rows(self.app):
            table.add_row(binding_id, key, description)
        table.add_row("", "", "")
        table.add_row("(textual)", "ctrl+p", "Command palette: find any action by name")
        table.add_row("(textual)", "tab", "Next pane")
        table.add_row("(textual)", "shift+tab", "Previous pane")
        table.add_row("(textual)", "ctrl+q", "Quit, like app.quit")
        with VerticalScroll(id="help-box") as box:
            box.border_title = "Keys — remap any id in the config's \\[keys] table"
            box.border_subtitle = "Esc closes"
            yield Static(table, id="help-table")

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
