"""Exactness and contracts of the DPP samplers (spectral, ldl, projection)."""

from __future__ import annotations

import numpy as np
import pytest

from randnla.dpp import DPP, sample

from _reference import (
    assert_cardinality_mean,
    assert_dpp_law,
    assert_inclusions,
    assert_law,
    choose_pairs,
    dpp_law,
    kdpp_law,
    kdpp_marginals,
    projection_law,
    dpp_rbf,
    z_bound,
)

N_LAW = 20000


def small_L(seed=1, n=6, rank=4, ridge=0.1):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, rank))
    return A @ A.T + ridge * np.eye(n), A


def marginal_of(L):
    return L @ np.linalg.inv(np.eye(L.shape[0]) + L)


@pytest.mark.parametrize("method", ["spectral", "ldl"])
@pytest.mark.parametrize("given", ["L", "K"])
def test_dpp_exact_law(method, given):
    L, _ = small_L()
    dpp = DPP(L) if given == "L" else DPP(K=marginal_of(L))
    samples = dpp.sample(size=N_LAW, method=method, rng=11)
    assert_dpp_law(samples, L)


def test_dpp_exact_law_blocked_ldl_and_rank_deficient():
    # n = 8 with rank 3: 7 of 8 cardinalities have zero-probability sets, which must never appear.
    L, _ = small_L(seed=2, n=8, rank=3, ridge=0.0)
    subsets, p = dpp_law(L)
    for method in ("spectral", "ldl"):
        samples = DPP(L).sample(size=N_LAW, method=method, rng=12)
        assert_law(samples, subsets, p)
        assert max(len(s) for s in samples) <= 3


def test_factor_dual_route_exact_law():
    _, A = small_L(seed=3, n=7, rank=3)
    L = A @ A.T
    subsets, p = dpp_law(L)
    dpp = DPP(factor=A)
    samples = dpp.sample(size=N_LAW, rng=13)
    assert_law(samples, subsets, p)
    subsets, pk = kdpp_law(L, 2)
    assert_law(dpp.sample(k=2, size=N_LAW, rng=14), subsets, pk)
    with pytest.raises(ValueError, match="rank"):
        dpp.sample(k=4, rng=0)


@pytest.mark.parametrize("route", [1, 2, 3])
def test_phase2_routes_exact_law(monkeypatch, route):
    # phase 2 by rejection (1), by the direct residual update (2), and rejection handing over to
    # the direct route mid-sample (3), from the rows of V and in the dual space of a factor
    import randnla.dpp as dpp_module

    monkeypatch.setattr(dpp_module, "_PHASE2_ROUTE", route)
    L, A = small_L(seed=7, n=7, rank=4)
    samples = DPP(L).sample(size=N_LAW, method="spectral", rng=40 + route)
    assert_dpp_law(samples, L)
    subsets, pk = kdpp_law(L, 3)
    assert_law(DPP(L).sample(k=3, size=N_LAW, rng=43 + route), subsets, pk)
    # an ill-conditioned factor: the dual proposals |b_i|^2 / min theta_J are far from tight
    B = A * np.array([1.0, 0.3, 3.0, 0.05])
    LB = B @ B.T
    subsets, p = dpp_law(LB)
    dual = DPP(factor=B)
    samples = dual.sample(size=N_LAW, rng=46 + route)
    assert_law(samples, subsets, p)
    lam = np.linalg.eigvalsh(LB)
    assert_cardinality_mean(samples, np.clip(lam, 0, None) / (1 + np.clip(lam, 0, None)))
    subsets, pk = kdpp_law(LB, 3)
    assert_law(dual.sample(k=3, size=N_LAW, rng=49 + route), subsets, pk)


def test_factor_rows_and_dual_agree_on_a_larger_ground_set():
    # n = 300, d = 4: the dual rejection route (no V), then the rows of V once they are formed;
    # inclusion frequencies of both against the exact K_ii
    rng = np.random.default_rng(8)
    B = rng.standard_normal((300, 4)) * np.array([0.1, 0.12, 0.09, 0.2])
    dpp = DPP(factor=B)
    K = B @ np.linalg.solve(np.eye(4) + B.T @ B, B.T)
    first = dpp.sample(size=4000, rng=50)
    assert dpp._rows is None
    dpp._get_spectrum()
    second = dpp.sample(size=4000, rng=51)
    bound = z_bound(300)
    for samples in (first, second):
        counts = np.zeros(300)
        for s in samples:
            assert np.unique(s).size == s.size
            counts[s] += 1
        p = np.diag(K)
        z = (counts / len(samples) - p) / np.sqrt(p * (1 - p) / len(samples))
        assert np.abs(z).max() < bound


