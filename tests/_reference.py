"""Slow, obviously-correct oracles the tests compare against.

Each area adds its references here (dense products, enumerations, high-precision eigenvalues).
They favour clarity over speed and never call randnla.
"""

from __future__ import annotations

import numpy as np

PHILOX_M0 = 0xD2E7470EE14C6C93
PHILOX_M1 = 0xCA5A826395121157
PHILOX_W0 = 0x9E3779B97F4A7C15
PHILOX_W1 = 0xBB67AE8584CAA73B
MASK64 = (1 << 64) - 1


def philox4x64_10(counter, key):
    """Philox4x64-10 in pure Python integers (Salmon et al. 2011), for cross-checking."""
    c = [int(v) for v in counter]
    k0, k1 = int(key[0]), int(key[1])
    for r in range(10):
        if r:
            k0 = (k0 + PHILOX_W0) & MASK64
            k1 = (k1 + PHILOX_W1) & MASK64
        p0 = PHILOX_M0 * c[0]
        p1 = PHILOX_M1 * c[2]
        hi0, lo0 = p0 >> 64, p0 & MASK64
        hi1, lo1 = p1 >> 64, p1 & MASK64
        c = [hi1 ^ c[1] ^ k0, lo1, hi0 ^ c[3] ^ k1, lo0]
    return c


def numpy_philox_raw(key: int, counter: int, n: int) -> np.ndarray:
    return np.random.Philox(key=key, counter=counter).random_raw(n)


# ---- Jacobi: high-precision eigenvalues and singular values (mpmath) ----


def mp_eigvalsh(a, dps: int = 60) -> np.ndarray:
    """Ascending eigenvalues of the exact double matrix ``a`` (symmetric), computed at ``dps`` digits."""
    import mpmath

    with mpmath.workdps(dps):
        m = mpmath.matrix([[mpmath.mpf(float(x)) for x in row] for row in np.asarray(a, dtype=np.float64)])
        values = mpmath.eigsy(m, eigvals_only=True)
        return np.sort(np.array([float(v) for v in values]))


def mp_eigh(a, dps: int = 60):
    """Ascending eigenvalues and unit eigenvectors (columns) of the exact double matrix ``a``."""
    import mpmath

    with mpmath.workdps(dps):
        m = mpmath.matrix([[mpmath.mpf(float(x)) for x in row] for row in np.asarray(a, dtype=np.float64)])
        values, vectors = mpmath.eigsy(m)
        w = np.array([float(v) for v in values])
        q = np.array([[float(vectors[i, j]) for j in range(m.cols)] for i in range(m.rows)])
    order = np.argsort(w)
    return w[order], q[:, order]


def mp_singular_values(a, dps: int = 60) -> np.ndarray:
    """Descending singular values of the exact double matrix ``a``, computed at ``dps`` digits."""
    import mpmath

    with mpmath.workdps(dps):
        m = mpmath.matrix([[mpmath.mpf(float(x)) for x in row] for row in np.asarray(a, dtype=np.float64)])
        values = mpmath.svd_r(m, compute_uv=False)
        return np.sort(np.array([float(v) for v in values]))[::-1]


def graded_spd(n: int, spread: float, rng, kappa_scale: float = 1.0) -> np.ndarray:
    """H = D A D: A unit-diagonal, well conditioned SPD; D = 10**(-spread * U(0, 1)) in random order."""
    x = rng.standard_normal((n, n))
    a = x @ x.T / n + kappa_scale * np.eye(n)
    d = 1.0 / np.sqrt(np.diag(a))
    a = d[:, None] * a * d[None, :]
    grading = 10.0 ** (-spread * rng.uniform(0.0, 1.0, n))
    grading[rng.integers(n)] = 1.0
    grading = rng.permutation(grading)
    h = grading[:, None] * a * grading[None, :]
    return (h + h.T) / 2

# ---- DPP sampling: exact laws by enumeration and statistical tests at level 1e-6 ----

import itertools  # noqa: E402

from scipy import stats as _dpp_stats  # noqa: E402

DPP_ALPHA = 1e-6


def all_subsets(n):
    return [s for r in range(n + 1) for s in itertools.combinations(range(n), r)]


def dpp_law(L):
    """P(S) = det(L_S) / det(I + L) for every subset (enumeration order of all_subsets)."""
    n = L.shape[0]
    subsets = all_subsets(n)
    weights = np.array([np.linalg.det(L[np.ix_(s, s)]) if s else 1.0 for s in subsets])
    weights = np.where(weights > 1e-13 * weights.max(), weights, 0.0)
    return subsets, weights / weights.sum()


def kdpp_law(L, k):
    subsets = all_subsets(L.shape[0])
    weights = np.array([np.linalg.det(L[np.ix_(s, s)]) if len(s) == k else 0.0 for s in subsets])
    weights = np.where(weights > 1e-13 * weights.max(), weights, 0.0)
    return subsets, weights / weights.sum()


def projection_law(K):
    r = int(round(np.trace(K)))
    subsets = all_subsets(K.shape[0])
    weights = np.array([np.linalg.det(K[np.ix_(s, s)]) if len(s) == r else 0.0 for s in subsets])
    weights = np.where(weights > 1e-12, weights, 0.0)
    return subsets, weights / weights.sum()


