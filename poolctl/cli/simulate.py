"""`poolctl simulate`: serve a simulated XAPI pool (and with --also more, which can move VMs to
one another) in the foreground until Ctrl-C."""

from __future__ import annotations

import argparse
import gc
import logging
import signal
import sys
import threading
from typing import TYPE_CHECKING

from poolctl.sim.demo import scenario_arg
from poolctl.sim.xapi.scenario import ScenarioError

if TYPE_CHECKING:
    from poolctl.sim.xapi.server import SimServer
    from poolctl.sim.xapi.simulator import Simulator


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, e.g. 127.0.0.1:8080, not {value!r}")
    return host.strip("[]"), int(port)


def _also(value: str) -> tuple[str, tuple[str, int] | None]:
    scenario, sep, listen = value.partition("=")
    if not scenario:
        raise argparse.ArgumentTypeError(f"expected SCENARIO or SCENARIO=HOST:PORT, not {value!r}")
    return scenario, _listen(listen) if sep else None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="poolctl simulate",
        description="Serve a simulated XAPI (XenServer / XCP-ng) pool over XML-RPC and JSON-RPC. "
        "Each host gets its own loopback address on the same port; the --listen address "
        "also serves the pool master.",
    )
    p.add_argument(
        "--listen",
        type=_listen,
        default=("127.0.0.1", 8080),
        metavar="HOST:PORT",
        help="address and port to serve on (default 127.0.0.1:8080; port 0 picks a free one)",
    )
    p.add_argument("--scenario", default=None, help="'lab' (default) or a scenario .toml/.json file")
    p.add_argument("--hosts", type=int, help="generate a pool with this many hosts (with --vms)")
    p.add_argument("--vms", type=int, help="generate a pool with this many VMs (with --hosts)")
    p.add_argument(
        "--migration-seconds", type=float, default=8.0, metavar="S", help="how long a live migration takes (default 8)"
    )
    p.add_argument(
        "--power-seconds", type=float, default=0.0, metavar="S", help="how long start/shutdown/reboot take (default 0)"
    )
    p.add_argument(
        "--storage-mib-s",
        type=float,
        default=500.0,
        metavar="R",
        help="how fast storage motion copies disks, in MiB/s of the disks' used size (default 500)",
    )
    p.add_argument(
        "--also",
        action="append",
        default=[],
        type=_also,
        metavar="SCENARIO[=HOST:PORT]",
        help="serve another pool too, e.g. 'dr' (the shipped second pool) or a scenario file, on "
        "HOST:PORT (default: the --listen address, the next port); the pools can move VMs to "
        "each other (cross-pool storage motion). Repeatable",
    )
    p.add_argument("--username", default="root", help="user to accept (default root)")
    p.add_argument("--password", default="demo", help="password to accept (default demo)")
    p.add_argument("--tls", action="store_true", help="serve HTTPS with a generated self-signed certificate")
    p.add_argument(
        "--no-jsonrpc",
        dest="jsonrpc",
        action="store_false",
        help="answer /jsonrpc with 404, as XAPI before JSON-RPC did (clients fall back to XML-RPC)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log every call to stderr")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(asctime)s %(name)s %(message)s"
    )
    if (args.hosts is None) != (args.vms is None):
        print("poolctl simulate: --hosts and --vms go together", file=sys.stderr)
        return 2
    if args.hosts is not None and args.scenario is not None:
        print("poolctl simulate: use either --scenario or --hosts/--vms", file=sys.stderr)
        return 2
    from poolctl.sim.xapi.simulator import Simulator

    options = {
        "password": args.password,
        "username": args.username,
        "migration_seconds": args.migration_seconds,
        "power_seconds": args.power_seconds,
        "storage_mib_s": args.storage_mib_s,
        "jsonrpc": args.jsonrpc,
    }
    sims: list[Simulator] = []
    servers: list[SimServer] = []
    try:
        if args.hosts is not None:
            sims.append(Simulator.generate(hosts=args.hosts, vms=args.vms, **options))
        else:
            sims.append(Simulator.from_scenario(scenario_arg(args.scenario or "lab"), **options))
        for scenario, _ in args.also:
            sims.append(Simulator.from_scenario(scenario_arg(scenario), **options))
        for sim in sims:
            sim.warm()
        gc.freeze()  # the pools live as long as the process: keep them out of every collection
        host, port = args.listen
        servers.append(sims[0].serve(host=host, port=port, tls=args.tls))
        for n, (sim, (_, listen)) in enumerate(zip(sims[1:], args.also, strict=True), start=1):
            at = listen or (host, servers[0].port + n)
            servers.append(sim.serve(host=at[0], port=at[1], tls=args.tls))
    except (ScenarioError, ValueError) as exc:
        _close(servers)
        print(f"poolctl simulate: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        _close(servers)
        print(f"poolctl simulate: {exc.strerror or exc}", file=sys.stderr)
        return 1

    rpc = "XML-RPC on /, JSON-RPC on /jsonrpc" if args.jsonrpc else "XML-RPC on / (no JSON-RPC)"
    for sim, server in zip(sims, servers, strict=True):
        _describe(sim, server)
    print(f"  user {args.username} (password: see --password); {rpc}")
    print("Press Ctrl-C to stop.", flush=True)
    stop = threading.Event()
    # only the foreground command handles signals; the in-process simulator never does
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        _close(servers)
    print("Stopped.")
    return 0


def _describe(sim: Simulator, server: SimServer) -> None:
    pool = sim.db.snapshot("pool", sim.db.refs("pool")[0])
    print(f"Simulated XAPI pool {pool['name_label']!r} serving {server.alias_url}  (master {server.url})")
    if server.cert_path:
        print(f"  TLS certificate: {server.cert_path}")
    shown = list(server.host_urls.items())
    for name, url in shown[:8]:
        print(f"  host {name:<20} {url}{'  (master)' if url == server.url else ''}")
    if len(shown) > 8:
        print(f"  ... and {len(shown) - 8} more hosts")


def _close(servers: list[SimServer]) -> None:
    for server in servers:
        server.close()


if __name__ == "__main__":
    raise SystemExit(main())
