"""Measure a VM's reachability during live migration: fixed-rate probes, losses, longest gap.

Knows nothing of backends or the TUI. ``pinger.Pinger`` is the API, ``stats.py`` says what
``longest_gap_s`` means, ``method.py`` picks ICMP, unprivileged ICMP or TCP connects, and
``limits.py`` holds the interval a user may choose. Import from those modules: this face
imports nothing, so the config can read the limits without loading icmplib and asyncio.
"""
