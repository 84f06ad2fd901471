"""`poolctl migrate VM POOL/HOST` and `--to-pool POOL`: a cross-pool move end to end, a real
`poolctl` process against two XAPI simulators (lab and dr) that talk to each other; the
pre-check's words and estimate, the ping summary, the audit line naming both pools, --network's
refusal in words, and a failure or cancel leaving the VM running on the source."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from poolctl.sim.xapi import Simulator
from tests.cli.test_migrate import PASSWORD, _start, resident
from tests.support.cli import config_file, run

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def pools() -> Iterator[tuple[Simulator, Simulator, dict[str, str]]]:
    lab = Simulator.from_scenario("lab", password=PASSWORD, migration_seconds=1.0, storage_mib_s=30 * 1024 / 2.0)
    dr = Simulator.from_scenario("dr", password="dr-" + PASSWORD, migration_seconds=1.0)
    urls = [lab.serve(host="127.0.0.1", port=0).url, dr.serve(host="127.0.0.1", port=0).url]
    yield lab, dr, urls  # type: ignore[misc]
    lab.close()
    dr.close()


@pytest.fixture
def env(tmp_path, pools) -> dict[str, str]:
    _, _, urls = pools
    text = "".join(
        f'[[pool]]\nname = "{name}"\nbackend = "xen"\nurl = "{url}"\nusername = "root"\npassword = "{pw}"\n'
        for name, url, pw in (("lab", urls[0], PASSWORD), ("dr", urls[1], "dr-" + PASSWORD))
    )
    cfg = config_file(tmp_path, text)
    return {"POOLCTL_CONFIG": str(cfg), "POOLCTL_STATE_DIR": str(tmp_path / "state")}


def _log(env) -> list[dict]:
    path = Path(env["POOLCTL_STATE_DIR"]) / "migrations.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def _secrets(lab: Simulator, dr: Simulator) -> list[str]:
    return [PASSWORD, "dr-" + PASSWORD, *dr.sessions._records, *lab.sessions._records]  # every session either made


def test_a_vm_moves_to_a_host_of_another_pool(pools, env):
    lab, dr, _ = pools
    uuid = lab.db.field("VM", lab.vm_ref("cache-01"), "uuid")
    started = time.monotonic()
    proc = run("migrate", "cache-01", "dr/xcp-dr-2", "--pool", "lab", env=env, timeout=60)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "  copy: disk xvda: 30 GiB from 'Local storage xcp-lab-1' to 'dr/NFS storage'\n" in out
    assert "Migrating cache-01 (lab): xcp-lab-1 → dr/xcp-dr-2\n" in out
    assert "copying disks, then memory" in out
    assert "cache-01 now runs on dr/xcp-dr-2" in out
    assert "pings to 127.0.10.31: " in out and ", 0 lost, longest gap " in out
    assert elapsed >= 3.0  # 2 s of disk copy, 1 s of memory
    # the VM is the dr pool's now, and gone from lab
    assert resident(dr, "cache-01") == "xcp-dr-2"
    assert dr.db.field("VM", dr.vm_ref("cache-01"), "uuid") == uuid
    with pytest.raises(KeyError):
        lab.vm_ref("cache-01")
    listed = run("ls", "vms", "--pool", "dr", "--json", env=env)
    assert any(v["name"] == "cache-01" and v["uuid"] == uuid for v in json.loads(listed.stdout))
    (line,) = _log(env)
    assert line["result"] == "success" and line["pool"] == "lab"
    assert line["destination"] == "dr/xcp-dr-2" and line["now_on"] == "dr/xcp-dr-2"
    text = out + proc.stderr + json.dumps(line)
    for secret in _secrets(lab, dr):
        assert secret not in text
    assert "session_id" not in text


def test_to_pool_dry_run_says_what_is_copied_and_moves_nothing(pools, env):
    lab, _, _ = pools
    proc = run("migrate", "cache-01", "xcp-dr-2", "--to-pool", "dr", "--dry-run", env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "  copy: 30 GiB in all: about 5 min at 100 MiB/s\n" in proc.stdout
    assert (
        "Dry run for cache-01 (lab): xcp-lab-1 → dr/xcp-dr-2, its disks copied as above; nothing moves" in proc.stdout
    )
    assert resident(lab, "cache-01") == "xcp-lab-1"


def test_pre_check_refusals_name_the_problem(pools, env):
    lab, dr, _ = pools
    proc = run("migrate", "db-02", "dr/xcp-dr-2", env=env, timeout=60)  # 16 GiB VM, 16 GiB host
    assert proc.returncode == 5, proc.stderr
    assert "poolctl: cannot migrate db-02 to dr/xcp-dr-2:\n" in proc.stderr
    assert "  ✗ not enough free memory on xcp-dr-2: needs 16" in proc.stderr
    proc = run("migrate", "cache-01", "dr/xcp-dr-2", "--sr", "Local storage xcp-dr-1", env=env, timeout=60)
    assert proc.returncode == 5
    assert "  ✗ xcp-dr-2 cannot see local SR 'dr/Local storage xcp-dr-1' (disk xvda)\n" in proc.stderr
    proc = run("migrate", "cache-01", "xcp-dr-9", "--to-pool", "dr", env=env)
    assert proc.returncode == 4
    assert "pool 'dr' has no host(s) named 'xcp-dr-9'; hosts: xcp-dr-1, xcp-dr-2" in proc.stderr
    proc = run("migrate", "cache-01", "xcp-dr-2", "--to-pool", "nowhere", env=env)
    assert proc.returncode == 4 and "--to-pool: no pool named 'nowhere'; pools: dr, lab" in proc.stderr
    assert resident(lab, "cache-01") == "xcp-lab-1"


def test_network_without_a_pif_on_the_destination_is_refused_in_words(pools, env):
    lab, dr, _ = pools
    with dr.db.lock:  # xcp-dr-2 loses its interface on the migration network
        net = dr.db.find("network", lambda r: r["name_label"] == "Migration network")[0]
        host = dr.host_ref("xcp-dr-2")
        pifs = dr.db.field("network", net, "PIFs")
        dr.db.set("network", net, PIFs=[p for p in pifs if dr.db.field("PIF", p, "host") != host])
    proc = run("migrate", "cache-01", "dr/xcp-dr-2", "--network", "Migration network", env=env, timeout=60)
    assert proc.returncode == 5, proc.stderr
    assert (
        "  ✗ xcp-dr-2 has no PIF on network 'dr/Migration network': it cannot receive a migration over it "
        "(choose a network the host has an interface on, or the default: its management network)\n"
    ) in proc.stderr
    proc = run("migrate", "cache-01", "dr/xcp-dr-2", "--network", "Storage", env=env, timeout=60)
    assert proc.returncode == 4
    assert "pool 'dr' has no network named 'Storage'; networks: " in proc.stderr
    assert resident(lab, "cache-01") == "xcp-lab-1"


def test_ctrl_c_in_the_disk_phase_cancels_and_the_vm_stays(pools, env):
    lab, dr, _ = pools
    lab.storage_mib_s = 30 * 1024 / 8.0  # 8 s of disk copy
    proc = _start(env, "cache-01", "dr/xcp-dr-2")
    try:
        deadline = time.monotonic() + 20
        while not lab.db.field("VM", lab.vm_ref("cache-01"), "current_operations"):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 6, err
    assert "cancelled" in out
    assert resident(lab, "cache-01") == "xcp-lab-1"
    assert dr.db.find("VM", lambda r: r["name_label"] == "cache-01") == []
    assert _log(env)[0]["result"] == "cancelled" and _log(env)[0]["destination"] == "dr/xcp-dr-2"


def test_the_destination_pool_lost_mid_move_leaves_the_vm_running_on_the_source(tmp_path):
    lab = Simulator.from_scenario("lab", password=PASSWORD, migration_seconds=1.0, storage_mib_s=30 * 1024 / 4.0)
    dr = Simulator.from_scenario("dr", password=PASSWORD, migration_seconds=1.0)
    lab_server, dr_server = lab.serve(host="127.0.0.1", port=0), dr.serve(host="127.0.0.1", port=0)
    text = "".join(
        f'[[pool]]\nname = "{name}"\nbackend = "xen"\nurl = "{url}"\nusername = "root"\npassword = "{PASSWORD}"\n'
        for name, url in (("lab", lab_server.url), ("dr", dr_server.url))
    )
    env = {"POOLCTL_CONFIG": str(config_file(tmp_path, text)), "POOLCTL_STATE_DIR": str(tmp_path / "state")}
    proc = _start(env, "cache-01", "dr/xcp-dr-2")
    try:
        deadline = time.monotonic() + 20
        while not lab.db.field("VM", lab.vm_ref("cache-01"), "current_operations"):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        time.sleep(1.0)  # in the disk phase (4 s)
        dr_server.close()
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        lab.close()
        dr.close()
    assert proc.returncode == 1, err
    assert "cannot reach the destination pool's master 127.0.2.1:" in out
    assert resident(lab, "cache-01") == "xcp-lab-1"
    assert lab.db.field("VM", lab.vm_ref("cache-01"), "power_state") == "Running"
    (line,) = _log(env)
    assert line["result"] == "failed" and line["now_on"] == "xcp-lab-1"
