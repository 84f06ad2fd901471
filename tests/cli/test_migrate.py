"""`poolctl migrate` end to end: a real `poolctl` process against the XAPI simulator served from
this test, configured through a config file; pings go to the lab VMs' loopback addresses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from poolctl.sim.xapi import Simulator
from tests.support.cli import config_file, run

pytestmark = pytest.mark.timeout(120)

PASSWORD = "cli-migrate-secret-7"


@pytest.fixture
def sim() -> Iterator[tuple[Simulator, str]]:
    s = Simulator.from_scenario("lab", password=PASSWORD, migration_seconds=3.0)
    server = s.serve(host="127.0.0.1", port=0)
    try:
        yield s, server.url
    finally:
        s.close()


@pytest.fixture
def env(tmp_path, sim) -> dict[str, str]:
    url = sim[1]
    cfg = config_file(
        tmp_path,
        f'[[pool]]\nname = "lab"\nbackend = "xen"\nurl = "{url}"\nusername = "root"\npassword = "{PASSWORD}"\n',
    )
    return {"POOLCTL_CONFIG": str(cfg), "POOLCTL_STATE_DIR": str(tmp_path / "state")}


def resident(sim: Simulator, vm: str) -> str:
    return sim.db.field("host", sim.db.field("VM", sim.vm_ref(vm), "resident_on"), "name_label")


def log(env) -> list[dict]:
    return [json.loads(line) for line in (Path(env["POOLCTL_STATE_DIR"]) / "migrations.jsonl").read_text().splitlines()]


def test_migrate_prints_progress_and_ping_summary(sim, env):
    proc = run("migrate", "web-01", "xcp-lab-2", env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith("Migrating web-01 (lab): xcp-lab-1 → xcp-lab-2\n")
    assert "copying memory" in out and "done 100%" in out
    assert "Migration complete in " in out and "web-01 now runs on xcp-lab-2" in out
    assert "pings to 127.0.10.11: " in out and ", 0 lost, longest gap " in out
    assert "hypervisor downtime: not reported by the xen backend" in out
    assert resident(sim[0], "web-01") == "xcp-lab-2"
    (entry,) = log(env)
    assert entry["result"] == "success" and entry["ping_lost"] == 0 and entry["ping_sent"] >= 20
    assert PASSWORD not in json.dumps(entry) and PASSWORD not in proc.stdout + proc.stderr


def test_watch_prints_a_live_line(sim, env):
    proc = _start(env, "app-01", "xcp-lab-1", "--watch", "--interval", "0.05", text=False)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    live = next(line for line in out.decode().split("\n") if "\r" in line)  # raw: universal newlines eat \r
    frames = [f.removesuffix("\x1b[K") for f in live.split("\r") if f]
    assert len(frames) >= 8  # ~4 per second for 3 s
    assert any("copying memory" in f and "% " in f and "| ping 127.0.10.41: sent " in f for f in frames)
    assert "lost 0" in frames[-1]


def test_unusable_destination_prints_problems_and_refuses(sim, env):
    proc = run("migrate", "cache-01", "xcp-lab-3", env=env)
    assert proc.returncode == 5
    assert proc.stderr.splitlines()[0] == "poolctl: cannot migrate cache-01 to xcp-lab-3:"
    assert "  ✗ not enough free memory on xcp-lab-3" in proc.stderr
    assert "Local storage xcp-lab-1" in proc.stderr and "Traceback" not in proc.stderr
    assert resident(sim[0], "cache-01") == "xcp-lab-1"
    assert not (Path(env["POOLCTL_STATE_DIR"]) / "migrations.jsonl").exists()  # nothing started


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (("nosuchvm", "xcp-lab-2"), 4, "no VM named 'nosuchvm' in lab"),
        (("web-01", "nosuchhost"), 4, "has no host(s) named 'nosuchhost'; hosts: xcp-lab-1, xcp-lab-2, xcp-lab-3"),
        (("web-01", "xcp-lab-2", "--pool", "other"), 4, "no pool named 'other'"),
        (("test-01", "xcp-lab-2"), 5, "it is halted; only a running VM can be live-migrated"),
        (("web-01", "xcp-lab-2", "--port", "70000"), 2, "expected a TCP port 1-65535"),
        (("web-01", "xcp-lab-2", "--interval", "20"), 2, "expected 0.001 to 10 seconds, got 20.0"),
    ],
)
def test_bad_requests_say_why(sim, env, args, code, words):
    proc = run("migrate", *args, env=env)
    assert proc.returncode == code, proc.stderr
    assert words in proc.stderr and "Traceback" not in proc.stderr


def test_a_pool_that_fails_is_named_like_in_ls_and_the_others_are_searched(sim, env):
    cfg = Path(env["POOLCTL_CONFIG"])
    cfg.write_text(cfg.read_text() + '\n[[pool]]\nname = "gone"\nbackend = "xen"\nurl = "http://127.0.0.1:9"\n')
    proc = run("migrate", "nosuchvm", "xcp-lab-2", env=env)
    assert proc.returncode == 1, proc.stderr
    first, second = proc.stderr.splitlines()
    assert first.startswith("poolctl: pool 'gone' (xen): ")
    assert second == "poolctl: no VM named 'nosuchvm' in lab; not searched: gone (see above)"


def test_wrong_password_is_exit_3(sim, env, tmp_path):
    cfg = Path(env["POOLCTL_CONFIG"])
    cfg.write_text(cfg.read_text().replace(PASSWORD, "wrong"))
    proc = run("migrate", "web-01", "xcp-lab-2", env=env)
    assert proc.returncode == 3 and "wrong" not in proc.stderr


def _start(env, *args, text: bool = True) -> subprocess.Popen:
    base = {k: v for k, v in os.environ.items() if k != "POOLCTL_CONFIG"}
    return subprocess.Popen(
        [sys.executable, "-m", "poolctl", "migrate", *args],
        env={**base, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=text,
    )


def _wait_for_task(sim: Simulator, vm: str, phase_cancellable: bool, timeout: float = 15) -> None:
    ref = sim.vm_ref(vm)
    deadline = time.monotonic() + timeout
    while True:
        ops = set(sim.db.field("VM", ref, "current_operations").values())
        tasks = [r for r in sim.db.find("task", lambda rec: rec["status"] == "pending")]
        if "pool_migrate" in ops and tasks:
            allowed = "cancel" in sim.db.field("task", tasks[0], "allowed_operations")
            progress = sim.db.field("task", tasks[0], "progress")
            if allowed == phase_cancellable and (not phase_cancellable or progress > 0.15):
                return
        assert time.monotonic() < deadline, "the migration never reached the wanted phase"
        time.sleep(0.02)


class _Output:
    """A running poolctl's stdout and stderr, read as they come: a test waits for what it printed."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self._cond = threading.Condition()
        self._lines: dict[str, list[str]] = {"out": [], "err": []}
        self._readers = [
            threading.Thread(target=self._read, args=(stream, key), daemon=True)
            for stream, key in ((proc.stdout, "out"), (proc.stderr, "err"))
        ]
        for t in self._readers:
            t.start()

    def _read(self, stream, key: str) -> None:
        for line in stream:
            with self._cond:
                self._lines[key].append(line)
                self._cond.notify_all()

    def wait_for(self, text: str, timeout: float = 30) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: any(text in line for line in self._lines["out"]), timeout):
                raise AssertionError(f"poolctl printed no {text!r} in {timeout} s: {self._lines}")

    def finish(self, timeout: float = 30) -> tuple[str, str]:
        self.proc.wait(timeout)
        for t in self._readers:
            t.join(5)
        return "".join(self._lines["out"]), "".join(self._lines["err"])


