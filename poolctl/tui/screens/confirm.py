"""A yes/no dialog for operations a sysadmin does not want to trigger by a stray key."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label

from poolctl.safe_text import shown_line, shown_lines


class ConfirmScreen(ModalScreen[bool]):
    """Dismisses with True on `y`/Enter/the confirm button, False on `n`/Esc/Cancel."""

    BINDINGS = [
        Binding("y", "confirm", "Yes", tooltip="Dialog: go ahead", id="confirm.yes"),
        Binding("n,escape", "cancel", "No", tooltip="Dialog: cancel", id="confirm.no"),
    ]

    def __init__(self, title: str, message: str, confirm_label: str, cancel_label: str = "Cancel") -> None:
        super().__init__()
        self._title = title
        self._message = message
        self._confirm_label = confirm_label
        # "Cancel (n)" beside "Cancel migration (y)" would read as the same thing: callers may say what No keeps
        self._cancel_label = cancel_label

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box") as box:
            # Callers quote VM and host names: made safe here, once for every dialog.
            box.border_title = Text(shown_line(self._title))  # Text: a str title is markup
            yield Label(shown_lines(self._message), id="confirm-message", markup=False)
            with Horizontal(id="confirm-buttons"):
                yield Button(f"{self._confirm_label} (y)", id="confirm-yes", variant="error")
                yield Button(f"{self._cancel_label} (n)", id="confirm-no")

    def on_mount(self) -> None:
        # The dialog is the check that the first key was meant: a second deliberate key
        # (Enter or y) goes ahead, so keep it quick.
        self.query_one("#confirm-yes", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm-yes")

    def action_confirm(self) -> None:
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)


class QuitConfirmScreen(ConfirmScreen):
    """'Quit anyway?' while migrations run: pressing the quit key again is the deliberate second key."""

    BINDINGS = [Binding("q,ctrl+q", "confirm", "Quit", tooltip="Quit question: quit anyway", id="quit.again")]

    def __init__(self, message: str) -> None:
        super().__init__("Quit poolctl", message, "Quit", "Stay")
