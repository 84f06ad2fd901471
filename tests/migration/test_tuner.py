"""The tuner's choices and the predictor's figures, from the inputs alone."""

from __future__ import annotations

import math

import pytest

from poolctl.audit import MigrationRecord
from poolctl.backends.base import SwitchoverModel
from poolctl.backends.kvm.migration import SWITCHOVER as KVM
from poolctl.backends.xen.migration import SWITCHOVER as XEN
from poolctl.migration.predict import history, predict
from poolctl.migration.tuner import MIB, TuneInputs, TuneRequest, tune

KVM_OPTS = frozenset({"max_downtime_ms", "bandwidth_mib_s", "auto_converge", "post_copy", "parallel", "compress"})
GIB = 1024 * MIB


def by_name(tuning):
    return {c.name: c for c in tuning.choices}


def idle_lab_guest(**kw) -> TuneInputs:
    fields = dict(memory_bytes=128 * MIB, probe_interval_s=0.05, dirty_rate_bytes_s=0.0, dirty_rate_source="measured")
    fields.update(kw)
    return TuneInputs(**fields)


def test_idle_small_guest_gets_a_short_pause_and_a_paced_copy():
    t = tune(idle_lab_guest(), TuneRequest(), KVM_OPTS)
    o = t.options
    assert o.max_downtime_ms == 5  # a tenth of 50 ms
    assert o.bandwidth_mib_s == 21  # 128 MiB over ~6 s
    assert not o.auto_converge  # dirty rate 0: pre-copy converges alone
    assert o.post_copy and not o.post_copy_now  # allowed, only if stalled
    assert o.parallel is None
    c = by_name(t)
    assert c["max-downtime"].value == "5 ms" and "probe interval" in c["max-downtime"].reason
    assert c["auto-converge"].value == "off" and "converges alone" in c["auto-converge"].reason
    assert c["post-copy"].value == "if stalled"
    assert c["parallel"].value == "1"
    assert all(line.count(":") >= 1 and "\n" not in line for line in t.lines())


def test_probe_interval_sets_the_downtime_within_bounds():
    assert tune(idle_lab_guest(probe_interval_s=1.0), TuneRequest(), KVM_OPTS).options.max_downtime_ms == 100
    assert tune(idle_lab_guest(probe_interval_s=0.01), TuneRequest(), KVM_OPTS).options.max_downtime_ms == 5
    assert tune(idle_lab_guest(probe_interval_s=10.0), TuneRequest(), KVM_OPTS).options.max_downtime_ms == 300
    none = tune(idle_lab_guest(probe_interval_s=None), TuneRequest(), KVM_OPTS)
    assert none.options.max_downtime_ms == 50 and "no probe" in by_name(none)["max-downtime"].reason


def test_busy_guest_gets_auto_converge_and_no_cap_that_it_would_outrun():
    t = tune(idle_lab_guest(dirty_rate_bytes_s=20 * MIB), TuneRequest(), KVM_OPTS)
    assert t.options.bandwidth_mib_s is None
    assert "would not catch it" in by_name(t)["bandwidth"].reason
    assert t.options.auto_converge
    assert "20 MiB/s" in by_name(t)["auto-converge"].reason


def test_a_guest_faster_than_the_link_goes_post_copy_after_the_first_pass():
    inputs = idle_lab_guest(memory_bytes=2 * GIB, dirty_rate_bytes_s=200 * MIB, link_bytes_s=100 * MIB)
    t = tune(inputs, TuneRequest(), KVM_OPTS)
    assert t.options.post_copy and t.options.post_copy_now and t.options.auto_converge
    assert "will not converge" in by_name(t)["post-copy"].reason
    p = predict(inputs, t.options, KVM)
    assert p.converges and p.pause_ms == KVM.postcopy_switch_ms and "post-copy" in p.how


def test_big_guest_on_a_fast_link_gets_parallel_connections():
    inputs = idle_lab_guest(memory_bytes=16 * GIB, link_bytes_s=1200 * MIB, link_source="past")
    t = tune(inputs, TuneRequest(), KVM_OPTS)
    assert t.options.parallel == 4 and t.options.bandwidth_mib_s is None
    assert "pace is no slower than the link" in by_name(t)["bandwidth"].reason


