"""`--demo`: pools that need no hypervisor, no config and no root.

A XAPI simulator served in-process on a free loopback port, plus a libvirt test:///
host where libvirt-python is installed. Everything started is released by the caller's
``ExitStack`` when the TUI or ``ls`` is done.
"""

from __future__ import annotations

import tempfile
from contextlib import ExitStack
from pathlib import Path

from poolctl.config import PoolConfig

DEMO_PASSWORD = "demo"  # the simulator's own, for a throwaway pool on loopback
MIGRATION_SECONDS = 8.0  # long enough to watch the sparkline during a demo migration


def start_demo(
    stack: ExitStack,
    *,
    scenario: Path | None = None,
    hosts: int | None = None,
    vms: int | None = None,
) -> list[PoolConfig]:
    from poolctl.backends.xapisim import Simulator

    sizes = {k: v for k, v in (("hosts", hosts), ("vms", vms)) if v is not None}
    sim = Simulator.from_scenario(
        str(scenario) if scenario else "lab",
        password=DEMO_PASSWORD,
        migration_seconds=MIGRATION_SECONDS,
        **sizes,
    )
    server = sim.serve(host="127.0.0.1", port=0)
    stack.callback(server.close)
    pools = [
        PoolConfig(name="xen-demo", backend="xen", url=server.url, username="root", password=DEMO_PASSWORD)
    ]
    if _have_libvirt():
        from poolctl.backends.kvm_demo import demo_config

        tmpdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="poolctl-demo-"))
        pools.append(demo_config(Path(tmpdir)))
    return pools


def _have_libvirt() -> bool:
    try:
        import libvirt  # noqa: F401
    except ImportError:
        return False
    return True
