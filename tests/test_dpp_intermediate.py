"""DPP-VFX and alpha-DPP: exact laws on a small ground set, kernel-evaluation counts, limits."""

from __future__ import annotations

import numpy as np
import pytest

from randnla.dpp import DPP, MaxIterError

from _reference import assert_dpp_law, assert_law, dpp_law, dpp_rbf, kdpp_law

N = 5000


def ground_set(n=10, seed=0):
    X = np.random.default_rng(seed).uniform(size=(n, 2))
    kernel = lambda x, y: dpp_rbf(x, y, sigma=0.35)  # noqa: E731
    return X, kernel, kernel(X[:, None], X[None, :])


@pytest.mark.parametrize(
    "method, oversampling",
    # oversampling 1 leaves 3 of 10 items in the dictionary: a poor Nystrom approximation, many
    # rejections, and still the exact law
    [("vfx", 4.0), ("alpha", 4.0), ("alpha", 1.0)],
)
def test_dpp_exact_law(method, oversampling):
    X, kernel, L = ground_set()
    dpp = DPP(kernel=kernel, X=X)
    size = N if oversampling > 1 else 2000
    samples = dpp.sample(size=size, method=method, rng=1, oversampling=oversampling)
    assert_dpp_law(samples, L)
    assert len(dpp.stats.attempts) == size
    assert sum(dpp.stats.attempts) == size + dpp.stats.rejections


@pytest.mark.parametrize("method", ["vfx", "alpha"])
def test_kdpp_exact_law(method):
    X, kernel, L = ground_set(seed=1)
    subsets, p = kdpp_law(L, 3)
    dpp = DPP(kernel=kernel, X=X)
    samples = dpp.sample(k=3, size=4000, method=method, rng=2)
    assert all(len(s) == 3 for s in samples)
    assert_law(samples, subsets, p)


def test_factor_and_dense_inputs():
    rng = np.random.default_rng(3)
    B = rng.standard_normal((8, 3)) / 1.5
    L = B @ B.T
    subsets, p = dpp_law(L)
    assert_law(DPP(factor=B).sample(size=4000, method="alpha", rng=4), subsets, p)
    assert_law(DPP(L).sample(size=4000, method="vfx", rng=5), subsets, p)


def test_kernel_evaluations_far_below_n_squared():
    n, k = 20000, 5
    X = np.random.default_rng(6).standard_normal((n, 10))
    calls = {"entries": 0}

    def kernel(x, y):
        out = dpp_rbf(x, y, sigma=np.sqrt(10))
        calls["entries"] += out.size
        return out

    for method, budget in (("alpha", 0.01), ("vfx", 0.05)):
        calls["entries"] = 0
        dpp = DPP(kernel=kernel, X=X)
        samples = dpp.sample(k=k, size=3, method=method, rng=7)
        assert all(s.size == k and np.all(np.diff(s) > 0) for s in samples)
        assert calls["entries"] == dpp.stats.kernel_evaluations
        assert calls["entries"] < budget * n * n, (method, calls["entries"])


def test_max_iter_and_options():
    X, kernel, _ = ground_set()
    dpp = DPP(kernel=kernel, X=X)
    with pytest.raises(MaxIterError, match="max_iter"):
        for seed in range(50):
            dpp.sample(method="vfx", rng=seed, max_iter=1, oversampling=0.5)
    with pytest.raises(MaxIterError, match="max_size_rejections"):
        dpp.sample(k=9, method="alpha", rng=0, max_size_rejections=1, size=20)
    with pytest.raises(TypeError, match="options"):
        dpp.sample(method="alpha", rng=0, bogus=1)
    with pytest.raises(TypeError, match="options"):
        dpp.sample(method="spectral", rng=0, oversampling=2.0)
    with pytest.raises(ValueError, match="oversampling"):
        dpp.sample(method="alpha", rng=0, oversampling=-1.0)
    with pytest.raises(ValueError, match="not K"):
        DPP(K=np.eye(3) / 2).sample(method="vfx", rng=0)
    with pytest.raises(TypeError, match="callable"):
        DPP(kernel=3, X=X)
    with pytest.raises(ValueError, match="X"):
        DPP(kernel=kernel)


