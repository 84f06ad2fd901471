"""A libvirt test-driver host of N domains, written to an XML file: what the KVM scale
benchmark serves over its link and the KVM backend's scale tests open (``test:///path.xml``).

Every domain has a disk on the host's one storage pool (with its volume, so sizes are looked
up) and a NIC on its one network; two in three run, the others are shut off.
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
    <name>{name}</name>
    <uuid>00000000-0000-4000-8000-{i:012d}</uuid>
    <title>bench domain {i}</title>
    <memory unit='MiB'>1024</memory>
    <currentMemory unit='MiB'>1024</currentMemory>
    <vcpu>2</vcpu>
    <os><type arch='x86_64'>hvm</type></os>
    <devices>
      <disk type='file' device='disk'>
        <source file='/var/lib/libvirt/images/{name}.qcow2'/>
        <target dev='vda' bus='virtio'/>
      </disk>
      <interface type='network'>
        <mac address='52:54:{mac}'/>
        <source network='default'/>
      </interface>
    </devices>
{runstate}  </domain>
"""
_POOL = """  <network>
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
_VOLUME = """    <volume type='file'>
      <name>{name}.qcow2</name>
      <capacity unit='GiB'>10</capacity>
      <allocation unit='GiB'>1</allocation>
      <target><path>/var/lib/libvirt/images/{name}.qcow2</path></target>
    </volume>
"""


def domain_name(i: int) -> str:
    return f"vm-{i:05d}"


def write_host(path: Path, domains: int) -> Path:
    """A test-driver host with ``domains`` domains (two in three running), each with a disk on
    the host's one pool (its volume too, so sizes are looked up) and a NIC on its one network."""
    parts = [_HEAD]
    for i in range(domains):
        mac = ":".join(f"{b:02x}" for b in (i >> 24 & 255, i >> 16 & 255, i >> 8 & 255, i & 255))
        runstate = "    <test:runstate>5</test:runstate>\n" if i % 3 == 2 else ""  # 5: shut off
        parts.append(_DOMAIN.format(name=domain_name(i), i=i, mac=mac, runstate=runstate))
    parts.append(_POOL)
    parts.extend(_VOLUME.format(name=domain_name(i)) for i in range(domains))
    parts.append("  </pool>\n</node>\n")
    path.write_text("".join(parts))
    return path.resolve()


def host_uri(path: Path, domains: int) -> str:
    """``write_host``, and the ``test:///`` URI that opens it in the client."""
    return f"test://{write_host(path, domains).as_posix()}"
