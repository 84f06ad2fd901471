"""Host memory accounting: what resident VMs use, what is reserved for starts/migrations in flight,
and the memory_free that host_metrics reports (and HOST_NOT_ENOUGH_FREE_MEMORY quotes)."""

from __future__ import annotations

import threading

from .db import NULL_REF, Database
from .schema import Record


def vm_needs(vm: Record) -> int:
    """Memory a VM needs to boot on a host: xapi_vm_helpers.assert_enough_memory_available's
    policy, the dynamic minimum (the balloon can shrink it that far) except for pv_in_pvh
    guests, which need static_max; plus the VM's overhead (Memory_check.vm_compute_start_memory)."""
    main = vm["memory_static_max"] if vm["domain_type"] == "pv_in_pvh" else vm["memory_dynamic_min"]
    return int(main) + int(vm["memory_overhead"])


def vm_uses(vm: Record) -> int:
    return int(vm["memory_target"]) + int(vm["memory_overhead"])


class Memory:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._reserved: dict[str, dict[str, int]] = {}  # host -> {vm: bytes}
        self._lock = threading.RLock()

    def free(self, host: str) -> int:
        with self.db.lock:
            h = self.db.get("host", host)
            total: int = self.db.get("host_metrics", h["metrics"])["memory_total"]
            used = int(h["memory_overhead"])
            vms = self.db.tables["VM"]
            for vm in h["resident_VMs"]:
                rec = vms.get(vm)
                if rec is not None:
                    used += vm_uses(rec)
            with self._lock:
                used += sum(self._reserved.get(host, {}).values())
            return total - used

    def refresh(self, host: str) -> None:
        if host == NULL_REF or not self.db.exists("host", host):
            return
        with self.db.lock:
            metrics = self.db.get("host", host)["metrics"]
            self.db.set("host_metrics", metrics, memory_free=max(self.free(host), 0))

    def reserve(self, host: str, vm: str, amount: int) -> None:
        with self._lock:
            self._reserved.setdefault(host, {})[vm] = amount
        self.refresh(host)

    def release(self, host: str, vm: str, refresh: bool = True) -> None:
        """Drop a reservation; refresh=False when the caller makes the VM resident in the same
        locked step (so memory_free never shows the VM counted twice)."""
        with self._lock:
            self._reserved.get(host, {}).pop(vm, None)
        if refresh:
            self.refresh(host)
