"""`poolctl evacuate HOST --sr SR`: VMs with disks on the host's local storage leave with storage
motion (their local disks copied to SR), the others as usual; without --sr they refuse the
evacuation before anything moves and the refusal names the option. A real `poolctl` process
against the XAPI simulator."""

from __future__ import annotations

import pytest

from tests.cli.test_evacuate import PASSWORD, guests, log_lines, resident, serve
from tests.support.cli import run

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def lab(tmp_path):
    yield from serve(tmp_path, "lab", 0.5)


def _disk_srs(sim, vm: str) -> list[str]:
    db = sim.db
    return [
        db.field("SR", db.field("VDI", db.field("VBD", b, "VDI"), "SR"), "name_label")
        for b in db.field("VM", sim.vm_ref(vm), "VBDs")
        if db.field("VBD", b, "type") == "Disk"
    ]


def test_without_sr_the_refusal_names_the_option(lab):
    sim, env = lab
    proc = run("evacuate", "xcp-lab-1", env=env)
    assert proc.returncode == 5, proc.stderr
    assert (
        "poolctl: cache-01: disks on storage no other host sees; --sr SR copies them to SR (storage motion) "
        "while the VMs move\n"
    ) in proc.stderr
    assert resident(sim, "cache-01") == "xcp-lab-1"


def test_dry_run_with_sr_shows_what_is_copied(lab):
    sim, env = lab
    sim.storage_mib_s = 30 * 1024  # not used by a dry run; the estimate is the config's rate
    proc = run("evacuate", "xcp-lab-1", "--sr", "iSCSI storage", "--dry-run", env=env)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "  copy: cache-01: disk xvda: 30 GiB from 'Local storage xcp-lab-1' to 'iSCSI storage'\n" in out
    assert "  copy: cache-01: 30 GiB in all: about 5 min at 100 MiB/s\n" in out
    assert "blocked" not in out
    assert "--dry-run: nothing moved; xcp-lab-1 left as it is" in out
    assert _disk_srs(sim, "cache-01") == ["Local storage xcp-lab-1"]


def test_sr_evacuates_a_host_with_a_local_disk_vm(lab):
    sim, env = lab
    sim.storage_mib_s = 30 * 1024  # the 30 GiB disk in 1 s
    proc = run("evacuate", "xcp-lab-1", "--sr", "iSCSI storage", "--batch", "2", env=env, timeout=90)
    assert proc.returncode == 0, proc.stderr
    assert guests(sim, "xcp-lab-1") == []
    assert resident(sim, "cache-01") in ("xcp-lab-2", "xcp-lab-3")
    assert _disk_srs(sim, "cache-01") == ["iSCSI storage"]
    assert _disk_srs(sim, "db-01") == ["iSCSI storage", "iSCSI storage"]  # shared disks stay where they are
    moves = [e for e in log_lines(env) if "kind" not in e]
    assert len(moves) == 4 and {e["result"] for e in moves} == {"success"}
    (cache,) = [e for e in moves if e["vm"] == "cache-01"]
    assert cache["options"].get("disk_srs") and cache["ping_lost"] == 0
    assert PASSWORD not in proc.stdout + proc.stderr


def test_sr_must_name_an_sr_of_the_pool(lab):
    _, env = lab
    proc = run("evacuate", "xcp-lab-1", "--sr", "Tape", env=env)
    assert proc.returncode == 4
    assert "pool 'lab' has no SR named 'Tape'; SRs: " in proc.stderr
