"""Timing helpers shared by the bench scripts.

Every bench module defines ``run(quick: bool) -> list[dict]``; each dict is one row:

    {"case": str, "randnla_s": float, "anchor": str, "anchor_s": float,
     "randnla_ok": bool, "anchor_ok": bool, "note": str (optional), "goal": str (optional)}

``ratio`` (anchor time / randnla time, > 1 means randnla is faster) is computed by run.py.
Rows may carry extra numeric fields (errors, iteration counts); run.py prints them in the note.
"""

from __future__ import annotations

import gc
import time


def best_time(fn, *, repeat: int = 3, min_time: float = 0.0, setup=None):
    """Best wall time of ``fn()`` over ``repeat`` runs (after ``setup()`` each time); returns (seconds, last result)."""
    best = float("inf")
    result = None
    for _ in range(max(repeat, 1)):
        if setup is not None:
            setup()
        gc.collect()
        start = time.perf_counter()
        result = fn()
        elapsed = time.perf_counter() - start
        best = min(best, elapsed)
        if min_time and elapsed > min_time:
            break
    return best, result


def row(case, randnla_s, anchor, anchor_s, randnla_ok=True, anchor_ok=True, note="", goal=""):
    return {
        "case": case,
        "randnla_s": float(randnla_s),
        "anchor": anchor,
        "anchor_s": float(anchor_s),
        "randnla_ok": bool(randnla_ok),
        "anchor_ok": bool(anchor_ok),
        "note": note,
        "goal": goal,
    }
