"""Which probe to use (privileged ICMP, unprivileged ICMP or TCP connect) and why.

The choice is a pure function of (is_root, groups, ping_group_range, port) so the
panel can show the reason and tests can cover every branch; `detect_method` feeds
it the facts of the current process.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

PING_GROUP_RANGE = Path("/proc/sys/net/ipv4/ping_group_range")

MethodName = Literal["auto", "icmp-privileged", "icmp-unprivileged", "tcp"]
METHODS: tuple[str, ...] = ("auto", "icmp-privileged", "icmp-unprivileged", "tcp")


class PingError(Exception):
    """Base class of every error the pinger raises on purpose."""


class AddressError(PingError, ValueError):
    """The target address is invalid or cannot be resolved."""


class MethodUnavailable(PingError):
    """No usable probe method (e.g. ICMP not permitted and no TCP port given)."""


@dataclass(frozen=True, slots=True)
class MethodChoice:
    kind: Literal["icmp-privileged", "icmp-unprivileged", "tcp"]
    label: str  # short, for the panel: "icmp (unprivileged)", "tcp:22"
    reason: str  # one sentence: why this method
    port: int | None = None


def read_ping_group_range(path: Path = PING_GROUP_RANGE) -> tuple[int, int] | None:
    """(low, high) from the sysctl, or None when it cannot be read."""
    try:
        low, high = path.read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return None


def current_groups() -> set[int]:
    # The kernel admits a datagram ICMP socket if the effective gid or any
    # supplementary group is inside ping_group_range.
    return {os.getegid(), *os.getgroups()}


def _fmt_range(ping_range: tuple[int, int] | None) -> str:
    if ping_range is None:
        return "unreadable"
    low, high = ping_range
    text = f"{low} {high}"
    return f"{text}, i.e. no group" if low > high else text


def _groups_in_range(gids: Iterable[int], ping_range: tuple[int, int] | None) -> list[int]:
    if ping_range is None:
        return []
    low, high = ping_range
    return sorted(g for g in gids if low <= g <= high)


def check_port(port: int | None) -> int | None:
    if port is None:
        return None
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError(f"TCP port must be an integer 1-65535, got {port!r}")
    return port


def tcp_choice(port: int, why: str, *, instead: bool = True) -> MethodChoice:
    return MethodChoice(
        "tcp",
        f"tcp:{port}",
        f"{why}; probing TCP port {port}{' instead' if instead else ''} (an accepted or "
        "refused connection counts as a reply, a timeout as lost).",
        port,
    )


def choose_method(
    *,
    is_root: bool,
    gids: Iterable[int],
    ping_range: tuple[int, int] | None,
    port: int | None,
    requested: str = "auto",
    address: str = "the target",
    raw_refused: bool = False,
) -> MethodChoice:
    """Pick the probe method; raise MethodUnavailable with the reason if none fits.

    auto: root -> privileged ICMP; a group inside ping_group_range -> unprivileged
    ICMP; else TCP if a port was given; else an error explaining why.
    raw_refused: root, but the kernel refused a raw socket (no CAP_NET_RAW).
    """
    port = check_port(port)
    gids = sorted(set(gids))
    allowed = _groups_in_range(gids, ping_range)
    range_text = _fmt_range(ping_range)
    if requested not in METHODS:
        raise ValueError(f"unknown ping method {requested!r}; choose one of {', '.join(METHODS)}")
    if requested == "icmp-privileged":
        who = "root" if is_root else "CAP_NET_RAW"
        return MethodChoice(
            "icmp-privileged", f"icmp (privileged, {who})", "Privileged (raw socket) ICMP was requested explicitly."
        )
    if requested == "icmp-unprivileged":
        return MethodChoice(
            "icmp-unprivileged",
            "icmp (unprivileged)",
            f"Unprivileged (datagram socket) ICMP was requested explicitly; net.ipv4.ping_group_range is {range_text}.",
        )
    if requested == "tcp":
        if port is None:
            raise MethodUnavailable(f"cannot ping {address}: method 'tcp' needs a TCP port")
        return tcp_choice(port, "TCP was requested explicitly", instead=False)
    if is_root and not raw_refused:
        return MethodChoice(
            "icmp-privileged", "icmp (privileged, root)", "Running as root, so raw ICMP sockets are available."
        )
    who = "Running as root without CAP_NET_RAW (the kernel refused a raw ICMP socket)" if raw_refused else "Not root"
    if allowed:
        return MethodChoice(
            "icmp-unprivileged",
            "icmp (unprivileged)",
            f"{who}, but group {allowed[0]} is inside net.ipv4.ping_group_range "
            f"({range_text}), so the kernel allows ICMP datagram sockets.",
        )
    why = (
        f"ICMP is unavailable: {who[0].lower()}{who[1:]}, and none of this process's groups "
        f"({', '.join(map(str, gids))}) is inside net.ipv4.ping_group_range ({range_text})"
    )
    if port is not None:
        return tcp_choice(port, why)
    raise MethodUnavailable(
        f"cannot ping {address}: {why}. Give a TCP port to probe with TCP connects instead "
        "(e.g. --port 22), or widen the range with "
        "`sysctl net.ipv4.ping_group_range='0 2147483647'`."
    )


def detect_method(
    port: int | None, requested: str = "auto", address: str = "the target", raw_refused: bool = False
) -> MethodChoice:
    """choose_method() with the facts of the current process."""
    return choose_method(
        raw_refused=raw_refused,
        is_root=os.geteuid() == 0,
        gids=current_groups(),
        ping_range=read_ping_group_range(),
        port=port,
        requested=requested,
        address=address,
    )


def resolve_address(address: str) -> tuple[str, int]:
    """(ip, family) for an IP literal or host name; AddressError names the address."""
    if not isinstance(address, str) or not address.strip():
        raise AddressError(f"invalid ping address {address!r}: empty")
    text = address.strip()
    try:
        ip = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        ip = None
    if ip is None:
        try:
            infos = socket.getaddrinfo(text, None, type=socket.SOCK_DGRAM)
        except (socket.gaierror, UnicodeError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise AddressError(f"cannot resolve ping address {address!r}: {reason}") from None
        # Prefer IPv4 like ping(8) does when a name has both.
        infos.sort(key=lambda info: info[0] != socket.AF_INET)
        ip = ipaddress.ip_address(str(infos[0][4][0]).split("%")[0])
    if ip.is_unspecified or ip.is_multicast or (ip.version == 4 and ip == ipaddress.IPv4Address("255.255.255.255")):
        raise AddressError(f"invalid ping address {address!r}: {ip} is not a unicast host address")
    return str(ip), socket.AF_INET if ip.version == 4 else socket.AF_INET6
