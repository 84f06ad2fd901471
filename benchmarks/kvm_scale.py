"""KVM at scale over real links: poolctl's first paint, ``poolctl ls vms``, the libvirt calls
each client makes, and peak RSS, beside ``virsh list --all``, the floor and virtui-manager.

    .venv/bin/python -m benchmarks.kvm_scale [--sizes 1000,5000] [--links local,0,10] [--runs 3]
        [--virtui PATH | $VIRTUI_MANAGER] [--keys] [--json FILE]

Each link is one libvirt test-driver host of N domains: ``local`` opens it in the client
(``test:///path.xml``: libvirt parses the host's XML in the client process); a number is a
round trip in ms to a private libvirtd serving it over TCP (``test+tcp://``) through a relay
that holds each direction for half of it and counts the RPC calls. All share the machine's
CPUs: a client's own work beside the daemon's open slows the open (on 2 CPUs a busy process
beside the floor's open added 0.1-0.8 s), as it would not if the host were another machine;
``--pin`` gives the daemon and the relay the last CPU and the clients the others (on 2 CPUs
that starves the clients instead: no better here).
Every client is a fresh process, run one after another in the same order per run, rotated
between runs; figures are medians over the runs. Progress goes to stderr, the table to stdout.
Targets are reported, not asserted (exit 0 unless a client failed).
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # `python benchmarks/kvm_scale.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import kvm_clients as kc
from benchmarks.kvm_report import Cell, table, targets
from benchmarks.libvirt_host import write_host
from benchmarks.libvirt_link import Relay, daemon, have_libvirtd, split_cpus


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.kvm_scale", description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="1000,5000", help="domain counts, comma separated")
    p.add_argument("--links", default="local,0,10", help="'local' and/or round trips in ms, comma separated")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--virtui", default=os.environ.get("VIRTUI_MANAGER", ""), help="virtui-manager's executable")
    p.add_argument("--keys", action="store_true", help="poolctl's key-to-frame latency at the largest local size")
    p.add_argument(
        "--only",
        default="",
        help="clients to run, comma separated (floor,virsh,ls,poolctl,virtui,ls-base,poolctl-base)",
    )
    p.add_argument(
        "--baseline",
        default="",
        help="another poolctl source tree (e.g. an export of main) whose ls and TUI run beside this one's",
    )
    p.add_argument("--json", default="", help="also write the samples as JSON ('-' = stdout)")
    p.add_argument(
        "--pin",
        action="store_true",
        help="over TCP, the host's daemon and the relay on the last CPU, the clients on the others",
    )
    return p.parse_args(argv)


def link_label(link: str) -> str:
    return "local" if link == "local" else f"{float(link):g} ms RTT"


def run_cell(
    link: str, domains: int, args: argparse.Namespace, folder: Path, uri_of: Callable[[Path], str], relay: Relay | None
) -> Cell:
    host = write_host(folder / f"host-{domains}.xml", domains)
    uri = uri_of(host)
    cfg = kc.write_poolctl_config(folder, uri)
    home = kc.virtui_home(folder, uri)
    keys_here = args.keys and link == "local" and domains == max(args.sizes)
    clients: dict[str, Callable[[], kc.Sample]] = {
        "floor": lambda: kc.floor(uri, relay, domains),
        "virsh": lambda: kc.virsh(uri, relay, domains),
        "ls": lambda: kc.poolctl_ls(cfg, relay, domains),
        "poolctl": lambda: kc.poolctl_tui(cfg, relay, keys=keys_here),
    }
    if args.baseline:
        base = Path(args.baseline)
        clients["ls-base"] = lambda: kc.poolctl_ls(cfg, relay, domains, source=base)
        clients["poolctl-base"] = lambda: kc.poolctl_tui(cfg, relay, source=base)
    if args.virtui:
        clients["virtui"] = lambda: kc.virtui(args.virtui, home, relay)
    if args.only:
        clients = {k: v for k, v in clients.items() if k in args.only.split(",")}
    cell = Cell(link_label(link), domains, virtui_installed=bool(args.virtui))
    order = list(clients)
    for run in range(args.runs):
        rotated = order[run % len(order) :] + order[: run % len(order)]
        for name in rotated:
            log(f"  {cell.link}, {domains} domains, run {run + 1}/{args.runs}: {name}")
            try:
                sample = clients[name]()
            except Exception as exc:  # reported in the table, the other clients still run
                log(f"    {name} failed: {exc}")
                cell.errors.append(f"{name}: {exc}")
                continue
            log(f"    {sample.seconds:.2f} s, {sample.calls} calls, {sample.rss_mb or 0:.0f} MB")
            cell.samples.append(sample)
    return cell


def byte_compile(*roots: Path) -> None:
    """poolctl's sources compiled as an installed package's are (pip compiles them, and so it is
    for the peer); a checkout on a machine with PYTHONDONTWRITEBYTECODE has none, and every
    client would compile its modules again (~0.1 s of its start-up)."""
    for root in roots:
        compileall.compile_dir(str(root / "poolctl"), quiet=1)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    byte_compile(Path(__file__).resolve().parent.parent, *([Path(args.baseline)] if args.baseline else []))
    args.sizes = [int(s) for s in args.sizes.split(",") if s]
    links = [x.strip() for x in args.links.split(",") if x.strip()]
    if args.virtui and not os.access(args.virtui, os.X_OK):
        log(f"virtui-manager: {args.virtui} is not an executable; compared as not installed")
        args.virtui = ""
    remote = [x for x in links if x != "local"]
    if remote and (why := have_libvirtd()):
        log(f"no remote links: {why}")
        links = [x for x in links if x == "local"]
    cells: list[Cell] = []
    all_cpus = os.sched_getaffinity(0)
    with tempfile.TemporaryDirectory(prefix="poolctl-kvm-scale-") as tmp:
        folder = Path(tmp)
        for link in links:
            if link == "local":
                for n in args.sizes:
                    cells.append(run_cell(link, n, args, folder, lambda h: f"test://{h.as_posix()}", None))
                continue
            split = split_cpus() if args.pin else None
            remote_cpus, client_cpus = split or (None, None)
            with daemon(folder / f"libvirtd-{link}", remote_cpus) as d:
                relay = Relay(d.port, float(link) / 2000, remote_cpus)
                if client_cpus:
                    os.sched_setaffinity(0, client_cpus)  # the clients, started from here, inherit it
                try:
                    for n in args.sizes:
                        url = f"test+tcp://127.0.0.1:{relay.port}"
                        cells.append(run_cell(link, n, args, folder, lambda h, url=url: url + h.as_posix(), relay))
                finally:
                    relay.close()
                    os.sched_setaffinity(0, all_cpus)
    print(table(cells, runs=args.runs))
    split = split_cpus() if args.pin else None
    if split and any(c.link != "local" for c in cells):
        print(f"remote links: libvirtd and the relay on CPU {sorted(split[0])}, the clients on CPU {sorted(split[1])}")
    print(targets(cells))
    if args.json:
        data = json.dumps([c.as_dict() for c in cells], indent=2)
        if args.json == "-":
            print(data)
        else:
            Path(args.json).write_text(data + "\n")
    return 1 if any(c.errors for c in cells) else 0


if __name__ == "__main__":
    raise SystemExit(main())
