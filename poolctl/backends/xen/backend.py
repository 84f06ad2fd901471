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
from collections.abc import Callable, Iterable, Sequence
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
from poolctl.backends.xen.cross_pool import NETWORK_CODES, cross_plan, network_problems
from poolctl.backends.xen.errors import REFUSALS
from poolctl.backends.xen.events import EventWatcher, Start
from poolctl.backends.xen.migration import SWITCHOVER as XEN_SWITCHOVER
from poolctl.backends.xen.migration import XenMigrationHandle, busy_words, merge_xapi_verdict, own_problems
from poolctl.backends.xen.snapshot import read_all
from poolctl.backends.xen.start import start_migration
from poolctl.backends.xen.storage_motion import copy_words, disk_moves, receive, record_problems, vdi_map
from poolctl.backends.xen.tasks import wait_task
from poolctl.backends.xen.translate import (
    CLASSES,
    Raw,
    Record,
    Translator,
    is_ref,
    name_in,
    power_state,
    project,
    project_all,
)
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
SHARED_TABLES = ("sr", "pbd", "network", "pif")  # what migration pre-checks read besides the VM's own devices


def _cached(table: dict[str, Record], refs: Iterable[str]) -> dict[str, Record]:
    """The records of ``refs`` that ``table`` holds, in a dict of their own."""
    return {r: rec for r in refs if (rec := table.get(r)) is not None}


