"""The `/` filter line: an Input that hands type-ahead keys back once it lets go of focus.

Over a laggy SSH link `/db<Enter>K` can arrive in one packet. Textual forwards every queued
key to the widget focused at arrival, so after Enter the `K` would still be typed into the
filter. So Enter and Esc are handled here, as their key arrives (a binding would run only
after the key bubbled up, when the keys behind it were already typed in), and a key that
reaches this widget after it let go of focus is re-sent to whatever has focus now.
"""

from __future__ import annotations

from collections.abc import Callable

from textual import events
from textual.geometry import Size
from textual.widgets import Input


class FilterInput(Input):
    def __init__(
        self,
        *,
        on_done: Callable[[], None],
        on_clear: Callable[[], None],
        on_change: Callable[[str], None],
        placeholder: str = "",
        id: str | None = None,
    ):
        super().__init__(placeholder=placeholder, id=id)
        self._on_done = on_done
        self._on_clear = on_clear
        self._on_change = on_change

    def _watch_value(self, value: str) -> None:
        # Input sets its virtual size on every change, and the layout sets it back: each
        # keystroke re-laid out the whole screen and repainted the scrollbars a frame later.
        # This line is one row high at any text length, so its size never moves the layout.
        self.set_reactive(Input.virtual_size, Size(self.content_width, 1))
        super()._watch_value(value)
        # Here, not from the Changed message: the list is filtered before the typed character
        # is drawn, so one repaint shows both.
        self._on_change(value)

    async def _on_key(self, event: events.Key) -> None:
        focused = self.screen.focused
        if focused is not None and focused is not self:
            event.stop()
            event.prevent_default()
            focused._forward_event(events.Key(event.key, event.character))
            return
        if event.key in ("enter", "escape"):
            event.stop()
            event.prevent_default()
            if event.key == "enter":
                await self.action_submit()
                self._on_done()
            else:
                self._on_clear()
            return
        await super()._on_key(event)
