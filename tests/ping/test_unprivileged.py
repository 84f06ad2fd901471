"""Real unprivileged pinging, inside a network namespace made here: as user nobody, and
as root without CAP_NET_RAW (a restricted container).

net.ipv4.ping_group_range is per network namespace, so the test sets it in its own
namespace and never touches the host's. The child imports everything as root, then
drops to uid/gid 65534 before it creates the Pinger (so it works wherever the venv
lives, even under a root-only home directory).
"""

import itertools
import json
import os
import socket
import subprocess
import sys

import pytest

NOBODY = 65534
_names = itertools.count()

CHILD = r"""
import json, os, socket, sys
import encodings.idna  # getaddrinfo imports it lazily; the interpreter's files may be root-only
from poolctl.ping.method import MethodUnavailable
from poolctl.ping.pinger import Pinger
as_nobody = sys.argv[1] == "nobody"
port = int(sys.argv[2]) if len(sys.argv) > 2 else None
if as_nobody:
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)
out = {"uid": os.geteuid(), "gid": os.getegid()}
try:
    socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).close()
    out["raw_socket"] = "allowed"
except PermissionError:
    out["raw_socket"] = "refused"
try:
    p = Pinger("127.0.0.1", interval=0.05, count=10, port=port)
except MethodUnavailable as exc:
    out["error"] = str(exc)
else:
    out["method"], out["reason"] = p.method, p.method_reason
    p.start()
    p.wait(10)
    s = p.stats()
    out.update(sent=s.sent, received=s.received, lost=s.lost)
print(json.dumps(out))
""".replace("NOBODY", str(NOBODY))


def sh(*cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if r.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed: {r.stderr.strip()}")
    return r.stdout


@pytest.fixture
def netns():
    ns = f"pgping-{os.getpid()}-{next(_names)}-unpriv"
    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)


def set_range(ns, low, high):
    sh("ip", "netns", "exec", ns, "sh", "-c", f"echo '{low} {high}' > /proc/sys/net/ipv4/ping_group_range")
    assert sh("ip", "netns", "exec", ns, "cat", "/proc/sys/net/ipv4/ping_group_range").split() == [str(low), str(high)]


def run_as_nobody(ns, *args):
    out = sh("ip", "netns", "exec", ns, sys.executable, "-c", CHILD, "nobody", *map(str, args))
    result = json.loads(out)
    assert (result["uid"], result["gid"], result["raw_socket"]) == (NOBODY, NOBODY, "refused")
    return result


def run_as_root_without_net_raw(ns, *args):
    # setpriv is in util-linux (essential on Debian): drop the capability before exec
    out = sh(
        "ip",
        "netns",
        "exec",
        ns,
        "setpriv",
        "--bounding-set=-net_raw",
        "--inh-caps=-net_raw",
        sys.executable,
        "-c",
        CHILD,
        "root",
        *map(str, args),
    )
    result = json.loads(out)
    assert (result["uid"], result["gid"], result["raw_socket"]) == (0, 0, "refused")
    return result


def test_unprivileged_icmp_when_group_is_in_range(netns):
    set_range(netns, NOBODY, NOBODY)
    r = run_as_nobody(netns)
    assert r["method"] == "icmp (unprivileged)"
    assert f"group {NOBODY} is inside net.ipv4.ping_group_range ({NOBODY} {NOBODY})" in r["reason"]
    assert (r["sent"], r["received"], r["lost"]) == (10, 10, 0)


@pytest.mark.parametrize("low, high, shown", [(1, 0, "1 0, i.e. no group"), (100, 200, "100 200")])
def test_out_of_range_without_port_is_a_clear_error(netns, low, high, shown):
    set_range(netns, low, high)
    r = run_as_nobody(netns)
    assert "method" not in r
    msg = r["error"]
    assert msg.startswith("cannot ping 127.0.0.1: ICMP is unavailable: not root")
    assert f"groups ({NOBODY})" in msg and f"ping_group_range ({shown})" in msg
    assert "TCP port" in msg and "--port" in msg


def test_out_of_range_with_port_falls_back_to_tcp(netns):
    set_range(netns, 1, 0)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]  # a port number; in the child's namespace nothing listens
    s.close()
    r = run_as_nobody(netns, port)
    assert r["method"] == f"tcp:{port}"
    assert "ICMP is unavailable" in r["reason"] and f"probing TCP port {port} instead" in r["reason"]
    # refused connections (RST) are replies: the host is up
    assert (r["sent"], r["received"], r["lost"]) == (10, 10, 0)


def test_root_without_net_raw_falls_back_to_unprivileged_icmp(netns):
    set_range(netns, 0, 0)
    r = run_as_root_without_net_raw(netns)
    assert r["method"] == "icmp (unprivileged)"
    assert r["reason"].startswith("Running as root without CAP_NET_RAW")
    assert (r["sent"], r["received"], r["lost"]) == (10, 10, 0)


def test_root_without_net_raw_then_tcp_or_a_clear_error(netns):
    set_range(netns, 1, 0)
    r = run_as_root_without_net_raw(netns, 9)
    assert r["method"] == "tcp:9" and "without CAP_NET_RAW" in r["reason"]
    assert (r["sent"], r["received"], r["lost"]) == (10, 10, 0)
    r = run_as_root_without_net_raw(netns)
    assert "running as root without CAP_NET_RAW" in r["error"] and "TCP port" in r["error"]