def test_by_hand_wins_and_off_leaves_the_hypervisor_defaults():
    hand = TuneRequest(max_downtime_ms=30, bandwidth_mib_s=8, auto_converge=False, post_copy="never", parallel=2)
    t = tune(idle_lab_guest(dirty_rate_bytes_s=50 * MIB), hand, KVM_OPTS)
    o = t.options
    assert (o.max_downtime_ms, o.bandwidth_mib_s, o.auto_converge, o.post_copy, o.parallel) == (30, 8, False, False, 2)
    assert all(c.by_hand for c in t.choices)
    off = tune(idle_lab_guest(), TuneRequest(tune="off"), KVM_OPTS)
    assert off.options.model_dump(exclude_defaults=True) == {}
    assert [c.value for c in off.choices] == ["never"]  # only post-copy is said: off means pre-copy only
    both = tune(idle_lab_guest(), TuneRequest(tune="off", max_downtime_ms=10, post_copy="always"), KVM_OPTS)
    assert both.options.max_downtime_ms == 10 and both.options.post_copy_now


def test_a_backend_without_knobs_is_told_not_sent():
    t = tune(idle_lab_guest(), TuneRequest(bandwidth_mib_s=8), frozenset())
    assert t.options.model_dump(exclude_defaults=True) == {}
    assert all(not c.applied for c in t.choices)
    assert t.lines() == ["not offered by this backend: max-downtime, bandwidth, auto-converge, post-copy, parallel"]
    assert t.ignored() == ["bandwidth"]


def test_prediction_of_an_idle_capped_move_matches_the_lab():
    inputs = idle_lab_guest(copied_bytes=70 * MIB)
    t = tune(inputs, TuneRequest(), KVM_OPTS)
    p = predict(inputs, t.options, KVM)
    # lab, 16 MiB/s + 5 ms: 6.1-6.4 s, 4 passes reported, libvirt downtime 25-40 ms, 0-1 lost
    assert p.converges and 4.0 < p.duration_s < 8.0
    assert 20 <= p.pause_ms <= 40
    assert p.lost_probes is not None and 0.4 <= p.lost_probes <= 0.8
    assert p.as_record()["duration_s"] == round(p.duration_s, 2)


def test_prediction_without_help_does_not_converge():
    inputs = idle_lab_guest(dirty_rate_bytes_s=500 * MIB, link_bytes_s=100 * MIB)
    p = predict(inputs, tune(inputs, TuneRequest(tune="off"), KVM_OPTS).options, KVM)
    assert not p.converges and math.isinf(p.duration_s)
    assert "does not converge" in p.line() and p.as_record()["duration_s"] is None


def test_prediction_rounds_grow_with_the_dirty_rate():
    base = dict(memory_bytes=1 * GIB, probe_interval_s=0.1, link_bytes_s=100 * MIB)
    quiet = predict(
        TuneInputs(dirty_rate_bytes_s=1 * MIB, **base), tune(TuneInputs(**base), TuneRequest(), KVM_OPTS).options, KVM
    )
    busy = predict(
        TuneInputs(dirty_rate_bytes_s=40 * MIB, **base), tune(TuneInputs(**base), TuneRequest(), KVM_OPTS).options, KVM
    )
    assert busy.passes > quiet.passes and busy.duration_s > quiet.duration_s


@pytest.mark.parametrize("model", [KVM, XEN, SwitchoverModel()])
def test_every_backend_model_predicts(model):
    p = predict(
        TuneInputs(memory_bytes=4 * GIB, probe_interval_s=0.1),
        tune(TuneInputs(memory_bytes=4 * GIB, probe_interval_s=0.1), TuneRequest(), frozenset()).options,
        model,
    )
    assert p.converges and p.duration_s > model.setup_s and p.pause_ms > 0


def _rec(**kw) -> MigrationRecord:
    fields = dict(
        id="x", time="t", pool="lab", vm="pingvm", vm_uuid="u1", source="hostA", destination="hostB", result="success"
    )
    fields.update(kw)
    return MigrationRecord(**fields)


