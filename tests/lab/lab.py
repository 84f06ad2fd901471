"""The object the ``lab`` fixture yields: two libvirt hosts, a guest, a client namespace."""

from __future__ import annotations

import atexit
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import libvirt

from tests.support.netns import call_in_netns

from . import labguest as g
from .labenv import CLIENT_IP, GUEST_IP, HOST_NAMES, HOSTS, LAB_DIR, LabError, Topology

T = TypeVar("T")
HERE = Path(__file__).resolve().parent

# libvirt prints every error to stderr by default; the tests read them from exceptions
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)


class Lab:
    guest_name = g.GUEST_NAME
    guest_uuid = g.GUEST_UUID
    guest_ip = GUEST_IP
    client_ip = CLIENT_IP
    hosts = HOST_NAMES  # ("hostA", "hostB"): also their hostnames as libvirt reports them
    pool_name = g.POOL_NAME

    def __init__(self, root: Path = LAB_DIR):
        self.root = root
        self.topo = Topology(root)
        self.timings: dict[str, float] = {}
        self.domain_type = "qemu"
        self._conns: dict[str, libvirt.virConnect] = {}
        self._down = False

    # -- what tests use ----------------------------------------------------------------
    @property
    def uris(self) -> dict[str, str]:
        return {h: self.topo.uri(h) for h in HOST_NAMES}

    @property
    def peer_uris(self) -> dict[str, str]:
        return {h: self.topo.peer_uri(h) for h in HOST_NAMES}

    host_uuids = {h: HOSTS[h].uuid for h in HOST_NAMES}
    host_ips = {h: HOSTS[h].ip for h in HOST_NAMES}

    @property
    def client_netns(self) -> str:
        return self.topo.netns["client"]

    guest_names = tuple(g.GUESTS)  # ("pingvm", "pingvm2")
    guest_ips = {n: spec.ip for n, spec in g.GUESTS.items()}

    @property
    def disk_path(self) -> Path:
        return self.disk_of(self.guest_name)

    def disk_of(self, name: str) -> Path:
        return self.topo.shared / g.GUESTS[name].disk_name

    @property
    def guest_xml(self) -> str:
        return self.xml_of(self.guest_name)

    def xml_of(self, name: str, agent: bool = False, dirty_mib: int = 0) -> str:
        return g.domain_xml(self.root / "guest", self.disk_of(name), self.domain_type, g.GUESTS[name], agent, dirty_mib)

    def client_argv(self, argv: list[str]) -> list[str]:
        """``argv`` prefixed to run inside the client namespace (for subprocess)."""
        return g.client_argv(self.client_netns, argv)

    def in_client(self, fn: Callable[[], T], timeout: float = 60) -> T:
        """Run ``fn`` in a thread that entered the client netns; threads it starts stay there."""
        try:
            return call_in_netns(self.client_netns, fn, timeout)
        except TimeoutError as exc:  # the lab's callers (and the benchmark) handle LabError
            raise LabError(str(exc)) from None

    def ping_ok(self, name: str | None = None) -> bool:
        return g.ping_once(self.client_netns, self.guest_ips[name or self.guest_name])

    def wait_ping(self, timeout: float = 60, name: str | None = None) -> float:
        name = name or self.guest_name
        return g.wait_ping(self.client_netns, timeout, self.guest_ips[name], what=f"guest {name}")

    def _serial_log(self, host: str, name: str) -> Path:
        return self.topo.dir / host / "log" / "qemu" / f"{name}-serial.log"

    def serial_marks(self, name: str | None = None) -> dict[str, int]:
        """How far each host's serial log of the guest reaches now: ``guest_crash(since=...)``
        then reads only what was logged after this point (a move's own crash, not an older one)."""
        name = name or self.guest_name
        marks = {}
        for h in HOST_NAMES:
            try:
                marks[h] = self._serial_log(h, name).stat().st_size
            except OSError:
                marks[h] = 0
        return marks

    def guest_crash(self, name: str | None = None, since: dict[str, int] | None = None) -> str:
        """The guest kernel's latest oops line in its serial logs ('' when none), or only in what
        they gained after ``since`` (``serial_marks()``): a guest that went silent after a move
        crashed there (QEMU 7.2 TCG, see README "Guest crashes")."""
        name = name or self.guest_name
        for h in HOST_NAMES:
            log = self._serial_log(h, name)
            try:
                with open(log, "rb") as f:
                    mark = (since or {}).get(h, 0)
                    f.seek(mark if f.seek(0, os.SEEK_END) >= mark else 0)  # a shorter log is a new one
                    text = f.read().decode(errors="replace")
            except OSError:
                continue
            hits = re.findall(r"^.*(?:kernel BUG|BUG: |Oops|Kernel panic|is not a head).*$", text, re.M)
            if hits:
                return f"{h}: {hits[-1].strip()}"  # the log appends across boots: the latest
        return ""

    def conn(self, host: str) -> libvirt.virConnect:
        """The lab's own connection to ``host`` (reopened after a daemon restart)."""
        c = self._conns.get(host)
        if c is not None:
            try:
                if c.isAlive():
                    c.getLibVersion()
                    return c
            except libvirt.libvirtError:
                pass
            self._close(host)
        self._conns[host] = libvirt.open(self.topo.uri(host))
        return self._conns[host]

    def _close(self, host: str) -> None:
        c = self._conns.pop(host, None)
        if c is not None:
            try:
                c.close()
            except libvirt.libvirtError:
                pass

    def warm_capabilities(self) -> None:
        """Ask each daemon for its capabilities once, both at a time: a fresh libvirtd takes
        4-8 s over its first getCapabilities (later ones: 2 ms). Real hosts' daemons have long
        answered it; the lab's are minutes old, so the first poolctl command would pay it."""
        if "caps_warm_s" in self.timings:
            return
        t0 = time.monotonic()
        threads = [threading.Thread(target=self.conn(h).getCapabilities, daemon=True) for h in HOST_NAMES]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.timings["caps_warm_s"] = round(time.monotonic() - t0, 2)

    def stop_host(self, host: str, sig: int = 15) -> None:
        """Stop ``host``'s libvirtd (by PID); its running guests keep running, as on a real host."""
        self._close(host)
        self.topo.stop_daemon(host, sig=sig)

    def start_host(self, host: str, timeout: float = 30) -> None:
        if self.topo.daemon_alive(host):
            return
        self.topo.start_daemon(host)
        self._wait_daemon(host, timeout)

    def host_running(self, host: str) -> bool:
        return self.topo.daemon_alive(host)

    def running_on(self, name: str | None = None) -> list[str]:
        """Hosts where the guest (default: pingvm) is a running (not paused, not incoming) domain."""
        name = name or self.guest_name
        where = []
        for h in HOST_NAMES:
            try:
                dom = self.conn(h).lookupByName(name)
                if dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING:
                    where.append(h)
            except libvirt.libvirtError:
                continue
        return where

    def stop_guest(self, name: str, keep: str | None = None) -> None:
        """Destroy ``name`` on every host but ``keep`` (the guests are transient: it is gone)."""
        for h in HOST_NAMES:
            if h == keep:
                continue
            try:
                self.conn(h).lookupByName(name).destroy()
            except libvirt.libvirtError:
                pass

    def has_agent(self, host: str, name: str) -> bool:
        """Whether the running domain has the guest-agent channel (see ``labguest._AGENT_XML``)."""
        return self.kind_of(host, name)[0]

    def kind_of(self, host: str, name: str) -> tuple[bool, int]:
        """(agent channel, busy workload MiB) of the running domain (``labguest.domain_xml``)."""
        try:
            xml = self.conn(host).lookupByName(name).XMLDesc(0)
        except libvirt.libvirtError:  # gone meanwhile: then it is booted afresh anyway
            return (False, -1)
        dirty = re.search(r"guestdirty=(\d+)", xml)
        return (g.AGENT_CHANNEL in xml, int(dirty.group(1)) if dirty else 0)

    def ensure_guest(
        self, on: str = "hostA", timeout: float = 90, name: str | None = None, agent: bool = False, dirty_mib: int = 0
    ) -> None:
        """Both daemons up, the guest (default: pingvm) running on ``on`` only, answering ping;
        ``dirty_mib`` > 0: busy, rewriting that many MiB a second (a guest of the other kind reboots)."""
        self.ensure_guests(on, (name or self.guest_name,), timeout, agent, dirty_mib)

    def ensure_guests(
        self,
        on: str = "hostA",
        names: tuple[str, ...] = (),
        timeout: float = 90,
        agent: bool = True,
        dirty_mib: int = 0,
    ) -> None:
        """Both daemons up, each of ``names`` (default: all) running on ``on`` only, answering
        ping, with the guest-agent channel or without as ``agent`` says (a guest of the other
        kind is rebooted). With it, each guest's agent reports its address before this returns.
        Guests that must boot boot together: the second costs little more than the first."""
        for h in HOST_NAMES:
            self.start_host(h)
        to_boot = []
        for name in names or self.guest_names:
            where = self.running_on(name)
            keep = on if on in where else (where[0] if where else None)
            if keep is not None and self.kind_of(keep, name) != (agent, dirty_mib):
                keep = None
            self.stop_guest(name, keep=keep)  # leftovers (paused, incoming, a second copy) go
            if keep is None:
                to_boot.append(name)
                continue
            try:
                if keep != on:
                    self.migrate_raw(keep, on, name=name)
                self.wait_ping(15, name)
                if agent:
                    self.wait_agent(on, name, 15)
            except LabError as exc:
                # A guest that stopped answering must not fail every later test too: boot a
                # fresh one (counted in timings, so a flaky guest shows in the report).
                print(f"\nlab: {exc}; rebooting {name} on {on}")
                self.timings["guest_reboots"] = self.timings.get("guest_reboots", 0) + 1
                self.stop_guest(name)
                to_boot.append(name)
        self._boot(on, to_boot, timeout, agent, dirty_mib)

    def _boot(self, on: str, names: list[str], timeout: float, agent: bool, dirty_mib: int = 0) -> None:
        if not names:
            return
        t0 = time.monotonic()
        logs = [self._serial_log(on, name) for name in names]
        offsets = {log: log.stat().st_size if log.exists() else 0 for log in logs}  # the log appends
        for name in names:
            self.conn(on).createXML(self.xml_of(name, agent, dirty_mib), 0)
        for name in names:
            self.wait_ping(max(1.0, timeout - (time.monotonic() - t0)), name)
        if dirty_mib:
            self.timings["busy_after_ping_s"] = round(
                g.wait_busy(logs, offsets, max(1.0, timeout - (time.monotonic() - t0))), 2
            )
        for name in names if agent else ():
            self.wait_agent(on, name, max(1.0, timeout - (time.monotonic() - t0)))
        key = "boot_to_ping_s" if len(names) == 1 else f"boot_{len(names)}_to_ping_s"
        self.timings[key] = round(time.monotonic() - t0, 2)

    def agent_ips(self, host: str, name: str | None = None) -> list[str]:
        """The addresses the guest's agent reports through ``host``'s libvirt (what poolctl reads)."""
        dom = self.conn(host).lookupByName(name or self.guest_name)
        ifaces = dom.interfaceAddresses(libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT, 0) or {}
        return [a["addr"] for i in ifaces.values() for a in i.get("addrs") or () if a["addr"] != "127.0.0.1"]

    def wait_agent(self, host: str, name: str | None = None, timeout: float = 15) -> float:
        """Seconds until the guest's agent answers with its address (it starts just after the NIC)."""
        name = name or self.guest_name
        t0 = time.monotonic()
        last: Exception | None = None
        while time.monotonic() - t0 < timeout:
            try:
                if self.guest_ips[name] in self.agent_ips(host, name):
                    return time.monotonic() - t0
            except libvirt.libvirtError as exc:  # "agent is not connected" until the guest opens its port
                last = exc
            time.sleep(0.1)
        raise LabError(
            f"guest {name}'s agent on {host} did not report {self.guest_ips[name]} in {timeout:.0f} s: {last}"
        )

    def migrate_raw(
        self, src: str, dst: str, params: dict | None = None, timeout: float = 60, name: str | None = None
    ) -> float:
        """Peer-to-peer live migration with libvirt-python only; seconds taken."""
        name = name or self.guest_name
        dom = self.conn(src).lookupByName(name)
        flags = libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER
        box: dict[str, object] = {}

        def body() -> None:
            try:
                dom.migrateToURI3(self.topo.peer_uri(dst), params or {}, flags)
            except libvirt.libvirtError as exc:
                box["error"] = exc

        t0 = time.monotonic()
        t = threading.Thread(target=body, daemon=True)
        t.start()
        t.join(timeout)
        if t.is_alive():
            try:
                dom.abortJob()
            except libvirt.libvirtError:
                pass
            t.join(15)
            raise LabError(f"migration of {name} {src} -> {dst} took over {timeout} s")
        if "error" in box:
            raise LabError(f"migration of {name} {src} -> {dst}: {box['error']}")
        return time.monotonic() - t0

    def pool_config(self, **overrides):
        """A ``PoolConfig`` for poolctl's KVM backend pointing at the two lab hosts."""
        from poolctl.config import pool_config

        fields = {
            "name": "lab",
            "backend": "kvm",
            "uris": tuple(self.uris[h] for h in HOST_NAMES),
            "shared_storage": (self.pool_name,),
            "migration_uris": {self.uris[h]: self.peer_uris[h] for h in HOST_NAMES},
        }
        fields.update(overrides)
        return pool_config(fields)

    # -- bring up / tear down -----------------------------------------------------------
    def _step(self, name: str, fn: Callable[[], T]) -> T:
        t0 = time.monotonic()
        try:
            return fn()
        except LabError:
            raise
        except Exception as exc:
            raise LabError(f"lab step '{name}' failed: {type(exc).__name__}: {exc}") from exc
        finally:
            self.timings[name] = round(time.monotonic() - t0, 2)

    def _wait_daemon(self, host: str, timeout: float) -> None:
        t0 = time.monotonic()
        last: Exception | None = None
        while time.monotonic() - t0 < timeout:
            if not self.topo.daemon_alive(host):
                raise LabError(f"libvirtd of {host} exited at start:\n{self.topo.daemon_log_tail(host)}")
            try:
                self._close(host)
                c = self.conn(host)
                if c.getHostname() != host:
                    raise LabError(f"{host}'s libvirtd reports hostname {c.getHostname()!r}")
                return
            except libvirt.libvirtError as exc:
                last = exc
                time.sleep(0.1)
        raise LabError(
            f"libvirtd of {host} not answering after {timeout} s ({last}):\n{self.topo.daemon_log_tail(host)}"
        )

    def up(self) -> Lab:
        if os.geteuid() != 0:
            raise LabError("the lab needs root (namespaces, bridges, libvirtd)")
        atexit.register(self.down)
        t_all = time.monotonic()
        reaped = self._step("reap_stale", lambda: Topology.reap_stale(self.root))
        if reaped:
            self.timings["reaped_runs"] = len(reaped)
        self._step(
            "build_guest",
            lambda: subprocess.run(
                [str(HERE / "build_guest.sh")],
                check=True,
                timeout=600,
                env={**os.environ, "POOLCTL_LAB_DIR": str(self.root)},
            ),
        )
        probe = g.KvmProbe(self.root / "guest", self.root / "kvm-probe")
        try:
            self.topo.dir.mkdir(parents=True, exist_ok=True)
            self.topo.shared.mkdir(exist_ok=True)
            self.topo._save()
            self._step("network", self.topo.build_network)
            for h in HOST_NAMES:
                self.topo.write_host_config(h, self.root / "cache")
                self.topo.start_daemon(h)
            for h in HOST_NAMES:
                self._step(f"libvirtd_{h}", lambda h=h: self._wait_daemon(h, 60))
            self._step("storage", self._define_storage)
            self.domain_type = self._step("kvm_probe", probe.result)
        finally:
            probe.stop()
        self.timings["up_total"] = round(time.monotonic() - t_all, 2)
        return self

    def _define_storage(self) -> None:
        for name in self.guest_names:
            dev = self.topo.attach_loop(self.topo.dir / "san" / f"{name}.img", g.DISK_MIB)
            self.disk_of(name).symlink_to(dev)
        for h in HOST_NAMES:
            pool = self.conn(h).storagePoolDefineXML(g.pool_xml(self.topo.shared), 0)
            pool.setAutostart(1)
            pool.create(0)

    def down(self) -> list[str]:
        if self._down:
            return []
        self._down = True
        for h in list(self._conns):
            self._close(h)
        return self.topo.teardown()
