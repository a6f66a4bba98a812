"""The one shape of progress reporting and cancelling for long work (loads, forecasts, simulations).

A long function takes ``progress(fraction, stage)`` (fraction 0–1, stage in plain words, shown
by the page's progress bar) and, when it can stop early, ``should_cancel()``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

Progress = Callable[[float, str], None]
ShouldCancel = Callable[[], bool]


def no_progress(_fraction: float, _stage: str) -> None:
    """The default ``progress``: report nothing."""
    return None


def never_cancel() -> bool:
    """The default ``should_cancel``: run to the end."""
    return False


def printed_progress(stream: TextIO | None = None, *, step: float = 0.1) -> Progress:
    """A ``progress`` for the command line: a line with the percentage and stage each time the work
    passes another ``step`` (10%) and at the end, to ``stream`` (stderr by default, so ``--json``
    on stdout stays clean)."""
    printed = [-1]

    def report(fraction: float, stage: str) -> None:
        fraction = min(max(fraction, 0.0), 1.0)
        mark = int(fraction / step + 1e-9)
        if mark <= printed[0]:
            return
        printed[0] = mark
        print(f"[{fraction:4.0%}] {stage}", file=stream or sys.stderr, flush=True)

    return report
