"""XenServer / XCP-ng pools through the official XenAPI SDK (XML-RPC; the bulk read at load
goes over XAPI's JSON-RPC where the pool serves it, see bulk.py).

Threading: every public call may come from any worker thread. Calls borrow a session
from a small pool (one thread per session at a time; up to ``SESSIONS`` at once, more
callers wait), so ``check_migration`` for every host can run in parallel. The event
loop and each migration log in sessions of their own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import XenAPI

from poolctl.backends.base import (
    Backend,
    BackendError,
    ChangeCallback,
    OperationRefused,
    StateCallback,
    Unsupported,
)
from poolctl.backends.xen import maintenance as maintenance_mod
from poolctl.backends.xen.config import XenConfig
from poolctl.backends.xen.connection import Connector, SessionPool, logout_quietly
from poolctl.backends.xen.cross_pool import cross_plan
from poolctl.backends.xen.errors import REFUSALS
from poolctl.backends.xen.events import EventWatcher, Start
from poolctl.backends.xen.links import Links, named, not_xen, receive_migration
from poolctl.backends.xen.migration import SWITCHOVER as XEN_SWITCHOVER
from poolctl.backends.xen.migration import XenMigrationHandle, busy_words
from poolctl.backends.xen.prechecks import check_to, pre_check
from poolctl.backends.xen.snapshot import read_all
from poolctl.backends.xen.start import start_migration
from poolctl.backends.xen.storage_motion import disk_moves, receive, vdi_map
from poolctl.backends.xen.tasks import wait_task
from poolctl.backends.xen.translate import Raw, Translator, name_in, power_state
from poolctl.backends.xen.words import POWER_CALLS, evacuation_blocker, power_error, refusal
from poolctl.gcpause import gc_paused
from poolctl.model import (
    Inventory,
    MigrationCheck,
    MigrationOptions,
    PowerOp,
    PowerState,
)

log = logging.getLogger("poolctl.backends.xen")
T = TypeVar("T")

SESSIONS = 4


class XenBackend(Backend):
    NAME = "xen"
    Config = XenConfig
    config: XenConfig
    SUPPORTS_LIVE_MIGRATION = True
    IMPLEMENTS_CANCEL = True
    REPORTS_DOWNTIME = False
    MIGRATION_OPTIONS = frozenset()
    SWITCHOVER = XEN_SWITCHOVER
    HOST_MAINTENANCE = True
    STORAGE_MOTION = True
    CROSS_POOL = True
    MIGRATION_NETWORK = True

    def __init__(self, config: XenConfig):
        super().__init__(config)
        self.connector = Connector(config)
        self.errors = self.connector.errors
        self.pool = SessionPool(self.connector, size=SESSIONS)
        self._raw: Raw = {}
        self._raw_lock = threading.Lock()
        self._start: Start | None = None  # what the last inventory() read, for the event loop to go on from
        self._watcher: EventWatcher | None = None
        self._closed = False
        self._links = Links(self)  # link_pool: destinations of cross-pool moves, by name

    def __repr__(self) -> str:
        return f"<XenBackend pool={self.config.name!r} url={self.connector.url!r}>"

    # -- plumbing ---------------------------------------------------------------------------

    def _call(self, doing: str, fn: Callable[[XenAPI.Session], T]) -> T:
        """Run ``fn`` on a pooled session; any failure comes out as a worded ``BackendError``."""
        if self._closed:
            raise BackendError(f"pool {self.config.name!r}: connection is closed", code="CLOSED")
        try:
            with self.pool.session() as session:
                return fn(session)
        except BackendError:
            raise
        except Exception as exc:
            raise self.errors.map(exc, doing, where=self.connector.where) from None

    def _publish(self, raw: Raw) -> None:
        with self._raw_lock:
            self._raw = raw

    def _name_of(self, ref: str) -> str:
        """A ref's name; an SR's uuid (storage errors carry it) its name too."""
        with self._raw_lock:
            found = name_in(self._raw, ref)
            if not found:
                found = next(
                    (r.get("name_label") for r in self._raw.get("sr", {}).values() if r.get("uuid") == ref), ""
                )
            return found or ref

    # -- lifecycle --------------------------------------------------------------------------

    def connect(self) -> None:
        session = self.connector.open()
        self.pool.add(session)
        log.info("pool %s: logged in to %s as %s", self.config.name, self.connector.where, self.config.username)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()
        self.pool.close()

    # -- reading ----------------------------------------------------------------------------

    def inventory(self) -> Inventory:
        return self._inventory(devices=True)

    def first_inventory(self) -> Inventory:
        """Without VBDs, VDIs and VIFs (VMs' disks and nics): the event loop reads them first
        thing and delivers the VMs with them."""
        return self._inventory(devices=False)

    def _inventory(self, devices: bool) -> Inventory:
        with gc_paused():
            token, raw = self._call("reading the inventory", lambda s: read_all(s, self.connector, devices=devices))
            translator = Translator(raw, pool_name=self.config.name)
            models = translator.models()
            try:
                inventory = translator.inventory(models)
            except ValueError as exc:
                raise BackendError(f"pool {self.config.name!r}: {exc}", host=self.connector.where) from None
        if self._watcher is None:
            self._publish(raw)
            self._start = Start(token, raw, models)
        return inventory

    def watch(self, on_change: ChangeCallback, on_state: StateCallback) -> None:
        if self._closed:
            raise BackendError(f"pool {self.config.name!r}: connection is closed", code="CLOSED")
        old, self._watcher = self._watcher, None
        start, self._start = self._start, None
        if old is not None:
            old.stop()
            start = Start(None, {}, old.models)  # a fresh read, compared with what was delivered
        self._watcher = EventWatcher(self.connector, on_change, on_state, start, self._publish, self._raw_lock)
        self._watcher.start()

    def retry_now(self) -> None:
        """The user's retry: a lost event stream reconnects at once; one that gave up (a refused
        login) starts again, from a full read compared with what was delivered."""
        watcher = self._watcher
        if watcher is None or self._closed:
            return
        if watcher.alive:
            watcher.retry_now()
        else:
            self.watch(watcher.on_change, watcher.on_state)

    # -- power ------------------------------------------------------------------------------

    def power(self, vm: str, op: PowerOp) -> None:
        op = PowerOp(op)
        verb, method, extra = POWER_CALLS[op]

        def run(session: XenAPI.Session) -> None:
            x = session.xenapi
            name = x.VM.get_name_label(vm)
            try:
                task = getattr(x.Async.VM, method)(vm, *extra)
                wait_task(x, task)
            except XenAPI.Failure as exc:
                self.connector.remember(session)  # the SDK may have logged in again meanwhile
                code, params = self.errors.parts(exc)
                raise power_error(code, params, name, op, self._name_of, self.connector.where) from None
            log.info("pool %s: %s %s done", self.config.name, verb, name)

        self._call(f"{verb} VM {vm}", run)

    # -- host maintenance ---------------------------------------------------------------------

    def disable_host(self, host: str, *, maintenance: bool = False, evacuated: Sequence[str] = ()) -> None:
        def run(session: XenAPI.Session) -> None:
            maintenance_mod.disable(session.xenapi, host, maintenance=maintenance, moved=evacuated)
            log.info("pool %s: host %s disabled%s", self.config.name, host, " (maintenance)" if maintenance else "")

        self._call(f"disabling host {self._name_of(host)}", run)

    def enable_host(self, host: str) -> tuple[str, ...]:
        def run(session: XenAPI.Session) -> tuple[str, ...]:
            moved = maintenance_mod.enable(session.xenapi, host)
            log.info("pool %s: host %s enabled", self.config.name, host)
            return moved

        return self._call(f"enabling host {self._name_of(host)}", run)

    def evacuation_blockers(self, host: str) -> dict[str, tuple[str, ...]]:
        def run(session: XenAPI.Session) -> dict[str, tuple[str, ...]]:
            x = session.xenapi
            out: dict[str, tuple[str, ...]] = {}
            for vm, error in (x.host.get_vms_which_prevent_evacuation(host) or {}).items():
                code, params = (str(error[0]), tuple(str(e) for e in error[1:])) if error else ("UNKNOWN", ())
                out[vm] = (evacuation_blocker(code, params, self._name_of(vm), self._name_of),)
            return out

        return self._call(f"planning the evacuation of host {self._name_of(host)}", run)

    # -- migration --------------------------------------------------------------------------

    def check_migration(self, vm: str, host: str) -> MigrationCheck:
        return pre_check(self, vm, host, None, 0.0)

    def check_storage_migration(
        self, vm: str, host: str, disk_srs: Sequence[tuple[str, str]], rate_mib_s: float
    ) -> MigrationCheck:
        return pre_check(self, vm, host, dict(disk_srs), rate_mib_s)

    def check_move(self, vm: str, host: str, options: MigrationOptions, rate_mib_s: float) -> MigrationCheck:
        target = self._links.target(options)
        if target is not self:
            return check_to(self, vm, target, host, dict(options.disk_srs), rate_mib_s, options.network)
        if options.network is not None:
            return pre_check(self, vm, host, dict(options.disk_srs), rate_mib_s, options.network)
        return super().check_move(vm, host, options, rate_mib_s)

    def link_pool(self, other: Backend) -> None:
        if not isinstance(other, XenBackend):
            raise not_xen(self, other)
        self._links.add(other)

    def migrate(self, vm: str, host: str, options: MigrationOptions) -> XenMigrationHandle:
        unsupported = [
            f
            for f in options.model_fields_set - {"live", "disk_srs", "network", "to_pool"}
            if getattr(options, f) != MigrationOptions.model_fields[f].default
        ]
        if unsupported:
            raise Unsupported(
                f"pool {self.config.name!r}: XAPI's pool migration has no {', '.join(sorted(unsupported))} option",
                code="UNSUPPORTED_OPTION",
            )
        started = time.monotonic()
        target = self._links.target(options)
        elsewhere = target is not self
        # another pool's host is named by that pool; our own in prepare's session
        there_name = (
            target._call(f"reading host {host}", lambda s: str(s.xenapi.host.get_name_label(host))) if elsewhere else ""
        )

        def prepare(session: XenAPI.Session) -> tuple[str, str, str]:
            x = session.xenapi
            rec = x.VM.get_record(vm)
            host_name = there_name if elsewhere else x.host.get_name_label(host)
            name = rec.get("name_label") or vm
            state = power_state(rec.get("power_state"))
            if state != PowerState.RUNNING:
                raise OperationRefused(
                    f"{name} is {state.value}; only a running VM can be live-migrated",
                    code="VM_BAD_POWER_STATE",
                    host=self.connector.where,
                )
            if rec.get("resident_on") == host:
                raise OperationRefused(
                    f"{name} already runs on {host_name}", code="VM_ALREADY_ON_HOST", host=self.connector.where
                )
            busy = busy_words(rec, name)
            if busy:
                raise OperationRefused(busy, code="OTHER_OPERATION_IN_PROGRESS", host=self.connector.where)
            return name, rec.get("resident_on"), host_name

        name, source, host_name = self._call(f"preparing a move of VM {vm}", prepare)
        dest_session = ""  # the session of host.migrate_receive's map, logged out when the move ends
        try:
            session = self.connector.open()
        except BackendError:
            raise
        try:
            if options.disk_srs or options.network or elsewhere:
                x = session.xenapi
                vm_rec = x.VM.get_record(vm)
                vifs: dict[str, str] = {}
                if elsewhere:
                    there = target._call(
                        f"reading host {host_name}",
                        lambda s: cross_plan(
                            x, vm_rec, s.xenapi, host, dict(options.disk_srs), options.network, target.config.name, str
                        ),
                    )
                    if there.problems:
                        raise OperationRefused(
                            "; ".join(p for _, p in there.problems),
                            code=there.problems[0][0],
                            host=self.connector.where,
                        )
                    moves, vifs = there.moves, there.vifs
                    dest = receive_migration(target, host, there.network)
                else:
                    moves = disk_moves(x, vm_rec, dict(options.disk_srs))
                    dest = receive(x, host, options.network)
                self.connector.keep_secret(dest["session_id"])
                dest_session = dest["session_id"]
                vmap = vdi_map(moves)

                def send() -> object:
                    return x.Async.VM.migrate_send(vm, dest, options.live, vmap, vifs, {}, {})

                task, _ambiguous = start_migration(
                    session, self.connector, vm, name, host, options.live, send, "migrate_send"
                )
            else:
                task, _ambiguous = start_migration(session, self.connector, vm, name, host, options.live)
        except XenAPI.Failure as exc:
            self.connector.remember(session)
            logout_quietly(session)
            code, params = self.errors.parts(exc)
            cls = OperationRefused if code in REFUSALS else BackendError
            raise cls(
                refusal(code, params, name, "migrate", named(self, target)),
                code=code,
                params=params,
                host=self.connector.where,
            ) from None
        except Exception as exc:
            logout_quietly(session)
            raise self.errors.map(exc, f"migrating {name}", where=self.connector.where) from None
        where = f" of pool {target.config.name}" if elsewhere else ""
        log.info("pool %s: migrating %s to %s%s", self.config.name, name, host_name, where)
        handle = XenMigrationHandle(self.connector, self.pool, session, task, vm, name, source, host, started)
        if dest_session:
            handle.when_done = lambda: target.connector.logout_handle(dest_session)
        handle.copies_disks = bool(options.disk_srs) or elsewhere
        handle.leaves_pool = elsewhere
        handle.name_of = named(self, target)
        return handle
