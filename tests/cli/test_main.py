"""The `poolctl` command as a user runs it: a subprocess, its exit code, stdout and stderr."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from tests.support.cli import config_file, one_line_error, run

pytestmark = pytest.mark.timeout(60)


TWO_POOLS = """\
[[pool]]
name = "lab"
backend = "xen"
url = "http://127.0.0.1:9"

[[pool]]
name = "rack2"
backend = "kvm"
uris = ["test:///default"]
"""


def test_version():
    proc = run("--version")
    assert proc.returncode == 0
    from poolctl import __version__

    assert proc.stdout.strip() == f"poolctl {__version__}"


def test_version_and_help_import_nothing_heavy():
    for flag in ("--version", "--help"):
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "poolctl", flag],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
        assert "poolctl.cli" in imported
        heavy = {m for m in imported if m.split(".")[0] in {"textual", "pydantic", "rich", "XenAPI", "libvirt"}}
        heavy |= {m for m in imported if m.startswith(("poolctl.backends", "poolctl.tui", "poolctl.config"))}
        assert not heavy, f"{flag} imports {sorted(heavy)}"


def test_help_documents_commands_and_exit_codes():
    proc = run("--help")
    assert proc.returncode == 0
    for text in (
        "ls",
        "simulate",
        "--demo",
        "--config",
        "exit codes:",
        "3  authentication failed",
        "4  nothing matched",
        "POOLCTL_CONFIG",
    ):
        assert text in proc.stdout, text
    assert "migrate" in proc.stdout  # listed now that it exists (tests/test_cli_migrate.py covers it)
    migrate_help = run("migrate", "--help")
    assert migrate_help.returncode == 0 and "5    refused before starting" in migrate_help.stdout
    ls_help = run("ls", "--help")
    assert ls_help.returncode == 0 and "--json" in ls_help.stdout and "--pool NAME" in ls_help.stdout


def test_exit_code_sections_come_from_the_one_table():
    from poolctl.errors import ExitCode

    # by module path: the package's ``main`` is the entry-point function
    epilogs = {name: importlib.import_module(f"poolctl.cli.{name}").EPILOG for name in ("main", "migrate_args")}
    listed = {
        name: {ExitCode(int(line.split()[0])) for line in text.split("exit codes:\n")[1].split("\n\n")[0].splitlines()}
        for name, text in epilogs.items()
    }
    assert listed["migrate_args"] == set(ExitCode)
    assert listed["main"] == {ExitCode.OK, ExitCode.FAILED, ExitCode.USAGE, ExitCode.AUTH, ExitCode.NO_MATCH}


def test_bad_config_exits_2_with_one_line(tmp_path):
    path = config_file(tmp_path, TWO_POOLS.replace('backend = "kvm"', 'backend = "vmware"'))
    for args in (("ls", "--config", str(path)), ("--config", str(path))):
        proc = run(*args)
        assert proc.returncode == 2
        line = one_line_error(proc)
        assert f"{path}:8:" in line and 'pool #2 ("rack2")' in line and "registered backends" in line


def test_toml_syntax_error_exits_2_naming_the_line(tmp_path):
    path = config_file(tmp_path, TWO_POOLS.replace('name = "lab"', 'name = "lab'))
    proc = run("ls", env={"POOLCTL_CONFIG": str(path)})
    assert proc.returncode == 2
    assert f"{path}:2:" in one_line_error(proc)


def test_missing_default_config_points_at_the_demo(tmp_path):
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    for args in (("ls",), ()):
        proc = run(*args, env=env)
        assert proc.returncode == 2
        line = one_line_error(proc)
        assert str(tmp_path / "poolctl" / "config.toml") in line and "poolctl --demo" in line


def test_empty_config_says_there_are_no_pools(tmp_path):
    path = config_file(tmp_path, '[keys]\n"vm.start" = "s"\n')
    proc = run("ls", "--config", str(path))
    assert proc.returncode == 2 and "no [[pool]] tables" in one_line_error(proc)


def test_unknown_pool_exits_4(tmp_path):
    path = config_file(tmp_path, TWO_POOLS)
    proc = run("ls", "--pool", "nosuch", "--config", str(path))
    assert proc.returncode == 4
    line = one_line_error(proc)
    assert "'nosuch'" in line and "lab, rack2" in line
    assert proc.stdout == ""


def test_config_option_before_the_command(tmp_path):
    path = config_file(tmp_path, TWO_POOLS)
    proc = run("--config", str(path), "ls", "--pool", "nosuch")
    assert proc.returncode == 4  # the config was read: the pools are named
    assert "lab, rack2" in proc.stderr


def test_demo_size_options_need_demo(tmp_path):
    proc = run("ls", "--hosts", "3", "--config", str(config_file(tmp_path, TWO_POOLS)))
    assert proc.returncode == 2 and "--demo" in one_line_error(proc)


def test_bad_arguments_exit_2():
    proc = run("ls", "volumes")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr and "Traceback" not in proc.stderr
    proc = run("--demo", "--hosts", "0")
    assert proc.returncode == 2 and "at least 1" in proc.stderr


def test_unreachable_pool_exits_1_naming_pool(tmp_path):
    path = config_file(tmp_path, TWO_POOLS)
    proc = run("ls", "--pool", "lab", "--config", str(path))
    assert proc.returncode == 1, proc.stderr
    line = one_line_error(proc)
    assert "pool 'lab' (xen)" in line
    assert proc.stdout == ""  # the only pool failed: no table header over nothing


def test_simulate_is_dispatched_with_its_own_arguments():
    proc = run("simulate", "--help")
    assert proc.returncode == 0 and proc.stdout.startswith("usage: poolctl simulate")
    proc = run("simulate", "--hosts", "3")  # its own rule: --hosts needs --vms
    assert proc.returncode == 2 and "--hosts and --vms go together" in proc.stderr
