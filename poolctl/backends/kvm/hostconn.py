"""One libvirt connection = one host: its state (the connection, its subscriptions, what was
read of the host and its domains) and its reads, the bulk read in a fixed number of calls.

Opening the host (deadline, ssh child, credentials, what a failure means) is ``opening``'s;
what the bulk read calls and how its answers are parsed, ``bulkread``'s; how the subscriptions
made with a connection's first read are registered, ``subscriptions``'; what only a domain's own
calls tell is read by ``details``, many domains at a time.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
import uuid as uuid_mod
from collections.abc import Iterable
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import libvirt

from poolctl.backends.base import BackendError, ConnectionLost
from poolctl.backends.kvm import bulkcalls, bulkread, details, early, heap, subscriptions, xmlinfo
from poolctl.backends.kvm.bulkread import HostFacts
from poolctl.backends.kvm.errors import operation_error
from poolctl.backends.kvm.events import DomainChanged, HostLost, Notify
from poolctl.backends.kvm.opening import Credentials, OpenSettings, end_ssh, open_host

RUNNING_STATES = {
    libvirt.VIR_DOMAIN_RUNNING,
    libvirt.VIR_DOMAIN_BLOCKED,
    libvirt.VIR_DOMAIN_PAUSED,
    libvirt.VIR_DOMAIN_SHUTDOWN,
    libvirt.VIR_DOMAIN_PMSUSPENDED,
}
# Why a pool with a test-driver host cannot migrate (capabilities, pre-checks).
TEST_DRIVER_REASON = "libvirt's test driver cannot migrate"


class HostConn:
    """Caches are written under the backend's lock by whoever calls ``load``/``reload_domain``."""

    def __init__(
        self,
        uri: str,
        notify: Notify,
        credentials: Credentials,
        settings: OpenSettings | None = None,
    ):
        self.uri = uri
        self.settings = settings or OpenSettings()
        # Set to abandon an open under way (the pool is closing): its ssh child is ended.
        self.cancel = threading.Event()
        self.opening = False  # the backend's first open of this host is under way
        self._ssh_pid: int | None = None  # the ssh child of the main connection
        self.open_error: BackendError | None = None  # why the last open failed
        self.lost_reason: str | None = None  # why an open connection was given up (a failed read)
        self.ref = f"host:{uri}"
        self.is_test = urlsplit(uri).scheme.startswith("test")
        # How many domains ``details.read_many`` reads at once: a bare test:/// runs the driver in
        # this process, where parallel calls only queue for its lock.
        self.in_flight = 1 if urlsplit(uri).scheme == "test" else details.IN_FLIGHT
        self._notify = notify
        self._credentials = credentials
        self.conn: libvirt.virConnect | None = None
        self._callback_ids: list[int] = []
        self._threads: bulkcalls.Threads | None = None  # the bulk calls' threads, per connection
        self._subscribed = False  # this connection's events are registered (its first load)
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
        # uuid -> the stamp from which on a domain's details are due again (its old ones shown meanwhile)
        self.stale: dict[str, int] = {}
        self._stamps = itertools.count(1)
        self._cpu: xmlinfo.HostCpu | None = None
        self._static: HostFacts | None = None  # the facts but free memory, read once per connection
        self._reported_free = 0
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
        """Open the connection (or take over the one ``poolctl.preload`` started); its events
        are subscribed to by its first ``load``. Raises ConnectionLost/AuthenticationError."""
        self._closing = False
        self.cancel.clear()
        self._stop_threads()
        if self.in_flight > 1:  # started while the host opens: see bulkcalls.Threads
            self._threads = bulkcalls.Threads()
            self._threads.start()
        try:
            conn, self._ssh_pid = open_host(
                self.uri, self.settings, self._credentials, self.cancel, early.claim(self.uri, self.settings)
            )
        except BaseException:
            self._stop_threads()
            raise
        self._static = None
        self._subscribed = False
        self.conn, self.live = conn, True

    def open_side(self) -> libvirt.virConnect:
        """A further connection to this host, without subscriptions: the caller owns it.

        A migration runs its long call on one: other calls on the connection running
        ``migrateToURI3`` waited up to 4 s behind it in the lab.
        """
        return open_host(self.uri, self.settings, self._credentials, self.cancel)[0]

    def _stop_threads(self) -> None:
        threads, self._threads = self._threads, None
        if threads is not None:
            threads.close()

    def close(self) -> None:
        self._closing = True
        self.cancel.set()  # an open under way is abandoned, its ssh ended
        self._stop_threads()
        conn, self.conn = self.conn, None
        self.live = False
        if conn is None:
            return
        subscriptions.unsubscribe(conn, self._callback_ids)
        self._callback_ids = []
        try:
            held = conn.close()
        except libvirt.libvirtError:
            held = 0
        if held > 0 and self._ssh_pid is not None:
            # Domain objects still held somewhere (a migration handle, the inventory's readers)
            # keep libvirt's connection, and its ssh, open: ours ends here.
            end_ssh(self._ssh_pid)
        self._ssh_pid = None

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
                self._notify(HostLost(self.uri, subscriptions.close_words(reason)))
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
    def stamp(self) -> int:
        """A number no earlier read has: taken when a read of domains begins (``DomainRecord.read_at``)."""
        return next(self._stamps)

    def load(self, *, full: bool) -> None:
        """The host's bulk read, a fixed number of calls whatever the number of domains: its
        free memory, one stats call for every domain (the domain list too), storage pools and
        networks. A domain not seen before gets a record from these alone (not ``detailed``);
        ``pending()`` names what the domains' own calls must still read (``details.read_many``,
        then ``apply``). ``full`` (after a reconnect) has every domain read again, what is known
        of them shown meanwhile."""
        c = self.conn
        if c is None:
            raise libvirt.libvirtError("not connected")
        first = self._static is None  # this connection's first read
        calls: bulkcalls.Named = {}
        follow = bulkread.follow_ups()
        events: list[str] = []
        if not self._subscribed:
            # Registered with the read rather than a round trip before it: the daemon takes a
            # client's calls in the order sent, the registrations first, and a change it made
            # between the two would still be in the next refresh (REFRESH_S).
            calls, then, events = subscriptions.registrations(
                c,
                on_close=self._on_close,
                on_lifecycle=self._on_lifecycle,
                on_job_completed=self._on_job_completed,
                on_migration_iteration=self._on_migration_iteration,
            )
            follow |= then
        reads = bulkread.calls(c, static=first, capabilities=self._cpu is None)
        got = bulkcalls.Calls(calls | reads, at_once=self.in_flight > 1, follow=follow, threads=self._threads)
        if not self._subscribed:
            self._subscribed = True
            self._callback_ids = subscriptions.callback_ids(got, events)
        self._load_facts(got)
        saved = {d.UUIDString() for d in got.get("domains.saved")}
        fresh: dict[str, xmlinfo.DomainRecord] = {}
        # The stats name every domain, running or not (each with its name and UUID): no list of
        # the domains beside them, whose reply and objects were as big again.
        for dom, stats in got.get("stats"):
            uuid, name = dom.UUIDString(), dom.name()
            rec = self.domains.get(uuid)
            if rec is None:
                rec = xmlinfo.DomainRecord.listed(uuid, name)
            elif rec.info.name != name:
                rec.info = dataclasses.replace(rec.info, name=name)
            uuid = rec.info.uuid  # the key is the record's own string: one copy per domain
            was_running = rec.state in RUNNING_STATES
            bulkread.apply_stats(rec, stats)
            if rec.detailed and rec.state in RUNNING_STATES and not was_running:
                self.stale[uuid] = self.stamp()  # an event was missed: its addresses are news
            rec.managed_save = uuid in saved
            fresh[uuid] = rec
        self.domains = fresh
        if full:
            mark = self.stamp()
            self.stale = dict.fromkeys(fresh, mark)
        else:
            self.stale = {uuid: mark for uuid, mark in self.stale.items() if uuid in fresh}
        self.pools, self.networks = bulkread.storage_and_networks(got)
        self.bridges = bulkread.bridges(got)
        self.update_free_memory()
        if first:
            heap.give_back()  # what opening the host freed, before the records stack up on it

    def pending(self) -> list[details.Job]:
        """The domains whose own calls are still to be read: never read yet, or due again."""
        return [
            details.Job(uuid, rec.state in RUNNING_STATES, rec.stat_disks)
            for uuid, rec in self.domains.items()
            if not rec.detailed or uuid in self.stale
        ]

    def apply(self, reads: Iterable[tuple[str, details.Details | None, int]]) -> None:
        """What the domains' own calls gave, each (uuid, details or None when the domain is
        gone, the stamp taken before it was read). A read that began before the one already
        applied to a domain is dropped."""
        for uuid, got, stamp in reads:
            rec = self.domains.get(uuid)
            if rec is None or stamp <= rec.read_at:
                continue
            if self.stale.get(uuid, stamp) < stamp:
                del self.stale[uuid]
            if got is None:
                del self.domains[uuid]
                continue
            rec.info = got.info
            rec.disk_sizes.update(got.disk_sizes)
            rec.ips = got.ips
            rec.read_at = stamp
        self.update_free_memory()

    def reload_domain(self, uuid: str) -> None:
        """Re-read one domain after an event: its definition, state and stats, managed save and
        addresses, and the host's free memory."""
        c = self.conn
        if c is None:
            return
        stamp = self.stamp()
        try:
            dom = c.lookupByUUIDString(uuid)
            rec = xmlinfo.DomainRecord.listed(uuid, dom.name())
            try:
                got = c.domainListGetStats([dom], bulkread.STATS, bulkread.STATS_FLAGS)
            except libvirt.libvirtError:
                got = []
            if got:
                bulkread.apply_stats(rec, got[0][1])
            if not got or "state.state" not in got[0][1]:
                rec.state, rec.reason = dom.state()[:2]
            running = rec.state in RUNNING_STATES
            if not running:  # a running domain has no managed save image: starting consumed it
                try:
                    rec.managed_save = bool(dom.hasManagedSaveImage())
                except libvirt.libvirtError:
                    pass
            self.apply_read(rec, details.read_one(c, dom, details.Job(uuid, running, rec.stat_disks)), stamp)
        except libvirt.libvirtError as err:
            if not details.is_gone(err):
                raise
            self.domains.pop(uuid, None)
            self.stale.pop(uuid, None)
        self._refresh_reported_free(c)
        self.update_free_memory()

    def apply_read(self, rec: xmlinfo.DomainRecord, got: details.Details, stamp: int) -> None:
        """``rec``, read whole from the domain's own calls from ``stamp`` on, replaces what was
        known unless a later read is in already."""
        old = self.domains.get(rec.info.uuid)
        if old is not None and old.read_at >= stamp:
            return
        rec.info, rec.ips, rec.read_at = got.info, got.ips, stamp
        rec.disk_sizes.update(got.disk_sizes)
        self.domains[rec.info.uuid] = rec
        if self.stale.get(rec.info.uuid, stamp) < stamp:
            del self.stale[rec.info.uuid]

    def _load_facts(self, got: bulkcalls.Calls) -> None:
        """What the host says about itself is read once per connection; its free memory each time."""
        if self._static is None:
            if self._cpu is None:  # read with the first connection's facts only: a reconnect asks for none
                self._cpu = bulkread.host_cpu(got)
            self._static = bulkread.static_facts(
                got,
                self._cpu,
                # The test driver reports this machine's hostname for every private host.
                name=self.facts.name if self.is_test else None,
                address=urlsplit(self.uri).hostname,
            )
        self._reported_free = bulkread.free_memory(got)

    def _refresh_reported_free(self, c: libvirt.virConnect) -> None:
        try:
            self._reported_free = int(c.getFreeMemory())
        except libvirt.libvirtError:
            self._reported_free = 0

    def update_free_memory(self) -> None:
        """The host's free memory as it reports it; estimated from the running domains where it
        reports none (the test driver, some NUMA setups)."""
        static = self._static or self.facts
        free = self._reported_free
        if not free and static.memory_total:
            used = sum(r.stat_memory or r.info.memory for r in self.domains.values() if r.state in RUNNING_STATES)
            free = max(0, static.memory_total - used)
        self.facts = dataclasses.replace(static, memory_free=free)
