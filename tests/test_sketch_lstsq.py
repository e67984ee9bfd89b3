"""Sketched least squares (l-infinity guarantee, error bars) and sketch-and-precondition lstsq."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import aslinearoperator

from randnla import sketch
from randnla.sketch import gaussian_rows_for_linf, lstsq, sketched_lstsq
from tests.conftest import to_numpy

D, EPS, DELTA, SEEDS = 5, 1.0, 0.01, 50


def instance(case, n, d=D, seed=0):
    """A, b = A x0 + r with r orthogonal to range(A), ||r|| = 1, so x* = x0; and the l-infinity unit
    ||r|| ||A^+|| / sqrt(d)."""
    rng = np.random.default_rng(seed)
    if case == "coherent":  # an identity block carries all the leverage; the residual is one outlier
        A = np.vstack([10 * np.eye(d), 0.01 * rng.standard_normal((n - d, d))])
        r = np.zeros(n)
        r[n // 2] = 1.0
    else:
        A = rng.standard_normal((n, d))
        if case == "heavy":
            A *= (rng.pareto(1.5, n) + 0.1)[:, None]
        r = rng.standard_normal(n)
    Q, _ = np.linalg.qr(A)
    r = r - Q @ (Q.T @ r)
    r /= np.linalg.norm(r)
    x0 = rng.standard_normal(d)
    unit = 1.0 / np.linalg.svd(A, compute_uv=False)[-1] / np.sqrt(d)
    return A, A @ x0 + r, x0, unit


CASES = [("incoherent", 512), ("coherent", 512), ("heavy", 512), ("incoherent", 600)]


@pytest.mark.parametrize("kind", ["gaussian", "srht"])
@pytest.mark.parametrize("case,n", CASES)
def test_linf_error_95th_percentile_below_eps(case, n, kind):
    A, b, x0, unit = instance(case, n)
    errors = [np.abs(sketched_lstsq(A, b, eps=EPS, delta=DELTA, kind=kind, rng=s).x - x0).max() / unit
              for s in range(SEEDS)]
    assert np.percentile(errors, 95) <= EPS


def test_countsketch_fails_the_coherent_case_at_the_same_m():
    A, b, x0, unit = instance("coherent", 512)
    m = gaussian_rows_for_linf(D, EPS, DELTA)
    errors = []
    for s in range(SEEDS):
        S = sketch.countsketch(m, 512, rng=s)
        errors.append(np.abs(np.linalg.lstsq(S @ A, S @ b, rcond=None)[0] - x0).max() / unit)
    assert np.percentile(errors, 95) > EPS


def test_error_bars_are_calibrated():
    """|x' - x*| > 3 se should happen at about the Gaussian tail rate 0.27%."""
    A, b, x0, _ = instance("incoherent", 400, d=10)
    outside, total = 0, 0
    for s in range(60):
        res = sketched_lstsq(A, b, m=120, rng=s)
        outside += int(np.sum(np.abs(res.x - x0) > 3 * res.stderr))
        total += 10
    assert outside / total < 0.02
    res = sketched_lstsq(A, b, m=120, delta=0.01, rng=0)
    assert np.all(res.error_bar > 3 * res.stderr) and res.m == 120


def test_sketched_lstsq_inputs(dtype):
    A, b, x0, unit = instance("incoherent", 512)
    A, b = A.astype(dtype), b.astype(dtype)
    res = sketched_lstsq(A, b, m=100, rng=3)
    assert res.x.dtype == dtype and res.stderr.dtype == dtype
    for variant in (sp.csr_array(A), aslinearoperator(A)):
        other = sketched_lstsq(variant, b, m=100, rng=3)
        assert np.allclose(other.x, res.x, atol=1e-4 if dtype == np.float32 else 1e-10)
    assert np.array_equal(sketched_lstsq(A, b, m=100, rng=3).x, res.x)


def test_sketched_lstsq_refusals():
    A, b, _, _ = instance("incoherent", 256)
    for kind in ("countsketch", "sparse_sign"):
        with pytest.raises(ValueError, match="cannot give an l-infinity guarantee"):
            sketched_lstsq(A, b, kind=kind)
    with pytest.raises(ValueError, match="rademacher"):
        sketched_lstsq(A, b, kind="rademacher")
    with pytest.raises(ValueError, match="unknown kind"):
        sketched_lstsq(A, b, kind="nope")
    with pytest.raises(ValueError, match="not both"):
        sketched_lstsq(A, b, m=50, eps=0.5)
    with pytest.raises(ValueError, match="m must be"):
        sketched_lstsq(A, b, m=D)
    with pytest.raises(ValueError, match="length"):
        sketched_lstsq(A, b[:-1])
    with pytest.raises(ValueError, match="NaN"):
        sketched_lstsq(A, np.full(256, np.nan))


