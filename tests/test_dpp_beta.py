"""beta-ensembles: exact finite-N moments, N = 1 reference laws, and large-N spectral laws."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from randnla.dpp import beta_ensemble

ALPHA = 1e-6


@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0, 4.0])
def test_hermite_second_moment(beta):
    # E sum x_i^2 = scale^2 (N + beta N (N - 1) / 2) for loc = 0 (exact at every N).
    N, reps, scale = 20, 2000, 1.5
    values = np.array([(beta_ensemble("hermite", N, beta, scale=scale, rng=7 * 100000 + i) ** 2).sum() for i in range(reps)])
    expected = scale**2 * (N + beta * N * (N - 1) / 2)
    z = (values.mean() - expected) / (values.std(ddof=1) / np.sqrt(reps))
    assert abs(z) < stats.norm.isf(ALPHA / 2)


def test_one_point_reference_measures():
    reps = 4000
    x = np.array([beta_ensemble("laguerre", 1, 2.0, shape=2.5, scale=1.5, rng=1 * 100000 + i)[0] for i in range(reps)])
    assert stats.kstest(x, stats.gamma(2.5, scale=1.5).cdf).pvalue > ALPHA
    x = np.array([beta_ensemble("jacobi", 1, 2.0, a=2.0, b=3.0, rng=2 * 100000 + i)[0] for i in range(reps)])
    assert stats.kstest(x, stats.beta(2.0, 3.0).cdf).pvalue > ALPHA
    x = np.array([beta_ensemble("hermite", 1, 2.0, loc=1.0, scale=0.5, rng=3 * 100000 + i)[0] for i in range(reps)])
    assert stats.kstest(x, stats.norm(1.0, 0.5).cdf).pvalue > ALPHA


def test_two_point_jacobi_density():
    # N = 2, beta = 2, a = b = 1: density 6 (x - y)^2 on [0, 1]^2, so the gap D = |x - y| has
    # density 12 d^2 (1 - d) and P(D <= d) = 4 d^3 - 3 d^4.
    reps = 4000
    gaps = np.array([np.ptp(beta_ensemble("jacobi", 2, 2.0, rng=4 * 100000 + i)) for i in range(reps)])
    cdf = lambda d: 4 * d**3 - 3 * d**4  # noqa: E731
    assert stats.kstest(gaps, cdf).pvalue > ALPHA


def _sup_distance(points, density, lo, hi):
    grid = np.linspace(lo, hi, 801)
    pdf = density(grid)
    cdf = np.concatenate([[0.0], np.cumsum((pdf[1:] + pdf[:-1]) / 2 * np.diff(grid))])
    total = cdf[-1]
    assert abs(total - 1) < 2e-2, total  # the law itself integrates to one
    empirical = np.searchsorted(np.sort(points), grid, side="right") / points.size
    return np.abs(empirical - cdf / total).max()


def test_semicircle_law():
    N, beta = 1000, 2.0
    x = beta_ensemble("hermite", N, beta, rng=5)
    y = x / (np.sqrt(2.0) * np.sqrt(beta * N / 2))
    semicircle = lambda t: np.sqrt(np.maximum(4 - t**2, 0)) / (2 * np.pi)  # noqa: E731
    assert _sup_distance(y, semicircle, -2, 2) < 0.02


@pytest.mark.parametrize("beta", [1.0, 2.0])
def test_marchenko_pastur_law(beta):
    N, M = 800, 1600
    x = beta_ensemble("laguerre", N, beta, M=M, rng=6) / (beta * M)
    c = N / M
    lo, hi = (1 - np.sqrt(c)) ** 2, (1 + np.sqrt(c)) ** 2
    mp = lambda t: np.sqrt(np.maximum((hi - t) * (t - lo), 0)) / (2 * np.pi * c * np.maximum(t, 1e-300))  # noqa: E731
    assert _sup_distance(x, mp, lo, hi) < 0.02
    assert x.min() > lo - 0.05 and x.max() < hi + 0.05


def test_wachter_law():
    N, M1, M2, beta = 800, 1600, 2400, 2.0
    x = beta_ensemble("jacobi", N, beta, M1=M1, M2=M2, rng=7)
    a, b = M1 / N, M2 / N
    lo = ((np.sqrt(a * (a + b - 1)) - np.sqrt(b)) / (a + b)) ** 2
    hi = ((np.sqrt(a * (a + b - 1)) + np.sqrt(b)) / (a + b)) ** 2
    wachter = lambda t: (a + b) / (2 * np.pi) * np.sqrt(np.maximum((hi - t) * (t - lo), 0)) / (t * (1 - t))  # noqa: E731
    assert _sup_distance(x, wachter, lo, hi) < 0.02
    # and the full MANOVA model agrees (real Gaussian, beta = 1)
    rng = np.random.default_rng(8)
    n = 200
    X, Y = rng.standard_normal((n, 2 * n)), rng.standard_normal((n, 3 * n))
    A, B = X @ X.T, Y @ Y.T
    full = np.linalg.eigvalsh(np.linalg.solve(np.linalg.cholesky(A + B), np.linalg.solve(np.linalg.cholesky(A + B), A).T))
    banded = beta_ensemble("jacobi", n, 1.0, M1=2 * n, M2=3 * n, rng=9)
    assert stats.ks_2samp(full, banded).statistic < 0.06


def test_validation_and_reproducibility():
    assert np.array_equal(beta_ensemble("hermite", 30, 2.0, rng=3), beta_ensemble("hermite", 30, 2.0, rng=3))
    x = beta_ensemble("laguerre", 30, 1.0, rng=3)
    assert np.all(np.diff(x) >= 0) and x.min() > 0
    with pytest.raises(ValueError, match="kind"):
        beta_ensemble("circular", 10, 2.0)
    with pytest.raises(ValueError, match="beta"):
        beta_ensemble("hermite", 10, -1.0)
    with pytest.raises(ValueError, match="M"):
        beta_ensemble("laguerre", 10, 2.0, M=5)
    with pytest.raises(TypeError):
        beta_ensemble("jacobi", 10, 2.0, M1=20)
    with pytest.raises(ValueError, match="N"):
        beta_ensemble("hermite", 0, 2.0)


# ---- the tridiagonal eigenvalue solver behind the models ----

def _sterf(d, e):
    from scipy.linalg import lapack

    if d.size == 1:
        return d.copy()
    values, info = lapack.dsterf(d, e)
    assert info == 0
    return values


def _hermite_model(N, seed, beta=2.0):
    rng = np.random.default_rng(seed)
    c = beta * (N - 1 - np.arange(N)) / 2
    return rng.normal(0, np.sqrt(2), N), np.sqrt(rng.gamma(c[:-1], 2.0))


@pytest.mark.parametrize("N", [1, 2, 3, 17, 200, 1500])
def test_tridiagonal_eigenvalues_match_dsterf(N):
    from randnla import _core

    d, e = _hermite_model(N, N)
    ours = _core.dpp_tridiagonal_eigenvalues(d, e, 1)
    ref = _sterf(d, e)
    scale = np.abs(ref).max()
    # dsterf's own error at N = 2000 is about 6e-15 |T|; the solver is at least as accurate
    assert np.abs(ours - ref).max() <= 1e-13 * scale
    assert np.all(np.diff(ours) >= 0)


def test_tridiagonal_eigenvalues_high_precision():
    # a few eigenvalues against 40-digit Sturm bisection: error below 20 eps |T|
    import mpmath as mp

    from randnla import _core

    N = 300
    d, e = _hermite_model(N, 5)
    ours = _core.dpp_tridiagonal_eigenvalues(d, e, 1)
    with mp.workdps(40):
        D = [mp.mpf(float(v)) for v in d]
        E2 = [mp.mpf(float(v)) ** 2 for v in e]

        def count(t):
            q = D[0] - t
            c = int(q < 0)
            for i in range(1, N):
                q = D[i] - t - E2[i - 1] / q
                c += int(q < 0)
            return c

        for j in (0, 7, 150, 299):
            lo, hi = mp.mpf(float(ours[j])) - 1e-9, mp.mpf(float(ours[j])) + 1e-9
            for _ in range(40):
                mid = (lo + hi) / 2
                if count(mid) <= j:
                    lo = mid
                else:
                    hi = mid
            exact = (lo + hi) / 2
            assert abs(float(ours[j] - exact)) <= 20 * np.finfo(float).eps * np.abs(ours).max()


def test_tridiagonal_eigenvalues_structured_matrices():
    from randnla import _core

    cases = {
        "zero diagonal": (np.zeros(300), np.ones(299)),
        "Wilkinson W101+ (close pairs)": (np.abs(np.arange(-50, 51)).astype(float), np.ones(100)),
        "split blocks": (np.r_[np.ones(5), 2 * np.ones(5)], np.r_[0.5 * np.ones(4), 0.0, 0.5 * np.ones(4)]),
        "diagonal with a repeated value": (np.array([3.0, 1.0, 2.0, 1.0]), np.zeros(3)),
        "tiny": (np.full(50, 1e-300), np.full(49, 1e-301)),
        "huge": (np.full(50, 1e300), np.full(49, 1e299)),
        "graded": (10.0 ** -np.arange(40.0), 10.0 ** -np.arange(0.5, 39.5)),
        "identity": (np.ones(64), np.zeros(63)),
    }
    for name, (d, e) in cases.items():
        ours = _core.dpp_tridiagonal_eigenvalues(d, e, 1)
        ref = _sterf(d.copy(), e.copy())
        assert np.abs(ours - ref).max() <= 1e-13 * np.abs(ref).max(), name
    with pytest.raises(ValueError, match="finite"):
        _core.dpp_tridiagonal_eigenvalues(np.array([1.0, np.nan]), np.array([1.0]), 1)


def test_tridiagonal_eigenvalues_thread_independent():
    from randnla import _core

    d, e = _hermite_model(3200, 9)  # large enough for the threaded path
    one = _core.dpp_tridiagonal_eigenvalues(d, e, 1)
    two = _core.dpp_tridiagonal_eigenvalues(d, e, 2)
    assert np.array_equal(one, two)
    assert np.array_equal(beta_ensemble("jacobi", 3200, 2.0, rng=1, n_threads=1),
                          beta_ensemble("jacobi", 3200, 2.0, rng=1, n_threads=2))
