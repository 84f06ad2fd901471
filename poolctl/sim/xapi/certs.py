"""Certificates as xapi keeps them (certificates.ml): Certificate records with the validity and
fingerprints of the PEM they stand for (Db_util.add_cert), each host's own certificates (type
host, the server's; host_internal, the pool's intra-pool TLS), their PEMs kept as xapi keeps its
files, outside the database (db.settings)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from .db import NULL_REF
from .schema import new_record

if TYPE_CHECKING:
    from .db import Database

VALID_DAYS = 3650  # Xapi_globs.cert_expiration_days


@cache
def _key() -> Any:
    """One key for every certificate the simulator signs: generating one per host costs more
    than the simulator's whole build, and nothing here depends on keys being distinct."""
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def self_signed(common_name: str, days: int = VALID_DAYS) -> tuple[str, str]:
    """(certificate PEM, private key PEM) of a new self-signed certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name or "xapisim")])
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(_key().public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .sign(_key(), hashes.SHA256())
    )
    key = _key().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key.decode()


def _fingerprint(cert: Any, algorithm: Any) -> str:
    """certificates.ml pp_hash: upper-case hex bytes joined by colons."""
    return ":".join(f"{b:02X}" for b in cert.fingerprint(algorithm))


def pems(db: Database) -> dict[str, str]:
    return db.settings.setdefault("certificate_pems", {})  # type: ignore[return-value]


def add(db: Database, pem: str, cert_type: str, host: str = NULL_REF, name: str = "") -> str:
    """Db_util.add_cert: the record, linked from host.certificates for a host's own."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    cert = x509.load_pem_x509_certificate(pem.encode())
    sha256 = _fingerprint(cert, hashes.SHA256())
    ref = db.create(
        "Certificate",
        new_record(
            "Certificate",
            name=name,
            type=cert_type,
            host=host,
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            fingerprint=sha256,
            fingerprint_sha256=sha256,
            fingerprint_sha1=_fingerprint(cert, hashes.SHA1()),
        ),
    )
    pems(db)[ref] = pem
    if host != NULL_REF:
        db.add_to("host", host, "certificates", ref)
    return ref


def remove(db: Database, ref: str) -> None:
    host = db.get("Certificate", ref)["host"]
    if host != NULL_REF and db.exists("host", host):
        db.remove_from("host", host, "certificates", ref)
    pems(db).pop(ref, None)
    db.destroy("Certificate", ref)


def of_host(db: Database, host: str, cert_type: str) -> list[str]:
    return [c for c in db.get("host", host)["certificates"] if db.get("Certificate", c)["type"] == cert_type]


def replace_host_certificate(db: Database, host: str, cert_type: str, pem: str) -> str:
    """xapi_host.replace_host_certificate: the new record first, then the old ones go."""
    old = of_host(db, host, cert_type)
    ref = add(db, pem, cert_type, host)
    for stale in old:
        remove(db, stale)
    return ref


def add_host_certificates(db: Database, host: str, common_name: str) -> None:
    """A host's two certificates as xapi makes them at first boot."""
    for cert_type in ("host", "host_internal"):
        pem, _ = self_signed(common_name)
        add(db, pem, cert_type, host)
