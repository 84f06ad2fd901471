"""Further host.* and pool.* calls (xapi_host.ml, xapi_pool.ml): memory figures, hostname,
scheduler granularity, power-on mode, display, declaring a dead host, forgetting a host, and
the pool's own switches (redo log, vswitch controller, https_only, guest agent config...)."""

from __future__ import annotations

import re

from . import datamodel, errors, host_lifecycle, ops
from .registry import Context, api, known


def _pool(ctx: Context) -> str:
    return ctx.db.refs("pool")[0]


@api("host.compute_free_memory", "host")
def compute_free_memory(ctx: Context, host: str) -> int:
    return max(ctx.pool.memory.free(host), 0)


@api("host.compute_memory_overhead", "host")
def compute_memory_overhead(ctx: Context, host: str) -> int:
    return int(ctx.db.field("host", host, "memory_overhead"))


@api("host.list_methods", session=True)
def list_methods(ctx: Context) -> list[str]:
    return known()


@api("host.has_extension", "host", "name")
def has_extension(ctx: Context, host: str, name: str) -> bool:
    ctx.db.get("host", host)
    return False  # a simulated host has no /etc/xapi.d/extensions


@api("host.set_hostname_live", "host", "hostname")
def set_hostname_live(ctx: Context, host: str, hostname: str) -> None:
    name = str(hostname)
    if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?", name):
        raise errors.XapiError("HOST_NAME_INVALID", "hostname contains invalid characters")
    ctx.db.set("host", host, hostname=name)


@api("host.get_sched_gran", "self")
def get_sched_gran(ctx: Context, self: str) -> str:
    return str(ctx.db.field("host", self, "other_config").get("sched-gran", "cpu"))


@api("host.set_sched_gran", "self", "value")
def set_sched_gran(ctx: Context, self: str, value: str) -> None:
    datamodel.coerce("enum host_sched_gran", value, "host", "value")
    with ctx.db.lock:
        other = dict(ctx.db.field("host", self, "other_config"))
        ctx.db.set("host", self, other_config={**other, "sched-gran": str(value)})


@api("host.set_power_on_mode", "self", "power_on_mode", "power_on_config")
def set_power_on_mode(ctx: Context, self: str, power_on_mode: str, power_on_config: object) -> None:
    config = datamodel.coerce("(string -> string) map", power_on_config, "host", "power_on_config")
    if power_on_mode not in ("", "wake-on-lan", "iLO", "DRAC") and not str(power_on_mode).startswith("custom"):
        raise errors.XapiError("INVALID_VALUE", "power_on_mode", power_on_mode)
    with ctx.db.lock:
        ctx.db.set("host", self, power_on_mode=str(power_on_mode), power_on_config=config)
        host_lifecycle.update_allowed(ctx.db, self)


@api("host.enable_display", "host")
def enable_display(ctx: Context, host: str) -> str:
    with ctx.db.lock:
        new = (
            "enabled"
            if ctx.db.field("host", host, "display") in ("enabled", "enable_on_reboot")
            else "enable_on_reboot"
        )
        ctx.db.set("host", host, display=new)
        return new


@api("host.disable_display", "host")
def disable_display(ctx: Context, host: str) -> str:
    with ctx.db.lock:
        new = (
            "disabled"
            if ctx.db.field("host", host, "display") in ("disabled", "disable_on_reboot")
            else "disable_on_reboot"
        )
        ctx.db.set("host", host, display=new)
        return new


@api("host.declare_dead", "host")
def declare_dead(ctx: Context, host: str) -> None:
    """The host is gone: its guests are reset to Halted and it leaves the live set."""
    db = ctx.db
    with db.lock:
        for vm in list(db.get("host", host)["resident_VMs"]):
            if not db.get("VM", vm)["is_control_domain"]:
                ops.make_nonresident(ctx.pool, vm, "Halted")
        db.set("host_metrics", db.get("host", host)["metrics"], live=False)
        host_lifecycle.update_allowed(db, host)


@api("host.destroy", "self")
def destroy(ctx: Context, self: str) -> None:
    """xapi_host.destroy: only a dead member, with nothing of its own running."""
    db = ctx.db
    with db.lock:
        rec = db.get("host", self)
        if self == ctx.pool.master:
            raise errors.XapiError("HOST_CANNOT_DESTROY_SELF", self)
        if db.get("host_metrics", rec["metrics"])["live"]:
            raise errors.XapiError("HOST_IS_LIVE", self)
        guests = [v for v in rec["resident_VMs"] if not db.get("VM", v)["is_control_domain"]]
        if guests:
            raise errors.XapiError("HOST_HAS_RESIDENT_VMS", self)
        for cls in ("PBD", "PIF", "host_cpu"):
            for ref in db.find(cls, lambda r: r["host"] == self):
                db.destroy(cls, ref)
        for vm in rec["resident_VMs"]:
            db.destroy("VM", vm)
        db.destroy("host_metrics", rec["metrics"])
        db.destroy("host", self)


