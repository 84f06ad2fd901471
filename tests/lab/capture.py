"""What crosses the lab's switch during a move: a raw AF_PACKET socket in the switch namespace.

No tcpdump on the CI image: one packet socket bound to every port of ``swbr`` sees each frame
as it enters the switch (from which host or the client) and as it leaves. Frames are stamped
with ``time.monotonic()`` on receipt, the pinger's clock, so a probe's send time, the last
echo reply from the source host, the destination's first announce and its first reply all
share one time line (receipt lags the wire by the capture thread's scheduling, ~1 ms idle).
"""

from __future__ import annotations

import select
import socket
import struct
import threading
import time
from dataclasses import dataclass

from tests.support.netns import call_in_netns

ETH_P_ALL = 0x0003
ETH_ARP, ETH_RARP, ETH_IP = 0x0806, 0x8035, 0x0800
PACKET_OUTGOING = 4


@dataclass(frozen=True)
class Frame:
    t: float  # time.monotonic() at receipt
    port: str  # the switch port: sw-hostA, sw-hostB, sw-client
    outgoing: bool  # leaving the switch through ``port`` (else entering from it)
    src_mac: str
    kind: str  # "echo-request", "echo-reply", "arp", "rarp", "other"
    seq: int | None = None  # ICMP sequence (echo)
    ip: str = ""  # ARP: the sender address; echo: the source address


def _mac(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


def parse(t: float, port: str, pkttype: int, data: bytes) -> Frame | None:
    if len(data) < 14:
        return None
    ethertype = struct.unpack("!H", data[12:14])[0]
    src, out = _mac(data[6:12]), pkttype == PACKET_OUTGOING
    if ethertype in (ETH_ARP, ETH_RARP) and len(data) >= 42:
        kind = "arp" if ethertype == ETH_ARP else "rarp"
        return Frame(t, port, out, src, kind, ip=socket.inet_ntoa(data[28:32]))
    if ethertype == ETH_IP and len(data) >= 42 and data[23] == 1:  # ICMP
        ihl = (data[14] & 0x0F) * 4
        icmp = data[14 + ihl :]
        if len(icmp) >= 8 and icmp[0] in (0, 8):
            kind = "echo-reply" if icmp[0] == 0 else "echo-request"
            seq = struct.unpack("!H", icmp[6:8])[0]
            return Frame(t, port, out, src, kind, seq=seq, ip=socket.inet_ntoa(data[26:30]))
    return None


class Capture:
    """Record the switch's ARP, RARP and ICMP echo frames from ``start()`` to ``stop()``."""

    def __init__(self, sw_netns: str):
        self._sock: socket.socket = call_in_netns(
            sw_netns, lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        )
        self._sock.setblocking(False)
        self.frames: list[Frame] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="lab-capture", daemon=True)

    def start(self) -> Capture:
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._sock], [], [], 0.1)
            if not ready:
                continue
            while True:
                try:
                    data, addr = self._sock.recvfrom(2048)
                except BlockingIOError:
                    break
                t = time.monotonic()
                port, pkttype = addr[0], addr[2]
                if not port.startswith("sw-"):
                    continue  # the bridge device itself: each frame also shows on its ports
                frame = parse(t, port, pkttype, data)
                if frame is not None:
                    self.frames.append(frame)

    def stop(self) -> list[Frame]:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()
        return self.frames

    def __enter__(self) -> Capture:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
