"""host.* and pool.* calls beyond the generic record accessors: maintenance (disable, enable,
evacuation) as xapi_host.ml and message_forwarding.ml do it."""

from __future__ import annotations

from datetime import timedelta

from . import errors, evacuation, host_lifecycle, schema
from .db import NULL_REF, new_ref
from .registry import Context, api


@api("host.get_servertime", "host")
def get_servertime(ctx: Context, host: str) -> object:
    ctx.db.get("host", host)
    return schema.now() + _clock_offset(ctx, host)


@api("host.get_server_localtime", "host")
def get_server_localtime(ctx: Context, host: str) -> object:
    ctx.db.get("host", host)
    return schema.now() + _clock_offset(ctx, host)


def _clock_offset(ctx: Context, host: str) -> timedelta:
    """What host.set_servertime moved this host's clock by (api_host_admin.py)."""
    offsets: dict[str, timedelta] = ctx.pool.settings.get("clock_offsets", {})  # type: ignore[assignment]
    return offsets.get(host, timedelta(0))


@api("host.get_management_interface", "host")
def get_management_interface(ctx: Context, host: str) -> str:
    pifs = ctx.db.find("PIF", lambda rec: rec["host"] == host and rec["management"])
    ctx.db.get("host", host)
    return pifs[0] if pifs else schema.NULL


@api("host.disable", "host", "auto_enable", optional=1)
def disable(ctx: Context, host: str, auto_enable: bool = True) -> None:
    """xapi_host.ml disable: a no-op on a disabled host. (auto_enable=false persists the state
    across toolstack restarts, which a simulated host never has.)"""
    with ctx.db.lock:
        if ctx.db.get("host", host)["enabled"]:
            ctx.db.set("host", host, enabled=False)
        host_lifecycle.update_allowed(ctx.db, host)


@api("host.enable", "host")
def enable(ctx: Context, host: str) -> None:
    """message_forwarding.ml enable: runs as the host's `enable` operation."""
    db = ctx.db
    db.get("host", host)
    with host_lifecycle.operation(db, host, ctx.task or new_ref(), "enable"):
        db.set("host", host, enabled=True)


@api("host.assert_can_evacuate", "host")
def assert_can_evacuate(ctx: Context, host: str) -> None:
    evacuation.assert_can_evacuate(ctx.pool, host)


@api("host.get_vms_which_prevent_evacuation", "self")
def get_vms_which_prevent_evacuation(ctx: Context, self: str) -> dict[str, list[str]]:
    """Resident VMs that could not be live-migrated off `self`, with the error for each."""
    found = evacuation.blockers(evacuation.plan(ctx.pool, self))
    return {vm: error.description for vm, error in found.items()}


@api("host.evacuate", "host", "network", "evacuate_batch_size", optional=2)
def evacuate(ctx: Context, host: str, network: str = NULL_REF, evacuate_batch_size: int = 0) -> None:
    try:
        batch_size = int(evacuate_batch_size)
    except (TypeError, ValueError):
        raise errors.field_type_error("evacuate_batch_size") from None
    evacuation.evacuate(ctx.pool, ctx.task, host, str(network), batch_size)


@api("host.get_uncooperative_resident_VMs", "self")
def get_uncooperative_resident_VMs(ctx: Context, self: str) -> list[str]:
    """Deprecated in xapi, whose implementation returns [] whatever the host."""
    return []
