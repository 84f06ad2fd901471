"""The Xen backend's bulk read over XAPI's JSON-RPC (/jsonrpc) and its XML-RPC fallback, against the
simulator over real HTTP(S) with the real XenAPI SDK.

The protocol a read used is seen from outside: the simulator logs every HTTP request line (a
/jsonrpc answered 404 never reaches its dispatcher), and JSON-RPC get_all_records fill its
per-record JSON cache, which nothing else fills unless warm() is called.
"""

from __future__ import annotations

import hashlib
import logging
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import XenAPI

from poolctl.backends.base import BackendError
from poolctl.backends.xen import XenBackend, snapshot
from poolctl.backends.xen.bulk import _details, read_classes
from poolctl.backends.xen.connection import Connector
from poolctl.backends.xen.translate import CLASSES
from poolctl.sim.xapi import Simulator
from tests.support.xen import PASSWORD, config, connected

# the classes the inventory reads, as the simulator names their get_all_records
READ = {f"{api}.get_all_records" for api in CLASSES.values()}
LAB = lambda **kw: Simulator.from_scenario("lab", password=PASSWORD, migration_seconds=1.0, **kw)  # noqa: E731
GENERATED = lambda **kw: Simulator.generate(hosts=4, vms=60, password=PASSWORD, **kw)  # noqa: E731


@contextmanager
def served(make: Callable[..., Simulator], tls: bool = False, **options) -> Iterator[tuple[Simulator, object]]:
    sim = make(**options)
    with sim.serve(host="127.0.0.1", port=0, tls=tls) as server:
        yield sim, server


