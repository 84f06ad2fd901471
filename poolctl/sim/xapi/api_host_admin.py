"""Pool and host administration that xapi keeps in its database (xapi_pool.ml, xapi_host.ml,
xapi_vm.ml): the update repositories' proxy and sync schedule, the telemetry id, editions,
mandatory guidance, powering a host on, NTP status and the clock, UEFI secure boot state.

The simulated pool's NTP client is always synchronised with the servers its mode names; its
clock is the machine's plus whatever set_servertime asked for (a per-host offset)."""

from __future__ import annotations

import base64
import threading
from datetime import datetime, timedelta
from typing import Any

from . import datamodel, errors, schema
from .db import new_uuid
from .registry import Context, api
from .schema import new_record

# Xapi_globs.factory_ntp_servers as XCP-ng configures it (chrony's default pool)
FACTORY_NTP = ("0.pool.ntp.org", "1.pool.ntp.org", "2.pool.ntp.org", "3.pool.ntp.org")


# -- secrets (xapi_secret.ml) -----------------------------------------------------------------
def new_secret(ctx: Context, value: str) -> str:
    return ctx.db.create("secret", new_record("secret", value=value))


def drop_secret(ctx: Context, ref: str) -> None:
    if ref != datamodel.NULL and ctx.db.exists("secret", ref):
        ctx.db.destroy("secret", ref)


@api("secret.create", "args")
def secret_create(ctx: Context, args: object) -> str:
    from .api_vm_copies import record_fields

    fields = record_fields("secret", args)
    return ctx.db.create("secret", new_record("secret", **fields))


@api("secret.destroy", "self")
def secret_destroy(ctx: Context, self: str) -> None:
    ctx.db.destroy("secret", str(self))  # HANDLE_INVALID for a ref that is not a secret


# -- update repositories, telemetry ------------------------------------------------------------
@api("pool.configure_repository_proxy", "self", "url", "username", "password")
def configure_repository_proxy(ctx: Context, self: str, url: str, username: str, password: str) -> None:
    url, username, password = str(url), str(username), str(password)
    if not url.lower().startswith(("http://", "https://")):
        raise errors.XapiError("INVALID_REPOSITORY_PROXY_URL", url)
    if bool(username) != bool(password) or "\n" in username or "\n" in password:
        raise errors.XapiError("INVALID_REPOSITORY_PROXY_CREDENTIAL")
    with ctx.db.lock:
        old = ctx.db.field("pool", self, "repository_proxy_password")
        ref = new_secret(ctx, password) if password else datamodel.NULL  # only the secret's ref is in the record
        ctx.db.set(
            "pool", self, repository_proxy_url=url, repository_proxy_username=username, repository_proxy_password=ref
        )
        drop_secret(ctx, old)


@api("pool.disable_repository_proxy", "self")
def disable_repository_proxy(ctx: Context, self: str) -> None:
    with ctx.db.lock:
        old = ctx.db.field("pool", self, "repository_proxy_password")
        ctx.db.set(
            "pool",
            self,
            repository_proxy_url="",
            repository_proxy_username="",
            repository_proxy_password=datamodel.NULL,
        )
        drop_secret(ctx, old)


@api("pool.configure_update_sync", "self", "update_sync_frequency", "update_sync_day")
def configure_update_sync(ctx: Context, self: str, update_sync_frequency: str, update_sync_day: object) -> None:
    freq = datamodel.coerce("enum update_sync_frequency", update_sync_frequency, "pool", "update_sync_frequency")
    day = datamodel.coerce("int", update_sync_day, "pool", "update_sync_day")
    if freq == "weekly" and not 0 <= day <= 6:
        raise errors.XapiError("INVALID_UPDATE_SYNC_DAY", day)
    ctx.db.set("pool", self, update_sync_frequency=freq, update_sync_day=day if freq == "weekly" else 0)


@api("pool.reset_telemetry_uuid", "self")
def reset_telemetry_uuid(ctx: Context, self: str) -> None:
    with ctx.db.lock:
        old = ctx.db.field("pool", self, "telemetry_uuid")
        ctx.db.set("pool", self, telemetry_uuid=new_secret(ctx, new_uuid()))
        drop_secret(ctx, old)


# -- editions, guidance ------------------------------------------------------------------------
@api("host.apply_edition", "host", "edition", "force")
def host_apply_edition(ctx: Context, host: str, edition: str, force: object) -> None:
    """v6d's answer: an edition the host does not offer is INVALID_EDITION [edition]."""
    datamodel.coerce("bool", force, "host", "force")
    with ctx.db.lock:
        rec = ctx.db.get("host", host)
        if str(edition) not in rec["editions"]:
            raise errors.XapiError("INVALID_EDITION", edition)
        ctx.db.set("host", host, edition=str(edition))


@api("pool.apply_edition", "self", "edition")
def pool_apply_edition(ctx: Context, self: str, edition: str) -> None:
    """Xapi_pool_license.apply_edition_with_rollback: every host, or none (earlier ones rolled back)."""
    db = ctx.db
    with db.lock:
        db.get("pool", self)
        before = {h: db.get("host", h)["edition"] for h in db.refs("host")}
        try:
            for host in before:
                host_apply_edition(ctx, host, edition, False)
        except errors.XapiError:
            for host, old in before.items():
                db.set("host", host, edition=old)
            raise


