"""An XAPI (XenServer / XCP-ng) pool simulator speaking XAPI's XML-RPC and JSON-RPC.

from poolctl.sim.xapi import Simulator
sim = Simulator.from_scenario("lab", password="demo", migration_seconds=8.0)
server = sim.serve(host="127.0.0.1", port=0)
server.url, server.host_urls, server.stats; server.close()
"""

from .errors import XapiError
from .scenario import Scenario, ScenarioError, load_scenario
from .server import SimServer
from .simulator import Simulator

__all__ = ["Scenario", "ScenarioError", "SimServer", "Simulator", "XapiError", "load_scenario"]
