"""Copy storage's pre-checks, volume handling and XML on libvirt's test driver (the demo pool):
everything but the move itself, which the test driver cannot do (tests/lab has it for real)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import libvirt
import pytest

from poolctl.backends.base import OperationRefused
from poolctl.backends.kvm.copy_plan import CopyPlan, DiskCopy, plan_copies, storage_check
from poolctl.backends.kvm.copy_storage import CopyStorageMigration, create_volumes, delete_volumes, retarget
from poolctl.backends.kvm.migration import MigrationSetup
from poolctl.model import GiB, MiB, MigrationOptions, MigrationPhase
from tests.support.kvm_helpers import by_name


def _setup(demo):
    inv = demo.inventory()
    a, b = sorted(inv.hosts, key=lambda h: h.name)
    local = {h.ref: next(s.ref for s in inv.srs if s.name == "default" and s.hosts == (h.ref,)) for h in (a, b)}
    return inv, a, b, local


def _dst_conn(demo, host_ref):
    return demo.host_by_ref(host_ref).conn


def test_capabilities_offer_storage_motion(demo):
    assert demo.capabilities.storage_motion
    assert demo.STORAGE_MOTION


def test_local_disk_copied_to_the_destination_pool(demo):
    inv, a, b, local = _setup(demo)
    vm = by_name(inv, "kvm-web-02")  # its disk is on A's own pool 'default'
    plain = demo.check_migration(vm.ref, b.ref)
    assert "DISK_NOT_SHARED" in plain.codes
    check = demo.check_storage_migration(vm.ref, b.ref, [("*", local[b.ref])], 100)
    # the test driver cannot migrate: said; the disk map itself is fine
    assert check.codes == ("VIR_ERR_NO_SUPPORT",), check
    assert check.copy_bytes == 6 * GiB  # the volume's allocation, as its pool reports it
    assert check.copies == (
        f"disk vda: 6.0 GiB from 'default' ({a.name}) to 'default' ({b.name})",
        "6.0 GiB in all: about 61 s at 100 MiB/s",
    )


def test_disk_left_on_local_pool_names_the_options(demo):
    inv, a, b, local = _setup(demo)
    vm = by_name(inv, "kvm-web-02")
    check = demo.check_storage_migration(vm.ref, b.ref, [("vda", local[a.ref])], 100)
    assert "VM_REQUIRES_SR" in check.codes and not check.copies
    [words] = [p for p in check.problems if "--sr" in p]
    assert "disk vda is on local pool 'default'" in words and "--disk vda=SR" in words


def test_target_pool_the_destination_cannot_see(demo):
    inv, a, b, local = _setup(demo)
    vm = by_name(inv, "kvm-web-01")  # on the shared vmstore: moved into A's own pool, to B
    check = demo.check_storage_migration(vm.ref, b.ref, [("vda", local[a.ref])], 100)
    assert "SR_NOT_ATTACHED" in check.codes, check
    assert f"{b.name} cannot see pool 'default' (disk vda)" in check.problems


def test_unknown_device_refused(demo):
    inv, _a, b, local = _setup(demo)
    vm = by_name(inv, "kvm-web-02")
    with pytest.raises(OperationRefused, match=r"has no disk vdz \(its disks: vda\)"):
        demo.check_storage_migration(vm.ref, b.ref, [("vdz", local[b.ref])], 100)


def test_volume_of_that_name_on_the_destination(demo):
    inv, _a, b, local = _setup(demo)
    vm = by_name(inv, "kvm-web-02")
    pool = _dst_conn(demo, b.ref).storagePoolLookupByName("default")
    pool.createXML("<volume><name>kvm-web-02.qcow2</name><capacity unit='GiB'>1</capacity></volume>", 0)
    check = demo.check_storage_migration(vm.ref, b.ref, [("*", local[b.ref])], 100)
    assert "VDI_EXISTS" in check.codes
    assert f"pool 'default' on {b.name} already has a volume 'kvm-web-02.qcow2' (disk vda)" in check.problems


def test_not_enough_space(demo):
    inv, _a, b, local = _setup(demo)
    vm = by_name(inv, "kvm-web-02")  # 20 GiB capacity
    pool = _dst_conn(demo, b.ref).storagePoolLookupByName("default")
    free = pool.info()[3]
    pool.createXML(
        f"<volume><name>filler</name><capacity unit='bytes'>{free - 10 * GiB}</capacity>"
        f"<allocation unit='bytes'>{free - 10 * GiB}</allocation></volume>",
        0,
    )
    check = demo.check_storage_migration(vm.ref, b.ref, [("*", local[b.ref])], 100)
    assert "SR_FULL" in check.codes, check
    assert any("the copy needs 20.0 GiB, 10.0 GiB free" in p for p in check.problems), check.problems


def test_migrate_with_a_bad_map_is_refused_before_anything_is_made(demo):
    inv, _a, b, local = _setup(demo)
    vm = by_name(inv, "kvm-web-01")
    before = _dst_conn(demo, b.ref).storagePoolLookupByName("default").listVolumes()
    with pytest.raises(OperationRefused, match="cannot see pool 'default'") as err:
        demo.migrate(vm.ref, b.ref, MigrationOptions(disk_srs=(("vda", local[_a.ref]),)))
    assert err.value.code == "SR_NOT_ATTACHED"
    assert _dst_conn(demo, b.ref).storagePoolLookupByName("default").listVolumes() == before


def test_destination_volumes_made_and_deleted(demo):
    _inv, _a, b, _local = _setup(demo)
    dst = demo.host_by_ref(b.ref)
    copies = tuple(
        DiskCopy(dev, f"/x/{name}", "sr:x", "sr:y", name, 2 * GiB, GiB, "raw", "default")
        for dev, name in (("vda", "new-a.img"), ("vdb", "new-b.img"))
    )
    made = create_volumes(dst, CopyPlan(copies), "vm1")
    pool = dst.conn.storagePoolLookupByName("default")
    assert {"new-a.img", "new-b.img"} <= set(pool.listVolumes())
    assert pool.storageVolLookupByName("new-a.img").info()[1] == 2 * GiB
    assert [m.kind for m in made] == ["file", "file"] and made[0].path.endswith("/new-a.img")
    assert delete_volumes(made) == []
    assert not {"new-a.img", "new-b.img"} & set(pool.listVolumes())


def test_a_failed_creation_deletes_the_volumes_already_made(demo):
    _inv, _a, b, _local = _setup(demo)
    dst = demo.host_by_ref(b.ref)
    pool = dst.conn.storagePoolLookupByName("default")
    pool.createXML("<volume><name>taken.img</name><capacity unit='GiB'>1</capacity></volume>", 0)
    copies = tuple(
        DiskCopy(dev, f"/x/{name}", "sr:x", "sr:y", name, GiB, GiB, "raw", "default")
        for dev, name in (("vda", "first.img"), ("vdb", "taken.img"))
    )
    with pytest.raises(Exception, match="create the destination volume of VM 'vm1'"):
        create_volumes(dst, CopyPlan(copies), "vm1")
    assert "first.img" not in pool.listVolumes()


def test_plan_reads_the_live_definition(demo):
    inv, _a, b, local = _setup(demo)
    vm = by_name(inv, "kvm-build-01")  # shut off, an ISO in a CD drive: the drive is no disk to copy
    plan = plan_copies(demo.merged(), vm.ref, b.ref, {"*": local[b.ref]}, ("isos",))
    assert [c.device for c in plan.copies] == ["vda"]
    assert [c.volume for c in plan.moved] == ["kvm-build-01.qcow2"] and plan.copy_bytes == 30 * GiB


def test_retarget_points_only_the_copied_disks_at_their_new_volumes():
    xml = """<domain><name>d</name><devices>
      <disk type='block' device='disk'><driver name='qemu' type='raw'/>
        <source dev='/dev/old'><reservations managed='yes'/></source><target dev='vda' bus='virtio'/></disk>
      <disk type='file' device='disk'><source file='/shared/keep.img'/><target dev='vdb' bus='virtio'/></disk>
      <disk type='file' device='cdrom'><target dev='sda' bus='sata'/></disk>
    </devices></domain>"""
    out = ET.fromstring(retarget(xml, {"vda": ("file", "/pool/new.img"), "sda": ("file", "/iso/x.iso")}))
    disks = {d.find("target").get("dev"): d for d in out.findall("devices/disk")}
    vda = disks["vda"]
    assert vda.get("type") == "file" and vda.find("source").attrib == {"file": "/pool/new.img"}
    assert vda.find("source/reservations") is not None, "what the source carried besides its path stays"
    assert list(vda).index(vda.find("source")) == 1, "the source keeps its place"
    assert disks["vdb"].find("source").get("file") == "/shared/keep.img"
    assert disks["sda"].find("source").get("file") == "/iso/x.iso"  # an empty drive gains one


def test_libvirt_error_names_the_host(demo):
    _inv, _a, b, _local = _setup(demo)
    dst = demo.host_by_ref(b.ref)
    copy = DiskCopy("vda", "/x/y.img", "sr:x", "sr:y", "y.img", GiB, GiB, "raw", "no-such-pool")
    with pytest.raises(Exception) as err:
        create_volumes(dst, CopyPlan((copy,)), "vm1")
    assert b.name in str(err.value) and not isinstance(err.value, libvirt.libvirtError)


def test_the_handle_shows_the_disk_copy_as_a_phase_of_its_own(demo):
    """The copy-storage handle reads progress with the disks first (the figures: test_progress.py),
    fed a jobStats of the disk mirror as libvirt 9.0 gave it in the lab."""
    inv, _a, b, _local = _setup(demo)
    web = by_name(inv, "kvm-web-01")
    src, _ = demo.locate(web.ref)
    dom = src.conn.lookupByUUIDString(web.uuid)
    setup = MigrationSetup(notify=demo.queue.put, migrating=set(), p2p=True, migration_uris={}, timeout_s=900.0)
    args = (setup, src, demo.host_by_ref(b.ref), web.uuid, web.name, dom, 0, {}, MigrationOptions())
    disk = {"type": 2, "disk_total": 64 * MiB, "disk_processed": 32 * MiB, "disk_remaining": 32 * MiB,
            "data_total": 64 * MiB, "data_processed": 32 * MiB, "data_remaining": 32 * MiB}  # fmt: skip
    running = libvirt.VIR_DOMAIN_RUNNING
    p = CopyStorageMigration(*args, plan=CopyPlan(()))._progress(disk, running, 0, 0.0)
    assert (p.phase, p.cancellable, p.message) == (MigrationPhase.COPYING_STORAGE, True, "disks: 32.0 MiB of 64.0 MiB")


def test_an_iso_the_destination_cannot_see_still_stops_the_move():
    from poolctl.model import MigrationCheck

    base = MigrationCheck(
        vm="vm:1",
        host="host:b",
        problems=(
            "disk vda on local pool 'default' not visible on b; copy it with --sr SR (every disk) or --disk vda=SR",
            "disk sda on local pool 'isos' not visible on b; copy it with --sr SR (every disk) or --disk sda=SR",
        ),
        codes=("DISK_NOT_SHARED", "DISK_NOT_SHARED"),
    )
    copy = DiskCopy("vda", "/a/x.img", "sr:default@a", "sr:default@b", "x.img", GiB, GiB, "raw", "default")
    check = storage_check(base, CopyPlan((copy,), devices=("vda",)), {}, 100, ("a", "b"))
    assert check.problems == base.problems[1:] and check.codes == ("DISK_NOT_SHARED",)
    assert check.copy_bytes == GiB and check.copies[0].startswith("disk vda: 1.0 GiB")


def test_every_disk_staying_is_a_plain_move(demo):
    from poolctl.backends.kvm.copy_storage import copy_storage_handle

    inv, _a, b, _local = _setup(demo)
    vm = by_name(inv, "kvm-web-01")  # on the shared vmstore, which B sees
    assert copy_storage_handle(demo.merged(), vm.ref, b.ref, {"*": "sr:vmstore"}, ("isos",)) is None


class _Vol:
    def __init__(self):
        self.deleted = False

    def delete(self, _flags):
        self.deleted = True


@pytest.mark.parametrize(
    ("outcome", "host", "deleted"),
    [("failed", "host:a", True), ("cancelled", "host:a", True), ("unknown", None, False), ("failed", None, False)],
)
def test_new_volumes_deleted_only_when_the_vm_is_known_on_the_source(outcome, host, deleted):
    from types import SimpleNamespace

    from poolctl.backends.kvm.copy_storage import CopyStorageMigration, Made
    from poolctl.model import MigrationResult

    # the outcome as either path gives it: the call's end, or the hosts read after lost contact
    result = MigrationResult(vm="vm:1", source="host:a", destination="host:b", outcome=outcome, host=host)
    h = CopyStorageMigration.__new__(CopyStorageMigration)
    h.vm, h.source, h.destination = "vm:1", "host:a", "host:b"
    h._src, h._dst = SimpleNamespace(name="a"), SimpleNamespace(name="b")
    vol = _Vol()
    h._made = [Made(DiskCopy("vda", "/a/x.img", "s", "t", "x.img", GiB, GiB), vol, "file", "/b/x.img")]  # type: ignore[arg-type]
    got = h._settled(result)
    assert vol.deleted is deleted
    assert got.outcome == outcome
    if not deleted:
        assert got.escalations == ("disk copies kept on b (/b/x.img): the VM was not seen running on a",)
