"""Fixtures for the real two-host libvirt/QEMU lab (root; CI runs tests/lab/setup_host.sh first)."""

from __future__ import annotations

import pytest

from .lab import Lab
from .labenv import LabError


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
    """The guest running on hostA only, answering ping, both daemons up."""
    lab.ensure_guest(on="hostA")
    return lab
