"""The migrate dialog's host list: every destination with its pre-check's verdict (name, free
memory, ✓ or the reasons); a host that cannot be chosen is listed, greyed. Until the user moves
the highlight, it follows the first usable host in list order as the verdicts come in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.table import Table
from rich.text import Text
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from poolctl.format import size
from poolctl.migration.cross_pool import Destination
from poolctl.model import MigrationCheck
from poolctl.safe_text import shown, shown_line


class DestinationList(OptionList):
    def __init__(self, destinations: Sequence[Destination], *, id: str) -> None:
        super().__init__(*[Option(host_prompt(d, None), id=d.key, disabled=True) for d in destinations], id=id)
        self.destinations = list(destinations)
        self.user_moved = False  # the user moved the highlight (or chose for the host under it)

    @property
    def in_view(self) -> str | None:
        """The destination the rows under the list are for: the highlighted one, else the first."""
        option = self.highlighted_option
        if option is not None and option.id:
            return option.id
        return self.destinations[0].key if self.destinations else None

    def set_verdict(self, dest: Destination, check: MigrationCheck, choosable: bool) -> None:
        self.replace_option_prompt(dest.key, host_prompt(dest, check))
        if choosable != self.get_option(dest.key).disabled:
            return  # as it was: a re-check (another SR or network) keeps the host as it stands
        if choosable:
            keep = self.highlighted
            self.enable_option(dest.key)
            # Textual moves the highlight off an option enabled under it, to the next host
            self.highlighted = keep
        else:
            self.disable_option(dest.key)

    def follow(self, checks: Mapping[str, MigrationCheck]) -> None:
        """Highlight the first usable host in list order among those checked so far."""
        if self.user_moved:
            return
        first = next((i for i, d in enumerate(self.destinations) if d.key in checks and checks[d.key].ok), None)
        if first is not None and self.highlighted != first:
            self.highlighted = first

    # The user's moves are marked when the key or click is handled, not from the highlight messages
    # they cause: a verdict arriving while such a message waits in the queue would otherwise move
    # the highlight back under the user's hand.
    def _user(self) -> None:
        self.user_moved = True

    def action_cursor_up(self) -> None:
        self._user()
        super().action_cursor_up()

    def action_cursor_down(self) -> None:
        self._user()
        super().action_cursor_down()

    def action_first(self) -> None:
        self._user()
        super().action_first()

    def action_last(self) -> None:
        self._user()
        super().action_last()

    def action_page_up(self) -> None:
        self._user()
        super().action_page_up()  # type: ignore[no-untyped-call]  # untyped in Textual

    def action_page_down(self) -> None:
        self._user()
        super().action_page_down()  # type: ignore[no-untyped-call]  # untyped in Textual

    def on_mouse_down(self) -> None:
        self._user()


def host_prompt(dest: Destination, check: MigrationCheck | None) -> Table:
    """One host: name, free memory and the verdict; long reasons wrap in their own column."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(width=16, no_wrap=True, overflow="ellipsis")
    grid.add_column(width=14, no_wrap=True)
    grid.add_column(ratio=1)
    if check is None:
        verdict = Text("… checking")
    elif check.ok and check.copy_bytes:
        verdict = Text(f"✓ usable, copies {size(check.copy_bytes)} of disks")
    elif check.ok:
        verdict = Text("✓ usable")
    elif len(check.problems) == 1:
        verdict = Text("✗ " + shown_line(check.problems[0]))
    else:
        verdict = Text("✗ cannot take it:\n" + "\n".join(f"  ✗ {shown_line(p)}" for p in check.problems))
    grid.add_row(Text(shown(dest.label)), Text(f"free {size(dest.host.memory_free):>9}"), verdict)
    return grid
