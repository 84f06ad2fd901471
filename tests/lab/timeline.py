"""One move's time line: the guest's pause and resume (libvirt state, polled on both hosts),
the frames on the switch (capture.py) and the pinger's samples, on the monotonic clock."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import libvirt

from poolctl.ping.stats import Sample

from .capture import Frame

STATE_POLL_S = 0.005


class StateWatch:
    """Poll the guest's state on both hosts: when the source paused, when the destination ran."""

    def __init__(self, conns: dict[str, libvirt.virConnect], name: str):
        self._conns, self._name = conns, name
        self.changes: list[tuple[float, str, int, int]] = []  # (t, host, state, reason)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="lab-statewatch", daemon=True)

    def _loop(self) -> None:
        last: dict[str, tuple[int, int]] = {}
        while not self._stop.is_set():
            for host, conn in self._conns.items():
                try:
                    st = tuple(conn.lookupByName(self._name).state()[:2])
                except libvirt.libvirtError:
                    st = (-1, 0)  # no such domain (yet, or any more)
                if last.get(host) != st:
                    last[host] = st  # type: ignore[assignment]
                    self.changes.append((time.monotonic(), host, st[0], st[1]))
            time.sleep(STATE_POLL_S)

    def __enter__(self) -> StateWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)

    def paused_at(self, host: str) -> float | None:
        return next((t for t, h, s, r in self.changes if h == host and s == libvirt.VIR_DOMAIN_PAUSED and r != 0), None)

    def running_at(self, host: str, after: float) -> float | None:
        return next(
            (t for t, h, s, _ in self.changes if h == host and s == libvirt.VIR_DOMAIN_RUNNING and t > after), None
        )


@dataclass
class Timeline:
    src: str
    dst: str
    interval: float
    downtime_ms: float | None
    paused: float | None  # source paused (libvirt state, ±5 ms)
    resumed: float | None  # destination running
    last_src_reply: float | None  # last echo reply entering the switch from the source host
    first_announce: float | None  # first ARP/RARP from the guest's MAC entering from the destination
    announce_kind: str
    first_dst_reply: float | None
    lost: list[Sample] = field(default_factory=list)
    late: list[int] = field(default_factory=list)  # probes counted lost whose reply crossed the switch
    requests_to_src_after_resume: int = 0  # echo requests the switch still sent to the old host

    def rel(self, t: float | None) -> str:
        base = self.paused if self.paused is not None else self.last_src_reply
        return "–" if t is None or base is None else f"{(t - base) * 1000:+.0f}"

    def line(self) -> str:
        lost = ",".join(f"{(s.sent_at - (self.paused or s.sent_at)) * 1000:+.0f}" for s in self.lost)
        return (
            f"{self.src}->{self.dst}: ms from source pause: last src reply {self.rel(self.last_src_reply)}, "
            f"dst running {self.rel(self.resumed)}, first {self.announce_kind or 'announce'} "
            f"{self.rel(self.first_announce)}, first dst reply {self.rel(self.first_dst_reply)}; "
            f"libvirt downtime {self.downtime_ms} ms; lost {len(self.lost)} (sent at {lost or '-'}), "
            f"late-counted-lost {len(self.late)}, requests to old host after resume "
            f"{self.requests_to_src_after_resume}"
        )


def build(
    src: str,
    dst: str,
    interval: float,
    downtime_ms: float | None,
    watch: StateWatch,
    frames: list[Frame],
    samples: list[Sample],
    guest_mac: str,
    guest_ip: str,
) -> Timeline:
    sp, dp = f"sw-{src}", f"sw-{dst}"
    paused = watch.paused_at(src)
    resumed = watch.running_at(dst, paused or 0.0)
    inbound = [f for f in frames if not f.outgoing]
    replies = [f for f in inbound if f.kind == "echo-reply" and f.ip == guest_ip]
    src_replies = [f.t for f in replies if f.port == sp and (paused is None or f.t <= paused + 1.0)]
    announces = [
        f
        for f in inbound
        if f.port == dp and f.src_mac == guest_mac and f.kind in ("arp", "rarp") and f.t > (paused or 0)
    ]
    dst_replies = [f.t for f in replies if f.port == dp]
    lost = [s for s in samples if s.lost]
    seen = {f.seq for f in replies}
    late = [s.seq for s in lost if (s.seq & 0xFFFF) in seen]
    to_old = 0
    if resumed is not None:
        to_old = sum(1 for f in frames if f.outgoing and f.port == sp and f.kind == "echo-request" and f.t > resumed)
    return Timeline(
        src,
        dst,
        interval,
        downtime_ms,
        paused,
        resumed,
        max(src_replies, default=None),
        announces[0].t if announces else None,
        announces[0].kind if announces else "",
        min(dst_replies, default=None),
        lost,
        late,
        to_old,
    )
