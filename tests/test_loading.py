"""poolctl.loading: a pool's first connect and read, started before the TUI is imported.

Against the XAPI simulator's lab pool over HTTP on loopback (real SDK, real sockets); a TCP
gate in front of it plays a server that is slow to answer or goes away.
"""

from __future__ import annotations

import gc
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from poolctl import loading
from poolctl.backends.base import AuthenticationError, BackendError, ConnectionLost
from poolctl.backends.xen import XenBackend
from poolctl.sim.xapi import Simulator
from tests.support.cli import config_file
from tests.support.fault_proxy import FaultProxy
from tests.support.xen import PASSWORD, config, connected

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def unfreeze() -> Iterator[None]:
    # load_pool freezes what it read; later tests count frozen objects
    yield
    gc.unfreeze()


@pytest.fixture
def lab() -> Iterator[tuple[Simulator, object]]:
    sim = Simulator.from_scenario("lab", password=PASSWORD)
    with sim.serve(host="127.0.0.1", port=0) as server:
        yield sim, server


def target(server) -> tuple[str, int]:
    parts = urlsplit(server.url)
    return parts.hostname, parts.port


def wait_until(cond, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)


def load_threads(pool: str = "lab") -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"poolctl-load-{pool}"]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_is_lab(sim, server, inventory) -> None:
    """The lab scenario's pool, exactly as a backend of its own reads it."""
    assert sorted(v.name for v in inventory.vms) == sorted(v.name for v in sim.scenario.vms)
    assert sorted(h.name for h in inventory.hosts) == ["xcp-lab-1", "xcp-lab-2", "xcp-lab-3"]
    with connected(server.url) as other:
        assert inventory == other.first_inventory()  # staged: VMs' devices come with watch()


# -- load_pool ------------------------------------------------------------------------------


def test_load_pool_returns_a_connected_backend_and_the_lab_inventory(lab):
    sim, server = lab
    assert gc.isenabled()
    frozen_before = gc.get_freeze_count()
    backend, inventory = loading.load_pool(config(server.url))
    try:
        assert gc.isenabled(), "the collector stayed paused after the load"
        assert gc.get_freeze_count() > frozen_before, "the loaded records were not frozen"
        assert isinstance(backend, XenBackend)
        assert len(sim.sessions) == 1  # logged in, and still so
        assert_is_lab(sim, server, inventory)
        assert backend.first_inventory() == inventory  # the connection still serves
    finally:
        backend.close()
    assert len(sim.sessions) == 0


def test_load_pool_leaves_a_disabled_collector_disabled(lab):
    _, server = lab
    gc.disable()
    try:
        backend, _ = loading.load_pool(config(server.url))
        backend.close()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_load_pool_against_a_closed_port_raises_connection_lost_naming_the_address():
    port = closed_port()
    with pytest.raises(ConnectionLost) as err:
        loading.load_pool(config(f"http://127.0.0.1:{port}"))
    message = str(err.value)
    assert f"127.0.0.1:{port}" in message and "'lab'" in message and "refused" in message.lower()
    assert gc.isenabled(), "a failed load left the collector paused"


def test_load_pool_logs_out_when_the_read_fails_after_login(lab):
    sim, server = lab
    for ref in sim.db.refs("pool"):  # a pool that answers the login but not a readable inventory
        sim.db.destroy("pool", ref)
    with pytest.raises(BackendError, match="'lab'.*no pool object"):
        loading.load_pool(config(server.url))
    calls = server.stats.snapshot()
    assert calls["session.login_with_password"] == 1 and calls["session.logout"] == 1
    assert len(sim.sessions) == 0, "the failed load's backend was left logged in"
    assert gc.isenabled()


# -- FirstLoad ---------------------------------------------------------------------------------


def test_first_load_result_is_the_loaded_pool(lab):
    sim, server = lab
    first = loading.FirstLoad(config(server.url))
    backend, inventory = first.result()
    try:
        assert isinstance(backend, XenBackend) and len(sim.sessions) == 1
        assert_is_lab(sim, server, inventory)
        assert first.result() == (backend, inventory)  # asked again: the same pool, not a new load
        assert server.stats.snapshot()["session.login_with_password"] == 2  # this load + assert_is_lab's
    finally:
        backend.close()


