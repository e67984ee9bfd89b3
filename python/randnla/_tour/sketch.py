"""Tour: coordinated sketches of two tables, accuracy vs JL at equal storage, l-infinity regression."""

from __future__ import annotations

import numpy as np

from randnla._tour import fmt_seconds, print_table, timed

TITLE = "Sketching: coordinated sampling and l-infinity regression"


def _sparse_table(rng, n, d, s, rows):
    import scipy.sparse as sp

    r = np.repeat(rows, s)
    return sp.csr_array((rng.standard_t(3, size=r.size), (r, rng.integers(0, d, size=r.size))), shape=(n, d))


def run(quick: bool) -> bool:
    import scipy.sparse as sp

    from randnla import sketch

    ok = True
    rng = np.random.default_rng(0)
    n, d, s = (20_000, 300, 5) if quick else (100_000, 1000, 5)
    rows_a = rng.choice(n, n // 2, replace=False)
    rows_b = np.concatenate([rows_a[: n // 4], rng.choice(np.setdiff1d(np.arange(n), rows_a), n // 4, replace=False)])
    A, B = _sparse_table(rng, n, d, s, rows_a), _sparse_table(rng, n, d, s, rows_b)
    truth = (A.T @ B).toarray()
    scale = sp.linalg.norm(A) * sp.linalg.norm(B)
    storage = 20_000
    k = storage // (2 * s + 1)
    seed = 2026
    # Two parties sketch their own table, sharing only the seed; each ships its sketch as a file.
    with timed() as build:
        sketch_a = sketch.priority_sample(A, k, seed=seed)
        sketch_b = sketch.priority_sample(B, k, seed=seed)
    with timed() as est:
        W = sketch.estimate_matmul(sketch_a, sketch_b)
    err_ps = np.linalg.norm(W - truth) / scale
    m_lin = storage // d
    with timed() as jl_time:
        S = sketch.gaussian(m_lin, n, rng=seed)
        W_jl = (S @ A).T @ (S @ B)
    err_jl = np.linalg.norm(W_jl - truth) / scale
    print(f"  A^T B for two sparse {n}x{d} tables ({s} nonzeros per row, 50% shared keys), sketched apart:")
    print_table(
        ["method", "stored numbers", "rel. Frobenius error", "time"],
        [
            ["coordinated priority sampling", f"{sketch_a.stored_numbers}", f"{err_ps:.4f}",
             fmt_seconds(build.seconds + est.seconds)],
            ["Gaussian JL (linear sketch)", f"{m_lin * d}", f"{err_jl:.4f}", fmt_seconds(jl_time.seconds)],
        ],
    )
    print(f"  coordinated sampling is {err_jl / err_ps:.1f}x more accurate at equal storage")
    ok &= err_ps < err_jl

    # Shards merge exactly into the sketch of the whole table.
    cut = n // 3
    keys = np.arange(n)
    parts = [sketch.priority_sample(A[:cut], k, seed=seed, keys=keys[:cut]),
             sketch.priority_sample(A[cut:], k, seed=seed, keys=keys[cut:])]
    merged = sketch.merge(parts)
    exact = bool(np.array_equal(merged.keys, sketch_a.keys) and merged.tau == sketch_a.tau)
    print(f"  merge of 2 shard sketches == sketch of the whole table: {exact}")
    ok &= exact

    # l-infinity regression with a coherent design and an outlier residual.
    n2, d2 = (4096, 10) if quick else (16384, 20)
    A2 = np.vstack([10 * np.eye(d2), 0.01 * rng.standard_normal((n2 - d2, d2))])
    r = np.zeros(n2)
    r[n2 // 2] = 1.0
    q, _ = np.linalg.qr(A2)
    r -= q @ (q.T @ r)
    x0 = rng.standard_normal(d2)
    b2 = A2 @ x0 + r
    unit = np.linalg.norm(r) / np.linalg.svd(A2, compute_uv=False)[-1] / np.sqrt(d2)
    rows = []
    with timed() as ref_time:
        x_ref = np.linalg.lstsq(A2, b2, rcond=None)[0]
    for kind in ("gaussian", "srht"):
        with timed() as t:
            res = sketch.sketched_lstsq(A2, b2, eps=1.0, kind=kind, rng=1)
        e = np.abs(res.x - x_ref).max() / unit
        covered = bool(np.all(np.abs(res.x - x_ref) <= res.error_bar))
        rows.append([kind, res.m, f"{e:.3f}", "yes" if covered else "no", fmt_seconds(t.seconds)])
        ok &= e <= 1.0
    worst = 0.0
    for seed_cs in range(20):
        S = sketch.countsketch(rows[0][1], n2, rng=seed_cs)
        x_cs = np.linalg.lstsq(S @ A2, S @ b2, rcond=None)[0]
        worst = max(worst, np.abs(x_cs - x_ref).max() / unit)
    rows.append(["countsketch, worst of 20 seeds (refused)", rows[0][1], f"{worst:.3f}", "", ""])
    print(f"  l-infinity regression, coherent {n2}x{d2} design + one outlier (target eps = 1; numpy lstsq "
          f"{fmt_seconds(ref_time.seconds)}):")
    print_table(["sketch", "rows", "||x-x*||_inf / (||r|| ||A^+|| / sqrt d)", "inside error bars", "time"], rows)
    return bool(ok)
