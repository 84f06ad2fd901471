"""`poolctl ls`: one snapshot of each selected pool, printed as a table or as JSON.

Pools are loaded in parallel and printed in config order; a pool that fails is named on
stderr and the others still print (``poolctl.cli.pools``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from poolctl.cli.pools import loaded_pools
from poolctl.config import PoolConfig
from poolctl.errors import ExitCode
from poolctl.format import host_state, size
from poolctl.model import Inventory
from poolctl.safe_text import quoted, shown

Row = dict[str, object]


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
            asked = ", ".join(map(quoted, unknown))
            print(f"poolctl: no pool named {asked}; pools: {shown(known, None)}", file=err)
            return ExitCode.NO_MATCH
        pools = [p for p in pools if p.name in only]
    rows: list[Row] = []
    with loaded_pools(pools, err) as (loaded, code):
        any_loaded = bool(loaded)
        for pool in loaded:
            rows.extend(sorted(ROWS[kind](pool.inventory, pool.config.name), key=lambda r: str(r["name"]).lower()))
    if as_json:
        json.dump(rows, out, indent=2)
        out.write("\n")
    elif any_loaded:  # every pool failed: their errors say so, an empty header says nothing
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
            "uuid": h.uuid,
            "enabled": h.enabled,
            "maintenance": h.maintenance,
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


def _text(value: object) -> str:
    return str(value) if value else "-"


def _size(value: object) -> str:
    return size(value if isinstance(value, int) else None)


# (heading, row key, formatter, right-aligned)
Column = tuple[str, str, Callable[[object], str], bool]
COLUMNS: dict[str, list[Column]] = {
    "vms": [
        ("NAME", "name", str, False),
        ("POWER", "power_state", str, False),
        ("HOST", "host", _text, False),
        ("VCPUS", "vcpus", str, True),
        ("MEMORY", "memory", _size, True),
        ("IPS", "ips", _names, False),
        ("POOL", "pool", str, False),
    ],
    "hosts": [
        ("NAME", "name", str, False),
        ("STATE", "state", str, False),
        ("MASTER", "master", _yes, False),
        ("ADDRESS", "address", _text, False),
        ("CPUS", "cpus", str, True),
        ("MEMORY", "memory_total", _size, True),
        ("FREE", "memory_free", _size, True),
        ("VMS", "vms", str, True),
        ("POOL", "pool", str, False),
    ],
    "srs": [
        ("NAME", "name", str, False),
        ("TYPE", "type", str, False),
        ("SHARED", "shared", _yes, False),
        ("SIZE", "size", _size, True),
        ("USED", "used", _size, True),
        ("HOSTS", "hosts", _names, False),
        ("POOL", "pool", str, False),
    ],
    "networks": [
        ("NAME", "name", str, False),
        ("BRIDGE", "bridge", _text, False),
        ("HOSTS", "hosts", _names, False),
        ("POOL", "pool", str, False),
    ],
}


def render_table(rows: list[Row], columns: list[Column]) -> str:
    cells = [[head for head, *_ in columns]]
    # Every cell may hold a hypervisor's string: escaped and cut (the JSON keeps it exact).
    cells += [[shown(fmt(row[key])) for _, key, fmt, _ in columns] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = []
    for r in cells:
        parts = [cell.rjust(w) if right else cell.ljust(w) for cell, w, (_, _, _, right) in zip(r, widths, columns)]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines) + "\n"
