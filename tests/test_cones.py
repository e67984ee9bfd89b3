"""Spectral cone projections: certificates, Moreau, invariances, degenerate inputs, cross-checks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from randnla import _core
from randnla import cones
from conftest import to_numpy

TOL = 1e-10  # relative, float64


# ---------------------------------------------------------------- generators
def sym(rng, n, batch=()):
    A = rng.standard_normal(batch + (n, n))
    return 0.5 * (A + np.swapaxes(A, -1, -2))


def with_spectrum(rng, w):
    n = len(w)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    X = (Q * np.asarray(w, float)) @ Q.T
    return 0.5 * (X + X.T)


def sval(X):
    return np.linalg.svd(X, compute_uv=False)


# ---------------------------------------------------------------- membership residuals (<= 0 means inside)
def res_psd(X):
    return -np.linalg.eigvalsh(X)[..., 0]


def res_nuclear(t, X):
    return sval(X).sum(-1) - t


def res_spectral(t, X):
    return sval(X)[..., 0] - t


def topk(w, k):
    return np.sort(w, axis=-1)[..., ::-1][..., :k].sum(-1)


def res_sum_largest(t, X, k):
    return topk(np.linalg.eigvalsh(X), k) - t


def res_sum_largest_dual(s, Y, k):
    w = np.linalg.eigvalsh(-Y)  # 0 <= -Y <= s I, trace(-Y) = k s
    return np.maximum.reduce([-s, -w[..., 0], w[..., -1] - s, np.abs(w.sum(-1) - k * s)])


def res_log_epi(t, v, x, eps=TOL):
    """cl{t >= -v sum log(x / v)}; x are eigenvalues. Checked at the point moved by eps along the
    interior direction (1, 1, 1...), i.e. "within about eps of the cone"."""
    x = np.atleast_1d(np.asarray(x, float)) + eps
    t, v = t + eps, v + eps
    r = max(-v, -x.min())
    if v > 0 and x.min() > 0:
        r = max(r, (-v * np.log(x / v).sum() - t) / max(1.0, abs(t)))
    elif x.min() >= 0:
        r = max(r, -t)
    return r


def res_log_epi_dual(s, u, y, eps=TOL):
    """cl{(s, u, y): s > 0, y > 0, u >= -s sum log(y / s) - n s} (moved by eps along (1, 0, 1...))."""
    y = np.atleast_1d(np.asarray(y, float)) + eps
    s = s + eps
    n = len(y)
    r = max(-s, -y.min())
    if s > 0 and y.min() > 0:
        r = max(r, (-s * np.log(y / s).sum() - n * s - u) / max(1.0, abs(u)))
    elif y.min() >= 0:
        r = max(r, -u)
    return r


def res_exp(p, eps=TOL):
    r, s, t = p + eps * np.array([0.0, 1.0, 3.0])
    if s > 0:
        with np.errstate(over="ignore"):
            return max(-s, (s * np.exp(r / s) - t) / max(1.0, abs(t)))
    return max(-s, r, -t)


def res_exp_dual(p, eps=TOL):
    u, v, w = p + eps * np.array([-1.0, 0.0, 1.0])
    if u < 0:
        with np.errstate(over="ignore"):
            return max(u, (-u * np.exp(v / u) - np.e * w) / max(1.0, abs(w)))
    return max(u, -v, -w)


def res_pow(p, a, eps=TOL):
    x, y, z = p + eps * np.array([1.0, 1.0, 0.0])
    return max(-x, -y, abs(z) - max(x, 0) ** a * max(y, 0) ** (1 - a))


def res_pow_dual(p, a, eps=TOL):
    u, v, w = p + eps * np.array([1.0, 1.0, 0.0])
    return max(-u, -v, abs(w) - (max(u, 0) / a) ** a * (max(v, 0) / (1 - a)) ** (1 - a))


def inner(*pairs):
    return sum(float(np.sum(np.asarray(a, float) * np.asarray(b, float))) for a, b in pairs)


# ---------------------------------------------------------------- vector cones
def exp_points(rng, count=400):
    pts = [rng.standard_normal(3) * 10.0 ** rng.uniform(-3, 3, 3) for _ in range(count)]
    pts += [np.array(p, float) for p in [
        (0, 0, 0), (1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1), (1, 1, 1),
        (-1, -1, -1), (1, -1, 1), (-1, 1, -1), (5, 1e-12, 1), (-5, 1e-12, 1), (1e-12, 1, -1),
        (1, 1, np.e), (-3, 2, 0.5), (3, -2, -0.5), (700, 1, 1), (-700, 1, 1), (1, -700, 1), (1, 700, -1),
        (0, 0, 1e-300), (1e-8, 1e-8, 1e8), (1e8, 1e-8, -1e8)]]
    return np.array(pts)


def test_exp_cone_certificates(rng):
    Z = exp_points(rng)
    P = cones.project_exp_cone(Z)
    D = P - Z
    for z, p, d in zip(Z, P, D):
        s = max(1.0, np.abs(z).max())
        assert res_exp(p / s) <= 0, (z, p)
        assert res_exp_dual(d / s) <= 0, (z, p)
        assert abs(inner((p, d))) <= TOL * s * s, (z, p)
    # Moreau with the dual projection
    Pd = cones.project_exp_cone(-Z, dual=True)
    np.testing.assert_allclose(P - Pd, Z, atol=1e-12 * np.abs(Z).max())


def test_power_cone_certificates(rng):
    for a in (0.1, 0.5, 0.77):
        Z = rng.standard_normal((300, 3)) * 10.0 ** rng.uniform(-2, 2, (300, 1))
        Z = np.vstack([Z, [[0, 0, 1], [1, 0, 1], [0, 1, 1], [-1, -1, 0], [1, 1, 0], [-1, 2, 3], [0, 0, 0]]])
        P = cones.project_power_cone(Z, a)
        for z, p in zip(Z, P):
            s = max(1.0, np.abs(z).max())
            d = p - z
            assert res_pow(p / s, a) <= 0
            assert res_pow_dual(d / s, a) <= 0
            assert abs(inner((p, d))) <= TOL * s * s
        Pd = cones.project_power_cone(-Z, a, dual=True)
        np.testing.assert_allclose(P - Pd, Z, atol=1e-12 * np.abs(Z).max())


def log_points(rng, n, count):
    out = []
    for i in range(count):
        t, v = rng.standard_normal(2) * 3
        x = rng.standard_normal(n) * 10.0 ** rng.uniform(-2, 1)
        out.append((t, v, x))
    out += [(1.0, 0.0, np.zeros(n)), (-1.0, 0.0, np.zeros(n)), (1.0, -1.0, -np.ones(n)), (-1.0, 1.0, np.ones(n)),
            (5.0, 1e-9, rng.standard_normal(n)), (-5.0, 1e-3, np.abs(rng.standard_normal(n))),
            (3.0, 2.0, -np.abs(rng.standard_normal(n))), (-2.0, -1.0, -np.ones(n)), (0.0, 1.0, np.full(n, 1e-9))]
    return out


@pytest.mark.parametrize("n", [1, 2, 5, 30])
def test_log_cone_certificates(rng, n):
    for t0, v0, x0 in log_points(rng, n, 60):
        t, v, x = cones.project_log_cone(t0, v0, x0, convention="epigraph")
        t, v = float(t), float(v)
        s = max(1.0, abs(t0), abs(v0), np.abs(x0).max())
        dt, dv, dx = t - t0, v - v0, x - x0
        assert res_log_epi(t / s, v / s, x / s) <= 0, (t0, v0, x0)
        assert res_log_epi_dual(dt / s, dv / s, dx / s) <= 0, (t0, v0, x0)
        assert abs(inner((t, dt), (v, dv), (x, dx))) <= TOL * s * s
        # hypograph = sign-flipped epigraph
        th, vh, xh = cones.project_log_cone(-t0, v0, x0)
        assert (float(th), float(vh)) == (-t, v) and np.array_equal(xh, x)


def test_log_cone_n1_equals_exp_cone(rng):
    for t0, v0, x0 in log_points(rng, 1, 200):
        t, v, x = cones.project_log_cone(t0, v0, x0, convention="epigraph")
        p = cones.project_exp_cone([-t0, v0, x0[0]])
        s = max(1.0, abs(t0), abs(v0), abs(x0[0]))
        np.testing.assert_allclose([-float(t), float(v), x[0]], p, atol=1e-12 * s, rtol=0)


@pytest.mark.parametrize("n", [1, 3, 50])
def test_norm_vector_cones(rng, n):
    for _ in range(50):
        t0 = rng.standard_normal() * n
        x0 = rng.standard_normal(n)
        if rng.random() < 0.3:
            x0 = np.round(x0)  # ties and zeros
        t, x = cones.project_l1_norm_cone(t0, x0)
        d_t, d_x = t - t0, x - x0
        assert np.abs(x).sum() - t <= 1e-12 * n
        assert np.abs(d_x).max() - d_t <= 1e-12 * n  # dual: linf cone
        assert abs(inner((t, d_t), (x, d_x))) <= 1e-12 * n * n
        t2, x2 = cones.project_linf_norm_cone(t0, x0)
        td, xd = cones.project_l1_norm_cone(-t0, -x0, dual=True)  # Moreau: P_K(z) - P_K*(-z) = z
        np.testing.assert_allclose(x - xd, x0, atol=1e-12 * n)
        assert np.abs(x2).max() - t2 <= 1e-12 * n
        # Moreau between l1 and linf: P_l1(z) + P_linf(-z)... z = P_l1(z) - P_linf(-z)
        tl, xl = cones.project_linf_norm_cone(-t0, -x0)
        np.testing.assert_allclose(x - xl, x0, atol=1e-12 * n)
        np.testing.assert_allclose(t - tl, t0, atol=1e-12 * n)
        # SOC: n = 1 l1 cone equals the 2-D second-order cone
        if n == 1:
            ts, xs = cones.project_soc(t0, x0)
            np.testing.assert_allclose([t, x[0]], [ts, xs[0]], atol=1e-14)


def topk_scan_reference(t0, x0, k):
    """Independent oracle: bisection on eta with an exact capped-simplex inner step."""
    x0 = np.asarray(x0, float)
    if topk(x0, k) <= t0:
        return t0, x0.copy()

    def gap(eta):
        # min over w in C_k of ||x0 - eta w|| gives x = x0 - eta w; eta solves s_k(x) = t0 + eta
        x = x0 - eta * capped_simplex(x0 / eta, k) if eta > 0 else x0
        return topk(x, k) - t0 - eta, x

    lo, hi = 0.0, 1.0
    while gap(hi)[0] > 0:
        hi *= 2
    for _ in range(70):
        mid = 0.5 * (lo + hi)
        if gap(mid)[0] > 0:
            lo = mid
        else:
            hi = mid
    return t0 + hi, gap(hi)[1]


def capped_simplex(y, k):
    """argmin ||w - y|| s.t. 0 <= w <= 1, sum w = k (bisection on the shift)."""
    lo, hi = y.min() - 1.0, y.max()
    for _ in range(70):
        mid = 0.5 * (lo + hi)
        if np.clip(y - mid, 0, 1).sum() > k:
            lo = mid
        else:
            hi = mid
    return np.clip(y - 0.5 * (lo + hi), 0, 1)


@pytest.mark.parametrize("n,k", [(1, 1), (3, 1), (3, 2), (6, 3), (6, 6), (20, 5)])
def test_sum_largest_vector(rng, n, k):
    cases = [(rng.standard_normal() * 2, rng.integers(-2, 3, n).astype(float)) for _ in range(30)]
    cases += [(rng.standard_normal(), rng.standard_normal(n)) for _ in range(30)]
    cases += [(-2.0, np.array([2.0, 1.0, 1.0] + [0.0] * (n - 3))) if n >= 3 else (-1.0, np.ones(n))]
    for i, (t0, x0) in enumerate(cases):
        t, x = cones.project_sum_largest_vector_cone(t0, x0, k)
        t = float(t)
        sc = max(1.0, abs(t0), np.abs(x0).max())
        dt, dx = t - t0, x - x0  # certificate: dual cone {eta >= 0, 0 <= -y <= eta, sum(-y) = k eta}
        assert topk(x, k) - t <= 1e-12 * n * sc
        assert dt >= -1e-12 * sc and np.all(-dx >= -1e-12 * sc) and np.all(-dx <= dt + 1e-12 * sc)
        assert abs(-dx.sum() - k * dt) <= 1e-12 * n * sc
        assert abs(t * dt + x @ dx) <= 1e-12 * n * sc * sc
        if i % 6 == 0:  # independent bisection oracle
            tr, xr = topk_scan_reference(t0, x0, k)
            np.testing.assert_allclose(np.r_[t, x], np.r_[tr, xr], atol=1e-8 * sc)


def test_sum_largest_polar_point_scs_failure_case():
    # SCS 3.2.11 aborts or returns an infeasible point here; the answer is 0.
    t, x = cones.project_sum_largest_vector_cone(-2.0, [2.0, 1.0, 1.0], 2)
    assert float(t) == 0 and np.all(x == 0)
    rng = np.random.default_rng(1)
    X = with_spectrum(rng, [2.0, 1.0, 1.0])
    t, P = cones.project_sum_largest_cone(-2.0, X, 2)
    assert abs(float(t)) < 1e-13 and np.abs(P).max() < 1e-13


def test_soc_and_nonneg(rng):
    for n in (1, 2, 10):
        T = rng.standard_normal(100) * 3
        X = rng.standard_normal((100, n))
        t, x = cones.project_soc(T, X)
        assert np.all(np.linalg.norm(x, axis=1) - t <= 1e-12 * (1 + np.abs(T)))
        dt, dx = t - T, x - X
        assert np.all(np.linalg.norm(dx, axis=1) - dt <= 1e-12 * (1 + np.abs(T)))
        assert np.abs(t * dt + (x * dx).sum(1)).max() <= 1e-12 * n * 10
    assert cones.project_nonneg([[1.0, -1.0]]).tolist() == [[1.0, 0.0]]


# ---------------------------------------------------------------- matrix cones: certificates
BATCHES = [(), (3,), (2, 2)]


def scale_of(*parts):
    return max(1.0, max(float(np.abs(np.asarray(p)).max()) for p in parts))


def check_psd(X, P, tol):
    s = scale_of(X)
    D = P - X
    assert np.all(res_psd(P) <= tol * s)
    assert np.all(res_psd(D) <= tol * s)
    assert np.all(np.abs((P * D).sum((-2, -1))) <= tol * s * s * X.shape[-1])
    assert np.array_equal(P, np.swapaxes(P, -1, -2))


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("n", [1, 4, 20, 40])
def test_psd_certificates(rng, dtype, batch, n):
    X = sym(rng, n, batch).astype(dtype)
    P = cones.project_psd(X)
    assert P.dtype == dtype and P.shape == X.shape
    tol = TOL if dtype == np.float64 else 1e-5
    check_psd(X.astype(float), P.astype(float), tol)
    np.testing.assert_allclose(cones.project_psd(X, dual=True), P)


def dual_nuclear_ok(t, X, P, tt, tol):
    s = scale_of(X, t)
    dt, D = tt - t, P - X
    assert np.all(res_nuclear(tt, P) <= tol * s)
    assert np.all(res_spectral(dt, D) <= tol * s)
    assert np.all(np.abs(tt * dt + (P * D).sum((-2, -1))) <= tol * s * s)


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("shape", [(1, 1), (5, 1), (1, 5), (6, 6), (16, 10), (10, 16), (30, 20), (20, 30)])
def test_nuclear_and_spectral_certificates(rng, dtype, batch, shape):
    X = rng.standard_normal(batch + shape).astype(dtype)
    t = (rng.standard_normal(batch) * 2).astype(dtype) if batch else dtype.type(0.7)
    tol = TOL if dtype == np.float64 else 1e-5
    tt, P = cones.project_nuclear_norm_cone(t, X)
    assert P.dtype == dtype and P.shape == X.shape
    dual_nuclear_ok(np.asarray(t, float), X.astype(float), P.astype(float), np.asarray(tt, float), tol)
    ts, S = cones.project_spectral_norm_cone(t, X)
    s = scale_of(X, t)
    dt, D = np.asarray(ts, float) - t, S.astype(float) - X
    assert np.all(res_spectral(np.asarray(ts, float), S.astype(float)) <= tol * s)
    assert np.all(res_nuclear(dt, D) <= tol * s)
    # spectral = Moreau dual of nuclear: P_spec(z) = z + P_nuc(-z)
    tn, Pn = cones.project_nuclear_norm_cone(-np.asarray(t), -X)
    np.testing.assert_allclose(S.astype(float), X + Pn, atol=100 * tol * s)
    np.testing.assert_allclose(np.asarray(ts, float), np.asarray(t, float) + tn, atol=100 * tol * s)
    tdual, Sd = cones.project_nuclear_norm_cone(t, X, dual=True)
    np.testing.assert_allclose(Sd, S, atol=10 * tol * s)


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("n,k", [(1, 1), (5, 1), (5, 2), (5, 5), (20, 7), (20, 19), (40, 4), (40, 39)])
def test_sum_largest_certificates(rng, dtype, batch, n, k):
    X = sym(rng, n, batch).astype(dtype)
    t = (rng.standard_normal(batch) * 2).astype(dtype) if batch else dtype.type(-0.3)
    tol = TOL if dtype == np.float64 else 1e-5
    tt, P = cones.project_sum_largest_cone(t, X, k)
    assert P.dtype == dtype and P.shape == X.shape
    tt, P = np.asarray(tt, float), P.astype(float)
    s = scale_of(X, t)
    dt, D = tt - t, P - X
    assert np.all(res_sum_largest(tt, P, k) <= tol * s)
    assert np.all(res_sum_largest_dual(dt, D, k) <= tol * s)
    assert np.all(np.abs(tt * dt + (P * D).sum((-2, -1))) <= tol * s * s)
    # Moreau with the dual projection
    td, Pd = cones.project_sum_largest_cone(-np.asarray(t), -X, k, dual=True)
    np.testing.assert_allclose(P - Pd, X, atol=10 * tol * s)
    np.testing.assert_allclose(tt - td, t, atol=10 * tol * s)


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("n", [1, 3, 12, 25, 40])
def test_logdet_certificates(rng, dtype, batch, n):
    X = sym(rng, n, batch).astype(dtype)
    t = (rng.standard_normal(batch) * 3).astype(dtype) if batch else dtype.type(-1.5)
    v = (rng.standard_normal(batch) * 2).astype(dtype) if batch else dtype.type(0.8)
    tol = TOL if dtype == np.float64 else 1e-5
    tt, vv, P = cones.project_logdet_cone(t, v, X)
    assert P.dtype == dtype and P.shape == X.shape
    if dtype == np.float32:  # certificates with logs are ill-conditioned in float32: compare with float64
        t64, v64, P64 = cones.project_logdet_cone(np.asarray(t, float), np.asarray(v, float), X.astype(float))
        sc = scale_of(X, t, v)
        np.testing.assert_allclose(P, P64, atol=1e-5 * sc)
        np.testing.assert_allclose(tt, t64, atol=1e-5 * sc)
        np.testing.assert_allclose(vv, v64, atol=1e-5 * sc)
        return
    T0, V0 = np.broadcast_to(t, batch).astype(float).ravel(), np.broadcast_to(v, batch).astype(float).ravel()
    T, V = np.asarray(tt, float).ravel(), np.asarray(vv, float).ravel()
    Xs, Ps = X.astype(float).reshape(-1, n, n), P.astype(float).reshape(-1, n, n)
    for i in range(len(T)):
        s = scale_of(Xs[i], T0[i], V0[i])
        lp, ld = np.linalg.eigvalsh(Ps[i]), np.linalg.eigvalsh(Ps[i] - Xs[i])
        # hypograph (t, v, X) <-> epigraph (-t, v, X)
        assert res_log_epi(-T[i] / s, V[i] / s, lp / s) <= 0
        assert res_log_epi_dual(-(T[i] - T0[i]) / s, (V[i] - V0[i]) / s, ld / s) <= 0
        comp = T[i] * (T[i] - T0[i]) + V[i] * (V[i] - V0[i]) + (Ps[i] * (Ps[i] - Xs[i])).sum()
        assert abs(comp) <= tol * s * s
    td, vd, Pd = cones.project_logdet_cone(-np.asarray(t), -np.asarray(v), -X, dual=True)
    np.testing.assert_allclose(P.astype(float) - Pd, X, atol=10 * tol * scale_of(X, t, v))
    # epigraph convention = sign flip
    te, ve, Pe = cones.project_logdet_cone(-np.asarray(t), v, X, convention="epigraph")
    np.testing.assert_allclose(-np.asarray(te, float), np.asarray(tt, float), rtol=1e-6 if dtype == np.float32 else 1e-14)


def test_logdet_n1_is_exp_cone(rng):
    for t0, v0, x0 in log_points(rng, 1, 100):
        t, v, P = cones.project_logdet_cone(t0, v0, np.array([[x0[0]]]))
        p = cones.project_exp_cone([t0, v0, x0[0]])  # hypograph (t, v, x) <-> exp (t, v, x)
        s = max(1.0, abs(t0), abs(v0), abs(x0[0]))
        np.testing.assert_allclose([float(t), float(v), P[0, 0]], p, atol=1e-12 * s, rtol=0)


def test_balls_and_spectraplex(rng, dtype):
    tol = TOL if dtype == np.float64 else 1e-5
    for shape in [(6, 6), (4, 9), (9, 4)]:
        X = (rng.standard_normal(shape) * 2).astype(dtype)
        for r in (0.0, 0.5, 3.0, 100.0):
            P = cones.project_nuclear_norm_ball(X, r).astype(float)
            sv, sx = sval(P), sval(X.astype(float))
            assert sv.sum() <= r + tol * max(1, r)
            # optimality: P = U diag(max(s - theta, 0)) V^T, check against the vector l1 ball via vector cone
            if sx.sum() > r:
                assert abs(sv.sum() - r) <= tol * max(1, sx.sum())
            else:
                np.testing.assert_allclose(P, X, atol=tol)
            S = cones.project_spectral_norm_ball(X, r).astype(float)
            np.testing.assert_allclose(sval(S), np.minimum(sx, r), atol=tol * max(1, sx.max()))
    X = sym(rng, 7).astype(dtype)
    P = cones.project_spectraplex(X).astype(float)
    w = np.linalg.eigvalsh(P)
    assert w.min() >= -tol and abs(w.sum() - 1) <= tol * 10
    # optimality: P - X = -(X - P) has eigen-structure lambda_i(P) > 0 => theta constant
    lx = np.linalg.eigvalsh(X.astype(float))
    lp = np.sort(np.linalg.eigvalsh(P))
    theta = (lx - lp)[lp > 1e-6]
    assert np.ptp(theta) <= 1e-5 if dtype == np.float32 else np.ptp(theta) <= 1e-10
    assert np.all(lx[lp <= 1e-6] <= theta[0] + 1e-5)


# ---------------------------------------------------------------- degenerate inputs
def all_projections(t, v, X, k=2):
    """(name, point) for every matrix cone at one input."""
    n = X.shape[-1]
    out = {
        "psd": (0, 0, cones.project_psd(X)),
        "logdet": cones.project_logdet_cone(t, v, X),
        "nuclear": (*cones.project_nuclear_norm_cone(t, X), 0)[::-1],
        "spectral": (*cones.project_spectral_norm_cone(t, X), 0)[::-1],
        "sum_largest": (*cones.project_sum_largest_cone(t, X, min(k, n)), 0)[::-1],
    }
    return out


@pytest.mark.parametrize("scale", [1e-8, 1e-4, 1.0, 1e4, 1e8])
def test_scales_and_ties(rng, scale):
    for w in ([1, 1, 1, -1, -1], [0, 0, 0, 0, 0], [2, 2, 0, 0, -2], [1, 0, 0, 0, 0], [-1, -1, -1, -1, -1]):
        X = with_spectrum(rng, np.array(w, float)) * scale
        for t, v in [(0.0, 0.0), (scale, scale), (-scale, scale), (scale, -scale), (-3 * scale, -scale)]:
            res = all_projections(t, v, X)
            for name, parts in res.items():
                for p in parts:
                    assert np.all(np.isfinite(p)), name
            P = res["psd"][2]
            assert res_psd(P) <= 1e-12 * scale
            tl, vl, L = res["logdet"]
            assert res_log_epi(-float(tl) / scale, float(vl) / scale, np.linalg.eigvalsh(L) / scale) <= TOL
            tn, N = cones.project_nuclear_norm_cone(t, X)
            assert res_nuclear(float(tn), N) <= 1e-12 * scale
            ts, S = cones.project_sum_largest_cone(t, X, 2)
            assert res_sum_largest(float(ts), S, 2) <= 1e-12 * scale
            # homogeneity against the unit-scale result
            tu, Nu = cones.project_nuclear_norm_cone(t / scale, X / scale)
            np.testing.assert_allclose(N / scale, Nu, atol=1e-12)


def test_fixed_points_and_polar_points(rng):
    n = 6
    A = rng.standard_normal((n, n))
    X = A @ A.T + np.eye(n)  # positive definite
    assert np.array_equal(cones.project_psd(X), 0.5 * (X + X.T))
    assert np.array_equal(cones.project_psd(-X), np.zeros((n, n)))
    nuc = sval(X).sum()
    t, P = cones.project_nuclear_norm_cone(nuc * 1.01, X)
    np.testing.assert_allclose(P, X, rtol=1e-14, atol=1e-14 * nuc)
    t, P = cones.project_nuclear_norm_cone(-sval(X).max() * 1.01, X)
    assert float(t) == 0 and np.all(P == 0)
    t, P = cones.project_spectral_norm_cone(-nuc * 1.01, X)
    assert float(t) == 0 and np.all(P == 0)
    # log-det: in the cone, in the polar cone, v = 0 face, v <= 0 <= t
    ld = np.linalg.slogdet(X)[1]
    t, v, P = cones.project_logdet_cone(ld - 1.0, 1.0, X)
    assert float(t) == ld - 1.0 and float(v) == 1.0 and np.allclose(P, X, rtol=1e-14, atol=1e-13)
    Y = np.kron(np.eye(8), X)[:40, :40]  # n = 40: the LAPACK path proves membership by Cholesky
    ldy = np.linalg.slogdet(Y)[1]
    t, v, P = cones.project_logdet_cone(ldy - 1.0, 1.0, Y)
    assert float(t) == ldy - 1.0 and float(v) == 1.0 and np.array_equal(P, Y)
    t, v, P = cones.project_logdet_cone(1.0, 0.0, X)  # hypograph: t <= 0 on the face v = 0
    s = scale_of(X)
    assert float(v) >= 0 and res_log_epi(-float(t) / s, float(v) / s, np.linalg.eigvalsh(P) / s) <= TOL
    t, v, P = cones.project_logdet_cone(-1.0, -2.0, X - 10 * np.eye(n))  # (t, 0, PSD part)
    assert float(t) == -1.0 and float(v) == 0.0
    np.testing.assert_allclose(P, cones.project_psd(X - 10 * np.eye(n)), atol=1e-12 * s)
    # rank-deficient input
    B = rng.standard_normal((n, 2))
    R = B @ B.T
    t, P = cones.project_nuclear_norm_cone(0.5, R)
    dual_nuclear_ok(np.asarray(0.5), R, P, np.asarray(t), TOL)
    assert np.linalg.matrix_rank(P, tol=1e-10) <= 2
    # k = n: half space, k = 1: lambda_max
    tr = np.trace(X)
    t, P = cones.project_sum_largest_cone(tr - 7.0, X, n)
    delta = 7.0 / (n + 1)
    np.testing.assert_allclose(P, X - delta * np.eye(n), atol=1e-12 * s)
    assert np.isclose(float(t), tr - 7.0 + delta)
    t, P = cones.project_sum_largest_cone(0.0, X, 1)
    assert abs(np.linalg.eigvalsh(P)[-1] - float(t)) <= 1e-12 * s


def test_nuclear_n1_equals_soc(rng):
    for m in (1, 3, 10):
        for _ in range(20):
            x = rng.standard_normal((m, 1))
            t0 = rng.standard_normal() * 2
            t, P = cones.project_nuclear_norm_cone(t0, x)
            ts, xs = cones.project_soc(t0, x[:, 0])
            np.testing.assert_allclose(np.r_[float(t), P[:, 0]], np.r_[float(ts), xs], atol=1e-14 * (1 + abs(t0)))


def test_diagonal_matrix_equals_vector_projection(rng):
    w = rng.standard_normal(8)
    X = np.diag(w)
    t, P = cones.project_sum_largest_cone(0.3, X, 3)
    tv, xv = cones.project_sum_largest_vector_cone(0.3, w, 3)
    np.testing.assert_allclose(P, np.diag(xv), atol=1e-14)
    t, v, P = cones.project_logdet_cone(0.3, 0.4, X)
    tv, vv, xv = cones.project_log_cone(0.3, 0.4, w)
    np.testing.assert_allclose(np.diag(P), np.sort(xv)[np.argsort(np.argsort(w))], atol=1e-13)


# ---------------------------------------------------------------- property tests (hypothesis)
def point(seed, n):
    rng = np.random.default_rng(seed)
    scale = 10.0 ** rng.uniform(-3, 3)
    return rng.standard_normal() * scale * 2, abs(rng.standard_normal()) * scale, sym(rng, n) * scale


PROJ = {
    "psd": lambda t, v, X: (0.0, 0.0, cones.project_psd(X)),
    "logdet": lambda t, v, X: cones.project_logdet_cone(t, v, X),
    "nuclear": lambda t, v, X: (lambda r: (r[0], 0.0, r[1]))(cones.project_nuclear_norm_cone(t, X)),
    "spectral": lambda t, v, X: (lambda r: (r[0], 0.0, r[1]))(cones.project_spectral_norm_cone(t, X)),
    "sum_largest": lambda t, v, X: (lambda r: (r[0], 0.0, r[1]))(cones.project_sum_largest_cone(t, X, min(2, X.shape[-1]))),
}


def flat(p):
    return np.r_[float(p[0]), float(p[1]), np.asarray(p[2], float).ravel()]


SETTINGS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("name", sorted(PROJ))
@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 20))
def test_properties(name, seed, n):
    f = PROJ[name]
    t, v, X = point(seed, n)
    if name != "logdet":
        v = 0.0
    p = flat(f(t, v, X))
    z = np.r_[t, v, X.ravel()]
    s = max(1.0, np.abs(z).max())
    # idempotence
    q = flat(f(*(p[0], p[1], p[2:].reshape(n, n))))
    np.testing.assert_allclose(q, p, atol=1e-11 * s)
    # positive homogeneity
    for alpha in (1e-4, 1e4):
        pa = flat(f(alpha * t, alpha * v, alpha * X))
        np.testing.assert_allclose(pa / alpha, p, atol=1e-11 * s)
    # non-expansiveness
    t2, v2, X2 = point(seed + 1, n)
    if name != "logdet":
        v2 = 0.0
    p2 = flat(f(t2, v2, X2))
    z2 = np.r_[t2, v2, X2.ravel()]
    assert np.linalg.norm(p - p2) <= np.linalg.norm(z - z2) * (1 + 1e-12) + 1e-12 * s
    # orthogonal equivariance
    Q, _ = np.linalg.qr(np.random.default_rng(seed + 2).standard_normal((n, n)))
    pq = f(t, v, Q @ X @ Q.T)
    np.testing.assert_allclose(float(pq[0]), p[0], atol=1e-10 * s)
    np.testing.assert_allclose(np.asarray(pq[2]), Q @ p[2:].reshape(n, n) @ Q.T, atol=1e-10 * s)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), m=st.integers(1, 8), n=st.integers(1, 8))
def test_rectangular_equivariance(seed, m, n):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, n))
    t = rng.standard_normal()
    U, _ = np.linalg.qr(rng.standard_normal((m, m)))
    V, _ = np.linalg.qr(rng.standard_normal((n, n)))
    for f in (cones.project_nuclear_norm_cone, cones.project_spectral_norm_cone):
        t1, P1 = f(t, X)
        t2, P2 = f(t, U @ X @ V)
        np.testing.assert_allclose(float(t2), float(t1), atol=1e-12 * (1 + abs(t)))
        np.testing.assert_allclose(P2, U @ P1 @ V, atol=1e-11 * (1 + abs(t)))


# ---------------------------------------------------------------- batching, threads, errors, Jacobi
def test_batched_equals_one_by_one_and_threads(rng):
    X = sym(rng, 8, (50,))
    t = rng.standard_normal(50)
    v = np.abs(rng.standard_normal(50))
    a = cones.project_logdet_cone(t, v, X, n_threads=1)
    b = cones.project_logdet_cone(t, v, X, n_threads=2)
    for x, y in zip(a, b):
        assert np.array_equal(x, y)
    for i in (0, 17, 49):
        one = cones.project_logdet_cone(t[i], v[i], X[i])
        for x, y in zip(a, one):
            assert np.array_equal(np.asarray(x)[i], np.asarray(y))
    P1 = cones.project_psd(X, n_threads=1)
    P2 = cones.project_psd(X, n_threads=2)
    assert np.array_equal(P1, P2)
    Z = rng.standard_normal((2000, 3))
    assert np.array_equal(cones.project_exp_cone(Z, n_threads=1), cones.project_exp_cone(Z, n_threads=2))
    W = rng.standard_normal((500, 6))
    a1 = cones.project_log_cone(0.3, 0.2, W, n_threads=1)
    a2 = cones.project_log_cone(0.3, 0.2, W, n_threads=2)
    assert all(np.array_equal(p, q) for p, q in zip(a1, a2))
    R = rng.standard_normal((300, 5, 7))
    for f in (cones.project_nuclear_norm_cone, cones.project_spectral_norm_cone):
        a1, b1 = f(0.5, R, n_threads=1)
        a2, b2 = f(0.5, R, n_threads=2)
        assert np.array_equal(a1, a2) and np.array_equal(b1, b2)
    # large matrices (LAPACK path) agree with the small (Jacobi) path's certificates
    Y = sym(rng, 40, (3,))
    check_psd(Y, cones.project_psd(Y), TOL)


def test_onesided_jacobi_svd(rng):
    for m, n in [(1, 1), (3, 1), (5, 5), (9, 4), (32, 32)]:
        for A in (rng.standard_normal((m, n)), np.round(rng.standard_normal((m, n)))):
            W, s, V, ok = _core.cones.onesided_jacobi_svd(A)
            assert ok
            np.testing.assert_allclose(np.sort(s)[::-1], np.linalg.svd(A, compute_uv=False), atol=1e-13 * n)
            np.testing.assert_allclose(V.T @ V, np.eye(n), atol=1e-13 * n)
            np.testing.assert_allclose(W @ V.T, A, atol=1e-13 * n)


@pytest.mark.parametrize("solver", ["tridiagonal_ql_eigh"])
def test_small_eigensolvers(rng, solver):
    for n in (1, 2, 5, 16):
        A = sym(rng, n)
        if n == 5:
            A = with_spectrum(rng, [1.0, 1.0, 0.0, 0.0, -2.0])  # ties
        w, V, ok = getattr(_core.cones, solver)(A)
        assert ok
        np.testing.assert_allclose(np.sort(w), np.linalg.eigvalsh(A), atol=1e-14 * n)
        np.testing.assert_allclose(V.T @ V, np.eye(n), atol=1e-14 * n)
        np.testing.assert_allclose((V * w) @ V.T, A, atol=1e-14 * n)


def test_errors():
    X = np.eye(3)
    bad = X.copy()
    bad[0, 1] = 1.0
    with pytest.raises(ValueError, match="symmetric"):
        cones.project_psd(bad)
    with pytest.raises(ValueError, match="symmetric"):
        cones.project_psd(np.tile(bad, (3, 1, 1)) * 1.0)  # Jacobi path too
    big = np.eye(30)
    big[0, 1] = 1.0
    with pytest.raises(ValueError, match="symmetric"):
        cones.project_psd(big)
    nan = X.copy()
    nan[1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        cones.project_psd(nan)
    with pytest.raises(ValueError, match="NaN"):
        cones.project_nuclear_norm_cone(1.0, nan)
    with pytest.raises(ValueError, match="t"):
        cones.project_nuclear_norm_cone(np.inf, X)
    with pytest.raises(ValueError, match="square"):
        cones.project_psd(np.ones((2, 3)))
    with pytest.raises(ValueError, match="k"):
        cones.project_sum_largest_cone(0.0, X, 4)
    with pytest.raises(ValueError, match="k"):
        cones.project_sum_largest_cone(0.0, X, 0)
    with pytest.raises(TypeError, match="k"):
        cones.project_sum_largest_cone(0.0, X, 1.5)
    with pytest.raises(ValueError, match="alpha"):
        cones.project_power_cone([1.0, 1.0, 1.0], 1.0)
    with pytest.raises(ValueError, match="shape"):
        cones.project_exp_cone([1.0, 2.0])
    with pytest.raises(ValueError, match="convention"):
        cones.project_logdet_cone(0.0, 1.0, X, convention="scs")
    with pytest.raises(ValueError, match="t"):
        cones.project_logdet_cone(np.zeros(2), 1.0, np.tile(X, (3, 1, 1)))
    with pytest.raises(TypeError, match="X"):
        cones.project_psd(X.astype(complex))
    with pytest.raises(ValueError, match="NaN"):
        cones.project_soc(0.0, [np.nan, 1.0])
    with pytest.raises(ValueError, match="radius"):
        cones.project_nuclear_norm_ball(X, -1.0)


def test_inputs_not_mutated(rng):
    X = sym(rng, 5)
    X0 = X.copy()
    for f in PROJ.values():
        f(0.1, 0.2, X)
    assert np.array_equal(X, X0)


# ---------------------------------------------------------------- CVXPY + Clarabel
def test_against_cvxpy_clarabel(rng):
    cp = pytest.importorskip("cvxpy")
    pytest.importorskip("clarabel")
    n = 4
    X0 = sym(rng, n)
    t0, v0 = 0.3, 0.5
    tol = dict(rtol=1e-5, atol=1e-5)

    def solve(objective_terms, constraints):
        prob = cp.Problem(cp.Minimize(objective_terms), constraints)
        prob.solve(solver=cp.CLARABEL)
        assert prob.status == "optimal"

    # nuclear (rectangular)
    A0 = rng.standard_normal((4, 3))
    T, A = cp.Variable(), cp.Variable((4, 3))
    solve(cp.sum_squares(A - A0) + cp.square(T - t0), [cp.normNuc(A) <= T])
    t, P = cones.project_nuclear_norm_cone(t0, A0)
    np.testing.assert_allclose(P, A.value, **tol)
    np.testing.assert_allclose(float(t), T.value, **tol)
    # spectral
    solve(cp.sum_squares(A - A0) + cp.square(T - t0), [cp.sigma_max(A) <= T])
    t, P = cones.project_spectral_norm_cone(t0, A0)
    np.testing.assert_allclose(P, A.value, **tol)
    # sum of largest eigenvalues
    S = cp.Variable((n, n), symmetric=True)
    solve(cp.sum_squares(S - X0) + cp.square(T - t0), [cp.lambda_sum_largest(S, 2) <= T])
    t, P = cones.project_sum_largest_cone(t0, X0, 2)
    np.testing.assert_allclose(P, S.value, **tol)
    # PSD
    solve(cp.sum_squares(S - X0), [S >> 0])
    np.testing.assert_allclose(cones.project_psd(X0), S.value, **tol)
    # log-det (hypograph): t <= v log det(X / v) written as the perspective through the eigen-free
    # route: diagonal X so that log det is a sum of logs.
    w0 = rng.standard_normal(n)
    V, x = cp.Variable(), cp.Variable(n)
    solve(cp.square(T - t0) + cp.square(V - v0) + cp.sum_squares(x - w0), [cp.sum(-cp.rel_entr(V * np.ones(n), x)) >= T])
    t, v, P = cones.project_logdet_cone(t0, v0, np.diag(w0))
    np.testing.assert_allclose([float(t), float(v)], [T.value, V.value], **tol)
    np.testing.assert_allclose(np.diag(P), x.value, **tol)
    # exponential cone
    z0 = np.array([0.7, -0.4, 0.2])
    y = cp.Variable(3)
    solve(cp.sum_squares(y - z0), [cp.constraints.ExpCone(y[0], y[1], y[2])])
    np.testing.assert_allclose(cones.project_exp_cone(z0), y.value, **tol)
    # power cone
    solve(cp.sum_squares(y - z0), [cp.PowCone3D(y[0], y[1], y[2], 0.3)])
    np.testing.assert_allclose(cones.project_power_cone(z0, 0.3), y.value, **tol)


# ---------------------------------------------------------------- array libraries
def test_output_follows_input(xp):
    rng = np.random.default_rng(3)
    X = xp.asarray(sym(rng, 6, (2,)))
    P = cones.project_psd(X)
    assert type(P) is type(X)
    check_psd(to_numpy(X), to_numpy(P), TOL)
    t, v, L = cones.project_logdet_cone(xp.asarray([0.5, -0.5]), 1.0, X)
    assert type(L) is type(X)
    A = rng.standard_normal((2, 5, 3))
    tn, N = cones.project_nuclear_norm_cone(0.3, xp.asarray(A))
    dual_nuclear_ok(np.full(2, 0.3), A, to_numpy(N), to_numpy(tn), TOL)
    assert type(N) is type(X)
    ts, S = cones.project_sum_largest_cone(0.3, X, 2)
    assert res_sum_largest(to_numpy(ts), to_numpy(S), 2).max() <= 1e-10 * 10


# ---------------------------------------------------------------- wide-scale stress (regression points included)
def test_exp_and_power_wide_scales():
    rng = np.random.default_rng(7)
    Z = rng.standard_normal((3000, 3)) * 10.0 ** rng.uniform(-6, 6, (3000, 3))
    Z[rng.random(Z.shape) < 0.1] = 0
    Z = np.vstack([Z, [[-6.63885053e-01, 1.19548858e-03, -1.27889915e05], [8.12705739, -213.32083449, 7.4277867],
                       [1.16563766e02, 3.28504899e-03, -3.92504166e01], [-7.62875301e-06, 9.61423441e02, 3.18121814e02]]])
    P = cones.project_exp_cone(Z)
    for z, p in zip(Z, P):
        s = np.abs(z).max()
        if s == 0:
            continue
        d = p - z
        assert res_exp(p / s) <= 0 and res_exp_dual(d / s) <= 0 and abs(p @ d) <= TOL * s * s, (z, p)
    for a in (0.05, 0.5, 0.95):
        P = cones.project_power_cone(Z[::3], a)
        for z, p in zip(Z[::3], P):
            s = np.abs(z).max()
            if s == 0:
                continue
            d = p - z
            assert res_pow(p / s, a) <= 0 and res_pow_dual(d / s, a) <= 0 and abs(p @ d) <= TOL * s * s, (a, z, p)


def test_log_cone_wide_scales():
    rng = np.random.default_rng(8)
    for n in (1, 3, 6):
        for _ in range(300):
            t0, v0 = rng.standard_normal(2) * 10.0 ** rng.uniform(-4, 4, 2)
            x0 = rng.standard_normal(n) * 10.0 ** rng.uniform(-4, 4, n)
            t, v, x = cones.project_log_cone(t0, v0, x0, convention="epigraph")
            t, v = float(t), float(v)
            s = max(abs(t0), abs(v0), np.abs(x0).max())
            assert res_log_epi(t / s, v / s, x / s) <= 0, (t0, v0, x0)
            assert res_log_epi_dual((t - t0) / s, (v - v0) / s, (x - x0) / s) <= 0, (t0, v0, x0)
            assert abs(t * (t - t0) + v * (v - v0) + x @ (x - x0)) <= TOL * s * s


@pytest.mark.parametrize("k", [1, 37, 1000, 1999])
def test_sum_largest_vector_long(k):
    rng = np.random.default_rng(k)
    n = 2000
    for x0 in (rng.standard_normal(n), np.round(rng.standard_normal(n) * 2)):
        for t0 in (-50.0, 0.0, 30.0):
            t, x = cones.project_sum_largest_vector_cone(t0, x0, k)
            t = float(t)
            sc = max(1.0, abs(t0), np.abs(x0).max()) * n
            dt, dx = t - t0, x - x0
            assert topk(x, k) - t <= 1e-12 * sc
            assert dt >= 0 and np.all(-dx >= -1e-12 * sc) and np.all(-dx <= dt + 1e-12 * sc)
            assert abs(-dx.sum() - k * dt) <= 1e-12 * sc
            assert abs(t * dt + x @ dx) <= 1e-12 * sc * sc


def test_device_code_path_on_numpy(rng):
    """The CuPy code path (xp decompositions, host vector step, xp reassembly) run with NumPy."""
    from randnla.cones import _L1, _LINF, _LOG, _NONNEG, _TOPK, _svd_gpu, _sym_gpu

    X = sym(rng, 7, (3,))
    t = rng.standard_normal(3)
    v = np.abs(rng.standard_normal(3))
    zeros = np.zeros(3)
    P, _, _ = _sym_gpu(_NONNEG, X, zeros, zeros, 0.0, False, xp=np)
    np.testing.assert_allclose(P, cones.project_psd(X), atol=1e-13)
    P, tt, vv = _sym_gpu(_LOG, X, -t, v, 0.0, False, xp=np)
    ref = cones.project_logdet_cone(t, v, X)
    np.testing.assert_allclose(-tt, ref[0], atol=1e-12)
    np.testing.assert_allclose(P, ref[2], atol=1e-12)
    P, tt, _ = _sym_gpu(_TOPK, X, t, zeros, 2.0, True, xp=np)
    ref = cones.project_sum_largest_cone(t, X, 2, dual=True)
    np.testing.assert_allclose(P, ref[1], atol=1e-12)
    A = rng.standard_normal((3, 6, 4))
    for kind, f in ((_L1, cones.project_nuclear_norm_cone), (_LINF, cones.project_spectral_norm_cone)):
        P, tt = _svd_gpu(kind, A, t, 0.0, False, xp=np)
        ref = f(t, A)
        np.testing.assert_allclose(P, ref[1], atol=1e-12)
        np.testing.assert_allclose(tt, ref[0], atol=1e-12)


# ---------------------------------------------------------------- partial spectra and the Gram route
def rect_with_singular_values(rng, m, n, s):
    r = min(m, n)
    U, _ = np.linalg.qr(rng.standard_normal((m, r)))
    V, _ = np.linalg.qr(rng.standard_normal((n, r)))
    return (U * np.asarray(s, float)) @ V.T


def svd_reference(kind, t0, X, param=None):
    """Dense SVD + the vector projection (the matrix part is independent of the library)."""
    U, s, Vt = np.linalg.svd(X, full_matrices=False)
    if kind == "nuclear":
        t, x = cones.project_l1_norm_cone(t0, s)
    elif kind == "spectral":
        t, x = cones.project_linf_norm_cone(t0, s)
    elif kind == "spectral_ball":
        t, x = 0.0, np.minimum(s, param)
    else:  # nuclear ball: sorted l1-ball step (bisection-free: the l1 cone at the matching t)
        t, x = 0.0, s.copy()
        if s.sum() > param:
            lo, hi = 0.0, s[0]
            for _ in range(200):
                mu = 0.5 * (lo + hi)
                lo, hi = (mu, hi) if np.maximum(s - mu, 0).sum() > param else (lo, mu)
            x = np.maximum(s - hi, 0)
    return float(t), (U * np.asarray(x)) @ Vt


# LAPACK routes (Gram route with sytrd/stevd, or gesdd), then the small Gram route (r <= 32,
# m, n <= 64: tridiagonal QL on the Gram matrix) above the batched-Jacobi sizes.
SHAPES_LARGE = [(50, 34), (34, 50), (120, 3), (3, 120), (30, 30), (40, 25), (25, 40), (64, 2), (17, 17)]


@pytest.mark.parametrize("shape", SHAPES_LARGE)
def test_large_singular_value_cones_all_thresholds(rng, shape):
    """Sweeps t across the whole range, so the threshold passes the Gram-route limit (5% of the
    largest singular value) and the fallback to the full SVD; spectra with ties and tiny values."""
    m, n = shape
    r = min(m, n)
    spectra = [
        np.sort(np.abs(rng.standard_normal(r)))[::-1] * 3,
        np.r_[np.full((r + 1) // 2, 2.0), np.full(r // 2, 1e-12)],  # ties and numerically zero values
        np.logspace(0, -14, r),  # graded: Gram-matrix eigenvalues below eps * s_max^2
        np.r_[np.full(min(3, r), 5.0), np.zeros(r - min(3, r))],  # rank deficient
    ]
    for s in spectra:
        X = rect_with_singular_values(rng, m, n, s)
        smax, nuc = s.max(), s.sum()
        for frac in (-1.5, -0.3, -0.04, 0.0, 0.045, 0.055, 0.3, 0.99, 1.2):
            for kind, t0 in (("nuclear", frac * nuc), ("spectral", frac * smax)):
                f = cones.project_nuclear_norm_cone if kind == "nuclear" else cones.project_spectral_norm_cone
                tt, P = f(t0, X)
                tr, R = svd_reference(kind, t0, X)
                sc = max(1.0, abs(t0), np.abs(X).max())
                assert abs(float(tt) - tr) <= 1e-11 * sc * r, (kind, frac)
                np.testing.assert_allclose(P, R, atol=1e-11 * sc * r, rtol=0)
                if max(m, n) <= 64:  # the small Gram route in float32 too
                    tf, Pf = f(np.float32(t0), X.astype(np.float32))
                    assert Pf.dtype == np.float32
                    np.testing.assert_allclose(Pf, R, atol=1e-5 * sc * r, rtol=0)
                if kind == "nuclear":
                    dual_nuclear_ok(np.asarray(t0), X, P, np.asarray(tt), TOL)
                else:
                    dt, D = float(tt) - t0, P - X
                    assert res_spectral(float(tt), P) <= TOL * sc
                    assert res_nuclear(dt, D) <= TOL * sc * r
                    assert abs(float(tt) * dt + (P * D).sum()) <= TOL * sc * sc * r
        for frac in (0.0, 0.045, 0.055, 0.97):
            rad = frac * smax
            np.testing.assert_allclose(cones.project_spectral_norm_ball(X, rad),
                                       svd_reference("spectral_ball", 0, X, rad)[1], atol=1e-11 * max(1, smax) * r)
            rad = frac * nuc
            np.testing.assert_allclose(cones.project_nuclear_norm_ball(X, rad),
                                       svd_reference("nuclear_ball", 0, X, rad)[1], atol=1e-11 * max(1, smax) * r)


SHAPES_SMALL = [(8, 8), (8, 5), (5, 8), (16, 16), (2, 2), (16, 3)]


@pytest.mark.parametrize("shape", SHAPES_SMALL)
def test_batched_small_singular_value_cones_all_thresholds(rng, shape):
    """Stacks of small matrices (batched Jacobi on the Gram matrices, each matrix falling back to
    one-sided Jacobi below the Gram-route limit or on in-cone / polar points): every threshold,
    ties, graded and rank-deficient spectra in one stack, against a dense SVD reference and the
    certificates; each matrix equal to its projection alone; thread count invariant; float32."""
    m, n = shape
    r = min(m, n)
    spectra = [
        np.sort(np.abs(rng.standard_normal(r)))[::-1] * 3,
        np.r_[np.full((r + 1) // 2, 2.0), np.full(r // 2, 1e-12)],
        np.logspace(0, -14, r),
        np.r_[np.full(min(3, r), 5.0), np.zeros(r - min(3, r))],
        np.full(r, 1.5),  # all tied
    ]
    fracs = (-1.5, -0.3, -0.04, 0.0, 0.045, 0.055, 0.3, 0.99, 1.2)
    Xs, tn, tsp = [], [], []
    for s in spectra:
        X = rect_with_singular_values(rng, m, n, s)
        for frac in fracs:
            Xs.append(X)
            tn.append(frac * s.sum())
            tsp.append(frac * s.max())
    X = np.stack(Xs)
    for kind, f, t0 in (("nuclear", cones.project_nuclear_norm_cone, np.array(tn)),
                        ("spectral", cones.project_spectral_norm_cone, np.array(tsp))):
        tt, P = f(t0, X, n_threads=1)
        tt2, P2 = f(t0, X, n_threads=2)
        assert np.array_equal(tt, tt2) and np.array_equal(P, P2)
        tf, Pf = f(t0.astype(np.float32), X.astype(np.float32))
        assert Pf.dtype == np.float32
        for i in range(len(X)):
            tr, R = svd_reference(kind, t0[i], X[i])
            sc = max(1.0, abs(t0[i]), np.abs(X[i]).max())
            assert abs(float(tt[i]) - tr) <= 1e-11 * sc * r, (kind, i)
            np.testing.assert_allclose(P[i], R, atol=1e-11 * sc * r, rtol=0)
            if kind == "nuclear":
                dual_nuclear_ok(np.asarray(t0[i]), X[i], P[i], np.asarray(tt[i]), TOL)
            else:
                dt, D = float(tt[i]) - t0[i], P[i] - X[i]
                assert res_spectral(float(tt[i]), P[i]) <= TOL * sc
                assert res_nuclear(dt, D) <= TOL * sc * r
                assert abs(float(tt[i]) * dt + (P[i] * D).sum()) <= TOL * sc * sc * r
            np.testing.assert_allclose(Pf[i], R, atol=1e-5 * sc * r, rtol=0)
        for i in (0, len(X) // 2, len(X) - 1):
            t1, P1 = f(t0[i], X[i])
            assert float(t1) == float(tt[i]) and np.array_equal(P1, P[i])
    for frac in (0.0, 0.045, 0.055, 0.97):
        rad = frac * spectra[0].max()
        B = cones.project_spectral_norm_ball(X, rad)
        for i in range(0, len(X), 7):
            np.testing.assert_allclose(B[i], svd_reference("spectral_ball", 0, X[i], rad)[1], atol=1e-11 * 5 * r)
        rad = frac * spectra[0].sum()
        B = cones.project_nuclear_norm_ball(X, rad)
        for i in range(0, len(X), 7):
            np.testing.assert_allclose(B[i], svd_reference("nuclear_ball", 0, X[i], rad)[1], atol=1e-11 * 5 * r)


def spectraplex_reference(X, total=1.0):
    w, Q = np.linalg.eigh(X)
    lo, hi = w.min() - total, w.max()
    for _ in range(200):
        th = 0.5 * (lo + hi)
        lo, hi = (th, hi) if np.maximum(w - th, 0).sum() > total else (lo, th)
    return (Q * np.maximum(w - hi, 0)) @ Q.T


@pytest.mark.parametrize("n", [33, 48, 120, 131])
def test_large_symmetric_cones_partial_spectra(rng, n):
    """The LAPACK path computes only the eigenvectors that enter the reassembly: few or many
    negative eigenvalues, ties across the split, zero eigenvalues, every k; the spectraplex's
    inverse iteration on exactly tied, clustered (1e-12 apart) and graded kept eigenvalues."""
    spectra = [
        np.linalg.eigvalsh(sym(rng, n)),
        np.r_[np.full(n - 2, 1.0), -1.0, -1.0],  # two negatives
        np.r_[np.full(n - 2, -1.0), 1.0, 1.0],  # two positives
        np.round(rng.standard_normal(n)),  # integer spectrum: many ties and zeros
        np.r_[np.zeros(n - 3), 3.0, -2.0, 1e-14],
        np.r_[np.full(4, 3.0), rng.uniform(-1, 1, n - 4)],  # tied top eigenvalues
        np.r_[5.0, 5.0 + 1e-12, 5.0 + 2e-12, rng.uniform(-1, 1, n - 3)],  # tight cluster on top
        np.r_[np.logspace(0, -12, 6) + 2.0, -np.logspace(0, -14, n - 6)],  # graded
    ]
    for w in spectra:
        X = with_spectrum(rng, w)
        s = scale_of(X)
        P = cones.project_psd(X)
        check_psd(X, P, TOL)
        w0, Q = np.linalg.eigh(X)
        np.testing.assert_allclose(P, (Q * np.maximum(w0, 0)) @ Q.T, atol=1e-12 * s * n)
        for k in (1, n // 3, n - 1):
            for t0 in (-5.0, 0.7 * topk(w0, k), 2.0):
                tt, P = cones.project_sum_largest_cone(t0, X, k)
                tv, xv = cones.project_sum_largest_vector_cone(t0, w0, k)
                assert abs(float(tt) - float(tv)) <= 1e-12 * s * n
                np.testing.assert_allclose(P, (Q * xv) @ Q.T, atol=1e-12 * s * n)
                dt, D = float(tt) - t0, P - X
                assert res_sum_largest(float(tt), P, k) <= TOL * s
                assert res_sum_largest_dual(dt, D, k) <= TOL * s
        S = cones.project_spectraplex(X)
        np.testing.assert_allclose(S, spectraplex_reference(X), atol=1e-12 * s * n)
        assert np.array_equal(S, S.T)


def check_psd_against_eigh(X):
    """PSD projection of X: certificates, NumPy's eigh + clipping at 1e-12 s n, and identical
    for 1 and 2 threads; returns (scale, eigenvalues, eigenvectors) for further checks."""
    n = X.shape[-1]
    s = scale_of(X)
    w0, Q = np.linalg.eigh(X)
    P = cones.project_psd(X)
    check_psd(X, P, TOL)
    np.testing.assert_allclose(P, (Q * np.maximum(w0, 0)) @ Q.T, atol=1e-12 * s * n)
    assert np.array_equal(P, cones.project_psd(X, n_threads=1))
    assert np.array_equal(P, cones.project_psd(X, n_threads=2))
    return s, w0, Q


def check_sum_largest_against_eigh(X, k, s, w0, Q):
    """Sum-of-k-largest projection of (t0, X) with t0 half the top-k sum minus 1: the same t as the
    vector cone on eigh's eigenvalues, the same matrix at 1e-12 s n, certificates; returns (t0, t, S)."""
    n = X.shape[-1]
    t0 = 0.5 * topk(w0, k) - 1.0
    tt, S = cones.project_sum_largest_cone(t0, X, k)
    tv, xv = cones.project_sum_largest_vector_cone(t0, w0, k)
    assert abs(float(tt) - float(tv)) <= 1e-12 * s * n
    np.testing.assert_allclose(S, (Q * xv) @ Q.T, atol=1e-12 * s * n)
    assert res_sum_largest(float(tt), S, k) <= TOL * s
    assert res_sum_largest_dual(float(tt) - t0, S - X, k) <= TOL * s
    return t0, tt, S


