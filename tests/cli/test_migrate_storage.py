"""`poolctl migrate VM HOST --sr SR | --disk DEVICE=SR`: storage motion end to end, a real
`poolctl` process against the XAPI simulator (host.migrate_receive, VM.assert_can_migrate,
Async.VM.migrate_send through the XenAPI SDK). cache-01 runs on xcp-lab-1 with its 30 GiB disk
on xcp-lab-1's local SR."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest

from poolctl.sim.xapi import Simulator
from tests.cli.test_migrate import PASSWORD, _start, log, resident
from tests.support.cli import config_file, run

pytestmark = pytest.mark.timeout(120)

GIB = 1024**3


def _serve(**options) -> tuple[Simulator, str]:
    s = Simulator.from_scenario("lab", password=PASSWORD, **options)
    return s, s.serve(host="127.0.0.1", port=0).url


@pytest.fixture
def sim() -> Iterator[Simulator]:
    s, url = _serve(migration_seconds=1.0, storage_mib_s=30 * 1024 / 2.0)  # the 30 GiB disk in 2 s
    s.url = url  # type: ignore[attr-defined]
    try:
        yield s
    finally:
        s.close()


def _env(tmp_path, url: str, extra: str = "") -> dict[str, str]:
    cfg = config_file(
        tmp_path,
        f'{extra}[[pool]]\nname = "lab"\nbackend = "xen"\nurl = "{url}"\nusername = "root"\npassword = "{PASSWORD}"\n',
    )
    return {"POOLCTL_CONFIG": str(cfg), "POOLCTL_STATE_DIR": str(tmp_path / "state")}


@pytest.fixture
def env(tmp_path, sim) -> dict[str, str]:
    return _env(tmp_path, sim.url)


def disks(sim: Simulator, vm: str) -> list[tuple[str, str]]:
    """(VDI ref, SR name) of the VM's disks."""
    db = sim.db
    out = []
    for vbd in db.field("VM", sim.vm_ref(vm), "VBDs"):
        if db.field("VBD", vbd, "type") == "Disk":
            vdi = db.field("VBD", vbd, "VDI")
            out.append((vdi, db.field("SR", db.field("VDI", vdi, "SR"), "name_label")))
    return out


def test_sr_moves_a_running_vm_off_its_local_disk(sim, env):
    (old,) = disks(sim, "cache-01")
    started = time.monotonic()
    proc = run("migrate", "cache-01", "xcp-lab-2", "--pool", "lab", "--sr", "iSCSI storage", env=env, timeout=60)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "  copy: disk xvda: 30 GiB from 'Local storage xcp-lab-1' to 'iSCSI storage'\n" in out
    assert "Migration complete in " in out and "cache-01 now runs on xcp-lab-2" in out
    assert "pings to 127.0.10.31: " in out and ", 0 lost, longest gap " in out
    assert resident(sim, "cache-01") == "xcp-lab-2"
    ((new_vdi, sr),) = disks(sim, "cache-01")
    assert sr == "iSCSI storage" and new_vdi != old[0]
    assert not sim.db.exists("VDI", old[0])  # XAPI destroys the source VDI after the mirror
    assert elapsed >= 3.0  # 2 s of disk copy and 1 s of memory, at least
    assert log(env)[0]["result"] == "success"
    assert PASSWORD not in out + proc.stderr and "session_id" not in out + proc.stderr


def test_a_local_disk_without_sr_is_refused_naming_the_option(sim, env):
    proc = run("migrate", "cache-01", "xcp-lab-2", env=env)
    assert proc.returncode == 5, proc.stderr
    assert "Local storage xcp-lab-1" in proc.stderr and "--sr SR" in proc.stderr
    assert resident(sim, "cache-01") == "xcp-lab-1"


