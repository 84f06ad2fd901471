"""XAPI records (as ``get_all_records`` and ``event.from`` deliver them) -> ``poolctl.model``.

Over XML-RPC XAPI sends 64-bit integers as strings and references as
``OpaqueRef:...`` strings, ``OpaqueRef:NULL`` meaning none.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any, TypeGuard

from poolctl.backends.xen.maintenance import evacuated, in_maintenance
from poolctl.model import (
    VM,
    Disk,
    Host,
    Inventory,
    InventoryObject,
    Network,
    Nic,
    ObjectKind,
    Pool,
    PowerState,
    StorageRepository,
)

NULL = "OpaqueRef:NULL"

# lowercase name (as event.from reports classes) -> API class name; only what the models read
CLASSES = {
    "pool": "pool",
    "host": "host",
    "host_metrics": "host_metrics",
    "sr": "SR",
    "pbd": "PBD",
    "vdi": "VDI",
    "vbd": "VBD",
    "vm": "VM",
    "vm_guest_metrics": "VM_guest_metrics",
    "vif": "VIF",
    "network": "network",
    "pif": "PIF",
}

# The fields this module, ``affected`` and the migration pre-checks read. Records are cut down to
# these as they arrive: a full VM record is ~100 fields, and at 10,000 VMs the full records of
# every class would take ~700 MB. A field read anywhere in the backend must be listed here
# (tests/backends/xen/test_unmarshal.py checks records cut as they arrive equal the cut of full ones).
FIELDS: dict[str, tuple[str, ...]] = {
    "pool": ("name_label", "name_description", "master"),
    "host": (
        "uuid",
        "name_label",
        "hostname",
        "address",
        "enabled",
        "metrics",
        "cpu_info",
        "software_version",
        "other_config",  # XenCenter's maintenance-mode keys (maintenance.py)
    ),
    "host_metrics": ("live", "memory_total", "memory_free"),
    "sr": ("uuid", "name_label", "type", "shared", "physical_size", "physical_utilisation", "content_type"),
    "pbd": ("SR", "host", "currently_attached"),
    "vdi": ("name_label", "virtual_size", "SR"),
    "vbd": ("VM", "VDI", "type", "empty", "userdevice", "device"),
    "vm": (
        "uuid",
        "name_label",
        "name_description",
        "power_state",
        "resident_on",
        "guest_metrics",
        "memory_static_max",
        "memory_dynamic_max",
        "VCPUs_at_startup",
        "VCPUs_max",
        "allowed_operations",
        "current_operations",
        "is_a_template",
        "is_a_snapshot",
        "is_control_domain",
        "VBDs",
        "VIFs",
    ),
    "vm_guest_metrics": ("networks",),
    "vif": ("VM", "device", "MAC", "network"),
    "network": ("name_label", "bridge"),
    "pif": ("network", "host"),
}

Record = dict[str, Any]  # one XAPI record: field -> value as the wire sent it (strings, ints, refs, maps)
Raw = dict[str, dict[str, Record]]  # lowercase class -> ref -> record (cut to FIELDS)

# Read only for a VM's disks and nics, which no list shows: a staged load reads them after the
# first paint (at 10,000 VMs they are ~60 % of the records by size).
DEVICES = ("vbd", "vdi", "vif")


def project(cls: str, rec: Record) -> Record:
    """``rec`` cut down to the fields poolctl reads."""
    return {k: rec[k] for k in FIELDS[cls] if k in rec}


def project_all(cls: str, records: dict[str, Record]) -> dict[str, Record]:
    fields = FIELDS[cls]
    return {ref: {k: rec[k] for k in fields if k in rec} for ref, rec in records.items()}


_POWER = {
    "running": PowerState.RUNNING,
    "halted": PowerState.HALTED,
    "paused": PowerState.PAUSED,
    "suspended": PowerState.SUSPENDED,
}


def to_int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return int(float(value))
        except (TypeError, ValueError):
            return 0


def is_ref(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and value.startswith("OpaqueRef:") and value != NULL


def power_state(value: object) -> PowerState:
    return _POWER.get(str(value).lower(), PowerState.UNKNOWN)


def name_in(raw: Raw, ref: str) -> str | None:
    """The display name of ``ref`` from whichever table of ``raw`` holds it (the ref itself when
    unnamed); None when no table does, so that a caller can look further."""
    for table in raw.values():
        rec = table.get(ref)
        if rec is not None:
            return rec.get("name_label") or ref
    return None


def is_user_vm(rec: Record) -> bool:
    return not (rec.get("is_a_template") or rec.get("is_a_snapshot") or rec.get("is_control_domain"))


def software_version(sv: Record | None) -> str:
    sv = sv or {}
    for brand, version in (("product_brand", "product_version"), ("platform_name", "platform_version")):
        if sv.get(version):
            return f"{sv.get(brand, '')} {sv[version]}".strip()
    return f"xapi {sv['xapi']}" if sv.get("xapi") else ""


def _vbd_order(vbd: Record) -> tuple[int, str]:
    return (to_int(vbd.get("userdevice")), vbd.get("device", ""))


def _ip_order(key: str) -> tuple[int, int, int, str]:
    # "0/ip", "0/ipv4/0", "0/ipv6/1": device first, then the legacy key, then v4, then v6
    parts = key.split("/")
    dev = to_int(parts[0]) if parts[0].isdigit() else 1 << 30
    family = {"ip": 0, "ipv4": 1, "ipv6": 2}.get(parts[1] if len(parts) > 1 else "", 3)
    idx = to_int(parts[2]) if len(parts) > 2 else 0
    return (dev, family, idx, key)


def guest_ips(networks: dict[str, Any]) -> tuple[str, ...]:
    if not networks:
        return ()
    if len(networks) == 1:
        ip = str(next(iter(networks.values()))).strip()
        return (ip,) if ip else ()
    out: list[str] = []
    for key in sorted(networks or {}, key=_ip_order):
        ip = str(networks[key]).strip()
        if ip and ip not in out:
            out.append(ip)
    return tuple(out)


# (model kind, record class) of the kinds with one model per record, besides the pool
_TABLES: tuple[tuple[ObjectKind, str], ...] = (("host", "host"), ("sr", "sr"), ("network", "network"), ("vm", "vm"))
# the classes whose change touches only their own model (see affected)
_OWN_KIND: dict[str, ObjectKind] = {"sr": "sr", "network": "network", "vm": "vm"}


class Translator:
    """Builds models from one consistent set of raw records (with reverse indexes)."""

    def __init__(self, raw: Raw, backend: str = "xen", pool_name: str = ""):
        self.raw = raw
        self.backend = backend
        self.pool_name = pool_name
        self.pbds_by_sr: dict[str, list[Record]] = defaultdict(list)
        for pbd in raw.get("pbd", {}).values():
            self.pbds_by_sr[pbd.get("SR", NULL)].append(pbd)
        self.vbds_by_vm: dict[str, list[Record]] = defaultdict(list)
        for vbd in raw.get("vbd", {}).values():
            self.vbds_by_vm[vbd.get("VM", NULL)].append(vbd)
        self.vifs_by_vm: dict[str, list[Record]] = defaultdict(list)
        for vif in raw.get("vif", {}).values():
            self.vifs_by_vm[vif.get("VM", NULL)].append(vif)
        self.pifs_by_network: dict[str, list[Record]] = defaultdict(list)
        for pif in raw.get("pif", {}).values():
            self.pifs_by_network[pif.get("network", NULL)].append(pif)
        # a staged load reads VBDs, VDIs and VIFs last (DEVICES): until then, no class
        # table for them, and VMs say their devices are not known yet
        self.devices_known = all(c in raw for c in DEVICES)
        # the tables vm() reads 10,000 times, looked up once
        self._vdis = raw.get("vdi") or {}
        self._srs = raw.get("sr") or {}
        self._networks = raw.get("network") or {}
        self._guest_metrics = raw.get("vm_guest_metrics") or {}

    def _get(self, cls: str, ref: object) -> Record | None:
        return self.raw.get(cls, {}).get(ref) if is_ref(ref) else None

    # -- one object each ------------------------------------------------------------

    def pool(self) -> Pool | None:
        pools = self.raw.get("pool", {})
        if not pools:
            return None
        ref, rec = next(iter(pools.items()))
        master = rec.get("master")
        name = rec.get("name_label") or ""
        if not name:  # XAPI tools show the master's name for an unnamed pool
            host = self._get("host", master)
            name = (host or {}).get("name_label") or self.pool_name or ref
        return Pool(
            ref=ref,
            name=name,
            backend=self.backend,
            master=master if is_ref(master) else None,
            description=rec.get("name_description") or "",
        )

    def master(self) -> str | None:
        pool = next(iter(self.raw.get("pool", {}).values()), None)
        master = (pool or {}).get("master")
        return master if is_ref(master) else None

    def host(self, ref: str) -> Host | None:
        rec = self.raw.get("host", {}).get(ref)
        if rec is None:
            return None
        metrics = self._get("host_metrics", rec.get("metrics")) or {}
        cpu = rec.get("cpu_info") or {}
        return Host(
            ref=ref,
            name=rec.get("name_label") or rec.get("hostname") or ref,
            uuid=rec.get("uuid") or "",
            address=rec.get("address") or "",
            enabled=bool(rec.get("enabled", True)),
            maintenance=in_maintenance(rec.get("other_config")),
            evacuated=evacuated(rec.get("other_config")),
            live=bool(metrics.get("live", True)),
            memory_total=to_int(metrics.get("memory_total")),
            memory_free=to_int(metrics.get("memory_free")),
            cpu_vendor=cpu.get("vendor", ""),
            cpu_model=cpu.get("modelname", ""),
            cpu_count=to_int(cpu.get("cpu_count")),
            software_version=software_version(rec.get("software_version") or {}),
            is_master=ref == self.master(),
        )

    def sr_hosts(self, ref: str) -> tuple[str, ...]:
        hosts = {p.get("host") for p in self.pbds_by_sr.get(ref, ()) if p.get("currently_attached")}
        return tuple(sorted(h for h in hosts if is_ref(h)))

    def sr(self, ref: str) -> StorageRepository | None:
        rec = self.raw.get("sr", {}).get(ref)
        if rec is None:
            return None
        return StorageRepository(
            ref=ref,
            name=rec.get("name_label") or ref,
            type=rec.get("type") or "",
            shared=bool(rec.get("shared", False)),
            size=to_int(rec.get("physical_size")),
            used=to_int(rec.get("physical_utilisation")),
            hosts=self.sr_hosts(ref),
            content_type=rec.get("content_type") or "",
            uuid=str(rec.get("uuid") or ""),
        )

    def network_hosts(self, ref: str) -> tuple[str, ...]:
        hosts = {p.get("host") for p in self.pifs_by_network.get(ref, ())}
        return tuple(sorted(h for h in hosts if is_ref(h)))

    def network(self, ref: str) -> Network | None:
        rec = self.raw.get("network", {}).get(ref)
        if rec is None:
            return None
        return Network(
            ref=ref,
            name=rec.get("name_label") or ref,
            bridge=rec.get("bridge") or "",
            hosts=self.network_hosts(ref),
        )

    def disks(self, vm_ref: str) -> tuple[Disk, ...]:
        vbds = self.vbds_by_vm.get(vm_ref)
        if not vbds:
            return ()
        if len(vbds) > 1:
            vbds = sorted(vbds, key=_vbd_order)
        vdis, srs = self._vdis, self._srs
        out = []
        for vbd in vbds:
            kind = str(vbd.get("type", "")).lower()
            if kind not in ("disk", "cd"):
                continue
            vdi_ref = vbd.get("VDI")
            vdi = None if vbd.get("empty") or not is_ref(vdi_ref) else vdis.get(vdi_ref)
            cdrom = kind == "cd"
            if vdi is not None:
                name = vdi.get("name_label") or ("CD" if cdrom else "disk")
                sr = vdi.get("SR")
                size = to_int(vdi.get("virtual_size"))
            else:
                name = "empty CD drive" if cdrom else "disk"
                sr = None
                size = 0
            out.append(
                Disk(
                    name=name,
                    device=vbd.get("device") or str(vbd.get("userdevice", "")),
                    size=size,
                    sr=sr if is_ref(sr) and sr in srs else None,
                    cdrom=cdrom,
                )
            )
        return tuple(out)

    def nics(self, vm_ref: str) -> tuple[Nic, ...]:
        vifs = self.vifs_by_vm.get(vm_ref)
        if not vifs:
            return ()
        if len(vifs) > 1:
            vifs = sorted(vifs, key=lambda v: to_int(v.get("device")))
        networks = self._networks
        return tuple(
            Nic(
                device=str(v.get("device", "")),
                mac=v.get("MAC", ""),
                network=v.get("network") if v.get("network") in networks else None,
            )
            for v in vifs
        )

    def vm(self, ref: str) -> VM | None:
        rec = self.raw.get("vm", {}).get(ref)
        if rec is None or not is_user_vm(rec):
            return None
        state = power_state(rec.get("power_state"))
        resident = rec.get("resident_on")
        on_host = state in (PowerState.RUNNING, PowerState.PAUSED) and is_ref(resident)
        gm_ref = rec.get("guest_metrics")
        gm = (self._guest_metrics.get(gm_ref) if is_ref(gm_ref) else None) or {}
        memory = to_int(rec.get("memory_static_max")) or to_int(rec.get("memory_dynamic_max"))
        return VM(
            ref=ref,
            uuid=rec.get("uuid", ""),
            name=rec.get("name_label") or rec.get("uuid") or ref,
            power_state=state,
            host=resident if on_host else None,
            vcpus=to_int(rec.get("VCPUs_at_startup")) or to_int(rec.get("VCPUs_max")),
            memory=memory,
            ips=guest_ips(gm.get("networks") or {}),
            disks=self.disks(ref),
            nics=self.nics(ref),
            allowed_operations=tuple(sorted(rec.get("allowed_operations") or ())),
            current_operations=tuple(sorted(set((rec.get("current_operations") or {}).values()))),
            description=rec.get("name_description") or "",
            devices_known=self.devices_known,
        )

    # -- everything -------------------------------------------------------------------

    def build(self, kind: ObjectKind, ref: str) -> InventoryObject | None:
        if kind == "pool":
            return self.pool()
        return {"host": self.host, "sr": self.sr, "network": self.network, "vm": self.vm}[kind](ref)

    def keys(self) -> Iterator[tuple[ObjectKind, str]]:
        for ref in self.raw.get("pool", {}):
            yield "pool", ref
        for kind, cls in _TABLES:
            for ref in self.raw.get(cls, {}):
                yield kind, ref

    def models(self) -> dict[tuple[ObjectKind, str], InventoryObject]:
        out: dict[tuple[ObjectKind, str], InventoryObject] = {}
        for kind, ref in self.keys():
            obj = self.build(kind, ref)
            if obj is not None:
                out[(kind, ref)] = obj
        return out

    def inventory(self, models: dict[tuple[ObjectKind, str], InventoryObject] | None = None) -> Inventory:
        """The snapshot; pass ``models()`` when you have it already (building 10,000 VMs takes time)."""
        pool = self.pool()
        if pool is None:
            raise ValueError("XAPI returned no pool object")
        if models is None:
            models = self.models()

        def pick(kind: ObjectKind) -> tuple[Any, ...]:  # a key's kind says its model's class
            return tuple(m for (k, _), m in models.items() if k == kind)

        return Inventory(pool=pool, hosts=pick("host"), srs=pick("sr"), networks=pick("network"), vms=pick("vm"))


def affected(raw: Raw, cls: str, ref: str, old: Record | None, new: Record | None) -> set[tuple[ObjectKind, str]]:
    """Model keys whose content may change when record ``ref`` of ``cls`` goes old -> new."""
    recs = [r for r in (old, new) if r]
    out: set[tuple[ObjectKind, object]] = set()  # refs as the records hold them: checked at the end
    if cls == "pool":
        out.add(("pool", ref))
        out |= {("host", h) for h in raw.get("host", {})}  # is_master may move
    elif cls == "host":
        out.add(("host", ref))
        out |= {("pool", p) for p in raw.get("pool", {})}  # unnamed pools show the master's name
    elif cls == "host_metrics":
        out |= {("host", h) for h, r in raw.get("host", {}).items() if r.get("metrics") == ref}
    elif cls in _OWN_KIND:
        out.add((_OWN_KIND[cls], ref))
    elif cls == "pbd":
        out |= {("sr", r.get("SR")) for r in recs}
    elif cls == "pif":
        out |= {("network", r.get("network")) for r in recs}
    elif cls in ("vbd", "vif"):
        out |= {("vm", r.get("VM")) for r in recs}
    elif cls == "vdi":
        out |= {("vm", v.get("VM")) for v in raw.get("vbd", {}).values() if v.get("VDI") == ref}
    elif cls == "vm_guest_metrics":
        out |= {("vm", v) for v, r in raw.get("vm", {}).items() if r.get("guest_metrics") == ref}
    return {(k, r) for k, r in out if is_ref(r)}
