"""External authentication (xapi_host.ml, xapi_pool.ml, extauth.ml): the host's
external_auth_* fields, the pool-wide enable with its rollback, and the homogeneity check.

Of xapi's two plugins, "PAM" (authx.ml: the host's own /etc/passwd, nothing to join) enables as
on a real host. "AD" joins a domain: the simulated network has no domain controller, so the
join fails where winbind's would, at the domain lookup (AUTH_ENABLE_FAILED_DOMAIN_LOOKUP_FAILED)."""

from __future__ import annotations

from . import datamodel, errors
from .registry import Context, api

# Api_messages.auth_external_pool_non_homogeneous
NON_HOMOGENEOUS = ("EXTAUTH_IN_POOL_IS_NON_HOMOGENEOUS", 2)


def _on_enable(auth_type: str, service_name: str, config: dict[str, str]) -> None:
    """The plugin's on_enable: raises (code, msg) as Auth_service_error would."""
    if auth_type == "PAM":
        return
    if auth_type != "AD":
        raise errors.XapiError("AUTH_UNKNOWN_TYPE", auth_type)
    for key in ("user", "pass"):
        if key not in config:
            raise errors.XapiError("AUTH_ENABLE_FAILED", f"enable requires {key}")
    if "\\" in config["user"]:
        raise errors.XapiError(
            "AUTH_ENABLE_FAILED",
            f"SAM format for user detected in '{config['user']}'. This is not supported, please retry using UPN format",
        )
    raise errors.XapiError(
        "AUTH_ENABLE_FAILED_DOMAIN_LOOKUP_FAILED", f"Failed to look up domain {service_name} workgroup"
    )


def _detect_nonhomogeneous(ctx: Context, host: str) -> None:
    """CA-24856: a member whose external auth differs from the master's raises an alert."""
    db = ctx.db
    master = ctx.pool.master
    if host == master:
        for other in db.refs("host"):
            if other != master:
                _detect_nonhomogeneous(ctx, other)
        return
    h, m = db.get("host", host), db.get("host", master)
    keys = ("external_auth_type", "external_auth_service_name")
    if any(h[k] != m[k] for k in keys):
        body = (
            f"host_external_auth_type={h['external_auth_type']}, "
            f"host_external_auth_service_name={h['external_auth_service_name']}, "
            f"master_external_auth_type={m['external_auth_type']}, "
            f"master_external_auth_service_name={m['external_auth_service_name']}"
        )
        ctx.pool.messages.create(*NON_HOMOGENEOUS, "Host", h["uuid"], body)


@api("host.enable_external_auth", "host", "config", "service_name", "auth_type")
def host_enable_external_auth(ctx: Context, host: str, config: object, service_name: str, auth_type: str) -> None:
    with ctx.db.lock:
        _enable(ctx, host, config, service_name, auth_type)
        _detect_nonhomogeneous(ctx, host)


def _enable(ctx: Context, host: str, config: object, service_name: str, auth_type: str) -> None:
    conf = datamodel.coerce("(string -> string) map", config, "host", "config")
    db = ctx.db
    with db.lock:
        rec = db.get("host", host)
        if rec["external_auth_type"]:
            raise errors.XapiError("AUTH_ALREADY_ENABLED", rec["external_auth_type"], rec["external_auth_service_name"])
        if not auth_type:
            raise errors.XapiError("AUTH_UNKNOWN_TYPE", "")
        _on_enable(str(auth_type), str(service_name), conf)
        db.set("host", host, external_auth_type=str(auth_type), external_auth_service_name=str(service_name))


@api("host.disable_external_auth", "host", "config")
def host_disable_external_auth(ctx: Context, host: str, config: object) -> None:
    """Already disabled is no error (xapi logs "already disabled" and returns)."""
    with ctx.db.lock:
        if _disable(ctx, host, config):
            _detect_nonhomogeneous(ctx, host)


def _disable(ctx: Context, host: str, config: object) -> bool:
    datamodel.coerce("(string -> string) map", config, "host", "config")
    db = ctx.db
    if not db.get("host", host)["external_auth_type"]:
        return False
    db.set("host", host, external_auth_type="", external_auth_service_name="", external_auth_configuration={})
    return True


def _master_first(ctx: Context) -> list[str]:
    master = ctx.pool.master
    return [master, *(h for h in ctx.db.refs("host") if h != master)]


@api("pool.enable_external_auth", "pool", "config", "service_name", "auth_type")
def pool_enable_external_auth(ctx: Context, pool: str, config: object, service_name: str, auth_type: str) -> None:
    conf = datamodel.coerce("(string -> string) map", config, "pool", "config")
    db = ctx.db
    with db.lock:
        db.get("pool", pool)
        hosts = _master_first(ctx)
        for host in hosts:
            if db.get("host", host)["external_auth_type"]:
                raise errors.XapiError("POOL_AUTH_ALREADY_ENABLED", host)
        names = [db.get("host", h)["hostname"] for h in hosts]
        if len(set(names)) != len(names):
            raise errors.XapiError(
                "POOL_AUTH_ENABLE_FAILED_DUPLICATE_HOSTNAME",
                hosts[0],
                "At least two hosts in the pool have the same hostname",
            )
        enabled: list[str] = []
        for host in hosts:
            try:
                _enable(ctx, host, conf, service_name, auth_type)
            except errors.XapiError as e:
                for done in reversed(enabled):  # best-effort rollback, as xapi does
                    _disable(ctx, done, conf)
                if e.code == "AUTH_UNKNOWN_TYPE":
                    raise
                if e.code.startswith("AUTH_ENABLE_FAILED"):
                    raise errors.XapiError(f"POOL_{e.code}", host, *e.params) from None
                raise errors.XapiError("POOL_AUTH_ENABLE_FAILED", host, str(e)) from None
            enabled.append(host)
        # the homogeneity check xapi queues runs once the pool-wide lock is released
        _detect_nonhomogeneous(ctx, ctx.pool.master)


@api("pool.disable_external_auth", "pool", "config")
def pool_disable_external_auth(ctx: Context, pool: str, config: object) -> None:
    with ctx.db.lock:
        ctx.db.get("pool", pool)
        for host in _master_first(ctx):
            _disable(ctx, host, config)


@api("pool.detect_nonhomogeneous_external_auth", "pool")
def detect_nonhomogeneous_external_auth(ctx: Context, pool: str) -> None:
    with ctx.db.lock:
        ctx.db.get("pool", pool)
        for host in ctx.db.refs("host"):
            if host != ctx.pool.master:
                _detect_nonhomogeneous(ctx, host)
