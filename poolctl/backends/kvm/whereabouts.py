"""Where a VM is after a move, and what the move did.

A migrate call that dies with its connection (the source daemon killed, the link cut) says
nothing about the move itself: with peer-to-peer migration the source daemon drives it and
may finish it, fail it, or (restarted) recover it. Only what the hosts say afterwards tells,
so each reading opens fresh connections, and a location is stated only once both hosts were
read and agree with a second reading (a restarted daemon recovering its jobs changes its
answer for a moment)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import libvirt

from poolctl.backends.base import BackendError
from poolctl.backends.kvm.errors import words
from poolctl.backends.kvm.hostconn import RUNNING_STATES, HostConn

_RUNS = {libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_BLOCKED}


def conn_alive(conn: libvirt.virConnect | None) -> bool:
    try:
        return conn is not None and conn.isAlive() == 1
    except libvirt.libvirtError:
        return False


def contact_lost(conn: libvirt.virConnect | None) -> bool:
    """The migrate call failed because its connection to the source failed (libvirt closes it on
    EOF, a reset, a keepalive timeout), not because the source's daemon said the move failed:
    then the connection is still open, even when the daemon's words are about a lost connection
    of its own (to the destination's daemon)."""
    return not conn_alive(conn)


@dataclass(frozen=True)
class Sighting:
    """One host's answer about one domain."""

    host: str  # the host's name
    read: bool  # the host answered
    state: int | None = None  # libvirt's domain state; None: no such domain there
    job: bool = False  # a job (the migration) still runs on the domain there
    error: str = ""  # why the host could not be read

    @property
    def runs(self) -> bool:
        return self.state in _RUNS

    def words(self, vm: str) -> str:
        if not self.read:
            return f"{self.host} could not be read ({self.error})"
        if self.state is None:
            return f"{self.host} does not have {vm}"
        if self.runs:
            return f"{self.host} runs {vm}"
        if self.state == libvirt.VIR_DOMAIN_PAUSED:
            return f"{self.host} holds {vm} paused" + (" (a job still runs)" if self.job else "")
        return f"{self.host} has {vm} stopped"


def sight(hc: HostConn, uuid: str) -> Sighting:
    """Read ``uuid`` on ``hc`` over a connection of its own (the main one may be dead or be
    being replaced by the watcher)."""
    try:
        conn = hc.open_side()
    except BackendError as err:
        return Sighting(hc.name, False, error=err.message)
    try:
        return _read(conn, hc.name, uuid)
    finally:
        try:
            conn.close()
        except libvirt.libvirtError:
            pass


def _read(conn: libvirt.virConnect, host: str, uuid: str) -> Sighting:
    try:
        dom = conn.lookupByUUIDString(uuid)
    except libvirt.libvirtError as err:
        if err.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return Sighting(host, True)
        return Sighting(host, False, error=words(err))
    try:
        state = int(dom.state()[0])
    except libvirt.libvirtError as err:
        if err.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:  # gone between the two calls
            return Sighting(host, True)
        return Sighting(host, False, error=words(err))
    try:
        job = int(dom.jobInfo()[0]) != libvirt.VIR_DOMAIN_JOB_NONE
    except libvirt.libvirtError:
        job = False  # the test driver and an inactive domain have no job to tell
    return Sighting(host, True, state, job)


@dataclass(frozen=True)
class Verdict:
    """What two sightings say about the move."""

    outcome: str  # "success", "failed", "moving" (the source's job runs on), "" (not known yet)
    runs_on: str  # "source", "destination" or "" (on neither, or not known)
    seen: str  # what was read, in words

    @property
    def known(self) -> bool:
        return self.outcome in ("success", "failed")


def judge(src: Sighting, dst: Sighting, vm: str) -> Verdict:
    seen = f"{src.words(vm)}; {dst.words(vm)}"
    if src.read and src.job and src.state is not None:
        return Verdict("moving", "", seen)
    if not (src.read and dst.read):
        return Verdict("", "", seen)
    if dst.runs and not dst.job and not src.runs:
        return Verdict("success", "destination", seen)
    if dst.runs or dst.job:
        return Verdict("", "", seen)  # both run it, or the destination is still receiving
    if src.runs or src.state == libvirt.VIR_DOMAIN_PAUSED:
        return Verdict("failed", "source", seen)
    return Verdict("failed", "", seen)  # on neither host, both read


# --- after an end the source's daemon reported ---------------------------------------------------


def where_after_failure(hosts: Iterable[HostConn], uuid: str) -> str | None:
    """The ref of the host running the VM after a failure the source's daemon reported (normally
    the source), on the hosts' main connections; None when none shows it running."""
    for hc in hosts:
        if hc.conn is None:
            continue
        try:
            state = hc.conn.lookupByUUIDString(uuid).state()[0]
        except (libvirt.libvirtError, AttributeError):
            continue
        if state in RUNNING_STATES:
            return hc.ref
    return None


def completed_stats(src: HostConn, dst: HostConn, uuid: str, new_dom: libvirt.virDomain | None) -> dict[str, Any]:
    """The figures of a finished move. In flight, jobStats' downtime is QEMU's target; the real
    one is in the completed job on the destination, or in the source's JOB_COMPLETED event."""
    try:
        dom = new_dom
        if dom is None and dst.conn is not None:
            dom = dst.conn.lookupByUUIDString(uuid)
        stats = dom.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED) if dom is not None else {}
        if stats.get("downtime") is not None:
            return dict(stats)
    except (libvirt.libvirtError, AttributeError):
        pass
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        event = src.job_completed.get(uuid)
        if event and event.get("downtime") is not None:
            return dict(event)
        time.sleep(0.05)
    return {}
