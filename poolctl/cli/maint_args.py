"""The `poolctl host` and `poolctl evacuate` argument parsers: apart from the run code so `--help`
stays cheap (argparse and the exit-code table only)."""

from __future__ import annotations

import argparse

from poolctl.cli.migrate_args import AddCommon, add_batch, add_ping_options
from poolctl.errors import ExitCode, help_text

AUDIT = """
The audit log ($POOLCTL_STATE_DIR/migrations.jsonl, by default ~/.local/state/poolctl/) gets one
entry per VM moved and one for the evacuation (or restore) as a whole.
"""

EVACUATE_EPILOG = (
    help_text(
        {
            ExitCode.OK: "every VM moved; the host is empty and disabled (maintenance mode); or --dry-run",
            ExitCode.FAILED: "a move failed: no more started, the running ones finished; the host stays disabled",
            ExitCode.USAGE: "usage error, or a bad or missing config file",
            ExitCode.AUTH: "authentication failed",
            ExitCode.NO_MATCH: "no such pool, host, SR or network (or the host name is in several pools: use "
            "--pool; a network name several networks share: give its ref)",
            ExitCode.REFUSED: "refused, nothing moved and the host left as it was: a VM cannot leave (each "
            "named, with why; with --network also a destination without an address on it), the backend cannot "
            "do what was asked (--sr, --network), or the host is being evacuated already",
            ExitCode.CANCELLED: "Ctrl-C: the moves that could be cancelled were, no more started",
            ExitCode.UNKNOWN: "the outcome of a move is unknown: contact with the pool was lost (see `poolctl ls`)",
            ExitCode.INTERRUPTED: "a second Ctrl-C: poolctl stopped watching (running moves go on)",
        }
    )
    + AUDIT
)

HOST_EPILOG = (
    help_text(
        {
            ExitCode.OK: "done (with --restore: every VM that could come back did)",
            ExitCode.FAILED: "the hypervisor refused, or a move back failed",
            ExitCode.USAGE: "usage error, or a bad or missing config file",
            ExitCode.AUTH: "authentication failed",
            ExitCode.NO_MATCH: "no such pool, host or network",
            ExitCode.REFUSED: "the backend cannot do it, an evacuation of the host is running, or "
            "(--restore) some VMs cannot come back (each named, with why; the others moved)",
            ExitCode.CANCELLED: "--restore and Ctrl-C: the moves that could be cancelled were",
            ExitCode.UNKNOWN: "--restore: the outcome of a move is unknown: contact with the pool was lost",
            ExitCode.INTERRUPTED: "a second Ctrl-C: poolctl stopped watching (running moves go on)",
        }
    )
    + AUDIT
)


def add_host_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], add_common: AddCommon
) -> argparse.ArgumentParser:
    p = commands.add_parser(
        "host",
        help="disable or enable a host (maintenance mode)",
        description="A disabled host takes no new VM: nothing starts on it or moves to it. Xen: host.disable "
        "and XenCenter's maintenance-mode keys; KVM: poolctl's own record of the host, in its state directory.",
        epilog=HOST_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, words in (
        ("disable", "no new VM starts on HOST or moves to it; the VMs on it stay"),
        ("enable", "HOST takes VMs again and leaves maintenance mode"),
    ):
        a = actions.add_parser(
            name, help=words, description=words + ".", epilog=HOST_EPILOG, formatter_class=p.formatter_class
        )
        a.add_argument("host", metavar="HOST", help="the host: name, uuid or ref")
        a.add_argument("--pool", metavar="NAME", help="the pool the host is in (default: search every pool)")
        if name == "enable":
            a.add_argument(
                "--restore",
                action="store_true",
                help="move back, live and pinged, the VMs the last evacuation took away that still run elsewhere",
            )
            a.add_argument(
                "--network",
                metavar="NET",
                help="with --restore: the network (name or ref) the moves back take; HOST needs an interface "
                "with an address on it (default: its management network; Xen)",
            )
            add_batch(a)
            add_ping_options(a)
            a.add_argument("--watch", action="store_true", help="one live progress line instead of a line per step")
        add_common(a, sub=True)
    add_common(p, sub=True)
    return p


def add_evacuate_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], add_common: AddCommon
) -> argparse.ArgumentParser:
    p = commands.add_parser(
        "evacuate",
        help="empty a host for maintenance: move every running VM away, each pinged, and keep the host disabled",
        description="Plan a destination for every running VM on HOST (the backend's pre-checks, free memory; "
        "on Xen also XAPI's own evacuation verdict) and print the plan. If any VM cannot leave, nothing moves. "
        "Otherwise disable HOST (maintenance mode), move the VMs (--batch at once), ping each during its move, "
        "and print one line per VM (destination, seconds, sent, lost, longest gap) and a total. HOST stays "
        "disabled: `poolctl host enable HOST --restore` brings the VMs back.",
        epilog=EVACUATE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("host", metavar="HOST", help="the host to empty: name, uuid or ref")
    p.add_argument(
        "--to",
        metavar="HOST",
        nargs="+",
        default=[],
        help="only these destinations (default: every other enabled host)",
    )
    p.add_argument(
        "--sr",
        metavar="SR",
        help="storage motion: the VMs with disks on HOST's local storage move too, those disks copied to SR "
        "(name or uuid); without it such VMs refuse the evacuation",
    )
    p.add_argument(
        "--network",
        metavar="NET",
        help="the migration network (name or ref, as `poolctl migrate --network`) every move's traffic takes; "
        "each destination needs an interface with an address on it, pre-checked before anything moves "
        "(default: each destination's management network; Xen)",
    )
    add_batch(p)
    p.add_argument("--dry-run", action="store_true", help="print the plan and what is copied, and exit; nothing moves")
    p.add_argument("--watch", action="store_true", help="one live progress line instead of a line per step")
    p.add_argument("--pool", metavar="NAME", help="the pool the host is in (default: search every pool)")
    add_ping_options(p)
    add_common(p, sub=True)
    return p
