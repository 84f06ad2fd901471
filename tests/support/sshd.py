"""A real OpenSSH server on loopback, in front of a private libvirt daemon (the test driver).

Debian's ``/usr/sbin/sshd`` runs with its own config, a generated host key and a generated client
key in a temporary directory, in a mount namespace of its own where ``/etc/shadow`` is a copy
that gives root the test password (password logins without touching the machine's accounts).
The client side is OpenSSH's ``ssh`` (libvirt's ``+ssh`` transport, through ``command=`` set to a
wrapper that adds ``-F`` with the fixture's ``ssh_config``) or libssh in the client process
(``+libssh``, with ``keyfile=``/``known_hosts=``). The remote end reaches the daemon with ``nc -U``
(``proxy=netcat``, ``socket=``). ``stop()`` ends the server and every session it forked.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.support.kvm_helpers import PrivateLibvirtd

SSHD = "/usr/sbin/sshd"
PASSWORD = "poolctl-test-pw"  # only ever valid inside the fixture's mount namespace


def children_of(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (from /proc), deepest last."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def command_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def ssh_children() -> list[str]:
    """The ssh (or nc) processes this test process has running, as 'pid comm': must be empty
    once a connection attempt is over."""
    return [f"{p} {command_name(p)}" for p in children_of(os.getpid()) if command_name(p) in ("ssh", "nc")]


def wait_no_ssh_children(timeout: float = 5.0) -> None:
    """libvirt reaps its ssh child as the connection's socket is freed: allow it a moment."""
    deadline = time.monotonic() + timeout
    while (left := ssh_children()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"ssh children left behind: {left}"


def _die_with_parent() -> None:
    """The listener goes when the test process does, even killed (its sessions end with it:
    their client end is this process's ssh)."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _keygen(path: Path, passphrase: str = "") -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", "poolctl-test", "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    return (path.parent / (path.name + ".pub")).read_text().strip()


class Sshd:
    def __init__(
        self,
        root: Path,
        daemon: PrivateLibvirtd | Any,
        *,
        address: str = "127.0.0.1",
        netns: str | None = None,
        port: int | None = None,
    ):
        """``daemon``: what has the libvirt socket (``.socket``) the sessions reach; ``netns``:
        the network namespace to listen in (the lab's hosts), ``address`` there."""
        self.root = root
        self.daemon = daemon
        self.address = address
        self.netns = netns
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o700)
        self.port = port or _free_port()
        self.host_key = root / "host_ed25519"
        self.host_pub = _keygen(self.host_key)
        self.client_key = root / "client_ed25519"
        self.client_pub = _keygen(self.client_key)
        self.passphrase_key = root / "client_pass_ed25519"
        self.passphrase_pub = _keygen(self.passphrase_key, passphrase="key-passphrase")
        self.authorized = root / "authorized_keys"
        self.authorized.write_text(self.client_pub + "\n" + self.passphrase_pub + "\n")
        self.known_hosts = root / "known_hosts"
        self.trust()
        self.ssh_config = root / "ssh_config"
        self.ssh_config.write_text(
            "Host *\n"
            f"  UserKnownHostsFile {self.known_hosts}\n"
            "  GlobalKnownHostsFile /dev/null\n"
            "  StrictHostKeyChecking yes\n"
            "  IdentitiesOnly yes\n"
            "  IdentityAgent none\n"
            "  PasswordAuthentication yes\n"
            "  LogLevel ERROR\n"
        )
        # libvirt runs ``command=`` with no arguments of its own but the ssh ones: this is
        # OpenSSH reading the fixture's config rather than the user's.
        self.client_command = root / "ssh"
        self.client_command.write_text(f'#!/bin/sh\nexec /usr/bin/ssh -F {self.ssh_config} "$@"\n')
        self.client_command.chmod(0o755)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = root / "sshd.log"

    # -- the server ------------------------------------------------------------------------
    def write_config(self, *, password: bool = False, pubkey: bool = True) -> Path:
        cfg = self.root / "sshd_config"
        cfg.write_text(
            f"Port {self.port}\nListenAddress {self.address}\nHostKey {self.host_key}\n"
            f"PidFile none\nAuthorizedKeysFile {self.authorized}\n"
            "PermitRootLogin yes\nUsePAM no\nStrictModes no\nPrintMotd no\nPrintLastLog no\n"
            f"PasswordAuthentication {'yes' if password else 'no'}\n"
            f"PubkeyAuthentication {'yes' if pubkey else 'no'}\n"
            "KbdInteractiveAuthentication no\nPermitEmptyPasswords no\nMaxAuthTries 3\n"
            "LogLevel VERBOSE\nLoginGraceTime 30\nAcceptEnv none\n"
        )
        return cfg

    def start(self, *, password: bool = False, pubkey: bool = True) -> None:
        cfg = self.write_config(password=password, pubkey=pubkey)
        shadow = self.root / "shadow"
        lines = []
        hashed = subprocess.run(
            ["openssl", "passwd", "-6", PASSWORD], check=True, capture_output=True, text=True
        ).stdout.strip()
        for line in Path("/etc/shadow").read_text().splitlines():
            fields = line.split(":")
            if fields[0] == "root":
                fields[1] = hashed
            lines.append(":".join(fields))
        shadow.write_text("\n".join(lines) + "\n")
        shadow.chmod(0o600)
        os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege separation directory
        script = f"mount --bind {shadow} /etc/shadow && exec {SSHD} -D -e -f {cfg}"
        netns = ["ip", "netns", "exec", self.netns] if self.netns else []
        self.proc = subprocess.Popen(
            [*netns, "unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script],
            preexec_fn=_die_with_parent,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("ab"),
        )
        deadline = time.monotonic() + 15
        while True:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"sshd did not start: {self.log.read_text()}")
            if self._answers():
                return
            time.sleep(0.05)

    def _answers(self) -> bool:
        def probe() -> bool:
            try:
                with socket.create_connection((self.address, self.port), timeout=1) as s:
                    return s.recv(64).startswith(b"SSH-")
            except OSError:
                return False

        if self.netns is None:
            return probe()
        from tests.support.netns import call_in_netns

        return call_in_netns(self.netns, probe, timeout=5)

    def restart(self, **kw: bool) -> None:
        self.stop()
        self.start(**kw)

    def stop(self) -> None:
        """The server and every session it forked (each connection's sshd, its shell and nc):
        sshd leaves sessions running when only the listener ends."""
        if self.proc is None:
            return
        pids = [self.proc.pid, *children_of(self.proc.pid)]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=10)
        self.proc = None
        deadline = time.monotonic() + 5
        while any(Path(f"/proc/{p}").exists() and command_name(p) not in ("", "zombie") for p in pids[1:]):
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)

    # -- keys ------------------------------------------------------------------------------
    def trust(self, host_pub: str | None = None) -> None:
        """known_hosts holds ``host_pub`` (the server's real key by default) for this port."""
        key = " ".join((host_pub or self.host_pub).split()[:2])
        self.known_hosts.write_text(f"[{self.address}]:{self.port} {key}\n")

    def forget(self) -> None:
        self.known_hosts.write_text("")

    def other_key(self) -> str:
        """A host key that is not the server's: known_hosts holding it is a changed key."""
        return _keygen(self.root / f"other_{time.monotonic_ns()}")

    # -- URIs ------------------------------------------------------------------------------
    def uri(
        self,
        transport: str = "ssh",
        user: str = "root",
        keyfile: Path | None = None,
        driver: str = "test",
        path: str = "/default",
        **params: str,
    ) -> str:
        """A libvirt URI reaching the private daemon's test driver through this server."""
        query: dict[str, str] = {"socket": str(self.daemon.socket), "proxy": "netcat"}
        key = self.client_key if keyfile is None else keyfile
        if str(key):
            query["keyfile"] = str(key)
        if transport == "ssh":
            query["command"] = str(self.client_command)
        elif transport == "libssh":
            query["known_hosts"] = str(self.known_hosts)
        query.update(params)
        return f"{driver}+{transport}://{user}@{self.address}:{self.port}{path}?{urlencode(query, safe='/')}"


@pytest.fixture
def sshd(tmp_path, monkeypatch):
    """A running sshd (key logins) in front of a running private libvirtd."""
    for var in ("SSH_AUTH_SOCK", "SSH_ASKPASS", "DISPLAY"):
        monkeypatch.delenv(var, raising=False)  # no agent, no askpass: what the test sets is all
    daemon = PrivateLibvirtd(tmp_path / "libvirtd")
    daemon.start()
    server = Sshd(tmp_path / "sshd", daemon)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        daemon.stop()