def test_first_load_raises_a_wrong_password_as_the_backends_error_without_the_password(lab):
    sim, server = lab
    wrong = "not-The-Password-77"
    first = loading.FirstLoad(config(server.url, password=wrong))
    with pytest.raises(AuthenticationError) as err:
        first.result()
    message = str(err.value)
    assert "pool 'lab'" in message and "refused the credentials of user 'root'" in message
    assert urlsplit(server.url).netloc in message
    assert wrong not in message and wrong not in repr(err.value) and wrong not in repr(err.value.args)
    assert len(sim.sessions) == 0


def test_first_load_stopped_while_blocked_returns_none_and_logs_out_once_the_load_ends(lab):
    sim, server = lab
    with FaultProxy(target(server), http=False, stalled=True) as gate:  # a server that does not answer yet
        first = loading.FirstLoad(config(gate.url))
        gate.wait_accepted(1)
        stopping = threading.Event()
        got: list = []
        waiter = threading.Thread(target=lambda: got.append(first.result(stopping)), daemon=True)
        waiter.start()
        waiter.join(0.3)
        assert waiter.is_alive(), f"result() returned {got} while the load was still blocked"
        stopping.set()
        waiter.join(5)
        assert not waiter.is_alive() and got == [None]
        assert gate.forwarded == 0 and "session.login_with_password" not in server.stats.snapshot()

        gate.unstall()  # the load now completes, for nobody
        wait_until(lambda: server.stats.snapshot()["session.logout"] == 1, "the late backend to log out")
        assert server.stats.snapshot()["session.login_with_password"] == 1
        assert len(sim.sessions) == 0, "the backend loaded after stopping was left logged in"
        for t in load_threads():
            t.join(10)
        assert not load_threads()


def test_first_load_stopped_then_failing_ends_quietly():
    with FaultProxy(("127.0.0.1", 9), http=False, stalled=True) as gate:  # accepts, never answers; nothing behind it
        first = loading.FirstLoad(config(gate.url))
        gate.wait_accepted(1)
        stopping = threading.Event()
        stopping.set()
        assert first.result(stopping) is None
        gate.refuse(reset=False)  # the server goes away: the load ends with ConnectionLost
        for t in load_threads():
            t.join(10)
        assert not load_threads(), "the load thread outlived its connection"
        with pytest.raises(ConnectionLost, match=re.escape(gate.address)):  # what the load ended with
            first.result()


def test_start_loads_each_pool_by_name(lab):
    sim, server = lab
    pools = [config(server.url), config(server.url).model_copy(update={"name": "lab-b"})]
    loads = loading.start(pools)
    assert list(loads) == ["lab", "lab-b"]
    results = {name: first.result() for name, first in loads.items()}
    try:
        assert loads["lab-b"].config.name == "lab-b"
        assert results["lab"][0] is not results["lab-b"][0]
        assert results["lab"][1].pool.name == results["lab-b"][1].pool.name
        assert len(sim.sessions) == 2
    finally:
        for backend, _ in results.values():
            backend.close()


# -- the CLI ----------------------------------------------------------------------------------

# Stops the CLI at its first import of anything of the TUI, reporting which loads are running.
DRIVER = """\
import sys, threading

class Stop(Exception):
    pass

class FirstUiImport:
    def find_spec(self, name, path=None, target=None):
        if name == "textual" or name.startswith(("textual.", "poolctl.tui")):
            loads = sorted(t.name for t in threading.enumerate() if t.name.startswith("poolctl-load-"))
            print("first UI import:", name, "loading:", ",".join(loads) or "-", flush=True)
            raise Stop
        return None

sys.meta_path.insert(0, FirstUiImport())
from poolctl.cli import main
try:
    main(sys.argv[1:])
except Stop:
    sys.exit(0)
sys.exit("the TUI was never imported")
"""


def test_the_cli_starts_each_pools_load_before_importing_the_tui(tmp_path: Path):
    with FaultProxy(("127.0.0.1", 9), http=False, stalled=True) as gate:  # holds the load: still running at import
        path = config_file(
            tmp_path,
            f"""\
[[pool]]
name = "held"
backend = "xen"
url = "{gate.url}"
username = "root"
password = "x"
""",
        )
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
        proc = subprocess.run(
            [sys.executable, "-c", DRIVER, "--config", str(path)], capture_output=True, text=True, timeout=60, env=env
        )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "first UI import: " in proc.stdout and "loading: poolctl-load-held" in proc.stdout, proc.stdout