def test_gaussian_rows_formula():
    for d, eps, delta in [(5, 1.0, 0.01), (50, 0.5, 0.1), (1, 2.0, 0.5)]:
        m = gaussian_rows_for_linf(d, eps, delta)
        gap = lambda m: 1 - np.sqrt(d / m) - np.sqrt(2 * np.log(4 / delta) / m)  # noqa: E731
        need = 2 * d * np.log(4 * d / delta) / eps**2
        assert gap(m) > 0 and m * gap(m) ** 2 >= need
        assert not (gap(m - 1) > 0 and (m - 1) * gap(m - 1) ** 2 >= need)


def ill_conditioned(n=4000, d=40, seed=0):
    rng = np.random.default_rng(seed)
    U, _ = np.linalg.qr(rng.standard_normal((n, d)))
    V, _ = np.linalg.qr(rng.standard_normal((d, d)))
    A = (U * np.logspace(0, 8, d)) @ V.T
    return A, rng.standard_normal(n)


@pytest.mark.parametrize("kind", ["sparse_sign", "srht", "gaussian"])
def test_lstsq_reaches_lapack_accuracy(kind):
    A, b = ill_conditioned()
    x_ref = np.linalg.lstsq(A, b, rcond=None)[0]
    r_ref = np.linalg.norm(A @ x_ref - b)
    res = lstsq(A, b, rng=0, sketch=kind)
    assert res.converged and res.n_iter < 80
    assert abs(res.residual_norm - r_ref) / r_ref < 1e-10
    assert np.linalg.norm(A @ res.x - b) <= r_ref * (1 + 1e-10)


def test_lstsq_operator_sparse_and_float32():
    A, b = ill_conditioned(2000, 20)
    x_ref = np.linalg.lstsq(A, b, rcond=None)[0]
    r_ref = np.linalg.norm(A @ x_ref - b)
    for variant in (aslinearoperator(A), sp.csr_array(A)):
        res = lstsq(variant, b, rng=1)
        assert abs(res.residual_norm - r_ref) / r_ref < 1e-10
    res32 = lstsq(A.astype(np.float32), b.astype(np.float32), rng=1)
    assert res32.x.dtype == np.float32


def test_lstsq_reports_non_convergence():
    A, b = ill_conditioned(2000, 20)
    with pytest.warns(RuntimeWarning, match="without reaching"):
        res = lstsq(A, b, rng=0, max_iter=2)
    assert not res.converged
    with pytest.raises(ValueError, match="tall"):
        lstsq(A[:10], b[:10])
    with pytest.raises(ValueError, match="rank deficient"):
        lstsq(np.ones((100, 3)), np.ones(100), rng=0)


def test_gpu_lstsq(xp):
    if xp is np:
        pytest.skip("the NumPy path is covered above")
    A, b, x0, unit = instance("incoherent", 512)
    res = sketched_lstsq(xp.asarray(A), xp.asarray(b), m=100, rng=3)
    assert np.allclose(to_numpy(res.x), sketched_lstsq(A, b, m=100, rng=3).x, atol=1e-8)
    A2, b2 = ill_conditioned(2000, 20)
    out = lstsq(xp.asarray(A2), xp.asarray(b2), rng=0)
    assert np.allclose(to_numpy(out.x), np.linalg.lstsq(A2, b2, rcond=None)[0], rtol=1e-6, atol=1e-8)


def test_normal_pass_one_read_of_a_and_thread_invariance():
    from randnla import _core

    rng = np.random.default_rng(5)
    A = rng.standard_normal((5000, 37))  # several row chunks, a partial last chunk, d not a multiple of 8
    t, b = rng.standard_normal(37), rng.standard_normal(5000)
    u1, q1 = _core.normal_pass(A, t, None, 1)
    u2, q2 = _core.normal_pass(A, t, None, 2)
    assert np.array_equal(u1, u2) and q1 == q2
    assert np.allclose(u1, A.T @ (A @ t), rtol=1e-12, atol=1e-10) and np.isclose(q1, np.sum((A @ t) ** 2), rtol=1e-12)
    g, rr = _core.normal_pass(A, t, b, 2)
    assert np.allclose(g, A.T @ (b - A @ t), rtol=1e-12, atol=1e-10) and np.isclose(rr, np.sum((b - A @ t) ** 2))
    with pytest.raises(ValueError):
        _core.normal_pass(np.asfortranarray(A), t, None, 1)
    with pytest.raises(ValueError):
        _core.normal_pass(A, t[:-1], None, 1)


