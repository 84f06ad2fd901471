"""The benchmarks still run: quick mode end to end, every figure present and either a
number or an explicit "not available (reason)". Speed targets are not asserted here."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# The figures, by key, at the quick sizes (3x12 and 4x300). Listed here rather than
# read from the benchmark code so a figure that silently disappears fails this test.
EXPECTED = {
    "sim.generate",
    "sim.vm_records.jsonrpc",
    "sim.vm_records.xmlrpc",
    "xapi.load_calls.3x12",
    "xapi.load_calls.4x300",
    "xapi.load_growth",
    "xapi.load_time",
    "xapi.load_time.xmlrpc",
    "xapi.idle_calls_per_s",
    "xapi.idle_other_calls",
    "cli.version",
    "cli.help",
    "rss.app",
    "rss.backend",
    "rss.simulator",
    "tui.launch.3x12",
    "tui.launch.4x300",
    "tui.complete.4x300",
    "tui.filter.median",
    "tui.filter.p95",
    "tui.event",
    "tui.live_after_paint",
    "pty.idle",
    "pty.scroll",
    "pty.migration",
    "pty.app_rss",
}


@pytest.mark.timeout(120)
def test_quick_benchmarks_report_every_figure(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    figures = {f["key"]: f for f in doc["figures"]}
    assert set(figures) == EXPECTED, f"missing {EXPECTED - set(figures)}, unexpected {set(figures) - EXPECTED}"
    for key, fig in figures.items():
        assert not fig["error"], f"{key} crashed: {fig['unavailable']}\n{proc.stderr[-3000:]}"
        if fig["value"] is None:
            assert fig["unavailable"], f"{key}: no value and no reason"
            assert f"not available ({fig['unavailable']})" in proc.stdout or "not available [" in proc.stdout
        else:
            assert isinstance(fig["value"], (int, float)) and math.isfinite(fig["value"]), key
            if fig["target"] is not None:
                assert fig["ok"] in (True, False), key
    # The table names every figure.
    for fig in figures.values():
        assert fig["label"] in proc.stdout
