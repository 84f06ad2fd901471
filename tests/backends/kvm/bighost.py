"""A libvirt test-driver host with N domains, written to a file: the scale tests' target.

Every domain has a disk on the host's one storage pool (with its volume, so sizes are looked up)
and a NIC on its one network; two in three run, the others are shut off.
"""

from __future__ import annotations

from pathlib import Path

_HEAD = """<?xml version='1.0'?>
<node xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
  <cpu><mhz>2900</mhz><model>x86_64</model><active>64</active><nodes>1</nodes>
    <sockets>2</sockets><cores>16</cores><threads>2</threads></cpu>
  <memory>1073741824</memory>
"""

_DOMAIN = """  <domain type='test'>
    <name>vm-{i:05d}</name>
    <uuid>{uuid}</uuid>
    <title>scale domain {i}</title>
    <memory unit='MiB'>1024</memory>
    <currentMemory unit='MiB'>1024</currentMemory>
    <vcpu>2</vcpu>
    <os><type arch='x86_64'>hvm</type></os>
    <devices>
      <disk type='file' device='disk'>
        <source file='/var/lib/libvirt/images/vm-{i:05d}.qcow2'/>
        <target dev='vda' bus='virtio'/>
      </disk>
      <interface type='network'>
        <mac address='52:54:{mac}'/>
        <source network='default'/>
      </interface>
    </devices>
{runstate}  </domain>
"""

_VOLUME = """    <volume type='file'>
      <name>vm-{i:05d}.qcow2</name>
      <capacity unit='GiB'>10</capacity>
      <allocation unit='GiB'>1</allocation>
      <target><path>/var/lib/libvirt/images/vm-{i:05d}.qcow2</path></target>
    </volume>
"""

_TAIL_HEAD = """  <network>
    <name>default</name>
    <uuid>00000000-0000-4000-8000-00000000ff01</uuid>
    <forward mode='nat'/>
    <bridge name='virbr0'/>
    <ip address='10.0.0.1' netmask='255.0.0.0'/>
  </network>
  <pool type='dir'>
    <name>default</name>
    <uuid>00000000-0000-4000-8000-00000000ff02</uuid>
    <capacity unit='TiB'>100</capacity>
    <allocation unit='GiB'>0</allocation>
    <available unit='TiB'>100</available>
    <target><path>/var/lib/libvirt/images</path></target>
"""


def write_host(path: Path, domains: int) -> str:
    """Write the host to ``path``; returns its ``test:///`` URI."""
    parts = [_HEAD]
    for i in range(domains):
        mac = ":".join(f"{b:02x}" for b in (i >> 24 & 255, i >> 16 & 255, i >> 8 & 255, i & 255))
        # shut off: the test driver's runstate 5; running is its default
        runstate = "    <test:runstate>5</test:runstate>\n" if i % 3 == 2 else ""
        parts.append(_DOMAIN.format(i=i, uuid=f"00000000-0000-4000-8000-{i:012d}", mac=mac, runstate=runstate))
    parts.append(_TAIL_HEAD)
    parts.extend(_VOLUME.format(i=i) for i in range(domains))
    parts.append("  </pool>\n</node>\n")
    path.write_text("".join(parts))
    return f"test://{path.resolve().as_posix()}"