def test_ctrl_c_cancels_and_vm_stays(sim, env):
    proc = _start(env, "web-01", "xcp-lab-2")
    output = _Output(proc)
    _wait_for_task(sim[0], "web-01", phase_cancellable=True)
    output.wait_for("copying memory")  # poolctl has seen a cancellable progress report
    proc.send_signal(signal.SIGINT)
    out, err = output.finish()
    assert proc.returncode == 6, err
    assert "Ctrl-C: cancelling the migration" in err
    assert "Migration cancelled after" in out and "web-01 still runs on xcp-lab-1" in out
    assert resident(sim[0], "web-01") == "xcp-lab-1"
    assert log(env)[0]["result"] == "cancelled"


def test_ctrl_c_too_late_is_refused_and_exits_130(env, tmp_path):
    slow = Simulator.from_scenario("lab", password=PASSWORD, migration_seconds=8.0)
    server = slow.serve(host="127.0.0.1", port=0)
    try:
        cfg = Path(env["POOLCTL_CONFIG"])
        cfg.write_text(cfg.read_text().replace(cfg.read_text().split('url = "')[1].split('"')[0], server.url))
        proc = _start(env, "web-01", "xcp-lab-2")
        output = _Output(proc)
        _wait_for_task(slow, "web-01", phase_cancellable=False, timeout=30)
        output.wait_for("finishing")  # poolctl has seen the phase past the point of no return
        proc.send_signal(signal.SIGINT)
        out, err = output.finish()
        assert proc.returncode == 130, err
        assert "cannot cancel: the migration of web-01 is in its finishing phase" in err
        assert "Migration complete" in out
        assert resident(slow, "web-01") == "xcp-lab-2"
    finally:
        slow.close()


