"""Copy storage (issue 13 item 3): a live migration of a guest whose disk is on hostA's local
storage pool, its disk copied into hostB's own pool, pinged all along, through poolctl's KVM
backend; back again with the real ``poolctl migrate … --sr``; and a cancelled copy that leaves
the guest on hostA and no volume on hostB."""

from __future__ import annotations

import time

import libvirt
import pytest

from poolctl.model import MigrationOptions, MigrationPhase

from . import labstorage as st
from .drive import kvm_backend, refs, run_migration, settle
from .labcli import move_figures

pytestmark = [pytest.mark.lab]
NAME, IP = st.LOCALVM.name, st.LOCALVM.ip
VOLUME = f"{NAME}.img"


def _sr(inv, pool: str) -> str:
    [sr] = [s for s in inv.srs if s.name == pool]
    assert not sr.shared and len(sr.hosts) == 1, sr
    return sr.ref


@pytest.fixture
def local_guest(lab):
    """``localvm`` on hostA, its 64 MiB disk (random bytes) in pool hostA-local; destroyed after."""
    lab.stop_guest("pingvm2")
    lab.stop_guest("pingvm")
    st.ensure_local_pools(lab)
    path = st.local_disk(lab, "hostA")
    lab.timings["localvm_boot_s"] = round(st.boot(lab, "hostA", st.LOCALVM, st.local_guest_xml(lab, path)), 2)
    try:
        yield lab
    finally:
        lab.stop_guest(NAME)


def _move(lab, backend, dst: str, pool: str, options: MigrationOptions | None = None, on_update=None, timeout=150):
    inv = backend.inventory()
    r = refs(inv, NAME)
    disk_srs = (("*", _sr(inv, pool)),)
    with st.pinging(lab, IP) as pinger:
        settle(pinger, 1.0)
        before = pinger.stats()
        assert before.received > 0 and before.lost == 0, f"guest not answering before: {before}"
        opts = (options or MigrationOptions()).model_copy(update={"disk_srs": disk_srs})
        handle = backend.migrate(r.vm, r.hosts[dst], opts)
        run = run_migration(handle, timeout, on_update)
        settle(pinger, 1.5)
        stats = pinger.stop()
    return r, run, stats