@pytest.mark.parametrize("k", [1, 3, 5])
def test_kdpp_exact_law(k):
    L, _ = small_L(seed=4, n=7, rank=5)
    subsets, p = kdpp_law(L, k)
    samples = DPP(L).sample(k=k, size=N_LAW, rng=20 + k)
    assert all(len(s) == k for s in samples)
    assert_law(samples, subsets, p)


def test_kdpp_scale_invariance_and_ill_conditioned_spectrum():
    # eigenvalues over 16 orders of magnitude: the linear-space ESP recursion under/overflows here.
    rng = np.random.default_rng(5)
    Q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    lam = np.array([1e-8, 1e-4, 1.0, 1e2, 1e5, 1e8])
    L = (Q * lam) @ Q.T
    L = 0.5 * (L + L.T)
    subsets, p = kdpp_law(L, 3)
    assert_law(DPP(L * 1e-200).sample(k=3, size=N_LAW, rng=6), subsets, p)


def test_projection_exact_law():
    L, _ = small_L(seed=6, n=7, rank=7)
    _, V = np.linalg.eigh(L)
    P = V[:, :3] @ V[:, :3].T
    subsets, p = projection_law(P)
    for method in ("projection", "spectral", "ldl"):
        samples = DPP(K=P).sample(size=N_LAW, method=method, rng=30)
        assert all(len(s) == 3 for s in samples)
        assert_law(samples, subsets, p)


def test_inclusion_probabilities_n200():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((200, 3))
    L = 0.3 * dpp_rbf(X[:, None], X[None, :], sigma=1.0)  # E|S| = 16.7
    K = marginal_of(L)
    pairs = choose_pairs(K, rng)
    dpp = DPP(L)
    ldl = dpp.sample(size=1500, method="ldl", rng=40)  # n = 200 > 128: the blocked path
    assert_inclusions(ldl, K, pairs)
    spectral = dpp.sample(size=10000, method="spectral", rng=41)
    assert_inclusions(spectral, K, pairs)
    assert np.allclose(dpp.marginals(), np.diag(K), atol=1e-12)
    assert np.isclose(dpp.expected_size(), np.trace(K), rtol=1e-12)


def test_kdpp_marginals():
    rng = np.random.default_rng(8)
    X = rng.standard_normal((30, 2))
    L = dpp_rbf(X[:, None], X[None, :], sigma=0.8)
    k = 6
    exact = kdpp_marginals(L, k)
    N = 20000
    samples = DPP(L).sample(k=k, size=N, rng=9)
    counts = np.zeros(30)
    for s in samples:
        counts[s] += 1
    p = np.clip(exact, 1e-12, 1 - 1e-12)
    z = (counts / N - p) / np.sqrt(p * (1 - p) / N)
    assert np.abs(z).max() < z_bound(30)
    assert np.isclose(exact.sum(), k)


def test_log_prob():
    L, _ = small_L()
    dpp = DPP(L)
    S = np.array([0, 2, 5])
    expected = np.linalg.slogdet(L[np.ix_(S, S)])[1] - np.linalg.slogdet(np.eye(6) + L)[1]
    assert np.isclose(dpp.log_prob(S), expected, rtol=1e-10)
    subsets, pk = kdpp_law(L, 3)
    assert np.isclose(np.exp(dpp.log_prob(S, k=3)), pk[subsets.index((0, 2, 5))], rtol=1e-10)
    assert dpp.log_prob(S, k=2) == -np.inf
    dk = DPP(K=marginal_of(L))
    assert np.isclose(dk.log_prob(S), expected, rtol=1e-9)
    assert np.isclose(dk.log_prob(np.array([], dtype=np.int64)), -np.linalg.slogdet(np.eye(6) + L)[1], rtol=1e-9)


