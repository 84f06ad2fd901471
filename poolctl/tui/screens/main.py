"""The main screen: pool tree, VM list (with filter) and details; power keys live here.

It asks before what is disruptive (a power operation that stops the guest, cancelling a
migration) and hands what the user confirmed to the app as a message: the app runs it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Tree

from poolctl.model import VM, Host, PowerOp, PowerState
from poolctl.safe_text import shown
from poolctl.tui.messages import ConnectionChanged, InventoryUpdated, PowerRequested, Selection
from poolctl.tui.screens.confirm import ConfirmScreen
from poolctl.tui.session import PoolSession
from poolctl.tui.widgets.details import DetailsPane
from poolctl.tui.widgets.filter_input import FilterInput
from poolctl.tui.widgets.pool_tree import PoolTree
from poolctl.tui.widgets.vm_list import VMList

if TYPE_CHECKING:
    from poolctl.tui.widgets.batch_panel import BatchPanel
    from poolctl.tui.widgets.migration_panel import MigrationPanel

DETAILS_DELAY_S = 0.05


class MainScreen(Screen[None]):
    """Shows ``sessions`` (the app's pools by name; the app adds none after start)."""

    BINDINGS = [
        Binding("s", "power('start')", "Start", tooltip="Start the selected VM", id="vm.start"),
        Binding(
            "d",
            "power('shutdown')",
            "Shutdown",
            tooltip="Shut the selected VM down cleanly (asks first)",
            id="vm.shutdown",
        ),
        Binding(
            "r",
            "power('reboot')",
            "Reboot",
            show=False,
            tooltip="Reboot the selected VM cleanly (asks first)",
            id="vm.reboot",
        ),
        Binding(
            "z",
            "power('suspend')",
            "Suspend",
            show=False,
            tooltip="Suspend the selected VM, or resume it if it is suspended",
            id="vm.suspend",
        ),
        # not in the footer (short of room at 80 columns); ? and the palette list it
        Binding(
            "K",
            "power('force_off')",
            "Force off",
            show=False,
            tooltip="Force off: power the selected VM off hard (asks first)",
            id="vm.force_off",
        ),
        # priority: runs before the key is forwarded to the focused widget, so keys typed
        # ahead (a paste, a laggy SSH link) already reach the filter it opens
        Binding(
            "slash",
            "filter",
            "Filter",
            tooltip="Filter the VM list by name, IP, host or state",
            priority=True,
            id="list.filter",
        ),
        Binding(
            "escape",
            "clear_filter",
            "Clear filter",
            show=False,
            tooltip="Clear the VM list filter",
            id="list.clear_filter",
        ),
    ]

    def __init__(self, sessions: Mapping[str, PoolSession]) -> None:
        super().__init__()
        self.sessions = sessions
        self.pool_tree = PoolTree(id="tree")
        self.vm_list = VMList(id="vms")
        self.details = DetailsPane(id="details")
        self.filter_input = FilterInput(
            placeholder="filter: name, IP, host or state (Enter keeps it, Esc clears)",
            id="filter",
            on_done=self._filter_done,
            on_clear=self.action_clear_filter,
            on_change=self._filter_changed,
        )
        self._scope: Selection | None = None
        self._details_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="panes"):
            yield self.pool_tree
            with Vertical(id="right"):
                yield self.filter_input
                yield self.vm_list
                yield self.details
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.pool_tree.border_title = "Pools"
        self.details.border_title = "Details"
        for session in self.sessions.values():
            self.pool_tree.add_pool(session)
        first = next(iter(self.sessions.values()), None)
        if first is not None:
            node = self.pool_tree.node_for(first.name, "pool")
            self.pool_tree.move_cursor(node)
            self._set_scope(Selection(first.name, "pool"))
        self.pool_tree.focus()

    # --- selection -----------------------------------------------------------------------

    @property
    def scope(self) -> Selection | None:
        """The tree selection that decides which VMs are listed."""
        return self._scope

    def session(self, pool: str | None) -> PoolSession | None:
        return self.sessions.get(pool) if pool else None

    def selected_vm(self) -> tuple[PoolSession, VM] | None:
        """The VM under the list cursor: what power keys and palette commands act on."""
        vm = self.vm_list.cursor_vm
        session = self.session(self._scope.pool if self._scope else None)
        if vm is None or session is None:
            return None
        return session, vm

    def selected_host(self) -> tuple[PoolSession, Host] | None:
        """The host the tree points at (also while the list shows its VMs): what host keys act on."""
        sel = self._scope
        session = self.session(sel.pool if sel else None)
        if sel is None or sel.kind != "host" or sel.ref is None or session is None or session.store is None:
            return None
        host = session.store.hosts.get(sel.ref)
        return (session, host) if host is not None else None

    def marked_vms(self) -> tuple[PoolSession, list[VM]] | None:
        """The marked VMs of the listed pool, or None when none is marked."""
        session = self.session(self._scope.pool if self._scope else None)
        marked = self.vm_list.marked
        if session is None or not marked:
            return None
        return session, marked

    def _set_scope(self, sel: Selection) -> None:
        self._scope = sel
        self._show_list()
        if not self.vm_list.has_focus:
            self.details.show(self.session(sel.pool), sel)

    def _show_list(self) -> None:
        sel = self._scope
        session = self.session(sel.pool if sel else None)
        if session is None or sel is None:
            self.vm_list.show(None, None)
        elif session.store is None:
            self.vm_list.show(None, sel, empty_text=f"{session.name}: {session.status_text()}")
        else:
            if sel.ref is not None and sel.ref not in _table(session, sel.kind):
                sel = self._scope = Selection(sel.pool, "pool")  # it vanished in a reload
            self.vm_list.show(session.store, sel)
        self._update_list_title()

    def _update_list_title(self) -> None:
        sel = self._scope
        session = self.session(sel.pool if sel else None)
        if sel is None or session is None:
            self._set_list_title("VMs")
            return
        where = {
            "pool": f"in {sel.pool}",
            "storage": f"in {sel.pool}",
            "networks": f"in {sel.pool}",
            "host": "on host",
            "sr": "with disks on",
            "network": "on network",
        }[sel.kind]
        if sel.ref and session.store is not None:
            where = f"{where} {shown(session.store.name_of(sel.ref))}"
        flt = self.vm_list.filter_text
        marked = len(self.vm_list.marked)
        self._set_list_title(
            f"VMs {where} ({self.vm_list.row_count})"
            + (f" matching “{shown(flt)}”" if flt else "")
            + (f" · {marked} marked" if marked else "")
        )

    def _set_list_title(self, title: str) -> None:
        # Assigning border_title repaints the whole list even when it is unchanged: a cursor
        # move (which calls this) would undo the list's two-line repaint.
        if title != getattr(self, "_list_title", None):
            self._list_title = title
            self.vm_list.border_title = Text(title)  # Text: a str title is markup, a name may hold brackets

    def _follow_list(self) -> None:
        vm = self.vm_list.cursor_ref
        pool = self._scope.pool if self._scope else None
        if vm is not None and pool is not None:
            self.details.show(self.session(pool), Selection(pool, "vm", vm))
        elif self._scope is not None:
            self.details.show(self.session(pool), self._scope)

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[Selection]) -> None:
        if event.node.data is not None:
            self._set_scope(event.node.data)

    @on(VMList.MarksChanged)
    def _marks_changed(self, event: VMList.MarksChanged) -> None:
        self._update_list_title()

    @on(VMList.Highlighted)
    def _list_highlighted(self, event: VMList.Highlighted) -> None:
        self._update_list_title()
        if self.vm_list.has_focus:
            # Holding PageDown through 10,000 VMs must not lay out the details each step:
            # they follow once the cursor rests.
            if self._details_timer is not None:
                self._details_timer.stop()
            self._details_timer = self.set_timer(DETAILS_DELAY_S, self._follow_list)

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        if event.widget is self.vm_list:
            self._follow_list()
        elif event.widget is self.pool_tree and self._scope is not None:
            self.details.show(self.session(self._scope.pool), self._scope)

    # --- store and connection news -------------------------------------------------------

    def on_inventory_updated(self, msg: InventoryUpdated) -> None:
        session = self.session(msg.pool)
        if session is None:
            return
        if msg.loaded:
            self.pool_tree.load(session)
            self.pool_tree.set_status(session)
        else:
            self.pool_tree.apply(session, msg.changes)
        if self._scope is not None and self._scope.pool == msg.pool:
            if msg.loaded or self.vm_list.scope is None:
                self._show_list()
            else:
                self.vm_list.apply(msg.changes)
                self._update_list_title()
        if msg.loaded or self.details.touches(msg.pool, msg.changes):
            self.details.redraw()

    def on_connection_changed(self, msg: ConnectionChanged) -> None:
        session = self.session(msg.state.pool)
        if session is None:
            return
        self.pool_tree.set_status(session)
        if self._scope is not None and self._scope.pool == session.name and session.store is None:
            self._show_list()
        sel = self.details.selection
        if sel is not None and sel.pool == session.name and sel.kind == "pool":
            self.details.redraw()

    # --- filter --------------------------------------------------------------------------

    def action_filter(self) -> None:
        self.filter_input.display = True
        self.set_focus(self.filter_input)  # now, not after a round trip (see the binding)

    def action_clear_filter(self) -> None:
        if not self.filter_input.display and not self.vm_list.filter_text:
            return
        self.filter_input.value = ""
        self.filter_input.display = False
        self.vm_list.set_filter("")
        self._update_list_title()
        self.set_focus(self.vm_list)

    def _filter_changed(self, value: str) -> None:
        self.vm_list.set_filter(value)
        self._update_list_title()

    def _filter_done(self) -> None:
        """Enter in the filter: keep it, and go back to the list (synchronously)."""
        if not self.filter_input.value.strip():
            self.filter_input.display = False
        self.set_focus(self.vm_list)

    # --- power ---------------------------------------------------------------------------

    def action_power(self, op: str) -> None:
        self.request_power(PowerOp(op))

    def request_power(self, op: PowerOp) -> None:
        """Ask for ``op`` on the selected VM: confirm if it is disruptive, then run it."""
        picked = self.selected_vm()
        if picked is None:
            self.notify("No VM selected", severity="warning")
            return
        session, vm = picked
        if op == PowerOp.SUSPEND and vm.power_state in (PowerState.SUSPENDED, PowerState.PAUSED):
            op = PowerOp.RESUME
        if not op.asks_first:
            self.post_message(PowerRequested(session, vm, op))
            return
        host = session.store.name_of(vm.host) if (session.store and vm.host) else "no host"
        message = f"{op.verb} {vm.name} ({vm.power_state.value} on {host}, pool {session.name})?"
        if op == PowerOp.FORCE_OFF:
            message += "\nThe guest gets no chance to shut down cleanly."

        def done(ok: bool | None) -> None:
            if ok:
                self.post_message(PowerRequested(session, vm, op))

        self.app.push_screen(ConfirmScreen(f"{op.verb} VM", message, op.verb), done)

    # --- migrations ------------------------------------------------------------------------

    # Handlers by name, not @on(MigrationPanel.CancelRequested): the panels' modules (and the
    # migration code they import) are not imported before the first paint.
    def on_migration_panel_cancel_requested(self, event: MigrationPanel.CancelRequested) -> None:
        event.stop()
        panel = event.panel
        plan = panel.controller.plan

        def done(ok: bool | None) -> None:
            if ok:
                panel.send_cancel()

        self.app.push_screen(
            ConfirmScreen(
                "Cancel migration",
                f"Cancel the migration of {plan.vm_name} ({plan.route})?\nThe VM stays on {plan.source_name}.",
                "Cancel migration",
                "Keep migrating",
            ),
            done,
        )

    def on_batch_panel_cancel_requested(self, event: BatchPanel.CancelRequested) -> None:
        event.stop()
        panel = event.panel
        moving = sum(1 for r in panel.rows.values() if r.moving)
        waiting = sum(1 for r in panel.rows.values() if r.controller is None and r.line is None)

        def done(ok: bool | None) -> None:
            if ok:
                panel.send_cancel()

        self.app.push_screen(
            ConfirmScreen(
                "Cancel moves",
                f"{panel.batch_title}: cancel the {moving} running move(s) that can still stop, "
                f"and start none of the {waiting} waiting?\nA cancelled VM stays where it was; "
                "the moves already done stay done.",
                "Cancel moves",
                "Keep moving",
            ),
            done,
        )


def _table(session: PoolSession, kind: str) -> Mapping[str, object]:
    store = session.store
    assert store is not None
    tables: dict[str, Mapping[str, object]] = {"host": store.hosts, "sr": store.srs, "network": store.networks}
    return tables.get(kind, {})
