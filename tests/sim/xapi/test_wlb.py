"""Workload Balancing through the XenAPI SDK: the simulator's WLB client against nothing (xapi's
errors) and against a stand-in appliance that answers WLB's SOAP as workload_balancing.ml reads it."""

from __future__ import annotations

import base64
import re
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import XenAPI

from poolctl.sim.xapi import certs

from .conftest import vm_named


def failure(call, *args) -> list[str]:
    with pytest.raises(XenAPI.Failure) as exc:
        call(*args)
    return exc.value.details


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _envelope(meth: str, inner: str) -> bytes:
    return (
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
        f'<{meth}Response xmlns="http://schemas.citrix.com/DWM"><{meth}Result>{inner}</{meth}Result>'
        f"</{meth}Response></s:Body></s:Envelope>"
    ).encode()


class _Appliance:
    """What a WLB appliance answers: the pool's configuration it was sent, recommendations it
    is told to give, 401 for a wrong password."""

    def __init__(self, tmp_path) -> None:
        self.config: dict[str, str] = {}
        self.requests: list[tuple[str, str]] = []
        self.vm_recs = ""
        appliance = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                meth = self.headers["SOAPAction"].strip('"').rsplit("/", 1)[1] if "SOAPAction" in self.headers else ""
                appliance.requests.append((self.path, meth))
                if self.path == "/":  # send_test_post
                    out = b"echo:" + body.encode()
                elif base64.b64decode(self.headers["Authorization"][6:]) != b"wlb:secret":
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                elif meth == "AddXenServer":
                    out = _envelope(meth, "<Id>17</Id><ResultCode>0</ResultCode>")
                elif meth == "SetXenPoolConfiguration":
                    pairs = re.findall(r"<b:Key>(.*?)</b:Key><b:Value>(.*?)</b:Value>", body)
                    appliance.config = dict(pairs)
                    out = _envelope(meth, "")
                elif meth == "GetXenPoolConfiguration":
                    kvs = "".join(
                        f"<KeyValueOfstringstring><Key>{k}</Key><Value>{v}</Value></KeyValueOfstringstring>"
                        for k, v in appliance.config.items()
                    )
                    out = _envelope(meth, f"<OptimizationParms>{kvs}</OptimizationParms>")
                elif meth == "VMGetRecommendations":
                    out = _envelope(meth, f"<Recommendations>{appliance.vm_recs}</Recommendations>")
                elif meth == "HostGetRecommendations":
                    out = _envelope(meth, "<ResultCode>4007</ResultCode><ErrorMessage>no data yet</ErrorMessage>")
                else:
                    out = _envelope(meth, "")
                self.send_response(200)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args: object) -> None:
                pass

        pem, key = certs.self_signed("wlb.test")
        (tmp_path / "c.pem").write_text(pem)
        (tmp_path / "k.pem").write_text(key)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def appliance(tmp_path):
    a = _Appliance(tmp_path)
    yield a
    a.close()


def test_without_an_appliance_xapis_errors(api):
    pool = api.pool.get_all()[0]
    assert failure(api.pool.deconfigure_wlb) == ["WLB_NOT_INITIALIZED"]
    assert failure(api.pool.retrieve_wlb_configuration) == ["WLB_NOT_INITIALIZED"]
    assert failure(api.pool.send_wlb_configuration, {"a": "b"}) == ["WLB_NOT_INITIALIZED"]
    assert failure(api.pool.retrieve_wlb_recommendations) == ["WLB_NOT_INITIALIZED"]
    assert failure(api.VM.retrieve_wlb_recommendations, vm_named(api, "web-01")) == ["WLB_NOT_INITIALIZED"]
    assert failure(api.host.retrieve_wlb_evacuate_recommendations, api.host.get_all()[0]) == ["WLB_NOT_INITIALIZED"]
    port = _free_port()
    assert failure(api.pool.initialize_wlb, f"127.0.0.1:{port}", "wlb", "pw", "root", "pw") == [
        "WLB_CONNECTION_REFUSED"
    ]
    assert failure(api.pool.initialize_wlb, "no-port-here", "wlb", "pw", "root", "pw") == [
        "WLB_URL_INVALID",
        "no-port-here",
    ]
    assert api.pool.get_wlb_url(pool) == ""


def test_with_an_appliance(api, appliance):
    pool = api.pool.get_all()[0]
    url = f"127.0.0.1:{appliance.port}"
    assert failure(api.pool.initialize_wlb, url, "wlb", "wrong", "root", "pw") == ["WLB_AUTHENTICATION_FAILED"]
    api.pool.set_wlb_verify_cert(pool, False)  # the stand-in's certificate is self-signed
    api.pool.initialize_wlb(url, "wlb", "secret", "root", "pw")
    rec = api.pool.get_record(pool)
    assert rec["wlb_url"] == url and rec["wlb_username"] == "wlb" and not rec["wlb_enabled"]
    assert ("/Citrix.Dwm.WorkloadBalance/Service", "AddXenServer") in appliance.requests
    api.pool.send_wlb_configuration({"OptimizationMode": "MaxPerformance"})
    assert appliance.config == {"OptimizationMode": "MaxPerformance"}
    assert api.pool.retrieve_wlb_configuration() == {"OptimizationMode": "MaxPerformance"}
    vm = vm_named(api, "web-01")
    assert failure(api.VM.retrieve_wlb_recommendations, vm) == ["WLB_DISABLED"]
    api.pool.set_wlb_enabled(pool, True)
    hosts = api.host.get_all_records()
    appliance.vm_recs = "".join(
        f"<VmPlacementRecommendation><HostUuid>{h['uuid']}</HostUuid><RecommendationId>{i}</RecommendationId>"
        f"<Stars>{4.5 - i}</Stars><ZeroScoreReason>None</ZeroScoreReason></VmPlacementRecommendation>"
        for i, h in enumerate(hosts.values())
    )
    recs = api.VM.retrieve_wlb_recommendations(vm)
    assert set(recs) == set(hosts)
    assert any(r == ["WLB", "4.5", "0"] for r in recs.values())
    err = failure(api.host.retrieve_wlb_evacuate_recommendations, next(iter(hosts)))
    assert err == ["WLB_INTERNAL_ERROR", "4007", "no data yet"]
    assert api.pool.retrieve_wlb_recommendations() == {}
    assert api.pool.send_test_post("127.0.0.1", str(appliance.port), "ping") == "echo:ping"
    api.pool.deconfigure_wlb()
    rec = api.pool.get_record(pool)
    assert rec["wlb_url"] == "" and not rec["wlb_enabled"]
    assert appliance.requests[-1][1] == "RemoveXenServer"