def test_reproducible_and_thread_independent():
    L, _ = small_L(seed=10, n=40, rank=40)
    dpp = DPP(L)
    a = dpp.sample(size=64, rng=3, n_threads=1)
    b = dpp.sample(size=64, rng=3, n_threads=2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    c = dpp.sample(k=5, size=64, rng=3, n_threads=1)
    d = dpp.sample(k=5, size=64, rng=3, n_threads=2)
    assert all(np.array_equal(x, y) for x, y in zip(c, d))
    assert np.array_equal(dpp.sample(method="ldl", rng=5), dpp.sample(method="ldl", rng=5))
    assert np.array_equal(sample(L, k=4, rng=1), sample(L, k=4, rng=1))


def test_cache_reused_and_growing_k():
    L, _ = small_L(seed=11, n=30, rank=30)
    dpp = DPP(L)
    dpp.sample(k=2, rng=0)
    spectrum = dpp._spectrum
    assert dpp.sample(k=20, rng=0).size == 20
    assert dpp._spectrum is spectrum
    assert dpp.sample(k=3, rng=1).size == 3


def test_float32_and_empty_sizes():
    L, _ = small_L()
    s = DPP(L.astype(np.float32)).sample(rng=0)
    assert s.dtype == np.int64
    assert DPP(L).sample(size=0, rng=0) == []
    assert DPP(L).sample(k=0, rng=0).size == 0
    assert DPP(np.zeros((4, 4))).sample(rng=0).size == 0


def test_validation_errors():
    L, _ = small_L()
    with pytest.raises(ValueError, match="symmetric"):
        DPP(L + np.triu(np.ones((6, 6)), 1))
    with pytest.raises(ValueError, match="positive semidefinite"):
        DPP(L - 5 * np.eye(6)).sample(method="spectral", rng=0)
    with pytest.raises(ValueError, match="L"):
        DPP(L - 50 * np.eye(6)).sample(method="ldl", rng=0)
    with pytest.raises(ValueError, match="eigenvalues in"):
        DPP(K=2 * marginal_of(L)).sample(method="spectral", rng=0)
    with pytest.raises(ValueError, match="K"):
        DPP(K=2 * marginal_of(L)).sample(method="ldl", rng=0)
    bad = L.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        DPP(bad)
    with pytest.raises(ValueError, match="square"):
        DPP(np.ones((3, 4)))
    with pytest.raises(ValueError, match="2-dimensional"):
        DPP(np.ones(3))
    with pytest.raises(ValueError, match="exactly one"):
        DPP(L, K=L)
    with pytest.raises(ValueError, match="method"):
        DPP(L).sample(method="nope")
    with pytest.raises(ValueError, match="k"):
        DPP(L).sample(k=7)
    with pytest.raises(ValueError, match="rank"):
        DPP(small_L(n=6, rank=2, ridge=0)[0]).sample(k=3, rng=0)
    with pytest.raises(ValueError, match="k-DPP"):
        DPP(L).sample(k=2, method="ldl")
    with pytest.raises(ValueError, match="projection"):
        DPP(K=marginal_of(L)).sample(method="projection")
    with pytest.raises(ValueError, match="projection"):
        DPP(L).sample(method="projection")
    with pytest.raises(TypeError, match="size"):
        DPP(L).sample(size=2.5)
    with pytest.raises(ValueError, match="S"):
        DPP(L).log_prob(np.array([0, 0]))


def test_cupy_spectral(xp):
    L, _ = small_L(seed=12, n=7, rank=5)
    subsets, p = dpp_law(L)
    dpp = DPP(xp.asarray(L))
    samples = dpp.sample(size=N_LAW, method="spectral", rng=50)
    assert type(samples[0]).__module__.split(".")[0] == xp.__name__
    host = [np.asarray(s.get() if hasattr(s, "get") else s) for s in samples]
    assert_law(host, subsets, p)
    subsets, pk = kdpp_law(L, 3)
    host = [np.asarray(s.get() if hasattr(s, "get") else s) for s in dpp.sample(k=3, size=N_LAW, rng=51)]
    assert_law(host, subsets, pk)


@pytest.mark.parametrize("k", [None, 3])
def test_batched_array_sampler_exact_law(k):
    # The array-operation sampler behind the CuPy path, run here with NumPy.
    from randnla import dpp as dpp_module
    from randnla._rng import philox_key

    L, _ = small_L(seed=13, n=7, rank=5)
    subsets, p = dpp_law(L) if k is None else kdpp_law(L, k)
    dpp = DPP(L)
    V, _, lam_K, log_lam = dpp._get_spectrum()
    table = dpp._esp_table(k) if k is not None else None
    samples = dpp_module._spectral_batched(np, V, lam_K, log_lam, k, table, N_LAW, philox_key(60), chunk_elements=1 << 16)
    assert len(samples) == N_LAW
    assert_law(samples, subsets, p)


def test_statistical_checks_reject_a_wrong_sampler():
    # Negative control: independent Bernoulli(K_ii) has the right first-order marginals but the
    # wrong law; the enumeration chi-square must reject it at the 1e-6 level.
    from _reference import chi_square_pvalue, counts_of

    L, _ = small_L()
    subsets, p = dpp_law(L)
    K = marginal_of(L)
    rng = np.random.default_rng(0)
    draws = rng.random((N_LAW, 6)) < np.diag(K)
    samples = [np.flatnonzero(row).astype(np.int64) for row in draws]
    assert chi_square_pvalue(counts_of(samples, subsets), p) < 1e-6


# ---- the sequential route on L: one Cholesky factorization of I + L, O(n k^2) per sample ----


def dpp_law_mp(L, dps=40):
    """dpp_law with the determinants in mpmath (L with eigenvalues over many orders of magnitude)."""
    import mpmath as mp

    from _reference import all_subsets

    n = L.shape[0]
    subsets = all_subsets(n)
    with mp.workdps(dps):
        rows = L.tolist()
        weights = [mp.det(mp.matrix([[rows[i][j] for j in s] for i in s])) if s else mp.mpf(1) for s in subsets]
        total = mp.fsum(weights)
        p = np.array([float(w / total) for w in weights])
    return subsets, np.where(p > 1e-15, p, 0.0)


def spread_L(top, seed=14, n=8):
    Q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))
    lam = np.array([top, top / 3, top / 100, 1e4, 50.0, 1.0, 0.3, 0.05])[:n]
    L = (Q * lam) @ Q.T
    return 0.5 * (L + L.T)


