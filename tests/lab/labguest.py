"""The lab's guest: its domain XML, the KVM-or-TCG probe, and the client-side ping check."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .labenv import GUEST2_IP, GUEST_IP, LabError


@dataclass(frozen=True)
class GuestSpec:
    """One lab guest: same kernel and initramfs, its own identity, address and disk."""

    name: str
    uuid: str
    mac: str
    ip: str

    @property
    def disk_name(self) -> str:
        return f"{self.name}.disk"  # in the shared pool: a symlink to a loop device of its own


PINGVM = GuestSpec("pingvm", "5e5e5e5e-0000-4000-8000-000000000050", "52:54:00:99:00:50", GUEST_IP)
# the second guest exists so a host can be evacuated of more than one VM
PINGVM2 = GuestSpec("pingvm2", "5e5e5e5e-0000-4000-8000-000000000051", "52:54:00:99:00:51", GUEST2_IP)
GUESTS = {s.name: s for s in (PINGVM, PINGVM2)}

GUEST_NAME = PINGVM.name
GUEST_UUID = PINGVM.uuid
GUEST_MAC = PINGVM.mac
GUEST_MEMORY_MIB = 128
DISK_NAME = PINGVM.disk_name
DISK_MIB = 16
POOL_NAME = "shared"
# No timer shortcuts (tsc=reliable, no_timer_check): 0.5 s faster to boot, but the
# guest's clock must survive being paused and moved between two QEMUs.
CMDLINE = "console=ttyS0 quiet panic=-1"
KVM_PROBE_TIMEOUT_S = 5.0  # real KVM reaches init in ~1 s; TCG takes ~5 s here


AGENT_CHANNEL = "org.qemu.guest_agent.0"
# The guest agent's virtio-serial port, on a slot after the NIC's and the disk's (they keep
# the slots they have without it). Only when the test needs libvirt to know the guest's
# address: with this device a capped TCG migration (16 MiB/s, max downtime 30 ms) left the
# guest's virtio-net ring broken ("output.0:id 1 is not a head!") in 17 runs of 18 here,
# agent process or not; without it 0 of 4 (README). Uncapped migrations were fine with it.
_AGENT_XML = f"""
    <controller type='virtio-serial' index='0'>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x05' function='0x0'/>
    </controller>
    <channel type='unix'><target type='virtio' name='{AGENT_CHANNEL}'/></channel>"""


NIC_MODEL = os.environ.get("POOLCTL_LAB_NIC", "virtio")
BUSY_MIB = 24  # the busy guest's working set, rewritten every second (build_guest.sh, guestdirty=)


BUSY_SETTLE_S = 1.0  # after the workload says it runs: its first rewrite is under way


def wait_busy(serial_logs: list[Path], offsets: dict[Path, int], timeout: float) -> float:
    """Wait until a busy guest's /init says its workload runs (the serial log's
    POOLCTL-GUEST-BUSY line, written after the address: ping answers seconds before, while
    the file is still being filled, and a dirty rate measured then was 2-4 MiB/s)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        for log in serial_logs:
            try:
                with log.open("rb") as f:
                    f.seek(offsets.get(log, 0))
                    if b"POOLCTL-GUEST-BUSY" in f.read():
                        time.sleep(BUSY_SETTLE_S)
                        return time.monotonic() - t0
            except OSError:
                pass
        time.sleep(0.1)
    raise LabError(f"the busy guest did not start its workload within {timeout:.0f} s (serial: {serial_logs})")


def workload_arg(dirty_mib: int) -> str:
    return f" guestdirty={dirty_mib}" if dirty_mib else ""


