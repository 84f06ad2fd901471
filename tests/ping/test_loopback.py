"""Real probes on loopback: privileged ICMP (CI runs as root), TCP connect, the CLI."""

import asyncio
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time

import pytest

from poolctl.ping.pinger import Pinger

INTERVAL = 0.05


def run_for(pinger, seconds):
    pinger.start()
    time.sleep(seconds)
    return pinger.stop()


def wait_until(predicate, timeout=10.0):
    """Poll until ``predicate()`` holds: a condition, not a sleep, so load only slows it."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"condition not met within {timeout} s"
        time.sleep(0.01)


def assert_keeps_pace(stats, interval=INTERVAL):
    """One probe per interval slot: never more (no bursts after a late wake-up), and not
    far fewer unless the machine starved the pinger (then it skips slots, by design)."""
    slots = stats.elapsed_s / interval
    assert 0.5 * slots <= stats.sent <= slots + 2, (stats.sent, stats.elapsed_s)


def assert_steady(pinger, stats, interval=INTERVAL):
    samples = pinger.samples()
    assert stats.lost == 0 and stats.in_flight == 0 and stats.send_errors == 0
    assert stats.received == stats.sent == len(samples)
    assert [s.seq for s in samples] == list(range(len(samples)))
    assert all(0 < s.rtt_ms < 100 for s in samples), samples
    assert 0 < stats.min_rtt_ms <= stats.avg_rtt_ms <= stats.max_rtt_ms < 100
    spacing = [b.sent_at - a.sent_at for a, b in zip(samples, samples[1:])]
    # with no loss the longest gap is the longest spacing between probes ...
    assert stats.longest_gap_s == pytest.approx(max(spacing))
    # ... which is about one interval (slack only for a late wake-up on a loaded box;
    # jitter itself is a benchmark matter, not a test's)
    assert statistics.median(spacing) == pytest.approx(interval, rel=0.1)
    assert 0.5 * interval < stats.longest_gap_s < interval + 0.5
    # absolute deadlines: never early, and lateness does not accumulate along the run
    t0 = samples[0].sent_at
    lateness = [s.sent_at - t0 - i * interval for i, s in enumerate(samples)]
    assert min(lateness) > -0.002
    assert statistics.median(lateness) < interval / 2
    assert not stats.running


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.10.11"])
def test_icmp_loopback_one_second(address):
    pinger = Pinger(address, interval=INTERVAL)
    assert pinger.method == "icmp (privileged, root)"
    assert "root" in pinger.method_reason
    stats = run_for(pinger, 1.0)
    assert stats.elapsed_s > 0.9 and stats.sent >= 10
    assert_keeps_pace(stats)
    assert_steady(pinger, stats)
    assert stats.address == address and stats.method == pinger.method


def test_two_pingers_at_once_do_not_steal_each_others_replies():
    a = Pinger("127.0.0.1", interval=INTERVAL).start()
    b = Pinger("127.0.0.1", interval=INTERVAL).start()
    time.sleep(0.6)
    sa, sb = a.stop(), b.stop()
    assert_steady(a, sa)
    assert_steady(b, sb)


def test_count_bounded_run_with_callback_in_sequence_order():
    seen, threads = [], set()

    def on_sample(sample):
        threads.add(threading.current_thread().name)
        seen.append(sample)

    pinger = Pinger("127.0.0.1", interval=0.02, count=15, on_sample=on_sample).start()
    assert pinger.wait(10)
    stats = pinger.stats()
    assert (stats.sent, stats.received) == (15, 15)
    assert seen == pinger.samples()
    assert threads == {"pinger 127.0.0.1"}


def test_a_failing_callback_does_not_stop_the_measurement():
    def boom(sample):
        raise RuntimeError("consumer bug")

    pinger = Pinger("127.0.0.1", interval=0.02, count=5, on_sample=boom).start()
    assert pinger.wait(10)
    assert pinger.stats().received == 5
    assert pinger.error is None


def test_stats_readable_while_probing_and_history_bounded():
    pinger = Pinger("127.0.0.1", interval=0.01, history=10).start()
    try:
        deadline = time.monotonic() + 0.5
        seen_running = False
        while time.monotonic() < deadline or pinger.stats().sent <= 20:
            s = pinger.stats()
            seen_running |= s.running
            assert s.received + s.lost + s.in_flight == s.sent
            assert len(pinger.samples()) <= 10
            time.sleep(0.005)
        assert seen_running
    finally:
        stats = pinger.stop()
    assert stats.sent > 20 and len(pinger.samples()) == 10
    assert pinger.samples()[-1].seq == stats.sent - 1


def test_asyncio_api_runs_on_the_callers_loop_without_blocking_it():
    async def main():
        pinger = Pinger("127.0.0.1", interval=INTERVAL)
        task = asyncio.create_task(pinger.run())
        ticks = 0
        t_end = time.monotonic() + 0.5
        while time.monotonic() < t_end:  # the loop keeps serving other work
            await asyncio.sleep(0.01)
            ticks += 1
        pinger.stop()
        return pinger, await asyncio.wait_for(task, 5), ticks

    pinger, stats, ticks = asyncio.run(main())
    assert ticks >= 10  # 50 when idle; a blocked loop would manage one or two
    assert stats.sent >= 5
    assert_keeps_pace(stats)
    assert_steady(pinger, stats)


def test_stop_without_drain_and_single_use():
    pinger = Pinger("127.0.0.1", interval=INTERVAL).start()
    wait_until(lambda: pinger.stats().sent >= 3)
    stats = pinger.stop(drain=False)
    assert not stats.running and stats.sent >= 3
    with pytest.raises(RuntimeError, match="already run"):
        pinger.start()
    unused = Pinger("127.0.0.1")
    unused.close()
    with pytest.raises(RuntimeError, match="already run"):
        unused.start()


def test_context_manager_starts_and_stops():
    with Pinger("127.0.0.1", interval=INTERVAL) as pinger:
        wait_until(lambda: pinger.stats().received >= 5)
        assert pinger.running
    assert not pinger.running and pinger.stats().received >= 5


# -- TCP connect probe -----------------------------------------------------------


@pytest.fixture
def listener():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    accepted = []

    def serve():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            accepted.append(1)
            conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield srv.getsockname()[1], accepted
    srv.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() on Linux
    srv.close()
    t.join(5)


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: connects get RST
    return port


def test_tcp_probe_to_listening_port_counts_replies(listener):
    port, accepted = listener
    pinger = Pinger("127.0.0.1", interval=INTERVAL, port=port, method="tcp")
    assert pinger.method == f"tcp:{port}"
    assert "requested explicitly" in pinger.method_reason
    stats = run_for(pinger, 0.6)
    assert_steady(pinger, stats)
    # the server really saw the connects (the last may be reset before it is accepted)
    wait_until(lambda: len(accepted) >= stats.sent - 1)


def test_tcp_probe_refused_port_counts_as_reply():
    port = closed_port()
    pinger = Pinger("127.0.10.11", interval=INTERVAL, port=port, method="tcp")
    assert pinger.method == f"tcp:{port}"
    stats = run_for(pinger, 0.6)
    assert_steady(pinger, stats)
    assert stats.last_error is None


# -- the CLI ---------------------------------------------------------------------


def cli(*args, timeout=30):
    return subprocess.run(
        [sys.executable, "-m", "poolctl.ping", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_cli_prints_samples_and_summary():
    r = cli("127.0.0.1", "--interval", "0.05", "--count", "5")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("PING 127.0.0.1 (127.0.0.1) via icmp (privileged, root):")
    assert [ln.split()[0] for ln in lines[1:6]] == [f"seq={i}" for i in range(5)]
    assert all(" rtt=" in ln and ln.endswith(" ms") for ln in lines[1:6])
    assert "5 sent, 5 received, 0 lost (0.0% loss)" in r.stdout
    gap = re.search(r"^longest gap (\d+\.\d{3}) s \(interval 0.05 s\)$", r.stdout, re.M)
    assert gap and 0.025 < float(gap[1]) < 1.0, r.stdout  # no loss: about one interval


def test_cli_tcp_port_and_quiet():
    port = closed_port()
    r = cli("127.0.0.1", "-i", "0.02", "-c", "3", "--port", str(port), "--method", "tcp", "-q")
    assert r.returncode == 0, r.stderr
    assert f"via tcp:{port}" in r.stdout and "seq=" not in r.stdout
    assert "3 sent, 3 received" in r.stdout


def test_cli_bad_address_exit_2_names_it():
    r = cli("no-such-host.invalid", "-c", "1")
    assert r.returncode == 2
    assert "'no-such-host.invalid'" in r.stderr and "cannot resolve" in r.stderr
