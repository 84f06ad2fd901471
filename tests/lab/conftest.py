"""Fixtures for the real two-host libvirt/QEMU lab (root; CI runs tests/lab/setup_host.sh first)."""

from __future__ import annotations

import pytest

from .lab import Lab
from .labcli import PoolctlCli
from .labenv import LabError
from .labguest import BUSY_MIB


@pytest.fixture(scope="session")
def lab():
    """Bring the lab up once per session; always torn down, even when a test failed."""
    lab = Lab()
    try:
        lab.up()
    except LabError as exc:
        problems = lab.down()
        pytest.fail(
            f"the migration lab could not be brought up: {exc}"
            + (f"\nteardown problems: {problems}" if problems else "")
            + "\n(run tests/lab/setup_host.sh as root first)",
            pytrace=False,
        )
    print(f"\nlab up: {lab.timings} domain type={lab.domain_type}")
    try:
        yield lab
    finally:
        problems = lab.down()
        print(f"\nlab timings: {lab.timings}")
        if problems:
            pytest.fail(f"lab teardown left: {problems}", pytrace=False)


@pytest.fixture
def guest_on_a(lab):
    """The guest running on hostA only, answering ping, both daemons up.

    The second guest is stopped: the single-guest figures stay those of one TCG guest
    on two cores."""
    lab.stop_guest("pingvm2")
    lab.ensure_guest(on="hostA")
    return lab


@pytest.fixture
def busy_guest_on_a(lab):
    """``pingvm`` on hostA only, busy: rewriting ``labguest.BUSY_MIB`` MiB of tmpfs every second."""
    lab.stop_guest("pingvm2")
    lab.ensure_guest(on="hostA", dirty_mib=BUSY_MIB)
    return lab


@pytest.fixture
def two_guests_on_a(lab):
    """Both guests (pingvm, pingvm2) running on hostA only, answering ping and reporting
    their addresses through their agents, both daemons up."""
    lab.ensure_guests(on="hostA", names=lab.guest_names)
    return lab


@pytest.fixture
def poolctl_cli(lab, tmp_path):
    """The real ``poolctl`` command for the lab pool (``--pool lab``), in the client netns;
    its state directory (audit log, disabled hosts) is this test's own."""
    lab.warm_capabilities()  # so the first command's wall time is poolctl's, not a fresh daemon's
    return PoolctlCli(lab, tmp_path)
