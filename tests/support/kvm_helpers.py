"""Shared fixtures for the KVM backend tests: the demo pool on libvirt's test driver."""

from __future__ import annotations

import queue
import time

import pytest

from poolctl.backends.kvm import KvmBackend
from poolctl.sim.libvirt import demo_config


@pytest.fixture
def demo(tmp_path):
    backend = KvmBackend(demo_config(tmp_path))
    backend.connect()
    yield backend
    backend.close()


def by_name(inv, name):
    for table in (inv.vms, inv.hosts, inv.srs, inv.networks):
        for obj in table:
            if obj.name == name:
                return obj
    raise AssertionError(f"{name} not in inventory")


def wait_for(q: queue.Queue, predicate, what: str, timeout: float = 10.0):
    """The first item from ``q`` that matches; fails naming ``what`` and what came instead.

    ``timeout`` is a deadline for a stuck test, not a latency target."""
    deadline = time.monotonic() + timeout
    seen = []
    while (left := deadline - time.monotonic()) > 0:
        try:
            item = q.get(timeout=left)
        except queue.Empty:
            break
        seen.append(item)
        if predicate(item):
            return item
    raise AssertionError(f"no {what} within {timeout} s; saw {seen}")


class PrivateLibvirtd:
    """A private libvirtd serving libvirt's test driver over a unix socket, in its own
    mount and network namespaces (tmpfs state, nothing shared with the machine's libvirt).
    Used to lose and regain a real remote connection. Needs root, unshare and libvirtd."""

    def __init__(self, root):
        self.root = root
        self.sock_dir = root / "run"
        self.socket = self.sock_dir / "libvirt-sock"
        self.proc = None
        for d in ("etc", "run", "log"):
            (root / d).mkdir(parents=True, exist_ok=True)
        (root / "etc" / "libvirtd.conf").write_text(
            f'unix_sock_dir = "{self.sock_dir}"\nauth_unix_rw = "none"\nauth_unix_ro = "none"\n'
            f'unix_sock_rw_perms = "0700"\nlog_outputs = "3:file:{root}/log/libvirtd.log"\n'
        )
        (root / "etc" / "libvirt.conf").write_text("")

    @property
    def uri(self) -> str:
        return f"test+unix:///default?socket={self.socket}"

    def start(self) -> None:
        import subprocess
        import time

        script = (
            # the mount points, where no libvirt-daemon-system package made them (the lab's setup)
            "mkdir -p /etc/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt && "
            f"mount --bind {self.root}/etc /etc/libvirt && mkdir -p /run/libvirt && "
            "mount -t tmpfs tmpfs /run/libvirt && mount -t tmpfs tmpfs /var/lib/libvirt && "
            "mount -t tmpfs tmpfs /var/cache/libvirt && "
            f"mount --bind {self.root}/log /var/log/libvirt && "
            # its pid file in its own tmpfs: the default /run/libvirtd.pid is the machine's, and
            # a second private daemon (another test run) would fail to take it
            "exec /usr/sbin/libvirtd -f /etc/libvirt/libvirtd.conf -p /run/libvirt/libvirtd.pid"
        )
        self.socket.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--net", "--propagation", "private", "/bin/sh", "-c", script],
            stdout=subprocess.DEVNULL,
            stderr=(self.root / "log" / "stderr.txt").open("ab"),
        )
        deadline = time.monotonic() + 15
        while not self.socket.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"test libvirtd did not start: {(self.root / 'log' / 'stderr.txt').read_text()}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # our own child, by PID
            self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture
def private_libvirtd(tmp_path):
    daemon = PrivateLibvirtd(tmp_path / "libvirtd")
    daemon.start()
    yield daemon
    daemon.stop()
