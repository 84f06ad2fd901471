"""Populate a Database from a Scenario: pool, hosts (each with its dom0), SRs/PBDs, networks/PIFs,
VMs with metrics, disks, CD drive and VIFs. Lists are assembled first and set once (fast for
10,000 VMs)."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from . import certs, host_lifecycle, lifecycle, schema
from .consoles import create_console, create_host_cpus
from .db import NULL_REF, Database
from .domids import next_domid
from .scenario import Scenario, VMSpec
from .schema import GiB, MiB, Record, new_record, now

XCP_VERSION = {
    "product_brand": "XCP-ng",
    "product_version": "8.3.0",
    "product_version_text": "8.3",
    "product_version_text_short": "8.3",
    "platform_name": "XCP",
    "platform_version": "3.4.0",
    "build_number": "cloud",
    "xapi": "24.19",
    "xapi_build": "24.19.2",
    "xen": "4.17.4-3",
    "linux": "4.19.0+1",
    "xencenter_min": "2.21",
    "xencenter_max": "2.21",
    "network_backend": "openvswitch",
    "db_schema": "5.775",
    "date": "2024-09-30",
    "dbv": "2024.0930",
    "is_preview_release": "false",
}


# A few of the default templates every XCP-ng pool carries: clients must tell them from VMs.
DEFAULT_TEMPLATES = (
    ("Debian Bookworm 12", "linux"),
    ("Rocky Linux 9", "linux"),
    ("Ubuntu Noble Numbat 24.04", "linux"),
    ("CentOS 7", "linux"),
    ("Windows Server 2022 (64-bit)", "windows"),
    ("Windows 10 (64-bit)", "windows"),
    ("Other install media", "other"),
)


@dataclass(frozen=True)
class Guest:
    """What the guest agent reports once the VM runs (kept while halted, off the wire)."""

    ip: str | None
    os: str

    def metrics_fields(self, stamp: datetime | None = None) -> Record:
        distro = self.os.split()[0].lower()
        networks = {"0/ip": self.ip, "0/ipv4/0": self.ip} if self.ip else {}
        return {
            "os_version": {"name": self.os, "distro": distro, "uname": "6.1.0-25-amd64", "major": "1", "minor": "0"},
            "PV_drivers_version": {"major": "8", "minor": "3", "micro": "0", "build": "1"},
            "networks": networks,
            "last_updated": stamp or now(),
            "other": {
                "feature-shutdown": "1",
                "feature-poweroff": "1",
                "feature-reboot": "1",
                "feature-suspend": "1",
                "has-vendor-device": "0",
            },
        }


@dataclass
class Built:
    master: str
    hosts: dict[str, str]  # name_label -> ref
    guests: dict[str, Guest]  # VM ref -> guest info


def _mac(seed: str) -> str:
    h = hashlib.blake2b(seed.encode(), digest_size=5).hexdigest()
    return f"02:{h[0:2]}:{h[2:4]}:{h[4:6]}:{h[6:8]}:{h[8:10]}"


def _overhead(memory: int) -> int:
    return (memory // 128 // MiB + 2) * MiB  # ~1% plus shadow pages, MiB-aligned


# an iSCSI LUN exported by tgt (the lab's userspace target): tgt's LUNs have NAA ids of this form
ISCSI_DEVICE_CONFIG = {
    "target": "iscsi.lab.local",
    "port": "3260",
    "targetIQN": "iqn.2024-01.local.lab:storage",
    "SCSIid": "360000000000000000e00000000010001",
}


def sr_sm_config(sr_type: str) -> dict[str, str]:
    """What the SM drivers record in SR.sm_config: LVHDSR thick provisioning and use_vhd (set at
    create), and for lvmoiscsi the LUN's serial (scsiutil.add_serial_record) and the multipathable
    flag (SR._setMultipathableFlag, at attach)."""
    if sr_type == "lvmoiscsi":
        return {
            "allocation": "thick",
            "use_vhd": "true",
            "devserial": f"scsi-{ISCSI_DEVICE_CONFIG['SCSIid']}",
            "multipathable": "true",
        }
    if sr_type.startswith("lvm"):
        return {"allocation": "thick", "use_vhd": "true"}
    return {}


def build(db: Database, sc: Scenario) -> Built:
    lists: dict[tuple[str, str, str], list[str]] = defaultdict(list)  # (class, ref, field) -> items
    hosts: dict[str, str] = {}
    master_name = sc.master.name
    stamp = now()
    boot = stamp - timedelta(days=12)
    for h in sc.hosts:
        total = int(h.memory_gib * GiB)
        metrics = db.create(
            "host_metrics", new_record("host_metrics", memory_total=total, memory_free=total, last_updated=stamp)
        )
        cpu_info = {
            "cpu_count": str(h.cpus),
            "socket_count": "2" if h.cpus >= 8 else "1",
            "vendor": "AuthenticAMD" if "AMD" in h.cpu_model else "GenuineIntel",
            "speed": "2194.844",
            "modelname": h.cpu_model,
            "family": "6",
            "model": "85",
            "stepping": "7",
            "flags": "fpu de tsc msr pae mce cx8 apic sep mca cmov pat clflush",
            "features": "1fcbfbff-f7fa3223-2d93fbff-00000423",
        }
        ref = db.create(
            "host",
            new_record(
                "host",
                name_label=h.name,
                name_description="Default install",
                hostname=h.name,
                address=h.address,
                memory_overhead=_overhead(total),
                metrics=metrics,
                cpu_info=cpu_info,
                software_version={**XCP_VERSION, "hostname": h.name},
                iscsi_iqn=f"iqn.2024-01.local.lab:{h.name}",
                other_config={
                    "agent_start_time": f"{boot.timestamp():.0f}.",
                    "boot_time": f"{boot.timestamp():.0f}.",
                    "iscsi_iqn": f"iqn.2024-01.local.lab:{h.name}",
                },
                bios_strings={"system-manufacturer": "Supermicro", "system-product-name": "SYS-1029P"},
                license_params={"sku_type": "free"},
                capabilities=["xen-3.0-x86_64", "hvm-3.0-x86_64"],
            ),
        )
        hosts[h.name] = ref
        dom0_mem = int(h.dom0_memory_gib * GiB)
        dom0_metrics = db.create(
            "VM_metrics",
            new_record(
                "VM_metrics",
                memory_actual=dom0_mem,
                VCPUs_number=4,
                start_time=boot,
                hvm=False,
                current_domain_type="pv",
            ),
        )
        dom0 = db.create(
            "VM",
            new_record(
                "VM",
                name_label=f"Control domain on host: {h.name}",
                name_description="The domain which manages physical devices and manages other domains",
                power_state="Running",
                is_control_domain=True,
                resident_on=ref,
                affinity=ref,
                domid=0,
                memory_static_max=dom0_mem,
                memory_dynamic_max=dom0_mem,
                memory_dynamic_min=dom0_mem,
                memory_static_min=dom0_mem,
                memory_target=dom0_mem,
                VCPUs_max=4,
                VCPUs_at_startup=4,
                metrics=dom0_metrics,
                domain_type="pv",
                HVM_boot_policy="",
                HVM_boot_params={},
                other_config={"storage_driver_domain": "OpaqueRef:NULL", "is_system_domain": "true"},
            ),
        )
        db.set("host", ref, control_domain=dom0)
        lists[("host", ref, "resident_VMs")].append(dom0)
        create_host_cpus(db, ref, h.cpus)
        create_console(db, dom0)
    master = hosts[master_name]

    srs: dict[str, str] = {}
    for s in sc.srs:
        size = int(s.size_gib * GiB)
        ref = db.create(
            "SR",
            new_record(
                "SR",
                name_label=s.name,
                type=s.type,
                shared=s.shared,
                content_type=s.content_type,
                physical_size=size,
                sm_config=sr_sm_config(s.type),
                other_config={"auto-scan": "true"} if s.type == "iso" else {},
            ),
        )
        srs[s.name] = ref
        seen_by = list(hosts.values()) if s.shared or s.host is None else [hosts[s.host]]
        for host in seen_by:
            other: dict[str, str] = {}
            if s.type == "lvmoiscsi":
                config = dict(ISCSI_DEVICE_CONFIG)
                other = {"iscsi_sessions": "1"}  # BaseISCSI.attach: the sessions to the target
            elif s.type == "iso":
                config = {"location": "/var/opt/xen/iso_import", "legacy_mode": "true"}
            else:
                config = {"device": "/dev/sda3"}
            pbd = db.create("PBD", new_record("PBD", host=host, SR=ref, device_config=config, other_config=other))
            lists[("SR", ref, "PBDs")].append(pbd)
            lists[("host", host, "PBDs")].append(pbd)

    nets: dict[str, str] = {}
    for n in sc.networks:
        ref = db.create(
            "network",
            new_record(
                "network",
                name_label=n.name,
                bridge=n.bridge,
                other_config={"automatic": "true"} if not n.management else {},
            ),
        )
        nets[n.name] = ref
        for h in sc.hosts:
            host = hosts[h.name]
            pif = db.create(
                "PIF",
                new_record(
                    "PIF",
                    device=n.device,
                    network=ref,
                    host=host,
                    MAC=_mac(f"{h.name}/{n.device}"),
                    management=n.management,
                    IP=h.address if n.management else "",
                    netmask="255.0.0.0" if n.management else "",
                    ip_configuration_mode="Static" if n.management else "None",
                ),
            )
            lists[("network", ref, "PIFs")].append(pif)
            lists[("host", host, "PIFs")].append(pif)
    db.create(
        "network",
        new_record(
            "network",
            name_label="Host internal management network",
            bridge="xenapi",
            other_config={"is_guest_installer_network": "true", "is_host_internal_management_network": "true"},
        ),
    )

    guests: dict[str, Guest] = {}
    vm_refs = [_build_vm(db, v, hosts, srs, nets, lists, guests, stamp) for v in sc.vms]
    vm_refs += [_build_template(db, name, kind) for name, kind in DEFAULT_TEMPLATES]

    sr_usage: dict[str, tuple[int, int]] = defaultdict(lambda: (0, 0))
    for (cls, ref, field), items in lists.items():
        db.set(cls, ref, **{field: items})
        if cls == "SR" and field == "VDIs":
            for vdi in items:
                rec = db.get("VDI", vdi)
                virt, phys = sr_usage[ref]
                sr_usage[ref] = (virt + rec["virtual_size"], phys + rec["physical_utilisation"])
    for sr, (virt, phys) in sr_usage.items():
        db.set("SR", sr, virtual_allocation=virt, physical_utilisation=phys)
    default_sr = srs.get(sc.default_sr or "", NULL_REF)
    db.create(
        "pool",
        new_record(
            "pool",
            name_label=sc.pool,
            master=master,
            default_SR=default_sr,
            suspend_image_SR=default_sr,
            crash_dump_SR=default_sr,
            cpu_info=db.get("host", master)["cpu_info"],
        ),
    )
    for vm in vm_refs:
        if db.get("VM", vm)["power_state"] in ("Running", "Paused"):
            create_console(db, vm)
    for vm in [*vm_refs, *(db.get("host", h)["control_domain"] for h in hosts.values())]:
        lifecycle.update_allowed(db, vm)
    for host in hosts.values():
        host_lifecycle.update_allowed(db, host)
    # last, so the uuids of everything above stay what a seeded build always gave them
    for name, host in hosts.items():
        certs.add_host_certificates(db, host, name)
    return Built(master, hosts, guests)


def _build_vm(
    db: Database,
    v: VMSpec,
    hosts: dict[str, str],
    srs: dict[str, str],
    nets: dict[str, str],
    lists: dict[tuple[str, str, str], list[str]],
    guests: dict[str, Guest],
    stamp: datetime,
) -> str:
    memory = int(v.memory_gib * GiB)
    running = v.power_state in ("Running", "Paused")
    host = hosts[v.host] if v.host else NULL_REF
    metrics = db.create(
        "VM_metrics",
        new_record(
            "VM_metrics",
            memory_actual=memory if running else 0,
            VCPUs_number=v.vcpus if running else 0,
            VCPUs_utilisation={str(i): 0.02 for i in range(v.vcpus)} if running else {},
            start_time=stamp - timedelta(hours=30) if running else schema.EPOCH,
            install_time=stamp - timedelta(days=90),
            last_updated=stamp,
            state=[v.power_state.lower()] if running else [],
            current_domain_type="hvm",
        ),
    )
    guest = Guest(v.ip, v.os)
    gm = (
        db.create("VM_guest_metrics", new_record("VM_guest_metrics", **guest.metrics_fields(stamp)))
        if running
        else NULL_REF
    )
    ref = db.create(
        "VM",
        new_record(
            "VM",
            name_label=v.name,
            name_description=f"{v.os}",
            power_state=v.power_state,
            resident_on=host if running else NULL_REF,
            affinity=host,
            memory_overhead=_overhead(memory),
            memory_target=memory,
            memory_static_max=memory,
            memory_dynamic_max=memory,
            memory_dynamic_min=memory,
            memory_static_min=min(memory, 512 * MiB),
            VCPUs_max=v.vcpus,
            VCPUs_at_startup=v.vcpus,
            domid=next_domid() if running else -1,
            metrics=metrics,
            guest_metrics=gm,
            platform={
                "acpi": "1",
                "apic": "true",
                "pae": "true",
                "viridian": "false",
                "nx": "true",
                "device-model": "qemu-upstream-compat",
            },
            other_config={"base_template_name": "Other install media", "mac_seed": _mac(v.name)[3:]},
        ),
    )
    guests[ref] = guest
    if running:
        lists[("host", host, "resident_VMs")].append(ref)
    vbds = lists[("VM", ref, "VBDs")]
    for i, d in enumerate(v.disks):
        size = int(d.size_gib * GiB)
        sr = srs[d.sr]
        vdi = db.create(
            "VDI",
            new_record(
                "VDI",
                name_label=d.name or f"{v.name} disk {i}",
                SR=sr,
                virtual_size=size,
                physical_utilisation=size,
                type="system" if i == 0 else "user",
                location=f"{ref[10:18]}-disk{i}",
            ),
        )
        vbd = db.create(
            "VBD",
            new_record(
                "VBD",
                VM=ref,
                VDI=vdi,
                device=f"xvd{'abcefgh'[i % 7]}",
                userdevice=str(i if i < 3 else i + 1),
                bootable=i == 0,
                currently_attached=running,
            ),
        )
        db.set("VDI", vdi, VBDs=[vbd])
        lists[("SR", sr, "VDIs")].append(vdi)
        vbds.append(vbd)
    cd = db.create(
        "VBD",
        new_record(
            "VBD",
            VM=ref,
            VDI=NULL_REF,
            device="xvdd",
            userdevice="3",
            mode="RO",
            type="CD",
            empty=True,
            unpluggable=True,
        ),
    )
    vbds.append(cd)
    for i, n in enumerate(v.networks):
        vif = db.create(
            "VIF",
            new_record(
                "VIF", VM=ref, network=nets[n], device=str(i), MAC=_mac(f"{v.name}/{i}"), currently_attached=running
            ),
        )
        lists[("VM", ref, "VIFs")].append(vif)
        lists[("network", nets[n], "VIFs")].append(vif)
    return ref


def _build_template(db: Database, name: str, kind: str) -> str:
    memory = (4 if kind == "windows" else 2) * GiB
    other = {"default_template": "true", "install-methods": "cdrom,nfs,http,ftp" if kind == "linux" else "cdrom"}
    if kind == "linux":
        other["linux_template"] = "true"
    return db.create(
        "VM",
        new_record(
            "VM",
            name_label=name,
            name_description="Template which allows VM installation from install media",
            is_a_template=True,
            is_default_template=True,
            memory_static_max=memory,
            memory_dynamic_max=memory,
            memory_dynamic_min=memory,
            memory_static_min=min(memory, 1 * GiB),
            memory_target=memory,
            memory_overhead=_overhead(memory),
            VCPUs_max=2,
            VCPUs_at_startup=2,
            other_config=other,
            platform={"device-model": "qemu-upstream-compat", "viridian": "true" if kind == "windows" else "false"},
            HVM_boot_params={"order": "cdn"},
        ),
    )
