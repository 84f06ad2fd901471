"""The virsh-vs-poolctl migration benchmark's own logic (the benchmark itself needs the lab:
``sudo .venv/bin/python -m benchmarks.kvm_virsh_vs_poolctl``)."""

from __future__ import annotations

from benchmarks.kvm_virsh_vs_poolctl import Sample, parse_downtime, summarize, table

# `virsh domjobinfo --completed pingvm` on the destination after a lab migration (libvirt 9.0)
COMPLETED = """\
Job type:         Completed   
Operation:        Incoming migration
Time elapsed:     505          ms
Time elapsed w/o network: 504          ms
Data processed:   69.520 MiB
Memory total:     128.758 MiB
Iteration:        2           
Total downtime:   61           ms
Downtime w/o network: 60           ms
Setup time:       1            ms
"""


def test_downtime_read_from_virsh_domjobinfo():
    assert parse_downtime(COMPLETED) == 61.0
    # already read once (libvirt drops completed stats): no figure rather than a wrong one
    assert parse_downtime("Job type:         None        \n") is None


def test_table_reports_poolctl_minus_virsh_per_direction():
    samples = []
    for i, wall in enumerate((2.0, 2.2, 2.6)):
        samples.append(Sample("virsh", "hostA", "hostB", wall, 100.0 + i, 50, i, 0.2))
        samples.append(Sample("poolctl", "hostA", "hostB", wall + 0.1, 90.0 + i, 50, 0, 0.1))
        samples.append(Sample("virsh", "hostB", "hostA", wall, None, 50, 0, 0.3))
        samples.append(Sample("poolctl", "hostB", "hostA", wall, 50.0, 50, 1, 0.3))
    # a failed migration is counted, never mixed into the medians or the ping figures
    samples.append(Sample("poolctl", "hostA", "hostB", 30.5, None, 310, 2, 0.4, error="failed: keepalive timeout"))
    row = summarize(samples, "virsh", "A->B")
    assert (row["runs"], row["wall_s"], row["downtime_ms"], row["lost"], row["sent"]) == (3, 2.2, 101.0, 3, 150)
    assert summarize(samples, "virsh", "B->A")["downtime_missing"] == 3
    failed = summarize(samples, "poolctl", "A->B")
    assert (failed["runs"], failed["failed"], failed["sent"]) == (3, 1, 150)
    assert abs(failed["wall_s"] - 2.3) < 1e-9
    text = table(samples, startup_s=0.03)
    assert "A->B  wall +0.100 s, downtime -10 ms, lost -3 probes, gap -0.100 s, failed +1" in text
    assert "B->A  wall +0.000 s, downtime n/a ms, lost +3 probes, gap +0.000 s, failed +0" in text
    assert "3 n/a" in text  # virsh B->A had no downtime figure: said so, not hidden