def test_config_migration_table_sets_the_ping_defaults_and_options_override_them(sim, env, tmp_path):
    cfg = Path(env["POOLCTL_CONFIG"])
    cfg.write_text("[migration]\nping_interval = 0.5\nping_port = 22\n\n" + cfg.read_text())
    proc = run("migrate", "web-01", "xcp-lab-2", env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "\n  ping 127.0.10.11 every 0.5 s, TCP port 22 where ICMP is not permitted\n" in proc.stdout
    rec = log(env)[0]
    # a probe every 0.5 s over the move and its 1 s tail, not every 0.1 s
    assert 0 < rec["ping_sent"] <= (rec["duration_s"] + 1.0) / 0.5 + 3, rec
    proc = run("migrate", "web-01", "xcp-lab-1", "--interval", "0.2", "--port", "2222", env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "\n  ping 127.0.10.11 every 0.2 s, TCP port 2222 where ICMP is not permitted\n" in proc.stdout


def test_bad_migration_table_is_one_line_naming_file_and_line(sim, env):
    cfg = Path(env["POOLCTL_CONFIG"])
    cfg.write_text(cfg.read_text() + "\n[migration]\nping_interval = 0\n")
    proc = run("migrate", "web-01", "xcp-lab-2", env=env, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{cfg}:9: migration.ping_interval: expected seconds between pings" in lines[0], lines


def test_progress_lines_carry_a_backends_note_but_not_a_failures_words():
    from poolctl.cli.migrate import _note
    from poolctl.model import MigrationPhase, MigrationProgress

    note = "max downtime 30 ms not applied (unsupported); QEMU's default limit applies"
    assert _note(MigrationProgress(phase=MigrationPhase.COPYING, message=note)) == f"  ({note})"
    assert _note(MigrationProgress(phase=MigrationPhase.COPYING)) == ""
    assert _note(MigrationProgress(phase=MigrationPhase.FAILED, message="HOST_OFFLINE")) == ""


def test_dry_run_prints_the_tuning_and_the_prediction_and_moves_nothing(sim, env):
    proc = run("migrate", "web-01", "xcp-lab-2", "--dry-run", "--bandwidth", "8", "--interval", "0.05", env=env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "Dry run for web-01 (lab): xcp-lab-1 → xcp-lab-2; nothing moves"
    head = next(line for line in lines if "tuning auto: memory" in line)
    assert "dirty rate not measurable on xen" in head and "no past move between these hosts" in head
    assert any("not offered by this backend: max-downtime, bandwidth" in line for line in lines)
    predicted = next(line for line in lines if "predicted: " in line)
    assert " pre-copy passes, pause " in predicted and "probes lost" in predicted
    assert "poolctl: warning: --bandwidth is not offered by the xen backend; ignored" in proc.stderr
    assert resident(sim[0], "web-01") == "xcp-lab-1"
    assert not (Path(env["POOLCTL_STATE_DIR"]) / "migrations.jsonl").exists()


def test_a_move_records_prediction_and_measurement_side_by_side(sim, env):
    proc = run("migrate", "web-01", "xcp-lab-2", "--tune", "off", env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "tuning off: memory" in proc.stdout
    table = proc.stdout[proc.stdout.index("predicted   measured") :].splitlines()
    label, predicted, s1, measured, s2 = table[1].split()
    assert (label, s1, s2) == ("duration", "s", "s") and float(predicted) > 0 and float(measured) > 0
    assert any(row.split()[:2] == ["lost", "probes"] and row.split()[-1] == "0" for row in table)
    (entry,) = log(env)
    assert entry["predicted"]["duration_s"] > 0 and entry["measured"]["duration_s"] > 0
    assert entry["measured"]["lost_probes"] == 0 and entry["tuning"][0].startswith("not offered by this backend")


def test_tuning_options_take_one_vm(sim, env):
    proc = run("migrate", "web-01", "app-01", "xcp-lab-2", "--max-downtime", "10", env=env)
    assert proc.returncode == 2, proc.stderr
    assert "--dry-run and the tuning options take one VM" in proc.stderr
