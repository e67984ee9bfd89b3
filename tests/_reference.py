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
