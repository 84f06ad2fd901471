"""A one-line ping sparkline that is cheap to redraw over SSH.

Textual's stock ``Sparkline`` gives every cell its own colour, which costs an escape sequence
per cell on every frame (~50 KB/s at 5 Hz). This one draws the whole line in one style, so a
redraw is the line's characters plus one style code; it never changes size (no re-layout)
and it repaints only when a new sample arrived. Loss is a distinct character, not a colour.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.segment import Segment
from textual.strip import Strip
from textual.widget import Widget

from poolctl.ping import Sample

BARS = "▁▂▃▄▅▆▇█"
LOST = "×"
EMPTY = " "
SCALE_FLOOR_MS = 1.0  # RTTs below this all draw as the lowest bar: loopback jitter is not news


def sparkline_text(samples: Sequence[Sample], width: int) -> str:
    """The newest ``width`` samples as bars (height ~ RTT), ``×`` for a lost probe; right-aligned."""
    if width <= 0:
        return ""
    shown = list(samples)[-width:]
    rtts = [s.rtt_ms for s in shown if s.rtt_ms is not None]
    top = max([SCALE_FLOOR_MS, *rtts])
    chars = []
    for s in shown:
        if s.rtt_ms is None:
            chars.append(LOST)
        else:
            level = min(len(BARS) - 1, max(0, math.ceil(len(BARS) * s.rtt_ms / top) - 1))
            chars.append(BARS[level])
    return EMPTY * (width - len(chars)) + "".join(chars)


class PingSparkline(Widget):
    """One row of bars; ``update_samples`` repaints only this widget, and only on news."""

    DEFAULT_CSS = """
    PingSparkline {
        height: 1;
        width: 1fr;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._samples: list[Sample] = []
        self._key: tuple[int, int] | None = None  # (newest seq, width) of the cached strip
        self._strip: Strip | None = None
        self.text = ""

    def update_samples(self, samples: list[Sample]) -> None:
        """Take the pinger's samples; repaint when one is new."""
        newest = samples[-1].seq if samples else -1
        if self._key is not None and self._key[0] == newest:
            return
        self._samples = samples
        self._strip = None
        self.refresh()

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y != 0 or width <= 0:
            return Strip.blank(width, self.rich_style)
        newest = self._samples[-1].seq if self._samples else -1
        if self._strip is None or self._key != (newest, width):
            self.text = sparkline_text(self._samples, width)
            style = self.rich_style
            self._strip = Strip([Segment(self.text, style)]).adjust_cell_length(width, style)
            self._key = (newest, width)
        return self._strip
