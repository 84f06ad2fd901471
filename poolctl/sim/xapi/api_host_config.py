"""Host OS settings xapi keeps in the database: SSH (enable/disable, timeout, auto mode),
console idle timeout and time zones (xapi_host.ml; xapi_pool.ml's Ssh module applies each to
every host and names the hosts it failed on)."""

from __future__ import annotations

import zoneinfo
from datetime import timedelta

from . import datamodel, errors
from .registry import Context, api
from .schema import EPOCH, now

_MAX_SSH_TIMEOUT = 172800  # two days, xapi_host.set_ssh_enabled_timeout


@api("host.enable_ssh", "self")
def enable_ssh(ctx: Context, self: str) -> None:
    with ctx.db.lock:
        timeout = int(ctx.db.field("host", self, "ssh_enabled_timeout"))
        expiry = now() + timedelta(seconds=timeout) if timeout else EPOCH
        ctx.db.set("host", self, ssh_auto_mode=False, ssh_enabled=True, ssh_expiry=expiry)


@api("host.disable_ssh", "self")
def disable_ssh(ctx: Context, self: str) -> None:
    ctx.db.set("host", self, ssh_enabled=False, ssh_expiry=now())


def check_ssh_timeout(value: int) -> None:
    if not 0 <= value <= _MAX_SSH_TIMEOUT:  # the same check as setters.py's host setter
        raise errors.XapiError("INVALID_VALUE", "ssh_enabled_timeout", value)


@api("host.list_timezones", "self")
def list_timezones(ctx: Context, self: str) -> list[str]:
    ctx.db.get("host", self)
    return sorted(zoneinfo.available_timezones())


@api("host.set_timezone", "self", "value")
def set_timezone(ctx: Context, self: str, value: str) -> None:
    if str(value) not in zoneinfo.available_timezones():
        raise errors.XapiError("INVALID_VALUE", "timezone", value)
    ctx.db.set("host", self, timezone=str(value))


def _every_host(ctx: Context, error: str, action: object) -> None:
    failed = []
    for host in ctx.db.refs("host"):
        try:
            action(host)  # type: ignore[operator]
        except errors.XapiError:
            failed.append(host)
    if failed:
        raise errors.XapiError(error, *failed)


@api("pool.enable_ssh", "self")
def pool_enable_ssh(ctx: Context, self: str) -> None:
    _every_host(ctx, "ENABLE_SSH_PARTIALLY_FAILED", lambda h: enable_ssh(ctx, h))


@api("pool.disable_ssh", "self")
def pool_disable_ssh(ctx: Context, self: str) -> None:
    _every_host(ctx, "DISABLE_SSH_PARTIALLY_FAILED", lambda h: disable_ssh(ctx, h))


def _pool_set(ctx: Context, field: str, ty: str, value: object, error: str) -> None:
    v = datamodel.coerce(ty, value, "pool", "value")

    def one(host: str) -> None:  # each host checks the value itself, as Client.Host.set_* does
        if field == "ssh_enabled_timeout":
            check_ssh_timeout(v)
        ctx.db.set("host", host, **{field: v})

    _every_host(ctx, error, one)


@api("pool.set_ssh_enabled_timeout", "self", "value")
def pool_set_ssh_enabled_timeout(ctx: Context, self: str, value: object) -> None:
    _pool_set(ctx, "ssh_enabled_timeout", "int", value, "SET_SSH_TIMEOUT_PARTIALLY_FAILED")


@api("pool.set_console_idle_timeout", "self", "value")
def pool_set_console_idle_timeout(ctx: Context, self: str, value: object) -> None:
    _pool_set(ctx, "console_idle_timeout", "int", value, "SET_CONSOLE_TIMEOUT_PARTIALLY_FAILED")


@api("pool.set_ssh_auto_mode", "self", "value")
def pool_set_ssh_auto_mode(ctx: Context, self: str, value: object) -> None:
    _pool_set(ctx, "ssh_auto_mode", "bool", value, "SET_SSH_AUTO_MODE_PARTIALLY_FAILED")
