"""Certificates and TLS settings (xapi_pool.ml, xapi_host.ml, certificates.ml): the pool's
legacy CA and CRL stores (names checked and kept as certificates.ml keeps its files), each
host's server certificate (checked as Certificates.install_server_certificate does, then what
get_server_certificate answers), and the TLS verification and client-certificate switches."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from . import certs, errors
from .registry import Context, api

_SAFE = re.compile(r"[A-Za-z0-9._-]+")


def _store(ctx: Context, kind: str) -> dict[str, str]:
    return ctx.pool.settings.setdefault(f"certificates/{kind}", {})  # type: ignore[return-value]


def _validate_name(kind: str, name: str) -> None:
    """certificates.ml is_unsafe: a leading dot, no .pem suffix, or a character outside the safe set."""
    if not name or name.startswith(".") or not name.endswith(".pem") or not _SAFE.fullmatch(name):
        raise errors.XapiError("CRL_NAME_INVALID" if kind == "crl" else "CERTIFICATE_NAME_INVALID", name)


def _load(pem: str, prefix: str) -> object:
    """Gencertlib.validate_not_expired: parsed, and valid now."""
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        raise errors.XapiError(f"{prefix}_INVALID") from None
    now = datetime.now(UTC)
    if cert.not_valid_before_utc > now:
        raise errors.XapiError(f"{prefix}_NOT_VALID_YET", cert.not_valid_before_utc.strftime("%Y%m%dT%H:%M:%SZ"))
    if cert.not_valid_after_utc < now:
        raise errors.XapiError(f"{prefix}_EXPIRED", cert.not_valid_after_utc.strftime("%Y%m%dT%H:%M:%SZ"))
    return cert


def _install(ctx: Context, kind: str, name: str, cert: str) -> None:
    _validate_name(kind, name)
    store = _store(ctx, kind)
    if name in store:
        raise errors.XapiError("CRL_ALREADY_EXISTS" if kind == "crl" else "CERTIFICATE_ALREADY_EXISTS", name)
    store[name] = cert


def _uninstall(ctx: Context, kind: str, name: str, force: bool = False) -> None:
    _validate_name(kind, name)
    store = _store(ctx, kind)
    if name not in store and not force:
        raise errors.XapiError("CRL_DOES_NOT_EXIST" if kind == "crl" else "CERTIFICATE_DOES_NOT_EXIST", name)
    store.pop(name, None)


def _ca_records(ctx: Context, name: str | None = None) -> list[str]:
    """Db_util.get_ca_certs: Certificate records of type ca, by name (legacy CAs have one)."""
    return ctx.db.find(
        "Certificate", lambda r: r["type"] == "ca" and (r["name"] != "" if name is None else r["name"] == name)
    )


@api("pool.certificate_install", "name", "cert")
def certificate_install(ctx: Context, name: str, cert: str) -> None:
    _load(str(cert), "CA_CERTIFICATE")
    with ctx.db.lock:
        _install(ctx, "ca", str(name), str(cert))
        for old in _ca_records(ctx, str(name)):  # remove_obsoleted_copies
            certs.remove(ctx.db, old)
        certs.add(ctx.db, str(cert), "ca", name=str(name))


@api("pool.install_ca_certificate", "name", "cert")
def install_ca_certificate(ctx: Context, name: str, cert: str) -> None:
    certificate_install(ctx, name, cert)


@api("pool.uninstall_ca_certificate", "name")
def uninstall_ca_certificate(ctx: Context, name: str) -> None:
    # the datamodel's newer `force` parameter is optional; without it xapi passes false
    with ctx.db.lock:
        _uninstall(ctx, "ca", str(name))
        found = _ca_records(ctx, str(name))
        if not found:  # Db_util.remove_ca_cert_by_name
            raise errors.XapiError("INVALID_VALUE", "certificate:name", name)
        for ref in found:
            certs.remove(ctx.db, ref)


@api("pool.certificate_uninstall", "name")
def certificate_uninstall(ctx: Context, name: str) -> None:
    uninstall_ca_certificate(ctx, name)


@api("pool.certificate_list")
def certificate_list(ctx: Context) -> list[str]:
    with ctx.db.lock:
        return sorted(ctx.db.get("Certificate", r)["name"] for r in _ca_records(ctx))


@api("pool.uninstall_trusted_certificate", "self", "certificate")
def uninstall_trusted_certificate(ctx: Context, self: str, certificate: str) -> None:
    """Only a CA (or pinned) certificate is trusted; a host's own is NOT_TRUSTED_CERTIFICATE."""
    with ctx.db.lock:
        ctx.db.get("pool", self)
        rec = ctx.db.get("Certificate", certificate)
        if rec["type"] != "ca":
            raise errors.XapiError("NOT_TRUSTED_CERTIFICATE", certificate)
        _store(ctx, "ca").pop(rec["name"], None)
        certs.remove(ctx.db, certificate)


@api("pool.crl_install", "name", "cert")
def crl_install(ctx: Context, name: str, cert: str) -> None:
    _install(ctx, "crl", str(name), str(cert))  # xapi writes a CRL without parsing it


@api("pool.crl_uninstall", "name")
def crl_uninstall(ctx: Context, name: str) -> None:
    _uninstall(ctx, "crl", str(name))


@api("pool.crl_list")
def crl_list(ctx: Context) -> list[str]:
    return sorted(_store(ctx, "crl"))


@api("pool.certificate_sync")
def certificate_sync(ctx: Context) -> None:
    """Cert_distrib.copy_certs_to_all: each host is called; one that is down fails the sync."""
    with ctx.db.lock:
        for host, rec in ctx.db.tables["host"].items():
            if not ctx.db.get("host_metrics", rec["metrics"])["live"]:
                raise errors.XapiError("HOST_OFFLINE", host)


