"""`poolctl ls`: one snapshot of each selected pool, printed as a table or as JSON.

Pools are fetched in parallel (each is a few network round trips) and printed in
config order; a pool that fails is named on stderr and the others still print.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TextIO

from poolctl import backends
from poolctl.backends.base import AuthenticationError, BackendError
from poolctl.config import ConfigError, PoolConfig
from poolctl.format import host_state, size
from poolctl.model import Inventory

EXIT_OK, EXIT_POOL_FAILED, EXIT_AUTH, EXIT_NO_MATCH = 0, 1, 3, 4

Row = dict[str, object]


def fetch(pool: PoolConfig) -> Inventory:
    backend = backends.load(pool.backend)(pool)
    try:
        backend.connect()
        return backend.inventory()
    finally:
        try:
            backend.close()
        except (BackendError, OSError):
            pass  # the snapshot (or the first error) is what matters


def run_ls(
    pools: Sequence[PoolConfig],
    *,
    kind: str = "vms",
    only: Sequence[str] | None = None,
    as_json: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    if only:
        names = {p.name for p in pools}
        unknown = [n for n in only if n not in names]
        if unknown:
            known = ", ".join(p.name for p in pools) or "none"
            print(f"poolctl: no pool named {', '.join(map(repr, unknown))}; pools: {known}", file=err)
            return EXIT_NO_MATCH
        pools = [p for p in pools if p.name in only]
    code = EXIT_OK
    rows: list[Row] = []
    with ThreadPoolExecutor(max_workers=min(8, max(1, len(pools)))) as pool_exec:
        futures = [pool_exec.submit(fetch, p) for p in pools]
        for pool, future in zip(pools, futures):
            try:
                inv = future.result()
            except AuthenticationError as exc:
                print(f"poolctl: pool {pool.name!r} ({pool.backend}): {exc}", file=err)
                code = EXIT_AUTH
                continue
            except (BackendError, ConfigError, OSError) as exc:
                print(f"poolctl: pool {pool.name!r} ({pool.backend}): {exc}", file=err)
                code = max(code, EXIT_POOL_FAILED)
                continue
            rows.extend(sorted(ROWS[kind](inv, pool.name), key=lambda r: str(r["name"]).lower()))
    if as_json:
        json.dump(rows, out, indent=2)
        out.write("\n")
    else:
        out.write(render_table(rows, COLUMNS[kind]))
    return code


def _host_names(inv: Inventory) -> dict[str, str]:
    return {h.ref: h.name for h in inv.hosts}


def vm_rows(inv: Inventory, pool: str) -> list[Row]:
    hosts = _host_names(inv)
    return [
        {
            "name": vm.name,
            "power_state": vm.power_state.value,
            "host": hosts.get(vm.host, vm.host) if vm.host else None,
            "vcpus": vm.vcpus,
            "memory": vm.memory,
            "ips": list(vm.ips),
            "pool": pool,
            "ref": vm.ref,
            "uuid": vm.uuid,
            "host_ref": vm.host,
        }
        for vm in inv.vms
    ]


def host_rows(inv: Inventory, pool: str) -> list[Row]:
    resident: dict[str, int] = {}
    for vm in inv.vms:
        if vm.host:
            resident[vm.host] = resident.get(vm.host, 0) + 1
    return [
        {
            "name": h.name,
            "state": host_state(h),
            "master": h.is_master,
            "address": h.address,
            "cpus": h.cpu_count,
            "memory_total": h.memory_total,
            "memory_free": h.memory_free,
            "vms": resident.get(h.ref, 0),
            "pool": pool,
            "ref": h.ref,
            "enabled": h.enabled,
            "live": h.live,
            "software_version": h.software_version,
        }
        for h in inv.hosts
    ]


def sr_rows(inv: Inventory, pool: str) -> list[Row]:
    hosts = _host_names(inv)
    return [
        {
            "name": sr.name,
            "type": sr.type,
            "shared": sr.shared,
            "size": sr.size,
            "used": sr.used,
            "hosts": sorted(hosts.get(r, r) for r in sr.hosts),
            "pool": pool,
            "ref": sr.ref,
            "content_type": sr.content_type,
            "host_refs": list(sr.hosts),
        }
        for sr in inv.srs
    ]


def network_rows(inv: Inventory, pool: str) -> list[Row]:
    hosts = _host_names(inv)
    return [
        {
            "name": n.name,
            "bridge": n.bridge,
            "hosts": sorted(hosts.get(r, r) for r in n.hosts),
            "pool": pool,
            "ref": n.ref,
            "host_refs": list(n.hosts),
        }
        for n in inv.networks
    ]


ROWS: dict[str, Callable[[Inventory, str], list[Row]]] = {
    "vms": vm_rows,
    "hosts": host_rows,
    "srs": sr_rows,
    "networks": network_rows,
}


def _names(value: object) -> str:
    return ", ".join(value) if isinstance(value, list) and value else "-"


def _yes(value: object) -> str:
    return "yes" if value else ""


# (heading, row key, formatter, right-aligned)
Column = tuple[str, str, Callable[[object], str], bool]
COLUMNS: dict[str, list[Column]] = {
    "vms": [
        ("NAME", "name", str, False),
        ("POWER", "power_state", str, False),
        ("HOST", "host", lambda v: v or "-", False),
        ("VCPUS", "vcpus", str, True),
        ("MEMORY", "memory", size, True),
        ("IPS", "ips", _names, False),
        ("POOL", "pool", str, False),
    ],
    "hosts": [
        ("NAME", "name", str, False),
        ("STATE", "state", str, False),
        ("MASTER", "master", _yes, False),
        ("ADDRESS", "address", lambda v: v or "-", False),
        ("CPUS", "cpus", str, True),
        ("MEMORY", "memory_total", size, True),
        ("FREE", "memory_free", size, True),
        ("VMS", "vms", str, True),
        ("POOL", "pool", str, False),
    ],
    "srs": [
        ("NAME", "name", str, False),
        ("TYPE", "type", str, False),
        ("SHARED", "shared", _yes, False),
        ("SIZE", "size", size, True),
        ("USED", "used", size, True),
        ("HOSTS", "hosts", _names, False),
        ("POOL", "pool", str, False),
    ],
    "networks": [
        ("NAME", "name", str, False),
        ("BRIDGE", "bridge", lambda v: v or "-", False),
        ("HOSTS", "hosts", _names, False),
        ("POOL", "pool", str, False),
    ],
}


def render_table(rows: list[Row], columns: list[Column]) -> str:
    cells = [[head for head, *_ in columns]]
    cells += [[fmt(row[key]) for _, key, fmt, _ in columns] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = []
    for r in cells:
        parts = [cell.rjust(w) if right else cell.ljust(w) for cell, w, (_, _, _, right) in zip(r, widths, columns)]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines) + "\n"
