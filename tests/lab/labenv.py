"""Two libvirt "hosts" on one machine: namespaces, daemons, and teardown by PID.

Topology (everything lives in network namespaces this module creates; the root
namespace only gains the /run/netns entries, removed again by ``down()``)::

    <p>-client (10.99.0.100, the pinger) --veth--+
    <p>-hostA  br0 10.99.0.1 --veth--------------+-- <p>-sw: bridge swbr
    <p>-hostB  br0 10.99.0.2 --veth--------------+
    guests 10.99.0.50 (pingvm), .51 (pingvm2): a tap on br0 of whichever host runs each

``<p>`` is ``pcl<pid>`` of the test process, so two sessions on one machine (two
helpers, a developer and CI) never touch each other's lab. Each host is a network +
mount + UTS namespace with hostname hostA/hostB, its own host_uuid and its own
/etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/log/libvirt bind-mounted from
``<lab>/runs/<pid>/<host>``; one ``libvirtd --listen`` each. The daemons see the same
``<run>/shared`` folder: the "shared storage".

Everything started is recorded in ``<run>/state.json``; a later ``up()`` tears down
the runs whose owner process is gone (a crash, a killed CI job), and only those.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

LAB_DIR = Path(os.environ.get("POOLCTL_LAB_DIR", "/var/tmp/poolctl-lab"))
NET = "10.99.0"
CLIENT_IP = f"{NET}.100"
GUEST_IP = f"{NET}.50"
GUEST2_IP = f"{NET}.51"
HOST_NAMES = ("hostA", "hostB")
_BIND_TARGETS = {  # per-host folder -> path libvirt insists on
    "etc": "/etc/libvirt",
    "run": "/run/libvirt",
    "lib": "/var/lib/libvirt",
    "cache": "/var/cache/libvirt",
    "log": "/var/log/libvirt",
}


class LabError(RuntimeError):
    """The lab could not be brought up or changed; the message says which step and why."""


@dataclass(frozen=True)
class HostSpec:
    name: str
    ip: str
    uuid: str


HOSTS = {
    "hostA": HostSpec("hostA", f"{NET}.1", "0a0a0a0a-0000-4000-8000-00000000000a"),
    "hostB": HostSpec("hostB", f"{NET}.2", "0b0b0b0b-0000-4000-8000-00000000000b"),
}


def run(argv: list[str], timeout: float = 30, what: str = "") -> str:
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LabError(f"{what or argv[0]}: {exc}") from exc
    if p.returncode != 0:
        raise LabError(f"{what or ' '.join(argv)}: exit {p.returncode}: {p.stderr.strip()}")
    return p.stdout


def proc_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (field 22 of stat), to tell a PID reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def alive(pid: int, start: str | None) -> bool:
    """``pid`` still runs and is the process recorded (not a reuse, not a zombie)."""
    if start is None or proc_start(pid) != start:
        return False
    try:  # reap it if it is our child that has exited
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def kill_pid(pid: int, start: str | None, grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``grace``; only if ``pid`` is still the process we recorded."""
    if not alive(pid, start):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not alive(pid, start):
            break
        time.sleep(0.05)
    else:
        if alive(pid, start):
            os.kill(pid, signal.SIGKILL)


