"""`poolctl ls` against the real XAPI simulator, served in-process, through the real XenAPI SDK.

The expected names come from the simulator through XenAPI directly, not through poolctl.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import XenAPI

from poolctl.sim.xapi import Simulator
from tests.support.cli import config_file, one_line_error, run

pytestmark = pytest.mark.timeout(120)

PASSWORD = "sim-secret-42"


@pytest.fixture(scope="module")
def server() -> Iterator:
    srv = Simulator.from_scenario("lab", password=PASSWORD).serve(host="127.0.0.1", port=0)
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def truth(server) -> dict:
    """Host and VM names as XAPI reports them."""
    session = XenAPI.Session(server.url)
    session.xenapi.login_with_password("root", PASSWORD, "1.0", "poolctl-test")
    try:
        hosts = session.xenapi.host.get_all_records()
        vms = {
            ref: rec
            for ref, rec in session.xenapi.VM.get_all_records().items()
            if not rec["is_a_template"] and not rec["is_control_domain"] and not rec.get("is_a_snapshot")
        }
    finally:
        session.xenapi.session.logout()
    return {"hosts": hosts, "vms": vms}


def pool_table(name: str, url: str, password: str = PASSWORD) -> str:
    return f'[[pool]]\nname = "{name}"\nbackend = "xen"\nurl = "{url}"\nusername = "root"\npassword = "{password}"\n'


@pytest.fixture
def config(tmp_path, server) -> Path:
    return config_file(tmp_path, pool_table("lab", server.url))


def test_ls_json_is_one_array_of_vm_rows(config, truth):
    proc = run("ls", "--json", "--config", str(config))
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert isinstance(rows, list) and rows
    assert {r["ref"] for r in rows} == set(truth["vms"])
    host_names = {ref: rec["name_label"] for ref, rec in truth["hosts"].items()}
    for row in rows:
        rec = truth["vms"][row["ref"]]
        assert row["name"] == rec["name_label"] and row["uuid"] == rec["uuid"]
        assert row["pool"] == "lab"
        assert row["power_state"] == rec["power_state"].lower()
        assert isinstance(row["memory"], int) and isinstance(row["vcpus"], int)
        assert row["memory"] == int(rec["memory_static_max"]) and row["vcpus"] == int(rec["VCPUs_max"])
        if row["power_state"] == "running":
            assert row["host_ref"] == rec["resident_on"]
            assert row["host"] == host_names[rec["resident_on"]]
        assert isinstance(row["ips"], list)
    assert PASSWORD not in proc.stdout + proc.stderr


def test_ls_hosts_table_lists_the_lab_hosts(config, truth):
    proc = run("ls", "hosts", "--config", str(config))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    header = lines[0]
    assert header.split() == ["NAME", "STATE", "MASTER", "ADDRESS", "CPUS", "MEMORY", "FREE", "VMS", "POOL"]
    names = sorted(rec["name_label"] for rec in truth["hosts"].values())
    assert sorted(line.split()[0] for line in lines[1:]) == names
    # Aligned: every row ends its POOL column where the header starts it.
    pool_col = header.index("POOL")
    assert all(line[pool_col:].strip() == "lab" for line in lines[1:])


def test_ls_json_hosts_srs_networks_carry_names_and_refs(config, truth):
    for kind in ("hosts", "srs", "networks"):
        proc = run("ls", kind, "--json", "--config", str(config))
        assert proc.returncode == 0, proc.stderr
        rows = json.loads(proc.stdout)
        assert rows and all({"name", "ref", "pool"} <= set(r) for r in rows), kind
    hosts = json.loads(run("ls", "hosts", "--json", "--config", str(config)).stdout)
    assert {h["ref"] for h in hosts} == set(truth["hosts"])
    assert sum(h["vms"] for h in hosts) == sum(1 for rec in truth["vms"].values() if rec["power_state"] == "Running")


def test_bad_password_exits_3(tmp_path, server):
    path = config_file(tmp_path, pool_table("lab", server.url, password="wrong-password"))
    proc = run("ls", "--config", str(path))
    assert proc.returncode == 3
    line = one_line_error(proc)
    assert "pool 'lab' (xen)" in line
    assert "wrong-password" not in proc.stderr + proc.stdout


def test_one_failing_pool_does_not_hide_the_others(tmp_path, server, truth):
    text = pool_table("lab", server.url) + "\n" + pool_table("gone", "http://127.0.0.1:9")
    path = config_file(tmp_path, text)
    proc = run("ls", "--json", "--config", str(path))
    assert proc.returncode == 1
    assert "pool 'gone' (xen)" in one_line_error(proc)
    assert {r["ref"] for r in json.loads(proc.stdout)} == set(truth["vms"])


def test_pool_filter(tmp_path, server, truth):
    text = pool_table("lab", server.url) + "\n" + pool_table("gone", "http://127.0.0.1:9")
    proc = run("ls", "hosts", "--pool", "lab", "--config", str(config_file(tmp_path, text)))
    assert proc.returncode == 0 and proc.stderr == ""
    assert len(proc.stdout.splitlines()) == 1 + len(truth["hosts"])


def test_world_readable_password_warns_on_stderr(tmp_path, server):
    path = config_file(tmp_path, pool_table("lab", server.url), mode=0o644)
    proc = run("ls", "hosts", "--config", str(path))
    assert proc.returncode == 0
    assert "warning:" in proc.stderr and "chmod 600" in proc.stderr and PASSWORD not in proc.stderr


def test_ls_demo_needs_no_config(tmp_path):
    proc = run("ls", "hosts", "--json", "--demo", env={"XDG_CONFIG_HOME": str(tmp_path)}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    pools = {r["pool"] for r in rows}
    assert "xen-demo" in pools and len(pools) == 2  # the simulator and the libvirt test host


def test_demo_size_passes_through_to_the_simulator(tmp_path):
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    proc = run("ls", "--json", "--demo", "--hosts", "3", "--vms", "7", "--pool", "xen-demo", env=env)
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)) == 7
    hosts = json.loads(run("ls", "hosts", "--json", "--demo", "--hosts", "3", "--pool", "xen-demo", env=env).stdout)
    assert len(hosts) == 3


def test_demo_scenario_file(tmp_path):
    scenario = tmp_path / "mini.toml"
    scenario.write_text(
        'pool = "mini"\n'
        '[[hosts]]\nname = "solo"\naddress = "127.0.3.1"\nmemory_gib = 16\ncpus = 4\nmaster = true\n'
        '[[srs]]\nname = "disks"\ntype = "ext"\nshared = false\nhost = "solo"\nsize_gib = 100\n'
        '[[networks]]\nname = "net0"\nbridge = "xenbr0"\ndevice = "eth0"\nmanagement = true\n'
    )
    proc = run(
        "ls",
        "hosts",
        "--demo",
        "--scenario",
        str(scenario),
        "--pool",
        "xen-demo",
        env={"XDG_CONFIG_HOME": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr
    assert [line.split()[0] for line in proc.stdout.splitlines()[1:]] == ["solo"]


def test_bad_demo_scenario_exits_2(tmp_path):
    scenario = tmp_path / "bad.toml"
    scenario.write_text('pool = "x"\nhosts = 3\n')
    proc = run("ls", "--demo", "--scenario", str(scenario), env={"XDG_CONFIG_HOME": str(tmp_path)})
    assert proc.returncode == 2
    assert "bad.toml" in one_line_error(proc)
