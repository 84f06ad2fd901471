"""Migration pre-checks: every reason a move of a VM to a host would fail, in words."""

from __future__ import annotations

from collections.abc import Callable, Collection

import libvirt

from poolctl.backends.kvm.hostconn import TEST_DRIVER_REASON, HostConn
from poolctl.backends.kvm.merge import Merged, disk_sr
from poolctl.backends.kvm.xmlinfo import DomainInfo, DomainRecord
from poolctl.model import MigrationCheck

GiB = 1024**3
Problem = Callable[[str, str], None]  # (text, code)


def _gib(n: int) -> str:
    return f"{n / GiB:.1f} GiB"


def check_migration(merged: Merged, vm: str, host: str, shared_storage: Collection[str]) -> MigrationCheck:
    """``shared_storage``: storage pool names the config says every host sees."""
    src, rec = merged.locate(vm)
    dst = merged.host(host)
    name = rec.info.name
    problems: list[str] = []
    codes: list[str] = []

    def problem(text: str, code: str) -> None:
        problems.append(text)
        codes.append(code)

    if src.is_test or dst.is_test:
        problem(f"{TEST_DRIVER_REASON}: VM '{name}' cannot move", "VIR_ERR_NO_SUPPORT")
    if rec.state not in (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_BLOCKED):
        problem(f"VM '{name}' is not running: only a running VM can be live-migrated", "VM_NOT_RUNNING")
    if dst is src:
        problem(f"VM '{name}' already runs on {dst.name}", "SAME_HOST")
    if not dst.live:
        problem(f"host {dst.name} is not connected ({dst.uri})", "HOST_OFFLINE")
    shown = next((h for h in merged.inventory.hosts if h.ref == dst.ref), None)
    if shown is not None and not shown.enabled and dst is not src:
        problem(disabled_words(shown.name, shown.maintenance), "HOST_DISABLED")
    if not src.live:
        problem(f"the VM's host {src.name} is not connected ({src.uri})", "HOST_OFFLINE")
    if problems and ("SAME_HOST" in codes or "HOST_OFFLINE" in codes or "HOST_DISABLED" in codes):
        return MigrationCheck(vm=vm, host=host, problems=tuple(problems), codes=tuple(codes))

    # Memory: the VM's current allocation against what the destination has free.
    need = rec.stat_memory or rec.info.memory
    free = _free_memory(dst)
    if free is not None and need > free:
        problem(
            f"not enough free memory on {dst.name}: VM '{name}' needs {_gib(need)}, {_gib(free)} free",
            "HOST_NOT_ENOUGH_FREE_MEMORY",
        )
    _check_cpu(dst, rec.info, problem)
    _check_disks(merged, shared_storage, src, dst, rec, problem)
    _check_networks(dst, rec, problem)
    _check_job(src, rec, problem)
    return MigrationCheck(vm=vm, host=host, problems=tuple(problems), codes=tuple(codes))


def disabled_words(host: str, maintenance: bool) -> str:
    why = "disabled (maintenance mode)" if maintenance else "disabled"
    return f"host {host} is {why}: no VM may start on it or move to it until `poolctl host enable {host}`"


def _free_memory(dst: HostConn) -> int | None:
    try:
        free = int(dst.conn.getFreeMemory()) if dst.conn is not None else 0
    except libvirt.libvirtError:
        free = 0
    return free or dst.facts.memory_free or None


def _check_cpu(dst: HostConn, info: DomainInfo, problem: Problem) -> None:
    # Only a named CPU model can be compared; host-passthrough/host-model are decided by
    # libvirt itself at migration time.
    if not info.cpu_xml or dst.conn is None:
        return
    try:
        result = dst.conn.compareHypervisorCPU(
            info.emulator or None, info.arch or None, info.machine or None, info.virt_type or None, info.cpu_xml, 0
        )
    except libvirt.libvirtError:
        # Not knowing is no reason to refuse: libvirt checks the CPU itself on arrival.
        return
    if result == libvirt.VIR_CPU_COMPARE_INCOMPATIBLE:
        problem(f"the VM's CPU model is not available on {dst.name}", "CPU_INCOMPATIBLE")


def _check_disks(
    merged: Merged, shared_storage: Collection[str], src: HostConn, dst: HostConn, rec: DomainRecord, problem: Problem
) -> None:
    srs = {s.ref: s for s in merged.inventory.srs}
    for disk in rec.info.disks:
        if disk.cdrom and not (disk.path or disk.volume):
            continue  # empty drive
        if disk.network and not disk.pool:
            continue  # rbd/gluster/iscsi over the network: every host reaches it
        ref = disk_sr(src, disk, merged.sr_of_pool)
        sr = srs.get(ref) if ref else None
        if sr is None:
            problem(
                f"disk {disk.device} ({disk.label}) is on no storage pool known to {src.name}; "
                f"{dst.name} may not see it: {_copy_hint(disk.device)}",
                "DISK_NOT_SHARED",
            )
        elif not sr.shared or (dst.ref not in sr.hosts and sr.name not in shared_storage):
            where = "local pool" if not sr.shared else "pool"
            problem(
                f"disk {disk.device} on {where} '{sr.name}' not visible on {dst.name}; {_copy_hint(disk.device)}",
                "DISK_NOT_SHARED",
            )


def _copy_hint(device: str) -> str:
    # the backend copies storage (copy_storage.py): the refusal names the way to use it
    return f"copy it with --sr SR (every disk) or --disk {device}=SR"


def _check_networks(dst: HostConn, rec: DomainRecord, problem: Problem) -> None:
    for nic in rec.info.nics:
        if nic.kind == "network" and nic.source:
            net = dst.networks.get(nic.source)
            if net is None:
                problem(f"network '{nic.source}' (NIC {nic.mac}) does not exist on {dst.name}", "NETWORK_MISSING")
            elif not net.active:
                problem(f"network '{nic.source}' is not active on {dst.name}", "NETWORK_INACTIVE")
        elif nic.kind == "bridge" and nic.source:
            if any(n.bridge == nic.source for n in dst.networks.values()) or dst.conn is None:
                continue
            try:
                dst.conn.interfaceLookupByName(nic.source)
            except libvirt.libvirtError as err:
                # Only a definite "no such interface" counts: a host without an interface
                # driver cannot tell us, and libvirt checks the bridge itself on arrival.
                if err.get_error_code() == libvirt.VIR_ERR_NO_INTERFACE:
                    problem(f"bridge '{nic.source}' (NIC {nic.mac}) does not exist on {dst.name}", "NETWORK_MISSING")


def _check_job(src: HostConn, rec: DomainRecord, problem: Problem) -> None:
    if src.conn is None:
        return
    try:
        job = src.conn.lookupByUUIDString(rec.info.uuid).jobInfo()
    except libvirt.libvirtError:
        return  # the test driver has no jobs; a vanished domain shows up at migration
    if job and job[0] not in (
        libvirt.VIR_DOMAIN_JOB_NONE,
        libvirt.VIR_DOMAIN_JOB_COMPLETED,
        libvirt.VIR_DOMAIN_JOB_FAILED,
        libvirt.VIR_DOMAIN_JOB_CANCELLED,
    ):
        problem(
            f"VM '{rec.info.name}' is busy with another job (a migration, save or dump) on {src.name}", "JOB_RUNNING"
        )
