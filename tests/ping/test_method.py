"""Method selection, address validation and argument checking (no network needed)."""

import socket

import pytest

from poolctl.ping.method import AddressError, MethodUnavailable, choose_method, read_ping_group_range, resolve_address
from poolctl.ping.pinger import Pinger


def pick(is_root=False, gids=(1000,), ping_range=(1, 0), port=None, requested="auto", raw_refused=False):
    return choose_method(
        is_root=is_root,
        gids=gids,
        ping_range=ping_range,
        port=port,
        requested=requested,
        address="10.0.0.5",
        raw_refused=raw_refused,
    )


def test_root_gets_privileged_icmp_even_without_ping_group_range():
    c = pick(is_root=True, gids=(0,), ping_range=(1, 0), port=22)
    assert (c.kind, c.label) == ("icmp-privileged", "icmp (privileged, root)")
    assert "root" in c.reason


def test_group_in_range_gets_unprivileged_icmp():
    c = pick(gids=(1000, 27), ping_range=(20, 30))
    assert (c.kind, c.label) == ("icmp-unprivileged", "icmp (unprivileged)")
    assert "27" in c.reason and "ping_group_range (20 30)" in c.reason


def test_range_bounds_are_inclusive():
    assert pick(gids=(100,), ping_range=(100, 100)).kind == "icmp-unprivileged"
    assert pick(gids=(101,), ping_range=(100, 100), port=22).kind == "tcp"


def test_outside_range_with_port_falls_back_to_tcp():
    c = pick(gids=(1000,), ping_range=(1, 0), port=22)
    assert (c.kind, c.label, c.port) == ("tcp", "tcp:22", 22)
    assert "ping_group_range (1 0, i.e. no group)" in c.reason
    assert "refused connection counts as a reply" in c.reason


def test_outside_range_without_port_is_a_clear_error():
    with pytest.raises(MethodUnavailable) as err:
        pick(gids=(1000, 1001), ping_range=(2000, 3000))
    msg = str(err.value)
    assert "10.0.0.5" in msg
    assert "not root" in msg and "1000, 1001" in msg and "ping_group_range (2000 3000)" in msg
    assert "TCP port" in msg


def test_unreadable_range_is_reported_as_such():
    with pytest.raises(MethodUnavailable, match="ping_group_range \\(unreadable\\)"):
        pick(ping_range=None)


def test_root_whose_raw_socket_was_refused_chooses_again_as_unprivileged():
    c = pick(is_root=True, gids=(0,), ping_range=(0, 10), raw_refused=True)
    assert c.kind == "icmp-unprivileged" and "without CAP_NET_RAW" in c.reason
    assert pick(is_root=True, gids=(0,), raw_refused=True, port=22).kind == "tcp"
    with pytest.raises(MethodUnavailable, match="running as root without CAP_NET_RAW"):
        pick(is_root=True, gids=(0,), raw_refused=True)


def test_explicit_methods():
    assert pick(requested="tcp", port=2222, is_root=True).label == "tcp:2222"
    assert pick(requested="icmp-unprivileged", is_root=True).label == "icmp (unprivileged)"
    assert pick(requested="icmp-privileged").label == "icmp (privileged, CAP_NET_RAW)"
    with pytest.raises(MethodUnavailable, match="needs a TCP port"):
        pick(requested="tcp")
    with pytest.raises(ValueError, match="unknown ping method 'udp'"):
        pick(requested="udp")


@pytest.mark.parametrize("port", [0, 65536, -1, "22", True])
def test_bad_port_is_rejected(port):
    with pytest.raises(ValueError, match="TCP port"):
        pick(port=port)


def test_read_ping_group_range(tmp_path):
    f = tmp_path / "range"
    f.write_text("100\t2000\n")
    assert read_ping_group_range(f) == (100, 2000)
    f.write_text("garbage")
    assert read_ping_group_range(f) is None
    assert read_ping_group_range(tmp_path / "missing") is None
    # the real sysctl on this machine is readable and well formed
    low, high = read_ping_group_range()
    assert isinstance(low, int) and isinstance(high, int)


def test_resolve_address_literals_and_names():
    assert resolve_address("127.0.10.11") == ("127.0.10.11", socket.AF_INET)
    assert resolve_address(" ::1 ") == ("::1", socket.AF_INET6)
    assert resolve_address("[::1]") == ("::1", socket.AF_INET6)
    ip, family = resolve_address("localhost")
    assert family == socket.AF_INET and ip.startswith("127.")


@pytest.mark.parametrize(
    "bad, why",
    [
        ("", "empty"),
        ("no-such-host.invalid", "cannot resolve"),
        ("999.1.1.1", "cannot resolve"),
        ("0.0.0.0", "not a unicast host address"),
        ("224.0.0.1", "not a unicast host address"),
        ("255.255.255.255", "not a unicast host address"),
    ],
)
def test_bad_addresses_name_the_address(bad, why):
    with pytest.raises(AddressError) as err:
        resolve_address(bad)
    assert why in str(err.value)
    assert repr(bad) in str(err.value)


def test_pinger_rejects_bad_address_before_probing():
    with pytest.raises(AddressError, match="'no-such-host.invalid'"):
        Pinger("no-such-host.invalid")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"interval": 0}, "interval"),
        ({"interval": float("nan")}, "interval"),
        ({"timeout": -1}, "timeout"),
        ({"count": 0}, "count"),
        ({"history": 0}, "history"),
        ({"port": 70000}, "TCP port"),
        ({"method": "carrier-pigeon"}, "unknown ping method"),
    ],
)
def test_pinger_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Pinger("127.0.0.1", **kwargs)