# -- pool -----------------------------------------------------------------------------------
@api("pool.sync_database", session=True)
def sync_database(ctx: Context) -> None:
    """One database process serves every simulated host: it is always in sync."""


@api("pool.enable_redo_log", "sr")
def enable_redo_log(ctx: Context, sr: str) -> None:
    ctx.db.get("SR", sr)
    ctx.db.set("pool", _pool(ctx), redo_log_enabled=True)


@api("pool.disable_redo_log", session=True)
def disable_redo_log(ctx: Context) -> None:
    ctx.db.set("pool", _pool(ctx), redo_log_enabled=False)


@api("pool.set_vswitch_controller", "address")
def set_vswitch_controller(ctx: Context, address: str) -> None:
    ctx.db.set("pool", _pool(ctx), vswitch_controller=str(address))


@api("pool.set_https_only", "self", "value")
def set_https_only(ctx: Context, self: str, value: bool) -> None:
    flag = datamodel.coerce("bool", value, "pool", "value")
    with ctx.db.lock:
        for host in ctx.db.refs("host"):
            ctx.db.set("host", host, https_only=flag)


@api("pool.add_to_guest_agent_config", "self", "key", "value")
def add_to_guest_agent_config(ctx: Context, self: str, key: str, value: str) -> None:
    with ctx.db.lock:
        current = ctx.db.field("pool", self, "guest_agent_config")
        ctx.db.set("pool", self, guest_agent_config={**current, str(key): str(value)})


@api("pool.remove_from_guest_agent_config", "self", "key")
def remove_from_guest_agent_config(ctx: Context, self: str, key: str) -> None:
    with ctx.db.lock:
        current = ctx.db.field("pool", self, "guest_agent_config")
        ctx.db.set("pool", self, guest_agent_config={k: v for k, v in current.items() if k != key})


@api("pool.get_license_state", "self")
def get_license_state(ctx: Context, self: str) -> dict[str, str]:
    ctx.db.get("pool", self)
    return {"edition": "xcp-ng", "expiry": "never"}


@api("pool.eject", "host")
def eject(ctx: Context, host: str) -> None:
    """The member leaves the pool (and, in xapi, reboots into a pool of its own)."""
    db = ctx.db
    with db.lock:
        if host == ctx.pool.master:
            raise errors.operation_not_allowed("Cannot eject the pool master")
        guests = [v for v in db.get("host", host)["resident_VMs"] if not db.get("VM", v)["is_control_domain"]]
        if guests:
            raise errors.operation_not_allowed("VMs are running on the host")
        db.set("host_metrics", db.get("host", host)["metrics"], live=False)
        destroy(ctx, host)


@api("host.enable_local_storage_caching", "host", "sr")
def enable_local_storage_caching(ctx: Context, host: str, sr: str) -> None:
    """The SR must be the host's own (a PBD of it on this host, not shared)."""
    db = ctx.db
    with db.lock:
        rec = db.get("SR", sr)
        mine = any(db.get("PBD", p)["host"] == host for p in rec["PBDs"])
        if rec["shared"] or not mine:
            raise errors.XapiError("SR_OPERATION_NOT_SUPPORTED", sr)
        db.set("host", host, local_cache_sr=sr)
        db.set("SR", sr, local_cache_enabled=True)


@api("host.disable_local_storage_caching", "host")
def disable_local_storage_caching(ctx: Context, host: str) -> None:
    db = ctx.db
    with db.lock:
        sr = db.get("host", host)["local_cache_sr"]
        db.set("host", host, local_cache_sr="OpaqueRef:NULL")
        if db.exists("SR", sr):
            db.set("SR", sr, local_cache_enabled=False)


@api("pool.enable_local_storage_caching", "self")
def pool_enable_local_storage_caching(ctx: Context, self: str) -> None:
    """On every host with a local ext SR (xapi_pool: the file-based SRs can cache)."""
    db = ctx.db
    with db.lock:
        for host in db.refs("host"):
            for pbd in db.get("host", host)["PBDs"]:
                sr = db.get("PBD", pbd)["SR"]
                if db.get("SR", sr)["type"] in ("ext", "nfs") and not db.get("SR", sr)["shared"]:
                    enable_local_storage_caching(ctx, host, sr)
                    break


@api("pool.disable_local_storage_caching", "self")
def pool_disable_local_storage_caching(ctx: Context, self: str) -> None:
    for host in ctx.db.refs("host"):
        disable_local_storage_caching(ctx, host)