def counts_of(samples, subsets):
    index = {s: i for i, s in enumerate(subsets)}
    counts = np.zeros(len(subsets))
    for sample in samples:
        sample = np.asarray(sample)
        assert sample.dtype == np.int64
        assert np.all(np.diff(sample) > 0), "samples must be sorted without repeats"
        counts[index[tuple(int(i) for i in sample)]] += 1
    return counts


def chi_square_pvalue(counts, probabilities):
    """Pearson chi-square on the support, cells with expected count < 5 pooled; counts off the
    support must be exactly zero."""
    support = probabilities > 0
    assert counts[~support].sum() == 0, "a zero-probability set was sampled"
    n = counts.sum()
    expected = n * probabilities[support]
    observed = counts[support]
    small = expected < 5
    if small.any():
        expected = np.append(expected[~small], expected[small].sum())
        observed = np.append(observed[~small], observed[small].sum())
    if expected.size < 2:
        return 1.0
    statistic = ((observed - expected) ** 2 / expected).sum()
    return float(_dpp_stats.chi2.sf(statistic, expected.size - 1))


def assert_law(samples, subsets, probabilities):
    p = chi_square_pvalue(counts_of(samples, subsets), probabilities)
    assert p > DPP_ALPHA, f"chi-square p-value {p:.3g}"
    return p


def z_bound(tests):
    """Two-sided Bonferroni bound for `tests` z-statistics at family level DPP_ALPHA."""
    return float(_dpp_stats.norm.isf(DPP_ALPHA / (2 * tests)))


def assert_cardinality_mean(samples, lam_K):
    sizes = np.array([len(s) for s in samples], dtype=float)
    mean = lam_K.sum()
    var = (lam_K * (1 - lam_K)).sum()
    z = (sizes.mean() - mean) / np.sqrt(var / sizes.size)
    assert abs(z) < z_bound(1), f"cardinality mean z = {z:.2f}"
    return z


def assert_dpp_law(samples, L):
    """The samples follow DPP(L): chi-square on the enumerated law and the cardinality-mean z-test."""
    subsets, p = dpp_law(L)
    assert_law(samples, subsets, p)
    lam = np.linalg.eigvalsh(L)
    assert_cardinality_mean(samples, lam / (1 + lam))


def log_esp(lam, k):
    """log e_0..e_k of lam by the O(nk) recursion (float64, positive lam)."""
    e = np.zeros(k + 1)
    e[0] = 1.0
    for x in lam:
        e[1:] = e[1:] + x * e[:-1]
    return e


def kdpp_marginals(L, k):
    """Exact P(i in S) for the k-DPP: sum_m V_im^2 lam_m e_{k-1}(lam_{-m}) / e_k(lam)."""
    lam, V = np.linalg.eigh(L)
    lam = np.clip(lam, 0, None)
    ek = log_esp(lam, k)[k]
    weights = np.array([lam[m] * log_esp(np.delete(lam, m), k - 1)[k - 1] for m in range(lam.size)]) / ek
    return (V * V) @ weights


def assert_inclusions(samples, K, pairs=None):
    """z-tests of first-order inclusions against K_ii and of pair inclusions against
    K_ii K_jj - K_ij^2 (Bonferroni over all tests)."""
    n = K.shape[0]
    N = len(samples)
    X = np.zeros((N, n))
    for t, s in enumerate(samples):
        X[t, s] = 1.0
    p1 = np.clip(np.diag(K), 1e-12, 1 - 1e-12)
    if pairs is None:
        iu = np.triu_indices(n, 1)
        pairs = np.stack(iu, 1)
    i, j = pairs[:, 0], pairs[:, 1]
    p2 = np.clip(K[i, i] * K[j, j] - K[i, j] ** 2, 1e-12, 1)
    z1 = (X.mean(0) - p1) / np.sqrt(p1 * (1 - p1) / N)
    z2 = ((X[:, i] * X[:, j]).mean(0) - p2) / np.sqrt(p2 * (1 - p2) / N)
    bound = z_bound(n + len(pairs))
    assert np.abs(z1).max() < bound, f"first-order max |z| = {np.abs(z1).max():.2f} (bound {bound:.2f})"
    assert np.abs(z2).max() < bound, f"pair max |z| = {np.abs(z2).max():.2f} (bound {bound:.2f})"
    return np.abs(z1).max(), np.abs(z2).max()


def choose_pairs(K, rng, count=200, most_negative=50):
    n = K.shape[0]
    iu = np.triu_indices(n, 1)
    cov = -(K[iu] ** 2)
    order = np.argsort(cov)[:most_negative]
    rest = rng.choice(iu[0].size, size=count - most_negative, replace=False)
    chosen = np.unique(np.concatenate([order, rest]))
    return np.stack([iu[0][chosen], iu[1][chosen]], 1)


def dpp_rbf(x, y, sigma=1.0):
    return np.exp(-((x - y) ** 2).sum(-1) / (2 * sigma**2))


