"""Philox uniform/normal fills vs numpy.random.Generator(Philox) on the same key."""

from __future__ import annotations

import numpy as np

from _harness import best_time, row


def run(quick: bool):
    from randnla import _core
    from randnla.random import Stream

    n = 10**7 if quick else 10**8
    threads = _core.max_threads()
    stream = Stream(key=20261129)
    ours = np.empty(n)
    theirs = np.empty(n)
    ours.fill(0.0)  # first touch outside the timings, for both
    theirs.fill(0.0)
    rows = []

    t_numpy, _ = best_time(lambda: np.random.Generator(np.random.Philox(key=20261129)).random(out=theirs))
    for n_threads in (1, threads):
        t_ours, _ = best_time(lambda: stream.uniform(out=ours, n_threads=n_threads))
        identical = bool(np.array_equal(ours, theirs))
        rows.append(row(f"uniform float64, n={n:.0e}, {n_threads} thread(s)", t_ours,
                        "numpy Generator(Philox).random (1 thread)", t_numpy, identical, True,
                        note="bit-identical" if identical else "DIFFERENT",
                        goal=">= 2x on 2 threads" if n_threads > 1 else ""))

    z = np.empty(n)
    t_normal, _ = best_time(lambda: stream.standard_normal(out=z))
    t_numpy_normal, _ = best_time(lambda: np.random.Generator(np.random.Philox(key=1)).standard_normal(out=theirs))
    ok = abs(z.mean()) < 6 / np.sqrt(n) and abs(z.var() - 1) < 6 * np.sqrt(2 / n)
    rows.append(row(f"standard normal float64, n={n:.0e}, {threads} thread(s)", t_normal,
                    "numpy Generator(Philox).standard_normal (ziggurat)", t_numpy_normal, ok, True,
                    note="moments within 6 sigma"))
    return rows
