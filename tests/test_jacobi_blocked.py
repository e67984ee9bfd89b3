"""randnla.linalg: the blocked (BLAS-3) Jacobi solver used for n >= BLOCKED_MIN_N.

Oracles: residual and orthogonality bounds of order n * eps, numpy.linalg.eigvalsh as a normwise
reference, mpmath at 60 digits and the element-wise path (itself checked against mpmath) for the
relative-accuracy claims on graded matrices, and bitwise reproducibility across thread counts.
Small block sizes are forced through ``linalg.BLOCK_SIZE`` so that moderate n already gives many
blocks.
"""

from __future__ import annotations

import numpy as np
import pytest

from _reference import graded_spd, mp_eigvalsh
from randnla import linalg
from randnla.linalg import eigh, eigh_spd, eigvalsh
from test_jacobi import PIVOTS, check_eigh, random_symmetric


@pytest.fixture
def blocks(monkeypatch):
    """Sets the blocked solver's settings for one test."""

    def set_(block_size=None, min_n=2):
        monkeypatch.setattr(linalg, "BLOCK_SIZE", block_size)
        monkeypatch.setattr(linalg, "BLOCKED_MIN_N", min_n)

    return set_


def test_blocked_is_the_default_for_large_n():
    assert linalg.BLOCKED_MIN_N <= 128 and linalg.BLOCK_SIZE is None


@pytest.mark.parametrize("pivot", PIVOTS)
@pytest.mark.parametrize("n,block_size", [(150, None), (101, 8), (97, 16), (70, 64)])
def test_blocked_residual_orthogonality(pivot, n, block_size, dtype, rng, blocks):
    blocks(block_size)
    a = random_symmetric((), n, rng, dtype)
    w, v, info = eigh(a, pivot=pivot, rng=3, return_info=True)
    assert w.dtype == dtype and v.dtype == dtype and v.shape == (n, n)
    assert info.converged and 0 < info.sweeps <= 15 and info.off_diagonal <= info.tol
    check_eigh(a, w, v)
    # Same rotations without the vectors: the same bits.
    assert np.array_equal(eigvalsh(a, pivot=pivot, rng=3), w)


def test_blocked_matches_elementwise_path(rng, blocks):
    a = random_symmetric((), 120, rng)
    blocks(None)
    w_blocked = eigvalsh(a)
    blocks(None, min_n=10**9)
    w_element = eigvalsh(a)
    scale = np.abs(w_element).max()
    assert np.max(np.abs(w_blocked - w_element)) <= 20 * 120 * 2.2e-16 * scale


