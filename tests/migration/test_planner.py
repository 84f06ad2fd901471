"""The evacuation planner on made-up records: destinations, packing, refusals."""

from __future__ import annotations

from poolctl.migration.planner import evacuees, plan_moves, plan_rows, plan_table
from poolctl.model import VM, GiB, Host, MigrationCheck, PowerState


def host(name: str, free_gib: float, **kw) -> Host:
    return Host(ref=f"H-{name}", name=name, memory_total=64 * GiB, memory_free=int(free_gib * GiB), **kw)


def vm(name: str, gib: float, on: str = "src", **kw) -> VM:
    kw.setdefault("power_state", PowerState.RUNNING)
    return VM(ref=f"V-{name}", uuid=f"u-{name}", name=name, host=f"H-{on}", memory=int(gib * GiB), **kw)


def all_ok(vms, hosts, **problems) -> dict:
    """Every pair passes the backend's check, except ``problems[vm name] = {host name: words}``."""
    out: dict = {}
    for v in vms:
        bad = problems.get(v.name.replace("-", "_"), {})
        out[v.ref] = {h.ref: MigrationCheck(vm=v.ref, host=h.ref, problems=tuple(bad.get(h.name, ()))) for h in hosts}
    return out


SRC = host("src", 10)


def dest(plan) -> dict[str, str | None]:
    return {p.vm.name: p.destination.name if p.destination else None for p in plan.placements}


def test_every_vm_gets_a_destination_biggest_first_spread_by_most_free_memory():
    hosts = [SRC, host("a", 20), host("b", 16)]
    vms = [vm("small", 2), vm("big", 12), vm("mid", 6)]
    plan = plan_moves(vms, hosts, all_ok(vms, hosts))
    assert plan.ok and not plan.blocked
    assert [p.vm.name for p in plan.placements] == ["big", "mid", "small"]
    # big -> a (20 free, 8 left); mid -> b (16 > 8, 10 left); small -> b (10 > 8)
    assert dest(plan) == {"big": "a", "mid": "b", "small": "b"}
    assert all(p.source_name == "src" for p in plan.placements)


def test_memory_already_planned_on_a_host_counts():
    hosts = [SRC, host("a", 10)]
    vms = [vm("one", 6), vm("two", 6)]
    plan = plan_moves(vms, hosts, all_ok(vms, hosts))  # each fits alone, not both
    assert not plan.ok
    assert dest(plan) == {"one": "a", "two": None}
    (blocked,) = plan.blocked
    assert "a: not enough free memory on a once the VMs planned before it arrive" in blocked.why
    assert "6.0 GiB planned for one" in blocked.why


def test_ties_go_to_the_first_host_by_name_so_plans_are_repeatable():
    hosts = [SRC, host("b", 10), host("a", 10)]
    vms = [vm("x", 1)]
    assert dest(plan_moves(vms, hosts, all_ok(vms, hosts))) == {"x": "a"}


def test_a_disabled_or_down_host_is_never_chosen_even_when_its_check_passes():
    hosts = [SRC, host("off", 60, enabled=False), host("dead", 60, live=False), host("small", 4)]
    vms = [vm("web", 2)]
    plan = plan_moves(vms, hosts, all_ok(vms, hosts))
    assert dest(plan) == {"web": "small"}
    big = [vm("db", 8)]
    refused = plan_moves(big, hosts, all_ok(big, hosts))
    (p,) = refused.blocked
    assert "off: off is disabled (maintenance mode)" in p.reasons
    assert "dead: dead is down (not reachable)" in p.reasons
    assert any(r.startswith("small: not enough free memory on small") for r in p.reasons)


def test_to_limits_the_destinations():
    hosts = [SRC, host("a", 60), host("b", 8)]
    vms = [vm("web", 2), vm("app", 4)]
    plan = plan_moves(vms, hosts, all_ok(vms, hosts), to={"H-b"})
    assert dest(plan) == {"app": "b", "web": "b"}
    # a VM already on the only --to host cannot move there
    on_b = [vm("cache", 1, on="b")]
    (p,) = plan_moves(on_b, hosts, all_ok(on_b, hosts), to={"H-b"}).blocked
    assert p.reasons == ("b: cache already runs on b",)
    (p,) = plan_moves(vms[:1], hosts, all_ok(vms[:1], hosts), to={"H-nowhere"}).blocked
    assert "--to" in p.why


def test_the_backends_problems_block_a_host_and_a_vm_no_host_takes_is_refused_with_every_reason():
    hosts = [SRC, host("a", 30), host("b", 30), host("c", 30)]
    vms = [vm("web", 2), vm("cache", 4), vm("db", 8)]
    local = "disk on local SR 'Local storage src' which {} cannot see"
    checks = all_ok(
        vms,
        hosts,
        cache={h: [local.format(h)] for h in ("a", "b", "c")},
        db={"a": ["network 'VM network' is missing on a"], "b": ["CPU of b is incompatible"]},
    )
    plan = plan_moves(vms, hosts, checks)
    assert not plan.ok
    assert dest(plan) == {"db": "c", "cache": None, "web": "a"}
    (cache,) = plan.blocked
    # the same words on every host, host names aside: one reason naming the hosts
    assert cache.reasons == ("a, b, c: disk on local SR 'Local storage src' which the host cannot see",)
    lines = plan.refusal()
    assert lines[0] == "1 of 3 VMs cannot leave (cache); nothing was moved:"
    assert lines[1].startswith("  ✗ cache: a, b, c: disk on local SR")


