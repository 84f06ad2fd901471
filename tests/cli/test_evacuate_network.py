"""`poolctl evacuate HOST --network NET` (and `host enable HOST --restore --network NET`): every
move of the evacuation goes over the migration network NET, pre-checked over it, so a destination
that cannot receive over NET is refused in words before anything moves. A real `poolctl`
process against the XAPI simulator, set up through the real XenAPI SDK as an admin would: a
"Migration VLAN" (tag 42 on eth1) with an address on the hosts the test names, none elsewhere.

In the lab, xcp-lab-3 runs db-02 and build-01 (shared disks); xcp-lab-1 and xcp-lab-2 each
have room for both. The lab's "VM network" (eth1) has no address on any host.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import XenAPI

from poolctl.sim.xapi import Simulator
from tests.cli.test_evacuate import PASSWORD, guests, log_lines, resident, serve
from tests.support.cli import kvm_demo_env, run

pytestmark = pytest.mark.timeout(120)

VLAN = "Migration VLAN"


@pytest.fixture
def lab(tmp_path) -> Iterator[tuple[Simulator, dict[str, str]]]:
    yield from serve(tmp_path, "lab", 0.5)


def xenapi(sim: Simulator) -> XenAPI.Session:
    (server,) = sim._servers
    session = XenAPI.Session(server.url)
    session.xenapi.login_with_password("root", PASSWORD, "1.0", "poolctl-tests")
    return session


def migration_vlan(sim: Simulator, addresses: dict[str, str]) -> str:
    """A VLAN network on the hosts of ``addresses``, each interface given its address; its ref."""
    session = xenapi(sim)
    try:
        x = session.xenapi
        net = x.network.create({"name_label": VLAN, "name_description": "", "MTU": "1500", "other_config": {}})
        for host, ip in addresses.items():
            (eth1,) = [
                p
                for p in x.host.get_PIFs(x.host.get_by_name_label(host)[0])
                if x.PIF.get_device(p) == "eth1" and x.PIF.get_physical(p)
            ]
            untagged = x.VLAN.get_untagged_PIF(x.VLAN.create(eth1, "42", net))
            x.PIF.reconfigure_ip(untagged, "Static", ip, "255.255.255.0", "", "")
        return str(net)
    finally:
        session.xenapi.session.logout()


def calls(sim: Simulator) -> dict[str, int]:
    (server,) = sim._servers
    return dict(server.stats.snapshot())


def test_the_dry_run_plans_over_the_network_and_says_so(lab):
    sim, env = lab
    migration_vlan(sim, {"xcp-lab-2": "127.0.42.2"})
    proc = run("evacuate", "xcp-lab-3", "--network", VLAN, "--dry-run", env=env)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith(f"Plan to evacuate xcp-lab-3 (lab) over network '{VLAN}': 2 running VMs\n"), out
    # xcp-lab-1 has no interface on the VLAN: over it, both VMs can only go to xcp-lab-2
    rows = [line.split() for line in out.splitlines() if line.startswith(("  db-02", "  build-01"))]
    assert sorted(r[0] for r in rows) == ["build-01", "db-02"] and {r[-1] for r in rows} == {"xcp-lab-2"}
    assert "--dry-run: nothing moved; xcp-lab-3 left as it is" in out
    assert sorted(guests(sim, "xcp-lab-3")) == ["build-01", "db-02"]
    assert sim.db.field("host", sim.host_ref("xcp-lab-3"), "enabled") is True


def test_every_move_and_the_restore_take_the_network(lab):
    sim, env = lab
    vlan = migration_vlan(sim, {"xcp-lab-2": "127.0.42.2", "xcp-lab-3": "127.0.42.3"})
    proc = run("evacuate", "xcp-lab-3", "--network", VLAN, "--batch", "2", env=env, timeout=90)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"Evacuating xcp-lab-3 (lab) over network '{VLAN}': 2 running VMs\n")
    assert f"`poolctl host enable xcp-lab-3 --restore --network '{VLAN}'` brings the VMs back" in proc.stdout
    assert guests(sim, "xcp-lab-3") == []
    assert resident(sim, "db-02") == resident(sim, "build-01") == "xcp-lab-2"
    made = calls(sim)
    # over a chosen network XAPI's move is VM.migrate_send to host.migrate_receive's map on it
    assert made.get("Async.VM.migrate_send") == 2 and not made.get("Async.VM.pool_migrate"), made
    moves = [e for e in log_lines(env) if "kind" not in e]
    assert {e["vm"] for e in moves} == {"db-02", "build-01"}
    assert all(e["result"] == "success" and e["options"]["network"] == vlan for e in moves), moves
    (evacuation,) = [e for e in log_lines(env) if e.get("kind") == "evacuation"]
    assert evacuation["result"] == "success" and sorted(evacuation["moved"]) == ["build-01", "db-02"]

    back = run("host", "enable", "xcp-lab-3", "--restore", "--network", VLAN, env=env, timeout=90)
    assert back.returncode == 0, back.stderr
    assert f"Restoring 2 VM(s) to xcp-lab-3 over network '{VLAN}':" in back.stdout
    assert sorted(guests(sim, "xcp-lab-3")) == ["build-01", "db-02"]
    assert calls(sim).get("Async.VM.migrate_send") == 4 and not calls(sim).get("Async.VM.pool_migrate")
    restored = [e for e in log_lines(env) if "kind" not in e][2:]
    assert len(restored) == 2 and all(e["options"]["network"] == vlan for e in restored), restored
    assert PASSWORD not in proc.stdout + proc.stderr + back.stdout + back.stderr


def test_a_destination_without_an_interface_on_the_network_is_refused_before_anything_moves(lab):
    sim, env = lab
    migration_vlan(sim, {"xcp-lab-2": "127.0.42.2"})
    proc = run("evacuate", "xcp-lab-3", "--to", "xcp-lab-1", "--network", VLAN, env=env)
    assert proc.returncode == 5, proc.stderr
    err = proc.stderr
    assert "2 of 2 VMs cannot leave (db-02, build-01); nothing was moved:" in err
    assert f"xcp-lab-1 has no PIF on network '{VLAN}': it cannot receive a migration over it" in err
    assert (
        f"poolctl: db-02, build-01: a host cannot receive a migration over network '{VLAN}' (--network): "
        "give it an address on that network, or choose another"
    ) in err
    assert "poolctl: xcp-lab-3 was left as it is (not disabled)" in err
    assert sorted(guests(sim, "xcp-lab-3")) == ["build-01", "db-02"]
    assert sim.db.field("host", sim.host_ref("xcp-lab-3"), "enabled") is True
    made = calls(sim)
    assert not made.get("Async.VM.migrate_send") and not made.get("Async.VM.pool_migrate")
    (refused,) = log_lines(env)
    assert refused["kind"] == "evacuation" and refused["result"] == "refused"


def test_a_network_without_an_address_on_the_destinations_is_refused(lab):
    sim, env = lab
    proc = run("evacuate", "xcp-lab-3", "--network", "VM network", env=env)
    assert proc.returncode == 5, proc.stderr
    assert (
        "the host's interface eth1 on network 'VM network' has no IP address (ip_configuration_mode None): "
        "a migration cannot be received over it"
    ) in proc.stderr  # xcp-lab-1 and xcp-lab-2 alike, said once
    assert sorted(guests(sim, "xcp-lab-3")) == ["build-01", "db-02"]
    assert not calls(sim).get("Async.VM.migrate_send")


def test_an_unknown_network_fails_in_words_and_nothing_moves(lab):
    sim, env = lab
    proc = run("evacuate", "xcp-lab-3", "--network", "Tape", env=env)
    assert proc.returncode == 4, proc.stderr
    assert proc.stderr.startswith("poolctl: pool 'lab' has no network named 'Tape'; networks: ")
    assert "Pool-wide network associated with eth0" in proc.stderr and "VM network" in proc.stderr
    assert sorted(guests(sim, "xcp-lab-3")) == ["build-01", "db-02"]
    assert sim.db.field("host", sim.host_ref("xcp-lab-3"), "enabled") is True
    made = calls(sim)
    assert not made.get("Async.VM.migrate_send") and not made.get("Async.VM.pool_migrate")


def test_a_name_two_networks_share_asks_for_the_ref(lab):
    sim, env = lab
    session = xenapi(sim)
    try:
        twin = session.xenapi.network.create(
            {"name_label": "VM network", "name_description": "", "MTU": "1500", "other_config": {}}
        )
    finally:
        session.xenapi.session.logout()
    proc = run("evacuate", "xcp-lab-3", "--network", "VM network", "--dry-run", env=env)
    assert proc.returncode == 4, proc.stderr
    assert "'VM network' names 2 networks in pool 'lab': " in proc.stderr and twin in proc.stderr
    assert not proc.stdout


def test_network_without_restore_is_a_usage_error(lab):
    _, env = lab
    proc = run("host", "enable", "xcp-lab-3", "--network", "VM network", env=env)
    assert proc.returncode == 2
    assert "--network is the network of --restore's moves: give --restore too" in proc.stderr


def test_a_backend_that_cannot_choose_the_network_refuses(tmp_path):
    env = kvm_demo_env(tmp_path)
    words = "poolctl: pool 'kvm': the kvm backend cannot choose the migration network (--network)\n"
    proc = run("evacuate", "kvm-demo-b", "--network", "default", "--dry-run", env=env)
    assert proc.returncode == 5 and words in proc.stderr, proc.stderr
    proc = run("evacuate", "kvm-demo-b", "--network", "default", env=env)
    assert proc.returncode == 5 and words in proc.stderr, proc.stderr
    hosts = run("ls", "hosts", env=env).stdout
    assert any(ln.startswith("kvm-demo-b") and ln.split()[1] == "up" for ln in hosts.splitlines()), hosts
    restore = run("host", "enable", "kvm-demo-b", "--restore", "--network", "default", env=env)
    assert restore.returncode == 5 and words in restore.stderr, restore.stderr
    assert "enabled" not in restore.stdout  # refused before the host was touched
