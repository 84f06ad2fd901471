"""Each way an ssh connection fails, through a real OpenSSH server (tests/support/sshd.py) in
front of a private libvirt daemon: the error class (what is retried, the exit code), words that
name the host and say what to do, within the test's timeout, no ssh child left behind."""

from __future__ import annotations

import queue
import time

import pytest

from poolctl.backends.base import AuthenticationError, BackendError
from poolctl.backends.kvm import KvmBackend
from poolctl.backends.kvm.openfail import DaemonRefused, HostKeyChanged, HostKeyUnknown, TimedOut, Unreachable
from poolctl.config import pool_config
from poolctl.model import ConnectionStatus, PowerOp, PowerState
from tests.support.fault_proxy import FaultProxy
from tests.support.kvm_helpers import wait_for
from tests.support.sshd import PASSWORD, wait_no_ssh_children

pytestmark = pytest.mark.timeout(60)


def backend_for(uri: str, **settings: object) -> KvmBackend:
    return KvmBackend(pool_config({"name": "ssh-pool", "backend": "kvm", "uris": [uri], **settings}))


def connect_error(uri: str, **settings: object) -> BackendError:
    backend = backend_for(uri, **settings)
    try:
        with pytest.raises(BackendError) as exc:
            backend.connect()
    finally:
        backend.close()
    wait_no_ssh_children()
    return exc.value


@pytest.mark.parametrize("transport", ["ssh", "libssh"])
def test_a_trusted_key_connects_and_lists_the_domains(sshd, transport):
    backend = backend_for(sshd.uri(transport))
    try:
        backend.connect()
        inv = backend.inventory()
        assert [v.name for v in inv.vms] == ["test"] and inv.hosts[0].live
    finally:
        backend.close()
    wait_no_ssh_children()


@pytest.mark.parametrize("transport", ["ssh", "libssh"])
def test_an_unknown_host_key_says_how_to_trust_it(sshd, transport):
    sshd.forget()
    err = connect_error(sshd.uri(transport))
    assert isinstance(err, HostKeyUnknown), err  # not retried: trusting a key is the user's call
    text = str(err)
    assert f"127.0.0.1:{sshd.port}" in text and "not known yet" in text
    assert f"ssh-keyscan -p {sshd.port} 127.0.0.1" in text and "known_hosts" in text
    if transport == "ssh":
        assert f"ssh -p {sshd.port} root@127.0.0.1" in text


@pytest.mark.parametrize("transport", ["ssh", "libssh"])
def test_a_changed_host_key_is_told_apart_from_an_unknown_one(sshd, transport):
    sshd.trust(sshd.other_key())
    err = connect_error(sshd.uri(transport))
    assert isinstance(err, HostKeyChanged), err
    text = str(err)
    assert "CHANGED" in text and f"ssh-keygen -R '[127.0.0.1]:{sshd.port}'" in text
    assert "@@@" not in text and "reason" not in text


def test_a_key_the_server_does_not_know_is_an_authentication_failure(sshd):
    other = sshd.root / "not_authorized"
    from tests.support.sshd import _keygen

    _keygen(other)
    err = connect_error(sshd.uri(keyfile=other))
    assert isinstance(err, AuthenticationError), err  # exit 3, not retried
    assert "refused the login" in str(err) and "Permission denied (publickey)" in str(err)
    assert "authorized_keys" in str(err)


def test_a_passphrase_key_without_an_agent_fails_at_once(sshd):
    err = connect_error(sshd.uri(keyfile=sshd.passphrase_key))
    assert isinstance(err, AuthenticationError), err
    assert "passphrase needs the agent" in str(err)


def test_a_wrong_user_is_an_authentication_failure_naming_the_user(sshd):
    err = connect_error(sshd.uri(user="nosuchuser"))
    assert isinstance(err, AuthenticationError), err
    assert "nosuchuser" in str(err)


def test_a_password_only_server_over_openssh_says_to_use_libssh(sshd):
    sshd.restart(password=True, pubkey=False)
    err = connect_error(sshd.uri(), password=PASSWORD)
    assert isinstance(err, AuthenticationError), err
    assert "qemu+libssh://" in str(err) and PASSWORD not in str(err)


def test_a_password_only_server_over_libssh_takes_the_right_password(sshd):
    sshd.restart(password=True, pubkey=False)
    backend = backend_for(sshd.uri("libssh", keyfile=""), password=PASSWORD)
    try:
        backend.connect()
        assert [v.name for v in backend.inventory().vms] == ["test"]
    finally:
        backend.close()


