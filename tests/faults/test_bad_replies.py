"""A pool (or something posing as one) answers with what XAPI never sends: `poolctl ls` says so
in one line naming the pool, never a traceback. Through the fault proxy, the real SDK over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from poolctl.sim.xapi import Simulator
from tests.support import fault_proxy as fp
from tests.support.cli import config_file, one_line_error, run

pytestmark = pytest.mark.timeout(120)

PASSWORD = "sim-secret-42"
LOGIN = "session.login_with_password"


@pytest.fixture(scope="module")
def server() -> Iterator:
    srv = Simulator.from_scenario("lab", password=PASSWORD).serve(host="127.0.0.1", port=0)
    yield srv
    srv.close()


@pytest.fixture
def proxy(server) -> Iterator[fp.FaultProxy]:
    with fp.FaultProxy(server.url) as p:
        yield p


def ls(tmp_path, url: str):
    text = f'[[pool]]\nname = "lab"\nbackend = "xen"\nurl = "{url}"\nusername = "root"\npassword = "{PASSWORD}"\n'
    return run("ls", env={"POOLCTL_CONFIG": str(config_file(tmp_path, text))})


@pytest.mark.parametrize(
    "reply,words",
    [
        (fp.xmlrpc_success(42), "answered the login with an integer, not a session reference"),
        (fp.xmlrpc_success(["OpaqueRef:a", "b"]), "answered the login with an array of 2, not a session reference"),
        (fp.xmlrpc_success({"a": 1}), "answered the login with a struct of 1 field(s), not a session reference"),
        (fp.xmlrpc_success("s" * 3_000_000), "answered the login with a 3,000,000-character string"),
        (fp.xmlrpc_success(""), "answered the login with an empty string"),
    ],
    ids=["int", "array", "struct", "huge-string", "empty"],
)
def test_a_login_reply_of_the_wrong_type_is_one_line(proxy, tmp_path, reply, words):
    proxy.on(LOGIN, fp.replace(reply))
    proc = ls(tmp_path, proxy.url)
    assert proc.returncode == 1
    line = one_line_error(proc)
    assert line.startswith("poolctl: pool 'lab' (xen): "), line
    assert words in line, line
    assert len(line) < 300
    assert proxy.seen.count(LOGIN, "rewritten") >= 1


@pytest.mark.parametrize(
    "reply,words",
    [
        (fp.xmlrpc_raw_result(42), "sent a reply poolctl cannot use"),
        (fp.http_status(500), "HTTP 500"),
        (fp.html_page(), "did not answer with XML-RPC"),
        (fp.garbage(), "did not answer with XML-RPC"),
        (fp.xapi_failure("NO_SUCH_CODE_EVER", "what"), "XAPI said NO_SUCH_CODE_EVER"),
        (fp.xapi_failure_raw_xml("INTERNAL_ERROR", "\x1b]0;pwned\x07"), "did not answer with XML-RPC"),
    ],
    ids=["no-envelope", "http-500", "html", "garbage", "unknown-fault", "raw-esc-in-xml"],
)
def test_a_login_reply_that_is_not_xapi_is_one_line(proxy, tmp_path, reply, words):
    proxy.on(LOGIN, fp.replace(reply))
    proc = ls(tmp_path, proxy.url)
    assert proc.returncode == 1
    line = one_line_error(proc)
    assert "'lab'" in line and words in line, line
    assert "\x1b" not in line and "\x07" not in line


def test_a_truncated_login_reply_is_one_line(proxy, tmp_path):
    proxy.on(LOGIN, fp.truncated)
    proc = ls(tmp_path, proxy.url)
    assert proc.returncode == 1
    line = one_line_error(proc)
    assert "'lab'" in line and ("did not answer with XML-RPC" in line or "cannot reach XAPI" in line), line
    assert proxy.seen.count(LOGIN, "rewritten") >= 1


def test_a_fault_string_with_escapes_is_printed_escaped(proxy, tmp_path):
    # XML 1.0 cannot carry ESC or BEL (that reply is "not XML-RPC", above), but it carries C1
    # controls (U+009B is CSI to many terminals) and bidi overrides.
    proxy.on(LOGIN, fp.replace(fp.xapi_failure("INTERNAL_ERROR", "bad \x9b2J thing \u202eeno")))
    proc = ls(tmp_path, proxy.url)
    line = one_line_error(proc)
    assert "bad \\x9b2J thing <U+202E>eno" in line, line
    assert "\x9b" not in proc.stderr and "\u202e" not in proc.stderr


def test_a_bulk_read_error_with_escapes_over_jsonrpc_is_printed_escaped(proxy, tmp_path):
    # JSON-RPC carries any character: the bulk read's error is the way in for ESC and BEL.
    proxy.on("VM.get_all_records", fp.replace(fp.jsonrpc_failure("INTERNAL_ERROR", "\x1b]0;pwned\x07 \x1b[2J")))
    proc = ls(tmp_path, proxy.url)
    assert "Traceback" not in proc.stderr
    assert "\x1b" not in proc.stderr and "\x07" not in proc.stderr
    assert "\\x1b]0;pwned\\x07 \\x1b[2J" in proc.stderr, proc.stderr


def json_reply(result: object) -> bytes:
    body = json.dumps({"jsonrpc": "2.0", "result": result, "id": 1}).encode()
    return fp.http_reply(body, ctype="application/json")


@pytest.mark.parametrize(
    "method,reply,words",
    [
        ("pool.get_all_records", fp.xmlrpc_success(42), "sent a reply poolctl cannot use"),
        ("VM.get_all_records", json_reply(42), "VM.get_all_records over JSON-RPC returned int"),
        ("host.get_all_records", json_reply(["a"]), "host.get_all_records over JSON-RPC returned list"),
        ("VM.get_all_records", json_reply({"OpaqueRef:x": 7}), "sent a reply poolctl cannot use"),
    ],
    ids=["pool-int", "bulk-int", "bulk-list", "bulk-record-int"],
)
def test_a_read_reply_of_the_wrong_type_is_one_line(proxy, tmp_path, method, reply, words):
    proxy.on(method, fp.replace(reply))
    proc = ls(tmp_path, proxy.url)
    assert proc.returncode == 1
    line = one_line_error(proc)
    assert line.startswith("poolctl: pool 'lab' (xen): reading the inventory: ") and words in line, line