def test_auto_and_dense_routes_for_kernel_functions():
    X, kernel, L = ground_set()
    dpp = DPP(kernel=kernel, X=X)
    subsets, p = dpp_law(L)
    assert_law(dpp.sample(size=N, rng=8), subsets, p)  # small n: dense spectral
    assert np.allclose(dpp.marginals(), np.diag(L @ np.linalg.inv(np.eye(10) + L)))


def test_cholesky_route_for_large_intermediate_samples(monkeypatch):
    # Intermediate samples above _SMALL_DENSE items use the progressive pivoted Cholesky (early
    # rejection from the Hadamard bound, here with panels of 3 pivots) + the sequential sampler.
    from randnla import dpp as dpp_module

    monkeypatch.setattr(dpp_module, "_SMALL_DENSE", 0)
    monkeypatch.setattr(dpp_module, "_PANEL", 3)
    X, kernel, L = ground_set(seed=2)
    samples = DPP(kernel=kernel, X=X).sample(size=3000, method="vfx", rng=9)
    assert_dpp_law(samples, L)
    subsets, pk = kdpp_law(L, 2)
    assert_law(DPP(kernel=kernel, X=X).sample(k=2, size=3000, method="alpha", rng=10), subsets, pk)


def test_alpha_refined_scores_and_alpha_match_the_direct_formulas():
    # l_i = a (L_ii - a L_{D,i}^T P^{-1/2} (a W + I)^{-1} P^{-1/2} L_{D,i}), W = P^{-1/2} L_DD P^{-1/2},
    # with a such that sum_j a theta_j / (a theta_j + 1) = k (theta: eigenvalues of W)
    from randnla import dpp as dpp_module

    X = np.random.default_rng(11).standard_normal((300, 3))
    kernel = lambda x, y: dpp_rbf(x, y, sigma=1.5)  # noqa: E731
    L = kernel(X[:, None], X[None, :])
    dpp = DPP(kernel=kernel, X=X)
    dpp.sample(k=4, method="alpha", rng=12)
    state = dpp._intermediate[("alpha", 4, 4.0)]
    D = state.dictionary
    a = state.alpha
    # the sampler's scores for every item, against the formula evaluated with dense solves
    items = np.arange(300)
    got = dpp_module._refine(state, dpp._evaluator(), items)
    P = state.probs
    W = L[np.ix_(D, D)] / np.sqrt(np.outer(P, P))
    C = L[D][:, items] / np.sqrt(P)[:, None]
    want = a * (np.diag(L) - a * np.einsum("ij,ij->j", C, np.linalg.solve(a * W + np.eye(D.size), C)))
    assert np.allclose(got, np.maximum(want, 0.0), rtol=1e-9, atol=1e-12)
    theta = np.linalg.eigvalsh(W)
    assert abs((a * theta / (a * theta + 1)).sum() - 4) < 1e-8
    assert abs(state.z - 4) < 1e-8


def test_symmetric_kernel_blocks_from_three_quarters(monkeypatch):
    # square kernel blocks of intermediate samples and dictionaries are evaluated as two diagonal
    # halves and one mirrored off-diagonal half: same values, 3/4 of the evaluations, exact laws
    from randnla import dpp as dpp_module

    X, kernel, L = ground_set(seed=3)
    ev = DPP(kernel=kernel, X=X)._evaluator()
    items = np.array([7, 1, 4, 9, 0, 2, 8])
    monkeypatch.setattr(dpp_module, "_SYMMETRIC_SPLIT", 2)
    got = ev.symmetric_block(items)
    assert np.allclose(got, L[np.ix_(items, items)], rtol=1e-14, atol=1e-15)
    assert np.array_equal(got[:3, 3:], got[3:, :3].T)
    assert ev.count == 3 * 3 + 3 * 4 + 4 * 4
    samples = DPP(kernel=kernel, X=X).sample(size=4000, method="alpha", rng=13)
    assert_dpp_law(samples, L)
    subsets, pk = kdpp_law(L, 3)
    assert_law(DPP(kernel=kernel, X=X).sample(k=3, size=3000, method="alpha", rng=14), subsets, pk)
    assert_law(DPP(kernel=kernel, X=X).sample(k=3, size=3000, method="vfx", rng=15), subsets, pk)


