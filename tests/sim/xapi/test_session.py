"""Logging in and out with the real XenAPI SDK; sessions expiring; HOST_IS_SLAVE."""

from __future__ import annotations

import xmlrpc.client

import pytest
import XenAPI

from .conftest import PASSWORD


def test_login_and_read_pool(api, sim):
    pools = api.pool.get_all()
    assert len(pools) == 1
    master = api.pool.get_master(pools[0])
    assert api.host.get_name_label(master) == "xcp-lab-1"
    assert api.host.get_address(master) == "127.0.1.1"


def test_bad_password_is_authentication_failure(server):
    s = XenAPI.Session(server.url)
    with pytest.raises(XenAPI.Failure) as exc:
        s.login_with_password("root", "wrong", "2.21", "tests")
    assert exc.value.details == ["SESSION_AUTHENTICATION_FAILED", "root", "Authentication failure"]


def test_unknown_user_is_authentication_failure(server):
    s = XenAPI.Session(server.url)
    with pytest.raises(XenAPI.Failure) as exc:
        s.login_with_password("admin", PASSWORD)
    assert exc.value.details[:2] == ["SESSION_AUTHENTICATION_FAILED", "admin"]


def test_login_on_pool_member_is_host_is_slave(server):
    s = XenAPI.Session(server.host_urls["xcp-lab-2"])
    with pytest.raises(XenAPI.Failure) as exc:
        s.login_with_password("root", PASSWORD, "2.21", "tests")
    assert exc.value.details == ["HOST_IS_SLAVE", "127.0.1.1"]


def test_alias_address_serves_the_master(server):
    alias = server.url.replace("127.0.1.1", "127.0.0.1")
    s = XenAPI.Session(alias)
    s.login_with_password("root", PASSWORD)
    assert len(s.xenapi.host.get_all()) == 3
    s.xenapi.session.logout()


def test_logout_invalidates_session(server):
    raw = xmlrpc.client.ServerProxy(server.url)
    ref = raw.session.login_with_password("root", PASSWORD, "2.21", "raw")["Value"]
    assert raw.VM.get_all(ref)["Status"] == "Success"
    assert raw.session.logout(ref) == {"Status": "Success", "Value": ""}
    assert raw.VM.get_all(ref) == {"Status": "Failure", "ErrorDescription": ["SESSION_INVALID", ref]}


def test_expired_session_sdk_relogs_in_raw_client_sees_session_invalid(server, sim, api):
    raw = xmlrpc.client.ServerProxy(server.url)
    ref = raw.session.login_with_password("root", PASSWORD, "2.21", "raw")["Value"]
    before = server.stats.snapshot()["session.login_with_password"]
    assert sim.expire_sessions() >= 2
    reply = raw.VM.get_all(ref)
    assert reply == {"Status": "Failure", "ErrorDescription": ["SESSION_INVALID", ref]}
    # the SDK sees SESSION_INVALID, logs in again with its saved credentials and retries
    assert len(api.host.get_all()) == 3
    assert server.stats.snapshot()["session.login_with_password"] == before + 1


def test_session_record_getters(session, api):
    ref = session.handle
    assert api.session.get_this_host(ref) == api.pool.get_master(api.pool.get_all()[0])
    rec = api.session.get_record(ref)
    assert rec["auth_user_name"] == "root" and rec["originator"] == "poolctl-tests"
