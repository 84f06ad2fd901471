"""Names from a hypervisor are untrusted: `poolctl ls` shows them escaped and cut, never obeyed.

The names are set through the simulator's JSON-RPC endpoint (XML-RPC cannot carry ESC or BEL),
as any client of the pool could; `poolctl` runs as a subprocess, as a user runs it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from poolctl.sim.xapi import Simulator
from tests.support.cli import config_file, one_line_error, run
from tests.support.jsonrpc import JsonRpc

pytestmark = pytest.mark.timeout(120)

PASSWORD = "sim-secret-42"
OSC_TITLE = "\x1b]0;pwned\x07osc-title"
CLEAR = "\x1b[2J"
ZERO_WIDTH = "web\u200b-01"
RTL = "\u202eexe.txt"
HUGE = "h" * 10_000
MARKUP = "[bold red]boom[/]"
HOSTILE = {
    "web-01": OSC_TITLE,
    "web-02": CLEAR,
    "web-03": ZERO_WIDTH,
    "db-01": RTL,
    "db-02": HUGE,
    "app-01": MARKUP,
}
# What a terminal would act on or hide: C0/C1 controls, DEL, zero-width and bidi controls.
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


@pytest.fixture(scope="module")
def server() -> Iterator:
    srv = Simulator.from_scenario("lab", password=PASSWORD).serve(host="127.0.0.1", port=0)
    rpc = JsonRpc(srv.url, "root", PASSWORD)
    for old, new in HOSTILE.items():
        rpc.rename_vm(old, new)
    yield srv
    srv.close()


def pool_config(tmp_path, url: str, username: str = "root") -> str:
    text = f'[[pool]]\nname = "lab"\nbackend = "xen"\nurl = "{url}"\nusername = "{username}"\npassword = "{PASSWORD}"\n'
    return str(config_file(tmp_path, text))


def test_ls_shows_hostile_names_escaped_and_rows_stay_bounded(server, tmp_path):
    proc = run("ls", env={"POOLCTL_CONFIG": pool_config(tmp_path, server.url)})
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert not RAW.search(out), repr(RAW.search(out))
    assert "\\x1b]0;pwned\\x07osc-title" in out
    assert "\\x1b[2J" in out
    assert "web<U+200B>-01" in out
    assert "<U+202E>exe.txt" in out
    assert MARKUP in out  # shown as typed: no markup is interpreted in a table
    assert "…(+" in out and HUGE not in out
    # Every row as wide as the widest cell allows: a name is cut at 80, the rest are short.
    widths = [len(line) for line in out.splitlines()]
    assert max(widths) < 200, max(widths)
    assert len(out.splitlines()) == 13  # the header and the lab's 12 VMs


def test_ls_json_keeps_the_exact_names(server, tmp_path):
    proc = run("ls", "--json", env={"POOLCTL_CONFIG": pool_config(tmp_path, server.url)})
    assert proc.returncode == 0, proc.stderr
    assert not RAW.search(proc.stdout)  # json.dumps writes \u001b, never the byte
    names = {row["name"] for row in json.loads(proc.stdout)}
    assert set(HOSTILE.values()) <= names


def test_a_10_mb_username_gives_a_bounded_error_line(server, tmp_path):
    proc = run("ls", env={"POOLCTL_CONFIG": pool_config(tmp_path, server.url, username="u" * 10_000_000)})
    assert proc.returncode != 0
    line = one_line_error(proc)
    assert len(line) < 700, len(line)
    assert "lab" in line
