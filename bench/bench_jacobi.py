"""Jacobi eigensolvers vs numpy.linalg.eigh / eigvalsh / svd.

Three tables in one:
- batched: 10^4 stacked symmetric matrices, n = 4, 8, 16, 32, randnla.linalg.eigh (default
  cyclic pivots, SIMD across the batch, all cores) vs numpy.linalg.eigh on the same stack;
- accuracy: graded SPD matrices H = D A D, max relative eigenvalue error against a 60-digit
  mpmath reference, randnla.linalg.eigvalsh / eigh_spd vs numpy.linalg.eigvalsh (and the same
  for singular values of column-graded matrices);
- single large matrices n = 256 (512 and 1024 in full mode) vs numpy.linalg.eigh: the blocked
  solver (block pairs in round-robin order, GEMM updates).

NumPy's stacked eigh is a loop of single-matrix LAPACK calls; its BLAS is pinned to one thread
(threadpoolctl, when installed) for the batched rows, because idle-spinning BLAS threads stall
that loop badly on a shared machine. For single large matrices both NumPy and randnla are timed
with their own threads and pinned to one, and the faster is kept. randnla uses all cores across
the batch.
"""

from __future__ import annotations

import contextlib

import numpy as np

from _harness import best_time, row


def _blas_threads(limit):
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=limit, user_api="blas")


def _symmetric_stack(batch, n, rng):
    x = rng.standard_normal((batch, n, n))
    return (x + np.swapaxes(x, -1, -2)) / 2


def _eigh_ok(a, w, v, factor=50.0):
    n = a.shape[-1]
    eps = np.finfo(np.float64).eps
    norm = np.linalg.norm(a, axis=(-2, -1))
    residual = np.linalg.norm(a @ v - v * w[..., None, :], axis=(-2, -1)) / norm
    orth = np.linalg.norm(np.swapaxes(v, -1, -2) @ v - np.eye(n), axis=(-2, -1))
    return bool(residual.max() < factor * n * eps and orth.max() < factor * n * eps), float(residual.max())


def _graded_spd(n, spread, rng):
    x = rng.standard_normal((n, n))
    a = x @ x.T / n + np.eye(n)
    d = 1.0 / np.sqrt(np.diag(a))
    a = d[:, None] * a * d[None, :]
    g = rng.permutation(10.0 ** (-spread * rng.uniform(0, 1, n)))
    h = g[:, None] * a * g[None, :]
    return (h + h.T) / 2


def _mp_values(h, singular=False):
    try:
        import mpmath
    except ImportError:
        if singular:
            return None
        from randnla._tour.jacobi import reference_eigvalsh

        return reference_eigvalsh(h)[0]
    with mpmath.workdps(60):
        m = mpmath.matrix([[mpmath.mpf(float(x)) for x in r] for r in h])
        if singular:
            return np.sort([float(v) for v in mpmath.svd_r(m, compute_uv=False)])[::-1]
        return np.sort([float(v) for v in mpmath.eigsy(m, eigvals_only=True)])


