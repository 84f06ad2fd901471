"""Where each VM of an evacuation (or a bulk move) goes: a pure function over records the caller
has already read — the VMs, the hosts, and the backend's pre-check of every (VM, host) pair.

No I/O here, so the plan can be unit-tested on made-up records and shown (dialog, ``--dry-run``)
before anything moves. Any blocked VM makes the whole plan refused: the caller moves nothing.

Packing: biggest VM first, each onto the candidate with the MOST memory left (worst fit
decreasing). Best fit would pack hosts tightly, which suits consolidation; an evacuation wants
the opposite: the VMs spread over the destinations, so the moves that run at the same time
go to different hosts (their copies do not share one destination's link and memory bandwidth),
no destination is left at the edge where the hypervisor's own overhead estimate tips a later
start over, and the pool stays balanced after the host is emptied. Biggest first because the
big VMs are the hard ones to place, and as the runner starts moves in plan order, the longest
moves begin first and the batch ends sooner.

Memory freed on a host by a VM leaving it is not credited to the VMs arriving there: it is
only free once that move has ended, and the plan must hold in any order of completion.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from poolctl.errors import describe
from poolctl.format import size
from poolctl.migration.network import network_curable
from poolctl.model import VM, Host, MigrationCheck, PowerState
from poolctl.safe_text import shown

Verdict = MigrationCheck | BaseException
# vm ref -> host ref -> the backend's pre-check (as ``check_hosts`` returns it per VM)
Checks = Mapping[str, Mapping[str, Verdict]]


@dataclass(frozen=True)
class Placement:
    """One VM of the plan: its destination, or the reasons it cannot go anywhere."""

    vm: VM
    source_name: str
    destination: Host | None
    reasons: tuple[str, ...] = ()  # per host (or group of hosts): why not there; empty when placed
    # storage motion: the disks copied on the way ((device, SR ref), as MigrationOptions.disk_srs)
    # and the pre-check's words for the copy (a line per disk, the estimate)
    disk_srs: tuple[tuple[str, str], ...] = ()
    copies: tuple[str, ...] = ()
    # blocked because a disk is on storage no candidate host sees: storage motion would move it
    needs_storage_motion: bool = False
    # the migration network (ref) the move was pre-checked over and is sent over
    # (MigrationOptions.network); None: each destination's management network
    network: str | None = None
    # blocked, and some candidate host refused it for that network only: another network may cure it
    network_refused: bool = False

    @property
    def ok(self) -> bool:
        return self.destination is not None

    @property
    def why(self) -> str:
        return "; ".join(self.reasons)


@dataclass(frozen=True)
class Plan:
    placements: tuple[Placement, ...]  # in planning order: biggest VM first

    @property
    def ok(self) -> bool:
        """Every VM has a destination; otherwise nothing may move."""
        return all(p.ok for p in self.placements)

    @property
    def moves(self) -> tuple[Placement, ...]:
        return tuple(p for p in self.placements if p.ok)

    @property
    def blocked(self) -> tuple[Placement, ...]:
        return tuple(p for p in self.placements if not p.ok)

    @property
    def needs_storage_motion(self) -> tuple[str, ...]:
        """The blocked VMs a copy of their disks would let leave (their disks are on storage no
        candidate sees): the caller names its way to ask for one (``--sr``, the dialog's SR)."""
        return tuple(p.vm.name for p in self.blocked if p.needs_storage_motion)

    @property
    def refused_over_network(self) -> tuple[str, ...]:
        """The blocked VMs some host refused for the migration network the plan was made over:
        the caller says that another network (or the default) may let them leave."""
        return tuple(p.vm.name for p in self.blocked if p.network_refused)

    def refusal(self) -> list[str]:
        """Every blocked VM and why, one line each (empty when the plan is ok)."""
        blocked = self.blocked
        if not blocked:
            return []
        names = ", ".join(shown(p.vm.name) for p in blocked)
        head = f"{len(blocked)} of {len(self.placements)} VMs cannot leave ({names}); nothing was moved:"
        return [head] + [f"  ✗ {shown(p.vm.name)}: {p.why}" for p in blocked]


def evacuees(vms: Iterable[VM], host: str) -> list[VM]:
    """The VMs an evacuation of ``host`` (a ref) must move: those running on it."""
    return [v for v in vms if v.host == host and v.power_state == PowerState.RUNNING]


def plan_moves(
    vms: Sequence[VM],
    hosts: Sequence[Host],
    checks: Checks,
    *,
    to: Collection[str] | None = None,
    storage: Mapping[str, tuple[tuple[str, str], ...]] | None = None,
    network: str | None = None,
) -> Plan:
    """A destination for each of ``vms`` among ``hosts`` (every host of the pool may be given:
    a VM's own host is never its destination), limited to the refs in ``to`` when given.

    ``checks[vm.ref][host.ref]`` is the backend's verdict on that move; a pair with no verdict
    is not a candidate (poolctl does not move a VM where nothing has checked it may go).
    ``storage[vm.ref]``: that VM's verdicts are of a move with its disks copied so (storage
    motion), which its placement carries with the verdict's words for the copy. ``network``: the
    verdicts are of moves over that network, which every placement carries."""
    storage = storage or {}
    names = {h.ref: h.name for h in hosts}
    allowed = set(to) if to is not None else None
    placed: dict[str, int] = {}  # host ref -> memory the plan already sends there
    placed_vms: dict[str, list[str]] = {}
    order = sorted(vms, key=lambda v: (-v.memory, v.name))
    out: list[Placement] = []
    for vm in order:
        source = names.get(vm.host or "", vm.host or "no host")
        if vm.power_state != PowerState.RUNNING:
            reason = f"it is {vm.power_state.value}; only a running VM can be live-migrated"
            out.append(Placement(vm, source, None, (reason,)))
            continue
        refusals: list[tuple[str, tuple[str, ...]]] = []  # (host name, problems)
        fits: list[tuple[int, str, Host]] = []
        verdicts = checks.get(vm.ref, {})
        for host in hosts:
            if host.ref == vm.host:
                if allowed is not None and host.ref in allowed:
                    refusals.append((host.name, (f"{vm.name} already runs on {host.name}",)))
                continue
            if allowed is not None and host.ref not in allowed:
                continue
            problems = _host_problems(vm, host, checks.get(vm.ref, {}).get(host.ref), placed, placed_vms)
            if problems:
                refusals.append((host.name, problems))
            else:
                fits.append((host.memory_free - placed.get(host.ref, 0), host.name, host))
        if fits:
            _, _, best = min(fits, key=lambda f: (-f[0], f[1]))  # most memory left; ties by name
            placed[best.ref] = placed.get(best.ref, 0) + vm.memory
            placed_vms.setdefault(best.ref, []).append(vm.name)
            verdict = verdicts.get(best.ref)
            copies = verdict.copies if isinstance(verdict, MigrationCheck) else ()
            out.append(Placement(vm, source, best, disk_srs=storage.get(vm.ref, ()), copies=copies, network=network))
        else:
            local = any(isinstance(v, MigrationCheck) and "VM_REQUIRES_SR" in v.codes for v in verdicts.values())
            over = network is not None and any(
                isinstance(v, MigrationCheck) and network_curable(v) for v in verdicts.values()
            )
            reasons = _summarise(refusals, allowed is not None)
            out.append(
                Placement(
                    vm,
                    source,
                    None,
                    reasons,
                    needs_storage_motion=local and vm.ref not in storage,
                    network_refused=over,
                )
            )
    return Plan(tuple(out))


def with_blockers(plan: Plan, blockers: Mapping[str, Sequence[str]]) -> Plan:
    """``plan`` with the hypervisor's own evacuation verdict (``Backend.evacuation_blockers``:
    vm ref -> why it cannot leave) added: a VM it names is blocked even where the per-host
    pre-checks found a destination. One they blocked already keeps their reasons: per host, they
    say more than the hypervisor's one verdict over all hosts."""
    out: list[Placement] = []
    for p in plan.placements:
        words = tuple(blockers.get(p.vm.ref, ()))
        out.append(Placement(p.vm, p.source_name, None, words) if words and p.ok else p)
    return Plan(tuple(out))


def _host_problems(
    vm: VM, host: Host, verdict: Verdict | None, placed: Mapping[str, int], placed_vms: Mapping[str, list[str]]
) -> tuple[str, ...]:
    # poolctl's own knowledge first: a disabled or unreachable host is out whatever a backend's
    # check says (not every backend's check knows about poolctl's own maintenance flag)
    if not host.live:
        return (f"{host.name} is down (not reachable)",)
    if not host.enabled:
        return (f"{host.name} is disabled (maintenance mode)",)
    if verdict is None:
        return (f"the move to {host.name} was not pre-checked",)
    if isinstance(verdict, BaseException):
        return (f"the pre-check failed: {describe(verdict)}",)
    if not verdict.ok:
        return tuple(dict.fromkeys(verdict.problems))
    already = placed.get(host.ref, 0)
    left = host.memory_free - already
    if vm.memory > left and not already:
        return (f"not enough free memory on {host.name}: needs {size(vm.memory)}, host has {size(host.memory_free)}",)
    if vm.memory > left:
        others = ", ".join(placed_vms.get(host.ref, ()))
        return (
            f"not enough free memory on {host.name} once the VMs planned before it arrive: needs "
            f"{size(vm.memory)}, {size(max(left, 0))} left of {size(host.memory_free)} free "
            f"({size(already)} planned for {others})",
        )
    return ()


def _summarise(refusals: list[tuple[str, tuple[str, ...]]], to_given: bool) -> tuple[str, ...]:
    """One reason per host, hosts with the same words (their own name aside) grouped."""
    if not refusals:
        return ("no destination: the --to hosts are not in this pool" if to_given else "no other host in the pool",)
    groups: dict[str, list[str]] = {}
    originals: dict[str, str] = {}
    for host, problems in refusals:
        text = "; ".join(problems)
        # the name as a whole word only: "h1" must not match inside "h10" or "Local storage h1x"
        key = re.sub(rf"(?<![\w.-]){re.escape(host)}(?![\w.-])", lambda _m: _HOST, text)
        groups.setdefault(key, []).append(host)
        originals.setdefault(key, text)
    out: list[str] = []
    for key, group in groups.items():
        if len(group) == 1:
            out.append(f"{group[0]}: {originals[key]}")
        else:
            out.append(f"{', '.join(group)}: {key.replace(_HOST, 'the host')}")
    return tuple(out)


_HOST = "\0host\0"  # stands for a host's name while grouping; cannot occur in a problem's words


# --- the dry-run table ---------------------------------------------------------------------------

HEADER = ("VM", "MEMORY", "FROM", "TO")


def plan_rows(plan: Plan) -> list[tuple[str, str, str, str]]:
    """(VM, memory, from, to or ``blocked: why``) per VM, in plan order."""
    return [
        (
            p.vm.name,
            size(p.vm.memory),
            p.source_name,
            p.destination.name if p.destination is not None else f"blocked: {p.why}",
        )
        for p in plan.placements
    ]


def plan_table(plan: Plan) -> list[str]:
    """The plan as aligned text lines with a header, as ``--dry-run`` prints it."""
    rows = [HEADER, *([shown(c) for c in r] for r in plan_rows(plan))]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return [f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip() for r in rows]
