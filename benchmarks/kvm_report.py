"""The KVM scale benchmark's table and its targets (issue 15's "Done when"), from the samples."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field

from benchmarks.kvm_clients import Sample

CLIENTS = (
    "floor",
    "virsh",
    "poolctl ls vms (baseline)",
    "poolctl ls vms",
    "poolctl (baseline)",
    "poolctl",
    "virtui-manager",
)
WHAT = {
    "floor": "open + listAllDomains",
    "virsh": "list --all",
    "poolctl ls vms (baseline)": "to exit",
    "poolctl ls vms": "to exit",
    "poolctl (baseline)": "first paint",
    "poolctl": "first paint",
    "virtui-manager": "first paint",
}
KEY_TARGET_MS = 50.0


@dataclass
class Cell:
    link: str
    domains: int
    virtui_installed: bool = True
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def of(self, client: str) -> list[Sample]:
        return [s for s in self.samples if s.client == client]

    def seconds(self, client: str) -> float | None:
        got = [s.seconds for s in self.of(client)]
        return statistics.median(got) if got else None

    def rss(self, client: str) -> float | None:
        got = [s.rss_mb for s in self.of(client) if s.rss_mb is not None]
        return statistics.median(got) if got else None

    def calls(self, client: str, total: bool = False) -> int | None:
        got = [s.calls_total if total else s.calls for s in self.of(client)]
        nums = [c for c in got if c is not None]
        return int(statistics.median(nums)) if nums else None

    def keys(self) -> dict[str, list[float]]:
        merged: dict[str, list[float]] = {}
        for s in self.of("poolctl"):
            for k, v in s.keys_ms.items():
                merged.setdefault(k, []).extend(v)
        return merged

    def as_dict(self) -> dict:
        return asdict(self)


def _num(v: float | int | None, fmt: str) -> str:
    return "n/a" if v is None else format(v, fmt)


def table(cells: list[Cell], *, runs: int) -> str:
    head = (
        "| link | domains | client | what | s (median) [min-max] | above floor s | calls | calls until settled "
        "| peak RSS MB |"
    )
    lines = [head, "| " + " | ".join("---" for _ in range(head.count("|") - 1)) + " |"]
    for c in cells:
        base = c.seconds("floor")
        for client in CLIENTS:
            got = [s.seconds for s in c.of(client)]
            if not got:
                if client == "virtui-manager" and not c.virtui_installed:
                    lines.append(f"| {c.link} | {c.domains} | {client} | not installed | | | | | |")
                continue
            med = statistics.median(got)
            above = "" if client == "floor" or base is None else f"{med - base:+.2f}"
            settled = (
                c.calls(client, total=True) if client in ("poolctl", "poolctl (baseline)", "virtui-manager") else None
            )
            lines.append(
                f"| {c.link} | {c.domains} | {client} | {WHAT[client]} | {med:.2f} [{min(got):.2f}-{max(got):.2f}] "
                f"| {above} | {_num(c.calls(client), 'd')} | {_num(settled, 'd') if settled is not None else ''} "
                f"| {_num(c.rss(client), '.0f')} |"
            )
        for err in c.errors:
            lines.append(f"| {c.link} | {c.domains} | error | {err[:150]} | | | | | |")
    lines.append(f"\nmedians of {runs} run(s); calls: libvirt RPC calls counted at the relay until the figure")
    for c in cells:
        for key, ms in c.keys().items():
            if ms:
                lines.append(
                    f"keys at {c.domains} ({c.link}), poolctl, {key}: median {statistics.median(ms):.0f} ms, "
                    f"max {max(ms):.0f} ms over {len(ms)} keys"
                )
    return "\n".join(lines)


def _find(cells: list[Cell], link: str, domains: int) -> Cell | None:
    return next((c for c in cells if c.link == link and c.domains == domains), None)


def targets(cells: list[Cell]) -> str:
    out = ["", "targets:"]
    remote = _find(cells, "10 ms RTT", 1000)
    if remote is not None:
        p, v = remote.seconds("poolctl"), remote.seconds("virtui-manager")
        if p is not None and v is not None:
            ok = "met" if p <= v / 2 else "MISSED"
            out.append(
                f"- 10 ms RTT, 1000 domains: poolctl paint {p:.2f} s <= half of virtui-manager's {v:.2f} s: {ok}"
            )
        else:
            out.append("- 10 ms RTT, 1000 domains: not measured (poolctl or virtui-manager missing)")
    local = _find(cells, "local", 5000)
    if local is not None:
        f, p, v = local.seconds("floor"), local.seconds("poolctl"), local.seconds("virtui-manager")
        if None not in (f, p, v):
            assert f is not None and p is not None and v is not None
            ok = "met" if p - f <= (v - f) / 2 else "MISSED"
            out.append(
                f"- local, 5000 domains: poolctl above the floor {p - f:.2f} s <= half of virtui-manager's "
                f"{v - f:.2f} s: {ok}"
            )
            pr, vr = local.rss("poolctl"), local.rss("virtui-manager")
            if pr is not None and vr is not None:
                out.append(
                    f"- local, 5000 domains: peak RSS poolctl {pr:.0f} MB <= virtui-manager {vr:.0f} MB: "
                    + ("met" if pr <= vr else "MISSED")
                )
        else:
            out.append("- local, 5000 domains: not measured (floor, poolctl or virtui-manager missing)")
        keys = [ms for k, v in local.keys().items() if not k.endswith("settled") for ms in v]
        if keys:
            ok = "met" if max(keys) < KEY_TARGET_MS else "MISSED"
            out.append(f"- keys at 5000: slowest of {len(keys)} {max(keys):.0f} ms < {KEY_TARGET_MS:.0f} ms: {ok}")
    return "\n".join(out)
