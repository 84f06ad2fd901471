"""Command palette (ctrl+p): the power actions for the selected VM, plus filter and help."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

from poolctl.model import PowerOp, PowerState

if TYPE_CHECKING:
    from poolctl.tui.app import PoolctlApp

_POWER = [
    (PowerOp.START, "Start", "Boot the VM"),
    (PowerOp.SHUTDOWN, "Shut down", "Clean shutdown (asks first)"),
    (PowerOp.REBOOT, "Reboot", "Clean reboot (asks first)"),
    (PowerOp.SUSPEND, "Suspend", "Suspend to disk"),
    (PowerOp.RESUME, "Resume", "Resume a suspended VM"),
    (PowerOp.FORCE_OFF, "Force off", "Pull the plug (asks first)"),
]


class VMCommands(Provider):
    def _commands(self):
        app: PoolctlApp = self.app  # type: ignore[assignment]
        screen = app.main_screen
        picked = screen.selected_vm()
        if picked is not None:
            _, vm = picked
            suspended = vm.power_state in (PowerState.SUSPENDED, PowerState.PAUSED)
            for op, verb, help_text in _POWER:
                if op == PowerOp.SUSPEND and suspended or op == PowerOp.RESUME and not suspended:
                    continue
                yield f"{verb} VM {vm.name}", partial(screen.request_power, op), help_text
        yield "Filter VMs", screen.action_filter, "Filter the VM list by name, IP, host or state"
        yield "Show keys", app.action_help, "Every binding with its id"

    async def discover(self) -> Hits:
        for text, callback, help_text in self._commands():
            yield DiscoveryHit(text, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, callback, help_text in self._commands():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), callback, help=help_text)
