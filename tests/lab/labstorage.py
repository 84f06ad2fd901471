"""Storage for the lab's storage tests: each host's own local pool (copy storage), and a real
iSCSI target (tgt, userspace) in a namespace of its own on the lab switch, reached by both
libvirt hosts through libvirt's ``iscsi-direct`` pool (libiscsi in libvirtd and in QEMU: no
kernel initiator, which a container has not).

Each test guest here has its own name, address and disk, so the single- and two-guest fixtures
never meet a guest with a local or iSCSI disk (they only look at pingvm and pingvm2).

What is started is recorded in the run's ``state.json`` like the rest of the lab (the target's
namespace in ``netns``, ``tgtd`` in ``daemons``): the lab's teardown stops it by PID."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import libvirt

from poolctl.ping.pinger import Pinger

from . import labguest as g
from .labenv import HOST_NAMES, NET, LabError, proc_start, run

LOCALVM = g.GuestSpec("localvm", "5e5e5e5e-0000-4000-8000-000000000052", "52:54:00:99:00:52", f"{NET}.52")
ISCSIVM = g.GuestSpec("iscsivm", "5e5e5e5e-0000-4000-8000-000000000053", "52:54:00:99:00:53", f"{NET}.53")
LOCAL_DISK_MIB = 64  # filled with random bytes: a sparse or zero disk would copy in no time
TARGET_IP = f"{NET}.10"
TARGET_IQN = "iqn.2026-12.lab.poolctl:shared"
ISCSI_POOL = "iscsi"
LUN_VOLUME = "unit:0:0:1"  # how libvirt's iscsi-direct pool names LUN 1
LUN_MIB = 32


def local_pool(host: str) -> str:
    return f"{host}-local"


def _define_pool(conn: libvirt.virConnect, xml: str, name: str) -> libvirt.virStoragePool:
    try:
        pool = conn.storagePoolLookupByName(name)
    except libvirt.libvirtError:
        pool = conn.storagePoolDefineXML(xml, 0)
    if not pool.isActive():
        pool.create(0)
    pool.refresh(0)
    return pool


def ensure_local_pools(lab) -> None:
    """A dir pool of its own on each host (``hostA-local`` ...): storage the other host does not see."""
    for h in HOST_NAMES:
        path = lab.topo.dir / h / "local"
        path.mkdir(parents=True, exist_ok=True)
        xml = f"<pool type='dir'><name>{local_pool(h)}</name><target><path>{path}</path></target></pool>"
        _define_pool(lab.conn(h), xml, local_pool(h))


def local_disk(lab, host: str, spec: g.GuestSpec = LOCALVM, mib: int = LOCAL_DISK_MIB) -> str:
    """A fresh raw volume ``<guest>.img`` in ``host``'s local pool, full of random bytes (any
    older one of that name on either host is deleted first); its path."""
    name = f"{spec.name}.img"
    for h in HOST_NAMES:
        pool = lab.conn(h).storagePoolLookupByName(local_pool(h))
        pool.refresh(0)
        with contextlib.suppress(libvirt.libvirtError):
            pool.storageVolLookupByName(name).delete(0)
    pool = lab.conn(host).storagePoolLookupByName(local_pool(host))
    vol = pool.createXML(
        f"<volume><name>{name}</name><capacity unit='MiB'>{mib}</capacity>"
        "<target><format type='raw'/></target></volume>",
        0,
    )
    path = vol.path()
    with open(path, "r+b") as f:
        for _ in range(mib):
            f.write(os.urandom(1 << 20))
    return path


def _disk_element(kind: str, source: str) -> str:
    return f"""<disk type='{kind}' device='disk'>
      <driver name='qemu' type='raw' cache='none'/>
      {source}
      <target dev='vda' bus='virtio'/>
    </disk>"""


def guest_xml(lab, spec: g.GuestSpec, disk: str) -> str:
    """The lab guest's definition with ``disk`` (a <disk> element) in place of the shared block disk."""
    base = g.domain_xml(lab.root / "guest", Path("/nonexistent"), lab.domain_type, spec)
    start = base.index("<disk type='block'")
    end = base.index("</disk>", start) + len("</disk>")
    return base[:start] + disk + base[end:]


def local_guest_xml(lab, path: str) -> str:
    return guest_xml(lab, LOCALVM, _disk_element("file", f"<source file='{path}'/>"))


def iscsi_guest_xml(lab) -> str:
    source = f"<source pool='{ISCSI_POOL}' volume='{LUN_VOLUME}'/>"
    return guest_xml(lab, ISCSIVM, _disk_element("volume", source))


def boot(lab, host: str, spec: g.GuestSpec, xml: str, timeout: float = 90) -> float:
    """``spec`` destroyed everywhere, then booted on ``host`` from ``xml``; seconds to its first ping."""
    lab.stop_guest(spec.name)
    t0 = time.monotonic()
    lab.conn(host).createXML(xml, 0)
    g.wait_ping(lab.client_netns, timeout, spec.ip, what=f"guest {spec.name}")
    return time.monotonic() - t0


@contextlib.contextmanager
def pinging(lab, address: str, interval: float = 0.1) -> Iterator[Pinger]:
    """poolctl's Pinger probing ``address`` from the client namespace (its socket opened there)."""
    pinger = lab.in_client(lambda: Pinger(address, interval=interval, timeout=1.0))
    pinger.start()
    try:
        yield pinger
    finally:
        pinger.stop()


