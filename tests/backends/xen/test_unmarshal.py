"""unmarshal.py gives exactly what xmlrpc.client's Unmarshaller gives: on the simulator's real
replies, on random values of every XML-RPC type, and however the reply is cut into chunks."""

from __future__ import annotations

import http.client
import random
import xmlrpc.client
from datetime import datetime
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
import XenAPI

from poolctl.backends.xen.translate import CLASSES, FIELDS, project_all
from poolctl.backends.xen.unmarshal import Unmarshaller, parse
from poolctl.sim.xapi import Simulator
from tests.support.xen import PASSWORD, USERNAME, lab


def stdlib(data: bytes):
    parser, unmarshaller = xmlrpc.client.getparser()
    parser.feed(data)
    parser.close()
    return unmarshaller.close()


def same(data: bytes, chunk: int | None = None):
    expected = stdlib(data)
    if chunk is None:
        got = parse(data)
    else:
        u = Unmarshaller()
        for i in range(0, len(data), chunk):
            u.feed(data[i : i + chunk])
        got = u.close()
    assert got == expected
    assert _types(got) == _types(expected)  # True is not 1, DateTime is not str
    return got


def _types(v):
    if isinstance(v, dict):
        return {k: _types(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_types(x) for x in v]
    return type(v).__name__


def _replies(url: str, calls: list[tuple[str, tuple]]) -> list[bytes]:
    parts = urlsplit(url)
    out = []
    for method, params in calls:
        conn = http.client.HTTPConnection(parts.hostname, parts.port)
        conn.request(
            "POST", "/", xmlrpc.client.dumps(params, method, allow_none=True).encode(), {"Content-Type": "text/xml"}
        )
        out.append(conn.getresponse().read())
        conn.close()
    return out


def _session(url: str) -> str:
    s = XenAPI.Session(url)
    s.login_with_password(USERNAME, PASSWORD, "2.x", "unmarshal-test")
    return s._session


def _every_kind_of_call(sid: str, classes) -> list[tuple[str, tuple]]:
    calls = [(f"{api}.get_all_records", (sid,)) for api in classes]
    calls += [
        ("event.from", (sid, list(classes), "", 1.0)),
        ("event.from", (sid, ["*"], "", 1.0)),
        ("VM.get_record", (sid, "OpaqueRef:nonesuch")),  # a Failure reply
        ("no.such_method", (sid,)),
        ("event.get_current_id", (sid,)),
        ("session.login_with_password", (USERNAME, "wrong", "2.x", "x")),
    ]
    return calls


def test_the_lab_simulators_replies_parse_the_same():
    with lab() as (_sim, server):
        sid = _session(server.url)
        replies = _replies(server.url, _every_kind_of_call(sid, [*CLASSES.values(), "task", "VM_metrics"]))
    for data in replies:
        same(data)
    assert {"valid_ref_counts", "events", "token"} <= set(same(replies[-6])[0]["Value"])


@pytest.fixture(scope="module")
def generated_replies():
    sim = Simulator.generate(hosts=4, vms=60, password=PASSWORD)
    with sim.serve(host="127.0.0.1", port=0) as server:
        sid = _session(server.url)
        return _replies(server.url, [("VM.get_all_records", (sid,)), ("event.from", (sid, ["*"], "", 1.0))])


@pytest.mark.parametrize("chunk", [None, 13, 4096, 65536])
def test_a_generated_pool_parses_the_same_however_it_is_cut(generated_replies, chunk):
    for data in generated_replies:
        assert len(data) > 65536 * 2  # crosses several chunks of the real size too
        same(data, chunk)


ALPHABET = "abc xyz <>&'\"\u00e9\u2603\U0001f600\t\n;]]>"


def _random_text(rng: random.Random) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 12)))


def _random_value(rng: random.Random, depth: int = 0):
    kinds = ["str", "int", "bool", "float", "none", "date", "bin"] + (["list", "dict"] * 2 if depth < 4 else [])
    kind = rng.choice(kinds)
    if kind == "str":
        return _random_text(rng)
    if kind == "int":
        return rng.randint(-(2**31), 2**31 - 1)
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "float":
        return rng.choice([0.0, -1.5, 1e300, rng.uniform(-1e6, 1e6)])
    if kind == "none":
        return None
    if kind == "date":
        return xmlrpc.client.DateTime(
            datetime(rng.randint(1970, 2100), rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23))
        )
    if kind == "bin":
        return xmlrpc.client.Binary(bytes(rng.randrange(256) for _ in range(rng.randint(0, 20))))
    if kind == "list":
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 5))]
    return {_random_text(rng): _random_value(rng, depth + 1) for _ in range(rng.randint(0, 5))}


