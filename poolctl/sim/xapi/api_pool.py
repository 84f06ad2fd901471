"""pool.designate_new_master and host.reboot / host.shutdown (xapi_pool.ml, xapi_host.ml,
message_forwarding.ml): reboot and shutdown run as the host's operation, need a disabled host
(HOST_NOT_DISABLED), stop its resident guests and take the host out of the pool's live set;
a rebooted host comes back live and enabled after power_seconds."""

from __future__ import annotations

import threading

from . import host_lifecycle, ops
from .db import new_ref
from .registry import Context, api


@api("pool.designate_new_master", "host")
def designate_new_master(ctx: Context, host: str) -> None:
    """The new master serves the pool from now on; the old one answers as a member (logins
    HOST_IS_SLAVE). Sessions stay valid: they live in the pool's database, which moves along."""
    db = ctx.db
    with db.lock:
        db.get("host", host)
        if host == ctx.pool.master:
            return
        pool = db.refs("pool")[0]
        db.set("pool", pool, master=host)
        ctx.pool.master = host


def _power_off(ctx: Context, host: str, op: str) -> None:
    db = ctx.db
    with host_lifecycle.operation(db, host, ctx.task or new_ref(), op), db.lock:
        for vm in list(db.get("host", host)["resident_VMs"]):
            if not db.get("VM", vm)["is_control_domain"]:
                ops.make_nonresident(ctx.pool, vm, "Halted")
        db.set("host_metrics", db.get("host", host)["metrics"], live=False)
    if op == "reboot":
        timer = threading.Timer(max(ctx.pool.power_seconds, 0.05), _back, (ctx, host))
        timer.daemon = True
        timer.start()
    host_lifecycle.update_allowed(db, host)


def _back(ctx: Context, host: str) -> None:
    db = ctx.db
    with db.lock:
        if db.exists("host", host):
            db.set("host_metrics", db.get("host", host)["metrics"], live=True)
            db.set("host", host, enabled=True)
            host_lifecycle.update_allowed(db, host)


@api("host.reboot", "host")
def reboot(ctx: Context, host: str) -> None:
    _power_off(ctx, host, "reboot")


@api("host.shutdown", "host")
def shutdown(ctx: Context, host: str) -> None:
    _power_off(ctx, host, "shutdown")
