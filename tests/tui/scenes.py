"""The screens we snapshot (tests) and publish as SVGs (scripts/screenshots.py).

A scene builds the app for the lab simulator at ``url`` and drives it to one screen with
a user's keys; blinking cursors and animations are off so pictures are stable.
"""

from __future__ import annotations

from dataclasses import dataclass

from poolctl.config import PoolConfig
from poolctl.model import ConnectionStatus
from poolctl.tui.app import PoolctlApp, create_app
from tests.tui.conftest import loaded, wait_for


def lab_pool(url: str, *, name: str = "lab", password: str = "demo") -> PoolConfig:
    return PoolConfig(name=name, backend="xen", url=url, username="root", password=password)


@dataclass(frozen=True)
class Scene:
    name: str
    description: str
    press: tuple[str, ...] = ()
    bad_pool: bool = False  # add a pool whose password the simulator refuses

    def app(self, url: str) -> PoolctlApp:
        pools = [lab_pool(url)]
        if self.bad_pool:
            pools.append(lab_pool(url, name="bad", password="wrong"))
        app = create_app(pools)
        app.animation_level = "none"
        return app

    async def prepare(self, pilot) -> None:
        app = pilot.app
        await loaded(pilot)
        if self.bad_pool:
            await wait_for(pilot, lambda: app.sessions["bad"].state.status == ConnectionStatus.FAILED,
                           "pool bad to fail")
        app.main_screen.filter_input.cursor_blink = False
        await pilot.press(*self.press)
        await pilot.pause(0.1)


SCENES = {
    s.name: s
    for s in (
        Scene("main", "the lab pool loaded: tree, every VM, pool details"),
        Scene("filter", "`/db` typed: the list narrows as you type", press=("slash", "d", "b")),
        Scene("help", "`?`: every binding with its id", press=("question_mark",)),
        Scene("vm-details", "a VM's disks, SRs, networks and operations",
              press=("tab", "down", "down", "down", "down")),
        Scene("connection-error", "a pool with a wrong password: failed, in words",
              press=("down", "down", "down", "down", "down", "down"), bad_pool=True),
    )
}
