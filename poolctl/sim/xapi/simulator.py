"""The Simulator: a PoolState built from a scenario, servable over HTTP(S), with hooks for tests.

The top of the package: it imports the api_* modules (importing one registers its calls) and the
server, and nothing below imports it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TypedDict, Unpack

from poolctl.gcpause import gc_paused

# importing the api modules registers their calls
from . import (  # noqa: F401
    api_blobs,
    api_certificates,
    api_common,
    api_data_sources,
    api_devices,
    api_dr,
    api_event,
    api_event_legacy,
    api_external_auth,
    api_ha,
    api_host,
    api_host_admin,
    api_host_config,
    api_host_extra,
    api_host_plugins,
    api_message,
    api_net_extra,
    api_pool,
    api_pool_emergency,
    api_probe,
    api_repositories,
    api_session,
    api_sr,
    api_storage,
    api_storage_motion,
    api_system,
    api_task,
    api_vlan,
    api_vm,
    api_vm_copies,
    api_vm_extra,
    api_wlb,
    host_lifecycle,
    not_implemented,
    ops,
    setters,
)
from .build import build
from .db import CLASSES, Database
from .generate import generate_scenario
from .scenario import Scenario, load_scenario
from .server import SimServer
from .state import PoolState
from .wire import json_result, xml_success

log = logging.getLogger(__name__)


class Options(TypedDict, total=False):
    """Simulator's keyword options, for from_scenario() and generate()."""

    password: str
    username: str
    migration_seconds: float
    power_seconds: float
    storage_mib_s: float
    jsonrpc: bool


class Simulator(PoolState):
    """A simulated XAPI pool. Thread-safe; never prints; runs happily inside another app."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        password: str = "demo",
        username: str = "root",
        migration_seconds: float = 8.0,
        power_seconds: float = 0.0,
        storage_mib_s: float = 500.0,
        jsonrpc: bool = True,
    ) -> None:
        self.scenario = scenario
        db = Database()
        with gc_paused():
            built = build(db, scenario)
        super().__init__(
            db,
            master=built.master,
            host_refs=built.hosts,
            guests=built.guests,
            password=password,
            username=username,
            migration_seconds=migration_seconds,
            power_seconds=power_seconds,
            storage_mib_s=storage_mib_s,
            jsonrpc=jsonrpc,
        )
        self._servers: list[SimServer] = []

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_scenario(cls, scenario: str | Path | Scenario = "lab", **kwargs: Unpack[Options]) -> Simulator:
        if not isinstance(scenario, Scenario):
            scenario = load_scenario(scenario)
        return cls(scenario, **kwargs)

    @classmethod
    def generate(cls, hosts: int, vms: int, **kwargs: Unpack[Options]) -> Simulator:
        with gc_paused():
            scenario = generate_scenario(hosts, vms)
        return cls(scenario, **kwargs)

    # -- serving ----------------------------------------------------------------------------
    def serve(self, host: str = "127.0.0.1", port: int = 0, tls: bool = False) -> SimServer:
        """Listen on every host's address (same port) plus `host` as an alias of the master.
        Starts daemon threads and returns at once."""
        server = SimServer(self, host, port, tls)
        self._servers.append(server)
        self.served = self.served or ("https" if tls else "http", server.port)
        return server

    def close(self) -> None:
        """Stop every server this simulator started and end all long-polls for good."""
        for server in self._servers:
            server.close()
        self._servers.clear()
        self.db.close()

    def warm(self) -> None:
        """Marshal every record once (XML-RPC and JSON-RPC), so the first client's
        get_all_records is as quick as the next ones: at 10,000 VMs ~1.5 s here, not per client."""
        for cls in CLASSES:
            records = self.db.all_records(cls)
            xml_success(records)
            json_result(records, 0, True)

    # -- hooks for tests and the demo ---------------------------------------------------------
    def expire_sessions(self) -> int:
        """Invalidate every session (clients then get SESSION_INVALID); returns how many."""
        count = self.sessions.expire_all()
        self.db.wake_all()
        return count

    def vm_ref(self, name_label: str) -> str:
        refs = self.db.find("VM", lambda rec: rec["name_label"] == name_label)
        if len(refs) != 1:
            raise KeyError(f"{len(refs)} VMs are named {name_label!r}")
        return refs[0]

    def host_ref(self, name_label: str) -> str:
        try:
            return self.host_refs[name_label]
        except KeyError:
            raise KeyError(f"no host named {name_label!r}") from None

    def host_address(self, name_label: str) -> str:
        return str(self.db.field("host", self.host_ref(name_label), "address"))

    def set_power_state(self, vm_name_label: str, state: str, host: str | None = None) -> None:
        """Out-of-band power change (as if done on the console), through the normal event path."""
        vm = self.vm_ref(vm_name_label)
        with self.db.lock:
            current = self.db.field("VM", vm, "power_state")
            if state == current:
                return
            if state in ("Running", "Paused"):
                if current in ("Halted", "Suspended"):
                    target = self.host_ref(host) if host else ops.choose_host(self, vm)
                    ops.make_resident(self, vm, target, state)
                else:
                    self.db.set("VM", vm, power_state=state)
            elif state in ("Halted", "Suspended"):
                ops.make_nonresident(self, vm, state)
            else:
                raise ValueError(f"unknown power state {state!r}")

    def set_host_live(self, host_name_label: str, live: bool) -> None:
        """As if the host died (or came back): host_metrics.live, which placement checks
        (HOST_NOT_LIVE) and the host's allowed operations follow."""
        host = self.host_ref(host_name_label)
        with self.db.lock:
            self.db.set("host_metrics", self.db.field("host", host, "metrics"), live=live)
            host_lifecycle.update_allowed(self.db, host)

    def free_memory(self, host_name_label: str) -> int:
        return self.memory.free(self.host_ref(host_name_label))