def disk_source(lab, host: str, name: str) -> str:
    """Where the running domain's vda is, as ``host``'s libvirt says (file or dev)."""
    import xml.etree.ElementTree as ET

    root = ET.fromstring(lab.conn(host).lookupByName(name).XMLDesc(0))
    src = root.find("devices/disk/source")
    assert src is not None, "the domain has no disk source"
    return src.get("file") or src.get("dev") or src.get("volume") or ""


def volumes(lab, host: str) -> list[str]:
    pool = lab.conn(host).storagePoolLookupByName(local_pool(host))
    pool.refresh(0)
    return sorted(pool.listVolumes())


# -- the iSCSI target ---------------------------------------------------------------------------


def _tgtadm(pid: int, *args: str) -> str:
    # tgtadm talks to tgtd over /var/run/tgtd/socket.0, which only tgtd's mount namespace has
    return run(["nsenter", "--target", str(pid), "--mount", "tgtadm", "--lld", "iscsi", *args], what="tgtadm")


def ensure_iscsi(lab) -> dict[str, float]:
    """The target (once per lab run) and an ``iscsi-direct`` pool on each host; timings."""
    timings: dict[str, float] = {}
    topo = lab.topo
    if "tgtd" not in topo.state["daemons"]:
        t0 = time.monotonic()
        _start_target(lab)
        timings["iscsi_target_s"] = round(time.monotonic() - t0, 2)
    t0 = time.monotonic()
    for h in HOST_NAMES:
        xml = (
            f"<pool type='iscsi-direct'><name>{ISCSI_POOL}</name><source>"
            f"<host name='{TARGET_IP}' port='3260'/><device path='{TARGET_IQN}'/>"
            f"<initiator><iqn name='iqn.2026-12.lab.poolctl:{h.lower()}'/></initiator>"
            "</source></pool>"
        )
        pool = _define_pool(lab.conn(h), xml, ISCSI_POOL)
        if LUN_VOLUME not in pool.listVolumes():
            raise LabError(f"{h}'s iscsi-direct pool shows {pool.listVolumes()}, not {LUN_VOLUME}")
    timings["iscsi_pools_s"] = round(time.monotonic() - t0, 2)
    return timings


def _start_target(lab) -> None:
    topo = lab.topo
    ns = topo.netns.setdefault("san", f"pcl{topo.run_id}-san")
    if ns not in topo.state["netns"]:
        topo._ns_add("san")
        sw = topo.netns["sw"]
        run(["ip", "-n", sw, "link", "add", "sw-san", "type", "veth", "peer", "name", "uplink", "netns", ns])
        run(["ip", "-n", sw, "link", "set", "sw-san", "master", "swbr", "up"])
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
        run(["ip", "-n", ns, "addr", "add", f"{TARGET_IP}/24", "dev", "uplink"])
        run(["ip", "-n", ns, "link", "set", "uplink", "up"])
    tgt_dir = topo.dir / "tgt"
    tgt_dir.mkdir(parents=True, exist_ok=True)
    lun = topo.dir / "san" / "iscsi-lun.img"
    lun.parent.mkdir(parents=True, exist_ok=True)
    with open(lun, "wb") as f:
        f.truncate(LUN_MIB << 20)
    script = (
        f"set -e\nmkdir -p /var/run/tgtd\nmount --bind {tgt_dir} /var/run/tgtd\n"
        f"exec /usr/sbin/tgtd -f --iscsi portal={TARGET_IP}:3260\n"
    )
    log = open(topo.dir / "tgtd.log", "ab")
    proc = subprocess.Popen(
        ["ip", "netns", "exec", ns, "unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    topo._popen["tgtd"] = proc
    topo.state["daemons"]["tgtd"] = [proc.pid, proc_start(proc.pid)]
    topo._save()
    deadline = time.monotonic() + 15
    while not (tgt_dir / "socket.0").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise LabError(f"tgtd did not start: {(topo.dir / 'tgtd.log').read_text(errors='replace')[-800:]}")
        time.sleep(0.05)
    _tgtadm(proc.pid, "--op", "new", "--mode", "target", "--tid", "1", "-T", TARGET_IQN)
    _tgtadm(proc.pid, "--op", "new", "--mode", "logicalunit", "--tid", "1", "--lun", "1", "-b", str(lun))
    _tgtadm(proc.pid, "--op", "bind", "--mode", "target", "--tid", "1", "-I", "ALL")


def target_sessions(lab) -> list[str]:
    """The addresses logged in to the target now, as tgtd lists them (its I_T nexus table)."""
    pid = lab.topo.state["daemons"]["tgtd"][0]
    out = _tgtadm(pid, "--op", "show", "--mode", "target")
    return sorted(line.split(":", 1)[1].strip() for line in out.splitlines() if "IP Address:" in line)


def kill_incoming_qemu(lab, host: str, name: str) -> int:
    """SIGKILL the QEMU that ``host`` started for an incoming ``name`` (a destination crashing
    mid-move); its PID. Only a QEMU of this lab run, found through libvirt's pidfile."""
    import signal

    pidfile = lab.topo.dir / host / "run" / "qemu" / f"{name}.pid"
    pid = int(pidfile.read_text().strip())
    cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
    assert b"qemu-system" in cmd and f"guest={name}".encode() in cmd, cmd[:200]
    os.kill(pid, signal.SIGKILL)
    return pid
