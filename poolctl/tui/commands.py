"""Command palette (ctrl+p): what the keys do for the selected VM (power, migrate, mark), the
marked VMs (move), the selected host (evacuate, disable/enable), the running migrations and
batches (cancel), history, filter and help. Power actions are offered only where the VM's
state allows them, so the palette doubles as "what can I do with this VM now"."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import partial
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from textual.binding import Binding
from textual.command import Hit, Hits, Provider

from poolctl import safe_text as safe
from poolctl.model import PowerOp, PowerState
from poolctl.tui.keys import shown_for

if TYPE_CHECKING:
    from poolctl.tui.migrations.center import MigrationCenter
    from poolctl.tui.screens.main import MainScreen

# op -> (what it does, the id of the binding that runs it); its words and states: PowerOp
_POWER_HELP: dict[PowerOp, tuple[str, str]] = {
    PowerOp.START: ("Boot the VM", "vm.start"),
    PowerOp.SHUTDOWN: ("Clean shutdown (asks first)", "vm.shutdown"),
    PowerOp.REBOOT: ("Clean reboot (asks first)", "vm.reboot"),
    PowerOp.SUSPEND: ("Suspend to disk", "vm.suspend"),
    PowerOp.RESUME: ("Resume a suspended VM", "vm.suspend"),
    PowerOp.FORCE_OFF: ("Pull the plug (asks first)", "vm.force_off"),
}

Command = tuple[str, Callable[[], object], str]


@runtime_checkable
class PaletteSource(Protocol):
    """What the palette reads from the app (``PoolctlApp`` has all of it)."""

    @property
    def user_keymap(self) -> Mapping[str, str]: ...

    @property
    def main_screen(self) -> MainScreen: ...

    @property
    def migrations(self) -> MigrationCenter: ...

    def all_bindings(self) -> Iterable[Binding]: ...


class VMCommands(Provider):
    """Reads the app through ``PaletteSource``; app actions run by name (`run_action`)."""

    def _key(self, source: PaletteSource, binding_id: str) -> str:
        """' — key X' as the user presses it now (the config's [keys] may remap it)."""
        shown = shown_for(self.app, source.all_bindings(), source.user_keymap, binding_id)
        return f" — key {shown}" if shown else ""

    def _commands(self) -> Iterator[Command]:
        app = self.app
        if not isinstance(app, PaletteSource):
            return  # not poolctl's app: nothing of ours to offer
        screen = app.main_screen
        key = partial(self._key, app)
        picked = screen.selected_vm()
        if picked is not None:
            _, vm = picked
            for op, (help_text, binding_id) in _POWER_HELP.items():
                if vm.power_state in op.applies_to:
                    yield (
                        f"{op.verb} VM {safe.shown(vm.name)}",
                        partial(screen.request_power, op),
                        help_text + key(binding_id),
                    )
            if vm.power_state == PowerState.RUNNING:
                yield (
                    f"Migrate VM {safe.shown(vm.name)}",
                    partial(app.run_action, "migrate"),
                    "Live-migrate to another host of the pool, pinging it" + key("vm.migrate"),
                )
        marked = screen.marked_vms()
        if marked is not None:
            _, vms = marked
            yield (
                f"Move {len(vms)} marked VM{'s' if len(vms) != 1 else ''}",
                partial(app.run_action, "migrate"),
                "Move every marked VM to one host, a batch, each pinged" + key("vm.migrate"),
            )
        if picked is not None:
            _, vm = picked
            yield (
                f"Mark or unmark VM {safe.shown(vm.name)}",
                screen.vm_list.action_toggle_mark,
                "Marked VMs move together with m" + key("list.mark"),
            )
        host = screen.selected_host()
        if host is not None:
            _, h = host
            yield (
                f"Evacuate host {safe.shown(h.name)}",
                partial(app.run_action, "evacuate"),
                f"Plan, then move every running VM off {safe.shown(h.name)}, pinged; it stays in maintenance"
                + key("host.evacuate"),
            )
            verb = "Disable" if h.enabled else "Enable"
            more = "no VM starts on it or moves to it" if h.enabled else "it takes VMs again; offers to restore"
            yield (
                f"{verb} host {safe.shown(h.name)}",
                partial(app.run_action, "toggle_host"),
                f"{more} (asks first){key('host.toggle')}",
            )
        for batch in app.migrations.batches.panels():
            if not batch.ended:
                yield (
                    f"Cancel {safe.shown(batch.batch_title)}",
                    batch.action_cancel_batch,
                    f"the running moves that can stop, no more starts (asks first){key('batch.cancel')} on its panel",
                )
        for panel in app.migrations.panels():
            c = panel.controller
            if not c.ended:
                yield (
                    f"Cancel migration of {safe.shown(c.plan.vm_name)}",
                    panel.action_cancel_migration,
                    f"{c.plan.route}, {c.progress.phase.value} (asks first){key('migration.cancel')} on its panel",
                )
        yield (
            "Migration history",
            partial(app.run_action, "history"),
            "This run's migrations and the log's" + key("app.history"),
        )
        yield "Filter VMs", screen.action_filter, "Filter the VM list by name, IP, host or state" + key("list.filter")
        yield "Show keys", partial(app.run_action, "help"), "Every binding with its id" + key("app.help")

    async def discover(self) -> Hits:
        # Hits scored 1, not DiscoveryHits (always 0): the selected VM's actions come
        # before Textual's own commands (theme, screenshot…) when the palette opens
        for text, callback, help_text in self._commands():
            yield Hit(1.0, text, callback, text=text, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, callback, help_text in self._commands():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), callback, help=help_text)
