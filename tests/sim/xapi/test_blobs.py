"""Blobs through the XenAPI SDK and HTTP /blob, as xapi_blob.ml serves them."""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

import pytest
import XenAPI

from .conftest import vm_named


def _http(server, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes, str]:
    url = urlsplit(server.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
    conn.request(method, path, body=body)
    resp = conn.getresponse()
    out = resp.read(), resp.getheader("Content-Type") or ""
    conn.close()
    return resp.status, *out


def test_vm_blob_named_written_read_and_destroyed(server, session, api):
    vm = vm_named(api, "web-01")
    token = api.event_from(["blob", "vm"], "", 0.0)["token"]
    blob = api.VM.create_new_blob(vm, "notes", "text/plain", False)
    assert api.VM.get_blobs(vm) == {"notes": blob}
    rec = api.blob.get_record(blob)
    assert rec["mime_type"] == "text/plain" and rec["size"] == "0" and rec["public"] is False
    events = api.event_from(["blob", "vm"], token, 1.0)["events"]
    assert {(e["class"], e["operation"]) for e in events} >= {("blob", "add"), ("vm", "mod")}
    sid = session._session
    assert _http(server, "PUT", f"/blob?ref={blob}", b"x")[0] == 403  # no session
    assert _http(server, "PUT", f"/blob?ref={blob}&session_id={sid}", b"hello blob")[0] == 200
    assert api.blob.get_size(blob) == "10" and str(api.blob.get_last_updated(blob)) > "2000"
    assert _http(server, "GET", f"/blob?ref={blob}&session_id={sid}")[1:] == (b"hello blob", "text/plain")
    assert _http(server, "GET", f"/blob?ref={blob}")[0] == 403  # private: a session is needed
    uuid = api.blob.get_uuid(blob)
    assert _http(server, "GET", f"/blob?uuid={uuid}&session_id={sid}")[1] == b"hello blob"
    assert _http(server, "GET", "/blob?ref=OpaqueRef:nope")[0] == 404
    assert _http(server, "GET", "/blob")[0] == 400
    api.blob.destroy(blob)
    assert api.VM.get_blobs(vm) == {}
    with pytest.raises(XenAPI.Failure):
        api.blob.get_record(blob)


def test_public_blobs_and_other_classes(server, api):
    pool = api.pool.get_all()[0]
    blob = api.pool.create_new_blob(pool, "logo", "", True)
    assert api.blob.get_mime_type(blob) == "application/octet-stream" and api.blob.get_public(blob)
    assert _http(server, "GET", f"/blob?ref={blob}")[0] == 404  # public, but nothing written yet
    for cls, obj in (
        (api.host, api.host.get_all()[0]),
        (api.SR, api.SR.get_all()[0]),
        (api.network, api.network.get_all()[0]),
    ):
        b = cls.create_new_blob(obj, "x", "application/json", False)
        assert cls.get_blobs(obj)["x"] == b
    assert api.blob.create("image/png", True) in api.blob.get_all()