def jsonrpc_requests(caplog) -> list[str]:
    """The simulator's access-log lines of /jsonrpc requests, e.g. '"POST /jsonrpc HTTP/1.1" 404 -'."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("poolctl.sim.xapi") and '"POST /jsonrpc ' in r.getMessage()
    ]


def load(server, backend: XenBackend):
    server.stats.reset()
    inv = backend.inventory()
    return inv, server.stats.snapshot()


def assert_one_bulk_call_per_class(calls) -> None:
    calls = dict(calls)
    assert calls.pop("event.inject") == 1, calls  # the token the event loop goes on from
    assert set(calls) == READ and all(n == 1 for n in calls.values()), calls


# -- 1. the same inventory either way ------------------------------------------------------------


@pytest.mark.parametrize("make,vms", [(LAB, 12), (GENERATED, 60)], ids=["lab", "generated-4x60"])
def test_jsonrpc_and_xmlrpc_read_the_same_inventory(make, vms):
    # one simulator for both reads: refs are random per simulator, and the models hold refs
    with served(make) as (sim, server):
        with connected(server.url) as backend:
            over_json, json_calls = load(server, backend)
            assert backend.connector.jsonrpc is True
        assert len(sim.db.json_cache) >= len(over_json.vms)  # the records did travel as JSON
        sim.jsonrpc = False  # from now on /jsonrpc answers 404, as XAPI before JSON-RPC
        with connected(server.url) as backend:
            over_xml, xml_calls = load(server, backend)
            assert backend.connector.jsonrpc is False
    assert len(over_json.vms) == vms and len(over_json.hosts) >= 3
    assert over_json.model_dump() == over_xml.model_dump()  # a readable diff if not
    assert over_json == over_xml
    assert_one_bulk_call_per_class(json_calls)
    assert_one_bulk_call_per_class(xml_calls)


# -- 2. fallback, remembered -----------------------------------------------------------------------


def test_a_pool_without_jsonrpc_is_read_over_xmlrpc_and_not_asked_again(caplog):
    caplog.set_level(logging.DEBUG)
    with served(LAB, jsonrpc=False) as (sim, server), connected(server.url) as backend:
        assert backend.connector.jsonrpc is None
        first, calls = load(server, backend)
        assert backend.connector.jsonrpc is False and len(first.vms) == 12
        assert_one_bulk_call_per_class(calls)
        tried = jsonrpc_requests(caplog)
        assert tried and all('" 404 ' in line for line in tried), tried
        assert any("no JSON-RPC" in r.getMessage() and "HTTP 404" in r.getMessage() for r in caplog.records)
        caplog.clear()
        second, calls = load(server, backend)
        assert jsonrpc_requests(caplog) == []  # the connector remembered: no second try
        assert backend.connector.jsonrpc is False
        assert_one_bulk_call_per_class(calls)
        assert second == first
        assert sim.db.json_cache == {}  # nothing was ever served as JSON


def test_a_pool_with_jsonrpc_serves_every_class_there(caplog):
    caplog.set_level(logging.DEBUG)
    with served(LAB) as (_sim, server), connected(server.url) as backend:
        backend.inventory()
        backend.inventory()
        lines = jsonrpc_requests(caplog)
    # one request per class but the pool (read with the token over the SDK), on each load
    assert len(lines) == 2 * (len(CLASSES) - 1) and all('" 200 ' in line for line in lines), lines


# -- 3. a session that expired between the SDK's calls and the JSON-RPC read -----------------------


@pytest.fixture
def lab_connector():
    with served(LAB) as (sim, server):
        connector = Connector(config(server.url))
        session = connector.open()
        yield sim, server, connector, session
        session.xenapi.session.logout()


def test_expired_session_is_renewed_once_and_the_read_goes_on(lab_connector):
    sim, server, connector, session = lab_connector
    old = session._session
    server.stats.reset()
    assert sim.expire_sessions() >= 1
    raw = snapshot._read_jsonrpc(session, connector, list(snapshot.BULK))
    assert raw is not None
    assert session._session != old and session._session in connector._handles
    assert server.stats.snapshot()["session.login_with_password"] == 1, server.stats.snapshot()
    assert connector.jsonrpc is True
    assert set(raw) == set(snapshot.BULK)
    assert set(raw["vm"]) == set(session.xenapi.VM.get_all())
    assert all(isinstance(rec["memory_static_max"], int) for rec in raw["vm"].values())  # numbers in JSON


def test_a_wrong_handle_is_session_invalid_from_jsonrpc(lab_connector):
    # the simulator, like XAPI, answers a handle it does not know with SESSION_INVALID(handle)
    _sim, _server, connector, _session = lab_connector
    wrong = "OpaqueRef:00000000-1111-2222-3333-444444444444"
    with pytest.raises(XenAPI.Failure) as err:
        read_classes(connector, wrong, list(snapshot.BULK))
    assert err.value.details == ["SESSION_INVALID", wrong]


def test_a_failure_other_than_session_invalid_propagates_without_a_second_read(lab_connector):
    # re-login refused (the password changed on the pool): that failure comes out as it is
    sim, server, connector, session = lab_connector
    sim.password = "changed-on-the-pool"
    sim.expire_sessions()
    server.stats.reset()
    with pytest.raises(XenAPI.Failure) as err:
        snapshot._read_jsonrpc(session, connector, list(snapshot.BULK))
    assert err.value.details[0] == "SESSION_AUTHENTICATION_FAILED", err.value.details
    calls = server.stats.snapshot()
    assert calls["VM.get_all_records"] == 1, calls  # one JSON-RPC attempt, no retry after the failure
    assert connector.jsonrpc is None  # nothing learnt about the pool's JSON-RPC
    sim.password = PASSWORD  # let the fixture log out


# -- 4. JSON-RPC errors as the SDK's Failure.details -----------------------------------------------


@pytest.mark.parametrize(
    "error,details",
    [
        (
            {"code": 1, "message": "HANDLE_INVALID", "data": ["VM", "OpaqueRef:x"]},
            ["HANDLE_INVALID", "VM", "OpaqueRef:x"],
        ),
        (
            {"code": 1, "message": "HOST_NOT_ENOUGH_FREE_MEMORY", "data": [1024, 512]},
            ["HOST_NOT_ENOUGH_FREE_MEMORY", "1024", "512"],
        ),
        ({"code": 1, "message": "INTERNAL_ERROR", "data": "one string"}, ["INTERNAL_ERROR", "one string"]),
        ({"code": 1, "message": "SESSION_INVALID"}, ["SESSION_INVALID"]),
        (["UUID_INVALID", "VM", "nope"], ["UUID_INVALID", "VM", "nope"]),
        ("Jsonrpc.Malformed_method_request", ["Jsonrpc.Malformed_method_request"]),
    ],
    ids=["v2", "v2-numbers", "v2-data-not-a-list", "v2-no-data", "v1-list", "plain-string"],
)
def test_jsonrpc_errors_become_failure_details(error, details):
    assert _details(error) == details


# -- 5. TLS: the same policy as the SDK's sessions -------------------------------------------------


@pytest.fixture
def tls_lab():
    with served(LAB, tls=True) as (sim, server):
        der = ssl.PEM_cert_to_DER_cert(server.cert_path.read_text())
        fingerprint = hashlib.sha256(der).hexdigest()
        colons = ":".join(fingerprint[i : i + 2] for i in range(0, 64, 2)).upper()
        yield sim, server, colons


def test_jsonrpc_over_tls_with_a_pinned_fingerprint(tls_lab, caplog):
    caplog.set_level(logging.DEBUG)
    sim, server, fingerprint = tls_lab
    with connected(server.url, fingerprint=fingerprint) as backend:
        inv = backend.inventory()
        assert backend.connector.jsonrpc is True and len(inv.vms) == 12
    assert len(sim.db.json_cache) >= len(inv.vms)
    assert jsonrpc_requests(caplog) and not any("handshake" in r.getMessage() for r in caplog.records)


def test_jsonrpc_over_tls_with_a_ca_file(tls_lab):
    sim, server, _fingerprint = tls_lab
    with connected(server.url, ca_file=server.cert_path) as backend:
        assert len(backend.inventory().vms) == 12 and backend.connector.jsonrpc is True


def test_a_wrong_fingerprint_fails_the_jsonrpc_read_as_clearly_as_the_sdk(tls_lab):
    _sim, server, fingerprint = tls_lab
    wrong = "00" * 32
    with pytest.raises(BackendError) as sdk:
        with connected(server.url, fingerprint=wrong):
            pass
    # an SDK session through the right pin; the JSON-RPC read through a connector with the wrong one
    good = Connector(config(server.url, fingerprint=fingerprint))
    bad = Connector(config(server.url, fingerprint=wrong))
    session = good.open()
    try:
        server.stats.reset()
        with pytest.raises(ssl.SSLError) as exc:
            snapshot.read_all(session, bad)
        calls = server.stats.snapshot()
    finally:
        session.xenapi.session.logout()
    mapped = bad.errors.map(exc.value, "reading the inventory", where=bad.where)  # as XenBackend._call does
    assert mapped.code == sdk.value.code == "TLS_VERIFY_FAILED"
    text = str(mapped)
    assert "fingerprint" in text and wrong in text.replace(":", "").lower()
    assert fingerprint.replace(":", "").lower() in text.replace(":", "").lower()
    assert text.split("TLS verification", 1)[1] == str(sdk.value).split("TLS verification", 1)[1]
    # never fell back: not to plain HTTP, not to reading the classes over XML-RPC
    assert bad.jsonrpc is None
    assert not (READ - {"pool.get_all_records"}) & set(calls), calls


# -- 6. no secrets in what a failed JSON-RPC read shows --------------------------------------------


def _assert_no_secrets(texts: list[str], handles: set[str]) -> None:
    assert handles and all(h.startswith("OpaqueRef:") for h in handles)
    blob = "\n".join(texts)
    assert PASSWORD not in blob
    for handle in handles:
        assert handle not in blob


def test_session_invalid_twice_shows_no_handle(caplog):
    # JSON-RPC goes to connector.url, which SessionPool moves when the master moves; here it points
    # at another pool, where the SDK session's handle is unknown: SESSION_INVALID on both attempts
    caplog.set_level(logging.DEBUG)
    with served(LAB) as (_sim, server), served(LAB) as (_other, elsewhere):
        backend = XenBackend(config(server.url))
        backend.connect()
        try:
            backend.connector.url = elsewhere.url
            with pytest.raises(BackendError) as err:
                backend.inventory()
            handles = set(backend.connector._handles)
        finally:
            backend.close()
    assert err.value.code == "SESSION_INVALID" and "reading the inventory" in str(err.value)
    texts = [str(err.value), repr(err.value), repr(err.value.params)] + [r.getMessage() for r in caplog.records]
    _assert_no_secrets(texts, handles)


def test_refused_relogin_during_the_jsonrpc_read_shows_no_secret(lab_connector, caplog):
    caplog.set_level(logging.DEBUG)
    sim, _server, connector, session = lab_connector
    handles = {session._session}
    sim.password = "changed-on-the-pool"
    sim.expire_sessions()
    with pytest.raises(XenAPI.Failure) as exc:
        snapshot._read_jsonrpc(session, connector, list(snapshot.BULK))
    mapped = connector.errors.map(exc.value, "reading the inventory", where=connector.where)
    assert mapped.code == "SESSION_AUTHENTICATION_FAILED" and "root" in str(mapped)
    texts = [str(mapped), repr(mapped), repr(mapped.params)] + [r.getMessage() for r in caplog.records]
    _assert_no_secrets(texts, handles | set(connector._handles))
    sim.password = PASSWORD  # let the fixture log out