@api("host.emergency_clear_mandatory_guidance")
def emergency_clear_mandatory_guidance(ctx: Context) -> None:
    ctx.db.set("host", ctx.host, pending_guidances=[])


# -- power -------------------------------------------------------------------------------------
@api("host.power_on", "host")
def power_on(ctx: Context, host: str) -> None:
    """The power-on plugin wakes the host by its power_on_mode; with none it fails, and xapi
    says so in its words (failwith: INTERNAL_ERROR)."""
    from .api_pool import _back

    db = ctx.db
    with db.lock:
        rec = db.get("host", host)
        if not rec["power_on_mode"]:
            raise errors.XapiError("INTERNAL_ERROR", "The host failed to power on.")
        if db.get("host_metrics", rec["metrics"])["live"]:
            return  # a wake-on-lan packet to a running host changes nothing
    timer = threading.Timer(max(ctx.pool.power_seconds, 0.05), _back, (ctx, host))
    timer.daemon = True
    timer.start()


# -- NTP and the clock --------------------------------------------------------------------------
def ntp_servers(rec: dict[str, Any]) -> list[str]:
    mode = rec["ntp_mode"]
    if mode == "Disabled":
        return []
    if mode == "Custom":
        return [str(s) for s in rec["ntp_custom_servers"]]
    if mode == "DHCP":
        return ["dhcp"]
    return list(FACTORY_NTP)


@api("host.get_ntp_servers_status", "self")
def get_ntp_servers_status(ctx: Context, self: str) -> dict[str, str]:
    servers = ntp_servers(ctx.db.snapshot("host", self))
    # chronyc sources: the first is the one synced to, the rest are combined with it
    return {s: "synced" if i == 0 else "combined" for i, s in enumerate(servers)}


@api("host.get_ntp_synchronized", "self")
def get_ntp_synchronized(ctx: Context, self: str) -> bool:
    return bool(ntp_servers(ctx.db.snapshot("host", self)))


@api("host.set_servertime", "self", "value")
def set_servertime(ctx: Context, self: str, value: object) -> None:
    when = datamodel.coerce("datetime", value, "host", "value")
    assert isinstance(when, datetime)
    with ctx.db.lock:
        if ctx.db.field("host", self, "ntp_mode") != "Disabled":
            raise errors.XapiError("NOT_ALLOWED_WHEN_NTP_IS_ENABLED", self)
        offsets: dict[str, timedelta] = ctx.pool.settings.setdefault("clock_offsets", {})  # type: ignore[assignment]
        offsets[self] = when - schema.now()


# -- UEFI secure boot --------------------------------------------------------------------------
_KEYS = {"user": ("PK", "KEK", "db", "dbx"), "setup": ("KEK", "db", "dbx")}


def _varstore_keys(nvram: dict[str, str]) -> list[str]:
    """The simulator keeps the key names varstore-ls would list in EFI-variables (base64)."""
    try:
        return base64.b64decode(nvram["EFI-variables"]).decode().split()
    except (ValueError, UnicodeDecodeError):
        return []


@api("VM.get_secureboot_readiness", "self")
def get_secureboot_readiness(ctx: Context, self: str) -> str:
    rec = ctx.db.snapshot("VM", self)
    if rec["HVM_boot_params"].get("firmware", "bios") != "uefi":
        return "not_supported"
    if rec["platform"].get("secureboot", "false").lower() not in ("true", "1", "on"):
        return "disabled"
    if "EFI-variables" not in rec["NVRAM"]:
        return "first_boot"
    keys = set(_varstore_keys(rec["NVRAM"]))
    if "PK" not in keys:
        return "setup_mode"
    if {"KEK", "db", "dbx"} <= keys:
        return "ready"
    if {"KEK", "db"} <= keys:
        return "ready_no_dbx"
    return "certs_incomplete"


@api("VM.set_uefi_mode", "self", "mode")
def set_uefi_mode(ctx: Context, self: str, mode: str) -> str:
    """varstore-sb-state: user mode enrols the pool's keys, setup mode clears the PK."""
    m = datamodel.coerce("enum vm_uefi_mode", mode, "VM", "mode")
    with ctx.db.lock:
        nvram = dict(ctx.db.field("VM", self, "NVRAM"))
        nvram["EFI-variables"] = base64.b64encode(" ".join(_KEYS[m]).encode()).decode()
        ctx.db.set("VM", self, NVRAM=nvram)
    return ""


@api("VM.update_secureboot_certificates_on_boot", "self", "mark")
def update_secureboot_certificates_on_boot(ctx: Context, self: str, mark: object) -> None:
    on = datamodel.coerce("bool", mark, "VM", "mark")
    with ctx.db.lock:
        current = ctx.db.field("VM", self, "secureboot_certificates_state")
        if on and current == "update_available":
            ctx.db.set("VM", self, secureboot_certificates_state="update_on_boot")
        elif not on and current == "update_on_boot":
            ctx.db.set("VM", self, secureboot_certificates_state="update_available")
        elif current not in ("update_available", "update_on_boot"):
            word = "set" if on else "clear"
            raise errors.XapiError(
                "OPERATION_NOT_ALLOWED",
                f"Cannot {word} update_on_boot: VM.secureboot_certificates_state is not in a valid state",
            )
