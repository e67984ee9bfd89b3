"""Matrix-form kernel functions, DPP(kernel_matrix=g, X=X): exact laws, agreement with the pairwise
form, evaluation counts, validation."""

from __future__ import annotations

import numpy as np
import pytest

from randnla.dpp import DPP

from _reference import assert_dpp_law, assert_law, dpp_law, dpp_rbf, kdpp_law


def rbf_matrix(A, B, sigma):
    """RBF block through one matrix product (NumPy only)."""
    sq = (A**2).sum(1)[:, None] + (B**2).sum(1)[None, :] - 2.0 * A @ B.T
    return np.exp(-np.maximum(sq, 0.0) / (2 * sigma**2))


def ground_set(n=10, seed=0, sigma=0.35):
    X = np.random.default_rng(seed).uniform(size=(n, 2))
    matrix = lambda A, B: rbf_matrix(A, B, sigma)  # noqa: E731
    pairwise = lambda x, y: dpp_rbf(x, y, sigma=sigma)  # noqa: E731
    return X, matrix, pairwise, pairwise(X[:, None], X[None, :])


@pytest.mark.parametrize("method", ["alpha", "vfx"])
def test_dpp_and_kdpp_exact_laws(method):
    X, matrix, _, L = ground_set()
    dpp = DPP(kernel_matrix=matrix, X=X)
    samples = dpp.sample(size=4000, method=method, rng=1)
    assert_dpp_law(samples, L)
    assert sum(dpp.stats.attempts) == 4000 + dpp.stats.rejections
    subsets, pk = kdpp_law(L, 3)
    samples = DPP(kernel_matrix=matrix, X=X).sample(k=3, size=3000, method=method, rng=2)
    assert all(s.size == 3 for s in samples)
    assert_law(samples, subsets, pk)


def test_dense_routes_exact_law_and_queries():
    X, matrix, _, L = ground_set(seed=1)
    dpp = DPP(kernel_matrix=matrix, X=X)
    subsets, p = dpp_law(L)
    assert_law(dpp.sample(size=4000, rng=3), subsets, p)  # small n, "auto": dense spectral
    assert_law(DPP(kernel_matrix=matrix, X=X).sample(size=4000, method="ldl", rng=4), subsets, p)
    subsets, pk = kdpp_law(L, 2)
    assert_law(dpp.sample(k=2, size=3000, method="spectral", rng=5), subsets, pk)
    assert np.allclose(dpp.marginals(), np.diag(L @ np.linalg.inv(np.eye(10) + L)))
    S = np.array([1, 4, 7])
    want = np.linalg.slogdet(L[np.ix_(S, S)])[1] - np.linalg.slogdet(np.eye(10) + L)[1]
    assert abs(DPP(kernel_matrix=matrix, X=X).log_prob(S) - want) < 1e-10


@pytest.mark.parametrize("method", ["alpha", "vfx", "spectral", "ldl"])
def test_matrix_and_pairwise_forms_give_the_same_samples(method):
    # the two forms agree to rounding, and every route consumes its randomness in the same order:
    # the same rng gives the same samples
    X, matrix, pairwise, _ = ground_set(n=400, seed=2, sigma=0.2)
    k = None if method == "ldl" else 5
    a = DPP(kernel_matrix=matrix, X=X).sample(k=k, size=6, method=method, rng=6)
    b = DPP(kernel=pairwise, X=X).sample(k=k, size=6, method=method, rng=6)
    assert all(np.array_equal(s, t) for s, t in zip(a, b))


def test_kernel_evaluations_counted_and_far_below_n_squared():
    n, k = 20000, 5
    X = np.random.default_rng(7).standard_normal((n, 10))
    entries = {"count": 0, "calls": 0}

    def kernel_matrix(A, B):
        out = rbf_matrix(A, B, np.sqrt(10))
        entries["count"] += out.size
        entries["calls"] += 1
        return out

    for method, budget in (("alpha", 0.01), ("vfx", 0.05)):
        entries["count"] = entries["calls"] = 0
        dpp = DPP(kernel_matrix=kernel_matrix, X=X)
        samples = dpp.sample(k=k, size=3, method=method, rng=8)
        assert all(s.size == k and np.all(np.diff(s) > 0) for s in samples)
        assert entries["count"] == dpp.stats.kernel_evaluations
        assert entries["count"] < budget * n * n, (method, entries["count"])
        # the diagonal from blocks of 64 rows, not one call per item
        assert entries["calls"] < n / 16


def test_thread_count_does_not_change_samples():
    n = 3000
    X = np.random.default_rng(9).standard_normal((n, 4))
    matrix = lambda A, B: rbf_matrix(A, B, 2.0)  # noqa: E731
    for method in ("alpha", "vfx"):
        one = DPP(kernel_matrix=matrix, X=X).sample(k=5, size=4, method=method, rng=10, n_threads=1)
        two = DPP(kernel_matrix=matrix, X=X).sample(k=5, size=4, method=method, rng=10, n_threads=2)
        assert all(np.array_equal(s, t) and s.size == 5 for s, t in zip(one, two))


def test_validation():
    X, matrix, pairwise, _ = ground_set()
    with pytest.raises(ValueError, match="exactly one"):
        DPP(kernel=pairwise, kernel_matrix=matrix, X=X)
    with pytest.raises(ValueError, match="exactly one"):
        DPP(np.eye(10), kernel_matrix=matrix, X=X)
    with pytest.raises(TypeError, match="kernel_matrix"):
        DPP(kernel_matrix=3, X=X)
    with pytest.raises(ValueError, match="kernel_matrix"):
        DPP(kernel_matrix=matrix)
    wrong_shape = lambda A, B: matrix(A, B)[:, :1]  # noqa: E731
    transposed = lambda A, B: matrix(A, B).T  # noqa: E731
    with_nan = lambda A, B: np.where(matrix(A, B) < 0.5, np.nan, matrix(A, B))  # noqa: E731
    for bad in (wrong_shape, with_nan):
        for method in ("alpha", "vfx", "spectral", "ldl"):
            with pytest.raises(ValueError, match="kernel_matrix"):
                DPP(kernel_matrix=bad, X=X).sample(method=method, rng=0)
    X_rect = np.random.default_rng(1).uniform(size=(10, 2))
    with pytest.raises(ValueError, match="kernel_matrix"):
        DPP(kernel_matrix=transposed, X=X_rect).sample(method="alpha", rng=0)
