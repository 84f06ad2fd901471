"""One libvirt connection = one host: open, subscribe, load with bulk calls, cache."""

from __future__ import annotations

import dataclasses
import threading
import uuid as uuid_mod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import libvirt

from poolctl.backends.base import AuthenticationError, ConnectionLost
from poolctl.backends.kvm import xmlinfo
from poolctl.backends.kvm.errors import connect_error, is_unsupported, operation_error
from poolctl.backends.kvm.eventloop import ensure_event_loop
from poolctl.backends.kvm.events import DomainChanged, HostLost, Notify
from poolctl.model import MiB

RUNNING_STATES = {
    libvirt.VIR_DOMAIN_RUNNING,
    libvirt.VIR_DOMAIN_BLOCKED,
    libvirt.VIR_DOMAIN_PAUSED,
    libvirt.VIR_DOMAIN_SHUTDOWN,
    libvirt.VIR_DOMAIN_PMSUSPENDED,
}
_STATS = (
    libvirt.VIR_DOMAIN_STATS_STATE
    | libvirt.VIR_DOMAIN_STATS_VCPU
    | libvirt.VIR_DOMAIN_STATS_BALLOON
    | libvirt.VIR_DOMAIN_STATS_BLOCK
)
# A domain busy with a job (an incoming migration) would hold a stats call until the job
# ends (2.6 s measured on a lab destination, with the backend's lock held); NOWAIT skips
# its monitor-backed figures for that round instead.
_STATS_FLAGS = libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT
_IP_SOURCES = tuple(
    getattr(libvirt, n)
    for n in (
        "VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE",
        "VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_ARP",
        "VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT",  # last: an absent agent can be slow
    )
    if hasattr(libvirt, n)
)

# Why a pool with a test-driver host cannot migrate (capabilities, pre-checks).
TEST_DRIVER_REASON = "libvirt's test driver cannot migrate"


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


def _version(v: int) -> str:
    return f"{v // 1_000_000}.{v // 1000 % 1000}.{v % 1000}"


def connect_uri(uri: str) -> str:
    """The URI actually opened: ssh must never prompt on the terminal the TUI owns."""
    parts = urlsplit(uri)
    if not parts.scheme.endswith("+ssh"):
        return uri
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.setdefault("no_tty", "1")
    return urlunsplit(parts._replace(query=urlencode(query, safe="/")))


