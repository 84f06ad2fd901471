"""What every benchmark module shares: figures, targets, the run context, statistics.

A benchmark module declares its figures up front (``specs(ctx)``) and fills them in
``measure(ctx, out)``. Whatever it cannot measure stays "not available (reason)" —
never a made-up number — so the table always has every figure.
"""

from __future__ import annotations

import importlib.util
import math
import statistics
from dataclasses import dataclass, field


class Unavailable(Exception):
    """A figure cannot be measured yet (a piece it needs has not landed); the reason is shown."""


@dataclass(frozen=True)
class Size:
    hosts: int
    vms: int

    @property
    def tag(self) -> str:
        return f"{self.hosts}x{self.vms}"

    @property
    def words(self) -> str:
        return f"{self.hosts} hosts / {self.vms:,} VMs"

    @classmethod
    def parse(cls, text: str) -> Size:
        try:
            hosts, vms = (int(p) for p in text.lower().split("x"))
        except ValueError:
            raise ValueError(f"size {text!r}: expected HOSTSxVMS, e.g. 64x10000") from None
        if hosts < 1 or vms < 1:
            raise ValueError(f"size {text!r}: hosts and VMs must be at least 1")
        return cls(hosts, vms)


@dataclass(frozen=True)
class Target:
    op: str  # "<", "<=", "=="
    limit: float
    text: str  # as printed, e.g. "< 1.5 s"

    def met(self, value: float) -> bool:
        if self.op == "<":
            return value < self.limit
        if self.op == "<=":
            return value <= self.limit
        if self.op == "==":
            return math.isclose(value, self.limit, abs_tol=1e-9)
        raise ValueError(f"unknown target operator {self.op!r}")


@dataclass
class Figure:
    key: str  # stable id, e.g. "tui.launch.64x10000"
    label: str
    unit: str
    target: Target | None = None
    value: float | None = None
    samples: list[float] = field(default_factory=list)
    note: str = ""
    unavailable: str = ""  # the reason, when value is None
    error: bool = False  # True when the reason is a crash, not a missing piece

    @property
    def ok(self) -> bool | None:
        if self.value is None or self.target is None:
            return None
        return self.target.met(self.value)

    def as_json(self) -> dict:
        return {
            "key": self.key,
            "label": self.label,
            "value": self.value,
            "unit": self.unit,
            "target": self.target.text if self.target else None,
            "ok": self.ok,
            "samples": self.samples,
            "note": self.note,
            "unavailable": self.unavailable or None,
            "error": self.error,
        }


@dataclass
class Context:
    sizes: list[Size]  # ascending by VM count
    runs: int  # repetitions for medians
    quick: bool
    window_s: float  # length of rate windows (idle calls, bytes to the terminal)

    @property
    def small(self) -> Size:
        return self.sizes[0]

    @property
    def large(self) -> Size:
        return self.sizes[-1]


class Results:
    """The figures of one module, by key; ``measure`` fills them in."""

    def __init__(self, figures: list[Figure]):
        self.figures = {f.key: f for f in figures}

    def set(self, key: str, value: float, *, samples: list[float] | None = None, note: str = "") -> None:
        fig = self.figures[key]
        fig.value = float(value)
        fig.samples = [round(s, 6) for s in (samples or [])]
        fig.note = note
        fig.unavailable = ""

    def unavailable(self, key: str, reason: str) -> None:
        fig = self.figures[key]
        fig.value = None
        fig.unavailable = reason

    def fill_missing(self, reason: str, *, error: bool = False) -> None:
        for fig in self.figures.values():
            if fig.value is None and not fig.unavailable:
                fig.unavailable = reason
                fig.error = error


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile: a value that was really observed."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def require(module: str, what: str, attr: str | None = None):
    """Import ``module`` (and ``attr`` from it), a piece another task builds.

    Raises ``Unavailable`` naming what is missing when it has not landed yet.
    """
    try:
        found = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        found = False
    if not found:
        raise Unavailable(f"{what} not yet available: no module {module}")
    mod = importlib.import_module(module)
    if attr is None:
        return mod
    if not hasattr(mod, attr):
        raise Unavailable(f"{what} not yet available: {module} has no {attr}")
    return getattr(mod, attr)
