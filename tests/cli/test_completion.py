"""`poolctl completion bash|zsh`: generated from the parser, so every command is in it."""

from __future__ import annotations

import subprocess

from tests.support.cli import run


def test_bash_completion_is_valid_bash_and_knows_the_commands(tmp_path):
    proc = run("completion", "bash")
    assert proc.returncode == 0, proc.stderr
    script = tmp_path / "poolctl.bash"
    script.write_text(proc.stdout)
    check = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    for word in ("ls", "migrate", "evacuate", "host", "--demo", "--pool", "completion"):
        assert word in proc.stdout
    # sourced, it registers a completion for poolctl
    registered = subprocess.run(
        ["bash", "-c", f"source {script} && complete -p poolctl"], capture_output=True, text=True
    )
    assert registered.returncode == 0 and "poolctl" in registered.stdout, registered.stderr


def test_zsh_completion_is_a_compdef_for_poolctl():
    proc = run("completion", "zsh")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("#compdef poolctl")
    assert "migrate" in proc.stdout and "evacuate" in proc.stdout


def test_an_unknown_shell_is_a_usage_error():
    proc = run("completion", "fish")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr
