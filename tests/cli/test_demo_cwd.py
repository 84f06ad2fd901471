"""`--demo` from a folder that holds a `lab` directory (an admin's home often does): the
built-in scenario is read from poolctl's package, never from the current directory."""

from __future__ import annotations

from contextlib import ExitStack

import pytest

from poolctl.sim.demo import scenario_arg, start_demo
from poolctl.sim.xapi.scenario import Scenario
from tests.support.cli import run

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def home_with_lab(tmp_path):
    (tmp_path / "lab").mkdir()
    (tmp_path / "lab" / "notes.txt").write_text("not a scenario")
    return tmp_path


def test_ls_demo_runs_from_a_folder_holding_lab(home_with_lab):
    proc = run("ls", "--demo", "hosts", cwd=home_with_lab, env={"XDG_CONFIG_HOME": str(home_with_lab / "cfg")})
    assert proc.returncode == 0, proc.stderr
    assert "xcp-lab-1" in proc.stdout and "Is a directory" not in proc.stderr


def test_the_tuis_demo_pools_start_from_a_folder_holding_lab(home_with_lab, monkeypatch):
    monkeypatch.chdir(home_with_lab)
    with ExitStack() as stack:
        pools = start_demo(stack)
        assert pools[0].name == "xen-demo"


def test_simulate_scenario_names_are_shipped_and_paths_are_files(home_with_lab, monkeypatch):
    monkeypatch.chdir(home_with_lab)
    assert isinstance(scenario_arg("lab"), Scenario)
    assert str(scenario_arg("./lab.toml")) == "lab.toml"
    assert str(scenario_arg("mine.toml")) == "mine.toml"
