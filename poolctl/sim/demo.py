"""`--demo`: pools that need no hypervisor, no config and no root.

A XAPI simulator served in-process on a free loopback port, plus a libvirt test:///
host where libvirt-python is installed. Everything started is released by the caller's
``ExitStack`` when the TUI or ``ls`` is done.
"""

from __future__ import annotations

import tempfile
import tomllib
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from poolctl.config import PoolConfig, pool_config

if TYPE_CHECKING:
    from poolctl.sim.xapi.scenario import Scenario

DEMO_PASSWORD = "demo"  # the simulator's own, for a throwaway pool on loopback
MIGRATION_SECONDS = 8.0  # long enough to watch the sparkline during a demo migration
VMS_PER_HOST = 20  # for --hosts without --vms


class DemoError(Exception):
    """The demo cannot start (bad scenario file, no free port): one line for the user."""


def start_demo(
    stack: ExitStack,
    *,
    scenario: Path | None = None,
    hosts: int | None = None,
    vms: int | None = None,
) -> list[PoolConfig]:
    """Start the demo pools; ``stack`` stops them. ``hosts``/``vms`` build a big generated pool."""
    from poolctl.sim.xapi import ScenarioError, Simulator

    if scenario is not None and (hosts or vms):
        raise DemoError("--scenario and --hosts/--vms exclude each other")
    try:
        if hosts or vms:
            n_hosts = hosts or max(1, -(-(vms or 0) // VMS_PER_HOST))
            sim = Simulator.generate(
                n_hosts,
                VMS_PER_HOST * n_hosts if vms is None else vms,
                password=DEMO_PASSWORD,
                migration_seconds=MIGRATION_SECONDS,
            )
        else:
            sim = Simulator.from_scenario(
                scenario if scenario is not None else shipped_scenario("lab"),
                password=DEMO_PASSWORD,
                migration_seconds=MIGRATION_SECONDS,
            )
        server = sim.serve(host="127.0.0.1", port=0)
    except ScenarioError as exc:
        raise DemoError(f"demo scenario: {exc}") from None
    except OSError as exc:
        raise DemoError(f"cannot start the simulator on 127.0.0.1: {exc.strerror or exc}") from None
    stack.callback(sim.close)
    xen = {"name": "xen-demo", "backend": "xen", "url": server.url, "username": "root", "password": DEMO_PASSWORD}
    pools = [pool_config(xen)]
    if _have_libvirt():
        from poolctl.sim.libvirt import demo_config

        tmpdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="poolctl-demo-"))
        pools.append(demo_config(tmpdir))
    return pools


def shipped_scenario(name: str) -> Scenario:
    """A scenario shipped with poolctl, by name: read from the package, never from the current
    directory (an admin's home often holds a folder named ``lab``)."""
    from importlib import resources

    from poolctl.sim.xapi.scenario import ScenarioError, parse_scenario

    shipped = resources.files("poolctl.sim.xapi").joinpath("scenarios", f"{name}.toml")
    if not shipped.is_file():
        raise ScenarioError(f"no shipped scenario {name!r} (try 'lab' or a file path)")
    return parse_scenario(tomllib.loads(shipped.read_text("utf-8")), f"scenario {name!r}")


def scenario_arg(text: str) -> Scenario | Path:
    """``--scenario``'s value: a shipped scenario's name (no suffix, no slash), else a file."""
    if "/" not in text and not Path(text).suffix:
        return shipped_scenario(text)
    return Path(text)


def _have_libvirt() -> bool:
    try:
        import libvirt  # noqa: F401
    except ImportError:
        return False
    return True
