"""What two hosts' answers say about a move after poolctl lost contact (kvm/whereabouts.py):
a location is stated only once both hosts answered, and a job still running on the source
means the move goes on."""

from __future__ import annotations

import libvirt
import pytest

from poolctl.backends.kvm.whereabouts import Sighting, judge

RUNNING, PAUSED, SHUTOFF = libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_SHUTOFF
VM = "VM 'web'"


def on(host: str, state: int | None = None, job: bool = False) -> Sighting:
    return Sighting(host, True, state, job)


def unread(host: str) -> Sighting:
    return Sighting(host, False, error="Cannot recv data: Connection reset by peer")


@pytest.mark.parametrize(
    ("src", "dst", "outcome", "runs_on"),
    [
        (on("A", RUNNING), on("B"), "failed", "source"),  # it never left
        (on("A", PAUSED), on("B"), "failed", "source"),  # paused where it was: said as such
        (on("A"), on("B", RUNNING), "success", "destination"),  # undefined on the source, runs there
        (on("A", PAUSED), on("B", RUNNING), "success", "destination"),  # the source keeps it paused
        (on("A", RUNNING, job=True), on("B", PAUSED, job=True), "moving", ""),  # the source's job goes on
        (unread("A"), on("B"), "", ""),  # the source not read: nothing is claimed
        (unread("A"), on("B", RUNNING), "", ""),
        (on("A", RUNNING), unread("B"), "", ""),
        (on("A", RUNNING), on("B", RUNNING), "", ""),  # both run it: not a location to state
        (on("A"), on("B", PAUSED, job=True), "", ""),  # still arriving
        (on("A", SHUTOFF), on("B"), "failed", ""),  # on neither, both read: said so
    ],
)
def test_judge(src, dst, outcome, runs_on):
    verdict = judge(src, dst, VM)
    assert (verdict.outcome, verdict.runs_on) == (outcome, runs_on)
    assert verdict.known == (outcome in ("success", "failed"))


def test_what_was_read_is_said_in_words():
    seen = judge(unread("A"), on("B", PAUSED, job=True), VM).seen
    assert seen == (
        "A could not be read (Cannot recv data: Connection reset by peer); B holds VM 'web' paused (a job still runs)"
    )
    assert judge(on("A", RUNNING), on("B"), VM).seen == "A runs VM 'web'; B does not have VM 'web'"