@pytest.mark.timeout(420)
def test_copy_storage_moves_local_disk_with_ping(local_guest, poolctl_cli):
    lab = local_guest
    with kvm_backend(lab) as backend:
        inv = backend.inventory()
        r = refs(inv, NAME)
        plain = backend.check_migration(r.vm, r.hosts["hostB"])
        assert "DISK_NOT_SHARED" in plain.codes, plain
        target = _sr(inv, st.local_pool("hostB"))
        check = backend.check_storage_migration(r.vm, r.hosts["hostB"], [("*", target)], 100)
        assert check.ok, check.problems
        assert check.copy_bytes == st.LOCAL_DISK_MIB << 20, check
        assert any("disk vda" in line and "hostB-local" in line for line in check.copies), check.copies
        # "onto" the pool it is on: it stays there, where hostB cannot reach it
        stay = backend.check_storage_migration(r.vm, r.hosts["hostB"], [("*", _sr(inv, "hostA-local"))], 100)
        assert stay.codes == ("VM_REQUIRES_SR",) and not stay.copies, stay

        for attempt in (1, 2):
            marks = lab.serial_marks(NAME)
            t0 = time.monotonic()
            _, run, stats = _move(lab, backend, "hostB", st.local_pool("hostB"))
            oops = lab.guest_crash(NAME, since=marks) if stats.current_gap_s else ""
            if not oops or attempt == 2:
                break
            print(f"\nguest {NAME} crashed after the move ({oops}): QEMU TCG, redone on a fresh guest")
            lab.timings["localvm_crashes"] = lab.timings.get("localvm_crashes", 0) + 1
            lab.stop_guest(NAME)
            st.boot(lab, "hostA", st.LOCALVM, st.local_guest_xml(lab, st.local_disk(lab, "hostA")))
            inv = backend.inventory()
        res = run.result
        disk_updates = [u for u in run.updates if u.phase == MigrationPhase.COPYING_STORAGE]
        print(
            f"\ncopy storage hostA -> hostB: {res.outcome} in {res.duration_s:.2f} s "
            f"(wall {time.monotonic() - t0:.2f} s), disk {st.LOCAL_DISK_MIB} MiB, downtime {res.downtime_ms} ms; "
            f"ping sent {stats.sent} lost {stats.lost} longest gap {stats.longest_gap_s:.3f} s; "
            f"disk updates {[(u.bytes_done, u.bytes_total) for u in disk_updates]}; "
            f"phases {' > '.join(dict.fromkeys(u.phase.value for u in run.updates))}; notes {res.escalations}"
        )
        assert res.outcome == "success", res.error
        assert lab.running_on(NAME) == ["hostB"]
        assert st.disk_source(lab, "hostB", NAME) == str(lab.topo.dir / "hostB" / "local" / VOLUME)
        assert VOLUME in st.volumes(lab, "hostB") and VOLUME not in st.volumes(lab, "hostA"), "old copy not deleted"
        phases = [u.phase for u in run.updates]
        assert MigrationPhase.COPYING_STORAGE in phases, phases
        first_memory = phases.index(MigrationPhase.COPYING) if MigrationPhase.COPYING in phases else len(phases)
        assert phases.index(MigrationPhase.COPYING_STORAGE) < first_memory, "the disks come before the memory"
        assert disk_updates[-1].bytes_total and disk_updates[-1].bytes_total >= st.LOCAL_DISK_MIB << 20
        assert stats.current_gap_s == 0 and stats.last_rtt_ms is not None, f"guest silent after the move: {stats}"
        assert stats.lost <= 5, stats
        vm = next(v for v in backend.inventory().vms if v.name == NAME)
        assert vm.disks[0].sr == target and vm.host == r.hosts["hostB"], vm

    # back to hostA with the real command: every disk into hostA's pool
    dry = poolctl_cli.run("migrate", NAME, "hostA", "--sr", "hostA-local", "--dry-run")
    assert dry.rc == 0, dry
    assert dry.lines_with("copy: disk vda", "hostA-local"), dry
    cli = poolctl_cli.run("migrate", NAME, "hostA", "--sr", "hostA-local", "--ping", IP, "--interval", "0.1")
    print(f"\n`poolctl migrate {NAME} hostA --sr …` in {cli.wall_s:.1f} s:\n{cli.stdout}")
    assert cli.rc == 0, cli
    [summary] = [line for line in cli.stdout.splitlines() if "sent" in line and "lost" in line][:1]
    fig = move_figures(summary)
    assert fig.sent > 10 and fig.lost <= 5, summary
    assert lab.running_on(NAME) == ["hostA"]
    assert VOLUME in st.volumes(lab, "hostA") and VOLUME not in st.volumes(lab, "hostB")


@pytest.mark.timeout(300)
def test_cancelled_copy_keeps_guest_and_removes_new_volume(local_guest):
    lab = local_guest
    with kvm_backend(lab) as backend:
        box: dict[str, object] = {}

        def hook(p):
            if "handle" in box and "cancelled" not in box and p.phase == MigrationPhase.COPYING_STORAGE:
                if (p.bytes_done or 0) > 0:
                    box["cancelled"] = p.bytes_done
                    box["handle"].cancel()  # type: ignore[attr-defined]

        inv = backend.inventory()
        r = refs(inv, NAME)
        opts = MigrationOptions(bandwidth_mib_s=4, disk_srs=(("*", _sr(inv, st.local_pool("hostB"))),))
        with st.pinging(lab, IP) as pinger:
            settle(pinger, 0.5)
            handle = backend.migrate(r.vm, r.hosts["hostB"], opts)
            box["handle"] = handle
            assert VOLUME in st.volumes(lab, "hostB"), "the destination volume is made before the move"
            run = run_migration(handle, 120, hook)
            settle(pinger, 1.0)
            stats = pinger.stop()
        print(
            f"\ncopy storage cancelled after {box.get('cancelled')} disk bytes: {run.result.outcome} "
            f"in {run.result.duration_s:.2f} s; ping sent {stats.sent} lost {stats.lost}"
        )
        assert "cancelled" in box, f"never saw the disk copy: {run.updates}"
        assert run.result.outcome == "cancelled", run.result
        assert run.result.host == r.hosts["hostA"]
        assert lab.running_on(NAME) == ["hostA"]
        assert VOLUME not in st.volumes(lab, "hostB"), "the destination volume was left behind"
        assert VOLUME in st.volumes(lab, "hostA")
        assert stats.lost <= 1 and stats.current_gap_s == 0, stats


