"""Choose a live migration's settings from what is known of the guest, the link and the probe.

Backend-neutral: the inputs are figures (memory, dirty rate, past throughput, probe interval),
the output is a ``MigrationOptions`` plus one line per setting saying why. What a backend
cannot apply is left out and said (``Choice.applied`` False), so the words never promise a
knob the hypervisor lacks. Everything chosen here can be set by hand (``TuneRequest``): a hand
setting always wins, and ``--tune off`` leaves every unset knob at the hypervisor's default.

The rules come from the QEMU lab (tests/lab/README.md, "Where lost probes come from"): the
guest-visible outage is QEMU's stop-and-copy plus ~10-20 ms of libvirt resuming the guest on
the destination; QEMU sends its RARP at resume and the switch relearns at once. Uncapped, QEMU
overestimates the link and its pause overshoots the limit (50-225 ms for a 10 ms limit); paced
at 8-16 MiB/s it keeps to it (9-26 ms). Post-copy's own pause is tiny but libvirt resumes the
guest 65-150 ms after the switch-over, so it is the remedy for a guest pre-copy cannot catch,
not a way to shorten an idle guest's pause.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from poolctl.model import MigrationOptions

MIB = 1 << 20
TuneMode = Literal["auto", "off"]
PostCopy = Literal["auto", "always", "never"]

# Pacing: a copy spread over about this long keeps QEMU's downtime estimate honest.
PACE_S = 6.0
PACE_MIN_MIB_S = 16
DOWNTIME_MIN_MS = 5
DOWNTIME_MAX_MS = 300  # QEMU's own default
DOWNTIME_SHARE = 0.1  # of the probe interval, for QEMU's part; libvirt's resume adds its own
NO_PROBE_DOWNTIME_MS = 50
AUTO_CONVERGE_SHARE = 0.05  # dirty rate / copy rate from which the guest's writes weigh on the copy
POSTCOPY_SHARE = 0.9  # from which it will not converge without help
PARALLEL_FROM_MIB = 4096  # guests from 4 GiB ...
PARALLEL_LINK_MIB_S = 500  # ... on links one connection's copy thread cannot fill
PARALLEL_MAX = 4
ASSUMED_LINK_BYTES_S = 110 * MIB  # without past moves: 1 GbE


@dataclass(frozen=True)
class TuneRequest:
    """What the user asked for (CLI, config's [migration], dialog); None = let the tuner choose."""

    tune: TuneMode = "auto"
    max_downtime_ms: int | None = None
    bandwidth_mib_s: int | None = None
    auto_converge: bool | None = None
    post_copy: PostCopy = "auto"
    parallel: int | None = None
    compress: bool | None = None


def request_from(settings: object) -> TuneRequest:
    """The request a config's ``[migration]`` table makes (``MigrationSettings``: same key names)."""
    return TuneRequest(
        tune=getattr(settings, "tune", "auto"),
        max_downtime_ms=getattr(settings, "max_downtime", None),
        bandwidth_mib_s=getattr(settings, "bandwidth", None),
        auto_converge=getattr(settings, "auto_converge", None),
        post_copy=getattr(settings, "post_copy", "auto"),
        parallel=getattr(settings, "parallel", None),
        compress=getattr(settings, "compress", None),
    )


@dataclass(frozen=True)
class TuneInputs:
    memory_bytes: int
    probe_interval_s: float | None  # None: nothing pings the guest
    dirty_rate_bytes_s: float | None = None  # None: not measured (Xen, or measuring failed)
    dirty_rate_source: str = ""
    link_bytes_s: float | None = None  # copy throughput of past moves between the pair
    link_source: str = ""
    copied_bytes: float | None = None  # what past moves of this VM sent (zero pages are cheap)
    disk_copy_s: float = 0.0  # storage motion: the disks' estimated copy, before the memory's


@dataclass(frozen=True)
class Choice:
    name: str  # the option's name, as the CLI spells it: max-downtime, bandwidth, ...
    value: str  # as shown: "10 ms", "16 MiB/s", "on", "off", "auto", "2"
    reason: str
    applied: bool = True  # False: the backend cannot set it; said, not sent
    by_hand: bool = False

    def line(self) -> str:
        how = "set by hand" if self.by_hand else self.reason
        tail = "" if self.applied else " (not offered by this backend)"
        return f"{self.name} {self.value}: {how}{tail}"


@dataclass(frozen=True)
class Tuning:
    options: MigrationOptions
    choices: tuple[Choice, ...] = field(default_factory=tuple)
    mode: TuneMode = "auto"

    def lines(self) -> list[str]:
        """One line per setting sent; the settings the backend lacks in one line at the end."""
        out = [c.line() for c in self.choices if c.applied]
        lacking = [c.name for c in self.choices if not c.applied]
        if lacking:
            out.append(f"not offered by this backend: {', '.join(lacking)}")
        return out

    def ignored(self) -> list[str]:
        """The settings given by hand that the backend cannot apply."""
        return [c.name for c in self.choices if c.by_hand and not c.applied]


def _mib(b: float) -> str:
    return f"{b / MIB:.0f} MiB" if b >= 10 * MIB else f"{b / MIB:.1f} MiB"


def tune(inputs: TuneInputs, req: TuneRequest, supported: frozenset[str]) -> Tuning:
    """The settings for one move; ``supported`` is the backend's ``MIGRATION_OPTIONS``."""
    choices: list[Choice] = []
    opts: dict[str, object] = {}
    auto = req.tune == "auto"

    def pick(name: str, field_name: str, value: object, shown: str, reason: str, by_hand: bool) -> None:
        ok = field_name in supported
        choices.append(Choice(name, shown, reason, applied=ok, by_hand=by_hand))
        if ok:
            opts[field_name] = value

    # max downtime: QEMU's part of the pause, kept well inside one probe interval
    if req.max_downtime_ms is not None:
        pick("max-downtime", "max_downtime_ms", req.max_downtime_ms, f"{req.max_downtime_ms} ms", "", True)
    elif auto:
        if inputs.probe_interval_s:
            ms = round(inputs.probe_interval_s * 1000 * DOWNTIME_SHARE)
            ms = max(DOWNTIME_MIN_MS, min(DOWNTIME_MAX_MS, ms))
            why = (
                f"a tenth of the {inputs.probe_interval_s * 1000:g} ms probe interval: the guest's pause is this "
                "plus the hypervisor's resume on the destination, and must fit between two probes"
            )
        else:
            ms = NO_PROBE_DOWNTIME_MS
            why = "no probe interval to fit; a pause most connections ride out"
        pick("max-downtime", "max_downtime_ms", ms, f"{ms} ms", why, False)

    copy_rate = inputs.link_bytes_s or ASSUMED_LINK_BYTES_S
    dirty = inputs.dirty_rate_bytes_s
    # bandwidth cap: pacing the copy so the hypervisor's pause estimate holds
    if req.bandwidth_mib_s is not None:
        pick("bandwidth", "bandwidth_mib_s", req.bandwidth_mib_s, f"{req.bandwidth_mib_s} MiB/s", "", True)
        copy_rate = min(copy_rate, req.bandwidth_mib_s * MIB)
    elif auto:
        cap = _pace(inputs)
        link = inputs.link_bytes_s
        if dirty is not None and cap * MIB < 3 * dirty:
            choices.append(
                Choice(
                    "bandwidth", "uncapped", f"the guest dirties {_mib(dirty)}/s: a {cap} MiB/s pace would not catch it"
                )
            )
        elif link is not None and cap * MIB >= 0.8 * link:
            choices.append(
                Choice("bandwidth", "uncapped", f"a {cap} MiB/s pace is no slower than the link ({_mib(link)}/s)")
            )
        else:
            pick(
                "bandwidth",
                "bandwidth_mib_s",
                cap,
                f"{cap} MiB/s",
                f"paces the {_mib(inputs.copied_bytes or inputs.memory_bytes)} copy over ~{PACE_S:g} s: at full "
                "speed the hypervisor misjudges the last pass and pauses longer than asked",
                False,
            )
            copy_rate = min(copy_rate, cap * MIB)

    share = dirty / copy_rate if dirty is not None else None
    # auto-converge: QEMU throttles the vCPUs only when a pass does not shrink, so it is dormant
    # for a quiet guest; turned on whenever the guest's writes weigh on the copy
    if req.auto_converge is not None:
        pick("auto-converge", "auto_converge", req.auto_converge, "on" if req.auto_converge else "off", "", True)
    elif auto:
        if share is not None and share >= AUTO_CONVERGE_SHARE:
            why = (
                f"the guest dirties {_mib(dirty or 0)}/s, {share:.0%} of the copy rate: "
                "throttle it if a pass does not shrink"
            )
            pick("auto-converge", "auto_converge", True, "on", why, False)
        elif dirty is None:
            why = "dirty rate unknown: on, the hypervisor throttles only if a pass does not shrink"
            pick("auto-converge", "auto_converge", True, "on", why, False)
        else:
            why = f"the guest dirties {_mib(dirty)}/s, {share or 0:.0%} of the copy rate: pre-copy converges alone"
            choices.append(Choice("auto-converge", "off", why, applied="auto_converge" in supported))

    # post-copy: the last resort (its switch-over pause is the longest here)
    if req.post_copy != "auto" or not auto:
        policy = req.post_copy if req.post_copy != "auto" else "never"
        by_hand = req.post_copy != "auto"
        why = "" if by_hand else "tuning off: the hypervisor's default (pre-copy only)"
        if policy == "never":
            choices.append(Choice("post-copy", "never", why, applied="post_copy" in supported, by_hand=by_hand))
        else:
            pick("post-copy", "post_copy", True, "always", why, by_hand)
            if "post_copy" in supported:
                opts["post_copy_now"] = True
    else:
        if share is not None and share >= POSTCOPY_SHARE:
            why = f"dirty rate {share:.0%} of the copy rate: pre-copy will not converge; switch after the first pass"
            pick("post-copy", "post_copy", True, "now", why, False)
            if "post_copy" in supported:
                opts["post_copy_now"] = True
        else:
            why = "allowed: switched to only if the passes stop shrinking (its pause is longer than pre-copy's)"
            pick("post-copy", "post_copy", True, "if stalled", why, False)

    # parallel connections: for big guests on links one copy thread cannot fill
    if req.parallel is not None:
        pick("parallel", "parallel", req.parallel, str(req.parallel), "", True)
    elif auto:
        big = inputs.memory_bytes >= PARALLEL_FROM_MIB * MIB
        fast = inputs.link_bytes_s is not None and inputs.link_bytes_s >= PARALLEL_LINK_MIB_S * MIB
        if big and fast and "bandwidth_mib_s" not in opts:
            n = min(PARALLEL_MAX, max(2, round(inputs.memory_bytes / (PARALLEL_FROM_MIB * MIB))))
            link_words = _mib(inputs.link_bytes_s or 0)
            why = f"{_mib(inputs.memory_bytes)} over a {link_words}/s link: one copy thread is the limit"
            pick("parallel", "parallel", n, str(n), why, False)
        else:
            why = f"{_mib(inputs.memory_bytes)} guest" + ("" if big else f" (below {PARALLEL_FROM_MIB // 1024} GiB)")
            choices.append(Choice("parallel", "1", why + ": one connection", applied="parallel" in supported))

    if req.compress is not None:
        pick("compress", "compress", req.compress, "on" if req.compress else "off", "", True)
    return Tuning(MigrationOptions(**opts), tuple(choices), req.tune)


def _pace(inputs: TuneInputs) -> int:
    size = inputs.copied_bytes or inputs.memory_bytes
    return max(PACE_MIN_MIB_S, round(size / MIB / PACE_S))
