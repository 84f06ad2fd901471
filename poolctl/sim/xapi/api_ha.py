"""High availability as xapi_ha.ml and xapi_pool.ml drive it, without xhad: enable/disable with
their checks and the statefile and redo-log VDIs, the failover planner's answers
(Xapi_ha_vm_failover: how many host failures the protected VMs survive), VM agility
(agility.ml) and the statefile SR check (xha_statefile.ml).

The heartbeat itself is not simulated: every live host is in the liveset while HA is enabled."""

from __future__ import annotations

import itertools
import time

from . import datamodel, errors
from .memory import vm_needs
from .registry import Context, api
from .state import PoolState

MiB = 1024**2
# xha_statefile.ml: a 4 KiB global section and one of 4 KiB per host, for 64 hosts
STATEFILE_SIZE = 4096 + 64 * 4096
# redo_log.ml: 4,000,000,000 bytes / 4 MiB, rounded up, times 4 MiB (the blocks the log writes)
REDO_LOG_SIZE = -(-4_000_000_000 // (4 * MiB)) * 4 * MiB
_VALID_PRIORITIES = ("restart", "best-effort", "")  # Constants.ha_valid_restart_priorities
_MAX_COMBINATIONS = 2000  # beyond this the planner fails the hosts holding most protected memory


def _pool(ctx: Context) -> str:
    return ctx.db.refs("pool")[0]


def _live_hosts(pool: PoolState) -> list[str]:
    db = pool.db
    return [h for h, rec in db.tables["host"].items() if db.get("host_metrics", rec["metrics"])["live"]]


# -- agility (agility.ml) ---------------------------------------------------------------------
def _enabled_hosts(pool: PoolState) -> set[str]:
    return {h for h, rec in pool.db.tables["host"].items() if rec["enabled"]}


def sr_properly_shared(pool: PoolState, sr: str) -> bool:
    db = pool.db
    rec = db.get("SR", sr)
    if not rec["shared"]:
        return False
    plugged = {db.get("PBD", p)["host"] for p in rec["PBDs"] if db.get("PBD", p)["currently_attached"]}
    return _enabled_hosts(pool) <= plugged


def network_properly_shared(pool: PoolState, network: str) -> bool:
    db = pool.db
    hosts = {
        db.get("PIF", p)["host"]
        for p in db.get("network", network)["PIFs"]
        if db.get("PIF", p)["bond_slave_of"] == datamodel.NULL
    }
    return _enabled_hosts(pool) <= hosts


def assert_agile(pool: PoolState, vm: str) -> None:
    db = pool.db
    with db.lock:
        rec = db.get("VM", vm)
        if rec["VGPUs"]:
            raise errors.XapiError("VM_HAS_VGPU", vm)
        if rec["VUSBs"]:
            raise errors.XapiError("VM_HAS_VUSBS", vm)
        for vbd in rec["VBDs"]:
            vbd_rec = db.get("VBD", vbd)
            if vbd_rec["empty"] or not db.exists("VDI", vbd_rec["VDI"]):
                continue
            sr = db.get("VDI", vbd_rec["VDI"])["SR"]
            if not sr_properly_shared(pool, sr):
                raise errors.XapiError("HA_CONSTRAINT_VIOLATION_SR_NOT_SHARED", sr)
        for vif in rec["VIFs"]:
            network = db.get("VIF", vif)["network"]
            if not network_properly_shared(pool, network):
                raise errors.XapiError("HA_CONSTRAINT_VIOLATION_NETWORK_NOT_SHARED", network)


def _is_agile(pool: PoolState, vm: str) -> bool:
    try:
        assert_agile(pool, vm)
    except errors.XapiError:
        return False
    return True


# -- the failover planner (Xapi_ha_vm_failover) -----------------------------------------------
def protected_vms(pool: PoolState, priorities: dict[str, str] | None = None) -> list[str]:
    """Running guests xapi restarts after a host failure (Helpers.vm_should_always_run: restart
    priority "restart"); `priorities` is a hypothetical configuration."""
    db = pool.db
    out = []
    for vm, rec in db.tables["VM"].items():
        if rec["is_control_domain"] or rec["is_a_template"] or rec["resident_on"] == datamodel.NULL:
            continue
        priority = rec["ha_restart_priority"] if priorities is None else priorities.get(vm, "")
        if priority == "restart":
            out.append(vm)
    return out


def plan(pool: PoolState, vms: list[str], live: list[str]) -> dict[str, str]:
    """vm -> the host it restarts on: biggest first, onto the live host with most memory free
    (xapi's binpacker), for the agile VMs that fit; the rest are left out."""
    db = pool.db
    free = {h: pool.memory.free(h) for h in live}
    for vm in vms:  # the failed VMs' memory is free again on any surviving host they ran on
        host = db.get("VM", vm)["resident_on"]
        if host in free:
            free[host] += vm_needs(db.get("VM", vm))
    out: dict[str, str] = {}
    for vm in sorted(vms, key=lambda v: vm_needs(db.get("VM", v)), reverse=True):
        need = vm_needs(db.get("VM", vm))
        if not free or not _is_agile(pool, vm):
            continue
        host = max(free, key=lambda h: free[h])
        if free[host] >= need:
            free[host] -= need
            out[vm] = host
    return out


def plan_exists_for(pool: PoolState, vms: list[str], n: int) -> bool:
    """Every agile protected VM can restart whatever n hosts fail (non-agile ones are excluded,
    as Plan_exists_excluding_non_agile_VMs is still a plan)."""
    db = pool.db
    hosts = list(db.tables["host"])
    live = _live_hosts(pool)
    if n >= len(hosts):
        return not vms
    agile = [v for v in vms if _is_agile(pool, v)]
    on: dict[str, list[str]] = {}
    for vm in agile:
        on.setdefault(db.get("VM", vm)["resident_on"], []).append(vm)
    combos: list[tuple[str, ...]]
    if _binomial(len(hosts), n) <= _MAX_COMBINATIONS:
        combos = list(itertools.combinations(hosts, n))
    else:
        heavy = sorted(hosts, key=lambda h: sum(vm_needs(db.get("VM", v)) for v in on.get(h, [])), reverse=True)
        combos = [tuple(heavy[:n])]
    for failed in combos:
        victims = [v for h in failed for v in on.get(h, [])]
        survivors = [h for h in live if h not in failed]
        if len(plan(pool, victims, survivors)) < len(victims):
            return False
    return True


def _binomial(n: int, k: int) -> int:
    out = 1
    for i in range(k):
        out = out * (n - i) // (i + 1)
    return out


def max_failures(pool: PoolState, vms: list[str]) -> int:
    n = 0
    while n + 1 < len(pool.db.tables["host"]) and plan_exists_for(pool, vms, n + 1):
        n += 1
    return n


def update_pool_status(ctx: Context) -> None:
    """Xapi_ha_vm_failover.update_pool_status: ha_plan_exists_for and ha_overcommitted."""
    db = ctx.db
    pool = _pool(ctx)
    n = max_failures(ctx.pool, protected_vms(ctx.pool))
    wanted = int(db.field("pool", pool, "ha_host_failures_to_tolerate"))
    db.set("pool", pool, ha_plan_exists_for=min(n, wanted), ha_overcommitted=wanted > n)


# -- the statefile SR (xha_statefile.ml) ------------------------------------------------------
def _fits(ctx: Context, sr: str, vdi_type: str, minimum: int) -> str | None:
    db = ctx.db
    for vdi in db.get("SR", sr)["VDIs"]:
        rec = db.get("VDI", vdi)
        if rec["type"] == vdi_type and rec["virtual_size"] >= minimum:
            return str(vdi)
    srec = db.get("SR", sr)
    free = srec["physical_size"] - srec["physical_utilisation"]
    aligned = sum(-(-size // (4 * MiB)) * 4 * MiB for size in (STATEFILE_SIZE, REDO_LOG_SIZE))
    if free < aligned:
        raise errors.XapiError("SR_SOURCE_SPACE_INSUFFICIENT", sr)
    return None


def assert_plugged_on_every_host(ctx: Context, sr: str) -> None:
    """SR_NO_PBDS unless every host has a plugged PBD to ``sr`` (xapi's check for pool-wide
    metadata: the HA statefile, database replication)."""
    db = ctx.db
    rec = db.get("SR", sr)
    connected = {db.get("PBD", p)["host"] for p in rec["PBDs"]}
    if len(connected) < len(db.tables["host"]):
        raise errors.XapiError("SR_NO_PBDS", sr)
    for pbd in rec["PBDs"]:
        if not db.get("PBD", pbd)["currently_attached"]:
            raise errors.XapiError("SR_NO_PBDS", sr)


def assert_sr_can_host_statefile(ctx: Context, sr: str) -> None:
    assert_plugged_on_every_host(ctx, sr)
    rec = ctx.db.get("SR", sr)
    # SM drivers without VDI_GENERATE_CONFIG / VDI_ATTACH_OFFLINE: ISO libraries and udev
    if rec["content_type"] == "iso" or rec["type"] in ("iso", "udev"):
        raise errors.XapiError("SR_OPERATION_NOT_SUPPORTED", sr)
    _fits(ctx, sr, "ha_statefile", STATEFILE_SIZE)
    _fits(ctx, sr, "redo_log", REDO_LOG_SIZE)


@api("SR.assert_can_host_ha_statefile", "sr")
def sr_assert_can_host_ha_statefile(ctx: Context, sr: str) -> None:
    with ctx.db.lock:
        assert_sr_can_host_statefile(ctx, sr)


def _find_or_create(ctx: Context, sr: str, vdi_type: str, size: int, label: str, description: str) -> str:
    from .devices import create_vdi

    found = _fits(ctx, sr, vdi_type, size)
    if found is not None:
        return found
    sm_config = {"type": "raw"} if vdi_type == "ha_statefile" else {}
    return create_vdi(
        ctx.db,
        {
            "name_label": label,
            "name_description": description,
            "SR": sr,
            "virtual_size": size,
            "type": vdi_type,
            "sharable": True,
            "sm_config": sm_config,
        },
    )


# -- the calls --------------------------------------------------------------------------------
@api("pool.enable_ha", "heartbeat_srs", "configuration")
def enable_ha(ctx: Context, heartbeat_srs: object, configuration: object) -> None:
    srs = datamodel.coerce("SR ref set", heartbeat_srs, "pool", "heartbeat_srs")
    config = datamodel.coerce("(string -> string) map", configuration, "pool", "configuration")
    db = ctx.db
    with db.lock:
        pool = _pool(ctx)
        if db.field("pool", pool, "ha_enabled"):
            raise errors.XapiError("HA_IS_ENABLED")
        unplugged = [
            p for p, rec in db.tables["PIF"].items() if rec["disallow_unplug"] and not rec["currently_attached"]
        ]
        if unplugged:
            raise errors.XapiError("REQUIRED_PIF_IS_UNPLUGGED", *unplugged)
        for host, rec in db.tables["host"].items():
            if not db.get("host_metrics", rec["metrics"])["live"]:
                raise errors.XapiError("HOST_OFFLINE", host)
        for sr in srs:
            db.get("SR", sr)
        candidates = srs or [sr for sr in db.refs("SR") if _can_host(ctx, sr)]
        if not candidates:
            raise errors.XapiError("CANNOT_CREATE_STATE_FILE")
        sr = candidates[0]
        assert_sr_can_host_statefile(ctx, sr)
        statefile = _find_or_create(
            ctx, sr, "ha_statefile", STATEFILE_SIZE, "Statefile for HA", "Used for storage heartbeating"
        )
        _find_or_create(ctx, sr, "redo_log", REDO_LOG_SIZE, "Metadata for HA", "Used for master failover")
        db.set("pool", pool, ha_statefiles=[statefile], ha_configuration=config, ha_plan_exists_for=0)
        uuid = db.get("VDI", statefile)["uuid"]
        live = _live_hosts(ctx.pool)
        for host in db.refs("host"):
            peers = [db.get("host", h)["uuid"] for h in live if h != host]
            db.set("host", host, ha_statefiles=[uuid], ha_network_peers=peers)
        db.set("pool", pool, ha_enabled=True)
        update_pool_status(ctx)
        if ctx.task:
            db.set("task", ctx.task, progress=1.0)


def _can_host(ctx: Context, sr: str) -> bool:
    try:
        assert_sr_can_host_statefile(ctx, sr)
    except errors.XapiError:
        return False
    return True


def disable(ctx: Context) -> None:
    """xapi_ha.disable_internal: the statefile and redo-log VDIs stay, for the next enable."""
    db = ctx.db
    pool = _pool(ctx)
    db.set("pool", pool, ha_enabled=False, ha_statefiles=[], ha_plan_exists_for=0, ha_overcommitted=False)
    for host in db.refs("host"):
        db.set("host", host, ha_statefiles=[], ha_network_peers=[])


@api("pool.disable_ha")
def disable_ha(ctx: Context) -> None:
    with ctx.db.lock:
        if not ctx.db.field("pool", _pool(ctx), "ha_enabled"):
            raise errors.XapiError("HA_NOT_ENABLED")
        disable(ctx)


@api("host.emergency_ha_disable", "soft")
def emergency_ha_disable(ctx: Context, soft: object) -> None:
    """Only the host that received the call leaves HA: it is dropped from the liveset (its
    peers' ha_network_peers) and forgets its statefile; the pool's flag is the master's."""
    is_soft = datamodel.coerce("bool", soft, "host", "soft")
    db = ctx.db
    with db.lock:
        host = ctx.host
        armed = bool(db.get("host", host)["ha_statefiles"])
        if not armed:
            if is_soft:
                return
            raise errors.XapiError("HA_NOT_ENABLED")
        uuid = db.get("host", host)["uuid"]
        for other in db.refs("host"):
            peers = db.get("host", other)["ha_network_peers"]
            if uuid in peers:
                db.set("host", other, ha_network_peers=[p for p in peers if p != uuid])
        db.set("host", host, ha_network_peers=[], **({} if is_soft else {"ha_statefiles": []}))


@api("pool.ha_prevent_restarts_for", "seconds")
def ha_prevent_restarts_for(ctx: Context, seconds: object) -> None:
    """Allowed with HA disabled too (CA-189075): it may be enabled within the time given."""
    n = datamodel.coerce("int", seconds, "pool", "seconds")
    ctx.pool.settings["ha_restarts_prevented_until"] = time.monotonic() + n


@api("pool.ha_failover_plan_exists", "n")
def ha_failover_plan_exists(ctx: Context, n: object) -> bool:
    count = datamodel.coerce("int", n, "pool", "n")
    with ctx.db.lock:
        return plan_exists_for(ctx.pool, protected_vms(ctx.pool), count)


@api("pool.ha_compute_max_host_failures_to_tolerate")
def ha_compute_max_host_failures_to_tolerate(ctx: Context) -> int:
    db = ctx.db
    with db.lock:
        n = max_failures(ctx.pool, protected_vms(ctx.pool))
        pool = _pool(ctx)
        if db.field("pool", pool, "ha_enabled"):
            wanted = int(db.field("pool", pool, "ha_host_failures_to_tolerate"))
            db.set("pool", pool, ha_overcommitted=wanted > n, ha_plan_exists_for=min(n, wanted))
        return n


@api("pool.ha_compute_hypothetical_max_host_failures_to_tolerate", "configuration")
def ha_compute_hypothetical_max(ctx: Context, configuration: object) -> int:
    config = datamodel.coerce("(VM ref -> string) map", configuration, "pool", "configuration")
    for priority in config.values():
        if priority not in _VALID_PRIORITIES:
            raise errors.XapiError("INVALID_VALUE", "ha_restart_priority", priority)
    with ctx.db.lock:
        for vm in config:
            ctx.db.get("VM", vm)
        vms = [vm for vm, priority in config.items() if priority == "restart"]
        return max_failures(ctx.pool, vms)


@api("pool.ha_compute_vm_failover_plan", "failed_hosts", "failed_vms")
def ha_compute_vm_failover_plan(ctx: Context, failed_hosts: object, failed_vms: object) -> dict[str, dict[str, str]]:
    hosts = datamodel.coerce("host ref set", failed_hosts, "pool", "failed_hosts")
    vms = datamodel.coerce("VM ref set", failed_vms, "pool", "failed_vms")
    db = ctx.db
    with db.lock:
        for vm in vms:
            db.get("VM", vm)
        out: dict[str, dict[str, str]] = {}
        for vm in vms:
            try:
                assert_agile(ctx.pool, vm)
                out[vm] = {"error_code": "HOST_NOT_ENOUGH_FREE_MEMORY"}
            except errors.XapiError as e:
                out[vm] = {"error_code": e.code}
        live = [h for h in _live_hosts(ctx.pool) if h not in hosts]
        for vm, host in plan(ctx.pool, vms, live).items():
            out[vm] = {"host": host}
        return out


@api("VM.assert_agile", "self")
def vm_assert_agile(ctx: Context, self: str) -> None:
    assert_agile(ctx.pool, self)