@pytest.mark.timeout(300)
def test_destination_crash_mid_copy_keeps_guest_and_removes_new_volume(local_guest):
    """hostB's QEMU dies while the disk is being copied: the move fails naming hostB, the guest
    runs on from its disk on hostA, and the volume made on hostB is deleted (its daemon is up)."""
    lab = local_guest
    with kvm_backend(lab) as backend:
        box: dict[str, object] = {}

        def hook(p):
            if "killed" not in box and p.phase == MigrationPhase.COPYING_STORAGE and (p.bytes_done or 0) > 0:
                box["killed"] = st.kill_incoming_qemu(lab, "hostB", NAME)

        inv = backend.inventory()
        r = refs(inv, NAME)
        opts = MigrationOptions(bandwidth_mib_s=4, disk_srs=(("*", _sr(inv, st.local_pool("hostB"))),))
        with st.pinging(lab, IP) as pinger:
            settle(pinger, 0.5)
            run = run_migration(backend.migrate(r.vm, r.hosts["hostB"], opts), 120, hook)
            settle(pinger, 1.0)
            stats = pinger.stop()
        res = run.result
        print(f"\ncopy storage, hostB's QEMU killed mid-copy: {res.outcome} in {res.duration_s:.2f} s; {res.error}")
        assert "killed" in box, f"never saw the disk copy: {run.updates}"
        assert res.outcome == "failed", res
        assert "hostB" in res.error, res.error
        assert res.host == r.hosts["hostA"] and lab.running_on(NAME) == ["hostA"]
        assert VOLUME not in st.volumes(lab, "hostB"), f"the destination volume was left behind: {res.escalations}"
        assert VOLUME in st.volumes(lab, "hostA")
        assert stats.current_gap_s == 0 and stats.lost <= 1, stats


def _undefine(lab, name: str) -> None:
    for h in lab.hosts:
        try:
            lab.conn(h).lookupByName(name).undefine()
        except libvirt.libvirtError:
            pass


@pytest.mark.timeout(300)
def test_persistent_guest_defined_on_destination_with_its_new_disk(lab):
    """A defined (persistent) guest: after the copy its definition lives on hostB and points at
    the new volume (VIR_MIGRATE_PARAM_PERSIST_XML), and hostA has none left."""
    lab.stop_guest("pingvm2")
    lab.stop_guest("pingvm")
    st.ensure_local_pools(lab)
    lab.stop_guest(NAME)
    _undefine(lab, NAME)
    path = st.local_disk(lab, "hostA")
    try:
        lab.conn("hostA").defineXML(st.local_guest_xml(lab, path)).create()
        st.g.wait_ping(lab.client_netns, 90, IP, what=f"guest {NAME}")
        with kvm_backend(lab) as backend:
            _, run, stats = _move(lab, backend, "hostB", st.local_pool("hostB"))
        res = run.result
        print(f"\ncopy storage, persistent guest: {res.outcome} in {res.duration_s:.2f} s; lost {stats.lost}")
        assert res.outcome == "success", res.error
        new = str(lab.topo.dir / "hostB" / "local" / VOLUME)
        dom = lab.conn("hostB").lookupByName(NAME)
        assert dom.isPersistent() and new in dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        with pytest.raises(libvirt.libvirtError):
            lab.conn("hostA").lookupByName(NAME)
        assert stats.current_gap_s == 0, stats
    finally:
        lab.stop_guest(NAME)
        _undefine(lab, NAME)