def test_alpha_nonuniform_bounds_exact_law():
    # alpha-DPP proposes from the static bounds alpha L_ii and thins each draw to the refined ridge
    # score: with a non-constant diagonal the bounds differ item by item, and the law stays exact
    # (DPP and k-DPP), whatever part of the scores earlier calls have refined
    X = np.random.default_rng(16).uniform(size=(9, 2))
    amplitude = lambda x: 0.3 + 1.7 * x[..., 0]  # noqa: E731
    kernel = lambda x, y: amplitude(x) * amplitude(y) * dpp_rbf(x, y, sigma=0.4)  # noqa: E731
    L = kernel(X[:, None], X[None, :])
    assert np.ptp(np.diag(L)) > 1.0
    dpp = DPP(kernel=kernel, X=X)
    samples = dpp.sample(size=N, method="alpha", rng=17)
    assert_dpp_law(samples, L)
    subsets, pk = kdpp_law(L, 3)
    assert_law(dpp.sample(k=3, size=3000, method="alpha", rng=18), subsets, pk)


def test_alpha_samples_depend_on_the_seed_only():
    # each attempt has its own Philox stream and the proposals do not depend on which scores are
    # already refined: two samplers prepared by the same first call (the dictionary depends on its
    # seed), one of which has drawn many more samples, give identical samples, for any thread
    # count; preprocessing is done once per (method, k, oversampling)
    n, k = 3000, 5
    X = np.random.default_rng(19).standard_normal((n, 4))
    kernel = lambda x, y: dpp_rbf(x, y, sigma=2.0)  # noqa: E731
    used = DPP(kernel=kernel, X=X)
    used.sample(k=k, size=5, method="alpha", rng=20)
    state = used._intermediate[("alpha", k, 4.0)]
    refined = int(state.refined.sum())
    assert 0 < refined < n
    again = used.sample(k=k, size=4, method="alpha", rng=21, n_threads=2)
    assert used._intermediate[("alpha", k, 4.0)] is state  # nothing recomputed
    assert used.stats.kernel_evaluations < 0.01 * n * n
    other = DPP(kernel=kernel, X=X)
    other.sample(k=k, method="alpha", rng=20)
    assert int(other._intermediate[("alpha", k, 4.0)].refined.sum()) < refined
    fresh = other.sample(k=k, size=4, method="alpha", rng=21, n_threads=1)
    assert all(np.array_equal(a, b) and a.size == k for a, b in zip(again, fresh))


def test_alpha_partial_bounds_dominate_the_scores(monkeypatch):
    # the thinning first compares each draw with an upper bound of l_i from the leading (pivoted)
    # dictionary items: it must dominate l_i everywhere, so the decisions are those of the exact
    # scores (same samples as without the bound) with fewer kernel evaluations
    from randnla import dpp as dpp_module

    X = np.random.default_rng(22).standard_normal((2000, 3))
    kernel = lambda x, y: dpp_rbf(x, y, sigma=1.0)  # noqa: E731
    dpp = DPP(kernel=kernel, X=X)
    with_bound = dpp.sample(k=6, size=4, method="alpha", rng=23)
    state = dpp._intermediate[("alpha", 6, 4.0)]
    assert state.stage > 0
    ev = dpp._evaluator()
    items = np.arange(2000)
    exact = dpp_module._refine(state, ev, items)
    partial = dpp_module._partial_bound(state, ev, items)
    assert np.all(exact <= partial) and np.all(partial <= state.upper * (1 + 1e-9))
    assert np.mean(partial < 0.9 * state.upper) > 0.5
    monkeypatch.setattr(dpp_module, "_ALPHA_STAGE", 10**6)  # no partial bounds
    plain = DPP(kernel=kernel, X=X)
    without = plain.sample(k=6, size=4, method="alpha", rng=23)
    assert plain._intermediate[("alpha", 6, 4.0)].stage == 0
    assert all(np.array_equal(a, b) for a, b in zip(with_bound, without))


