"""A self-signed certificate for HTTPS, covering every address the simulator listens on.

Uses the `cryptography` package; falls back to the `openssl` command if it is missing."""

from __future__ import annotations

import ipaddress
import subprocess
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path


def make_certificate(addresses: list[str], common_name: str = "xapisim") -> tuple[Path, Path]:
    """Write cert.pem and key.pem to a fresh private directory; returns (cert, key)."""
    folder = Path(tempfile.mkdtemp(prefix="xapisim-tls-"))
    cert, key = folder / "cert.pem", folder / "key.pem"
    try:
        _with_cryptography(addresses, common_name, cert, key)
    except ImportError:
        _with_openssl(addresses, common_name, cert, key)
    key.chmod(0o600)
    return cert, key


def _with_cryptography(addresses: list[str], cn: str, cert_path: Path, key_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    sans: list[x509.GeneralName] = [x509.DNSName("localhost")]
    for a in dict.fromkeys(addresses):
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(a)))
        except ValueError:  # a host name given to --listen
            if a != "localhost":
                sans.append(x509.DNSName(a))
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _with_openssl(addresses: list[str], cn: str, cert_path: Path, key_path: Path) -> None:
    san = ",".join(["DNS:localhost", *(f"IP:{a}" if _is_ip(a) else f"DNS:{a}" for a in dict.fromkeys(addresses))])
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key_path),
            "-out",
            str(cert_path),
            "-days",
            "825",
            "-subj",
            f"/CN={cn}",
            "-addext",
            f"subjectAltName={san}",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
        ],
        check=True,
        capture_output=True,
    )


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False
