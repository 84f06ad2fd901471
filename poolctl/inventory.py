"""One in-memory store per pool, fed by a snapshot and then by changes.

``apply`` is the only writer. The store never calls the screen: the caller decides
what to redraw from what ``apply`` returns. Not thread-safe by design: feed it from
one thread (the UI loop, through messages).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from poolctl.model import (
    VM,
    Change,
    Host,
    Inventory,
    InventoryObject,
    Network,
    ObjectKind,
    Pool,
    StorageRepository,
)

_KIND_OF = {Pool: "pool", Host: "host", StorageRepository: "sr", Network: "network", VM: "vm"}

Keyed = Mapping[tuple[ObjectKind, str], InventoryObject]


def keyed(inventory: Inventory) -> dict[tuple[ObjectKind, str], InventoryObject]:
    """Every object of a snapshot under its (kind, ref): the form ``diff`` compares."""
    out: dict[tuple[ObjectKind, str], InventoryObject] = {("pool", inventory.pool.ref): inventory.pool}
    for kind, objects in (
        ("host", inventory.hosts),
        ("sr", inventory.srs),
        ("network", inventory.networks),
        ("vm", inventory.vms),
    ):
        for obj in objects:
            out[(kind, obj.ref)] = obj  # type: ignore[index]
    return out


def diff(old: Keyed, new: Keyed) -> list[Change]:
    """The changes that turn ``old`` into ``new``: what a backend delivers after a re-read."""
    changes = []
    for key, obj in new.items():
        before = old.get(key)
        if before is None:
            changes.append(Change(kind="added", object_kind=key[0], ref=key[1], obj=obj))
        elif before != obj:
            changes.append(Change(kind="modified", object_kind=key[0], ref=key[1], obj=obj))
    for key in old.keys() - new.keys():
        changes.append(Change(kind="removed", object_kind=key[0], ref=key[1]))
    return changes


class InventoryStore:
    def __init__(self, snapshot: Inventory):
        self.pool: Pool = snapshot.pool
        self.hosts: dict[str, Host] = {h.ref: h for h in snapshot.hosts}
        self.srs: dict[str, StorageRepository] = {s.ref: s for s in snapshot.srs}
        self.networks: dict[str, Network] = {n.ref: n for n in snapshot.networks}
        self.vms: dict[str, VM] = {v.ref: v for v in snapshot.vms}
        self._vms_by_host: dict[str | None, set[str]] = defaultdict(set)
        for vm in self.vms.values():
            self._vms_by_host[vm.host].add(vm.ref)
        # VMs whose disks and nics are still being read (a staged load): see ``devices_pending``
        self._pending_devices = {v.ref for v in self.vms.values() if not v.devices_known}
        # Bumped on every applied change: cheap "anything new?" checks for views.
        self.version = 0

    def _table(self, kind: ObjectKind) -> dict[str, Any]:
        # Any: each table holds one kind of record; ``apply`` checks a record's kind before storing it.
        tables: dict[ObjectKind, dict[str, Any]] = {
            "host": self.hosts,
            "sr": self.srs,
            "network": self.networks,
            "vm": self.vms,
        }
        return tables[kind]

    def apply(self, change: Change) -> Change | None:
        """Apply one change; returns it, or ``None`` when it changed nothing."""
        if change.object_kind == "pool":
            if change.kind == "removed" or not isinstance(change.obj, Pool) or change.obj == self.pool:
                return None
            self.pool = change.obj
            self.version += 1
            return change
        table = self._table(change.object_kind)
        old = table.get(change.ref)
        if change.kind == "removed":
            if old is None:
                return None
            del table[change.ref]
            if isinstance(old, VM):
                self._vms_by_host[old.host].discard(old.ref)
                self._pending_devices.discard(old.ref)
        else:
            new = change.obj
            if new is None or _KIND_OF.get(type(new)) != change.object_kind:
                raise ValueError(f"change for {change.object_kind} {change.ref} carries {type(new).__name__}")
            if old == new:
                return None
            table[change.ref] = new
            if isinstance(new, VM):
                if isinstance(old, VM):
                    self._vms_by_host[old.host].discard(old.ref)
                self._vms_by_host[new.host].add(new.ref)
                if new.devices_known:
                    self._pending_devices.discard(new.ref)
                else:
                    self._pending_devices.add(new.ref)
        self.version += 1
        return change

    @property
    def devices_pending(self) -> bool:
        """Some VMs' disks and nics are still being read (``VM.devices_known`` False)."""
        return bool(self._pending_devices)

    def vm_count(self, host: str | None) -> int:
        return len(self._vms_by_host.get(host, ()))

    def name_of(self, ref: str | None) -> str:
        """A display name for any ref in the store, or the ref itself when unknown."""
        if ref is None:
            return ""
        for table in (self.hosts, self.srs, self.networks, self.vms):
            obj = table.get(ref)
            if obj is not None:
                return obj.name
        return ref

    def snapshot(self) -> Inventory:
        return Inventory(
            pool=self.pool,
            hosts=tuple(self.hosts.values()),
            srs=tuple(self.srs.values()),
            networks=tuple(self.networks.values()),
            vms=tuple(self.vms.values()),
        )
