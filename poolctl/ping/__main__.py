"""`python -m poolctl.ping ADDR [--interval 0.1] [--count N] [--port P]`: print samples and a summary.

Exit status: 0 when at least one reply came back, 1 when none did, 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys

from poolctl.ping.limits import DEFAULT_INTERVAL
from poolctl.ping.method import METHODS, PingError
from poolctl.ping.pinger import DEFAULT_TIMEOUT, Pinger
from poolctl.ping.stats import PingStats, Sample


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def format_sample(sample: Sample) -> str:
    if sample.rtt_ms is None:
        return f"seq={sample.seq} lost"
    return f"seq={sample.seq} rtt={sample.rtt_ms:.3f} ms"


def format_summary(stats: PingStats) -> str:
    lines = [
        f"--- {stats.address} ({stats.method}) ---",
        f"{stats.sent} sent, {stats.received} received, {stats.lost} lost "
        f"({stats.loss_pct:.1f}% loss), in {stats.elapsed_s:.2f} s",
        f"longest gap {stats.longest_gap_s:.3f} s (interval {stats.interval:g} s)",
        f"rtt min/avg/max = {_ms(stats.min_rtt_ms)}/{_ms(stats.avg_rtt_ms)}/{_ms(stats.max_rtt_ms)} ms",
    ]
    if stats.in_flight:
        lines.append(f"{stats.in_flight} probe(s) still unanswered at stop")
    if stats.last_error:
        lines.append(f"last error: {stats.last_error}")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m poolctl.ping", description=__doc__.splitlines()[0])
    p.add_argument("address", help="IP address or host name to probe")
    p.add_argument(
        "--interval",
        "-i",
        type=float,
        default=DEFAULT_INTERVAL,
        help=f"seconds between probes (default {DEFAULT_INTERVAL})",
    )
    p.add_argument("--count", "-c", type=int, help="stop after N probes (default: until Ctrl-C)")
    p.add_argument("--port", "-p", type=int, help="TCP port for the connect probe when ICMP is unavailable")
    p.add_argument(
        "--timeout",
        "-W",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds before a probe counts as lost (default {DEFAULT_TIMEOUT})",
    )
    p.add_argument("--method", "-m", choices=METHODS, default="auto")
    p.add_argument("--quiet", "-q", action="store_true", help="print only the summary")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        pinger = Pinger(
            args.address,
            interval=args.interval,
            timeout=args.timeout,
            port=args.port,
            method=args.method,
            count=args.count,
            on_sample=None if args.quiet else lambda s: print(format_sample(s), flush=True),
        )
    except (PingError, ValueError) as exc:
        print(f"poolctl.ping: {exc}", file=sys.stderr)
        return 2
    print(f"PING {args.address} ({pinger.ip}) via {pinger.method}: {pinger.method_reason}", flush=True)
    pinger.start()
    try:
        while not pinger.wait(0.2):
            pass
        stats = pinger.stats()
    except KeyboardInterrupt:
        stats = pinger.stop()
    print(format_summary(stats), flush=True)
    return 0 if stats.received else 1


if __name__ == "__main__":
    raise SystemExit(main())
