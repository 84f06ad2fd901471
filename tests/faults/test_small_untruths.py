"""Small untruths and noise (issue 17, defect 9): each line poolctl prints says one true thing,
once, as poolctl ("poolctl: …"). `poolctl` runs as a subprocess against the simulator, some
of it through the fault proxy."""

from __future__ import annotations

import hashlib
import ssl
import threading
import time
from collections.abc import Iterator

import pytest

from poolctl.sim.xapi import Simulator
from tests.support import fault_proxy as fp
from tests.support.cli import config_file, one_line_error, run

pytestmark = pytest.mark.timeout(120)

PASSWORD = "sim-secret-42"


@pytest.fixture(scope="module")
def server() -> Iterator:
    srv = Simulator.from_scenario("lab", password=PASSWORD, migration_seconds=4.0).serve(host="127.0.0.1", port=0)
    yield srv
    srv.close()


def config(tmp_path, url: str, *, password: str = PASSWORD, extra: str = "") -> dict[str, str]:
    secret = f'password = "{password}"' if password else ""
    text = f'[[pool]]\nname = "lab"\nbackend = "xen"\nurl = "{url}"\nusername = "root"\n{secret}\n{extra}'
    return {"POOLCTL_CONFIG": str(config_file(tmp_path, text)), "XDG_STATE_HOME": str(tmp_path / "state")}


def test_every_pool_failed_prints_no_empty_table_and_says_it_once(server, tmp_path):
    proc = run("ls", env=config(tmp_path, server.url, password="wrong-one"))
    assert proc.returncode == 3
    assert proc.stdout == ""  # no header over nothing
    line = one_line_error(proc)
    assert line.startswith("poolctl: pool 'lab' (xen): ")
    assert line.count("pool 'lab'") == 1, line  # not "pool 'lab' (xen): pool 'lab': …"
    assert "refused the credentials" in line


def test_migrate_after_a_refused_login_claims_nothing_about_the_vm(server, tmp_path):
    proc = run("migrate", "web-02", "xcp-lab-3", env=config(tmp_path, server.url, password="wrong-one"))
    assert proc.returncode == 3
    line = one_line_error(proc)  # the login's failure only
    assert "refused the credentials" in line and "no VM named" not in proc.stderr


def test_password_command_output_is_never_shown(server, tmp_path):
    script = tmp_path / "pw.sh"
    script.write_text("#!/bin/sh\necho 'hunter2-secret' ; echo 'bad passphrase hunter2-secret' >&2; exit 2\n")
    script.chmod(0o700)
    proc = run("ls", env=config(tmp_path, server.url, password="", extra=f'password_command = "{script}"\n'))
    assert proc.returncode != 0
    line = one_line_error(proc)
    assert "password_command exited with 2" in line
    assert "hunter2" not in proc.stderr + proc.stdout


def test_a_fingerprint_mismatch_reads_as_words_not_a_tuple(tmp_path):
    sim = Simulator.from_scenario("lab", password=PASSWORD)
    with sim.serve(host="127.0.0.1", port=0, tls=True) as srv:
        der = ssl.PEM_cert_to_DER_cert(srv.cert_path.read_text())
        real = hashlib.sha256(der).hexdigest()
        proc = run("ls", env=config(tmp_path, srv.url, extra=f'fingerprint = "{"00" * 32}"\n'))
    line = one_line_error(proc)
    assert "('" not in line and "',)" not in line, line
    assert "not the pinned 00:00" in line and real[:2].upper() in line
    assert line.count("pool 'lab'") == 1, line


def test_a_short_outage_mid_migration_warns_as_poolctl_with_a_true_wait(server, tmp_path):
    with fp.FaultProxy(server.url) as proxy:
        env = config(tmp_path, proxy.url)

        def outage() -> None:
            deadline = time.monotonic() + 20
            while proxy.seen.count("Async.VM.pool_migrate") == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)
            proxy.refuse(2.0)

        threading.Thread(target=outage, daemon=True).start()
        proc = run("migrate", "web-01", "xcp-lab-2", "--ping", "", env=env, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines, "the outage went unnoticed"
    assert all(line.startswith("poolctl: ") for line in lines), lines
    assert any("poolctl: warning: " in line and "retrying in 0.5 s" in line for line in lines), lines
    assert not any("retrying in 0 s" in line for line in lines), lines
