"""`?`: every binding with its id (for the config's [keys] table), key and description."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rich.table import Table
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from poolctl.tui.keys import keys_of, shown


def binding_rows(app: App[Any], bindings: Iterable[Binding], keymap: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """(id, key as the user presses it now, description) for each of ``bindings``."""
    return [
        (
            binding.id or "",
            shown(app, keys_of(binding, keymap)),
            binding.tooltip or binding.description or binding.action,
        )
        for binding in bindings
    ]


class HelpScreen(ModalScreen[None]):
    """Lists ``bindings`` (the app's, each with an id) with their keys after ``keymap``."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close", tooltip="Help: close", id="help.close")]

    def __init__(self, bindings: Iterable[Binding], keymap: Mapping[str, str]) -> None:
        super().__init__()
        self.bindings = list(bindings)
        self.keymap = dict(keymap)

    def compose(self) -> ComposeResult:
        table = Table(box=None, padding=(0, 1), expand=False)
        table.add_column("Binding id", style="bold", no_wrap=True)
        table.add_column("Key", no_wrap=True)
        table.add_column("Does")
        for binding_id, key, description in binding_rows(self.app, self.bindings, self.keymap):
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
