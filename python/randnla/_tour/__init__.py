"""The tour's sections: one module per area, each with ``TITLE`` and ``run(quick: bool)``.

``run`` prints what it did, how accurate it was and how long it took, on built-in synthetic data.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

# Order of the sections in `python -m randnla`.
AREAS = ("random", "sketch", "jacobi", "dpp", "cones", "ot")


def print_table(headers, rows):
    """A small aligned text table."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for k, row in enumerate(cells):
        print("  " + "  ".join(c.rjust(w) if (k and i) else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))))
        if k == 0:
            print("  " + "  ".join("-" * w for w in widths))


@contextmanager
def timed():
    """``with timed() as t: ...`` then ``t.seconds``."""

    class Timer:
        seconds = 0.0

    timer = Timer()
    start = time.perf_counter()
    try:
        yield timer
    finally:
        timer.seconds = time.perf_counter() - start


def fmt_seconds(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} us"
