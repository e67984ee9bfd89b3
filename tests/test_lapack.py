"""The BLAS/LAPACK table: every routine called through SciPy's capsules agrees with NumPy."""

from __future__ import annotations

import numpy as np
import pytest

from randnla import _core

hooks = _core._lapack_hooks


def _tol(dtype):
    return 200 * np.finfo(dtype).eps


@pytest.fixture(params=["float32", "float64"])
def kind(request):
    return request.param


def _random(rng, shape, kind):
    return rng.standard_normal(shape).astype(kind)


def test_gemm(rng, kind):
    a, b = _random(rng, (7, 5), kind), _random(rng, (5, 3), kind)
    c = getattr(hooks, f"gemm_{kind}")(a, b)
    np.testing.assert_allclose(c, a @ b, rtol=_tol(kind), atol=_tol(kind) * 10)


def test_syrk(rng, kind):
    a = _random(rng, (6, 4), kind)
    c = getattr(hooks, f"syrk_{kind}")(a)
    np.testing.assert_allclose(np.tril(c), np.tril(a @ a.T), rtol=_tol(kind), atol=_tol(kind) * 10)


def test_trsm(rng, kind):
    lower = np.tril(_random(rng, (5, 5), kind)) + 5 * np.eye(5, dtype=kind)
    b = _random(rng, (5, 3), kind)
    x = getattr(hooks, f"trsm_{kind}")(lower, b)
    np.testing.assert_allclose(lower @ x, b, rtol=_tol(kind), atol=_tol(kind) * 10)


@pytest.mark.parametrize("driver", ["syevd", "syevr"])
def test_symmetric_eigensolvers(rng, kind, driver):
    a = _random(rng, (9, 9), kind)
    a = a + a.T
    w, v, info = getattr(hooks, f"{driver}_{kind}")(a)
    assert info == 0
    np.testing.assert_allclose(w, np.linalg.eigvalsh(a.astype(np.float64)), rtol=0, atol=_tol(kind) * 20)
    np.testing.assert_allclose(a @ v, v * w, rtol=0, atol=_tol(kind) * 50)


def test_gesdd(rng, kind):
    a = _random(rng, (8, 5), kind)
    u, s, vt, info = getattr(hooks, f"gesdd_{kind}")(a)
    assert info == 0
    np.testing.assert_allclose(s, np.linalg.svd(a.astype(np.float64), compute_uv=False), rtol=_tol(kind) * 10)
    np.testing.assert_allclose((u * s) @ vt, a, atol=_tol(kind) * 20)


def test_geqrf_orgqr(rng, kind):
    a = _random(rng, (10, 4), kind)
    q, r, info = getattr(hooks, f"qr_{kind}")(a)
    assert info == 0
    np.testing.assert_allclose(q @ r, a, atol=_tol(kind) * 20)
    np.testing.assert_allclose(q.T @ q, np.eye(4), atol=_tol(kind) * 20)
    assert np.allclose(r, np.triu(r))


def test_potrf(rng, kind):
    b = _random(rng, (6, 6), kind)
    a = b @ b.T + 6 * np.eye(6, dtype=kind)
    lower, info = getattr(hooks, f"potrf_{kind}")(a)
    assert info == 0
    np.testing.assert_allclose(lower @ lower.T, a, rtol=_tol(kind), atol=_tol(kind) * 50)


def test_potrf_reports_not_positive_definite(kind):
    _, info = getattr(hooks, f"potrf_{kind}")(-np.eye(3, dtype=kind))
    assert info > 0


def test_ilp64_guard_recognises_signatures():
    lp64 = "void (char *, int *, __pyx_t_5scipy_6linalg_13cython_lapack_d *, int *)"
    ilp64 = "void (char *, int64_t *, __pyx_t_5scipy_6linalg_13cython_lapack_d *, int64_t *)"
    assert _core._lapack_signature_is_lp64(lp64)
    assert not _core._lapack_signature_is_lp64(ilp64)
    assert not _core._lapack_signature_is_lp64("void (char *, long *, double *)")