@api("pool.enable_tls_verification")
def enable_tls_verification(ctx: Context) -> None:
    db = ctx.db
    with db.lock:
        certificate_sync(ctx)  # the pool exchanges certificates first, reaching every host
        for host in db.refs("host"):
            db.set("host", host, tls_verification_enabled=True)
        db.set("pool", db.refs("pool")[0], tls_verification_enabled=True, wlb_verify_cert=True)


@api("pool.enable_client_certificate_auth", "self", "name")
def enable_client_certificate_auth(ctx: Context, self: str, name: str) -> None:
    ctx.db.set("pool", self, client_certificate_auth_enabled=True, client_certificate_auth_name=str(name))


@api("pool.disable_client_certificate_auth", "self")
def disable_client_certificate_auth(ctx: Context, self: str) -> None:
    ctx.db.set("pool", self, client_certificate_auth_enabled=False, client_certificate_auth_name="")


@api("pool.disable_ssl_legacy", "self")
def disable_ssl_legacy(ctx: Context, self: str) -> None:
    """xapi_pool.disable_ssl_legacy warns "doing nothing": legacy SSL is gone since Stockholm,
    every host's ssl_legacy is already false."""
    ctx.db.get("pool", self)


# -- server certificates ----------------------------------------------------------------------
def _files(ctx: Context) -> dict[str, str]:
    """The server certificate file of each host (xapi-ssl.pem), which get_server_certificate reads."""
    return ctx.pool.settings.setdefault("certificates/server_file", {})  # type: ignore[return-value]


def _replace(ctx: Context, host: str, cert_type: str, pem: str) -> None:
    certs.replace_host_certificate(ctx.db, host, cert_type, pem)
    if cert_type == "host":
        _files(ctx)[host] = pem


@api("host.get_server_certificate", "host")
def get_server_certificate(ctx: Context, host: str) -> str:
    with ctx.db.lock:
        ctx.db.get("host", host)
        if host in _files(ctx):
            return _files(ctx)[host]
        own = certs.of_host(ctx.db, host, "host")
        return certs.pems(ctx.db)[own[0]] if own else ""


def _check_server_certificate(certificate: str, private_key: str, chain: str) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = _load(certificate, "SERVER_CERTIFICATE")
    try:
        key = serialization.load_pem_private_key(private_key.encode(), password=None)
    except (ValueError, TypeError):
        raise errors.XapiError("SERVER_CERTIFICATE_KEY_INVALID") from None
    from cryptography.hazmat.primitives.asymmetric import rsa

    if not isinstance(key, rsa.RSAPrivateKey):
        raise errors.XapiError("SERVER_CERTIFICATE_KEY_ALGORITHM_NOT_SUPPORTED", type(key).__name__)
    if key.key_size != 2048:
        raise errors.XapiError("SERVER_CERTIFICATE_KEY_RSA_LENGTH_NOT_SUPPORTED", key.key_size)
    pub = cert.public_key()  # type: ignore[attr-defined]
    same = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == (
        key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    if not same:
        raise errors.XapiError("SERVER_CERTIFICATE_KEY_MISMATCH")
    if chain.strip():
        try:
            x509.load_pem_x509_certificates(chain.encode())
        except ValueError:
            raise errors.XapiError("SERVER_CERTIFICATE_CHAIN_INVALID") from None


@api("host.install_server_certificate", "host", "certificate", "private_key", "certificate_chain")
def install_server_certificate(
    ctx: Context, host: str, certificate: str, private_key: str, certificate_chain: str
) -> None:
    with ctx.db.lock:
        ctx.db.get("host", host)
        if ctx.db.field("pool", ctx.db.refs("pool")[0], "ha_enabled"):
            raise errors.XapiError("HA_IS_ENABLED")
    _check_server_certificate(str(certificate), str(private_key), str(certificate_chain))
    with ctx.db.lock:
        _replace(ctx, host, "host", str(certificate))
        if ctx.task:
            ctx.db.set("task", ctx.task, progress=1.0)


@api("host.reset_server_certificate", "host")
def reset_server_certificate(ctx: Context, host: str) -> None:
    with ctx.db.lock:
        rec = ctx.db.get("host", host)
        _replace(ctx, host, "host", certs.self_signed(rec["hostname"] or rec["name_label"])[0])


@api("host.refresh_server_certificate", "host")
def refresh_server_certificate(ctx: Context, host: str) -> None:
    """Cert_refresh.host: a new host_internal certificate (the pool's intra-pool TLS), the stale
    one removed."""
    with ctx.db.lock:
        rec = ctx.db.get("host", host)
        _replace(ctx, host, "host_internal", certs.self_signed(rec["uuid"])[0])


@api("host.emergency_reset_server_certificate")
def emergency_reset_server_certificate(ctx: Context) -> None:
    """A new file on the host the request reached; without database access its Certificate
    record stays as it was (xapi refreshes it when it next starts)."""
    with ctx.db.lock:
        rec = ctx.db.get("host", ctx.host)
        _files(ctx)[ctx.host] = certs.self_signed(rec["hostname"] or rec["name_label"])[0]


@api("host.emergency_disable_tls_verification")
def emergency_disable_tls_verification(ctx: Context) -> None:
    ctx.db.set("host", ctx.host, tls_verification_enabled=False)


@api("host.emergency_reenable_tls_verification")
def emergency_reenable_tls_verification(ctx: Context) -> None:
    with ctx.db.lock:
        if not ctx.db.field("pool", ctx.db.refs("pool")[0], "tls_verification_enabled"):
            raise errors.XapiError("TLS_VERIFICATION_NOT_ENABLED_IN_POOL")
        ctx.db.set("host", ctx.host, tls_verification_enabled=True)
