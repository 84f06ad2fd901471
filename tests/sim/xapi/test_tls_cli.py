"""HTTPS with the generated certificate, and `poolctl simulate` as a real process."""

from __future__ import annotations

import os
import queue
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import xmlrpc.client

import pytest
import XenAPI

from poolctl.cli.simulate import main
from poolctl.sim.xapi import Simulator

from .conftest import PASSWORD


def test_https_with_generated_certificate():
    sim = Simulator.from_scenario("lab", password=PASSWORD)
    server = sim.serve(host="127.0.0.1", port=0, tls=True)
    try:
        assert server.url.startswith("https://127.0.1.1:")
        context = ssl.create_default_context(cafile=str(server.cert_path))  # verifies the IP SAN too
        for url in (server.url, server.host_urls["xcp-lab-2"], server.alias_url):
            s = XenAPI.Session(url, transport=xmlrpc.client.SafeTransport(context=context))
            if url == server.host_urls["xcp-lab-2"]:
                with pytest.raises(XenAPI.Failure) as exc:
                    s.login_with_password("root", PASSWORD)
                assert exc.value.details == ["HOST_IS_SLAVE", "127.0.1.1"]
                continue
            s.login_with_password("root", PASSWORD)
            assert len(s.xenapi.host.get_all()) == 3
            s.xenapi.session.logout()
        with pytest.raises(ssl.SSLCertVerificationError):
            XenAPI.Session(server.url).login_with_password("root", PASSWORD)  # system CAs don't know it
        plain = server.url.replace("https://", "http://")
        with pytest.raises((OSError, xmlrpc.client.ProtocolError)):
            XenAPI.Session(plain).login_with_password("root", PASSWORD)
    finally:
        server.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lines:
    """stdout lines of a child process, read by a thread (select() can't see Python's buffer)."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.queue: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=lambda: [self.queue.put(line) for line in proc.stdout], daemon=True).start()

    def wait_for(self, needle: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.queue.get(timeout=0.2)
            except queue.Empty:
                continue
            self.seen.append(line)
            if needle in line:
                return line
        raise AssertionError(f"`{needle}` not printed within {timeout} s; got {self.seen!r}")


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_simulate_cli_serves_until_stopped(stop_signal):
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
            "--migration-seconds",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        lines = Lines(proc)
        assert f"http://127.0.0.1:{port}" in lines.wait_for("serving")
        lines.wait_for("Ctrl-C")
        s = XenAPI.Session(f"http://127.0.0.1:{port}")
        s.login_with_password("root", PASSWORD)
        names = {s.xenapi.host.get_name_label(h) for h in s.xenapi.host.get_all()}
        assert names == {"xcp-lab-1", "xcp-lab-2", "xcp-lab-3"}
        s.xenapi.session.logout()
        proc.send_signal(stop_signal)
        assert proc.wait(10) == 0
        lines.wait_for("Stopped")
        assert not any(PASSWORD in line for line in lines.seen) and PASSWORD not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_errors_name_the_problem(tmp_path, capsys):
    bad = tmp_path / "pool.toml"
    bad.write_text('[[hosts]]\nname = "h1"\naddress = "10.0.0.1"\n')
    assert main(["--listen", "127.0.0.1:0", "--scenario", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "hosts.0.address" in err and "loopback" in err
    assert main(["--listen", "127.0.0.1:0", "--hosts", "3"]) == 2
    assert "--hosts and --vms go together" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--listen", "nonsense"])
