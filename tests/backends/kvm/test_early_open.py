"""A KVM host's first open, started by ``poolctl.preload`` before the config is validated, and
taken over by the pool when it connects (``poolctl.backends.kvm.early``).

Against a private libvirtd serving the test driver over TCP, behind the benchmark's relay,
which logs every call a client sends (its connection and libvirt's procedure number)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest

from benchmarks.libvirt_host import write_host
from benchmarks.libvirt_link import Relay, daemon
from poolctl import preload
from poolctl.backends.base import ConnectionLost
from poolctl.backends.kvm import early
from poolctl.backends.kvm.opening import OpenSettings, give_credentials
from poolctl.config import load_config
from poolctl.loading import close_quietly, load_pool

pytestmark = pytest.mark.timeout(120)

CONNECT_OPEN = 1  # remote_protocol.x: REMOTE_PROC_CONNECT_OPEN


@pytest.fixture
def link(tmp_path) -> Iterator[tuple[str, Path]]:
    """A test-driver host of 5 domains over TCP: its URI and the relay's call log."""
    host = write_host(tmp_path / "h.xml", 5)
    log = tmp_path / "calls.log"
    with daemon(tmp_path / "d") as d:
        relay = Relay(d.port, 0.0, log=log)
        try:
            yield f"test+tcp://127.0.0.1:{relay.port}{host}", log
        finally:
            relay.close()
            early.discard_all()


def _opens(log: Path) -> list[int]:
    """The connections that sent CONNECT_OPEN, in order."""
    lines = [line.split() for line in log.read_text().splitlines()] if log.exists() else []
    return [int(conn) for _t, conn, _prog, proc in lines if int(proc) == CONNECT_OPEN]


def _wait_for(what, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not what():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _config(tmp_path: Path, uri: str, extra: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[[pool]]\nname = "rack"\nbackend = "kvm"\nuris = ["{uri}"]\n{extra}')
    return path


def test_the_host_opens_before_the_config_is_validated_and_the_pool_takes_that_connection(tmp_path, link):
    uri, log = link
    path = _config(tmp_path, uri)
    preload.start(path)
    _wait_for(lambda: _opens(log))  # the daemon has the open while nothing of the config is validated
    backend, inv = load_pool(load_config(path).pools[0])
    try:
        assert len(inv.vms) == 5
        assert _opens(log) == [1], "the pool opened a second connection instead of taking the first"
        assert early.claim(uri, OpenSettings()) is None  # taken once
    finally:
        close_quietly(backend)


def test_a_pool_whose_settings_differ_opens_its_own_and_the_early_one_is_closed(tmp_path, link):
    uri, log = link
    preload.start(_config(tmp_path, uri))
    _wait_for(lambda: _opens(log))
    # the file changed under it: the pool validates to another timeout than the one started
    path = _config(tmp_path, uri, "connect_timeout_s = 30\n")
    backend, inv = load_pool(load_config(path).pools[0])
    try:
        assert len(inv.vms) == 5 and _opens(log) == [1, 2]
    finally:
        close_quietly(backend)
    preload.start(tmp_path / "missing.toml")  # the next command: nothing to start, the stale one goes
    assert early.claim(uri, OpenSettings()) is None


def test_a_table_that_is_not_what_it_seems_starts_nothing(tmp_path, link):
    uri, log = link
    for extra in ('connect_timeout_s = "soon"\n', "known_hosts = 3\n"):
        preload.start(_config(tmp_path, uri, extra))
    preload.start(_config(tmp_path, uri).with_name("other.toml"))  # no such file
    (tmp_path / "bad.toml").write_text("[[pool]\n")
    preload.start(tmp_path / "bad.toml")
    time.sleep(0.3)
    assert _opens(log) == []


def test_only_the_pools_asked_for_start(tmp_path, link):
    uri, log = link
    preload.start(_config(tmp_path, uri), only=["another"])
    time.sleep(0.3)
    assert _opens(log) == []


def test_an_unreachable_host_fails_in_the_pool_as_it_would_have_without_the_early_open(tmp_path):
    with socket_refusing() as port:
        uri = f"test+tcp://127.0.0.1:{port}/nowhere.xml"
        path = _config(tmp_path, uri)
        with pytest.raises(ConnectionLost) as without:
            load_pool(load_config(path).pools[0])
        preload.start(path)
        with pytest.raises(ConnectionLost) as taken_over:
            load_pool(load_config(path).pools[0])
    assert str(taken_over.value) == str(without.value) and "127.0.0.1" in str(without.value)


def test_credentials_are_asked_of_the_pool_only_once_it_has_taken_the_open():
    early.start("test:///default", OpenSettings(timeout_s=5))
    try:
        (opened,) = early._waiting["test:///default"]
        creds = [[libvirt.VIR_CRED_AUTHNAME, "user", "", "", None]]
        answer: list[int] = []
        asking = threading.Thread(target=lambda: answer.append(opened._credentials(creds, None)))
        asking.start()
        asking.join(0.3)
        assert asking.is_alive() and not answer  # nothing of an unvalidated pool is run meanwhile
        take = early.claim("test:///default", OpenSettings(timeout_s=5))
        assert take is not None
        auth = [[], lambda c, state: give_credentials(lambda: ("root", ""), c, state), ([], set())]
        conn, _pid = take(auth, None)
        asking.join(5)
        assert answer == [0] and creds[0][4] == "root"
        assert conn.listAllDomains(0)
        conn.close()
    finally:
        early.discard_all()


def test_preload_imports_neither_pydantic_nor_the_backend(tmp_path):
    path = _config(tmp_path, "test:///default")
    code = (
        "import sys\nfrom pathlib import Path\nfrom poolctl import preload\n"
        f"preload.start(Path({str(path)!r}))\n"
        "from poolctl.backends.kvm import early\nassert early._waiting, 'nothing started'\n"
        "print('\\n'.join(sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60).stdout
    mods = set(out.split())
    assert "poolctl.backends.kvm.early" in mods
    assert not {m for m in mods if m == "pydantic" or m.startswith(("pydantic.", "poolctl.backends.kvm.backend"))}
    assert "importlib.metadata" not in mods


class socket_refusing:
    """A loopback port nothing listens on (bound, then closed)."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        pass
