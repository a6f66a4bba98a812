"""The one shape of progress reporting and cancelling for long work (loads, forecasts, simulations).

A long function takes ``progress(fraction, stage)`` (fraction 0–1, stage in plain words, shown
by the page's progress bar) and, when it can stop early, ``should_cancel()``.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[float, str], None]
ShouldCancel = Callable[[], bool]


def no_progress(_fraction: float, _stage: str) -> None:
    """The default ``progress``: report nothing."""
    return None


def never_cancel() -> bool:
    """The default ``should_cancel``: run to the end."""
    return False
