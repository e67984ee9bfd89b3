"""Tour: spectral cone projections, with their optimality certificates and times."""

from __future__ import annotations

import numpy as np

from randnla._tour import fmt_seconds, print_table, timed

TITLE = "Spectral cone projections (PSD, log-det, nuclear, spectral, sum-of-largest)"


def _eig(X):
    return np.linalg.eigvalsh(0.5 * (X + X.T))


def _sv(X):
    return np.linalg.svd(X, compute_uv=False)


class _Best:
    seconds = 0.0


def _best(fn, repeat=3):
    """Best of a few runs (the first call pays for page faults and thread start-up)."""
    best = _Best()
    best.seconds = float("inf")
    out = None
    for _ in range(repeat):
        with timed() as t:
            out = fn()
        best.seconds = min(best.seconds, t.seconds)
    return best, out


def run(quick: bool) -> bool:
    # Time both sides with one BLAS thread when threadpoolctl is there (randnla uses SciPy's
    # OpenBLAS, NumPy its own; two spinning pools on shared cores make timings meaningless).
    # Both libraries must be loaded before the limit is set, or it does not reach them.
    import numpy.linalg  # noqa: F401
    import scipy.linalg  # noqa: F401

    from randnla import cones  # noqa: F401

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return _run(quick)
    with threadpool_limits(limits=1, user_api="blas"):
        return _run(quick)


