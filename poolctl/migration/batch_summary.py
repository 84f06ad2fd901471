"""A batch's summary: one line per VM (where it went, how long, what the ping saw, or why it did
not move) and the run's closing figures, as the runner returns them and the CLI and TUI show them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from poolctl.migration.concurrency import Decision

Outcome = Literal["success", "failed", "cancelled", "refused", "unfinished", "unknown", "not started"]


@dataclass(frozen=True)
class MoveLine:
    """One VM's line of the summary."""

    vm: str
    source: str
    destination: str
    outcome: Outcome
    now_on: str = ""
    seconds: float = 0.0
    sent: int = 0
    lost: int = 0
    longest_gap_s: float | None = None
    error: str = ""  # the hypervisor's words, or why it never started

    @property
    def moved(self) -> bool:
        return self.outcome == "success"

    def text(self, vm_width: int = 0, host_width: int = 0) -> str:
        """``web-01 → xcp-lab-2  8.1 s  sent 81  lost 0  longest gap 0.10 s``"""
        route = f"{self.vm:<{vm_width}} → {self.destination:<{host_width}}"
        if self.outcome == "not started":
            return f"{route}  not moved: {self.error or 'not started'}"
        gap = f"{self.longest_gap_s:.2f} s" if self.longest_gap_s is not None else "–"
        ping = f"sent {self.sent}  lost {self.lost}  longest gap {gap}"
        if self.moved:
            return f"{route}  {self.seconds:.1f} s  {ping}"
        where = f"; still on {self.now_on}" if self.now_on else ""
        # a cancel's words are the outcome itself: "cancelled after 2.5 s: cancelled" says it twice
        why = f": {self.error}" if self.error and self.error.strip().lower() != self.outcome else ""
        return f"{route}  {self.outcome} after {self.seconds:.1f} s{why}{where}  {ping}"


@dataclass(frozen=True)
class Summary:
    lines: tuple[MoveLine, ...]  # in plan order
    seconds: float
    levels: tuple[Decision, ...]  # every level the rule set, the first one included
    most_at_once: int = 0  # the most moves that really ran at the same time
    cancelled: bool = False
    stop_reason: str = ""  # why new starts stopped ("" when nothing stopped them)

    @property
    def ok(self) -> bool:
        return all(line.moved for line in self.lines)

    @property
    def moved(self) -> tuple[MoveLine, ...]:
        return tuple(line for line in self.lines if line.moved)

    @property
    def not_moved(self) -> tuple[MoveLine, ...]:
        return tuple(line for line in self.lines if not line.moved)

    def left_behind(self) -> str:
        """What is still on the source, in words: a move whose outcome is unknown is not counted
        there (nor anywhere): poolctl never states a location it has not read."""
        still = [line.vm for line in self.not_moved if line.outcome != "unknown"]
        unknown = [line.vm for line in self.not_moved if line.outcome == "unknown"]
        parts = [f"still on it: {', '.join(still)}"] if still else []
        if unknown:
            parts.append(
                f"where {', '.join(unknown)} {'run' if len(unknown) > 1 else 'runs'} is not known (see `poolctl ls`)"
            )
        return "; ".join(parts)

    def total(self) -> str:
        """The closing line: how many moved, how fast, at most how many at once, what was lost."""
        lost = sum(line.lost for line in self.lines)
        gaps = [line for line in self.lines if line.longest_gap_s is not None]
        widest = max(gaps, key=lambda line: line.longest_gap_s or 0.0, default=None)
        gap = f", longest gap {widest.longest_gap_s:.2f} s ({widest.vm})" if widest is not None else ""
        text = (
            f"{len(self.moved)} of {len(self.lines)} VMs moved in {self.seconds:.1f} s, "
            f"at most {self.most_at_once} at once; lost {lost} probe{'s' if lost != 1 else ''}{gap}"
        )
        if self.not_moved:
            text += "; not moved: " + ", ".join(f"{line.vm} ({line.outcome})" for line in self.not_moved)
        return text

    def text_lines(self) -> list[str]:
        vm_w = max((len(line.vm) for line in self.lines), default=0)
        host_w = max((len(line.destination) for line in self.lines), default=0)
        return [line.text(vm_w, host_w) for line in self.lines] + [self.total()]
