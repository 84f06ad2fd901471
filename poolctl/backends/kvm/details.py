"""What only a domain's own calls tell: its definition (disks, NICs, MACs, title), the sizes of
disks the bulk stats did not give, and the guest's addresses. Read after the first paint,
many domains at a time on one connection.

libvirt's RPC client multiplexes concurrent calls from several threads on one connection, so
``IN_FLIGHT`` domains are read at once. Each domain costs 3-4 round trips one after another
(definition, volume lookup and size, addresses), so over a link the time is about domains x
round trips x RTT / in flight. Measured by hand (a private libvirtd serving the test driver,
1,000 domains, a relay adding 5 ms each way): the reads after the bulk ones took 2.9 s with 16
in flight, 1.5 s with 32, 0.85 s with 64, 0.53 s with 128 (one at a time: ~37 s, estimated). 64:
past it the gain shrinks (0.3 s more from twice the calls) while every call in flight is a thread here and a
request queued at the daemon (it serves 5 of one client at once, libvirtd's
``max_client_requests``) in front of the user's own calls, a power operation among them. On the
local test driver (in this process, every call under the driver's lock) threads only add their
hand-offs: 5,000 domains read in 0.6-0.7 s through them, 0.4 s one after another, so an
in-process connection reads with one (``HostConn.in_flight``).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import libvirt

from poolctl.backends.kvm import xmlinfo

IN_FLIGHT = 64

IP_SOURCES = tuple(
    getattr(libvirt, n)
    for n in (
        "VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE",
        "VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_ARP",
        "VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT",  # last: an absent agent can be slow
    )
    if hasattr(libvirt, n)
)


@dataclass(frozen=True, slots=True)
class Job:
    """One domain to read: whether it runs (addresses are asked of running ones only) and the
    disks whose size the host's bulk stats already gave (no volume lookup for those)."""

    uuid: str
    running: bool
    sized: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Details:
    info: xmlinfo.DomainInfo
    disk_sizes: tuple[tuple[str, int], ...]  # target dev -> bytes, from volume lookups
    ips: tuple[str, ...]


# (uuid, what was read) for each domain; None: the domain is gone (undefined meanwhile).
Deliver = Callable[[str, Details | None], None]


def read_one(conn: libvirt.virConnect, dom: libvirt.virDomain, job: Job) -> Details:
    info = xmlinfo.parse_domain(dom.XMLDesc(0), (job.uuid, dom.name()))
    sizes = []
    for disk in info.disks:
        if disk.device not in job.sized and disk.path and not disk.cdrom:
            try:
                sizes.append((disk.device, int(conn.storageVolLookupByPath(disk.path).info()[1])))
            except libvirt.libvirtError:
                pass
    return Details(info, tuple(sizes), guest_ips(dom) if job.running else ())


def guest_ips(dom: libvirt.virDomain) -> tuple[str, ...]:
    """The guest's addresses from the first source that knows any: IPv4 first, no loopback
    or link-local."""
    for source in IP_SOURCES:
        try:
            ifaces = dom.interfaceAddresses(source, 0) or {}
        except libvirt.libvirtError:
            continue
        ips = [
            a["addr"]
            for iface in ifaces.values()
            for a in (iface.get("addrs") or ())
            if a.get("addr") and not a["addr"].startswith(("127.", "fe80:", "::1"))
        ]
        if ips:
            v4 = [ip for ip in ips if ":" not in ip]
            return tuple(v4 + [ip for ip in ips if ":" in ip])
    return ()


def is_gone(err: libvirt.libvirtError) -> bool:
    return bool(err.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN)


def read_many(
    conn: libvirt.virConnect,
    jobs: Iterable[Job],
    deliver: Deliver,
    *,
    alive: Callable[[], bool],
    stop: threading.Event | None = None,
    in_flight: int = IN_FLIGHT,
) -> None:
    """Read every job's domain, ``in_flight`` at a time, handing each result to ``deliver`` as
    it comes (on this thread). One ``listAllDomains`` finds the domains: no libvirt object is
    kept between reads. A domain that fails for another reason is skipped (the next load
    tries again); a connection that died ends the reading (the caller sees it lost)."""
    wanted = {job.uuid: job for job in jobs}
    if not wanted:
        return
    doms = {d.UUIDString(): d for d in conn.listAllDomains(0) if d.UUIDString() in wanted}
    for uuid in wanted.keys() - doms.keys():
        deliver(uuid, None)
    if in_flight <= 1:
        for uuid, dom in doms.items():
            try:
                got: Details | None = read_one(conn, dom, wanted[uuid])
            except libvirt.libvirtError as err:
                if not is_gone(err):
                    if not alive():
                        return
                    continue
                got = None
            deliver(uuid, got)
            if stop is not None and stop.is_set():
                return
        return
    todo = iter(doms.items())
    # Completions come through a queue: waiting on the futures themselves costs a pass over all
    # of them per completion (0.3 s at 5,000 domains and 64 in flight).
    finished: queue.SimpleQueue[tuple[str, Future[Details]]] = queue.SimpleQueue()
    with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="kvm-details") as pool:

        def submit_next() -> int:
            item = next(todo, None)
            if item is None:
                return 0
            uuid, dom = item
            future = pool.submit(read_one, conn, dom, wanted[uuid])
            future.add_done_callback(lambda f: finished.put((uuid, f)))
            return 1

        running = sum(submit_next() for _ in range(in_flight))
        while running:
            uuid, future = finished.get()
            running -= 1
            try:
                got = future.result()
            except libvirt.libvirtError as err:
                if not is_gone(err):
                    if not alive():
                        return  # the calls under way fail as fast
                    continue
                got = None
            deliver(uuid, got)
            if stop is not None and stop.is_set():
                return
            running += submit_next()