def _run(quick: bool) -> bool:
    from randnla import cones

    n = 120 if quick else 400
    rng = np.random.default_rng(0)
    A = rng.standard_normal((n, n))
    X = 0.5 * (A + A.T)
    R = rng.standard_normal((n, n // 2))  # rectangular, for the SVD cones
    s = max(1.0, float(np.abs(X).max()))

    t_eigh, _ = _best(lambda: np.linalg.eigh(X))
    t_svd, _ = _best(lambda: np.linalg.svd(R, full_matrices=False))

    rows = []
    ok = True

    def add(name, seconds, base, primal, dual, comp, dual_allowance=0.0):
        nonlocal ok
        worst = max(primal, max(0.0, dual - dual_allowance), abs(comp)) / s
        good = worst <= 1e-10
        ok &= good
        rows.append([name, fmt_seconds(seconds), f"{seconds / base:.2f}", f"{primal / s:.1e}", f"{dual / s:.1e}",
                     f"{abs(comp) / s / s:.1e}", "ok" if good else "FAIL"])

    # PSD: P >= 0, P - X >= 0, <P, P - X> = 0
    t, P = _best(lambda: cones.project_psd(X))
    D = P - X
    add("psd", t.seconds, t_eigh.seconds, max(0.0, -_eig(P)[0]), max(0.0, -_eig(D)[0]), float((P * D).sum()))

    # log-det (hypograph): t <= v log det(X / v); dual via the epigraph dual with s = -(t - t0)
    t0, v0 = -1.0, 1.0
    t, (tt, vv, L) = _best(lambda: cones.project_logdet_cone(t0, v0, X))
    tt, vv = float(tt), float(vv)
    wl = _eig(L)
    primal = max(0.0, tt - vv * float(np.log(np.maximum(wl, 1e-300) / vv).sum()))
    wd = _eig(L - X)
    sd, ud = -(tt - t0), vv - v0
    dual = max(0.0, -sd * float(np.log(np.maximum(wd, 1e-300) / sd).sum()) - n * sd - ud, -wd[0], -sd)
    # The eigenvalues of L - X recomputed here carry absolute errors of about n eps max|X|, and
    # sd log(w) amplifies an error in a tiny w by sd / w: the dual residual is only known to within
    # sd * sum(n eps max|X| / w), which is allowed for (the projection itself is not loosened).
    allowance = sd * float(np.sum(n * np.finfo(float).eps * s / np.maximum(wd, 1e-300)))
    add("log-det (t=-1, v=1)", t.seconds, t_eigh.seconds, primal, dual,
        tt * (tt - t0) + vv * (vv - v0) + float((L * (L - X)).sum()), dual_allowance=allowance)
    # and an independent route: NumPy's eigh with the vector log cone on the eigenvalues
    w_x, Q_x = np.linalg.eigh(X)
    tr, vr, xr = cones.project_log_cone(t0, v0, w_x)
    gap = max(abs(tt - float(tr)), abs(vv - float(vr)), float(np.abs(L - (Q_x * xr) @ Q_x.T).max())) / s
    ok &= gap <= 1e-12
    log_det_note = (f"  log-det: dual residual allowance for recomputed tiny eigenvalues {allowance / s:.1e}; "
                    f"max difference to NumPy eigh + vector log cone {gap:.1e}")

    # sum of the k largest eigenvalues
    k = max(1, n // 10)
    t, (ts, S) = _best(lambda: cones.project_sum_largest_cone(0.0, X, k))
    ts = float(ts)
    ws, wd = _eig(S), _eig(X - S)  # dual: 0 <= X - S <= eta I, trace = k eta
    eta = ts
    dual = max(0.0, -wd[0], wd[-1] - eta, abs(wd.sum() - k * eta))
    add(f"sum of {k} largest (t=0)", t.seconds, t_eigh.seconds, max(0.0, ws[::-1][:k].sum() - ts), dual,
        ts * eta + float((S * (S - X)).sum()))

    # nuclear and spectral norm cones on a rectangular matrix: each other's dual
    tn0 = float(_sv(R).sum()) / 4
    t, (tn, N) = _best(lambda: cones.project_nuclear_norm_cone(tn0, R))
    tn = float(tn)
    add("nuclear norm (n x n/2)", t.seconds, t_svd.seconds, max(0.0, _sv(N).sum() - tn),
        max(0.0, _sv(N - R)[0] - (tn - tn0)), tn * (tn - tn0) + float((N * (N - R)).sum()))
    tp0 = float(_sv(R)[0]) / 2
    t, (tp, Sp) = _best(lambda: cones.project_spectral_norm_cone(tp0, R))
    tp = float(tp)
    add("spectral norm (n x n/2)", t.seconds, t_svd.seconds, max(0.0, _sv(Sp)[0] - tp),
        max(0.0, _sv(Sp - R).sum() - (tp - tp0)), tp * (tp - tp0) + float((Sp * (Sp - R)).sum()))

    print(f"  One {n} x {n} symmetric Gaussian matrix (and an {n} x {n // 2} one for the SVD cones).")
    print(f"  Certificates, relative to max|X|: primal = distance-to-cone residual of P, dual = residual of")
    print(f"  P - z in the dual cone, compl. = |<P, P - z>|; 'x decomp.' = time / numpy eigh or svd time")
    print(f"  (eigh {fmt_seconds(t_eigh.seconds)}, svd {fmt_seconds(t_svd.seconds)}).")
    print_table(["cone", "time", "x decomp.", "primal", "dual", "compl.", "check"], rows)
    print(log_det_note)

    # a batch of small matrices: threads across the batch, in-house eigensolver
    count = 2000 if quick else 20000
    B = rng.standard_normal((count, 8, 8))
    B = 0.5 * (B + np.swapaxes(B, 1, 2))
    def stacked():
        w, Q = np.linalg.eigh(B)
        return (Q * np.maximum(w, 0)[:, None, :]) @ np.swapaxes(Q, 1, 2)

    t_ours, PB = _best(lambda: cones.project_psd(B))
    t_np, PN = _best(stacked)
    err = float(np.abs(PB - PN).max())
    ok &= err <= 1e-12 * float(np.abs(B).max())
    print(f"  batch of {count} PSD projections of 8 x 8: {fmt_seconds(t_ours.seconds)} vs NumPy stacked "
          f"eigh + reassembly {fmt_seconds(t_np.seconds)} ({t_np.seconds / t_ours.seconds:.1f}x), "
          f"max difference {err:.1e}")
    return bool(ok)
