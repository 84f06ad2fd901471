"""Host maintenance on the KVM backend (libvirt's test driver): poolctl's own record per host UUID,
shown in the inventory, honoured by the pre-check and by starts, seen by another process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from poolctl.backends.base import OperationRefused
from poolctl.backends.kvm import KvmBackend
from poolctl.maintenance import HostMarks
from poolctl.model import PowerOp
from poolctl.sim.libvirt import demo_config
from tests.support.kvm_helpers import by_name


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("POOLCTL_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


@pytest.fixture
def pool(tmp_path, state_dir):
    config = demo_config(tmp_path / "hosts")
    backend = KvmBackend(config)
    backend.connect()
    yield backend, config
    backend.close()


def test_disable_marks_the_host_by_uuid_and_enable_clears_it(pool, state_dir):
    backend, _ = pool
    assert backend.capabilities.host_maintenance
    b = by_name(backend.inventory(), "kvm-demo-b")
    assert b.enabled and b.uuid
    backend.disable_host(b.ref, maintenance=True, evacuated=["6b766d00-0000-4000-8000-000000000001"])
    mark = HostMarks(state_dir / "hosts").get(b.uuid)
    assert mark.disabled and mark.maintenance and mark.by == "poolctl evacuate"
    now = by_name(backend.inventory(), "kvm-demo-b")
    assert (now.enabled, now.maintenance, now.evacuated) == (False, True, ("6b766d00-0000-4000-8000-000000000001",))
    assert by_name(backend.inventory(), "kvm-demo-a").enabled  # only that host
    assert backend.enable_host(b.ref) == ("6b766d00-0000-4000-8000-000000000001",)
    assert not (state_dir / "hosts" / f"{b.uuid}.json").exists()
    assert by_name(backend.inventory(), "kvm-demo-b").enabled


def test_the_pre_check_refuses_a_disabled_destination_in_words(pool):
    backend, _ = pool
    inv = backend.inventory()
    b, web = by_name(inv, "kvm-demo-b"), by_name(inv, "kvm-web-01")
    backend.disable_host(b.ref)
    check = backend.check_migration(web.ref, b.ref)
    assert "HOST_DISABLED" in check.codes
    assert (
        "host kvm-demo-b is disabled: no VM may start on it or move to it until `poolctl host enable kvm-demo-b`"
        in check.problems
    )
    backend.disable_host(b.ref, maintenance=True)
    assert any(
        "kvm-demo-b is disabled (maintenance mode)" in p for p in backend.check_migration(web.ref, b.ref).problems
    )
    backend.enable_host(b.ref)
    assert "HOST_DISABLED" not in backend.check_migration(web.ref, b.ref).codes


def test_nothing_starts_on_a_disabled_host(pool):
    backend, _ = pool
    inv = backend.inventory()
    a = by_name(inv, "kvm-demo-a")
    build = by_name(inv, "kvm-build-01")  # shut off, on kvm-demo-a
    backend.disable_host(a.ref)
    with pytest.raises(OperationRefused, match="cannot start VM 'kvm-build-01': host kvm-demo-a is disabled"):
        backend.power(build.ref, PowerOp.START)
    backend.enable_host(a.ref)
    backend.power(build.ref, PowerOp.START)


def test_another_poolctl_process_sees_the_mark(pool, tmp_path, state_dir):
    backend, config = pool
    b = by_name(backend.inventory(), "kvm-demo-b")
    backend.disable_host(b.ref, maintenance=True)
    uris = ", ".join(f'"{u}"' for u in config.uris)
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[[pool]]\nname = "kvm"\nbackend = "kvm"\nuris = [{uris}]\nshared_storage = ["isos"]\n')
    cfg.chmod(0o600)
    env = {**os.environ, "POOLCTL_CONFIG": str(cfg), "POOLCTL_STATE_DIR": str(state_dir)}
    proc = subprocess.run(
        [sys.executable, "-m", "poolctl", "ls", "hosts", "--json"], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert rows["kvm-demo-b"]["state"] == "maintenance" and rows["kvm-demo-b"]["enabled"] is False
    assert rows["kvm-demo-a"]["state"] == "up"
    text = subprocess.run(
        [sys.executable, "-m", "poolctl", "ls", "hosts"], capture_output=True, text=True, env=env, timeout=60
    ).stdout
    assert any(line.startswith("kvm-demo-b") and " maintenance " in line for line in text.splitlines()), text
