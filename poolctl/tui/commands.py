"""Command palette (ctrl+p): what the keys do for the selected VM (power, migrate), the running
migrations (cancel), history, filter and help. Power actions are offered only where the VM's
state allows them, so the palette doubles as "what can I do with this VM now"."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING

from textual.binding import Binding
from textual.command import Hit, Hits, Provider

from poolctl.model import PowerOp, PowerState

if TYPE_CHECKING:
    from poolctl.tui.app import PoolctlApp

_RUNNING = (PowerState.RUNNING,)
_SUSPENDED = (PowerState.SUSPENDED, PowerState.PAUSED)

# (op, verb, help, states it applies to, binding id)
_POWER = [
    (PowerOp.START, "Start", "Boot the VM", (PowerState.HALTED,), "vm.start"),
    (PowerOp.SHUTDOWN, "Shut down", "Clean shutdown (asks first)", _RUNNING, "vm.shutdown"),
    (PowerOp.REBOOT, "Reboot", "Clean reboot (asks first)", _RUNNING, "vm.reboot"),
    (PowerOp.SUSPEND, "Suspend", "Suspend to disk", _RUNNING, "vm.suspend"),
    (PowerOp.RESUME, "Resume", "Resume a suspended VM", _SUSPENDED, "vm.suspend"),
    (PowerOp.FORCE_OFF, "Force off", "Pull the plug (asks first)", _RUNNING + _SUSPENDED, "vm.force_off"),
]

Command = tuple[str, Callable[[], object], str]


class VMCommands(Provider):
    def _key(self, binding_id: str) -> str:
        """' — key X' as the user presses it now (the config's [keys] may remap it)."""
        app: PoolctlApp = self.app  # type: ignore[assignment]
        default = next((b.key for b in app.all_bindings() if b.id == binding_id), "")
        keys = app.user_keymap.get(binding_id, default)
        shown = ", ".join(app.get_key_display(Binding(k.strip(), "")) for k in keys.split(",") if k.strip())
        return f" — key {shown}" if shown else ""

    def _commands(self) -> Iterator[Command]:
        app: PoolctlApp = self.app  # type: ignore[assignment]
        screen = app.main_screen
        key = self._key
        picked = screen.selected_vm()
        if picked is not None:
            _, vm = picked
            for op, verb, help_text, states, binding_id in _POWER:
                if vm.power_state in states:
                    yield f"{verb} VM {vm.name}", partial(screen.request_power, op), help_text + key(binding_id)
            if vm.power_state == PowerState.RUNNING:
                yield (
                    f"Migrate VM {vm.name}",
                    app.action_migrate,
                    "Live-migrate to another host of the pool, pinging it" + key("vm.migrate"),
                )
        for panel in app.migrations.panels():
            c = panel.controller
            if not c.ended:
                yield (
                    f"Cancel migration of {c.plan.vm_name}",
                    panel.action_cancel_migration,
                    f"{c.plan.route}, {c.progress.phase.value} (asks first){key('migration.cancel')} on its panel",
                )
        yield "Migration history", app.action_history, "This run's migrations and the log's" + key("app.history")
        yield "Filter VMs", screen.action_filter, "Filter the VM list by name, IP, host or state" + key("list.filter")
        yield "Show keys", app.action_help, "Every binding with its id" + key("app.help")

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
