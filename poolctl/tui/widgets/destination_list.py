"""The migrate dialog's host list: every destination with its pre-check's verdict (name, free
memory, ✓ or the reasons); a host that cannot be chosen is listed, greyed. Until the user moves
the highlight, it follows the first usable host in list order as the verdicts come in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.table import Table
from rich.text import Text
from textual import on
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
        self._auto = False  # the next highlight is follow()'s
        self._answered = False

    @property
    def in_view(self) -> str | None:
        """The destination the rows under the list are for: the highlighted one, else the first."""
        option = self.highlighted_option
        if option is not None and option.id:
            return option.id
        return self.destinations[0].key if self.destinations else None

    def set_verdict(self, dest: Destination, check: MigrationCheck, choosable: bool) -> None:
        self._answered = True
        self.replace_option_prompt(dest.key, host_prompt(dest, check))
        if choosable:
            self.enable_option(dest.key)
        else:
            self.disable_option(dest.key)

    def follow(self, checks: Mapping[str, MigrationCheck]) -> None:
        """Highlight the first usable host in list order among those checked so far."""
        if self.user_moved:
            return
        first = next((i for i, d in enumerate(self.destinations) if d.key in checks and checks[d.key].ok), None)
        if first is not None and self.highlighted != first:
            self._auto = True
            self.highlighted = first

    @on(OptionList.OptionHighlighted)
    def _moved(self) -> None:
        if self._auto:
            self._auto = False
        elif self._answered:
            self.user_moved = True


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
