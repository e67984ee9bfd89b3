"""randnla.linalg: Jacobi eigen/singular value decompositions.

Oracles: residual and orthogonality bounds, numpy.linalg as a normwise reference, mpmath at 60
digits for the relative-accuracy claims, exact laws for the random pivot rule, and bitwise
reproducibility across thread counts and batching.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from _reference import graded_spd, mp_eigh, mp_eigvalsh, mp_singular_values
from conftest import to_numpy
from randnla import linalg
from randnla.linalg import eigh, eigh_spd, eigvalsh, svd

PIVOTS = ("cyclic", "round_robin", "random")


def random_symmetric(shape, n, rng, dtype=np.float64):
    x = rng.standard_normal(tuple(shape) + (n, n))
    return ((x + np.swapaxes(x, -1, -2)) / 2).astype(dtype)


def check_eigh(a, w, v, factor=20.0):
    """||A V - V diag(w)|| / ||A|| and ||V^T V - I|| of order n * eps, w ascending."""
    a64, w64, v64 = (np.asarray(x, dtype=np.float64) for x in (a, w, v))
    n = a.shape[-1]
    eps = float(np.finfo(a.dtype).eps)
    bound = factor * max(n, 1) * eps
    norm_a = np.maximum(np.linalg.norm(a64, axis=(-2, -1)), np.finfo(np.float64).tiny)
    residual = np.linalg.norm(a64 @ v64 - v64 * w64[..., None, :], axis=(-2, -1)) / norm_a
    orthogonality = np.linalg.norm(np.swapaxes(v64, -1, -2) @ v64 - np.eye(n), axis=(-2, -1))
    assert residual.max(initial=0) <= bound, residual.max()
    assert orthogonality.max(initial=0) <= bound, orthogonality.max()
    assert np.all(np.diff(w64, axis=-1) >= 0)
    # Normwise agreement with LAPACK.
    reference = np.linalg.eigvalsh(a64)
    assert np.all(np.abs(w64 - reference) <= bound * norm_a[..., None])


# ---------------------------------------------------------------- backward stability, shapes


@pytest.mark.parametrize("pivot", PIVOTS)
@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 8, 16, 31, 32])
def test_eigh_residual_orthogonality(pivot, n, dtype, rng):
    a = random_symmetric((5,), n, rng, dtype)
    w, v, info = eigh(a, pivot=pivot, rng=1, return_info=True)
    assert w.dtype == dtype and v.dtype == dtype and w.shape == (5, n) and v.shape == (5, n, n)
    assert np.all(info.converged)
    check_eigh(a, w, v)
    # eigvalsh gives the same eigenvalues (same rotations, vectors just not accumulated).
    assert np.array_equal(eigvalsh(a, pivot=pivot, rng=1), w)


@pytest.mark.parametrize("pivot", PIVOTS)
@pytest.mark.parametrize("shape", [(), (3,), (2, 3), (0,)])
def test_eigh_batch_shapes(pivot, shape, rng):
    a = random_symmetric(shape, 5, rng)
    w, v = eigh(a, pivot=pivot, rng=0)
    assert w.shape == shape + (5,) and v.shape == shape + (5, 5)
    if a.size:
        check_eigh(a, w, v)


def test_eigh_large_n_round_robin_and_cyclic(rng):
    a = random_symmetric((), 64, rng)
    for pivot in ("cyclic", "round_robin"):
        w, v, info = eigh(a, pivot=pivot, return_info=True)
        check_eigh(a, w, v)
        assert info.converged and info.sweeps <= 15


@pytest.mark.parametrize("pivot", PIVOTS)
def test_eigh_special_matrices(pivot, rng):
    n = 5
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    cases = {
        "repeated": q @ np.diag([1.0, 1.0, 1.0, 2.0, 2.0]) @ q.T,
        "identity_plus_rank_one": np.eye(n) + np.outer(q[:, 0], q[:, 0]),
        "clusters": q @ np.diag([1.0, 1 + 1e-12, 1 + 2e-12, 3.0, 3.0 + 1e-12]) @ q.T,
        "zero": np.zeros((n, n)),
        "rank_deficient": np.outer(q[:, 1], q[:, 1]) * 3.0,
        "equal_diagonal_2x2": np.array([[1.0, 2.0], [2.0, 1.0]]),
        "tiny_off_diagonal": np.diag([1.0, 2.0, 3.0]) + 1e-300 * (1 - np.eye(3)),
        "huge": random_symmetric((), 4, rng) * 1e300,
        "tiny": random_symmetric((), 4, rng) * 1e-300,
        "mixed_scales": np.diag([1e300, 1e-300, 1.0]) + np.array([[0, 1e-300, 0], [1e-300, 0, 0], [0, 0, 0]]),
    }
    for name, a in cases.items():
        a = (a + a.T) / 2
        w, v, info = eigh(a, pivot=pivot, rng=0, return_info=True)
        assert np.all(np.isfinite(w)) and np.all(np.isfinite(v)), name
        assert info.converged, name
        m = a.shape[0]
        assert np.linalg.norm(v.T @ v - np.eye(m)) <= 10 * m * 2.2e-16, name
        scale = max(np.abs(a).max(), np.finfo(float).tiny)
        assert np.linalg.norm(a / scale @ v - v * (w / scale)) <= 10 * m * 2.2e-16 * max(np.linalg.norm(a / scale), 1e-300), name
    w, v, info = eigh(np.zeros((4, 4)), pivot=pivot, return_info=True)
    assert np.array_equal(w, np.zeros(4)) and np.array_equal(v, np.eye(4)) and info.rotations == 0
    d = np.diag([3.0, -1.0, 2.0])
    w, v, info = eigh(d, pivot=pivot, return_info=True)
    assert info.rotations == 0 and info.sweeps == 0
    assert np.array_equal(w, [-1.0, 2.0, 3.0]) and np.array_equal(np.abs(v), np.eye(3)[:, [1, 2, 0]])


def test_eigh_indefinite_scaled_diagonally_dominant(rng):
    # H = D (S + N) D, S = diag(+-1), ||N||_2 = 0.5: Jacobi keeps relative accuracy here too.
    n = 8
    s = np.diag(np.where(np.arange(n) % 2 == 0, 1.0, -1.0))
    x = random_symmetric((), n, rng)
    x *= 0.5 / np.linalg.norm(x, 2)
    np.fill_diagonal(x, 0.0)
    d = rng.permutation(10.0 ** (-12 * rng.uniform(0, 1, n)))
    h = d[:, None] * (s + x) * d[None, :]
    h = (h + h.T) / 2
    reference = mp_eigvalsh(h)
    for pivot in PIVOTS:
        w = eigvalsh(h, pivot=pivot, rng=3)
        assert np.max(np.abs(w / reference - 1)) < 1e-13


# ---------------------------------------------------------------- high relative accuracy


@pytest.mark.parametrize("spread", [8, 12, 16])
def test_graded_spd_relative_accuracy(spread):
    rng = np.random.default_rng(spread)
    n = 10
    h = graded_spd(n, spread, rng)
    reference = mp_eigvalsh(h)
    numpy_error = np.max(np.abs(np.linalg.eigvalsh(h) / reference - 1))
    errors = {}
    for pivot in PIVOTS:
        errors[pivot] = np.max(np.abs(eigvalsh(h, pivot=pivot, rng=0) / reference - 1))
        errors[pivot + "/spd"] = np.max(np.abs(eigh_spd(h, compute_v=False, pivot=pivot, rng=0) / reference - 1))
    assert max(errors.values()) < 1e-12, errors
    # The witness: LAPACK's tridiagonal route loses orders of magnitude on the same matrices.
    assert numpy_error > 1e4 * max(errors.values()), (numpy_error, errors)
    assert numpy_error > 1e-9


def test_graded_spd_eigenvectors(rng):
    n = 8
    h = graded_spd(n, 10, rng)
    reference_w, reference_v = mp_eigh(h)

    def vector_error(v):
        signs = np.sign(np.sum(v * reference_v, axis=0))
        return np.max(np.linalg.norm(v * signs - reference_v, axis=0))

    w, v = eigh(h)
    w2, v2 = eigh_spd(h)
    assert np.max(np.abs(w / reference_w - 1)) < 1e-13
    assert np.max(np.abs(w2 / reference_w - 1)) < 1e-13
    assert vector_error(v) < 1e-12 and vector_error(v2) < 1e-12
    # Witness: LAPACK's eigenvectors of the small eigenvalues are far less accurate.
    assert vector_error(np.linalg.eigh(h)[1]) > 1e3 * max(vector_error(v), vector_error(v2))


@pytest.mark.parametrize("spread", [8, 16])
@pytest.mark.parametrize("shape", [(12, 6), (6, 12)])
def test_svd_column_graded_relative_accuracy(spread, shape):
    rng = np.random.default_rng(100 + spread)
    m, n = shape
    b = rng.standard_normal((max(m, n), min(m, n)))
    d = rng.permutation(10.0 ** (-spread * rng.uniform(0, 1, min(m, n))))
    a = b * d  # column-graded (max(m,n) x min(m,n))
    if m < n:
        a = a.T  # row-graded wide matrix: Jacobi works on its transpose
    reference = mp_singular_values(a)
    numpy_error = np.max(np.abs(np.linalg.svd(a, compute_uv=False) / reference - 1))
    for pivot in PIVOTS:
        u, s, vh = svd(a, pivot=pivot, rng=0)
        assert np.max(np.abs(s / reference - 1)) < 1e-13
        assert np.linalg.norm(u.T @ u - np.eye(min(m, n))) < 1e-13
        assert np.linalg.norm(vh @ vh.T - np.eye(min(m, n))) < 1e-13
    if spread == 16:  # the witness: bidiagonalization loses the small singular values
        assert numpy_error > 1e-11, numpy_error


def test_spd_rejects_indefinite(rng):
    a = random_symmetric((), 5, rng)
    with pytest.raises(ValueError, match="positive definite"):
        eigh_spd(a - 10 * np.eye(5))


# ---------------------------------------------------------------- SVD conventions


@pytest.mark.parametrize("pivot", PIVOTS)
@pytest.mark.parametrize("shape", [(7, 4), (4, 7), (5, 5), (1, 3), (3, 1), (1, 1)])
@pytest.mark.parametrize("full_matrices", [False, True])
def test_svd_matches_numpy_conventions(pivot, shape, full_matrices, dtype, rng):
    a = rng.standard_normal((2,) + shape).astype(dtype)
    u, s, vh = svd(a, full_matrices=full_matrices, pivot=pivot, rng=0)
    u_np, s_np, vh_np = np.linalg.svd(a, full_matrices=full_matrices)
    assert u.shape == u_np.shape and s.shape == s_np.shape and vh.shape == vh_np.shape
    assert u.dtype == dtype and s.dtype == dtype
    eps = float(np.finfo(dtype).eps)
    bound = 20 * max(shape) * eps
    assert np.all(np.diff(s, axis=-1) <= 0)
    assert np.max(np.abs(s - s_np)) <= bound * np.abs(s_np).max()
    k = min(shape)
    a64 = a.astype(np.float64)
    recon = (u[..., :, :k].astype(np.float64) * s[..., None, :]) @ vh[..., :k, :].astype(np.float64)
    assert np.linalg.norm(recon - a64) <= bound * np.linalg.norm(a64)
    for q in (u.astype(np.float64), np.swapaxes(vh, -1, -2).astype(np.float64)):
        assert np.linalg.norm(np.swapaxes(q, -1, -2) @ q - np.eye(q.shape[-1])) <= bound
    assert np.array_equal(svd(a, compute_uv=False, pivot=pivot, rng=0), s)


def test_svd_rank_deficient_completes_basis(rng):
    a = rng.standard_normal((6, 4))
    a[:, 1] = 0.0
    a[:, 3] = a[:, 0] * 2.0
    for full in (False, True):
        u, s, vh = svd(a, full_matrices=full)
        assert s[-1] < 1e-14 * s[0]
        assert np.linalg.norm(u.T @ u - np.eye(u.shape[1])) < 1e-13
        assert np.linalg.norm((u[:, :4] * s) @ vh[:4] - a) < 1e-13 * np.linalg.norm(a)
    u, s, vh = svd(np.zeros((3, 2)), full_matrices=True)
    assert np.array_equal(s, [0.0, 0.0]) and np.allclose(u.T @ u, np.eye(3)) and np.allclose(vh @ vh.T, np.eye(2))


# ---------------------------------------------------------------- the random rule's law


def test_random_rule_off_diagonal_law():
    """E[off^2 after N uniformly random rotations] = (1 - 1/N)^N off^2 (Detherage-Shah)."""
    rng = np.random.default_rng(7)
    n = 6
    n_pairs = n * (n - 1) // 2
    a = random_symmetric((), n, rng)
    trials = 4000
    stack = np.broadcast_to(a, (trials, n, n)).copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # one block of N draws does not converge
        w, v, info = eigh(stack, pivot="random", rng=11, tol=0.0, max_sweeps=1, return_info=True)
    # Drawing a pair whose entry is already zero (e.g. the same pair twice) changes nothing.
    assert np.all(info.sweeps == 1) and np.all(info.rotations <= n_pairs) and info.rotations.mean() > 0.8 * n_pairs
    rotated = np.swapaxes(v, -1, -2) @ a @ v
    off0 = np.sum(a**2) - np.sum(np.diag(a) ** 2)
    off = np.sum(rotated**2, axis=(-2, -1)) - np.sum(np.diagonal(rotated, axis1=-2, axis2=-1) ** 2, axis=-1)
    ratio = off / off0
    expected = (1 - 1 / n_pairs) ** n_pairs
    z = (ratio.mean() - expected) / (ratio.std(ddof=1) / np.sqrt(trials))
    assert abs(z) < 5.0, (ratio.mean(), expected, z)  # two-sided p ~ 6e-7
    # Two blocks: the law compounds, (1 - 1/N)^(2N).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        _, v2 = eigh(stack[:1000], pivot="random", rng=12, tol=0.0, max_sweeps=2)
    rotated = np.swapaxes(v2, -1, -2) @ a @ v2
    off = np.sum(rotated**2, axis=(-2, -1)) - np.sum(np.diagonal(rotated, axis1=-2, axis2=-1) ** 2, axis=-1)
    ratio = off / off0
    z = (ratio.mean() - expected**2) / (ratio.std(ddof=1) / np.sqrt(ratio.size))
    assert abs(z) < 5.0, (ratio.mean(), expected**2, z)


def test_random_rule_rotation_count_is_moderate(rng):
    n = 24
    a = random_symmetric((), n, rng)
    _, _, info = eigh(a, pivot="random", rng=5, return_info=True)
    n_pairs = n * (n - 1) // 2
    assert info.converged
    assert info.rotations / n_pairs <= 3 * np.log(n_pairs) + 10


# ---------------------------------------------------------------- reproducibility


@pytest.mark.parametrize("pivot", PIVOTS)
def test_bitwise_threads_rng_and_batching(pivot, rng):
    for n in (4, 8, 11, 32):
        a = random_symmetric((37,), n, rng)
        one = eigh(a, pivot=pivot, rng=123, n_threads=1)
        two = eigh(a, pivot=pivot, rng=123, n_threads=2)
        again = eigh(a, pivot=pivot, rng=123)
        for x, y, z in zip(one, two, again):
            assert np.array_equal(x, y) and np.array_equal(x, z)
        if pivot != "random":
            # A matrix of a batch gets exactly the bits it gets alone.
            single = eigh(a[5], pivot=pivot)
            assert np.array_equal(single[0], one[0][5]) and np.array_equal(single[1], one[1][5])
        u1 = svd(a[:, :, : n - 1], pivot=pivot, rng=9, n_threads=1)
        u2 = svd(a[:, :, : n - 1], pivot=pivot, rng=9, n_threads=2)
        assert all(np.array_equal(x, y) for x, y in zip(u1, u2))
    # A batch big enough that the lane-group solver really spreads over two threads.
    big = random_symmetric((4000,), 8, rng)
    for x, y in zip(eigh(big, pivot=pivot, rng=5, n_threads=1), eigh(big, pivot=pivot, rng=5, n_threads=2)):
        assert np.array_equal(x, y)
    spd = a @ np.swapaxes(a, -1, -2) + np.eye(a.shape[-1])
    assert all(np.array_equal(x, y) for x, y in zip(eigh_spd(spd, pivot=pivot, rng=4, n_threads=1),
                                                    eigh_spd(spd, pivot=pivot, rng=4, n_threads=2)))


def test_random_rule_depends_on_rng(rng):
    a = random_symmetric((), 8, rng)
    _, _, i1 = eigh(a, pivot="random", rng=1, return_info=True)
    _, _, i2 = eigh(a, pivot="random", rng=2, return_info=True)
    w1 = eigvalsh(a, pivot="random", rng=np.random.default_rng(1))
    assert np.allclose(w1, eigvalsh(a, pivot="random", rng=2), rtol=1e-13, atol=1e-13)
    assert i1.rotations != i2.rotations or not np.array_equal(eigh(a, pivot="random", rng=1)[1],
                                                               eigh(a, pivot="random", rng=2)[1])


# ---------------------------------------------------------------- errors and reporting


def test_nonconvergence_warns(rng):
    a = random_symmetric((3,), 12, rng)
    with pytest.warns(RuntimeWarning, match="did not converge"):
        _, _, info = eigh(a, max_sweeps=1, return_info=True)
    assert not np.any(info.converged) and info.converged.shape == (3,)
    with pytest.warns(RuntimeWarning, match="did not converge"):
        svd(a, max_sweeps=1)
    _, _, info = eigh(a[0], return_info=True)
    assert isinstance(info.converged, bool) and info.converged and info.off_diagonal <= info.tol
    assert info.pivot == "cyclic" and info.sweeps > 0


def test_input_validation(rng):
    a = random_symmetric((), 4, rng)
    with pytest.raises(TypeError, match="complex"):
        eigh(a + 1j * a)
    with pytest.raises(TypeError, match="complex"):
        svd(a + 0j)
    with pytest.raises(ValueError, match="symmetric"):
        eigh(a + np.triu(np.ones((4, 4)), 1))
    with pytest.raises(ValueError, match="square"):
        eigh(np.ones((3, 4)))
    with pytest.raises(ValueError, match="NaN"):
        eigh(np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match="NaN"):
        svd(np.array([[1.0, np.inf]]))
    with pytest.raises(ValueError, match="pivot"):
        eigh(a, pivot="classical")
    with pytest.raises(ValueError, match="max_sweeps"):
        eigh(a, max_sweeps=-1)
    with pytest.raises(ValueError, match="tol"):
        eigh(a, tol=-1.0)
    with pytest.raises(ValueError, match="n_threads"):
        eigh(a, n_threads=0)
    with pytest.raises(ValueError, match="dimensions"):
        eigh(np.ones(3))
    original = a.copy()
    eigh(a)
    assert np.array_equal(a, original)
    w, v = eigh(np.array([[2, 1], [1, 2]]))  # integers become float64
    assert w.dtype == np.float64 and np.allclose(w, [1, 3])


def test_linalg_listed_pivots():
    assert linalg.PIVOTS == PIVOTS


# ---------------------------------------------------------------- array backends (CuPy where present)


@pytest.mark.parametrize("pivot", ["cyclic", "round_robin", "random"])
@pytest.mark.parametrize("n", [1, 4, 7, 32, 40])
def test_eigh_xp(xp, pivot, n, dtype, rng):
    a_host = random_symmetric((3,), n, rng, dtype)
    a = xp.asarray(a_host)
    w, v, info = eigh(a, pivot=pivot, rng=0, return_info=True)
    assert type(w) is type(a) and type(v) is type(a)
    assert w.dtype == dtype
    check_eigh(a_host, to_numpy(w), to_numpy(v))
    assert np.all(np.asarray(to_numpy(info.converged)))
    values = eigvalsh(a, pivot=pivot, rng=0)
    assert np.allclose(to_numpy(values), to_numpy(w), rtol=0, atol=100 * n * float(np.finfo(dtype).eps) * np.abs(a_host).max())


# ---------------------------------------------------------------- invariants on arbitrary input

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra.numpy import arrays  # noqa: E402


@settings(max_examples=40, deadline=None)
@given(
    entries=arrays(np.float64, (6, 6), elements=st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)),
    exponent=st.integers(-250, 250),
    pivot=st.sampled_from(PIVOTS),
    n=st.integers(1, 6),
)
def test_eigh_invariants_hypothesis(entries, exponent, pivot, n):
    a = entries[:n, :n]
    a = (a + a.T) * 2.0**exponent  # exact scaling: any magnitude within range
    w, v, info = eigh(a, pivot=pivot, rng=0, return_info=True)
    assert info.converged
    s = svd(a, compute_uv=False, pivot=pivot, rng=0)
    scale = np.abs(a).max()
    if scale == 0:
        assert np.all(w == 0) and np.all(s == 0)
        return
    a_s, w_s, s_s = a / scale, w / scale, s / scale  # checks in units of max|a_ij| (no underflow)
    norm = np.linalg.norm(a_s)
    assert np.linalg.norm(a_s @ v - v * w_s) <= 50 * n * 2.2e-16 * norm
    assert np.linalg.norm(v.T @ v - np.eye(n)) <= 50 * n * 2.2e-16
    assert np.all(np.diff(w) >= 0)
    # Singular values of the same matrix are the absolute eigenvalues.
    assert np.allclose(np.sort(np.abs(w_s))[::-1], s_s, rtol=0, atol=50 * n * 2.2e-16 * norm)


def test_svd_keeps_a_singular_value_left_by_nearly_parallel_columns():
    # Two columns that agree up to 2e-9: the rotation between them leaves a column of norm 1.4e-9,
    # far above rounding noise, which holds a singular value of 1e-9 (it must not be discarded).
    a = np.zeros((5, 5))
    a[0, 0], a[3, 4], a[4, 0] = 1e-9, 1.0, 1.0
    a = a + a.T
    reference = np.linalg.svd(a, compute_uv=False)
    for pivot in PIVOTS:
        s = svd(a, compute_uv=False, pivot=pivot, rng=0)
        np.testing.assert_allclose(s, reference, rtol=1e-12, atol=1e-15 * reference[0])
