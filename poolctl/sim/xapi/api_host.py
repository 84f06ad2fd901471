"""host.* and pool.* calls beyond the generic record accessors."""

from __future__ import annotations

from . import errors, lifecycle, ops, schema
from .registry import Context, api


@api("host.get_servertime", "host")
def get_servertime(ctx: Context, host: str) -> object:
    ctx.db.get("host", host)
    return schema.now()


@api("host.get_server_localtime", "host")
def get_server_localtime(ctx: Context, host: str) -> object:
    ctx.db.get("host", host)
    return schema.now()


@api("host.get_management_interface", "host")
def get_management_interface(ctx: Context, host: str) -> str:
    pifs = ctx.db.find("PIF", lambda rec: rec["host"] == host and rec["management"])
    ctx.db.get("host", host)
    return pifs[0] if pifs else schema.NULL


@api("host.disable", "host")
def disable(ctx: Context, host: str) -> None:
    ctx.db.set("host", host, enabled=False)


@api("host.enable", "host")
def enable(ctx: Context, host: str) -> None:
    ctx.db.set("host", host, enabled=True)


@api("host.get_vms_which_prevent_evacuation", "self")
def get_vms_which_prevent_evacuation(ctx: Context, self: str) -> dict[str, list[str]]:
    """Resident VMs that could not be live-migrated off `self`, with the reason for each."""
    blockers: dict[str, list[str]] = {}
    with ctx.db.lock:
        others = [h for h in ctx.db.refs("host") if h != self]
        for vm in ctx.db.get("host", self)["resident_VMs"]:
            if ctx.db.get("VM", vm)["is_control_domain"]:
                continue
            error = lifecycle.check(ctx.db, vm, "pool_migrate") or _no_destination(ctx, vm, others)
            if error is not None:
                blockers[vm] = error.description
    return blockers


def _no_destination(ctx: Context, vm: str, hosts: list[str]) -> errors.XapiError | None:
    last = errors.XapiError("NO_HOSTS_AVAILABLE")
    for host in hosts:
        try:
            ops.assert_can_boot_here(ctx.pool, vm, host)
            return None
        except errors.XapiError as exc:
            last = exc
    return last
