"""The in-house small symmetric route (11 <= n <= 32 single matrices and batches, 33 <= n <= 104
(72 for the log-det cone) one after the other after the in-cone / polar shortcuts, and the Gram route of the
singular-value cones): eigenvalues first (Householder reduction, QL chain with
recorded rotations, two interleaved sweeps on large blocks), then only the eigenvectors that
enter the reassembly. Against NumPy's eigh + the vector projection, certificates at 1e-10,
degenerate spectra and tridiagonal matrices that split, scales, float32, batches and threads."""

from __future__ import annotations

import numpy as np
import pytest

from randnla import _core
from randnla import cones
from test_cones import (TOL, check_psd, dual_nuclear_ok, rect_with_singular_values, res_log_epi, res_log_epi_dual,
                        res_sum_largest, res_sum_largest_dual, scale_of, svd_reference, sym, topk, with_spectrum)

SIZES = [11, 13, 17, 24, 30, 32, 40, 64, 73, 104]


def degenerate_inputs(rng, n):
    h = n // 2
    blocks = np.zeros((n, n))
    blocks[:h, :h] = sym(rng, h)
    blocks[h:, h:] = sym(rng, n - h)
    tri = np.diag(rng.standard_normal(n)) + np.diag(np.r_[rng.standard_normal(h - 1), 0.0, rng.standard_normal(n - h - 1)], 1)
    return [
        sym(rng, n),
        np.diag(rng.standard_normal(n)),  # zero off-diagonals
        blocks,  # block diagonal: the tridiagonal matrix splits
        0.5 * (tri + tri.T),  # tridiagonal with a zero off-diagonal
        -2.5 * np.eye(n),
        with_spectrum(rng, np.r_[np.full(n // 2, 1.0), np.full(n - n // 2, -1.0)]),  # exactly tied
        with_spectrum(rng, np.round(rng.standard_normal(n))),  # integer spectrum: ties and zeros
        with_spectrum(rng, np.r_[1.0 + 1e-13 * np.arange(n // 3), -1.0 - 1e-13 * np.arange(n - n // 3)]),  # clusters
        with_spectrum(rng, np.r_[np.logspace(0, -15, n // 2), -np.logspace(1, -15, n - n // 2)]),  # graded
        with_spectrum(rng, np.r_[np.full(3, 4.0), rng.uniform(-1, 1, n - 3)]),  # tied top eigenvalues
    ]


@pytest.mark.parametrize("n", SIZES)
def test_small_eigensolver_degenerate(rng, n):
    for A in degenerate_inputs(rng, n):
        s = max(1.0, np.abs(A).max())
        w, V, ok = _core.cones.tridiagonal_ql_eigh(A / s)
        assert ok
        np.testing.assert_allclose(np.sort(w), np.linalg.eigvalsh(A / s), atol=1e-14 * n)
        np.testing.assert_allclose(V.T @ V, np.eye(n), atol=1e-14 * n)
        np.testing.assert_allclose((A / s) @ V, V * w, atol=1e-14 * n)


@pytest.mark.parametrize("n", SIZES)
def test_small_symmetric_cones_against_eigh(rng, n):
    for X0 in degenerate_inputs(rng, n):
        for scale in (1e-8, 1.0, 1e8):
            X = X0 * scale
            s = scale_of(X)
            w0, Q = np.linalg.eigh(X)
            P = cones.project_psd(X)
            check_psd(X, P, TOL)
            np.testing.assert_allclose(P, (Q * np.maximum(w0, 0)) @ Q.T, atol=1e-12 * s * n)
            for k in (1, 3, n // 2, n - 1):
                for t0 in (-5.0 * scale, 0.7 * topk(w0, k), 2.0 * scale):
                    tt, S = cones.project_sum_largest_cone(t0, X, k)
                    tv, xv = cones.project_sum_largest_vector_cone(t0, w0, k)
                    sc = max(s, abs(t0))
                    assert abs(float(tt) - float(tv)) <= 1e-12 * sc * n
                    np.testing.assert_allclose(S, (Q * xv) @ Q.T, atol=1e-12 * sc * n)
                    assert res_sum_largest(float(tt), S, k) <= TOL * sc
                    assert res_sum_largest_dual(float(tt) - t0, S - X, k) <= TOL * sc
                    assert np.array_equal(S, S.T)
            if scale == 1.0:
                Sx = cones.project_spectraplex(X)
                wx = np.linalg.eigvalsh(Sx)
                assert wx[0] >= -TOL and abs(wx.sum() - 1) <= TOL * n and np.array_equal(Sx, Sx.T)
                lo, hi = w0.min() - 1, w0.max()
                for _ in range(200):
                    th = 0.5 * (lo + hi)
                    lo, hi = (th, hi) if np.maximum(w0 - th, 0).sum() > 1 else (lo, th)
                np.testing.assert_allclose(Sx, (Q * np.maximum(w0 - hi, 0)) @ Q.T, atol=1e-12 * s * n)
            for t0, v0 in ((-1.0 * scale, 1.0 * scale), (2.0 * scale, 0.5 * scale), (0.3 * scale, -0.2 * scale)):
                tl, vl, L = cones.project_logdet_cone(t0, v0, X)
                tr, vr, xr = cones.project_log_cone(t0, v0, w0)
                sc = max(s, abs(t0), abs(v0))
                assert abs(float(tl) - float(tr)) <= 1e-10 * sc * n and abs(float(vl) - float(vr)) <= 1e-10 * sc * n
                np.testing.assert_allclose(L, (Q * xr) @ Q.T, atol=1e-10 * sc * n)
                assert np.array_equal(L, L.T)
                tl, vl = float(tl), float(vl)
                lp, ld = np.linalg.eigvalsh(L), np.linalg.eigvalsh(L - X)
                assert res_log_epi(-tl / sc, vl / sc, lp / sc) <= 0  # hypograph <-> epigraph (-t, v, X)
                assert res_log_epi_dual(-(tl - t0) / sc, (vl - v0) / sc, ld / sc) <= 0
                assert abs(tl * (tl - t0) + vl * (vl - v0) + (L * (L - X)).sum()) <= TOL * sc * sc * n


@pytest.mark.parametrize("n", SIZES)
def test_small_route_dual_and_float32(rng, n):
    X = sym(rng, n)
    w0, Q = np.linalg.eigh(X)
    s = scale_of(X)
    P = cones.project_psd(X, dual=True)
    np.testing.assert_allclose(P, (Q * np.maximum(w0, 0)) @ Q.T, atol=1e-12 * s * n)
    tt, S = cones.project_sum_largest_cone(0.3, X, 3, dual=True)
    tv, xv = cones.project_sum_largest_vector_cone(0.3, w0, 3, dual=True)
    assert abs(float(tt) - float(tv)) <= 1e-12 * s * n
    np.testing.assert_allclose(S, (Q * xv) @ Q.T, atol=1e-12 * s * n)
    X32 = X.astype(np.float32)
    P32 = cones.project_psd(X32)
    assert P32.dtype == np.float32 and np.array_equal(P32, P32.T)
    np.testing.assert_allclose(P32, (Q * np.maximum(w0, 0)) @ Q.T, atol=1e-5 * s * n)
    t32, S32 = cones.project_sum_largest_cone(np.float32(0.0), X32, 3)
    assert S32.dtype == np.float32
    tv, xv = cones.project_sum_largest_vector_cone(0.0, w0, 3)
    np.testing.assert_allclose(S32, (Q * xv) @ Q.T, atol=1e-5 * s * n)


@pytest.mark.parametrize("n", [11, 13, 30, 48])
def test_small_route_batches_and_threads(rng, n):
    inputs = degenerate_inputs(rng, n)
    X = np.stack(inputs)
    t = rng.standard_normal(len(inputs))
    v = np.abs(rng.standard_normal(len(inputs)))
    for fn in (lambda Y, nt: cones.project_psd(Y, n_threads=nt),
               lambda Y, nt: cones.project_spectraplex(Y, n_threads=nt)):
        B1, B2 = fn(X, 1), fn(X, 2)
        assert np.array_equal(B1, B2)
        for i in range(len(inputs)):
            assert np.array_equal(B1[i], fn(X[i], None))
    a = cones.project_sum_largest_cone(t, X, 3, n_threads=1)
    b = cones.project_sum_largest_cone(t, X, 3, n_threads=2)
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    c = cones.project_logdet_cone(t, v, X, n_threads=1)
    d = cones.project_logdet_cone(t, v, X, n_threads=2)
    assert all(np.array_equal(p, q) for p, q in zip(c, d))
    for i in range(len(inputs)):
        ti, Si = cones.project_sum_largest_cone(float(t[i]), X[i], 3)
        assert float(ti) == float(a[0][i]) and np.array_equal(Si, a[1][i])
        tl, vl, L = cones.project_logdet_cone(float(t[i]), float(v[i]), X[i])
        assert float(tl) == float(c[0][i]) and float(vl) == float(c[1][i]) and np.array_equal(L, c[2][i])


@pytest.mark.parametrize("shape", [(11, 11), (13, 13), (16, 14), (12, 16), (17, 17), (30, 30), (32, 20), (20, 32), (40, 30), (48, 48), (96, 40), (40, 96)])
def test_small_gram_route_selected_vectors(rng, shape):
    m, n = shape
    r = min(m, n)
    spectra = [
        np.sort(np.abs(rng.standard_normal(r)))[::-1] * 3,
        np.r_[np.full((r + 1) // 2, 2.0), np.full(r // 2, 1e-12)],
        np.r_[2.0 + 1e-13 * np.arange(r // 2), np.full(r - r // 2, 0.5)],
    ]
    for sv in spectra:
        X = rect_with_singular_values(rng, m, n, sv)
        for frac in (0.1, 0.3, 0.9):
            t0 = frac * sv.sum()
            tt, P = cones.project_nuclear_norm_cone(t0, X)
            tr, R = svd_reference("nuclear", t0, X)
            sc = max(1.0, abs(t0), np.abs(X).max())
            assert abs(float(tt) - tr) <= 1e-11 * sc * r
            np.testing.assert_allclose(P, R, atol=1e-11 * sc * r, rtol=0)
            dual_nuclear_ok(np.asarray(t0), X, P, np.asarray(tt), TOL)
            t1 = frac * sv.max()
            ts, S = cones.project_spectral_norm_cone(t1, X)
            tr, R = svd_reference("spectral", t1, X)
            assert abs(float(ts) - tr) <= 1e-11 * sc * r
            np.testing.assert_allclose(S, R, atol=1e-11 * sc * r, rtol=0)


@pytest.mark.parametrize("n", [33, 48, 64, 104])
def test_medium_route_keeps_the_shortcuts(rng, n):
    """Above n = 32 the QL route runs after the Cholesky and norm tests: points of the cone come
    back unchanged and points of the polar cone as exact zeros, alone and in a batch."""
    B = rng.standard_normal((n, n))
    Xpd = B @ B.T + n * np.eye(n)
    Xpd = 0.5 * (Xpd + Xpd.T)
    assert np.array_equal(cones.project_psd(Xpd), Xpd)
    assert np.array_equal(cones.project_psd(-Xpd), np.zeros((n, n)))
    assert np.array_equal(cones.project_psd(np.stack([Xpd, -Xpd])), np.stack([Xpd, np.zeros((n, n))]))
    t, v, L = cones.project_logdet_cone(-1e3, 1.0, Xpd)
    assert float(t) == -1e3 and float(v) == 1.0 and np.array_equal(L, Xpd)
    X = sym(rng, n)
    big = 10 * np.sqrt(3) * np.linalg.norm(X)
    t, S = cones.project_sum_largest_cone(big, X, 3)
    assert float(t) == big and np.array_equal(S, X)
    # and a generic point still agrees with eigh
    w0, Q = np.linalg.eigh(X)
    P = cones.project_psd(X)
    check_psd(X, P, TOL)
    np.testing.assert_allclose(P, (Q * np.maximum(w0, 0)) @ Q.T, atol=1e-12 * scale_of(X) * n)


def test_small_eigensolver_structured_matrices(rng):
    """Integer-valued and tridiagonal {-1, 0, 1} matrices (exact zeros and exact cancellations in
    the QL recurrences) and Wilkinson's matrices (pairs of nearly equal eigenvalues)."""
    for trial in range(400):
        n = int(rng.integers(4, 65))
        A = rng.integers(-1, 2, (n, n)).astype(float)
        if trial % 2:
            A = np.diag(rng.integers(-2, 3, n).astype(float)) + np.diag(rng.integers(-1, 2, n - 1).astype(float), 1)
        A = (np.triu(A) + np.triu(A, 1).T) / 2
        w, V, ok = _core.cones.tridiagonal_ql_eigh(A)
        assert ok
        np.testing.assert_allclose(A @ V, V * w, atol=1e-14 * n)
        np.testing.assert_allclose(V.T @ V, np.eye(n), atol=1e-14 * n)
    for m in (21, 41, 63):
        k = (m - 1) // 2
        A = (np.diag(np.abs(np.arange(-k, k + 1)).astype(float)) + np.diag(np.ones(m - 1), 1)
             + np.diag(np.ones(m - 1), -1)) / k
        w, V, ok = _core.cones.tridiagonal_ql_eigh(A)
        assert ok
        np.testing.assert_allclose(np.sort(w), np.linalg.eigvalsh(A), atol=1e-14 * m)
        np.testing.assert_allclose(V.T @ V, np.eye(m), atol=1e-14 * m)
