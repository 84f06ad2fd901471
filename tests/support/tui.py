"""Driving the real app in tests: wait for a condition, for a pool to load, read the screen."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from poolctl.config import PoolConfig, pool_config
from poolctl.sim.xapi.simulator import Simulator


@dataclass
class Lab:
    sim: Simulator
    url: str

    def pool(self, *, name: str = "lab", password: str = "demo") -> PoolConfig:
        return pool_config({"name": name, "backend": "xen", "url": self.url, "username": "root", "password": password})


def served_lab(**options: float) -> Iterator[Lab]:
    """The lab scenario with ``options`` (migration_seconds, storage_mib_s…) served on a free
    loopback port for one test: ``yield from served_lab(...)`` in a fixture."""
    sim = Simulator.from_scenario("lab", password="demo", **options)
    server = sim.serve(host="127.0.0.1", port=0)
    try:
        yield Lab(sim, server.url)
    finally:
        sim.close()


async def wait_for(pilot, cond: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Let the app run until ``cond()`` holds; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await pilot.pause(0.02)
    await pilot.pause()


async def loaded(pilot, pool: str = "lab") -> None:
    app = pilot.app
    # fully: a staged load's VM devices arrive after the first paint
    await wait_for(
        pilot,
        lambda: (
            app.sessions[pool].connected
            and app.main_screen.vm_list.row_count > 0
            and not app.sessions[pool].store.devices_pending
        ),
        f"pool {pool} to load",
    )


def screen_text(app) -> str:
    """The screen as plain text (what a user reads), for assertions about what is shown."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


async def choose_option(pilot, screen, select_id: str, name: str, *, key: str = "tab", presses: int = 6) -> None:
    """Move the focus to the Select ``select_id`` of ``screen`` with ``key``, open it, go to the
    option shown as ``name`` and press Enter: as a user does."""
    import io

    from rich.console import Console
    from textual.widgets import Select
    from textual.widgets._select import SelectOverlay

    select = screen.query_one(f"#{select_id}", Select)
    for _ in range(presses):
        if screen.focused is select:
            break
        await pilot.press(key)
    assert screen.focused is select, f"{key} did not reach #{select_id} (focused {screen.focused!r})"
    await pilot.press("enter")
    await wait_for(pilot, lambda: select.expanded and isinstance(pilot.app.focused, SelectOverlay), "the list")
    overlay = select.query_one(SelectOverlay)
    names = []
    for i in range(overlay.option_count):
        console = Console(width=400, record=True, file=io.StringIO())
        console.print(overlay.get_option_at_index(i).prompt)
        names.append(console.export_text().strip())
    index, start = names.index(name), overlay.highlighted or 0
    await pilot.press(*["down" if index > start else "up"] * abs(index - start))
    await wait_for(pilot, lambda: overlay.highlighted == index, f"{name} highlighted")
    await pilot.press("enter")
