"""Emergency master changes through the XenAPI SDK: a member takes over, the others follow."""

from __future__ import annotations

import http.client
import time
import xmlrpc.client

import pytest
import XenAPI

from .conftest import PASSWORD

DOWN = (OSError, xmlrpc.client.ProtocolError, http.client.HTTPException)


def _local(server, name: str) -> XenAPI.Session:
    s = XenAPI.Session(server.host_urls[name])
    s.slave_local_login_with_password("root", PASSWORD)
    return s


def _wait_up(server, name: str, timeout: float = 10.0) -> XenAPI.Session:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return _local(server, name)
        except DOWN:
            assert time.monotonic() < deadline, f"{name}'s toolstack did not come back"
            time.sleep(0.2)


def test_member_transitions_to_master_and_recovers_the_others(server, api):
    pool = api.pool.get_all()[0]
    old = api.pool.get_master(pool)
    hosts = api.host.get_all_records()
    new = next(h for h in hosts if h != old)
    new_name, old_name = hosts[new]["name_label"], hosts[old]["name_label"]
    _local(server, new_name).xenapi.pool.emergency_transition_to_master()
    time.sleep(0.4)  # the toolstack restarts a moment after the call answers
    s = _wait_up(server, new_name)
    assert s.xenapi.pool.get_master(pool) == new
    s.xenapi.session.local_logout()
    with pytest.raises(XenAPI.Failure) as exc:  # the old master is a member now
        XenAPI.Session(server.host_urls[old_name]).login_with_password("root", PASSWORD)
    assert exc.value.details[0] == "HOST_IS_SLAVE"
    third = next(h for h in hosts if h not in (old, new))
    third_name = hosts[third]["name_label"]
    # pointed at an address where no master answers, a member waits: its toolstack stays down
    _local(server, third_name).xenapi.pool.emergency_reset_master(hosts[old]["address"])
    time.sleep(0.6)
    with pytest.raises(DOWN):
        _local(server, third_name)
    master = XenAPI.Session(server.host_urls[new_name])
    master.login_with_password("root", PASSWORD)
    recovered = master.xenapi.pool.recover_slaves()
    assert sorted(recovered) == sorted([old, third])
    _wait_up(server, third_name).xenapi.session.local_logout()
    assert master.xenapi.pool.get_master(pool) == new


def test_emergency_calls_refused_while_ha_is_armed(server, api):
    api.pool.enable_ha([], {})
    member = next(h for h in api.host.get_all() if h != api.pool.get_master(api.pool.get_all()[0]))
    s = _local(server, api.host.get_name_label(member))
    with pytest.raises(XenAPI.Failure) as exc:
        s.xenapi.pool.emergency_transition_to_master()
    assert exc.value.details == ["HA_IS_ENABLED"]
    with pytest.raises(XenAPI.Failure) as exc:
        s.xenapi.pool.emergency_reset_master("127.0.1.1")
    assert exc.value.details == ["HA_IS_ENABLED"]
