"""A libvirt host at the end of a link: a private libvirtd serving the test driver over TCP (the
host's file: ``libvirt_host``), and a userspace relay in front of it that delays each direction
and counts the RPC calls.

The kernel's netem is not available on these machines; a relay that holds every chunk for a
fixed time each way is. The daemon loads no hypervisor driver (``LIBVIRT_DRIVER_DIR`` points at
an empty folder: the test driver is built into libvirt itself), keeps its sockets, pid file and
log in its own folder and listens on loopback only, so it touches nothing of a system libvirtd.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

LIBVIRTD = "/usr/sbin/libvirtd"
START_TIMEOUT_S = 30.0
# libvirt RPC (src/rpc/virnetprotocol.x): a 4-byte length (itself included), then program,
# version, procedure, type, serial and status, 4 bytes each. Type 0 is a call.
_TYPE_AT = 4 + 12
_CALL = 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Daemon:
    """A private libvirtd listening on 127.0.0.1:``port`` without authentication; ``cpus``:
    the CPUs it may run on (None: any)."""

    def __init__(self, folder: Path, cpus: set[int] | None = None):
        self.folder = folder
        self.port = free_port()
        run = folder / "run"
        empty = folder / "no-drivers"
        run.mkdir(parents=True, exist_ok=True)
        empty.mkdir(exist_ok=True)
        conf = folder / "libvirtd.conf"
        conf.write_text(
            "listen_tls = 0\nlisten_tcp = 1\n"
            f'listen_addr = "127.0.0.1"\ntcp_port = "{self.port}"\nauth_tcp = "none"\n'
            f'unix_sock_dir = "{run}"\nauth_unix_rw = "none"\nauth_unix_ro = "none"\n'
            'unix_sock_rw_perms = "0700"\nunix_sock_ro_perms = "0700"\n'
            # libvirtd's defaults (max_workers 20, max_client_requests 5): what a user's host runs
            f'log_outputs = "3:file:{folder / "libvirtd.log"}"\n'
        )
        env = dict(os.environ, LIBVIRT_DRIVER_DIR=str(empty))
        self._log = open(folder / "libvirtd.stdout", "ab")
        self.proc = subprocess.Popen(
            [LIBVIRTD, "--listen", "-f", str(conf), "-p", str(run / "libvirtd.pid")],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            # set before exec: every thread libvirtd starts inherits it
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
        )
        try:
            self._wait_listening()
        except BaseException:
            self.close()
            raise

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                out = (self.folder / "libvirtd.stdout").read_text(errors="replace")[-500:]
                raise RuntimeError(f"libvirtd exited with {self.proc.returncode}: {out}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"libvirtd did not listen on 127.0.0.1:{self.port} within {START_TIMEOUT_S:.0f} s")

    def rss_peak_mb(self) -> float | None:
        return peak_rss_mb(self.proc.pid)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM of a live process, in MB; None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class CallCounter:
    """Reads one direction's byte stream as libvirt RPC messages and counts the calls;
    ``procedures``, when given, gets each call's (program, procedure) as it is seen."""

    def __init__(self, procedures: list[tuple[int, int]] | None = None) -> None:
        self._buf = bytearray()
        self._skip = 0  # bytes of the current message's body still to come
        self.procedures = procedures

    def feed(self, data: bytes) -> int:
        calls = 0
        view = memoryview(data)
        while view:
            if self._skip:
                n = min(self._skip, len(view))
                self._skip -= n
                view = view[n:]
                continue
            need = _TYPE_AT + 4 - len(self._buf)
            self._buf += view[:need]
            view = view[need:]
            if len(self._buf) < _TYPE_AT + 4:
                break
            length = int.from_bytes(self._buf[:4], "big")
            if int.from_bytes(self._buf[_TYPE_AT : _TYPE_AT + 4], "big") == _CALL:
                calls += 1
                if self.procedures is not None:
                    program = int.from_bytes(self._buf[4:8], "big")
                    self.procedures.append((program, int.from_bytes(self._buf[12:16], "big")))
            self._skip = max(0, length - len(self._buf))
            self._buf.clear()
        return calls