def run(quick: bool) -> list[dict]:
    from randnla.linalg import eigh, eigh_spd, eigvalsh, svd

    rng = np.random.default_rng(0)
    rows = []
    goals = {4: ">= 5x", 8: ">= 5x", 16: ">= 3x", 32: ">= 1x"}
    for n in (4, 8, 16, 32):
        # Rows that take a few ms get more repetitions in quick mode too: with best of 2, one
        # unlucky time slice on a shared machine swings the ratio by 2x.
        repeat = 5 if (not quick or n <= 8) else 2
        batch = 2_000 if (quick and n == 32) else 10_000
        label = f"{batch // 1000}x10^3" if batch < 10_000 else "10^4"
        a = _symmetric_stack(batch, n, rng)
        with _blas_threads(1):
            t_np, (w_np, v_np) = best_time(lambda: np.linalg.eigh(a), repeat=repeat)
            t_np_vals, wv_np = best_time(lambda: np.linalg.eigvalsh(a), repeat=repeat)
        ok_np, _ = _eigh_ok(a, w_np, v_np)
        for pivot in ("cyclic", "round_robin"):
            t_ours, (w, v) = best_time(lambda: eigh(a, pivot=pivot), repeat=repeat)
            ok, res = _eigh_ok(a, w, v)
            agree = float(np.abs(w - w_np).max())
            rows.append(row(f"eigh batched {label} x {n}x{n}, {pivot}", t_ours, "numpy.linalg.eigh", t_np,
                            ok and agree < 1e-12 * n, ok_np, note=f"max|w - w_np| {agree:.1e}, residual {res:.1e}",
                            goal=goals[n]))
        t_vals, wv = best_time(lambda: eigvalsh(a, pivot="round_robin"), repeat=repeat)
        agree = float(np.abs(wv - wv_np).max())
        rows.append(row(f"eigvalsh batched {label} x {n}x{n}, round_robin", t_vals, "numpy.linalg.eigvalsh",
                        t_np_vals, agree < 1e-12 * n, True, note=f"max|w - w_np| {agree:.1e}"))

    repeat = 2 if quick else 5
    # float32: 32 matrices per lane group.
    for n in (8, 16):
        a32 = _symmetric_stack(10_000, n, rng).astype(np.float32)
        t_ours, (w, v) = best_time(lambda: eigh(a32), repeat=repeat)
        with _blas_threads(1):
            t_np, (w_np, _) = best_time(lambda: np.linalg.eigh(a32), repeat=repeat)
        orth = float(np.abs(np.swapaxes(v, -1, -2) @ v - np.eye(n, dtype=np.float32)).max())
        agree = float(np.abs(w - w_np).max())
        eps32 = float(np.finfo(np.float32).eps)
        rows.append(row(f"eigh batched 10^4 x {n}x{n}, float32, cyclic", t_ours, "numpy.linalg.eigh (float32)", t_np,
                        orth < 50 * n * eps32 and agree < 50 * n * eps32 * 4, True,
                        note=f"max|w - w_np| {agree:.1e}, orthogonality {orth:.1e}"))

    # Accuracy on graded matrices (small n, mpmath reference).
    n = 16
    for spread in (0, 8, 16):
        h = _graded_spd(n, spread, np.random.default_rng(spread + 1))
        reference = _mp_values(h)
        t_ours, w = best_time(lambda: eigvalsh(h), repeat=3)
        t_np, w_np = best_time(lambda: np.linalg.eigvalsh(h), repeat=3)
        _, w_spd = best_time(lambda: eigh_spd(h, compute_v=False), repeat=1)
        err, err_np = float(np.max(np.abs(w / reference - 1))), float(np.max(np.abs(w_np / reference - 1)))
        err_spd = float(np.max(np.abs(w_spd / reference - 1)))
        rows.append(row(f"graded SPD n={n}, D in 1e-{spread}..1: max rel. eigenvalue error", t_ours,
                        "numpy.linalg.eigvalsh", t_np, err < 1e-12 and err_spd < 1e-12, err_np < 1e-12,
                        note=f"randnla eigvalsh {err:.1e}, eigh_spd {err_spd:.1e}; numpy {err_np:.1e}",
                        goal="rel. err < 1e-12"))
    for spread in (8, 16):
        rng_s = np.random.default_rng(50 + spread)
        a = rng_s.standard_normal((24, 12)) * rng_s.permutation(10.0 ** (-spread * rng_s.uniform(0, 1, 12)))
        reference = _mp_values(a, singular=True)
        if reference is None:  # needs mpmath
            continue
        t_ours, s = best_time(lambda: svd(a, compute_uv=False), repeat=3)
        t_np, s_np = best_time(lambda: np.linalg.svd(a, compute_uv=False), repeat=3)
        err, err_np = float(np.max(np.abs(s / reference - 1))), float(np.max(np.abs(s_np / reference - 1)))
        rows.append(row(f"column-graded 24x12, D in 1e-{spread}..1: max rel. singular value error", t_ours,
                        "numpy.linalg.svd", t_np, err < 1e-12, err_np < 1e-12,
                        note=f"randnla {err:.1e}; numpy {err_np:.1e}", goal="rel. err < 1e-12"))

    # Single large matrices (the blocked solver, default pivot). Both sides are timed with their
    # own threads and with one thread, and the faster is kept (a shared machine often runs one
    # thread faster).
    sizes = (256,) if quick else (256, 512, 1024)
    for n in sizes:
        a = _symmetric_stack(1, n, rng)[0]
        reps = 1 if n >= 512 else 2
        t_ours, (w, v, info) = best_time(lambda: eigh(a, return_info=True), repeat=reps)
        with _blas_threads(1):
            t_ours = min(t_ours, best_time(lambda: eigh(a, n_threads=1), repeat=reps)[0])
        t_np, (w_np, v_np) = best_time(lambda: np.linalg.eigh(a), repeat=3)
        with _blas_threads(1):
            t_np = min(t_np, best_time(lambda: np.linalg.eigh(a), repeat=3)[0])
        ok, res = _eigh_ok(a, w, v)
        ok_np, _ = _eigh_ok(a, w_np, v_np)
        agree = float(np.abs(w - w_np).max())
        rows.append(row(f"eigh single {n}x{n}", t_ours, "numpy.linalg.eigh", t_np,
                        ok and agree < 1e-12 * n and bool(info.converged), ok_np,
                        note=f"residual {res:.1e}, {info.sweeps} sweeps; blocked Jacobi (BLAS-3 updates)",
                        goal="within 4x"))
    return rows
