"""The guest's dirty-page rate, for the migration tuner (poolctl.migration.tuner)."""

from __future__ import annotations

import logging
import time

import libvirt

log = logging.getLogger("poolctl.backends.kvm")

DIRTYRATE_POLL_S = 0.1


def measure_dirty_rate(dom: libvirt.virDomain, conn: libvirt.virConnect, seconds: int) -> float | None:
    """The guest's dirty-page rate, bytes/s, by QEMU's page sampling (``virDomainStartDirtyRateCalc``
    then the ``dirtyrate`` stats group); None when libvirt or QEMU cannot. Page sampling works under
    TCG too; the dirty-bitmap mode crashed the lab's TCG QEMU, so it is never asked for."""
    try:
        dom.startDirtyRateCalc(max(1, int(seconds)), 0)
    except (libvirt.libvirtError, AttributeError) as err:
        log.info("dirty rate not measurable: %s", err)
        return None
    deadline = time.monotonic() + seconds + 3.0
    while time.monotonic() < deadline:
        time.sleep(DIRTYRATE_POLL_S)
        try:
            got = conn.domainListGetStats([dom], libvirt.VIR_DOMAIN_STATS_DIRTYRATE, 0)
        except libvirt.libvirtError as err:
            log.info("dirty rate stats unreadable: %s", err)
            return None
        st = got[0][1] if got else {}
        if st.get("dirtyrate.calc_status") == 2 and "dirtyrate.megabytes_per_second" in st:
            return float(st["dirtyrate.megabytes_per_second"]) * (1 << 20)
    return None
