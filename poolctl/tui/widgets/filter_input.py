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
from textual.widgets import Input


class FilterInput(Input):
    def __init__(
        self,
        *,
        on_done: Callable[[], None],
        on_clear: Callable[[], None],
        placeholder: str = "",
        id: str | None = None,
    ):
        super().__init__(placeholder=placeholder, id=id)
        self._on_done = on_done
        self._on_clear = on_clear

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
