"""Emergency master changes (xapi_pool.ml, xapi_pool_transition.ml). Each host's toolstack
knows its master by address (pool.conf): emergency_transition_to_master makes the host the
pool's master, emergency_reset_master points a member at a master address, and both restart
the host's toolstack. A member pointed at an address where no master answers waits for it:
its toolstack stays down until the master's recover_slaves points it back (forwarded with the
pool secret, which reaches a member whatever it thinks)."""

from __future__ import annotations

import math
import socket

from . import errors
from .api_host_plugins import AGENT_RESTART_SECONDS, _stop_agent_later
from .registry import Context, api


def _ha_armed(ctx: Context, host: str) -> bool:
    return bool(ctx.db.get("host", host)["ha_statefiles"])  # Localdb ha_armed, as api_ha keeps it


def _control(ctx: Context) -> object | None:
    return ctx.pool.settings.get("agent_control")


@api("pool.emergency_transition_to_master")
def emergency_transition_to_master(ctx: Context) -> None:
    db = ctx.db
    with db.lock:
        host = ctx.host
        if _ha_armed(ctx, host):
            raise errors.XapiError("HA_IS_ENABLED")
        if host == ctx.pool.master:
            return  # Xapi_pool_transition.become_master: already the master
        db.set("pool", db.refs("pool")[0], master=host)
        ctx.pool.master = host
    _stop_agent_later(ctx, host, AGENT_RESTART_SECONDS)


def _reset_master(ctx: Context, host: str, master_address: str) -> None:
    """become_another_masters_slave on `host`: its toolstack restarts towards the address."""
    try:
        address = socket.gethostbyname(master_address)
    except OSError:
        raise errors.internal_error(f"gethostbyname: cannot resolve {master_address}") from None
    master_address_now = ctx.db.field("host", ctx.pool.master, "address")
    waits = address != master_address_now
    _stop_agent_later(ctx, host, math.inf if waits else AGENT_RESTART_SECONDS)


@api("pool.emergency_reset_master", "master_address")
def emergency_reset_master(ctx: Context, master_address: str) -> None:
    with ctx.db.lock:
        if _ha_armed(ctx, ctx.host):
            raise errors.XapiError("HA_IS_ENABLED")
        _reset_master(ctx, ctx.host, str(master_address))


@api("pool.recover_slaves")
def recover_slaves(ctx: Context) -> list[str]:
    """Every other host is pointed at this host's address; the ones reached are returned."""
    db = ctx.db
    control = _control(ctx)
    recovered = []
    with db.lock:
        mine = db.field("host", ctx.host, "address")
        for host, rec in db.tables["host"].items():
            if host == ctx.host or not db.get("host_metrics", rec["metrics"])["live"]:
                continue
            if control is not None:
                control.start_agent(host)  # type: ignore[attr-defined]
            _reset_master(ctx, host, mine)
            recovered.append(host)
    return recovered