def test_blocked_batch_and_special_matrices(rng, blocks):
    blocks(8)
    n = 70
    stack = random_symmetric((2, 2), n, rng)
    w, v = eigh(stack)
    assert w.shape == (2, 2, n) and v.shape == (2, 2, n, n)
    check_eigh(stack, w, v)
    single = eigh(stack[1, 0])
    assert np.array_equal(single[0], w[1, 0]) and np.array_equal(single[1], v[1, 0])
    # Zero and diagonal matrices: no rotation at all.
    w, v, info = eigh(np.zeros((n, n)), return_info=True)
    assert np.array_equal(w, np.zeros(n)) and np.array_equal(v, np.eye(n)) and info.rotations == 0
    d = rng.permutation(np.arange(n, dtype=float) - 30)
    w, v, info = eigh(np.diag(d), return_info=True)
    assert info.rotations == 0 and info.sweeps == 0 and info.converged
    assert np.array_equal(w, np.sort(d)) and np.array_equal(np.abs(v), np.eye(n)[:, np.argsort(d, kind="stable")])
    # Repeated eigenvalues and a huge / tiny scale.
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    values = np.repeat([1.0, 2.0, -3.0, 5.0, 7.0], n // 5)
    for scale in (1.0, 1e300, 1e-300):
        a = (q * values) @ q.T
        a = (a + a.T) / 2 * scale
        w, v, info = eigh(a, return_info=True)
        assert info.converged and np.all(np.isfinite(w)) and np.all(np.isfinite(v))
        assert np.linalg.norm(v.T @ v - np.eye(n)) <= 20 * n * 2.2e-16
        assert np.allclose(w / scale, np.sort(values), rtol=0, atol=50 * n * 2.2e-16 * 7)


@pytest.mark.parametrize("spread", [12, 16])
def test_blocked_graded_spd_relative_accuracy_mpmath(spread, blocks):
    # n = 64 with 8 columns per block: 8 blocks, 4 disjoint block pairs per step.
    blocks(8)
    rng = np.random.default_rng(40 + spread)
    n = 64
    h = graded_spd(n, spread, rng)
    reference = mp_eigvalsh(h, dps=50)
    errors = {}
    for pivot in PIVOTS:
        w, info = eigvalsh(h, pivot=pivot, rng=0, return_info=True)
        assert info.converged and info.sweeps > 0
        errors[pivot] = np.max(np.abs(w / reference - 1))
    assert max(errors.values()) < 1e-12, errors
    numpy_error = np.max(np.abs(np.linalg.eigvalsh(h) / reference - 1))
    assert numpy_error > 1e4 * max(errors.values()), (numpy_error, errors)


def test_blocked_graded_spd_relative_accuracy_large(blocks):
    # n = 192 on the default blocks: agreement to 1e-12 relative with two independent accurate
    # routes (the element-wise two-sided path and Cholesky + one-sided Jacobi, both checked
    # against mpmath above and in test_jacobi.py), while LAPACK misses by orders of magnitude.
    rng = np.random.default_rng(5)
    n = 192
    h = graded_spd(n, 14, rng)
    blocks(None)
    w_blocked, v_blocked, info = eigh(h, return_info=True)
    assert info.converged
    blocks(None, min_n=10**9)
    w_element = eigvalsh(h, pivot="round_robin")
    w_spd = eigh_spd(h, compute_v=False)
    error = max(np.max(np.abs(w_blocked / w_element - 1)), np.max(np.abs(w_blocked / w_spd - 1)))
    assert error < 1e-12, error
    assert np.max(np.abs(np.linalg.eigvalsh(h) / w_element - 1)) > 1e4 * error
    # Small eigenvalues come with accurate residuals too: ||H v - w v|| relative to w, column-wise,
    # after scaling by the grading (D^{-1} H v = w D^{-1} v).
    assert np.linalg.norm(v_blocked.T @ v_blocked - np.eye(n)) <= 20 * n * 2.2e-16


@pytest.mark.parametrize("pivot", PIVOTS)
def test_blocked_bitwise_threads_and_rng(pivot, rng, blocks):
    blocks(16)
    a = random_symmetric((), 150, rng)
    one = eigh(a, pivot=pivot, rng=7, n_threads=1)
    two = eigh(a, pivot=pivot, rng=7, n_threads=2)
    again = eigh(a, pivot=pivot, rng=7)
    for x, y, z in zip(one, two, again):
        assert np.array_equal(x, y) and np.array_equal(x, z)
    a32 = a.astype(np.float32)
    assert all(np.array_equal(x, y) for x, y in zip(eigh(a32, pivot=pivot, rng=7, n_threads=1),
                                                    eigh(a32, pivot=pivot, rng=7, n_threads=2)))
    if pivot == "random":
        # Another seed relabels the blocks differently: other rotations, same eigenvalues.
        other, _, info = eigh(a, pivot=pivot, rng=8, return_info=True)
        _, _, info7 = eigh(a, pivot=pivot, rng=7, return_info=True)
        assert info.rotations != info7.rotations or not np.array_equal(other, one[0])
        assert np.allclose(other, one[0], rtol=0, atol=1e-12 * np.abs(one[0]).max())


def test_blocked_nonconvergence_warns(rng, blocks):
    blocks(16)
    a = random_symmetric((2,), 100, rng)
    with pytest.warns(RuntimeWarning, match="did not converge"):
        _, _, info = eigh(a, max_sweeps=1, return_info=True)
    assert not np.any(info.converged) and np.all(info.sweeps == 1)
    assert np.all(info.off_diagonal > info.tol)
    with pytest.warns(RuntimeWarning, match="did not converge"):
        eigvalsh(a[0], max_sweeps=2)


def test_blocked_settings_are_validated(rng, blocks):
    a = random_symmetric((), 80, rng)
    blocks(0)
    with pytest.raises(ValueError, match="BLOCK_SIZE"):
        eigh(a)
    blocks(2.5)
    with pytest.raises(TypeError, match="BLOCK_SIZE"):
        eigh(a)
    blocks(None)
    with pytest.raises(ValueError, match="symmetric"):
        eigh(a + np.triu(np.ones((80, 80)), 1))
    bad = a.copy()
    bad[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        eigh(bad)


# Many blocks (n = 512 and 1024 run with 16 blocks by default): small blocks at moderate n.


@pytest.mark.parametrize("pivot", PIVOTS)
def test_blocked_many_blocks_residual_threads(pivot, rng, blocks):
    blocks(8)
    n = 150  # 20 blocks of 8 (padded to 160)
    a = random_symmetric((), n, rng)
    w, v, info = eigh(a, pivot=pivot, rng=3, return_info=True, n_threads=1)
    assert info.converged and 0 < info.sweeps <= 15 and info.off_diagonal <= info.tol
    check_eigh(a, w, v)
    w2, v2 = eigh(a, pivot=pivot, rng=3, n_threads=2)
    assert np.array_equal(w, w2) and np.array_equal(v, v2)
    assert np.array_equal(eigvalsh(a, pivot=pivot, rng=3), w)
    a32 = a.astype(np.float32)
    w32, v32 = eigh(a32, pivot=pivot, rng=3)
    check_eigh(a32, w32, v32)


@pytest.mark.parametrize("spread", [8, 16])
def test_blocked_many_blocks_graded_relative_accuracy(spread, blocks):
    # n = 144, 18 blocks of 8: agreement to 1e-12 relative with the element-wise path and with
    # Cholesky + one-sided Jacobi (both checked against mpmath in test_jacobi.py).
    rng = np.random.default_rng(70 + spread)
    n = 144
    h = graded_spd(n, spread, rng)
    blocks(None, min_n=10**9)
    w_element = eigvalsh(h)
    w_spd = eigh_spd(h, compute_v=False)
    blocks(8)
    for pivot in PIVOTS:
        w, v, info = eigh(h, pivot=pivot, rng=1, return_info=True)
        assert info.converged
        error = max(np.max(np.abs(w / w_element - 1)), np.max(np.abs(w / w_spd - 1)))
        assert error < 1e-12, (pivot, error)
        assert np.linalg.norm(v.T @ v - np.eye(n)) <= 20 * n * 2.2e-16
    if spread >= 16:
        assert np.max(np.abs(np.linalg.eigvalsh(h) / w_element - 1)) > 1e4 * error


def test_blocked_many_blocks_nonconvergence_warns(rng, blocks):
    blocks(8)
    a = random_symmetric((), 150, rng)
    with pytest.warns(RuntimeWarning, match="did not converge"):
        _, _, info = eigh(a, max_sweeps=2, return_info=True)
    assert not info.converged and info.sweeps == 2 and info.off_diagonal > info.tol
