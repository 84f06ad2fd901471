"""JSON-RPC v1 and v2 on /jsonrpc with plain urllib, and malformed requests at the HTTP level."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
import XenAPI

from .conftest import PASSWORD


def post(url: str, body: dict | bytes, path: str = "/jsonrpc") -> dict:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.headers["Content-Type"] == "application/json"
        return json.loads(resp.read())


def v2(url: str, method: str, *params, id=1) -> dict:
    return post(url, {"jsonrpc": "2.0", "method": method, "params": list(params), "id": id})


def v1(url: str, method: str, *params, id="xyz") -> dict:
    return post(url, {"method": method, "params": list(params), "id": id})


def test_jsonrpc_v2(server):
    url = server.url
    login = v2(url, "session.login_with_password", "root", PASSWORD, "2.21", "json-tests")
    assert set(login) == {"jsonrpc", "result", "id"} and login["jsonrpc"] == "2.0" and login["id"] == 1
    session = login["result"]
    records = v2(url, "host_metrics.get_all_records", session, id="m")["result"]
    rec = next(iter(records.values()))
    assert isinstance(rec["memory_total"], int) and isinstance(rec["live"], bool)  # ints are numbers here
    assert isinstance(rec["last_updated"], str) and len(rec["last_updated"]) == len("20261125T12:00:00Z")
    vms = v2(url, "VM.get_all", session)["result"]
    assert all(r.startswith("OpaqueRef:") for r in vms)
    bad = v2(url, "VM.get_record", session, "OpaqueRef:nope", id=7)
    assert bad == {
        "jsonrpc": "2.0",
        "id": 7,
        "error": {"code": 1, "message": "HANDLE_INVALID", "data": ["VM", "OpaqueRef:nope"]},
    }
    assert v2(url, "session.logout", session)["result"] == ""
    gone = v2(url, "VM.get_all", session)
    assert gone["error"]["message"] == "SESSION_INVALID" and gone["error"]["data"] == [session]


def test_jsonrpc_v1(server):
    url = server.url
    login = v1(url, "session.login_with_password", "root", PASSWORD)
    assert login["error"] is None and login["id"] == "xyz"
    session = login["result"]
    reply = v1(url, "VM.get_by_uuid", session, "nope")
    assert reply == {"result": None, "error": ["UUID_INVALID", "VM", "nope"], "id": "xyz"}
    result = v1(url, "event.from", session, ["host"], "", 1.0)["result"]
    assert len(result["events"]) == 3 and isinstance(result["valid_ref_counts"]["host"], int)
    assert v1(url, "Async.VM.start", session, "OpaqueRef:nope", False, False)["result"].startswith("OpaqueRef:")


def test_session_works_across_protocols(server):
    s = XenAPI.Session(server.url)
    s.login_with_password("root", PASSWORD)
    assert v2(server.url, "pool.get_all", s.handle)["result"] == s.xenapi.pool.get_all()


def test_login_on_member_over_jsonrpc(server):
    reply = v2(server.host_urls["xcp-lab-3"], "session.login_with_password", "root", PASSWORD)
    assert reply["error"]["message"] == "HOST_IS_SLAVE" and reply["error"]["data"] == ["127.0.1.1"]


@pytest.mark.parametrize(
    "body,path",
    [
        (b'{"jsonrpc": "2.0", "method": "session.login_with_password", "id": 0', "/jsonrpc"),
        (b'{"jsonrpc": "2.0", "params": [], "id": 0}', "/jsonrpc"),
        (b"<?xml version='1.0'?><methodCall><methodName>session.logout</methodName>", "/"),
    ],
)
def test_malformed_requests_are_http_500(server, body, path):
    with pytest.raises(urllib.error.HTTPError) as exc:
        post(server.url, body, path)
    assert exc.value.code == 500
    assert b"HTTP 500 internal server error" in exc.value.read()


def test_xmlrpc_on_every_path_but_jsonrpc(server):
    """xapi's Http_svr picks the handler by longest prefix: any POST that is not /jsonrpc...
    reaches the "/" handler, XML-RPC (clients use /, /RPC2, /json, /xmlrpc ...)."""
    import xmlrpc.client

    for path in ("/RPC2", "/xmlrpc", "/json", "/nowhere"):
        raw = xmlrpc.client.ServerProxy(server.url + path)
        assert raw.session.login_with_password("root", PASSWORD)["Status"] == "Success", path
    with pytest.raises(urllib.error.HTTPError) as exc:  # JSON on an XML-RPC path: a parse error
        post(server.url, b"{}", "/nowhere")
    assert exc.value.code == 500
