"""What every benchmark shares: one machine-readable result line per measured step.

Each bench prints human-readable figures as it goes and, for every step it measures, one line

    RESULT {"step": ..., "size": ..., "seconds": ..., "peak_mb": ..., "baseline": ..., "baseline_seconds": ..., "ratio": ...}

which `bench/run.py` (``make bench``) collects into bench/RESULTS.md. ``ratio`` is ours / bare
library on the same data in the same run (lower is better; 1.0 = no overhead).
"""

from __future__ import annotations

import json
import resource


def peak_rss_mb() -> float:
    """High-water mark of this process's resident memory so far, in MB (Linux: ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def emit_result(
    step: str,
    *,
    size: str,
    seconds: float,
    baseline: str | None = None,
    baseline_seconds: float | None = None,
    peak_mb: float | None = None,
    note: str = "",
) -> dict:
    """Print (and return) one RESULT line for bench/run.py."""
    row = {
        "step": step,
        "size": size,
        "seconds": round(seconds, 3),
        "peak_mb": round(peak_mb if peak_mb is not None else peak_rss_mb(), 0),
        "baseline": baseline,
        "baseline_seconds": None if baseline_seconds is None else round(baseline_seconds, 3),
        "ratio": None if not baseline_seconds else round(seconds / baseline_seconds, 2),
        "note": note,
    }
    print("RESULT " + json.dumps(row), flush=True)
    return row
