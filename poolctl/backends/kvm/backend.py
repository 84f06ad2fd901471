"""KvmBackend: the poolctl Backend over libvirt connections (one per host)."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from urllib.parse import urlsplit

import libvirt

from poolctl.backends.base import (
    Backend,
    BackendError,
    Capabilities,
    ChangeCallback,
    ConnectionLost,
    OperationRefused,
    StateCallback,
)
from poolctl.backends.kvm import details
from poolctl.backends.kvm.checks import check_migration, disabled_words
from poolctl.backends.kvm.config import KvmConfig
from poolctl.backends.kvm.errors import is_unsupported, operation_error
from poolctl.backends.kvm.events import DomainChanged, Emit, Event, HostLost, HostReconnected
from poolctl.backends.kvm.hostconn import RUNNING_STATES, TEST_DRIVER_REASON, HostConn
from poolctl.backends.kvm.merge import Merged, merge
from poolctl.backends.kvm.migration import SWITCHOVER, KvmMigration, MigrationSetup
from poolctl.backends.kvm.migration_start import start_migration
from poolctl.backends.kvm.openfail import retried, where
from poolctl.backends.kvm.opening import OpenSettings
from poolctl.backends.kvm.watcher import Feed, Watcher
from poolctl.backends.kvm.xmlinfo import DomainRecord
from poolctl.errors import describe
from poolctl.inventory import diff, keyed
from poolctl.maintenance import HostMark, HostMarks, MarkError
from poolctl.model import (
    Change,
    Inventory,
    MigrationCheck,
    MigrationOptions,
    PowerOp,
)

log = logging.getLogger("poolctl.backends.kvm")


class KvmBackend(Backend):
    NAME = "kvm"
    Config = KvmConfig
    config: KvmConfig
    SUPPORTS_LIVE_MIGRATION = True
    IMPLEMENTS_CANCEL = True
    REPORTS_DOWNTIME = True
    MIGRATION_OPTIONS = frozenset(
        {"max_downtime_ms", "bandwidth_mib_s", "auto_converge", "post_copy", "copy_storage", "parallel", "compress"}
    )
    SWITCHOVER = SWITCHOVER
    HOST_MAINTENANCE = True  # poolctl's own record per host (poolctl.maintenance): libvirt keeps none
    STORAGE_MOTION = True  # copy storage into volumes made in the chosen pools (copy_storage.py)
    REFRESH_S = 5.0  # bulk refresh (host memory, domain stats, pools) besides events
    SHUTDOWN_TIMEOUT_S = 120.0  # a clean shutdown that takes longer is reported as refused
    MIGRATION_TIMEOUT_S = 900.0  # a migration still running after this is aborted
    LATE_GRACE_S = 0.5  # how long connect() waits for the other hosts once one is open

    def __init__(self, config: KvmConfig):
        super().__init__(config)
        if not config.uris:
            raise BackendError(f"pool {config.name!r}: no libvirt URIs configured (uris = [...], one per host)")
        for uri in (*config.uris, *config.migration_uris, *config.migration_uris.values()):
            # A URI names the host everywhere (refs, messages, logs): it must not carry a secret.
            if urlsplit(uri).password is not None:
                raise BackendError(
                    f"pool {config.name!r}: the libvirt URI for host {urlsplit(uri).hostname} holds a password; "
                    "put it in password or password_command instead"
                )
        self.lock = threading.RLock()
        self.queue: queue.Queue[Event] = queue.Queue()
        settings = OpenSettings(timeout_s=config.connect_timeout_s, known_hosts=config.known_hosts)
        self.hosts = [HostConn(uri, self.queue.put, self._credentials, settings) for uri in dict.fromkeys(config.uris)]
        self._merged: Merged | None = None
        self._emitted: Inventory | None = None
        self.migrating: set[str] = set()  # uuids with a migration running through us
        self._watcher: Watcher | None = None
        self._closed = False
        self._just_read = False  # connect() read the hosts and no snapshot has been taken since
        self.marks = HostMarks()
        self._connect_returned = False  # hosts opening after this arrive through the queue

    def _credentials(self) -> tuple[str, str]:
        return self.config.username, self.config.resolve_password()

    @property
    def capabilities(self) -> Capabilities:
        test = [hc.name for hc in self.hosts if hc.is_test]
        return Capabilities(
            live_migration=not test and len(self.hosts) > 1,
            cancel=self.IMPLEMENTS_CANCEL,
            downtime_reporting=self.REPORTS_DOWNTIME,
            migration_options=self.MIGRATION_OPTIONS,
            host_maintenance=self.HOST_MAINTENANCE,
            storage_motion=self.STORAGE_MOTION,
            reason=TEST_DRIVER_REASON if test else "" if len(self.hosts) > 1 else "the pool has one host",
        )

    # -- connection -----------------------------------------------------------------------
    def connect(self) -> None:
        """Open every host at once, each on its own thread within the pool's connect timeout;
        return once one host is open and read (or every host has failed). Hosts still opening
        go on in the background and arrive through the watcher (``HostReconnected``) or, for
        ``inventory()``, are waited for. Raises when no host opened: an authentication or
        host-key failure first (not worth retrying), else why each host failed."""
        self._check_open()
        settled = threading.Condition(self.lock)
        todo = [hc for hc in self.hosts if not hc.live and not hc.opening]
        for hc in todo:
            hc.opening = True
            threading.Thread(
                target=self._open_host, args=(hc, settled), name=f"kvm-open-{hc.name}", daemon=True
            ).start()
        with settled:
            # All of them, or those in by LATE_GRACE_S after the first: a slow host (up to the
            # connect timeout) must not hold back the others' first paint.
            first_in: float | None = None
            while self._still_opening():
                if first_in is None and any(hc.live for hc in self.hosts):
                    first_in = time.monotonic()
                if first_in is not None and time.monotonic() - first_in >= self.LATE_GRACE_S:
                    break
                settled.wait(0.05 if first_in is None else max(0.0, self.LATE_GRACE_S - (time.monotonic() - first_in)))
            if not any(hc.live for hc in self.hosts):
                errors = [hc.open_error for hc in self.hosts if hc.open_error is not None]
                refused = [e for e in errors if not retried(e)]
                if refused:
                    raise refused[0]
                if len(errors) == 1:
                    raise errors[0]
                raise ConnectionLost(
                    f"pool {self.config.name!r}: no host reachable: " + "; ".join(str(e) for e in errors)
                )
            # Failed hosts stay in the inventory as not live; watch() retries those worth it.
            # The bulk read: the first first_inventory() or inventory() uses it.
            self._read_hosts()
            self._just_read = True
            self._connect_returned = True

    def _still_opening(self) -> list[HostConn]:
        return [hc for hc in self.hosts if hc.opening]

    def _open_host(self, hc: HostConn, settled: threading.Condition) -> None:
        try:
            hc.open()
            hc.open_error = hc.lost_reason = None
        except BackendError as err:
            hc.open_error = err
        except Exception as err:  # a bug must not leave connect() waiting for this host
            hc.open_error = ConnectionLost(f"cannot connect to libvirt at {hc.uri}: {describe(err)}", host=hc.uri)
        with settled:
            hc.opening = False
            late = self._connect_returned
            settled.notify_all()
        if self._closed:
            hc.close()
            return
        if late:  # connect() has returned without it: the watcher reads it, or retries it
            self.queue.put(HostReconnected(hc.uri) if hc.live else HostLost(hc.uri, str(hc.open_error)))

    def _wait_opening(self) -> None:
        """Hosts still opening: each open ends within the connect timeout."""
        deadline = time.monotonic() + self.config.connect_timeout_s + 5
        while self._still_opening() and time.monotonic() < deadline:
            time.sleep(0.02)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for hc in self._still_opening():
            hc.cancel.set()  # abandoned: its ssh child is ended
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher.join(timeout=5)
        with self.lock:
            for hc in self.hosts:
                hc.close()

    def host_by_ref(self, ref: str) -> HostConn:
        return self.merged().host(ref)

    # -- inventory ------------------------------------------------------------------------
    def rebuild(self) -> Merged:
        """Merge the hosts' caches (call with ``lock`` held)."""
        self._merged = merge(
            self.config.name,
            self.hosts,
            set(self.migrating),
            self.capabilities.live_migration,
            self.config.shared_storage,
            self._mark_of,
        )
        return self._merged

    def _mark_of(self, hc: HostConn) -> HostMark:
        try:
            return self.marks.get(hc.uuid)
        except MarkError as err:
            # An unreadable record must not open the host to new VMs: shown disabled, and why.
            log.warning("pool %s: %s; host %s is treated as disabled", self.config.name, err, hc.name)
            return HostMark(disabled=True, by=str(err))

    def _update(self, change: Callable[[], None]) -> None:
        """A change to the hosts' caches (the watcher's loads), then the merge, under the lock."""
        with self.lock:
            change()
            self.rebuild()

    def _check_open(self) -> None:
        if self._closed:
            raise BackendError(f"pool {self.config.name!r} is closed")

    def first_inventory(self) -> Inventory:
        """From each host's bulk calls alone, a fixed number per host whatever the number of
        domains: every VM with its name, state, host and what the host's stats give (vcpus and
        memory where the driver reports them). A VM whose definition has not been read yet has
        ``devices_known`` False: its disks, NICs, title and addresses (and, on a driver whose
        stats lack them, vcpus and memory) come as changes once ``watch()`` runs, before it
        reports the host connected."""
        return self._snapshot(whole=False)

    def inventory(self) -> Inventory:
        """Everything: the bulk read, then what only the domains' own calls tell, read for the
        domains not known yet, many at a time (``details.IN_FLIGHT``)."""
        return self._snapshot(whole=True)

    def _snapshot(self, *, whole: bool) -> Inventory:
        self._check_open()
        live_before = any(hc.live for hc in self.hosts)
        with self.lock:
            if not self._just_read:
                self._read_hosts()
            self._just_read = False
        if whole:
            if self._still_opening():
                self._wait_opening()
                with self.lock:
                    self._read_hosts()
            for hc in self.hosts:
                self._read_details(hc)
            if live_before and not any(hc.live for hc in self.hosts):  # every host lost during this read
                raise ConnectionLost(
                    f"pool {self.config.name!r}: no host reachable: " + "; ".join(self.host_problems())
                )
        with self.lock:
            inv = self.rebuild().inventory
            if self._watcher is None:
                self._emitted = inv  # the snapshot watch() will send changes against
            else:
                # What this read found is news to the consumer's store: the watcher sends it.
                self.queue.put(Emit())
            return inv

    def _read_hosts(self) -> None:
        """Every live host's bulk read (call with ``lock`` held)."""
        for hc in self.hosts:
            if not hc.live:
                continue
            try:
                hc.load(full=False)
            except libvirt.libvirtError as err:
                self._host_failed(hc, err)

    def _read_details(self, hc: HostConn) -> None:
        """The domains' own calls for what ``hc`` does not know yet; the calls run without the
        lock (other operations go on meanwhile), what they gave is applied with it."""
        with self.lock:
            conn, jobs, stamp = hc.conn, hc.pending(), hc.stamp()
        if conn is None or not jobs:
            return
        reads: list[tuple[str, details.Details | None, int]] = []
        try:
            details.read_many(
                conn, jobs, lambda uuid, got: reads.append((uuid, got, stamp)), alive=hc.alive, in_flight=hc.in_flight
            )
        except libvirt.libvirtError as err:
            with self.lock:
                self._host_failed(hc, err)
        with self.lock:
            hc.apply(reads)

    def _host_failed(self, hc: HostConn, err: libvirt.libvirtError) -> None:
        if hc.alive():
            raise operation_error("read the inventory of", "pool", hc.name, err) from None
        hc.lost_reason = (
            f"host {where(hc.uri)[0]} ({hc.uri}): the connection was lost while reading its inventory "
            f"({err.get_error_message() or 'connection closed'}); its VMs are not shown"
        )
        hc.close()  # shown as not live; the watcher reconnects
        self.queue.put(HostLost(hc.uri, err.get_error_message() or "connection closed"))

    def _read_vm(self, vm: str) -> None:
        """A VM about to be checked or moved is read first when its definition is not in yet:
        its disks, NICs and CPU decide the checks, its addresses the ping."""
        hc, rec = self.locate(vm)
        if rec.detailed:
            return
        with self.lock:
            try:
                hc.reload_domain(rec.info.uuid)
            except libvirt.libvirtError as err:
                raise operation_error("read", f"VM '{rec.info.name}'", hc.name, err, alive=hc.alive()) from None
            self.rebuild()
        if self._watcher is not None:
            self.queue.put(Emit())

    def take_changes(self) -> list[Change]:
        """Changes since the last snapshot handed out (the watcher's diff step)."""
        with self.lock:
            if self._merged is None:
                return []
            new = self._merged.inventory
            old, self._emitted = self._emitted, new
            return diff(keyed(old), keyed(new)) if old is not None else []

    def merged(self) -> Merged:
        with self.lock:
            return self._merged if self._merged is not None else self.rebuild()

    def watch(self, on_change: ChangeCallback, on_state: StateCallback) -> None:
        if self._watcher is not None:
            raise BackendError(f"pool {self.config.name!r} is already being watched")
        with self.lock:
            if self._emitted is None:
                self._emitted = self.rebuild().inventory
        feed = Feed(
            self.config.name, self.hosts, self.queue, self.lock, self._update, self.take_changes, self.REFRESH_S
        )
        self._watcher = Watcher(feed, on_change, on_state)
        self._watcher.start()

    def host_problems(self) -> list[str]:
        return [
            str(hc.open_error) if hc.open_error is not None else hc.lost_reason or "not connected"
            for hc in self.hosts
            if not hc.live and (hc.open_error is not None or hc.lost_reason is not None)
        ]

    def retry_now(self) -> None:
        if self._watcher is not None:
            self._watcher.retry_now()

    # -- host maintenance -----------------------------------------------------------------
    def disable_host(self, host: str, *, maintenance: bool = False, evacuated: Sequence[str] = ()) -> None:
        self._check_open()
        hc = self.host_by_ref(host)
        old = self._read_mark(hc)
        mark = HostMark(
            disabled=True,
            maintenance=maintenance or old.maintenance,
            evacuated=tuple(evacuated) if maintenance else old.evacuated,
            since=old.since or datetime.now(UTC).isoformat(timespec="seconds"),
            by="poolctl evacuate" if maintenance else "poolctl host disable",
        )
        self._write_mark(hc, mark)

    def enable_host(self, host: str) -> tuple[str, ...]:
        self._check_open()
        hc = self.host_by_ref(host)
        old = self._read_mark(hc)
        self._write_mark(hc, HostMark())
        return old.evacuated

    def _read_mark(self, hc: HostConn) -> HostMark:
        try:
            return self.marks.get(hc.uuid)
        except MarkError as err:
            raise BackendError(f"pool {self.config.name!r}: host {hc.name}: {err}", host=hc.name) from None

    def _write_mark(self, hc: HostConn, mark: HostMark) -> None:
        try:
            self.marks.put(hc.uuid, mark)
        except MarkError as err:
            raise BackendError(f"pool {self.config.name!r}: host {hc.name}: {err}", host=hc.name) from None
        with self.lock:
            self.rebuild()
        if self._watcher is not None:
            self.queue.put(Emit())  # the watcher sends the host's new state on

    # -- power ----------------------------------------------------------------------------
    def locate(self, vm: str) -> tuple[HostConn, DomainRecord]:
        self._check_open()
        return self.merged().locate(vm)

    def power(self, vm: str, op: PowerOp) -> None:
        op = PowerOp(op)
        verb = op.verb.lower()
        hc, rec = self.locate(vm)
        dom = hc.domain(rec, verb)
        name = rec.info.name
        try:
            state = dom.state()[0]
            if op == PowerOp.START:
                if state in RUNNING_STATES:
                    raise OperationRefused(
                        f"cannot start VM '{name}': it is already running on {hc.name}", host=hc.name
                    )
                self._refuse_if_disabled(hc, f"cannot start VM '{name}'")
                dom.create()
            elif op == PowerOp.SHUTDOWN:
                dom.shutdown()
                self._wait_off(dom, name, hc)
            elif op == PowerOp.REBOOT:
                dom.reboot(0)
            elif op == PowerOp.SUSPEND:
                try:  # to disk, like Xen's suspend; a plain pause where that is not possible
                    dom.managedSave(0)
                except libvirt.libvirtError as err:
                    if not is_unsupported(err):
                        raise
                    dom.suspend()
            elif op == PowerOp.RESUME:
                if state == libvirt.VIR_DOMAIN_PAUSED:
                    dom.resume()
                elif state not in RUNNING_STATES and dom.hasManagedSaveImage():
                    self._refuse_if_disabled(hc, f"cannot resume VM '{name}'")
                    dom.create()  # restores the managed save image
                else:
                    raise OperationRefused(
                        f"cannot resume VM '{name}' on {hc.name}: it is neither paused nor suspended", host=hc.name
                    )
            elif op == PowerOp.FORCE_OFF:
                dom.destroy()
        except libvirt.libvirtError as err:
            raise operation_error(verb, f"VM '{name}'", hc.name, err, alive=hc.alive()) from None
        finally:
            # Events normally bring the new state; this covers a lost event.
            self.queue.put(DomainChanged(hc.uri, rec.info.uuid))

    def _refuse_if_disabled(self, hc: HostConn, doing: str) -> None:
        shown = next((h for h in self.merged().inventory.hosts if h.ref == hc.ref), None)
        if shown is not None and not shown.enabled:
            raise OperationRefused(f"{doing}: {disabled_words(hc.name, shown.maintenance)}", host=hc.name)

    def _wait_off(self, dom: libvirt.virDomain, name: str, hc: HostConn) -> None:
        deadline = time.monotonic() + self.SHUTDOWN_TIMEOUT_S
        while dom.state()[0] in RUNNING_STATES:
            if time.monotonic() > deadline:
                raise OperationRefused(
                    f"VM '{name}' on {hc.name} did not shut down within {self.SHUTDOWN_TIMEOUT_S:.0f} s "
                    "(the guest may ignore ACPI); force off stops it at once",
                    host=hc.name,
                )
            time.sleep(0.2)

    # -- migration ------------------------------------------------------------------------
    def check_migration(self, vm: str, host: str) -> MigrationCheck:
        self._read_vm(vm)
        return check_migration(self.merged(), vm, host, self.config.shared_storage)

    def check_storage_migration(
        self, vm: str, host: str, disk_srs: Sequence[tuple[str, str]], rate_mib_s: float
    ) -> MigrationCheck:
        self._read_vm(vm)
        from poolctl.backends.kvm.copy_plan import check_storage  # with the first storage move, not at start

        return check_storage(self.merged(), vm, host, dict(disk_srs), self.config.shared_storage, rate_mib_s)

    def measure_dirty_rate(self, vm: str, seconds: int = 1) -> float | None:
        self._check_open()
        src, rec = self.merged().locate(vm)
        if rec.state not in RUNNING_STATES or src.conn is None:
            return None
        from poolctl.backends.kvm.dirtyrate import measure_dirty_rate

        return measure_dirty_rate(src.domain(rec, "measure the dirty rate of"), src.conn, seconds)

    def migrate(self, vm: str, host: str, options: MigrationOptions) -> KvmMigration:
        self._check_open()
        self._read_vm(vm)
        setup = MigrationSetup(
            notify=self.queue.put,
            migrating=self.migrating,
            p2p=self.config.migration == "p2p",
            migration_uris=self.config.migration_uris,
            timeout_s=self.MIGRATION_TIMEOUT_S,
        )
        merged = self.merged()
        handle_type = None
        if options.disk_srs:
            # imported here: it and what it imports (xml.sax.saxutils, urllib.request) are ~12 ms
            # of a start-up that moves nothing
            from poolctl.backends.kvm.copy_storage import copy_storage_handle

            handle_type = copy_storage_handle(merged, vm, host, dict(options.disk_srs), self.config.shared_storage)
        return start_migration(merged, vm, host, options, self.capabilities, setup, handle_type)
