"""Plugins, extensions, Xen's console and the clients a host has seen, through the XenAPI SDK."""

from __future__ import annotations

import http.client
import xmlrpc.client

import pytest
import XenAPI

from .conftest import PASSWORD, vm_named


def failure(call, *args) -> list[str]:
    with pytest.raises(XenAPI.Failure) as exc:
        call(*args)
    return exc.value.details


def test_plugins_and_extensions_a_host_does_not_have(api):
    host = api.host.get_all()[0]
    assert failure(api.host.call_plugin, host, "updater.py", "check_update", {}) == [
        "XENAPI_MISSING_PLUGIN",
        "updater.py",
    ]
    vm = vm_named(api, "web-01")
    assert failure(api.VM.call_host_plugin, vm, "echo", "main", {}) == ["XENAPI_MISSING_PLUGIN", "echo"]
    assert failure(api.VM.call_plugin, vm, "other", "x", {}) == ["XENAPI_MISSING_PLUGIN", "other"]
    call = '{"method": "Echo.hello", "params": [], "id": 1}'
    assert failure(api.host.call_extension, host, call) == ["MESSAGE_METHOD_UNKNOWN", "Echo.hello"]
    assert failure(api.host.call_extension, host, "not json")[0] == "INTERNAL_ERROR"
    assert api.pool.has_extension(api.pool.get_all()[0], "Echo") is False


def test_guest_agent_rdp_switch_and_rate_limit(sim, api):
    vm = vm_named(api, "web-01")
    err = failure(api.VM.call_plugin, vm, "guest-agent-operation", "request-rdp-on", {})
    assert err[:2] == ["XENAPI_PLUGIN_FAILURE", "failed to execute fn"]  # the agent lacks feature-ts2
    limited = failure(api.VM.call_plugin, vm, "guest-agent-operation", "request-rdp-on", {})
    assert limited[:2] == ["VM_CALL_PLUGIN_RATE_LIMIT", vm]
    vm2 = vm_named(api, "web-02")
    gm = api.VM.get_guest_metrics(vm2)
    sim.db.set_key("VM_guest_metrics", gm, "other", "feature-ts2", "1")  # an agent that can switch RDP
    assert api.VM.call_plugin(vm2, "guest-agent-operation", "request-rdp-on", {}) == ""
    assert api.VM_guest_metrics.get_other(gm)["data-ts"] == "1"
    vm3 = vm_named(api, "db-01")
    err = failure(api.VM.call_plugin, vm3, "guest-agent-operation", "run-script", {"script": "ls"})
    assert err == ["FEATURE_RESTRICTED"]  # pool.guest_agent_config allow_run_script is off
    assert failure(api.VM.call_plugin, vm_named(api, "web-03"), "guest-agent-operation", "nope", {})[1] == (
        "failed to find fn"
    )


def test_dmesg_and_debug_keys(api):
    host = api.host.get_all()[0]
    log = api.host.dmesg(host)
    assert "(XEN) Xen version 4.17" in log and "Brought up 16 CPUs" in log
    api.host.send_debug_keys(host, "q")
    assert api.host.dmesg(host).rstrip().endswith("(XEN) 'q' pressed -> dump domain (and guest debug) info")
    assert failure(api.host.dmesg_clear, host) == ["NOT_IMPLEMENTED", "dmesg_clear"]


def test_tracked_user_agents_per_host(server, api):
    transport = xmlrpc.client.Transport()
    transport.user_agent = "XenCenter/2024.3.0 (Windows)"
    s = XenAPI.Session(server.url, transport=transport)
    s.login_with_password("root", PASSWORD, "2.21", "ua-test")
    master = api.pool.get_master(api.pool.get_all()[0])
    seen = api.host.get_tracked_user_agents(master)
    assert seen["XenCenter"] == "2024.3.0" and "Python-xmlrpc" in seen
    member = next(h for h in api.host.get_all() if h != master)
    assert api.host.get_tracked_user_agents(member) == {}
    s.xenapi.session.logout()


def test_restart_agent_cuts_connections_then_answers_again(server, api):
    import time

    master = api.pool.get_master(api.pool.get_all()[0])
    token = api.event_from(["vm"], "", 0.0)["token"]
    api.host.restart_agent(master)
    with pytest.raises((OSError, xmlrpc.client.ProtocolError, http.client.HTTPException)):
        api.event_from(["vm"], token, 5.0)  # the long-poll is cut by the restart
    deadline = time.monotonic() + 10
    while True:  # the session survives: xapi keeps sessions in its database
        try:
            assert api.host.get_uuid(master)
            break
        except (OSError, xmlrpc.client.ProtocolError, http.client.HTTPException):
            assert time.monotonic() < deadline, "the toolstack did not come back"
            time.sleep(0.2)


def test_shutdown_agent_of_a_member_stays_down(server, api):
    import time

    member = next(h for h in api.host.get_all() if h != api.pool.get_master(api.pool.get_all()[0]))
    name = api.host.get_name_label(member)
    s = XenAPI.Session(server.host_urls[name])
    s.slave_local_login_with_password("root", PASSWORD)
    s.xenapi.host.shutdown_agent()
    time.sleep(0.6)
    with pytest.raises((OSError, xmlrpc.client.ProtocolError, http.client.HTTPException)):
        XenAPI.Session(server.host_urls[name]).slave_local_login_with_password("root", PASSWORD)
    assert api.host.get_uuid(member)  # the master still answers


def test_bugreport_upload_puts_a_status_report(api, tmp_path):
    import io
    import socket
    import tarfile
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    got: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            got[self.path] = self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(201)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    srv = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.handle_request, daemon=True).start()
    host = api.host.get_all()[0]
    try:
        api.host.bugreport_upload(host, f"http://127.0.0.1:{srv.server_address[1]}/cases/42/report.tar", {})
    finally:
        srv.server_close()
    names = tarfile.open(fileobj=io.BytesIO(got["/cases/42/report.tar"])).getnames()
    assert any(n.endswith("/host-record.json") for n in names) and any(n.endswith("/xen-dmesg") for n in names)
    assert failure(api.host.bugreport_upload, host, "", {}) == ["INVALID_VALUE", "url", ""]
    assert failure(api.host.bugreport_upload, host, "report.tar", {}) == ["INTERNAL_ERROR", "URL not recognised"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert failure(api.host.bugreport_upload, host, f"http://127.0.0.1:{port}/x", {}) == [
        "INTERNAL_ERROR",
        "Failed to connect to host",
    ]


def test_system_status_capabilities_of_the_report(server, api):
    import xml.dom.minidom

    master = api.pool.get_master(api.pool.get_all()[0])
    doc = xml.dom.minidom.parseString(api.host.get_system_status_capabilities(master))
    caps = {c.getAttribute("key"): c for c in doc.getElementsByTagName("capability")}
    assert doc.documentElement.tagName == "system-status-capabilities"
    assert set(caps) == {"xenserver-databases", "xen-info"} and caps["xen-info"].getAttribute("pii") == "maybe"
    member = next(h for h in api.host.get_all() if h != master)
    s = XenAPI.Session(server.host_urls[api.host.get_name_label(member)])
    s.slave_local_login_with_password("root", PASSWORD)
    assert s.xenapi.host.get_system_status_capabilities(member).startswith("<?xml")
    assert api.host.get_system_status_capabilities(member).startswith("<?xml")  # forwarded by the master