def test_dry_run_says_what_is_copied_and_how_long_it_may_take(sim, env, tmp_path):
    cfg = env["POOLCTL_CONFIG"]
    with open(cfg) as f:
        text = f.read()
    with open(cfg, "w") as f:
        f.write("[migration]\nstorage_rate = 512\n\n" + text)
    proc = run("migrate", "cache-01", "xcp-lab-2", "--disk", "xvda=iSCSI storage", "--dry-run", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "  copy: disk xvda: 30 GiB from 'Local storage xcp-lab-1' to 'iSCSI storage'\n" in proc.stdout
    assert "  copy: 30 GiB in all: about 60 s at 512 MiB/s\n" in proc.stdout
    assert "Dry run for cache-01 (lab): xcp-lab-1 → xcp-lab-2, its disks copied as above; nothing moves" in proc.stdout
    assert resident(sim, "cache-01") == "xcp-lab-1"
    assert disks(sim, "cache-01")[0][1] == "Local storage xcp-lab-1"


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (
            ("--sr", "Local storage xcp-lab-3"),
            5,
            "✗ xcp-lab-2 cannot see local SR 'Local storage xcp-lab-3' (disk xvda)",
        ),
        (("--sr", "nosuchsr"), 4, "pool 'lab' has no SR named 'nosuchsr'; SRs: "),
        (("--disk", "xvdz=iSCSI storage"), 4, "cache-01 has no disk 'xvdz'; its disks: xvda"),
        (("--disk", "xvda"), 2, "--disk expects DEVICE=SR"),
    ],
)
def test_bad_maps_say_why(sim, env, args, code, words):
    proc = run("migrate", "cache-01", "xcp-lab-2", *args, env=env)
    assert proc.returncode == code, proc.stderr
    assert words in proc.stderr and "Traceback" not in proc.stderr
    assert resident(sim, "cache-01") == "xcp-lab-1"


def test_not_enough_space_and_ambiguous_names(sim, env):
    shared = sim.db.find("SR", lambda r: r["name_label"] == "iSCSI storage")[0]
    sim.db.set("SR", shared, physical_size=sim.db.field("SR", shared, "physical_utilisation") + GIB)
    proc = run("migrate", "cache-01", "xcp-lab-2", "--sr", "iSCSI storage", env=env)
    assert proc.returncode == 5, proc.stderr
    assert "✗ not enough space on SR 'iSCSI storage': the copy needs 30 GiB, it has 1 GiB free" in proc.stderr
    local2 = sim.db.find("SR", lambda r: r["name_label"] == "Local storage xcp-lab-2")[0]
    sim.db.set("SR", local2, name_label="iSCSI storage")
    proc = run("migrate", "cache-01", "xcp-lab-2", "--sr", "iSCSI storage", env=env)
    assert proc.returncode == 4, proc.stderr
    assert "'iSCSI storage' names 2 SRs in pool 'lab': " in proc.stderr and "give a uuid" in proc.stderr
    uuid = sim.db.field("SR", local2, "uuid")
    proc = run("migrate", "cache-01", "xcp-lab-2", "--sr", uuid, "--dry-run", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "to 'iSCSI storage'" in proc.stdout


def test_ctrl_c_in_the_disk_phase_leaves_the_vm_and_its_disks(tmp_path):
    slow, url = _serve(migration_seconds=1.0, storage_mib_s=30 * 1024 / 12.0)  # 12 s of disk copy
    try:
        env = _env(tmp_path, url)
        before = disks(slow, "cache-01")
        shared = slow.db.find("SR", lambda r: r["name_label"] == "iSCSI storage")[0]
        shared_vdis = set(slow.db.field("SR", shared, "VDIs"))
        proc = _start(env, "cache-01", "xcp-lab-2", "--sr", "iSCSI storage")
        ref = slow.vm_ref("cache-01")
        deadline = time.monotonic() + 20
        while "migrate_send" not in slow.db.field("VM", ref, "current_operations").values():
            assert time.monotonic() < deadline, "the storage migration never started"
            time.sleep(0.02)
        time.sleep(1.5)  # in the disk phase: a mirror VDI exists on the shared SR meanwhile
        assert len(slow.db.field("SR", shared, "VDIs")) == len(shared_vdis) + 1
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 6, err
        assert "Migration cancelled after" in out and "cache-01 still runs on xcp-lab-1" in out
        assert resident(slow, "cache-01") == "xcp-lab-1"
        assert disks(slow, "cache-01") == before
        assert set(slow.db.field("SR", shared, "VDIs")) == shared_vdis
    finally:
        slow.close()
