"""Tour: Philox streams (bit-exact with NumPy) and the LAPACK table."""

from __future__ import annotations

import numpy as np

from randnla._tour import fmt_seconds, print_table, timed

TITLE = "Random numbers and the LAPACK table"


def run(quick: bool) -> bool:
    from randnla import _core
    from randnla.random import Stream

    n = 10**6 if quick else 10**7
    stream = Stream(key=2026, counter=0)
    out = np.empty(n)
    reference = np.empty(n)
    stream.uniform(out=out)  # warm-up (first touch of the pages)
    with timed() as ours:
        stream.uniform(out=out)
    with timed() as theirs:
        np.random.Generator(np.random.Philox(key=2026)).random(out=reference)
    identical = bool(np.array_equal(out, reference))
    one_thread = stream.uniform(out=np.empty(n), n_threads=1)
    normals = stream.standard_normal(n)
    rows = [
        ["uniform fill", f"{n:.0e}", fmt_seconds(ours.seconds), fmt_seconds(theirs.seconds),
         f"{theirs.seconds / ours.seconds:.1f}x", "bit-identical" if identical else "DIFFERENT"],
        ["1 vs all threads", f"{n:.0e}", "", "", "", "identical" if np.array_equal(one_thread, out) else "DIFFERENT"],
        ["normal fill", f"{n:.0e}", "", "", "", f"mean {normals.mean():+.1e}, var {normals.var():.4f}"],
    ]
    print("  Philox4x64-10 vs numpy.random.Generator(Philox):")
    print_table(["what", "n", "randnla", "numpy", "ratio", "check"], rows)

    rng = np.random.default_rng(0)
    a = rng.standard_normal((200, 200))
    a = a + a.T
    w, _, info = _core._lapack_hooks.syevd_float64(a)
    error = np.abs(np.sort(w) - np.linalg.eigvalsh(a)).max() / np.abs(w).max()
    print(f"  LAPACK table (SciPy's): dsyevd through the table vs numpy.linalg.eigvalsh, rel. error {error:.1e} (info {info})")
    return identical and error < 1e-12
