"""`poolctl migrate VM HOST --network NET` within one pool: the move goes by VM.migrate_send with
host.migrate_receive on NET; a network the destination cannot receive on is refused in words
before anything moves."""

from __future__ import annotations

import pytest

from tests.cli.test_migrate import resident
from tests.cli.test_migrate_storage import _env, _serve
from tests.support.cli import run

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def lab(tmp_path):
    sim, url = _serve(migration_seconds=0.5)
    try:
        yield sim, _env(tmp_path, url)
    finally:
        sim.close()


def test_the_management_network_carries_the_move(lab):
    sim, env = lab
    proc = run("migrate", "web-01", "xcp-lab-2", "--network", "Pool-wide network associated with eth0", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "web-01 now runs on xcp-lab-2" in proc.stdout
    assert resident(sim, "web-01") == "xcp-lab-2"
    (server,) = sim._servers
    calls = server.stats.snapshot()
    assert calls["Async.VM.migrate_send"] == 1 and calls["Async.VM.pool_migrate"] == 0
    assert calls["host.migrate_receive"] >= 2  # the pre-check's map, then the move's


def test_a_network_without_an_address_on_the_destination_is_refused(lab):
    sim, env = lab
    proc = run("migrate", "web-01", "xcp-lab-2", "--network", "VM network", env=env)
    assert proc.returncode == 5, proc.stderr
    assert "poolctl: cannot migrate web-01 to xcp-lab-2:\n" in proc.stderr
    assert (
        "  ✗ xcp-lab-2's interface eth1 on network 'VM network' has no IP address (ip_configuration_mode None): "
        "a migration cannot be received over it\n"
    ) in proc.stderr
    assert resident(sim, "web-01") == "xcp-lab-1"