def test_history_reads_uncapped_moves_between_the_pair_either_way():
    records = [
        _rec(measured={"copy_rate_mib_s": 200.0, "copied_mib": 70.0}),
        _rec(source="hostB", destination="hostA", measured={"copy_rate_mib_s": 100.0, "copied_mib": 60.0}),
        _rec(options={"bandwidth_mib_s": 16}, measured={"copy_rate_mib_s": 16.0, "copied_mib": 80.0}),  # capped
        _rec(destination="hostC", measured={"copy_rate_mib_s": 999.0}),  # another pair
        _rec(result="failed", measured={"copy_rate_mib_s": 999.0}),
        _rec(pool="other", measured={"copy_rate_mib_s": 999.0}),
    ]
    h = history(records, pool="lab", source="hostA", destination="hostB", vm_uuid="u1")
    assert h.link_bytes_s == 150 * MIB and "2 uncapped moves" in h.link_source
    assert h.copied_bytes == 70 * MIB  # median of 70, 60, 80 (the capped move copied as much)
    empty = history([], pool="lab", source="hostA", destination="hostB", vm_uuid="u1")
    assert empty.link_bytes_s is None and empty.copied_bytes is None


def test_uncapped_moves_predict_the_overshoot_measured_in_the_lab():
    inputs = idle_lab_guest()
    off = predict(inputs, tune(inputs, TuneRequest(tune="off"), KVM_OPTS).options, KVM)
    assert off.pause_ms == 50 + KVM.device_state_ms + KVM.resume_ms  # lab: 43-227 ms, median 120
    busy = idle_lab_guest(dirty_rate_bytes_s=28 * MIB)
    tuned = predict(busy, tune(busy, TuneRequest(), KVM_OPTS).options, KVM)
    assert tuned.pause_ms == 15 + KVM.device_state_ms + KVM.resume_ms  # lab: 26-55 ms


def test_a_disk_copy_comes_first_in_the_predicted_duration():
    """Storage motion: the disks are copied before the memory, so their estimate adds to the
    move's duration and is said; the pause and the lost probes are the memory's alone."""
    from dataclasses import replace

    inputs = TuneInputs(memory_bytes=128 * MIB, probe_interval_s=0.05, dirty_rate_bytes_s=0.0)
    options = tune(inputs, TuneRequest(), KVM_OPTS).options
    memory_only = predict(inputs, options, KVM)
    with_disks = predict(replace(inputs, disk_copy_s=30.0), options, KVM)
    assert with_disks.duration_s == pytest.approx(memory_only.duration_s + 30.0)
    assert (with_disks.pause_ms, with_disks.lost_probes) == (memory_only.pause_ms, memory_only.lost_probes)
    assert "(disks 30.0 s)" in with_disks.short() and "the disks first, about 30 s" in with_disks.line()
    long = predict(replace(inputs, disk_copy_s=30 * 60.0), options, KVM)
    assert "(disks 30.0 min)" in long.short() and len(long.short()) <= 76  # the dialog's width at 80x24
    assert with_disks.as_record()["disk_s"] == 30.0 and "disk_s" not in memory_only.as_record()


def test_a_move_whose_hypervisor_reports_no_throughput_still_teaches_the_next_prediction():
    """XAPI reports no copy rate: the move's own (memory over its duration less the predictor's
    set-up) is kept, so the next prediction between the pair is the last move's duration."""
    from poolctl.migration.compare import measured
    from poolctl.model import MigrationResult

    memory = 2048 * MIB
    done = MigrationResult(vm="v", source="a", destination="b", outcome="success", host="b", duration_s=8.0)
    figures = measured(done, None, 0.1, memory, XEN.setup_s)
    assert figures["copy_rate_mib_s"] == pytest.approx(2048 / (8.0 - XEN.setup_s), rel=0.01)
    assert "copy_rate_mib_s" not in measured(done, None, 0.1)  # memory not known: nothing invented
    record = MigrationRecord(
        id="1", time="2026-12-04T18:00:00+00:00", pool="lab", vm="web-01", source="a", destination="b",
        result="success", duration_s=8.0, measured=figures,
    )  # fmt: skip
    past = history([record], pool="lab", source="b", destination="a", vm_uuid="")
    inputs = TuneInputs(memory_bytes=memory, probe_interval_s=0.1, link_bytes_s=past.link_bytes_s)
    assert predict(inputs, tune(inputs, TuneRequest(), frozenset()).options, XEN).duration_s == pytest.approx(
        8.0, abs=0.3
    )