def _fill(table: dict[str, Record], refs: Iterable[str], cls: str, get_record: Callable[[str], Record]) -> None:
    """Read the records of ``refs`` that ``table`` lacks, one by one; one gone meanwhile is left out."""
    for ref in refs:
        if ref not in table:
            try:
                table[ref] = project(cls, get_record(ref))
            except XenAPI.Failure:
                pass


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
        self._linked: dict[str, XenBackend] = {}  # link_pool: destinations of cross-pool moves, by name

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

    def _topology(self, session: XenAPI.Session, vm: Record) -> Raw:
        """What the pre-checks read: the VM's own VBDs, VDIs and VIFs, and the pool's SRs, PBDs,
        networks and PIFs (a few per host), from the live cache. With a 64-host pool the migrate
        dialog runs 63 checks at once, so nothing here grows with the number of VMs: a record
        the cache lacks is read on its own, the small tables per class only without a cache."""
        x = session.xenapi
        own: dict[str, list[str]] = {"vbd": list(vm.get("VBDs") or ()), "vif": list(vm.get("VIFs") or ())}
        with self._raw_lock:
            raw = self._raw  # copies below: the event thread keeps updating the live tables
            topo: Raw = {cls: dict(raw.get(cls, {})) for cls in SHARED_TABLES}
            for cls, refs in own.items():
                topo[cls] = _cached(raw.get(cls, {}), refs)
            cached = bool(raw)
        for cls in SHARED_TABLES:
            if not cached:
                topo[cls] = project_all(cls, getattr(x, CLASSES[cls]).get_all_records())
        for cls, refs in own.items():
            _fill(topo[cls], refs, cls, getattr(x, CLASSES[cls]).get_record)
        vdis = {ref for v in topo["vbd"].values() if is_ref(ref := v.get("VDI"))}
        with self._raw_lock:
            topo["vdi"] = _cached(self._raw.get("vdi", {}), vdis)
        _fill(topo["vdi"], vdis, "vdi", x.VDI.get_record)
        return topo

    def check_migration(self, vm: str, host: str) -> MigrationCheck:
        return self._pre_check(vm, host, None, 0.0)

    def check_storage_migration(
        self, vm: str, host: str, disk_srs: Sequence[tuple[str, str]], rate_mib_s: float
    ) -> MigrationCheck:
        return self._pre_check(vm, host, dict(disk_srs), rate_mib_s)

    def check_move(self, vm: str, host: str, options: MigrationOptions, rate_mib_s: float) -> MigrationCheck:
        target = self._target(options)
        if target is not self:
            return self._check_to(vm, target, host, dict(options.disk_srs), rate_mib_s, options.network)
        if options.network is not None:
            return self._pre_check(vm, host, dict(options.disk_srs), rate_mib_s, options.network)
        return super().check_move(vm, host, options, rate_mib_s)

    # -- other pools ------------------------------------------------------------------------

    def link_pool(self, other: Backend) -> None:
        if not isinstance(other, XenBackend):
            raise Unsupported(
                f"pool {self.config.name!r}: a Xen pool moves VMs only to another Xen pool, "
                f"not to {other.config.name!r} ({other.NAME})",
                code="CROSS_BACKEND",
            )
        if other is self or other.config.name == self.config.name:
            raise Unsupported(f"pool {self.config.name!r}: a pool is not linked to itself", code="SAME_POOL")
        self._linked[other.config.name] = other

    def _target(self, options: MigrationOptions) -> XenBackend:
        if options.to_pool is None or options.to_pool == self.config.name:
            return self
        target = self._linked.get(options.to_pool)
        if target is None:
            raise Unsupported(
                f"pool {self.config.name!r}: pool {options.to_pool!r} is not linked as a destination "
                "(Backend.link_pool)",
                code="POOL_NOT_LINKED",
            )
        return target

    def receive_migration(self, host: str, network: str | None) -> dict[str, str]:
        """``host.migrate_receive`` on this pool for a move to ``host`` over ``network`` (the
        host's management network when None): the map ``VM.migrate_send`` takes. Its session
        id is remembered as a secret of this pool (and by the caller of its own)."""

        def run(session: XenAPI.Session) -> dict[str, str]:
            x = session.xenapi
            try:
                return receive(x, host, network)
            except XenAPI.Failure as exc:
                code, params = self.errors.parts(exc)
                raise OperationRefused(
                    refusal(code, params, "the VM", "migrate", self._name_of),
                    code=code,
                    params=params,
                    host=self.connector.where,
                ) from None

        dest = self._call(f"preparing host {self._name_of(host)} to receive a migration", run)
        self.connector.keep_secret(str(dest.get("session_id", "")))
        return dest

    def _named(self, target: XenBackend) -> Callable[[str], str]:
        """Refs of this pool or of ``target`` -> names (the other pool's prefixed with it)."""

        def name_of(ref: str) -> str:
            mine = self._name_of(ref)
            if mine != ref or target is self:
                return mine
            theirs = target._name_of(ref)
            return theirs if theirs == ref else f"{target.config.name}/{theirs}"

        return name_of

    def _check_to(
        self, vm: str, target: XenBackend, host: str, disk_srs: dict[str, str], rate_mib_s: float, network: str | None
    ) -> MigrationCheck:
        """The pre-check of a move to ``host`` of the linked pool ``target``: our words from both
        pools' records, then ``VM.assert_can_migrate`` with the map of target's migrate_receive."""
        name_of = self._named(target)

        def run(session: XenAPI.Session) -> MigrationCheck:
            x = session.xenapi
            vm_rec = x.VM.get_record(vm)
            vm_name = vm_rec.get("name_label") or vm
            topo = self._topology(session, vm_rec)
            there = target._call(
                f"reading host {target._name_of(host)}",
                lambda s: cross_plan(x, vm_rec, s.xenapi, host, disk_srs, network, target.config.name, name_of),
            )
            own = own_problems(vm_rec, vm_name, host, there.host_rec, there.metrics, topo, name_of)
            # the SRs and networks are the maps' business, said by cross_plan
            problems = [p for p in own if p[0] not in ("VM_REQUIRES_SR", "VM_REQUIRES_NET")] + there.problems
            codes = {c for c, _ in problems}
            if not codes & {"VM_BAD_POWER_STATE", *NETWORK_CODES}:
                try:
                    dest = target.receive_migration(host, there.network)
                except BackendError as exc:
                    problems.append((exc.code, exc.message))
                else:
                    self.connector.keep_secret(dest["session_id"])
                    try:
                        x.VM.assert_can_migrate(vm, dest, True, vdi_map(there.moves), there.vifs, {}, {})
                    except XenAPI.Failure as exc:
                        self.connector.remember(session)
                        code, params = self.errors.parts(exc)
                        problems = merge_xapi_verdict(problems, code, params, vm_name, there.host_name, name_of)
                    finally:  # a pre-check per host and VM: none may leave a session behind
                        target.connector.logout_handle(dest["session_id"])
            moving = [m for m in there.moves if m.moves]
            return MigrationCheck(
                vm=vm,
                host=host,
                problems=tuple(p for _, p in problems),
                codes=tuple(dict.fromkeys(c for c, _ in problems)),
                copies=copy_words(moving, name_of, rate_mib_s),
                copy_bytes=sum(m.size for m in moving),
            )

        return self._call(f"checking a move of VM {vm} to pool {target.config.name}", run)

    def _pre_check(
        self, vm: str, host: str, disk_srs: dict[str, str] | None, rate_mib_s: float, network: str | None = None
    ) -> MigrationCheck:
        """Our words first, then XAPI's verdict: ``VM.assert_can_boot_here`` for a pool
        migration, ``host.migrate_receive`` + ``VM.assert_can_migrate`` with a disk map."""

        def run(session: XenAPI.Session) -> MigrationCheck:
            x = session.xenapi
            vm_rec = x.VM.get_record(vm)
            host_rec = x.host.get_record(host)
            metrics = x.host_metrics.get_record(host_rec["metrics"]) if is_ref(host_rec.get("metrics")) else {}
            vm_name = vm_rec.get("name_label") or vm
            host_name = host_rec.get("name_label") or host
            topo = self._topology(session, vm_rec)

            def name_of(ref: str) -> str:
                return name_in(topo, ref) or self._name_of(ref)

            problems = own_problems(vm_rec, vm_name, host, host_rec, metrics, topo, name_of)
            moves = disk_moves(x, vm_rec, disk_srs) if disk_srs is not None else []
            if disk_srs is not None:  # the SRs are the map's business: said per disk
                problems = [p for p in problems if p[0] != "VM_REQUIRES_SR"]
                problems += record_problems(x, moves, host, host_name, name_of)
            if network is not None:
                problems += network_problems(x, network, host, host_name, name_of)
            blocking = ("VM_BAD_POWER_STATE", "VM_ALREADY_ON_HOST", *NETWORK_CODES)
            if not any(c in blocking for c, _ in problems):
                try:
                    if disk_srs is None:
                        x.VM.assert_can_boot_here(vm, host)
                    else:
                        dest = receive(x, host, network)
                        self.connector.keep_secret(dest["session_id"])
                        try:
                            x.VM.assert_can_migrate(vm, dest, True, vdi_map(moves), {}, {}, {})
                        finally:  # a pre-check per host and VM: none may leave a session behind
                            self.connector.logout_handle(dest["session_id"])
                except XenAPI.Failure as exc:
                    self.connector.remember(session)
                    code, params = self.errors.parts(exc)
                    problems = merge_xapi_verdict(problems, code, params, vm_name, host_name, name_of)
            return MigrationCheck(
                vm=vm,
                host=host,
                problems=tuple(p for _, p in problems),
                codes=tuple(dict.fromkeys(c for c, _ in problems)),
                copies=copy_words(moves, name_of, rate_mib_s),
                copy_bytes=sum(m.size for m in moves if m.moves),
            )

        return self._call(f"checking a move of VM {vm} to host {host}", run)

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
        target = self._target(options)
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
                    dest = target.receive_migration(host, there.network)
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
                refusal(code, params, name, "migrate", self._named(target)),
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
        handle.name_of = self._named(target)
        return handle