def test_a_wrong_password_over_libssh_fails_once_and_does_not_hang(sshd):
    sshd.restart(password=True, pubkey=False)
    started = time.monotonic()
    err = connect_error(sshd.uri("libssh", keyfile=""), password="wrong-password", connect_timeout_s=20)
    took = time.monotonic() - started
    assert isinstance(err, AuthenticationError), err
    assert "wrong-password" not in str(err) and f"127.0.0.1:{sshd.port}" in str(err)
    assert "the password (or key passphrase) was refused" in str(err)
    assert took < 20  # refused, not waited out: the deadline would say "did not answer"
    assert sshd.log.read_text().count("Failed password for root") == 1  # one attempt, not a loop


@pytest.mark.parametrize("transport", ["ssh", "libssh"])
def test_a_refused_port_is_unreachable(sshd, transport):
    uri = sshd.uri(transport).replace(f":{sshd.port}/", f":{_closed_port()}/")
    err = connect_error(uri)
    assert isinstance(err, Unreachable) and not isinstance(err, TimedOut), err
    assert "cannot reach host 127.0.0.1:" in str(err) and "refused" in str(err).lower()


@pytest.mark.parametrize("transport", ["ssh", "libssh"])
def test_a_listener_that_never_answers_times_out_and_leaves_no_child(sshd, transport):
    with FaultProxy(("127.0.0.1", 9), http=False, stalled=True) as gate:  # accepts, never forwards: no banner
        uri = sshd.uri(transport).replace(f":{sshd.port}/", f":{gate.address.split(':')[1]}/")
        started = time.monotonic()
        err = connect_error(uri, connect_timeout_s=2)
        took = time.monotonic() - started
        assert gate.accepted >= 1
    assert isinstance(err, TimedOut), err
    assert "did not answer within 2 s" in str(err) and "connect_timeout_s" in str(err)
    assert took < 10, took


def test_a_stopped_daemon_behind_a_good_login_is_the_daemon_refusing(sshd):
    sshd.daemon.stop()
    err = connect_error(sshd.uri())
    assert isinstance(err, DaemonRefused), err
    assert "was reached but its libvirt daemon" in str(err) and "libvirt-sock" in str(err)


@pytest.mark.parametrize("transport", ["ssh", "libssh"])
def test_the_pools_known_hosts_setting_is_used_by_both_transports(sshd, transport, tmp_path):
    mine = tmp_path / "pool_known_hosts"
    mine.write_text(sshd.known_hosts.read_text())
    sshd.forget()  # the fixture's own file (ssh_config's UserKnownHostsFile) knows nothing now
    uri = sshd.uri(transport)
    if transport == "libssh":
        uri = uri.replace(f"known_hosts={sshd.known_hosts}&", "").replace(f"&known_hosts={sshd.known_hosts}", "")
        assert "known_hosts=" not in uri
    backend = backend_for(uri, known_hosts=str(mine))
    try:
        backend.connect()
        assert backend.inventory().hosts[0].live
    finally:
        backend.close()
    wait_no_ssh_children()


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("transport", ["ssh", "libssh"])
def test_power_and_events_over_ssh(sshd, transport):
    """The contract's live part over ssh: a power operation through the backend, then a start
    behind its back whose lifecycle event comes back through the ssh connection as a change (the
    periodic refresh pushed out of reach: the change can only have come from the event)."""
    backend = backend_for(sshd.uri(transport))
    backend.REFRESH_S = 3600.0
    try:
        backend.connect()
        vm = next(v for v in backend.inventory().vms if v.name == "test")
        changes: queue.Queue = queue.Queue()
        states: queue.Queue = queue.Queue()
        backend.watch(changes.put, states.put)
        wait_for(states, lambda s: s.status == ConnectionStatus.CONNECTED, "CONNECTED")
        backend.power(vm.ref, PowerOp.FORCE_OFF)
        wait_for(changes, lambda c: c.ref == vm.ref and c.obj.power_state == PowerState.HALTED, "the VM halted", 15)
        # behind the backend's back, on its own connection: only libvirt's event can tell it
        backend.host_by_ref(vm.host or backend.hosts[0].ref).conn.lookupByUUIDString(vm.uuid).create()
        wait_for(changes, lambda c: c.ref == vm.ref and c.obj.power_state == PowerState.RUNNING, "the VM running", 15)
    finally:
        backend.close()
    wait_no_ssh_children()