class Topology:
    """The run's folders, namespaces and daemons, with a JSON record of what was started."""

    def __init__(self, root: Path = LAB_DIR, run_id: str | None = None):
        self.root = root
        self.run_id = run_id or str(os.getpid())
        self.dir = root / "runs" / self.run_id
        self.shared = self.dir / "shared"
        p = f"pcl{self.run_id}"
        self.netns = {"sw": f"{p}-sw", "client": f"{p}-client"}
        self.netns.update({h: f"{p}-{h}" for h in HOST_NAMES})
        self.state: dict = {
            "owner": os.getpid(),
            "owner_start": proc_start(os.getpid()),
            "netns": [],
            "daemons": {},
            "loops": [],
        }
        self._popen: dict[str, subprocess.Popen] = {}

    # -- record --------------------------------------------------------------------
    def _save(self) -> None:
        tmp = self.dir / "state.json.tmp"
        tmp.write_text(json.dumps(self.state))
        tmp.replace(self.dir / "state.json")

    def uri(self, host: str) -> str:
        return f"qemu+unix:///system?socket={self.dir}/{host}/run/libvirt-sock"

    def peer_uri(self, host: str) -> str:
        """How one daemon reaches the other over the lab network (p2p migration)."""
        return f"qemu+tcp://{HOSTS[host].ip}/system"

    # -- network -------------------------------------------------------------------
    def _ns_add(self, key: str) -> None:
        run(["ip", "netns", "add", self.netns[key]], what=f"create netns {self.netns[key]}")
        self.state["netns"].append(self.netns[key])
        self._save()

    def build_network(self) -> None:
        sw = self.netns["sw"]
        for key in ("sw", *HOST_NAMES, "client"):
            self._ns_add(key)
        run(["ip", "-n", sw, "link", "add", "swbr", "type", "bridge"])
        run(["ip", "-n", sw, "link", "set", "swbr", "up"])
        for key in (*HOST_NAMES, "client"):
            ns = self.netns[key]
            # created inside the switch namespace, so no name ever appears in the root one
            run(
                ["ip", "-n", sw, "link", "add", f"sw-{key}", "type", "veth", "peer", "name", "uplink", "netns", ns],
                what=f"veth for {key}",
            )
            run(["ip", "-n", sw, "link", "set", f"sw-{key}", "master", "swbr", "up"])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        for h in HOST_NAMES:
            ns = self.netns[h]
            run(["ip", "-n", ns, "link", "add", "br0", "type", "bridge"])
            # A bridge without a MAC of its own takes its lowest port's: a guest's tap joining or
            # leaving would change the host's MAC under the daemons' TCP connection, silencing it
            # until the peer's ARP entry expires (longer than libvirt's 30 s keepalive).
            run(["ip", "-n", ns, "link", "set", "br0", "address", f"02:99:00:00:00:{HOST_NAMES.index(h) + 1:02x}"])
            # no STP / forward delay: the guest's tap must forward at once after migration
            run(["ip", "-n", ns, "link", "set", "br0", "type", "bridge", "forward_delay", "0", "stp_state", "0"])
            run(["ip", "-n", ns, "link", "set", "uplink", "master", "br0", "up"])
            run(["ip", "-n", ns, "addr", "add", f"{HOSTS[h].ip}/24", "dev", "br0"])
            run(["ip", "-n", ns, "link", "set", "br0", "up"])
        cl = self.netns["client"]
        run(["ip", "-n", cl, "addr", "add", f"{CLIENT_IP}/24", "dev", "uplink"])
        run(["ip", "-n", cl, "link", "set", "uplink", "up"])

    # -- storage -------------------------------------------------------------------
    def attach_loop(self, backing: Path, size_mib: int) -> str:
        """A loop block device over a sparse file: the lab's "SAN LUN" both hosts see.

        A plain file on a local filesystem makes libvirt refuse a live migration
        ("Migration without shared storage is unsafe"); a block device opened with
        cache=none is what it accepts as shared, as with a real SAN.
        """
        backing.parent.mkdir(parents=True, exist_ok=True)
        with open(backing, "wb") as f:
            f.truncate(size_mib * 1024 * 1024)
        dev = run(["losetup", "--find", "--show", str(backing)], what="losetup (needs the loop module)").strip()
        self.state["loops"].append([dev, str(backing)])
        self._save()
        return dev

    def _detach_loops(self, problems: list[str]) -> None:
        for dev, backing in self.state.get("loops", []):
            try:  # only if the device still serves our file: it may have been reused
                back = run(["losetup", "--noheadings", "--output", "BACK-FILE", dev]).strip()
                if back == backing:
                    run(["losetup", "--detach", dev])
            except LabError as exc:
                if Path(backing).exists() and "No such device" not in str(exc):
                    problems.append(f"detach {dev}: {exc}")
        self.state["loops"] = []

    # -- daemons -------------------------------------------------------------------
    def write_host_config(self, h: str, cache_root: Path) -> None:
        d = self.dir / h
        for sub in ("etc", "run", "lib", "log/qemu"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        # QEMU capabilities cache survives runs (libvirt invalidates it on binary change): -3 s
        cache = cache_root / f"libvirt-{h}"
        cache.mkdir(parents=True, exist_ok=True)
        if not (d / "cache").exists():
            (d / "cache").symlink_to(cache)
        spec = HOSTS[h]
        (d / "etc/libvirtd.conf").write_text(f"""listen_tls = 0
listen_tcp = 1
listen_addr = "{spec.ip}"
auth_tcp = "none"
auth_unix_rw = "none"
auth_unix_ro = "none"
unix_sock_rw_perms = "0700"
host_uuid = "{spec.uuid}"
log_filters = "1:qemu.qemu_migration 2:qemu.qemu_monitor_json 3:util 3:rpc 3:conf"
log_outputs = "2:file:/var/log/libvirt/libvirtd.log"
""")
        # no cgroups, namespaces or labels: the lab is root on a machine without systemd
        (d / "etc/qemu.conf").write_text(f"""user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
migration_host = "{spec.ip}"
migration_address = "{spec.ip}"
""")
        (d / "etc/libvirt.conf").write_text("")
        hosts = "127.0.0.1 localhost\n" + "".join(f"{s.ip} {s.name}\n" for s in HOSTS.values())
        (d / "hosts").write_text(hosts + f"{CLIENT_IP} client\n")

    def start_daemon(self, h: str) -> int:
        d = self.dir / h
        binds = "".join(
            f"mkdir -p {target}\nmount --bind {d / sub} {target}\n" for sub, target in _BIND_TARGETS.items()
        )
        script = (
            f"set -e\nhostname {h}\n{binds}mount --bind {d / 'hosts'} /etc/hosts\n"
            "exec /usr/sbin/libvirtd --listen -f /etc/libvirt/libvirtd.conf"
            " -p /run/libvirt/libvirtd.pid\n"
        )
        log = open(d / "libvirtd.stdout", "ab")
        # ip netns exec and unshare exec in place: the PID we get is libvirtd's
        proc = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                self.netns[h],
                "unshare",
                "--mount",
                "--uts",
                "--propagation",
                "private",
                "/bin/sh",
                "-c",
                script,
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self._popen[h] = proc
        self.state["daemons"][h] = [proc.pid, proc_start(proc.pid)]
        self._save()
        return proc.pid

    def daemon_alive(self, h: str) -> bool:
        pid, start = self.state["daemons"].get(h, [0, None])
        return bool(pid) and alive(pid, start)

    def stop_daemon(self, h: str, sig: int = signal.SIGTERM, grace: float = 10.0) -> None:
        pid, start = self.state["daemons"].get(h, [0, None])
        if pid and alive(pid, start):
            os.kill(pid, sig)
            kill_pid(pid, start, grace)
        proc = self._popen.pop(h, None)
        if proc is not None:
            proc.wait(timeout=5)
        self.state["daemons"].pop(h, None)
        self._save()

    def daemon_log_tail(self, h: str, lines: int = 15) -> str:
        out = []
        for name in ("libvirtd.stdout", "log/libvirtd.log"):
            f = self.dir / h / name
            if f.exists():
                tail = f.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {f}:\n" + "\n".join(tail))
        return "\n".join(out)

    # -- teardown ------------------------------------------------------------------
    def qemu_pids(self) -> list[tuple[int, str | None]]:
        """QEMU processes of this run: libvirt's pidfiles, checked against the cmdline."""
        found = []
        for h in HOST_NAMES:
            for pidfile in (self.dir / h / "run" / "qemu").glob("*.pid"):
                try:
                    pid = int(pidfile.read_text().strip())
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
                except (OSError, ValueError):
                    continue
                if b"qemu-system" in cmd and str(self.dir).encode() in cmd:
                    found.append((pid, proc_start(pid)))
        return found

    def teardown(self) -> list[str]:
        """Stop what this run started; return what could not be undone (empty: all clean)."""
        problems: list[str] = []
        qemus = self.qemu_pids()  # before the daemons go: they may remove the pidfiles
        for h in list(self.state["daemons"]):
            try:
                self.stop_daemon(h, grace=5.0)
            except Exception as exc:  # keep going: the rest must still be torn down
                problems.append(f"stop libvirtd {h}: {exc}")
        for pid, start in qemus + self.qemu_pids():
            kill_pid(pid, start, grace=3.0)
        self._detach_loops(problems)
        for ns in reversed(self.state["netns"]):
            if Path(f"/run/netns/{ns}").exists():
                try:
                    run(["ip", "netns", "del", ns], what=f"delete netns {ns}")
                except LabError as exc:
                    problems.append(str(exc))
        self.state["netns"] = []
        if self.dir.exists():
            self._save()
            # keep the last run's logs for a post-mortem, drop the rest
            last = self.root / "last-run"
            shutil.rmtree(last, ignore_errors=True)
            shutil.rmtree(self.shared, ignore_errors=True)
            shutil.rmtree(self.dir / "san", ignore_errors=True)
            try:
                self.dir.rename(last)
            except OSError as exc:
                problems.append(f"keep logs: {exc}")
        return problems

    @classmethod
    def reap_stale(cls, root: Path = LAB_DIR) -> list[str]:
        """Tear down earlier runs whose test process died without cleaning up."""
        reaped = []
        for state_file in sorted((root / "runs").glob("*/state.json")):
            try:
                state = json.loads(state_file.read_text())
            except (OSError, ValueError):
                continue
            if alive(state.get("owner", 0), state.get("owner_start")):
                continue  # another live session's lab: not ours to touch
            old = cls(root, state_file.parent.name)
            old.state = state
            old.teardown()
            reaped.append(old.run_id)
        return reaped