def test_refusal_names_every_blocked_vm_and_why_per_host():
    hosts = [SRC, host("a", 30), host("b", 30)]
    vms = [vm("cache", 4), vm("db", 8), vm("web", 2)]
    checks = all_ok(
        vms,
        hosts,
        cache={"a": ["disk on local SR 'L' which a cannot see"], "b": ["disk on local SR 'L' which b cannot see"]},
        db={"a": ["CPU of a is incompatible"], "b": ["network 'VM network' is missing on b"]},
    )
    plan = plan_moves(vms, hosts, checks)
    assert [p.vm.name for p in plan.blocked] == ["db", "cache"]
    db = plan.blocked[0]
    assert db.reasons == ("a: CPU of a is incompatible", "b: network 'VM network' is missing on b")
    text = "\n".join(plan.refusal())
    assert "2 of 3 VMs cannot leave (db, cache)" in text
    assert "✗ db: a: CPU of a is incompatible; b: network 'VM network' is missing on b" in text
    assert "✗ cache: a, b: disk on local SR 'L' which the host cannot see" in text


def test_a_failed_or_missing_pre_check_is_a_reason_not_a_destination():
    hosts = [SRC, host("a", 30), host("b", 30)]
    vms = [vm("web", 2)]
    checks = {"V-web": {"H-a": ConnectionError("connection refused")}}  # nothing for b
    (p,) = plan_moves(vms, hosts, checks).blocked
    assert p.reasons == (
        "a: the pre-check failed: ConnectionError: connection refused",
        "b: the move to b was not pre-checked",
    )


def test_a_vm_that_is_not_running_cannot_be_live_migrated():
    hosts = [SRC, host("a", 30)]
    vms = [vm("off", 2, power_state=PowerState.HALTED)]
    (p,) = plan_moves(vms, hosts, all_ok(vms, hosts)).blocked
    assert p.why == "it is halted; only a running VM can be live-migrated"


def test_host_names_are_replaced_as_whole_words_only_when_grouping():
    hosts = [SRC, host("h1", 30), host("h10", 30)]
    vms = [vm("web", 2)]
    checks = all_ok(vms, hosts, web={"h1": ["h10 mirrors h1"], "h10": ["h10 mirrors h1"]})
    (p,) = plan_moves(vms, hosts, checks).blocked
    assert p.reasons == ("h1: h10 mirrors h1", "h10: h10 mirrors h1")  # not the same words


def test_evacuees_are_the_running_vms_of_the_host():
    vms = [vm("a", 1), vm("b", 1, power_state=PowerState.PAUSED), vm("c", 1, on="other")]
    assert [v.name for v in evacuees(vms, "H-src")] == ["a"]


def test_the_dry_run_table():
    hosts = [SRC, host("xcp-lab-2", 30)]
    vms = [vm("web-01", 2), vm("cache-01", 4)]
    checks = all_ok(vms, hosts, cache_01={"xcp-lab-2": ["disk on local SR 'L' which xcp-lab-2 cannot see"]})
    plan = plan_moves(vms, hosts, checks)
    assert plan_rows(plan) == [
        ("cache-01", "4.0 GiB", "src", "blocked: xcp-lab-2: disk on local SR 'L' which xcp-lab-2 cannot see"),
        ("web-01", "2.0 GiB", "src", "xcp-lab-2"),
    ]
    assert plan_table(plan) == [
        "VM         MEMORY  FROM  TO",
        "cache-01  4.0 GiB  src   blocked: xcp-lab-2: disk on local SR 'L' which xcp-lab-2 cannot see",
        "web-01    2.0 GiB  src   xcp-lab-2",
    ]


def test_a_vm_with_a_local_disk_is_flagged_for_storage_motion():
    hosts = [SRC, host("a", 20)]
    vms = [vm("local", 2)]
    checks = {
        "V-local": {
            "H-a": MigrationCheck(
                vm="V-local",
                host="H-a",
                problems=("disk on local SR 'L' which a cannot see",),
                codes=("VM_REQUIRES_SR",),
            )
        }
    }
    plan = plan_moves(vms, hosts, checks)
    assert not plan.ok and plan.needs_storage_motion == ("local",)
    # the same problem in a plan made with the copy is not the copy's to solve
    assert plan_moves(vms, hosts, checks, storage={"V-local": (("xvda", "SR-s"),)}).needs_storage_motion == ()


def test_a_placement_with_a_copy_carries_the_disk_map_and_the_words():
    hosts = [SRC, host("a", 20)]
    vms = [vm("local", 2), vm("shared", 1)]
    copies = ("disk xvda: 30 GiB from 'L' to 'S'", "30 GiB in all: about 30 s at 1024 MiB/s")
    checks = all_ok(vms, hosts)
    checks["V-local"]["H-a"] = MigrationCheck(vm="V-local", host="H-a", copies=copies, copy_bytes=30 * GiB)
    plan = plan_moves(vms, hosts, checks, storage={"V-local": (("xvda", "SR-s"),)})
    assert plan.ok
    by_name = {p.vm.name: p for p in plan.moves}
    assert by_name["local"].disk_srs == (("xvda", "SR-s"),) and by_name["local"].copies == copies
    assert by_name["shared"].disk_srs == () and by_name["shared"].copies == ()
    from poolctl.migration.batch import migration_plan
    from poolctl.model import MigrationOptions

    options = MigrationOptions(live=True)
    assert migration_plan("lab", by_name["local"], options=options).options.disk_srs == (("xvda", "SR-s"),)
    assert migration_plan("lab", by_name["shared"], options=options).options is options
