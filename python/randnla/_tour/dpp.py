"""Tour: exact DPP sampling (diverse subsets, an exactness check, speed against DPPy if present)."""

from __future__ import annotations

import itertools
import math

import numpy as np

from randnla._tour import fmt_seconds, print_table, timed

TITLE = "Determinantal point processes: exact diverse subsets"


def _rbf(A, B, sigma):
    """RBF kernel block between the rows of A and B (matrix form: one matrix product)."""
    sq = (A**2).sum(1)[:, None] + (B**2).sum(1)[None, :] - 2.0 * A @ B.T
    return np.exp(-np.maximum(sq, 0.0) / (2 * sigma**2))


def run(quick: bool) -> bool:
    from scipy import stats

    from randnla.dpp import DPP, beta_ensemble

    ok = True
    rng = np.random.default_rng(0)

    # 1. a diverse subset from a kernel function (never forming the n x n kernel)
    n = 20000 if quick else 100000
    X = rng.uniform(size=(n, 2))
    kernel_matrix = lambda A, B: _rbf(A, B, 0.05)  # noqa: E731  (sklearn's rbf_kernel fits too)
    dpp = DPP(kernel_matrix=kernel_matrix, X=X)
    with timed() as t_alpha:
        S = dpp.sample(k=10, method="alpha", rng=1)
    more = dpp.sample(k=10, size=20, method="alpha", rng=2)
    uniform = [rng.choice(n, size=10, replace=False) for _ in range(20)]

    def min_gap(idx):
        P = X[idx]
        d = np.sqrt(((P[:, None] - P[None]) ** 2).sum(-1))
        return d[np.triu_indices(len(idx), 1)].min()

    print(f"  10 diverse points out of n = {n} (RBF kernel_matrix, alpha-DPP): first sample "
          f"{fmt_seconds(t_alpha.seconds)}, {dpp.stats.kernel_evaluations:.2e} kernel evaluations in the last call")
    dpp_gap = np.mean([min_gap(s) for s in more])
    uniform_gap = np.mean([min_gap(u) for u in uniform])
    print(f"  smallest pairwise distance, mean of 20 subsets: DPP {dpp_gap:.3f} vs uniform {uniform_gap:.3f}")
    ok &= S.size == 10 and dpp.stats.kernel_evaluations < 0.05 * n * n

    # 2. exactness on a small ground set: every subset's probability is known
    m = 6
    A = rng.standard_normal((m, 4))
    L = A @ A.T + 0.1 * np.eye(m)
    subsets = [s for r in range(m + 1) for s in itertools.combinations(range(m), r)]
    p = np.array([np.linalg.det(L[np.ix_(s, s)]) if s else 1.0 for s in subsets])
    p /= p.sum()
    index = {s: i for i, s in enumerate(subsets)}
    N = 10000 if quick else 40000
    rows = []
    for method in ("spectral", "ldl"):
        with timed() as t:
            samples = DPP(L).sample(size=N, method=method, rng=2)
        counts = np.zeros(len(subsets))
        for s in samples:
            counts[index[tuple(int(i) for i in s)]] += 1
        expected = N * p
        keep = expected >= 5
        observed, expect = counts[keep], expected[keep]
        if (~keep).any():
            observed = np.append(observed, counts[~keep].sum())
            expect = np.append(expect, expected[~keep].sum())
        pvalue = stats.chi2.sf(((observed - expect) ** 2 / expect).sum(), observed.size - 1)
        tv = 0.5 * np.abs(counts / N - p).sum()
        rows.append([method, f"{N}", fmt_seconds(t.seconds), f"{tv:.4f}", f"{pvalue:.3f}"])
        ok &= pvalue > 1e-6
    print(f"  exactness: {N} samples on n = {m} items against det(L_S)/det(I+L) over all {len(subsets)} subsets")
    print_table(["method", "samples", "time", "TV distance", "chi-square p"], rows)

    # 3. speed against DPPy, when installed
    n = 500 if quick else 2000
    Y = rng.standard_normal((n, 10))
    sq = (Y**2).sum(1)[:, None] + (Y**2).sum(1)[None, :] - 2 * Y @ Y.T
    L = np.exp(-np.maximum(sq, 0) / 20.0)
    dense = DPP(L)
    K = dense._marginal_kernel()
    rows = []
    with timed() as t_ldl:
        DPP(K=K).sample(method="ldl", rng=3)
    with timed() as t_from_L:
        S = DPP(L).sample(method="ldl", rng=3)  # one Cholesky of I + L, then O(n |S|^2)
    ok &= bool(S.size == 0 or (np.all(np.diff(S) > 0) and S[-1] < n))
    with timed() as t_eigh:
        dense._get_spectrum()
    dense.sample(k=10, rng=4)
    with timed() as t_k:
        for s in range(20):
            dense.sample(k=10, rng=s)
    with timed() as t_beta:
        x = beta_ensemble("hermite", 2000, 2.0, rng=5)
    ok &= abs((x**2).sum() / (2.0 * (2000 + 2000 * 1999)) - 1) < 0.05
    anchor = {}
    try:
        import contextlib
        import io

        from dppy.finite_dpps import FiniteDPP

        with contextlib.redirect_stdout(io.StringIO()):
            with timed() as t:
                FiniteDPP("correlation", K=K).sample_exact(mode="Chol", random_state=3)
            anchor["ldl"] = t.seconds
            V, w, _, _ = dense._get_spectrum()  # the same eigendecomposition for both
            finite = FiniteDPP("likelihood", L_eig_dec=(np.array(w), np.array(V)))
            finite.sample_exact_k_dpp(size=10, mode="GS", random_state=0)
            with timed() as t:
                for s in range(20):
                    finite.sample_exact_k_dpp(size=10, mode="GS", random_state=s)
            anchor["k"] = t.seconds / 20
    except Exception:  # noqa: BLE001 - DPPy missing or broken with this NumPy
        pass

    def ratio(key, ours):
        return f"{anchor[key] / ours:.1f}x" if key in anchor else "(DPPy not installed)"

    rows.append([f"one DPP sample, dense K, n={n} (ldl)", fmt_seconds(t_ldl.seconds),
                 fmt_seconds(anchor["ldl"]) if "ldl" in anchor else "-", ratio("ldl", t_ldl.seconds)])
    rows.append([f"one DPP sample, dense L, n={n} (ldl: one Cholesky)", fmt_seconds(t_from_L.seconds), "", ""])
    rows.append([f"  eigendecomposition of L, n={n} (for comparison)", fmt_seconds(t_eigh.seconds), "", ""])
    rows.append([f"k-DPP sample given eig, n={n}, k=10", fmt_seconds(t_k.seconds / 20),
                 fmt_seconds(anchor["k"]) if "k" in anchor else "-", ratio("k", t_k.seconds / 20)])
    rows.append(["beta-ensemble (Hermite, N=2000)", fmt_seconds(t_beta.seconds), "", ""])
    print("  speed (randnla vs DPPy 0.3.3 on the same input):")
    print_table(["what", "randnla", "DPPy", "ratio"], rows)
    return bool(ok)
