"""The migrate dialog's fields, composed and read as a move's settings: the ping address, interval and TCP
port, and the tuner's options under the CLI's and the config's names (an empty field or an
unticked box is the tuner's to choose). A bad field raises ValueError naming it."""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Collection

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.dom import DOMNode
from textual.widgets import Checkbox, Input, Label

from poolctl.backends.base import Capabilities
from poolctl.migration.tuner import TuneRequest
from poolctl.model import VM
from poolctl.ping.limits import INTERVAL_MAX_S, INTERVAL_MIN_S
from poolctl.safe_text import shown

DEFAULT_INTERVAL_MS = 100
# the range the config and the CLI accept, in the whole milliseconds the field takes
INTERVAL_MIN_MS = max(1, math.ceil(INTERVAL_MIN_S * 1000))
INTERVAL_MAX_MS = math.floor(INTERVAL_MAX_S * 1000)

# MigrationOptions field -> (label, kind) for the options the backend honours; the labels are
# the names of `poolctl migrate`'s options and of the config's [migration] keys
OPTION_FIELDS: dict[str, tuple[str, str]] = {
    "max_downtime_ms": ("max-downtime ms", "int"),
    "bandwidth_mib_s": ("bandwidth MiB/s", "int"),
    "parallel": ("parallel", "int"),
    "auto_converge": ("auto-converge", "bool"),
    "post_copy": ("post-copy always", "bool"),
    "compress": ("compress", "bool"),
}


def rows(
    vm: VM, interval_ms: int, port: int | None, defaults: TuneRequest, capabilities: Capabilities
) -> ComposeResult:
    """The fields' rows, for the dialog's compose: the ping's, then the options the backend honours."""
    with Horizontal(classes="migrate-row"):
        yield Label("ping", classes="migrate-label")
        yield Input(shown(vm.ips[0]) if vm.ips else "", placeholder="VM address (empty: no ping)", id="migrate-ping")
        yield Label("every ms", classes="migrate-label")
        yield Input(str(interval_ms), id="migrate-interval", type="integer")
        yield Label("TCP port", classes="migrate-label")
        yield Input(str(port or ""), placeholder="none", id="migrate-port", type="integer")
    offered = [f for f in OPTION_FIELDS if f in capabilities.migration_options]
    numbers = [f for f in offered if OPTION_FIELDS[f][1] == "int"]
    flags = [f for f in offered if OPTION_FIELDS[f][1] == "bool"]
    # numbers and flags on rows of their own: each row fits in 80 columns
    if numbers:
        with Horizontal(classes="migrate-row", id="migrate-options"):
            for name in numbers:
                yield Label(OPTION_FIELDS[name][0], classes="migrate-label")
                yield Input("", placeholder="auto", id=f"opt-{name}", type="integer")
    if flags or offered:
        with Horizontal(classes="migrate-row", id="migrate-flags"):
            yield Checkbox("tune", defaults.tune == "auto", id="opt-tune")
            for name in flags:
                yield Checkbox(OPTION_FIELDS[name][0], flag_default(defaults, name), id=f"opt-{name}")


def flag_default(defaults: TuneRequest, name: str) -> bool:
    """A flag's box ticked from the start: the config asks for it."""
    d = defaults
    return {"auto_converge": d.auto_converge, "post_copy": d.post_copy == "always", "compress": d.compress}.get(
        name
    ) is True


def tune_request(fields: DOMNode, defaults: TuneRequest, offered: Collection[str]) -> TuneRequest:
    """What the option fields under ``fields`` ask for (``offered``: those the backend honours,
    the others keep the config's value)."""
    d = defaults
    numbers: dict[str, int | None] = {}
    for name in ("max_downtime_ms", "bandwidth_mib_s", "parallel"):
        numbers[name] = getattr(d, name)
        if name in offered:
            text = fields.query_one(f"#opt-{name}", Input).value
            numbers[name] = (
                number(text, OPTION_FIELDS[name][0], 1, 16 if name == "parallel" else 10**6) if text.strip() else None
            )

    def flag(name: str) -> bool | None:
        return (True if fields.query_one(f"#opt-{name}", Checkbox).value else None) if name in offered else None

    tune_box = fields.query("#opt-tune")
    tune = ("auto" if tune_box.first(Checkbox).value else "off") if tune_box else d.tune
    post_copy = "always" if flag("post_copy") else d.post_copy if d.post_copy != "always" else "auto"
    return TuneRequest(
        tune=tune,
        max_downtime_ms=numbers["max_downtime_ms"],
        bandwidth_mib_s=numbers["bandwidth_mib_s"],
        auto_converge=flag("auto_converge"),
        post_copy=post_copy,
        parallel=numbers["parallel"],
        compress=flag("compress"),
    )


def ping_address(fields: DOMNode) -> str:
    """The address to ping ('' for none)."""
    address = fields.query_one("#migrate-ping", Input).value.strip()
    if address and not plausible_address(address):
        raise ValueError(f"ping: {address!r} is not an IP address or host name")
    return address


def interval_ms(fields: DOMNode) -> int:
    text = fields.query_one("#migrate-interval", Input).value
    return number(text, "ping interval (ms)", INTERVAL_MIN_MS, INTERVAL_MAX_MS)


def probe_interval_s(fields: DOMNode) -> float | None:
    """The ping's interval in seconds, None when nothing is pinged (the prediction's probes)."""
    return interval_ms(fields) / 1000.0 if fields.query_one("#migrate-ping", Input).value.strip() else None


def ping_port(fields: DOMNode) -> int | None:
    text = fields.query_one("#migrate-port", Input).value
    return number(text, "TCP port", 1, 65535) if text.strip() else None


def number(text: str, what: str, low: int, high: int) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise ValueError(f"{what}: expected a whole number, got {text.strip()!r}") from None
    if not low <= value <= high:
        raise ValueError(f"{what}: must be between {low} and {high}, got {value}")
    return value


def plausible_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return all(part and part.replace("-", "").isalnum() for part in text.split("."))
