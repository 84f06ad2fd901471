"""`poolctl completion bash|zsh`: the shell's completion script, generated from poolctl's own
parser by shtab, so it never falls behind the commands and options."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO


def run_completion(parser: argparse.ArgumentParser, shell: str, out: TextIO | None = None) -> int:
    import shtab

    (out or sys.stdout).write(shtab.complete(parser, shell=shell))
    return 0
