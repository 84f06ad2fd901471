"""The `poolctl` command: the TUI by default, plus subcommands for scripts.

Imports stay lazy: `poolctl --version` and `--help` must not pay for pydantic, Textual
or a backend, so everything heavy is imported inside the function that needs it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from poolctl import __version__, gcpause
from poolctl.cli import early
from poolctl.errors import ExitCode, Failure, help_text

if TYPE_CHECKING:
    from poolctl.config import Config, PoolConfig

CONFIG_HELP = """\
config file:
  ~/.config/poolctl/config.toml (XDG), or --config FILE, or $POOLCTL_CONFIG.
  One [[pool]] table per pool: name, backend ("xen" or "kvm"), url (xen) or
  uris (kvm), username, password_command or password. Optional [migration]:
  ping_interval (seconds) and ping_port (TCP fallback), the migrate defaults.
  No config yet? Try `poolctl --demo`: a simulated Xen pool (and a libvirt test
  host), no root needed.
"""

EPILOG = (
    CONFIG_HELP
    + "\n"
    + help_text(
        {
            ExitCode.OK: "ok",
            ExitCode.FAILED: "some pool failed (the others are still printed; the error names the pool)",
            ExitCode.USAGE: "usage error, or a bad or missing config file",
            ExitCode.AUTH: "authentication failed",
            ExitCode.NO_MATCH: "nothing matched (e.g. an unknown --pool name)",
        }
    )
)

KINDS = ("vms", "hosts", "srs", "networks")


def _add_common(parser: argparse.ArgumentParser, *, sub: bool) -> None:
    # In a subcommand the defaults are suppressed so `poolctl --config X ls` keeps X.
    default = argparse.SUPPRESS if sub else None
    parser.add_argument(
        "--config",
        metavar="FILE",
        type=Path,
        default=default,
        help="config file (default: $POOLCTL_CONFIG or ~/.config/poolctl/config.toml)",
    )
    demo = parser.add_argument_group("demo")
    demo.add_argument(
        "--demo",
        action="store_true",
        default=argparse.SUPPRESS if sub else False,
        help="use a simulated Xen pool (plus a libvirt test:/// host when libvirt is installed)",
    )
    demo.add_argument(
        "--scenario",
        metavar="FILE",
        type=Path,
        default=default,
        help="with --demo: a simulator scenario file instead of the built-in 'lab'",
    )
    demo.add_argument(
        "--hosts",
        metavar="N",
        type=_positive,
        default=default,
        help="with --demo: simulate N hosts (for big-pool benchmarks)",
    )
    demo.add_argument("--vms", metavar="M", type=_positive, default=default, help="with --demo: simulate M VMs")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from poolctl.cli.maint_args import add_evacuate_parser, add_host_parser
    from poolctl.cli.migrate_args import add_migrate_parser

    parser = argparse.ArgumentParser(
        prog="poolctl",
        description="A keyboard-driven terminal tool for Xen (XAPI) and KVM (libvirt) pools.\n"
        "Without a command it opens the TUI on the configured pools.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-V", "--version", action="version", version=f"poolctl {__version__}")
    _add_common(parser, sub=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    ls = commands.add_parser(
        "ls",
        help="list VMs, hosts, SRs or networks of the configured pools",
        description="Connect each selected pool, print one table (or one JSON array) and exit.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ls.add_argument("kind", nargs="?", choices=KINDS, default="vms", help="what to list (default: vms)")
    ls.add_argument("--pool", metavar="NAME", action="append", help="only this pool (repeat for several; default: all)")
    ls.add_argument("--json", action="store_true", help="one JSON array, an object per row")
    _add_common(ls, sub=True)
    add_migrate_parser(commands, _add_common)
    add_evacuate_parser(commands, _add_common)
    add_host_parser(commands, _add_common)
    completion = commands.add_parser(
        "completion",
        help="print a shell completion script (bash or zsh)",
        description="Print the completion script for SHELL. bash: `poolctl completion bash > "
        "~/.local/share/bash-completion/completions/poolctl`; zsh: `poolctl completion zsh > "
        '"${fpath[1]}/_poolctl"`.',
    )
    completion.add_argument("shell", choices=("bash", "zsh"), help="the shell")
    # Dispatched before parsing (it has its own options); listed here for --help.
    commands.add_parser("simulate", help="run the XAPI simulator (see `poolctl simulate --help`)", add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["simulate"]:
        from poolctl.cli.simulate import main as simulate

        return simulate(argv[1:])
    started = early.start(argv)
    if started == "tui":
        gcpause.pause()  # resumed once the first pool is on screen (``_run_tui``)
    try:
        args = build_parser().parse_args(argv)
    except BaseException:
        if started == "tui":
            gcpause.resume()
        raise
    args.preloaded = started is not None
    args.gc_paused = started == "tui"
    if args.command in ("ls", "migrate", "evacuate", "host"):
        from poolctl.cli import warning_lines

        warning_lines.install()
    if args.command == "completion":
        from poolctl.cli.completion import run_completion

        return run_completion(build_parser(), args.shell)
    try:
        if args.command == "ls":
            _preload(args, only=args.pool)
            from poolctl.cli.ls import run_ls

            with ExitStack() as stack:
                pools, _ = _pools(args, stack)
                return run_ls(pools, kind=args.kind, only=args.pool, as_json=args.json)
        if args.command in ("migrate", "evacuate", "host"):
            with ExitStack() as stack:
                pools, config = _pools(args, stack, settings=True)
                return _run_moves(args, pools, config)
        return _run_tui(args)
    except Failure as exc:
        if str(exc):  # empty: what went wrong is printed already (each pool's failure)
            _error(str(exc))
        return exc.code
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        # `poolctl ls | head`: the reader left; say nothing more (stdout is gone).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.OK


def _run_moves(args: argparse.Namespace, pools: list[PoolConfig], config: Config | None) -> int:
    """The commands that move VMs (or may: ``host enable --restore``), with the [migration] defaults."""
    from poolctl.config import MigrationSettings

    defaults = config.migration if config else MigrationSettings()
    interval = getattr(args, "interval", None)
    interval = interval if interval is not None else defaults.ping_interval
    port = getattr(args, "port", None)
    port = port if port is not None else defaults.ping_port
    from poolctl.cli.batch_run import RunSettings

    if args.command == "migrate" and len(args.vm) == 1:
        from poolctl.cli.migrate import run_migrate
        from poolctl.cli.migrate_args import tune_request

        return run_migrate(
            pools,
            vm=args.vm[0],
            host=args.host,
            pool=args.pool,
            ping=args.ping,
            interval=interval,
            port=port,
            watch=args.watch,
            outcome_wait=defaults.outcome_wait,
            tuning=tune_request(args, defaults),
            sr=args.sr,
            disks=args.disk,
            dry_run=args.dry_run,
            storage_rate=defaults.storage_rate,
            network=args.network,
            to_pool=args.to_pool,
        )
    if args.command == "migrate":
        hand = ("dry_run", "tune", "max_downtime", "bandwidth", "auto_converge", "post_copy", "parallel", "compress")
        if any(getattr(args, a, None) not in (None, False) for a in hand) or args.sr or args.disk:
            raise Failure("--sr, --disk, --dry-run and the tuning options take one VM: move the others on their own")
        if args.network is not None or args.to_pool is not None:
            raise Failure("--network and --to-pool take one VM: move the others on their own")
        if args.ping is not None:
            raise Failure("--ping names one VM's address: with several VMs each is pinged on its own first IP")
        from poolctl.cli.migrate_many import run_migrate_many

        return run_migrate_many(
            pools,
            vms=args.vm,
            host=args.host,
            pool=args.pool,
            settings=RunSettings(args.batch, args.watch, interval, port, defaults.outcome_wait),
        )
    if args.command == "evacuate":
        from poolctl.cli.evacuate import run_evacuate

        return run_evacuate(
            pools,
            host=args.host,
            to=args.to,
            dry_run=args.dry_run,
            pool=args.pool,
            sr=args.sr,
            storage_rate=defaults.storage_rate,
            network=args.network,
            settings=RunSettings(args.batch, args.watch, interval, port, defaults.outcome_wait),
        )
    from poolctl.cli.host import run_host

    return run_host(
        pools,
        action=args.action,
        host=args.host,
        pool=args.pool,
        restore=getattr(args, "restore", False),
        network=getattr(args, "network", None),
        settings=RunSettings(
            getattr(args, "batch", "auto"), getattr(args, "watch", False), interval, port, defaults.outcome_wait
        ),
    )


def _error(message: str) -> None:
    from poolctl.safe_text import shown_line

    print(f"poolctl: {shown_line(message)}", file=sys.stderr)


def _load(args: argparse.Namespace, *, tui: bool = False) -> Config:
    """The config file; its warnings go to stderr, or (``tui``) to the caller for the TUI."""
    from poolctl.config import ConfigError, load_config

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        raise Failure(str(exc)) from None
    if not tui:
        for warning in config.warnings:
            _error(f"warning: {warning}")
    return config


def _pools(
    args: argparse.Namespace, stack: ExitStack, *, tui: bool = False, settings: bool = False
) -> tuple[list[PoolConfig], Config | None]:
    """The pools to work on, the demo's (kept alive by ``stack``) or the config file's,
    and the config (for key remaps, [migration] defaults and warnings) when one was read.
    With ``--demo`` the user's config is read only for the TUI or ``settings``."""
    if args.demo:
        from poolctl.sim.demo import DemoError, start_demo

        config = _demo_config(args, tui=tui) if tui or settings else None
        try:
            return start_demo(stack, scenario=args.scenario, hosts=args.hosts, vms=args.vms), config
        except DemoError as exc:
            raise Failure(str(exc)) from None
    if args.scenario or args.hosts or args.vms:
        raise Failure("--scenario, --hosts and --vms only apply with --demo")
    config = _load(args, tui=tui)
    if not config.pools:
        raise Failure(f"{config.path}: no [[pool]] tables; add one, or try `poolctl --demo`")
    return list(config.pools), config


