"""poolctl.migration.storage: where a disk goes by default, the disk map, the copy's rate."""

from __future__ import annotations

from poolctl.audit import MigrationRecord
from poolctl.migration.storage import copy_rate, default_sr, disk_map, map_curable, measured_copy, sr_choices
from poolctl.model import VM, Disk, MigrationCheck, StorageRepository

GIB = 1024**3


def sr(ref: str, *, hosts: tuple[str, ...], shared: bool = False, free_gib: int = 100, iso: bool = False):
    return StorageRepository(
        ref=ref,
        name=ref,
        type="iso" if iso else "nfs",
        shared=shared,
        size=1000 * GIB,
        used=(1000 - free_gib) * GIB,
        hosts=hosts,
        content_type="iso" if iso else "",
    )


LOCAL_A = sr("local-a", hosts=("a",), free_gib=400)
LOCAL_B = sr("local-b", hosts=("b",), free_gib=400)
NFS = sr("nfs", hosts=("a", "b"), shared=True, free_gib=50)
ISCSI = sr("iscsi", hosts=("a", "b"), shared=True, free_gib=300)
ISO = sr("iso", hosts=("a", "b"), shared=True, free_gib=900, iso=True)
SRS = [LOCAL_A, LOCAL_B, NFS, ISCSI, ISO]


def disk(device: str, on: str, gib: int = 30) -> Disk:
    return Disk(name=device, device=device, size=gib * GIB, sr=on)


def test_choices_are_the_disk_srs_the_host_sees_shared_first_then_by_free_space():
    assert [s.ref for s in sr_choices(SRS, "b")] == ["iscsi", "nfs", "local-b"]


def test_a_disk_stays_where_the_destination_sees_its_sr():
    assert default_sr(disk("xvda", "nfs"), sr_choices(SRS, "b")) == "nfs"


def test_a_local_disk_goes_to_the_shared_sr_with_most_room_that_holds_it():
    choices = sr_choices(SRS, "b")
    assert default_sr(disk("xvda", "local-a", 30), choices) == "iscsi"
    assert default_sr(disk("xvda", "local-a", 350), choices) == "local-b"  # no shared SR holds 350 GiB
    assert default_sr(disk("xvda", "local-a"), []) is None  # the host sees no disk SR


def test_the_map_names_only_the_disks_that_change_sr():
    vm = VM(ref="vm", uuid="u", name="vm", disks=(disk("xvda", "local-a"), disk("xvdb", "nfs")))
    assert disk_map(vm, {"xvda": "iscsi", "xvdb": "nfs"}) == (("xvda", "iscsi"),)
    assert disk_map(vm, {"xvdb": "nfs"}) == ()


def _rec(n: int, pool: str, result: str, **measured: object) -> MigrationRecord:
    return MigrationRecord(
        id=str(n),
        time=f"2026-12-04T18:{n:02d}:00+00:00",
        pool=pool,
        vm=f"vm-{n}",
        source="a",
        destination="b",
        result=result,
        measured=measured,
    )


def test_the_rate_is_the_newest_measured_copy_of_the_pool_else_the_configured_one():
    newest_first = [
        _rec(4, "other", "success", disk_rate_mib_s=900.0),
        _rec(3, "lab", "failed", disk_rate_mib_s=800.0),
        _rec(2, "lab", "success", duration_s=8.0),  # no disk copied
        _rec(1, "lab", "success", **measured_copy(30 * GIB, 60.0)),
    ]
    rate = copy_rate("lab", 100.0, newest_first)
    assert rate.mib_s == 512.0 and rate.source == "measured: vm-1's move at 18:01 UTC"
    assert copy_rate("lab", 100.0, newest_first[:3]).source == "[migration] storage_rate"
    assert copy_rate("lab", 100.0, []).mib_s == 100.0
    assert measured_copy(0, 5.0) == {}


def test_only_problems_with_where_the_disks_go_are_curable_by_other_srs():
    def check(*codes: str) -> MigrationCheck:
        return MigrationCheck(vm="vm", host="b", problems=tuple(f"p{c}" for c in codes), codes=codes)

    assert map_curable(check("SR_FULL"))
    assert map_curable(check("SR_NOT_ATTACHED", "VM_REQUIRES_SR"))
    assert not map_curable(check("SR_FULL", "HOST_NOT_ENOUGH_FREE_MEMORY"))
    assert not map_curable(check())  # no problem: nothing to cure
