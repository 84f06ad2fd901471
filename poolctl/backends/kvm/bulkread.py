"""A host's bulk read: its calls, a fixed number whatever the number of domains, and their
answers parsed into what the host says about itself, its storage pools, networks and bridges,
and each domain's state and sizes from the stats.

Kept apart from ``hostconn``, which owns what is read and when (once per connection, each
refresh): here are only the calls and the parsing, functions of what they are given. The calls
are made by ``bulkcalls`` (at once over a link).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import libvirt

from poolctl.backends.kvm import bulkcalls, xmlinfo
from poolctl.backends.kvm.errors import is_unsupported
from poolctl.model import MiB

# What the bulk read's stats call gives of every domain; a domain's event re-reads the same of it.
STATS = (
    libvirt.VIR_DOMAIN_STATS_STATE
    | libvirt.VIR_DOMAIN_STATS_VCPU
    | libvirt.VIR_DOMAIN_STATS_BALLOON
    | libvirt.VIR_DOMAIN_STATS_BLOCK
)
# A domain busy with a job (an incoming migration) would hold a stats call until the job
# ends (2.6 s measured on a lab destination, with the backend's lock held); NOWAIT skips
# its monitor-backed figures for that round instead.
STATS_FLAGS = libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT


@dataclass(frozen=True)
class HostFacts:
    name: str
    address: str
    memory_total: int = 0
    memory_free: int = 0
    cpu_vendor: str = ""
    cpu_model: str = ""
    cpu_count: int = 0
    software_version: str = ""


def calls(c: libvirt.virConnect, *, static: bool, capabilities: bool) -> bulkcalls.Named:
    """The bulk read's calls, none depending on another's answer; ``static``: with what the
    host says about itself (once per connection), ``capabilities`` among it."""
    named: bulkcalls.Named = {
        "free": c.getFreeMemory,
        "domains.saved": lambda: c.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_MANAGEDSAVE),
        "stats": lambda: c.getAllDomainStats(STATS, STATS_FLAGS),
        "pools.active": lambda: c.listAllStoragePools(libvirt.VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE),
        "pools": lambda: c.listAllStoragePools(0),
        "networks.active": lambda: c.listAllNetworks(libvirt.VIR_CONNECT_LIST_NETWORKS_ACTIVE),
        "networks": lambda: c.listAllNetworks(0),
        "interfaces": lambda: c.listAllInterfaces(0),
    }
    if static:
        named |= {
            "info": c.getInfo,
            "hostname": c.getHostname,
            "type": c.getType,
            "version": c.getVersion,
            "libversion": c.getLibVersion,
        }
        if capabilities:
            named["capabilities"] = c.getCapabilities
    return named


def follow_ups() -> dict[str, Callable[[Any], bulkcalls.Named]]:
    """The calls' follow-ups: each pool's and network's definition, once its list is in."""
    return {
        "pools": functools.partial(_definitions, "pool"),
        "networks": functools.partial(_definitions, "network"),
    }


def host_cpu(got: bulkcalls.Calls) -> xmlinfo.HostCpu:
    """The host's CPU (and UUID) from its capabilities; an empty one where it gives none."""
    try:
        return xmlinfo.parse_capabilities(got.get("capabilities"))
    except libvirt.libvirtError:
        return xmlinfo.HostCpu()


def static_facts(got: bulkcalls.Calls, host: xmlinfo.HostCpu, *, name: str | None, address: str | None) -> HostFacts:
    """What the host says about itself but its free memory, with its CPU (``host_cpu``, which the
    caller keeps across connections); ``name`` and ``address`` are the host's hostname where None."""
    info = got.get("info")  # [arch, MiB, cpus, MHz, nodes, sockets, cores, threads]
    hostname = got.get("hostname")
    try:
        hv = f"{got.get('type')} {_version(got.get('version'))}"
    except libvirt.libvirtError:
        hv = got.get("type")
    return HostFacts(
        name=name or hostname,
        address=address or hostname,
        memory_total=int(info[1]) * MiB,
        cpu_vendor=host.vendor,
        cpu_model=host.model or info[0],
        cpu_count=int(info[2]),
        software_version=f"libvirt {_version(got.get('libversion'))}, {hv}",
    )


def free_memory(got: bulkcalls.Calls) -> int:
    """The free memory the host reports; 0 where it reports none."""
    try:
        return int(got.get("free"))
    except libvirt.libvirtError:
        return 0


def storage_and_networks(
    got: bulkcalls.Calls,
) -> tuple[dict[str, xmlinfo.PoolInfo], dict[str, xmlinfo.NetInfo]]:
    """The storage pools and networks, by name, from their lists and XML definitions (the lists'
    follow-ups: ``follow_ups``); no networks where the host has none to list."""
    active_pools = {p.name() for p in got.get("pools.active")}
    pools = got.get("pools")
    try:
        active_nets = {n.name() for n in got.get("networks.active")}
        nets = got.get("networks")
    except libvirt.libvirtError as err:
        if not is_unsupported(err):
            raise
        active_nets, nets = set(), []
    return (
        _parsed(pools, "pool", got, lambda text, name: xmlinfo.parse_pool(text, name in active_pools)),
        _parsed(nets, "network", got, lambda text, name: xmlinfo.parse_network(text, name in active_nets)),
    )


def bridges(got: bulkcalls.Calls) -> set[str] | None:
    """The host's interfaces by name; None: it cannot list them."""
    try:
        return {i.name() for i in got.get("interfaces")}
    except libvirt.libvirtError:
        return None


def apply_stats(rec: xmlinfo.DomainRecord, s: dict[str, Any]) -> None:
    """A domain's stats (``STATS``) into its record: state, memory, vCPUs, the disks' sizes."""
    if "state.state" in s:
        rec.state, rec.reason = s["state.state"], s.get("state.reason", 0)
    if s.get("balloon.current"):
        rec.stat_memory = s["balloon.current"] * 1024
    if s.get("vcpu.current"):
        rec.stat_vcpus = s["vcpu.current"]
    sized = []
    for i in range(s.get("block.count", 0)):
        name, cap = s.get(f"block.{i}.name"), s.get(f"block.{i}.capacity")
        if name and cap:
            rec.disk_sizes[name] = cap
            sized.append(name)
    rec.stat_disks = tuple(sized)


def _version(v: int) -> str:
    return f"{v // 1_000_000}.{v // 1000 % 1000}.{v % 1000}"


def _definitions(kind: str, objs: list[Any]) -> bulkcalls.Named:
    """The XML definitions of the pools or networks listed, by ``"<kind> <name>"``."""
    return {f"{kind} {o.name()}": functools.partial(o.XMLDesc, 0) for o in objs}


def _parsed(objs: list[Any], kind: str, xml: bulkcalls.Calls, parse: Callable[[str, str], Any]) -> dict[str, Any]:
    """Each pool's or network's definition parsed, by name; one whose definition could not be
    read (gone meanwhile) is left out."""
    out = {}
    for o in objs:
        try:
            out[o.name()] = parse(xml.get(f"{kind} {o.name()}"), o.name())
        except libvirt.libvirtError:
            continue
    return out