def domain_xml(
    guest_dir: Path,
    disk_path: Path,
    domain_type: str,
    spec: GuestSpec = PINGVM,
    agent: bool = False,
    dirty_mib: int = 0,
) -> str:
    # domain_type 'qemu' (TCG) unless the probe showed KVM really runs a guest:
    # /dev/kvm may be a nested PVM hypervisor on which a stock kernel hangs.
    agent_xml = _AGENT_XML if agent else ""
    return f"""<domain type='{domain_type}'>
  <name>{spec.name}</name>
  <uuid>{spec.uuid}</uuid>
  <memory unit='MiB'>{GUEST_MEMORY_MIB}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{guest_dir}/vmlinuz</kernel>
    <initrd>{guest_dir}/initramfs.gz</initrd>
    <cmdline>{CMDLINE} guestip={spec.ip}/24{workload_arg(dirty_mib)}</cmdline>
  </os>
  <features><acpi/></features>
  <cpu mode='custom' match='exact' check='none'><model fallback='forbid'>qemu64</model></cpu>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='block' device='disk'>
      <!-- a shared block device with cache=none: libvirt deems it safe to migrate as is -->
      <driver name='qemu' type='raw' cache='none'/>
      <source dev='{disk_path}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='bridge'>
      <source bridge='br0'/>
      <mac address='{spec.mac}'/>
      <model type='{NIC_MODEL}'/>
    </interface>
    <serial type='pty'>
      <log file='/var/log/libvirt/qemu/{spec.name}-serial.log' append='on'/>
      <target port='0'/>
    </serial>
    <console type='pty'><target type='serial' port='0'/></console>{agent_xml}
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>
"""


def pool_xml(path: Path) -> str:
    return f"<pool type='dir'><name>{POOL_NAME}</name><target><path>{path}</path></target></pool>"


class KvmProbe:
    """Boots the guest kernel once with accel=kvm (no NIC) in the background.

    The answer is cached per machine boot in ``cache_file``: a CI machine pays the
    probe (at most ``KVM_PROBE_TIMEOUT_S``) once.
    """

    def __init__(self, guest_dir: Path, cache_file: Path):
        self.guest_dir = guest_dir
        self.cache_file = cache_file
        self.key = self._key()
        self.proc: subprocess.Popen | None = None
        self.log = cache_file.with_suffix(".log")
        self.t0 = time.monotonic()
        self.answer: str | None = None
        if not Path("/dev/kvm").exists():
            self.answer = "qemu"
        elif cache_file.exists() and cache_file.read_text().split()[:1] == [self.key]:
            self.answer = cache_file.read_text().split()[1]
        else:
            self.proc = subprocess.Popen(
                [
                    "qemu-system-x86_64",
                    "-accel",
                    "kvm",
                    "-cpu",
                    "qemu64",
                    "-m",
                    "128",
                    "-smp",
                    "1",
                    "-nographic",
                    "-no-reboot",
                    "-kernel",
                    str(guest_dir / "vmlinuz"),
                    "-initrd",
                    str(guest_dir / "initramfs.gz"),
                    "-append",
                    CMDLINE,
                    "-nic",
                    "none",
                    "-serial",
                    f"file:{self.log}",
                    "-monitor",
                    "none",
                    "-display",
                    "none",
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

    def _key(self) -> str:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        stamp = (self.guest_dir / "stamp").read_text().strip()
        return f"{boot}:{stamp}"

    def result(self) -> str:
        """'kvm' when the KVM boot reached the guest's first line in time, else 'qemu'."""
        if self.answer is not None:
            return self.answer
        assert self.proc is not None
        booted = False
        while time.monotonic() - self.t0 < KVM_PROBE_TIMEOUT_S and self.proc.poll() is None:
            if self.log.exists() and b"POOLCTL-GUEST-BOOTED" in self.log.read_bytes():
                booted = True
                break
            time.sleep(0.1)
        self.stop()
        self.answer = "kvm" if booted else "qemu"
        self.cache_file.write_text(f"{self.key} {self.answer}\n")
        return self.answer

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # our own child, by PID
            self.proc.wait(timeout=5)


def client_argv(netns: str, argv: list[str]) -> list[str]:
    return ["ip", "netns", "exec", netns, *argv]


def ping_once(netns: str, address: str = GUEST_IP, wait_s: float = 0.3) -> bool:
    argv = client_argv(netns, ["ping", "-n", "-q", "-c", "1", "-W", str(wait_s), address])
    return (
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=wait_s + 10).returncode == 0
    )


def wait_ping(netns: str, timeout: float, address: str = GUEST_IP, what: str = "guest") -> float:
    """Seconds until ``address`` answers from ``netns``; LabError after ``timeout``."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if ping_once(netns, address):
            return time.monotonic() - t0
        time.sleep(0.05)
    raise LabError(f"{what} {address} did not answer ping from {netns} within {timeout:.0f} s")