def test_scaled_cholesky_factor_matches_the_numpy_expression():
    # Lt = (B + B^T) * outer(s, s) and the Cholesky factor of I + Lt in one pass: bitwise the values
    # of the elementwise NumPy expression (exactly symmetric), the factor of dpp_cholesky_factor
    from randnla import _core

    rng = np.random.default_rng(24)
    for m in (1, 7, 130):
        A = rng.standard_normal((m, m))
        B = A @ A.T / m + 1e-3 * rng.standard_normal((m, m))
        s = rng.uniform(0.1, 2.0, size=m)
        want = B + B.T
        want *= np.outer(s, s)
        Lt, U, info = _core.dpp_scaled_cholesky_factor(B, s)
        assert info == 0 and np.array_equal(Lt, want) and np.array_equal(Lt, Lt.T)
        assert np.array_equal(U, _core.dpp_cholesky_factor(want)[0])
    with pytest.raises(ValueError, match="scale"):
        _core.dpp_scaled_cholesky_factor(np.eye(3), np.ones(2))


def test_alpha_proposal_core_matches_numpy():
    # dpp_alpha_positions / dpp_alpha_keep against the NumPy expressions they replace: sorted
    # position uniforms, searchsorted (right) on the bound prefix sums clipped to n - 1, x = w u_p,
    # the draws with x < bound as distinct items with counts; bitwise equal decisions
    from randnla import _core

    rng = np.random.default_rng(30)
    for n, t in [(1, 5), (7, 0), (50, 400), (2000, 250), (300, 3000)]:
        upper = rng.exponential(size=n) * (rng.uniform(size=n) < 0.8)  # zeros: empty intervals
        upper[0] = max(upper[0], 0.1)
        cumulative = np.cumsum(upper)
        total = float(cumulative[-1])
        refined = rng.uniform(size=n) < 0.7
        bound = upper * np.where(refined, rng.uniform(size=n), 1.0)
        r = rng.uniform(size=2 * t + 1)
        r[: min(t, 3)] = [0.0, 1.0 - 2.0**-53, 0.5][: min(t, 3)]
        p, x, pending = _core.dpp_alpha_positions(r, t, cumulative, upper, total, refined)
        v = np.sort(r[:t])
        p_ref = np.minimum(np.searchsorted(cumulative, v * total, side="right"), n - 1)
        x_ref = r[t:2 * t] * upper[p_ref]
        assert np.array_equal(p, p_ref) and np.array_equal(x, x_ref)
        assert pending == bool((~refined[p_ref]).any())
        items, counts, kept = _core.dpp_alpha_keep(p, x, bound)
        keep = p_ref[x_ref < bound[p_ref]]
        items_ref, counts_ref = np.unique(keep, return_counts=True)
        assert np.array_equal(items, items_ref) and np.array_equal(counts, counts_ref) and kept == keep.size
    with pytest.raises(ValueError):
        _core.dpp_alpha_positions(np.zeros(3), 2, np.ones(2), np.ones(2), 1.0, np.ones(2, bool))
    with pytest.raises(ValueError):
        _core.dpp_alpha_keep(np.array([0, 2]), np.zeros(2), np.ones(2))
    with pytest.raises(ValueError):
        _core.dpp_alpha_keep(np.array([1, 0]), np.zeros(2), np.ones(2))


def test_alpha_attempt_generator_is_a_fresh_philox_stream():
    from randnla.dpp import _PURPOSE_ALPHA_ATTEMPT, _attempt_generator, _IntermediateState

    state = _IntermediateState()
    for key, s, j in [((1, 2), 0, 1), ((2**64 - 1, 5), 3, 7), ((9, 9), 2, 2**40)]:
        key = np.array(key, dtype=np.uint64)
        ours = _attempt_generator(state, key, s, j)
        a = (ours.poisson(50.0), ours.random(7), ours.integers(0, 2**64, size=2, dtype=np.uint64), ours.random(3))
        counter = np.array([0, j, s, _PURPOSE_ALPHA_ATTEMPT], dtype=np.uint64)
        ref = np.random.Generator(np.random.Philox(key=key, counter=counter))
        b = (ref.poisson(50.0), ref.random(7), ref.integers(0, 2**64, size=2, dtype=np.uint64), ref.random(3))
        assert all(np.array_equal(u, w) for u, w in zip(a, b))