@pytest.mark.parametrize("top", [1e8, 1e12])
def test_ldl_on_L_nearly_projection(top):
    # K = L (I + L)^{-1} has eigenvalues 1 - 1e-8 (or 1 - 1e-12): G is ill-conditioned, the law exact
    L = spread_L(top)
    subsets, p = dpp_law_mp(L)
    dpp = DPP(L)
    samples = dpp.sample(size=N_LAW, method="ldl", rng=60)
    assert dpp._fallbacks == 0
    assert_law(samples, subsets, p)
    lam = np.linalg.eigvalsh(L)
    assert_cardinality_mean(samples, lam / (1 + lam))


def test_ldl_on_L_fallback_to_K_keeps_the_law(monkeypatch):
    # A tolerance no bordering pivot can meet stops every sample at its first inclusion (below the
    # top item); the sample is then finished on K with the decisions made so far imposed.
    import randnla.dpp as dpp_module

    monkeypatch.setattr(dpp_module, "_CHOLESKY_TOLERANCE", 1e300)
    for L, seed in ((small_L()[0], 61), (spread_L(1e8), 62)):
        subsets, p = dpp_law_mp(L)
        dpp = DPP(L)
        samples = dpp.sample(size=N_LAW, method="ldl", rng=seed)
        assert dpp._fallbacks > N_LAW // 2
        assert_law(samples, subsets, p)
        lam = np.linalg.eigvalsh(L)
        assert_cardinality_mean(samples, lam / (1 + lam))


def test_ldl_on_L_natural_fallback():
    # eigenvalues up to 1e14: the bordering pivots of G drop below their rounding error and the
    # route hands the samples over to K
    L = spread_L(1e14)
    dpp = DPP(L)
    samples = dpp.sample(size=N_LAW, method="ldl", rng=63)
    assert dpp._fallbacks > 0
    lam = np.clip(np.linalg.eigvalsh(L), 0, None)
    assert_cardinality_mean(samples, lam / (1 + lam))


@pytest.mark.parametrize("given", ["factor", "kernel"])
def test_ldl_on_factor_and_kernel_inputs(given):
    L, A = small_L(seed=15, n=7, rank=4, ridge=0.0)
    subsets, p = dpp_law(L)
    if given == "factor":
        dpp = DPP(factor=A)
    else:
        dpp = DPP(kernel=lambda x, y: (x * y).sum(-1), X=A)
    assert_law(dpp.sample(size=N_LAW, method="ldl", rng=64), subsets, p)


def test_ldl_on_L_thread_independent_and_cached():
    rng = np.random.default_rng(16)
    X = rng.standard_normal((150, 3))
    L = 0.5 * dpp_rbf(X[:, None], X[None, :], sigma=0.7)
    dpp = DPP(L)
    a = dpp.sample(size=40, method="ldl", rng=7, n_threads=1)
    U = dpp._chol
    b = dpp.sample(size=40, method="ldl", rng=7, n_threads=2)
    assert dpp._chol is U  # one factorization for all calls
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert np.array_equal(DPP(L).sample(method="ldl", rng=7), a[0])  # sample 0 of a batch = the single sample
    assert np.allclose(dpp.marginals(), np.diag(marginal_of(L)), atol=1e-12)  # K from the cached factor
