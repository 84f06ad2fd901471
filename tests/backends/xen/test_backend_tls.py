"""TLS policy of the Xen backend: verification on by default, CA file, pinned fingerprint.

The simulator serves HTTPS with a self-signed certificate, as a fresh XCP-ng host does.
"""

from __future__ import annotations

import hashlib
import ssl

import pytest

from poolctl.backends.base import BackendError
from poolctl.config import ConfigError
from poolctl.sim.xapi import Simulator
from tests.support.xen import PASSWORD, connected


@pytest.fixture
def tls_lab():
    sim = Simulator.from_scenario("lab", password=PASSWORD, migration_seconds=1.0)
    with sim.serve(host="127.0.0.1", port=0, tls=True) as server:
        der = ssl.PEM_cert_to_DER_cert(server.cert_path.read_text())
        assert server.url.startswith("https://")
        yield server.url, server.cert_path, hashlib.sha256(der).hexdigest()


def test_self_signed_certificate_is_refused_by_default(tls_lab):
    url, _cert, _fp = tls_lab
    with pytest.raises(BackendError) as err:
        with connected(url):
            pass
    assert err.value.code == "TLS_VERIFY_FAILED" and url.split("//")[1] in str(err.value)
    assert "fingerprint" in str(err.value)  # tells the user how to proceed


def test_pinned_fingerprint_is_accepted(tls_lab):
    url, _cert, fingerprint = tls_lab
    colons = ":".join(fingerprint[i : i + 2] for i in range(0, 64, 2)).upper()
    with connected(url, fingerprint=colons) as backend:
        assert len(backend.inventory().hosts) == 3


def test_wrong_fingerprint_is_refused_naming_both(tls_lab):
    url, _cert, fingerprint = tls_lab
    with pytest.raises(BackendError) as err:
        with connected(url, fingerprint="00" * 32):
            pass
    assert err.value.code == "TLS_VERIFY_FAILED"
    text = str(err.value).replace(":", "").lower()
    assert "fingerprint" in text and fingerprint in text and "00" * 32 in text


def test_malformed_fingerprint_is_a_config_error(tls_lab):
    url, _cert, _fp = tls_lab
    with pytest.raises(ConfigError) as err:  # the pool's settings refuse it before a backend is built
        with connected(url, fingerprint="not-hex"):
            pass
    assert "fingerprint" in str(err.value) and "64 hex digits" in str(err.value)


def test_ca_file_verifies_the_certificate(tls_lab):
    url, cert, _fp = tls_lab
    with connected(url, ca_file=cert) as backend:
        assert backend.inventory().pool.name == "lab"


def test_verification_can_be_turned_off(tls_lab):
    url, _cert, _fp = tls_lab
    with connected(url, verify_tls=False) as backend:
        assert backend.inventory().vms
