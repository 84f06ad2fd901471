"""The recorder's bookkeeping: in-order release, counters, RTT stats and the gap definition.

These feed synthetic send times and outcomes straight into the real Recorder, so the
gap arithmetic is checked exactly; the live tests check it against real packets.
"""

import threading

import pytest

from poolctl.ping.stats import Recorder, Sample

STEP = 0.1  # interval


def run(outcomes, interval=STEP, history=600):
    """Send one probe per outcome on an exact grid, resolve in order; return the recorder."""
    rec = Recorder(interval, history)
    released = []
    for seq, rtt in enumerate(outcomes):
        rec.probe_sent(seq, 100.0 + seq * interval)
        released += rec.resolve(seq, rtt)
    return rec, released


def snap(rec):
    return rec.snapshot(address="a", method="m", running=False)


def test_no_loss_gap_is_one_interval_and_rtt_stats():
    rec, released = run([1.0, 3.0, 2.0, 2.0])
    s = snap(rec)
    assert (s.sent, s.received, s.lost, s.in_flight) == (4, 4, 0, 0)
    assert s.longest_gap_s == pytest.approx(STEP)
    assert s.current_gap_s == 0.0
    assert (s.min_rtt_ms, s.avg_rtt_ms, s.max_rtt_ms, s.last_rtt_ms) == (1.0, 2.0, 3.0, 2.0)
    assert s.loss_pct == 0.0
    assert [x.seq for x in released] == [0, 1, 2, 3]


def test_losses_between_replies_make_gap_k_plus_one_intervals():
    rec, _ = run([1.0, None, None, None, 1.0, None, 1.0])
    s = snap(rec)
    assert (s.received, s.lost) == (3, 4)
    assert s.longest_gap_s == pytest.approx(4 * STEP)  # 3 lost in a row
    assert s.loss_pct == pytest.approx(100 * 4 / 7)
    assert s.current_gap_s == 0.0


def test_trailing_losses_count_as_open_gap_up_to_next_probe():
    rec, _ = run([1.0, 1.0, None, None, None])
    s = snap(rec)
    # last reply sent at 1*STEP; latest lost sent at 4*STEP -> gap if probe 5 answered = 4*STEP
    assert s.longest_gap_s == pytest.approx(4 * STEP)
    assert s.current_gap_s == pytest.approx(4 * STEP)
    assert s.last_rtt_ms == 1.0


def test_a_closed_stretch_counts_as_measured_not_as_estimated():
    rec = Recorder(STEP)
    # the lost probe went out 5 ms late; the next one, on its absolute deadline, is answered
    for seq, (sent, rtt) in enumerate([(100.0, 1.0), (100.1 + 0.005, None), (100.2, 1.0)]):
        rec.probe_sent(seq, sent)
        rec.resolve(seq, rtt)
    s = snap(rec)
    assert s.longest_gap_s == pytest.approx(2 * STEP)  # not 100.105 + STEP - 100.0
    assert s.current_gap_s == 0.0


def test_never_answered_counts_from_first_probe():
    rec, _ = run([None] * 6)
    s = snap(rec)
    assert (s.sent, s.received, s.lost) == (6, 0, 6)
    assert s.longest_gap_s == pytest.approx(6 * STEP)
    assert s.loss_pct == 100.0
    assert s.min_rtt_ms is None and s.avg_rtt_ms is None and s.last_rtt_ms is None


def test_late_start_then_replies_gap_from_start():
    rec, _ = run([None, None, 1.0, 1.0])
    assert snap(rec).longest_gap_s == pytest.approx(2 * STEP)


def test_out_of_order_resolution_releases_in_sequence_order():
    rec = Recorder(STEP)
    for seq in range(4):
        rec.probe_sent(seq, 100.0 + seq * STEP)
    # replies for 1..3 arrive while probe 0 is still pending (it will time out)
    assert rec.resolve(1, 0.5) == []
    assert rec.resolve(3, 0.5) == []
    assert rec.in_flight == 2
    s = snap(rec)
    assert (s.received, s.lost, s.in_flight) == (0, 0, 2)
    released = rec.resolve(0, None)
    assert [(x.seq, x.rtt_ms) for x in released] == [(0, None), (1, 0.5)]
    assert [x.seq for x in rec.resolve(2, 0.7)] == [2, 3]
    assert [x.seq for x in rec.samples()] == [0, 1, 2, 3]
    s = snap(rec)
    assert (s.received, s.lost, s.in_flight) == (3, 1, 0)
    assert s.longest_gap_s == pytest.approx(STEP)  # start to first reply (seq 1)


def test_first_outcome_wins_late_reply_after_timeout_is_ignored():
    rec = Recorder(STEP)
    rec.probe_sent(0, 1.0)
    assert rec.resolve(0, None) == [Sample(0, 1.0, None)]
    assert rec.resolve(0, 5.0) == []  # the reply came after the timeout
    assert rec.resolve(7, 5.0) == []  # never sent
    s = snap(rec)
    assert (s.sent, s.received, s.lost) == (1, 0, 1)


def test_ring_keeps_only_recent_samples_but_stats_cover_the_run():
    rec, _ = run([None] + [1.0] * 9, history=3)
    assert [x.seq for x in rec.samples()] == [7, 8, 9]
    s = snap(rec)
    assert (s.sent, s.received, s.lost) == (10, 9, 1)
    assert s.longest_gap_s == pytest.approx(STEP)


def test_send_errors_and_last_error_recorded():
    rec = Recorder(STEP)
    rec.note_error("send to 10.0.0.1 failed: Network is unreachable", send=True)
    rec.note_error("destination unreachable (code 1) for 10.0.0.1")
    s = snap(rec)
    assert s.send_errors == 1
    assert s.last_error == "destination unreachable (code 1) for 10.0.0.1"


def test_snapshot_is_frozen_and_samples_are_copies():
    rec, _ = run([1.0])
    s = snap(rec)
    with pytest.raises(AttributeError):
        s.sent = 5  # type: ignore[misc]
    copy = rec.samples()
    copy.clear()
    assert len(rec.samples()) == 1
    assert Sample(0, 1.0, None).lost and not Sample(0, 1.0, 2.0).lost


def test_concurrent_writers_and_readers_stay_consistent():
    rec = Recorder(0.001, history=50)
    n = 4000
    errors = []

    def writer():
        for seq in range(n):
            rec.probe_sent(seq, seq * 0.001)
            rec.resolve(seq, None if seq % 4 == 0 else 1.0)

    def reader():
        while t.is_alive():
            s = snap(rec)
            if s.received + s.lost + s.in_flight != s.sent:
                errors.append(s)
            if len(rec.samples()) > 50:
                errors.append("ring overflow")

    t = threading.Thread(target=writer)
    t.start()
    reader()
    t.join()
    assert errors == []
    s = snap(rec)
    assert (s.sent, s.lost, s.received) == (n, n // 4, n - n // 4)
    assert s.longest_gap_s == pytest.approx(0.002)
