"""Scenario files (validation names the file and field) and generated big pools."""

from __future__ import annotations

import json
import urllib.request

import pytest

from poolctl.sim.xapi import ScenarioError, Simulator, load_scenario
from poolctl.sim.xapi.generate import generate_scenario


def test_lab_scenario_is_the_classic_setup():
    sc = load_scenario("lab")
    assert [h.name for h in sc.hosts] == ["xcp-lab-1", "xcp-lab-2", "xcp-lab-3"]
    assert sc.master.name == "xcp-lab-1" and len(sc.vms) == 12
    assert {s.type for s in sc.srs} >= {"lvmoiscsi", "ext", "iso"}
    assert all(v.ip and v.ip.startswith("127.0.10.") for v in sc.vms)


def test_json_scenario_file(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(
        json.dumps(
            {
                "pool": "tiny",
                "hosts": [{"name": "h1", "address": "127.0.3.1"}, {"name": "h2", "address": "127.0.3.2"}],
                "srs": [{"name": "nfs", "type": "nfs"}],
                "networks": [{"name": "net", "bridge": "xenbr0"}],
                "vms": [{"name": "v1", "host": "h2", "disks": [{"sr": "nfs"}], "networks": ["net"]}],
            }
        )
    )
    sim = Simulator.from_scenario(path, password="x")
    assert sim.db.field("VM", sim.vm_ref("v1"), "resident_on") == sim.host_ref("h2")
    assert sim.db.field("pool", sim.db.refs("pool")[0], "master") == sim.host_ref("h1")


@pytest.mark.parametrize(
    "body,expected",
    [
        ('[[hosts]]\nname = "a"\naddress = "127.0.3.1"\n[[vms]]\nname = "v"\nhost = "b"\n', "unknown host 'b'"),
        ('[[hosts]]\nname = "a"\naddress = "192.0.2.1"\n', "hosts.0.address"),
        ('[[hosts]]\nname = "a"\naddress = "127.0.3.1"\n[[vms]]\nname = "v"\n', "names no `host`"),
        ('[[hosts]]\nname = "a"\naddress = "127.0.3.1"\n[[srs]]\nname = "l"\nshared = false\n', "needs `host`"),
        ('[[hosts]]\nname = "a"\naddress = "127.0.3.1"\nmemroy_gib = 3\n', "hosts.0.memroy_gib"),
        ("hosts = [", "Invalid value"),
    ],
)
def test_bad_scenarios_name_file_and_field(tmp_path, body, expected):
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(ScenarioError) as exc:
        load_scenario(path)
    assert str(path) in str(exc.value) and expected in str(exc.value)


def test_unknown_shipped_scenario():
    with pytest.raises(ScenarioError, match="no shipped scenario 'nope'"):
        load_scenario("nope")


def test_generated_pool_of_64_hosts_and_10000_vms():
    sim = Simulator.generate(hosts=64, vms=10_000, password="bench")
    server = sim.serve(host="127.0.0.1", port=0)
    try:

        def call(method, *params):
            body = json.dumps({"jsonrpc": "2.0", "method": method, "params": list(params), "id": 1}).encode()
            with urllib.request.urlopen(urllib.request.Request(server.url + "/jsonrpc", data=body), timeout=60) as r:
                return json.loads(r.read())["result"]

        session = call("session.login_with_password", "root", "bench")
        records = call("VM.get_all_records", session)
        guests = [r for r in records.values() if not r["is_a_template"] and not r["is_control_domain"]]
        assert len(guests) == 10_000
        assert sum(r["is_control_domain"] for r in records.values()) == 64
        assert len(call("host.get_all", session)) == 64
        assert len({r["resident_on"] for r in guests if r["power_state"] == "Running"}) == 64
        assert server.stats["VM.get_all_records"] == 1
    finally:
        server.close()


def test_generator_rejects_nonsense():
    with pytest.raises(ValueError):
        generate_scenario(0, 10)