class _Relay:
    """127.0.0.1:port -> target, every chunk held ``delay_s`` in each direction (RTT = twice
    that), the calls clients send added to ``calls``."""

    def __init__(self, target_port: int, delay_s: float, calls: Any, log: Path | None = None):
        self.target = ("127.0.0.1", target_port)
        self.delay_s = delay_s
        # every call as the relay reads it: "monotonic-time connection program procedure"
        self._log = open(log, "a", buffering=1) if log is not None else None
        self._connections = 0
        self._lock = threading.Lock()
        self._calls = calls  # a multiprocessing.Value: read by the benchmark's process
        self._closed = False
        self._sockets: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        threading.Thread(target=self._accept, name="relay-accept", daemon=True).start()

    def _count(self, n: int) -> None:
        if n:
            with self._calls.get_lock():
                self._calls.value += n

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                conn.close()
                continue
            upstream.settimeout(None)
            for s in (conn, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._closed:
                    conn.close()
                    upstream.close()
                    return
                self._sockets += [conn, upstream]
            self._connections += 1
            self._direction(conn, upstream, CallCounter([] if self._log else None), self._connections)
            self._direction(upstream, conn, None)

    def _direction(
        self, src: socket.socket, dst: socket.socket, counter: CallCounter | None, connection: int = 0
    ) -> None:
        held: queue.SimpleQueue[tuple[float, bytes]] = queue.SimpleQueue()

        def read() -> None:
            try:
                while data := src.recv(262144):
                    if counter is not None:
                        self._count(counter.feed(data))
                        if counter.procedures and self._log is not None:
                            now = time.monotonic()
                            lines = "".join(f"{now:.4f} {connection} {p} {n}\n" for p, n in counter.procedures)
                            counter.procedures.clear()
                            self._log.write(lines)
                    held.put((time.monotonic() + self.delay_s, data))
            except OSError:
                pass
            held.put((0.0, b""))

        def write() -> None:
            try:
                while True:
                    due, data = held.get()
                    if not data:
                        dst.shutdown(socket.SHUT_WR)
                        return
                    wait = due - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                    dst.sendall(data)
            except OSError:
                pass

        threading.Thread(target=read, name="relay-read", daemon=True).start()
        threading.Thread(target=write, name="relay-write", daemon=True).start()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            socks, self._sockets = self._sockets, []
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


def _serve(
    target_port: int, delay_s: float, calls: Any, port: Any, stop: Any, cpus: set[int] | None, log: Path | None
) -> None:
    if cpus:
        os.sched_setaffinity(0, cpus)
    relay = _Relay(target_port, delay_s, calls, log)
    port.send(relay.port)
    stop.wait()
    relay.close()


class Relay:
    """The relay in a process of its own, so that the clients' traffic through it does not
    compete with the benchmark's own threads (the pty readers timing a frame) for one GIL.
    ``calls``: the RPC calls clients sent since the last ``reset()``; ``log``: a file that gets
    a line per call (monotonic time, connection, program, procedure: libvirt's
    ``remote_protocol.x`` numbers them), to see which calls wait on which."""

    def __init__(self, target_port: int, delay_s: float, cpus: set[int] | None = None, log: Path | None = None):
        ctx = multiprocessing.get_context("fork")
        self._calls = ctx.Value("q", 0)
        self._stop = ctx.Event()
        mine, theirs = ctx.Pipe()
        self._proc = ctx.Process(
            target=_serve, args=(target_port, delay_s, self._calls, theirs, self._stop, cpus, log), daemon=True
        )
        self._proc.start()
        if not mine.poll(START_TIMEOUT_S):
            self.close()
            raise TimeoutError("the relay did not start")
        self.port = int(mine.recv())

    @property
    def calls(self) -> int:
        with self._calls.get_lock():
            return int(self._calls.value)

    def reset(self) -> None:
        with self._calls.get_lock():
            self._calls.value = 0

    def close(self) -> None:
        self._stop.set()
        self._proc.join(timeout=5)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(timeout=5)


@contextmanager
def daemon(folder: Path, cpus: set[int] | None = None) -> Iterator[Daemon]:
    d = Daemon(folder, cpus)
    try:
        yield d
    finally:
        d.close()


def have_libvirtd() -> str | None:
    """Why the link cannot be built here, or None."""
    if not os.path.exists(LIBVIRTD):
        return f"{LIBVIRTD} is not installed"
    if shutil.which("virsh") is None:
        return "virsh is not installed"
    return None


def split_cpus() -> tuple[set[int], set[int]] | None:
    """(the remote side's CPUs, the clients' CPUs): the host's daemon and the link get the last
    CPU, the clients the others, as if the host were another machine. None on one CPU."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    return {cpus[-1]}, set(cpus[:-1])
