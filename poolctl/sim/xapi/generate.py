"""Big pools for benchmarks: N hosts, M VMs, built as a Scenario so it is validated like any other."""

from __future__ import annotations

from .scenario import Scenario, parse_scenario


def _address(prefix: int, index: int) -> str:
    """Loopback addresses 127.<prefix>.x.y for index 1..65000, skipping .0 and .255."""
    hi, lo = divmod(index - 1, 254)
    return f"127.{prefix}.{hi}.{lo + 1}" if prefix else f"127.0.{hi + 1}.{lo + 1}"


def generate_scenario(hosts: int, vms: int, running_fraction: float = 0.8) -> Scenario:
    if hosts < 1 or vms < 0:
        raise ValueError("need at least one host and a non-negative number of VMs")
    per_host = -(-vms // hosts) if vms else 0
    host_memory = max(64, 4 + per_host * 1.1 * 1.05)
    vm_specs: list[dict[str, object]] = []
    data: dict[str, object] = {
        "pool": f"bench-{hosts}x{vms}",
        "default_sr": "Shared storage",
        "hosts": [
            {
                "name": f"xcp-bench-{i:03d}",
                "address": _address(0, i),
                "memory_gib": round(host_memory, 1),
                "cpus": 32,
                "master": i == 1,
            }
            for i in range(1, hosts + 1)
        ],
        "srs": [{"name": "Shared storage", "type": "lvmoiscsi", "size_gib": max(4096, vms * 24)}]
        + [
            {
                "name": f"Local storage xcp-bench-{i:03d}",
                "type": "ext",
                "shared": False,
                "host": f"xcp-bench-{i:03d}",
                "size_gib": 900,
            }
            for i in range(1, hosts + 1)
        ],
        "networks": [
            {
                "name": "Pool-wide network associated with eth0",
                "bridge": "xenbr0",
                "device": "eth0",
                "management": True,
            },
            {"name": "VM network", "bridge": "xenbr1", "device": "eth1"},
        ],
        "vms": vm_specs,
    }
    running_every = round(1 / (1 - running_fraction)) if running_fraction < 1 else 0
    for i in range(1, vms + 1):
        host_no = (i - 1) % hosts + 1
        running = not running_every or i % running_every != 0
        local = i % 10 == 0
        vm_specs.append(
            {
                "name": f"vm-{i:05d}",
                "host": f"xcp-bench-{host_no:03d}",
                "power_state": "Running" if running else "Halted",
                "vcpus": 1,
                "memory_gib": 1,
                "ip": _address(10, i),
                "disks": [
                    {"sr": f"Local storage xcp-bench-{host_no:03d}" if local else "Shared storage", "size_gib": 10}
                ],
                "networks": ["VM network"],
            }
        )
    return parse_scenario(data, f"generated pool ({hosts} hosts, {vms} VMs)")
