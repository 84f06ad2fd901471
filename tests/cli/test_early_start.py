"""Which raw command lines start the KVM opens before they are parsed (poolctl.cli.early): the
TUI's and ``ls``'s, exactly as the parser will read them; anything else starts nothing early."""

from __future__ import annotations

from pathlib import Path

import pytest

from poolctl.cli import early


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], ("tui", None, [])),
        (["--config", "c.toml"], ("tui", Path("c.toml"), [])),
        (["--config=c.toml"], ("tui", Path("c.toml"), [])),
        (["ls"], ("ls", None, [])),
        (["ls", "vms", "--json", "--pool", "a", "--pool=b"], ("ls", None, ["a", "b"])),
        (["--config", "c.toml", "ls", "hosts", "--config", "d.toml"], ("ls", Path("d.toml"), [])),
    ],
)
def test_the_tui_and_ls_are_recognised(argv, expected):
    assert early._scan(argv) == expected


@pytest.mark.parametrize(
    "argv",
    [
        ["--demo"],
        ["--help"],
        ["-V"],
        ["--config"],  # the parser's error to give
        ["--config", "--demo"],
        ["--config="],
        ["ls", "--pool"],
        ["ls", "vms", "vms"],
        ["ls", "disks"],
        ["--pool", "a"],  # ls's option without ls
        ["migrate", "web-01", "kvm2"],
        ["completion", "bash"],
    ],
)
def test_anything_else_starts_nothing_early(argv, monkeypatch):
    started = []
    monkeypatch.setattr("poolctl.preload.start", lambda *a, **k: started.append(a))
    assert early._scan(argv) is None
    assert early.start(argv) is None
    assert not started


def test_a_recognised_line_starts_the_opens_of_its_config_and_pools(monkeypatch, tmp_path):
    started = []
    monkeypatch.setattr("poolctl.preload.start", lambda path, only=None: started.append((path, only)))
    assert early.start(["ls", "--pool", "kvm", "--config", str(tmp_path / "c.toml")]) == "ls"
    assert early.start([]) == "tui"
    assert started == [(tmp_path / "c.toml", ["kvm"]), (None, None)]


def test_the_kinds_recognised_early_are_the_parsers():
    # early.py must not import cli.main (its parser is what it starts before): the two lists are
    # kept equal here, so a kind added to ``ls`` is recognised early too
    from poolctl.cli.main import KINDS

    assert early._KINDS == KINDS