def test_lstsq_thread_invariance():
    A, b = ill_conditioned(6000, 30, seed=2)
    one, two = lstsq(A, b, rng=4, n_threads=1), lstsq(A, b, rng=4, n_threads=2)
    assert np.array_equal(one.x, two.x) and one.n_iter == two.n_iter and one.sketch_rows == 300
    x_ref = np.linalg.lstsq(A, b, rcond=None)[0]
    r_ref = np.linalg.norm(A @ x_ref - b)
    assert abs(one.residual_norm - r_ref) / r_ref < 1e-10


def test_lstsq_well_conditioned_solution_matches_lapack():
    rng = np.random.default_rng(8)
    A = rng.standard_normal((8000, 60))
    b = A @ rng.standard_normal(60) + rng.standard_normal(8000)
    x_ref = np.linalg.lstsq(A, b, rcond=None)[0]
    res = lstsq(A, b, rng=0)
    assert res.converged
    assert np.linalg.norm(res.x - x_ref) <= 1e-10 * np.linalg.norm(x_ref)
    r_ref = np.linalg.norm(A @ x_ref - b)
    assert abs(res.residual_norm - r_ref) / r_ref < 1e-10


def test_normal_pass_float32_copy_and_float32_rows():
    from randnla import _core

    rng = np.random.default_rng(6)
    A = rng.standard_normal((3001, 21))
    t = rng.standard_normal(21)
    a32 = np.empty(A.shape, dtype=np.float32)
    u, _ = _core.normal_pass(A, t, None, 2, a32)
    assert np.array_equal(a32, A.astype(np.float32)) and np.allclose(u, A.T @ (A @ t), rtol=1e-12, atol=1e-10)
    w = a32.astype(np.float64)
    u1, q1 = _core.normal_pass(a32, t, None, 1)
    u2, q2 = _core.normal_pass(a32, t, None, 2)
    assert np.array_equal(u1, u2) and q1 == q2
    assert np.allclose(u1, w.T @ (w @ t), rtol=1e-12, atol=1e-10)
    with pytest.raises(ValueError, match="copy"):
        _core.normal_pass(A, t, None, 1, np.empty((3001, 20), dtype=np.float32))


@pytest.mark.parametrize("kappa", [1e3, 1e6])
def test_lstsq_float32_refinement_on_column_scaled_problems(kappa):
    """Badly scaled columns (the float32 inner passes stay accurate relative to each column) and a
    residual orthogonal to range(A): the answer still matches LAPACK's."""
    rng = np.random.default_rng(9)
    A = rng.standard_normal((6000, 40)) * np.logspace(0, np.log10(kappa), 40)
    b = A @ rng.standard_normal(40) + rng.standard_normal(6000)
    x_ref = np.linalg.lstsq(A, b, rcond=None)[0]
    r_ref = np.linalg.norm(A @ x_ref - b)
    res = lstsq(A, b, rng=3)
    assert res.converged and res.n_iter < 60
    assert abs(res.residual_norm - r_ref) / r_ref < 1e-10
    assert abs(res.residual_norm - np.linalg.norm(A @ res.x - b)) < 1e-10 * r_ref
    assert np.linalg.norm(res.x - x_ref) <= 1e-9 * np.linalg.norm(x_ref)


def test_lstsq_entries_beyond_float32_range_fall_back_to_float64():
    rng = np.random.default_rng(12)
    A = rng.standard_normal((3000, 10))
    A *= 1e300  # overflows float32: the float32 inner passes cannot help
    b = rng.standard_normal(3000)
    x_ref = np.linalg.lstsq(A, b, rcond=None)[0]
    r_ref = np.linalg.norm(A @ x_ref - b)
    res = lstsq(A, b, rng=0)
    assert res.converged and np.all(np.isfinite(res.x))
    assert abs(res.residual_norm - r_ref) / r_ref < 1e-10


