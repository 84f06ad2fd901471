"""Run the XAPI simulator for a benchmark: in this process (to read its call counters)
or as a separate `poolctl simulate` process (so its memory and CPU are not the app's).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import Size, require

USER = "root"
PASSWORD = "demo"  # the simulator's demo credential, not a secret
START_TIMEOUT_S = 180.0


def poolctl_command() -> list[str]:
    """The installed console script when there is one (what a user runs), else `-m poolctl`."""
    script = Path(sys.executable).parent / "poolctl"
    return [str(script)] if script.exists() else [sys.executable, "-m", "poolctl"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def login(url: str):
    """A raw XenAPI session: the 'second client' and the readiness probe."""
    import XenAPI

    session = XenAPI.Session(url)
    session.xenapi.login_with_password(USER, PASSWORD, "1.0", "poolctl-benchmarks")
    return session


def logout(session) -> None:
    with contextlib.suppress(Exception):
        session.xenapi.session.logout()
    with contextlib.suppress(Exception):
        session.close()


def pool_config(url: str, name: str = "bench"):
    from poolctl import config

    return config.pool_config({"name": name, "backend": "xen", "url": url, "username": USER, "password": PASSWORD})


@contextlib.contextmanager
def in_process(size: Size) -> Iterator[tuple[object, object]]:
    """(simulator, server) served on loopback in this process."""
    Simulator = require("poolctl.sim.xapi", "the XAPI simulator", "Simulator")

    sim = Simulator.generate(hosts=size.hosts, vms=size.vms, password=PASSWORD)
    with sim.serve(host="127.0.0.1", port=0) as server:
        yield sim, server


@dataclass
class External:
    url: str
    proc: subprocess.Popen
    started_s: float  # launch until the first login succeeded

    def status(self, field: str) -> int:
        """A /proc/<pid>/status field in kB (VmHWM, VmRSS)."""
        return read_status_kb(self.proc.pid, field)


def read_status_kb(pid: int | str, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(f"/proc/{pid}/status has no {field}")


def cpu_seconds(pid: int) -> float:
    """User+system CPU time of a live process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def external(size: Size, extra: tuple[str, ...] = ()) -> Iterator[External]:
    """`poolctl simulate` in its own process, ready to log in to."""
    require("poolctl.cli.simulate", "`poolctl simulate`")
    port = free_port()
    cmd = poolctl_command() + [
        "simulate",
        "--hosts",
        str(size.hosts),
        "--vms",
        str(size.vms),
        "--listen",
        f"127.0.0.1:{port}",
        *extra,
    ]
    t0 = time.perf_counter()
    # A file, not a pipe: a chatty simulator must never block on a full pipe mid-benchmark.
    errlog = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errlog)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = t0 + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                errlog.seek(0)
                err = errlog.read().decode(errors="replace").strip().splitlines()[-3:]
                raise RuntimeError(f"`{' '.join(cmd[1:])}` exited with {proc.returncode}: {' | '.join(err)}")
            try:
                logout(login(url))
                break
            except OSError:
                if time.perf_counter() > deadline:
                    raise TimeoutError(f"simulator on {url} not answering after {START_TIMEOUT_S:.0f} s") from None
                time.sleep(0.05)
        yield External(url=url, proc=proc, started_s=time.perf_counter() - t0)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        errlog.close()
