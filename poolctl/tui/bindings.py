"""Every poolctl binding that has an id: the ones a ``[keys]`` map can remap, that ``?`` lists
and the palette offers. Each is declared where it acts (the app, a screen, a widget); this
gathers them. The screens not needed for the first paint are imported only when asked."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from textual.app import App
from textual.binding import Binding

from poolctl.tui.screens.confirm import ConfirmScreen, QuitConfirmScreen
from poolctl.tui.screens.main import MainScreen
from poolctl.tui.widgets.vm_list import VMList


def with_ids(app_class: type[App[Any]]) -> Iterator[Binding]:
    """``app_class``'s bindings that have an id, then those of every screen and widget."""
    from poolctl.tui.screens.batch_dialog import BatchDialog
    from poolctl.tui.screens.help import HelpScreen
    from poolctl.tui.screens.history import HistoryScreen
    from poolctl.tui.screens.migrate import MigrateDialog
    from poolctl.tui.widgets.batch_panel import BatchPanel
    from poolctl.tui.widgets.migration_panel import MigrationPanel

    for owner in (
        app_class,
        MainScreen,
        VMList,
        ConfirmScreen,
        QuitConfirmScreen,
        HelpScreen,
        MigrateDialog,
        MigrationPanel,
        HistoryScreen,
        BatchDialog,
        BatchPanel,
    ):
        for b in owner.BINDINGS:
            if isinstance(b, Binding) and b.id:
                yield b