@pytest.mark.parametrize("kind", ["sparse_sign", "srht", "gaussian"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_lstsq_non_finite_A_is_caught_through_its_sketch(kind, bad):
    # lstsq checks S A instead of a full pass over A: every kind must still catch a single bad entry
    rng = np.random.default_rng(5)
    b = rng.standard_normal(700)
    for row in (0, 411, 699):
        A = rng.standard_normal((700, 12))
        A[row, 7] = bad
        with pytest.raises(ValueError, match="A contains NaN or infinity"):
            lstsq(A, b, sketch=kind, rng=1)


def test_lstsq_sketch_overflow_is_reported():
    A = np.full((500, 4), 1.5e308)
    A[:, 1] *= -0.5
    A[:, 2] = np.arange(500.0)
    A[:, 3] = 1.0
    with pytest.raises(ValueError, match="overflowed"):
        lstsq(A, np.ones(500), rng=0)


@pytest.mark.parametrize("n,d", [(3, 5), (4, 1), (7, 8), (1030, 13), (5003, 37), (2050, 64)])
def test_normal_pass_float32_rows_equal_their_float64_widening(n, d):
    """Float32 rows are widened to double exactly, so a pass over them is bitwise the pass over the
    widened float64 array (every vector width, tail and row-group remainder), for 1 or 2 threads."""
    from randnla import _core

    rng = np.random.default_rng(n + d)
    a32 = rng.standard_normal((n, d)).astype(np.float32)
    w = a32.astype(np.float64)
    t, b = rng.standard_normal(d), rng.standard_normal(n)
    for rhs in (None, b):
        u32, q32 = _core.normal_pass(a32, t, rhs, 1)
        u64, q64 = _core.normal_pass(w, t, rhs, 2)
        assert np.array_equal(u32, u64) and q32 == q64
        q = w @ t if rhs is None else rhs - w @ t
        assert np.allclose(u32, w.T @ q, rtol=1e-12, atol=1e-10) and np.isclose(q32, q @ q, rtol=1e-12)


@pytest.mark.parametrize("s", [1, 4, 8])
def test_sparse_sketch_stacked_equals_the_separate_sketches(s):
    """S [A, b] in one sweep is bitwise (S A, S b), whatever the thread count."""
    from randnla import _core

    rng = np.random.default_rng(s)
    A, b = rng.standard_normal((3001, 23)), rng.standard_normal(3001)
    S = sketch.sparse_sign(97, 3001, nnz_per_column=s, rng=5)
    one = _core.sparse_sketch_stacked(S.key, 97, s, A, b, 1)
    two = _core.sparse_sketch_stacked(S.key, 97, s, A, b, 2)
    assert one.shape == (97, 24) and np.array_equal(one, two)
    assert np.array_equal(one[:, :23], S @ A) and np.array_equal(one[:, 23], S @ b)
    with pytest.raises(ValueError):
        _core.sparse_sketch_stacked(S.key, 97, s, np.asfortranarray(A), b, 1)
    with pytest.raises(ValueError):
        _core.sparse_sketch_stacked(S.key, 97, s, A, b[:-1], 1)


@pytest.mark.parametrize("consistent", [True, False])
def test_lstsq_condition_1e10(consistent):
    """cond(A) = 1e10, with b in the range of A (zero residual: the stopping rule must still be met)
    or not: as accurate as LAPACK, up to the rounding in evaluating A x - b."""
    rng = np.random.default_rng(13)
    n, d = 4000, 40
    U, _ = np.linalg.qr(rng.standard_normal((n, d)))
    V, _ = np.linalg.qr(rng.standard_normal((d, d)))
    A = (U * np.logspace(0, 10, d)) @ V.T
    x0 = rng.standard_normal(d)
    b = A @ x0 if consistent else A @ x0 + rng.standard_normal(n)
    x_ref = np.linalg.lstsq(A, b, rcond=None)[0]
    res = lstsq(A, b, rng=0)
    assert res.converged
    noise = 1e-15 * np.linalg.norm(A, 2) * np.linalg.norm(x_ref)  # rounding in evaluating A x - b
    r_ref, r_ours = np.linalg.norm(A @ x_ref - b), np.linalg.norm(A @ res.x - b)
    assert r_ours <= r_ref * (1 + 1e-10) + 10 * noise
    assert abs(res.residual_norm - r_ours) <= 1e-10 * r_ours + 10 * noise
    if consistent:  # x is determined: no farther from it than LAPACK's x (cond * eps scale)
        assert np.linalg.norm(res.x - x0) <= 10 * np.linalg.norm(x_ref - x0) + 1e-12 * np.linalg.norm(x0)


def test_lstsq_float32_input_matches_lapack_on_the_same_numbers():
    """float32 A and b are solved in float64 and the answer is rounded to float32 once."""
    rng = np.random.default_rng(14)
    A = (rng.standard_normal((6000, 30)) * np.logspace(0, 3, 30)).astype(np.float32)
    b = (A.astype(np.float64) @ rng.standard_normal(30) + rng.standard_normal(6000)).astype(np.float32)
    A64, b64 = A.astype(np.float64), b.astype(np.float64)
    x_ref = np.linalg.lstsq(A64, b64, rcond=None)[0]
    res = lstsq(A, b, rng=2)
    assert res.x.dtype == np.float32 and res.converged
    assert np.array_equal(res.x, lstsq(A64, b64, rng=2).x.astype(np.float32))
    assert np.allclose(res.x, x_ref.astype(np.float32), rtol=1e-6, atol=0)
    r_ref = np.linalg.norm(A64 @ x_ref - b64)
    assert abs(res.residual_norm - r_ref) / r_ref < 1e-10
