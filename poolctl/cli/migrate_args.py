"""The `poolctl migrate` argument parser: kept apart from the run code so `--help` stays cheap."""

from __future__ import annotations

import argparse
from typing import Any, Protocol

from poolctl.errors import ExitCode, help_text
from poolctl.ping.limits import INTERVAL_MAX_S, INTERVAL_MIN_S

EPILOG = (
    help_text(
        {
            ExitCode.OK: "the VM now runs on HOST",
            ExitCode.FAILED: "the migration failed (the message quotes the hypervisor), or a pool failed",
            ExitCode.USAGE: "usage error, or a bad or missing config file",
            ExitCode.AUTH: "authentication failed",
            ExitCode.NO_MATCH: "no such pool, VM or host (or the VM name is in several pools: use --pool)",
            ExitCode.REFUSED: "refused before starting: the pre-checks found problems, or the VM cannot move now",
            ExitCode.CANCELLED: "cancelled (Ctrl-C while the migration could still be cancelled)",
            ExitCode.UNKNOWN: "outcome unknown: contact with the pool was lost for longer than "
            "[migration] outcome_wait (default 600 s); see `poolctl ls`",
            ExitCode.INTERRUPTED: "Ctrl-C after the point of no return, or a second Ctrl-C (the migration went on)",
        }
    )
    + """
Every migration is appended to the audit log: $POOLCTL_STATE_DIR/migrations.jsonl, by
default ~/.local/state/poolctl/migrations.jsonl (the TUI's history screen, H, reads it).
"""
)


class AddCommon(Protocol):
    """The options every command shares (main's ``_add_common``), handed in: main imports this module."""

    def __call__(self, parser: argparse.ArgumentParser, *, sub: bool) -> None: ...


def interval_arg(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, e.g. 0.1; got {text!r}") from None
    if not INTERVAL_MIN_S <= value <= INTERVAL_MAX_S:
        raise argparse.ArgumentTypeError(f"expected {INTERVAL_MIN_S:g} to {INTERVAL_MAX_S:g} seconds, got {value}")
    return value


def port_arg(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a TCP port number, got {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a TCP port 1-65535, got {value}")
    return value


def batch_arg(text: str) -> int | str:
    if text == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of moves at once, or auto; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1 move at once, got {value}")
    return value


def add_batch(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--batch",
        metavar="N|auto",
        type=batch_arg,
        default="auto",
        help="moves at once: N, or auto (default): start with 1, one more while the finished moves "
        "lost no ping and the throughput grew, one fewer on a gap or a failure",
    )


def add_ping_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--interval",
        metavar="S",
        type=interval_arg,
        help="seconds between pings (default: the config's [migration] ping_interval, else 0.1)",
    )
    p.add_argument(
        "--port",
        metavar="P",
        type=port_arg,
        help="TCP port to probe with connects when ICMP is not permitted, e.g. 22 "
        "(default: the config's [migration] ping_port, else none)",
    )


def _positive(what: str, most: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, a whole number; got {text!r}") from None
        if not 1 <= value <= most:
            raise argparse.ArgumentTypeError(f"expected {what} from 1 to {most}, got {value}")
        return value

    return parse


def add_tuning_options(p: argparse.ArgumentParser) -> None:
    """The knobs of the migrate dialog, by the names of the config's [migration] table."""
    g = p.add_argument_group(
        "tuning",
        "By default (--tune auto) poolctl measures the guest's dirty rate, reads past moves between "
        "the two hosts from the audit log, and chooses each setting below, printing why. A setting "
        "given here (or in the config's [migration] table) always wins.",
    )
    g.add_argument(
        "--tune",
        choices=("auto", "off"),
        help="auto: choose what is not set by hand (default); off: the hypervisor's own defaults",
    )
    g.add_argument("--max-downtime", metavar="MS", type=_positive("milliseconds", 60000), help="longest pause allowed")
    g.add_argument("--bandwidth", metavar="MIB", type=_positive("MiB/s", 1 << 20), help="cap on the copy, MiB/s")
    g.add_argument(
        "--auto-converge",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="let the hypervisor throttle a guest that writes faster than the copy",
    )
    g.add_argument(
        "--post-copy",
        choices=("auto", "always", "never"),
        help="auto: switch only if pre-copy stalls (default); always: after the first pass; never",
    )
    g.add_argument("--parallel", metavar="N", type=_positive("connections", 16), help="connections for the copy")
    g.add_argument("--compress", action=argparse.BooleanOptionalAction, default=None, help="compress the memory stream")
    g.add_argument(
        "--dry-run",
        action="store_true",
        help="pre-check, say what disks would be copied, choose the settings and print the prediction; move nothing",
    )


def tune_request(args: argparse.Namespace, defaults: Any) -> Any:
    """The ``TuneRequest`` from the options, falling back on [migration] (``MigrationSettings``)."""
    from poolctl.migration.tuner import TuneRequest

    def pick(arg: str, key: str | None = None) -> Any:
        value = getattr(args, arg, None)
        return value if value is not None else getattr(defaults, key or arg)

    return TuneRequest(
        tune=pick("tune"),
        max_downtime_ms=pick("max_downtime"),
        bandwidth_mib_s=pick("bandwidth"),
        auto_converge=pick("auto_converge"),
        post_copy=pick("post_copy"),
        parallel=pick("parallel"),
        compress=pick("compress"),
    )


def add_migrate_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], add_common: AddCommon
) -> argparse.ArgumentParser:
    p = commands.add_parser(
        "migrate",
        help="live-migrate a VM (or several) to another host, pinging each on the way",
        description="Pre-check the destination, start a live migration, follow its progress while "
        "pinging the VM (every 100 ms by default), and print the outcome with the ping figures "
        "(sent, lost, longest gap without a reply). Ctrl-C cancels while the hypervisor still allows it. "
        "With several VMs (the last argument is the destination, as with mv) every VM is pre-checked "
        "first, any refusal moves none, and --batch sets how many move at once; one summary line per VM.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("vm", metavar="VM", nargs="+", help="the VM: name, uuid or ref (several: like mv, all to HOST)")
    p.add_argument(
        "host",
        metavar="HOST",
        help="the destination host: name, uuid or ref; POOL/HOST for a host of another configured pool "
        "(cross-pool: every disk is copied, to --sr or that pool's default SR)",
    )
    p.add_argument(
        "--to-pool",
        metavar="POOL",
        help="the pool HOST is in, when it is not the VM's (a cross-pool move, as POOL/HOST); one VM only",
    )
    p.add_argument(
        "--network",
        metavar="NET",
        help="the network (name or ref, of the destination's pool) the move's traffic takes; the "
        "destination host needs an interface with an address on it (default: its management network)",
    )
    p.add_argument("--pool", metavar="NAME", help="the pool the VM is in (default: search every pool)")
    p.add_argument(
        "--ping", metavar="ADDR", help="address to ping (default: the VM's first IP; '' for none); one VM only"
    )
    p.add_argument(
        "--sr",
        metavar="SR",
        help="storage motion: copy every disk to SR (name or uuid) while the VM moves; one VM only",
    )
    p.add_argument(
        "--disk",
        metavar="DEVICE=SR",
        action="append",
        default=[],
        help="storage motion: copy the disk on DEVICE (e.g. xvda) to SR; repeat for more disks, "
        "others stay (or go to --sr)",
    )
    add_batch(p)
    add_ping_options(p)
    add_tuning_options(p)
    p.add_argument(
        "--watch",
        action="store_true",
        help="one live line (phase, percent, ETA, ping figures) instead of a line per step",
    )
    add_common(p, sub=True)
    return p
