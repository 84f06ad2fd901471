"""tests/conftest.py: without root the lab tests are deselected with one line saying why and
how to run them; as root they are collected as before. Checked with a real `pytest` run as an
unprivileged user (collect only: nothing of the lab is started)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import lab_hint

ROOT = Path(__file__).resolve().parents[1]
LAB_FILE = "tests/lab/test_lab_raw.py"
NO_TESTS_COLLECTED = 5  # pytest's exit status when everything was deselected

pytestmark = pytest.mark.timeout(60)


def _collect(prefix: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1", "HOME": "/tmp"}
    return subprocess.run(
        [*prefix, sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--collect-only", LAB_FILE],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=50,
    )


def _unprivileged() -> list[str]:
    """A command prefix that runs as nobody (nothing when this run is unprivileged already).

    setpriv drops to the real nobody; where nobody cannot read this checkout (a clone under
    /root), a user namespace gives the run euid 65534 while the files stay readable."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    prefix = [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups"] if setpriv else []
    if prefix:
        probe = subprocess.run([*prefix, sys.executable, "-c", f"open({str(ROOT / LAB_FILE)!r})"], capture_output=True)
        if probe.returncode == 0:
            return prefix
    unshare = shutil.which("unshare")
    assert unshare, "neither setpriv nor unshare (util-linux) can run pytest without root here"
    return [unshare, "--user"]


def test_without_root_the_lab_is_deselected_with_one_line_saying_how_to_run_it():
    proc = _collect(_unprivileged())
    assert proc.returncode == NO_TESTS_COLLECTED, proc.stdout + proc.stderr
    found = re.search(r"no tests collected \((\d+) deselected\)", proc.stdout)
    assert found and int(found[1]) > 0, proc.stdout
    hint = lab_hint(int(found[1]))
    assert proc.stdout.splitlines().count(hint) == 1, proc.stdout
    assert "need root" in hint and "scripts/test tests/lab" in hint


@pytest.mark.skipif(os.geteuid() != 0, reason="only a root run collects the lab (CI runs as root)")
def test_as_root_the_lab_is_collected():
    proc = _collect([])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"\d+ tests? collected", proc.stdout) and "deselected" not in proc.stdout, proc.stdout