def test_random_values_of_every_type_parse_the_same():
    rng = random.Random(20240611)
    for _ in range(400):
        value = _random_value(rng)
        data = xmlrpc.client.dumps((value,), methodresponse=True, allow_none=True).encode()
        same(data, rng.choice([None, 1, 3, 50]))
    fault = xmlrpc.client.dumps(xmlrpc.client.Fault(500, "no <such> thing"), methodresponse=True).encode()
    with pytest.raises(xmlrpc.client.Fault) as ours:
        parse(fault)
    with pytest.raises(xmlrpc.client.Fault) as theirs:
        stdlib(fault)
    assert (ours.value.faultCode, ours.value.faultString) == (theirs.value.faultCode, theirs.value.faultString)


@pytest.mark.parametrize(
    "body",
    [
        "<value>plain</value>",
        "<value></value>",
        "<value/>",
        "<value><string/></value>",
        "<value>\n  <int> 42 </int>\n</value>",
        "<value><i8>-9223372036854775808</i8></value>",
        "<value><i1>7</i1></value>",
        "<value><biginteger>123456789012345678901234567890</biginteger></value>",
        "<value><bigdecimal>1.50</bigdecimal></value>",
        "<value><double>-0.5</double></value>",
        "<value><boolean>1</boolean></value>",
        "<value><nil/></value>",
        '<value><ex:nil xmlns:ex="http://ws.apache.org/xmlrpc/namespaces/extensions"/></value>',
        "<value><dateTime.iso8601> 20240611T12:00:00Z</dateTime.iso8601></value>",
        "<value><base64>aGVsbG8=</base64></value>",
        "<value>a &amp; b &lt;c&gt; &#233;</value>",
        "<value><struct>\n <member>\n  <name>k</name>\n  <value>v</value>\n </member>\n</struct></value>",
        "<value><struct><member><name/><value><array><data/></array></value></member></struct></value>",
        "<value><array><data><value>1</value><value><int>2</int></value></data></array></value>",
    ],
)
def test_hand_written_forms_parse_the_same(body):
    data = f"<?xml version='1.0'?>\n<methodResponse><params><param>{body}</param></params></methodResponse>".encode()
    got = same(data)
    same(data, 1)
    if "bigdecimal" in body:
        assert got == (Decimal("1.50"),)


@pytest.mark.parametrize("body", ["<value><boolean>2</boolean></value>", "<value><int>x</int></value>"])
def test_bad_values_fail_like_the_stdlib(body):
    data = f"<methodResponse><params><param>{body}</param></params></methodResponse>".encode()
    with pytest.raises(Exception) as theirs:
        stdlib(data)
    with pytest.raises(type(theirs.value)):
        parse(data)


@pytest.mark.parametrize("chunk", [None, 13, 65536])
def test_records_cut_as_they_arrive_equal_the_cut_of_the_full_records(generated_replies, chunk):
    data = generated_replies[0]  # VM.get_all_records
    fields = frozenset(FIELDS["vm"])
    u = Unmarshaller(fields)
    for i in range(0, len(data), chunk or len(data)):
        u.feed(data[i : i + (chunk or len(data))])
    (got,) = u.close()
    (full,) = stdlib(data)
    assert got["Status"] == "Success" and len(got["Value"]) == len(full["Value"]) > 60
    assert got["Value"] == project_all("vm", full["Value"])
    assert all(set(rec) == fields for rec in got["Value"].values())


def test_cutting_leaves_the_other_replies_of_a_get_all_records_call_alone():
    """Inside records_cut_to the SDK may also see a failure (SESSION_INVALID) and a login reply."""
    with lab() as (_sim, server):
        sid = _session(server.url)
        replies = _replies(
            server.url,
            [
                ("VM.get_all_records", ("OpaqueRef:expired",)),
                ("VM.get_record", (sid, "OpaqueRef:nonesuch")),
                ("session.login_with_password", (USERNAME, PASSWORD, "2.x", "x")),
            ],
        )
    fields = frozenset(FIELDS["vm"])
    for data in replies:
        assert parse(data, fields) == stdlib(data)
    assert stdlib(replies[0])[0]["ErrorDescription"][0] == "SESSION_INVALID"