def _demo_config(args: argparse.Namespace, *, tui: bool) -> Config | None:
    """The user's config, when there is one, for its key remaps and [migration] in the demo."""
    from poolctl.config import ENV_VAR, default_config_path

    if args.config is None and not os.environ.get(ENV_VAR) and not default_config_path().is_file():
        return None
    return _load(args, tui=tui)


def _preload(args: argparse.Namespace, only: list[str] | None = None) -> None:
    """The KVM hosts start opening before the config is validated (``poolctl.preload``), if
    they did not before the command line was parsed (``early``)."""
    if not args.demo and not getattr(args, "preloaded", False):
        from poolctl import preload

        preload.start(args.config, only=only)


def _run_tui(args: argparse.Namespace) -> int:
    # The collector waits until the first pool is on screen: start-up allocates (imports, the
    # screens, the first read) and keeps nearly everything; collections found it all alive and
    # took ~30 ms of the ~0.4 s to the first frame. Paused in ``main`` already when it could
    # tell the TUI from the raw command line.
    if not getattr(args, "gc_paused", False):
        gcpause.pause()
    resume = _Once(gcpause.resume)
    try:
        return _tui(args, resume)
    finally:
        resume()


def _tui(args: argparse.Namespace, first_painted: Callable[[], None]) -> int:
    _preload(args)
    with ExitStack() as stack:
        pools, config = _pools(args, stack, tui=True)
        from poolctl import loading

        first_loads = loading.start(pools)  # connecting overlaps importing the TUI
        from poolctl.tui.app import create_app

        app = create_app(
            pools,
            keymap=(config.keys if config else None) or None,
            migration=config.migration if config else None,
            first_loads=first_loads,
            after_first_paint=first_painted,
            hold_first_frame=True,
        )
        # Printed now, they would vanish under the TUI's screen: show them in it.
        for warning in config.warnings if config else ():
            app.notify(warning, severity="warning", timeout=30, markup=False)
        app.run()
        return app.return_code or ExitCode.OK


class _Once:
    def __init__(self, fn: Callable[[], None]):
        self._fn: Callable[[], None] | None = fn

    def __call__(self) -> None:
        fn, self._fn = self._fn, None
        if fn is not None:
            fn()