@pytest.mark.parametrize("n", [128, 161])
def test_split_merge_route_degenerate_tridiagonals(rng, n):
    """On the LAPACK route the PSD and sum-of-largest projections tear the tridiagonal matrix in two
    and form only the needed vectors of the top-level merge: inputs whose tridiagonal matrix already
    splits at the tear (rho = 0: diagonal and block-diagonal X), whose merge deflates everything
    (multiples of the identity, two-valued spectra) or almost nothing (distinct values), clusters
    1e-13 apart, graded values; against NumPy's eigh at the same tolerance as the full solver,
    and identical for every thread count."""
    h = n // 2
    blocks = np.zeros((n, n))
    blocks[:h, :h] = sym(rng, h)
    blocks[h:, h:] = sym(rng, n - h)
    inputs = [
        np.diag(rng.standard_normal(n)),
        blocks,
        -2.5 * np.eye(n),
        with_spectrum(rng, np.r_[np.full(n // 2, 1.0), np.full(n - n // 2, -1.0)]),
        with_spectrum(rng, np.linspace(-1, 1, n)),
        with_spectrum(rng, np.r_[1.0 + 1e-13 * np.arange(n // 3), -1.0 - 1e-13 * np.arange(n - n // 3)]),
        with_spectrum(rng, np.r_[np.logspace(0, -15, n // 2), -np.logspace(1, -15, n - n // 2)]),
        sym(rng, n),
    ]
    for X in inputs:
        s, w0, Q = check_psd_against_eigh(X)
        for k in (1, n // 2):
            t0, tt, S = check_sum_largest_against_eigh(X, k, s, w0, Q)
            t1, S1 = cones.project_sum_largest_cone(t0, X, k, n_threads=1)
            assert np.array_equal(S, S1) and float(t1) == float(tt)
    # a batch gives each matrix's own result; float32 (syevd route) keeps its certificates
    stack = np.stack(inputs[-2:])
    Pb = cones.project_psd(stack)
    for i in range(2):
        assert np.array_equal(Pb[i], cones.project_psd(stack[i]))
    P32 = cones.project_psd(inputs[-1].astype(np.float32))
    assert P32.dtype == np.float32
    check_psd(inputs[-1], P32.astype(float), 1e-5)


def test_tour_section_full_size_passes_its_checks(capsys):
    # the full-size tour (n = 400) checks certificates whose evaluation is rounding-limited
    from randnla._tour import cones as tour

    assert tour.run(quick=False)
    assert "max difference to NumPy eigh + vector log cone" in capsys.readouterr().out


def tridiagonal(d, e):
    return np.diag(np.asarray(d, float)) + np.diag(np.asarray(e, float), 1) + np.diag(np.asarray(e, float), -1)


@pytest.mark.parametrize("n", [40, 200, 301])
def test_split_route_secular_roots_on_hard_merges(rng, n):
    """The recursively torn tridiagonal solver (secular equations solved in SIMD lanes with
    laed4's stopping test; only the needed vectors of the top merge for PSD and sum-of-largest,
    all of them for log-det) on the merges that stress it: Wilkinson matrices (pairs of
    eigenvalues equal to many digits: heavy deflation, close poles), glued Wilkinson blocks, a
    weak coupling at the tear (tiny z), halves with identical spectra (full deflation), values
    1e-10 and 1e-13 apart, graded values of both signs; against NumPy's eigh, with certificates,
    for every thread count and batched."""
    h = n // 2
    m = (n - 1) // 2
    inputs = [tridiagonal(np.abs(np.arange(n) - m), np.ones(n - 1))]  # Wilkinson W+
    glue = np.ones(n - 1)
    glue[20::21] = 1e-7
    inputs.append(tridiagonal(np.tile(np.abs(np.arange(21) - 10.0), n // 21 + 1)[:n], glue))
    e = rng.standard_normal(n - 1)
    e[h - 1] = 1e-9
    inputs.append(tridiagonal(rng.standard_normal(n), e))
    half = rng.standard_normal(h)
    same = np.ones(n - 1)
    same[h - 1] = 0.0
    inputs.append(tridiagonal(np.r_[half, half, half[: n - 2 * h]], np.r_[same[: h - 1], 0.0, same[: n - h - 1]]))
    inputs.append(with_spectrum(rng, np.r_[1.0 + 1e-10 * np.arange(n // 2), -0.5 - 1e-10 * np.arange(n - n // 2)]))
    inputs.append(with_spectrum(rng, np.r_[2.0 + 1e-13 * np.arange(n // 3), rng.uniform(-1, 1, n - n // 3)]))
    inputs.append(with_spectrum(rng, np.r_[np.logspace(2, -15, n // 2), -np.logspace(0, -15, n - n // 2)]))
    inputs.append(sym(rng, n))
    for X in inputs:
        s, w0, Q = check_psd_against_eigh(X)
        check_sum_largest_against_eigh(X, n // 3, s, w0, Q)
        # log-det (every eigenvector): eigh + the vector log cone, same (t, v)
        t1, v1, L = cones.project_logdet_cone(-1.0, 1.0, X)
        tl, vl, xl = cones.project_log_cone(-1.0, 1.0, w0)
        assert abs(float(t1) - float(tl)) <= 1e-12 * s * n and abs(float(v1) - float(vl)) <= 1e-12 * s * n
        np.testing.assert_allclose(L, (Q * xl) @ Q.T, atol=1e-12 * s * n)
        assert np.array_equal(L, L.T)
    stack = np.stack(inputs[:3])
    Pb = cones.project_psd(stack, n_threads=2)
    for i in range(3):
        assert np.array_equal(Pb[i], cones.project_psd(stack[i]))
    X32 = inputs[-1].astype(np.float32)
    P32 = cones.project_psd(X32)
    assert P32.dtype == np.float32
    check_psd(X32.astype(float), P32.astype(float), 1e-6 * np.sqrt(n))  # float32 rounding of ||P||_2 ~ sqrt(n) s