class HostConn:
    """Caches are written under the backend's lock by whoever calls ``load``/``reload_domain``."""

    def __init__(self, uri: str, notify: Notify, credentials: Callable[[], tuple[str, str]]):
        self.uri = uri
        self.ref = f"host:{uri}"
        self.is_test = urlsplit(uri).scheme.startswith("test")
        self._notify = notify
        self._credentials = credentials
        self.conn: libvirt.virConnect | None = None
        self._callback_ids: list[int] = []
        self._closing = False
        self.live = False
        stem = PurePosixPath(urlsplit(uri).path).stem if self.is_test else ""
        self.facts = HostFacts(name=stem or urlsplit(uri).hostname or uri, address=urlsplit(uri).hostname or "")
        self.domains: dict[str, xmlinfo.DomainRecord] = {}
        self.pools: dict[str, xmlinfo.PoolInfo] = {}
        self.networks: dict[str, xmlinfo.NetInfo] = {}
        self.bridges: set[str] | None = None  # None: this host cannot list its interfaces
        self.job_completed: dict[str, dict[str, Any]] = {}  # uuid -> stats from the JOB_COMPLETED event
        self.migration_iteration: dict[str, int] = {}  # uuid -> last MIGRATION_ITERATION event
        self._cpu: xmlinfo.HostCpu | None = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.facts.name

    @property
    def uuid(self) -> str:
        """The host's UUID as libvirt's capabilities give it; a stable one derived from the URI
        where they give none (the test driver): poolctl's maintenance record is keyed by it."""
        if self._cpu is not None and self._cpu.uuid:
            return self._cpu.uuid
        return str(uuid_mod.uuid5(uuid_mod.NAMESPACE_URL, self.uri))

    # -- connection ---------------------------------------------------------------------
    def open(self) -> None:
        """Open the connection and subscribe; raises ConnectionLost/AuthenticationError."""
        self._closing = False
        conn = self.open_side()
        try:
            conn.registerCloseCallback(self._on_close, None)
        except libvirt.libvirtError:
            pass
        ids = []
        for name, cb in (
            ("VIR_DOMAIN_EVENT_ID_LIFECYCLE", self._on_lifecycle),
            ("VIR_DOMAIN_EVENT_ID_JOB_COMPLETED", self._on_job_completed),
            ("VIR_DOMAIN_EVENT_ID_MIGRATION_ITERATION", self._on_migration_iteration),
        ):
            if hasattr(libvirt, name):
                try:
                    ids.append(conn.domainEventRegisterAny(None, getattr(libvirt, name), cb, None))
                except libvirt.libvirtError:
                    pass
        self.conn, self._callback_ids, self.live = conn, ids, True

    def open_side(self) -> libvirt.virConnect:
        """A further connection to this host, without subscriptions: the caller owns it.

        A migration runs its long call on one: other calls on the connection running
        ``migrateToURI3`` waited up to 4 s behind it in the lab.
        """
        ensure_event_loop()
        failed: list[str] = []  # why our credentials could not be given, if that happened
        auth = [
            [libvirt.VIR_CRED_AUTHNAME, libvirt.VIR_CRED_PASSPHRASE, libvirt.VIR_CRED_NOECHOPROMPT],
            self._auth_cb,
            failed,
        ]
        try:
            conn = libvirt.openAuth(connect_uri(self.uri), auth, 0)
        except libvirt.libvirtError as err:
            if failed:
                raise AuthenticationError(
                    f"cannot connect to libvirt at {self.uri}: {failed[0]}", host=self.uri
                ) from None
            raise connect_error(self.uri, err) from None
        if not self.is_test:
            try:
                # 5 s interval, 3 misses: a dead host shows LOST within ~20 s.
                conn.setKeepAlive(5, 3)
            except libvirt.libvirtError:
                pass
        return conn

    def _auth_cb(self, creds: list[list[Any]], failed: list[str]) -> int:
        # An exception here (a failing password_command) would be printed over the screen
        # by libvirt-python and reach open() only as libvirt's "authentication failed".
        try:
            user, password = self._credentials()
        except Exception as err:
            failed.append(str(err))
            return -1
        for cred in creds:
            if cred[0] == libvirt.VIR_CRED_AUTHNAME:
                cred[4] = user
            elif cred[0] in (libvirt.VIR_CRED_PASSPHRASE, libvirt.VIR_CRED_NOECHOPROMPT):
                cred[4] = password
        return 0

    def close(self) -> None:
        self._closing = True
        conn, self.conn = self.conn, None
        self.live = False
        if conn is None:
            return
        for cid in self._callback_ids:
            try:
                conn.domainEventDeregisterAny(cid)
            except libvirt.libvirtError:
                pass
        self._callback_ids = []
        try:
            conn.unregisterCloseCallback()
        except libvirt.libvirtError:
            pass
        try:
            conn.close()
        except libvirt.libvirtError:
            pass

    def alive(self) -> bool:
        try:
            return self.conn is not None and self.conn.isAlive() == 1
        except libvirt.libvirtError:
            return False

    def domain(self, rec: xmlinfo.DomainRecord, action: str) -> libvirt.virDomain:
        """The live domain object of ``rec``; ``action`` (e.g. "start") words the error."""
        name = rec.info.name
        if not self.live or self.conn is None:
            raise ConnectionLost(
                f"cannot {action} VM '{name}': host {self.name} ({self.uri}) is not connected", host=self.name
            )
        try:
            return self.conn.lookupByUUIDString(rec.info.uuid)
        except libvirt.libvirtError as err:
            raise operation_error(action, f"VM '{name}'", self.name, err, alive=self.alive()) from None

    # -- callbacks: run on libvirt's event thread; they only hand over, never raise --------
    def _on_close(self, _conn: libvirt.virConnect, reason: int, _opaque: object) -> None:
        try:
            if not self._closing and reason != libvirt.VIR_CONNECT_CLOSE_REASON_CLIENT:
                self._notify(HostLost(self.uri, f"connection closed (reason {reason})"))
        except Exception:
            pass

    def _on_lifecycle(
        self, _conn: libvirt.virConnect, dom: libvirt.virDomain, event: int, detail: int, _opaque: object
    ) -> None:
        try:
            self._notify(DomainChanged(self.uri, dom.UUIDString(), event, detail))
        except Exception:
            pass

    def _on_job_completed(
        self, _conn: libvirt.virConnect, dom: libvirt.virDomain, params: dict[str, Any], _opaque: object
    ) -> None:
        try:
            with self._lock:
                self.job_completed[dom.UUIDString()] = dict(params)
        except Exception:
            pass

    def _on_migration_iteration(
        self, _conn: libvirt.virConnect, dom: libvirt.virDomain, iteration: int, _opaque: object
    ) -> None:
        try:
            self.migration_iteration[dom.UUIDString()] = int(iteration)
        except Exception:
            pass

    # -- loading ------------------------------------------------------------------------
    def load(self, *, full: bool) -> None:
        """Refresh everything with bulk calls. Domain XML and IPs are fetched only for
        domains not seen before, or for all when ``full`` (initial load, reconnect)."""
        c = self.conn
        if c is None:
            raise libvirt.libvirtError("not connected")
        self._load_facts(c)
        doms = {d.UUIDString(): d for d in c.listAllDomains(0)}
        saved = {d.UUIDString() for d in c.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_MANAGEDSAVE)}
        stats = {d.UUIDString(): s for d, s in c.getAllDomainStats(_STATS, _STATS_FLAGS)}
        fresh: dict[str, xmlinfo.DomainRecord] = {}
        for uuid, dom in doms.items():
            rec = self.domains.get(uuid)
            if rec is None or full:
                try:
                    rec = self._read_domain(c, dom)
                except libvirt.libvirtError:
                    continue  # undefined between the list and the read
            else:
                was_running = rec.state in RUNNING_STATES
                self._apply_stats(rec, stats.get(uuid, {}))
                if rec.state in RUNNING_STATES and not was_running:
                    rec.ips = self._ips(dom)  # an event was missed: treat as one
            rec.managed_save = uuid in saved
            fresh[uuid] = rec
        self.domains = fresh
        self._load_storage(c)
        self._load_networks(c)
        self._refresh_free_memory()

    def reload_domain(self, uuid: str) -> None:
        """Re-read one domain after an event (XML, state, stats, IPs)."""
        c = self.conn
        if c is None:
            return
        try:
            dom = c.lookupByUUIDString(uuid)
            rec = self._read_domain(c, dom)
        except libvirt.libvirtError as err:
            if err.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                self.domains.pop(uuid, None)
                self._load_facts(c)
                self._refresh_free_memory()
                return
            raise
        self.domains[uuid] = rec
        self._load_facts(c)
        self._refresh_free_memory()

    def _read_domain(self, c: libvirt.virConnect, dom: libvirt.virDomain) -> xmlinfo.DomainRecord:
        rec = xmlinfo.DomainRecord(info=xmlinfo.parse_domain(dom.XMLDesc(0)))
        rec.state, rec.reason = dom.state()[:2]
        try:
            rec.managed_save = bool(dom.hasManagedSaveImage())
        except libvirt.libvirtError:
            pass
        try:
            got = c.domainListGetStats([dom], _STATS, _STATS_FLAGS)
            if got:
                self._apply_stats(rec, got[0][1])
        except libvirt.libvirtError:
            pass
        for disk in rec.info.disks:
            if disk.device not in rec.disk_sizes and disk.path and not disk.cdrom:
                try:
                    rec.disk_sizes[disk.device] = c.storageVolLookupByPath(disk.path).info()[1]
                except libvirt.libvirtError:
                    pass
        if rec.state in RUNNING_STATES:
            rec.ips = self._ips(dom)
        return rec

    @staticmethod
    def _apply_stats(rec: xmlinfo.DomainRecord, s: dict[str, Any]) -> None:
        if "state.state" in s:
            rec.state, rec.reason = s["state.state"], s.get("state.reason", 0)
        if s.get("balloon.current"):
            rec.stat_memory = s["balloon.current"] * 1024
        if s.get("vcpu.current"):
            rec.stat_vcpus = s["vcpu.current"]
        for i in range(s.get("block.count", 0)):
            name, cap = s.get(f"block.{i}.name"), s.get(f"block.{i}.capacity")
            if name and cap:
                rec.disk_sizes[name] = cap

    def _ips(self, dom: libvirt.virDomain) -> tuple[str, ...]:
        for source in _IP_SOURCES:
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

    def _load_facts(self, c: libvirt.virConnect) -> None:
        info = c.getInfo()  # [arch, MiB, cpus, MHz, nodes, sockets, cores, threads]
        if self._cpu is None:
            try:
                self._cpu = xmlinfo.parse_capabilities(c.getCapabilities())
            except libvirt.libvirtError:
                self._cpu = xmlinfo.HostCpu()
        hostname = c.getHostname()
        try:
            free = int(c.getFreeMemory())
        except libvirt.libvirtError:
            free = 0
        try:
            hv = f"{c.getType()} {_version(c.getVersion())}"
        except libvirt.libvirtError:
            hv = c.getType()
        # The test driver reports this machine's hostname for every private host.
        name = self.facts.name if self.is_test else hostname
        self.facts = HostFacts(
            name=name,
            address=urlsplit(self.uri).hostname or hostname,
            memory_total=int(info[1]) * MiB,
            memory_free=free,
            cpu_vendor=self._cpu.vendor,
            cpu_model=self._cpu.model or info[0],
            cpu_count=int(info[2]),
            software_version=f"libvirt {_version(c.getLibVersion())}, {hv}",
        )

    def _refresh_free_memory(self) -> None:
        """Some drivers (the test driver, some NUMA setups) report 0 free: estimate then."""
        if self.facts.memory_free or not self.facts.memory_total:
            return
        used = sum(r.stat_memory or r.info.memory for r in self.domains.values() if r.state in RUNNING_STATES)
        self.facts = dataclasses.replace(self.facts, memory_free=max(0, self.facts.memory_total - used))

    def _load_storage(self, c: libvirt.virConnect) -> None:
        active = {p.name() for p in c.listAllStoragePools(libvirt.VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE)}
        pools = {}
        for p in c.listAllStoragePools(0):
            try:
                pools[p.name()] = xmlinfo.parse_pool(p.XMLDesc(0), p.name() in active)
            except libvirt.libvirtError:
                continue
        self.pools = pools

    def _load_networks(self, c: libvirt.virConnect) -> None:
        try:
            active = {n.name() for n in c.listAllNetworks(libvirt.VIR_CONNECT_LIST_NETWORKS_ACTIVE)}
            nets = {}
            for n in c.listAllNetworks(0):
                try:
                    nets[n.name()] = xmlinfo.parse_network(n.XMLDesc(0), n.name() in active)
                except libvirt.libvirtError:
                    continue
            self.networks = nets
        except libvirt.libvirtError as err:
            if not is_unsupported(err):
                raise
            self.networks = {}
        try:
            self.bridges = {i.name() for i in c.listAllInterfaces(0)}
        except libvirt.libvirtError:
            self.bridges = None
