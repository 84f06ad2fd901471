"""get_all_records over JSON-RPC from the per-record JSON cache: byte for byte what json.dumps of the
plain envelope gives (v1 and v2, cold, warm, after changes, over HTTP); warm(); and a pool without
JSON-RPC (Simulator(jsonrpc=False), `poolctl simulate --no-jsonrpc`) answering /jsonrpc with 404."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
import XenAPI

from poolctl.sim.xapi import Simulator, wire
from poolctl.sim.xapi.db import CLASSES

from .conftest import PASSWORD, vm_named
from .test_tls_cli import Lines, free_port


def envelope(result: object, req_id: object, v2: bool) -> bytes:
    """The reply as plain json.dumps writes it, no cache involved."""
    body = {"jsonrpc": "2.0", "result": result, "id": req_id} if v2 else {"result": result, "error": None, "id": req_id}
    return json.dumps(body, default=wire._json_default, separators=(",", ":")).encode("utf-8")


def plain(records: wire.Records) -> dict:
    return {ref: dict(rec) for ref, rec in records.items()}


def post_raw(url: str, method: str, params: list, req_id: object, v2: bool) -> bytes:
    body = {"method": method, "params": params, "id": req_id} | ({"jsonrpc": "2.0"} if v2 else {})
    req = urllib.request.Request(
        url + "/jsonrpc", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"] == "application/json"
        return resp.read()


def all_records_over_http(url: str, handle: str, cls: str, v2: bool, req_id: object = 5) -> bytes:
    return post_raw(url, f"{cls}.get_all_records", [handle], req_id, v2)


@pytest.mark.parametrize("v2,req_id", [(True, 7), (False, "xyz")], ids=["v2", "v1"])
def test_cached_json_is_byte_for_byte_the_plain_envelope(sim, v2, req_id):
    db = sim.db
    assert db.json_cache == {}
    for cls in CLASSES:
        for _ in ("cold", "warm"):  # the first call fills the cache, the second reads it
            records = db.all_records(cls)
            got = wire.json_result(records, req_id, v2)
            want = envelope(plain(records), req_id, v2)
            assert got == want, cls
            assert json.loads(got) == json.loads(want)
    assert len(db.json_cache) == sum(len(db.refs(cls)) for cls in CLASSES) > 50
    # replies that are not get_all_records' records take the plain path
    for result in ("OpaqueRef:x", ["a", "b"], {"k": 1}, ""):
        assert wire.json_result(result, req_id, v2) == envelope(result, req_id, v2)


def test_empty_records_marshal_like_an_empty_dict(sim):
    records = sim.db.all_records("task")
    assert not records
    assert wire.json_result(records, 1, True) == envelope({}, 1, True) == b'{"jsonrpc":"2.0","result":{},"id":1}'
    assert wire.json_result(records, 1, False) == envelope({}, 1, False)


def test_a_changed_record_is_served_anew_over_jsonrpc(sim, server, session, api):
    web1 = vm_named(api, "web-01")
    handle = session.handle
    before = json.loads(all_records_over_http(server.url, handle, "VM", True))["result"]
    assert before[web1]["power_state"] == "Running"
    stamp = sim.db.json_cache[web1][0]
    text = 'now with "quotes", <markup> & ünïcode \u2713'
    api.VM.set_name_description(web1, text)
    api.VM.hard_shutdown(web1)
    raw = all_records_over_http(server.url, handle, "VM", True, req_id="after")
    after = json.loads(raw)["result"]
    assert after[web1]["name_description"] == text and after[web1]["power_state"] == "Halted"
    assert after[web1]["resident_on"] == "OpaqueRef:NULL"
    assert sim.db.json_cache[web1][0] > stamp
    assert raw == envelope(plain(sim.db.all_records("VM")), "after", True)
    # an out-of-band change (as on the console) too, and over v1
    sim.set_power_state("test-01", "Running")
    test01 = vm_named(api, "test-01")
    v1 = json.loads(all_records_over_http(server.url, handle, "VM", False))
    assert v1["error"] is None and v1["result"][test01]["power_state"] == "Running"
    assert v1["result"][test01]["resident_on"] != "OpaqueRef:NULL"
    # the records of other VMs came from the cache unchanged
    assert {r: v for r, v in v1["result"].items() if r not in (web1, test01)} == {
        r: v for r, v in after.items() if r not in (web1, test01)
    }


def test_a_destroyed_record_leaves_the_json_cache(sim):
    db = sim.db
    wire.json_result(db.all_records("VIF"), 1, True)
    ref = next(iter(db.tables["VIF"]))
    assert ref in db.json_cache
    db.destroy("VIF", ref)
    assert ref not in db.json_cache
    records = db.all_records("VIF")
    assert ref not in json.loads(wire.json_result(records, 1, True))["result"]


def test_warm_fills_the_caches_and_leaves_replies_unchanged(sim, server, session):
    handle = session.handle
    cold = {(cls, v2): all_records_over_http(server.url, handle, cls, v2) for cls in CLASSES for v2 in (True, False)}
    sim.db.json_cache.clear()
    sim.db.xml_cache.clear()
    sim.warm()
    total = sum(len(sim.db.refs(cls)) for cls in CLASSES)
    assert len(sim.db.json_cache) == total and len(sim.db.xml_cache) == total
    for (cls, v2), body in cold.items():
        assert all_records_over_http(server.url, handle, cls, v2) == body, (cls, v2)
        assert body == envelope(plain(sim.db.all_records(cls)), 5, v2), (cls, v2)
    for cls in CLASSES:
        records = sim.db.all_records(cls)
        assert wire.xml_success(records) == wire.xml_success(plain(records))
    assert len(session.xenapi.VM.get_all_records()) == len(sim.db.refs("VM"))


def test_warm_on_a_generated_pool_then_served():
    sim = Simulator.generate(hosts=2, vms=30, password=PASSWORD)
    sim.warm()
    with sim.serve(host="127.0.0.1", port=0) as server:
        s = XenAPI.Session(server.url)
        s.login_with_password("root", PASSWORD)
        for v2 in (True, False):
            body = all_records_over_http(server.url, s.handle, "VM", v2)
            assert body == envelope(plain(sim.db.all_records("VM")), 5, v2)
        assert set(json.loads(body)["result"]) == set(s.xenapi.VM.get_all())
        s.xenapi.session.logout()


def test_without_jsonrpc_the_endpoint_is_404_and_xmlrpc_still_works(lab_factory):
    sim, server, api = lab_factory(jsonrpc=False)
    assert sim.jsonrpc is False
    with pytest.raises(urllib.error.HTTPError) as err:
        post_raw(server.url, "session.login_with_password", ["root", PASSWORD], 1, True)
    assert err.value.code == 404
    assert len(api.VM.get_all_records()) == len(sim.db.refs("VM")) and len(api.host.get_all()) == 3
    assert sim.db.json_cache == {}


def test_simulate_no_jsonrpc_cli():
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "poolctl",
            "simulate",
            "--listen",
            f"127.0.0.1:{port}",
            "--password",
            PASSWORD,
            "--no-jsonrpc",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        lines = Lines(proc)
        assert "no JSON-RPC" in lines.wait_for("user root")
        url = f"http://127.0.0.1:{port}"
        with pytest.raises(urllib.error.HTTPError) as err:
            post_raw(url, "session.login_with_password", ["root", PASSWORD], 1, True)
        assert err.value.code == 404
        s = XenAPI.Session(url)
        s.login_with_password("root", PASSWORD)
        assert len(s.xenapi.host.get_all()) == 3
        s.xenapi.session.logout()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
