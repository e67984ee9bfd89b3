"""Sketching operators: entries as a pure function of (key, i, j), products against the dense
matrix, adjoints, thread invariance and the JL norm-preservation law."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import aslinearoperator

from randnla import sketch
from tests.conftest import to_numpy

KINDS = ["gaussian", "rademacher", "srht", "countsketch", "sparse_sign"]


def make(kind, m, n, rng=0, dtype=np.float64, **kw):
    if kind == "sparse_sign":
        kw.setdefault("nnz_per_column", 4)
    return getattr(sketch, kind)(m, n, rng=rng, dtype=dtype, **kw)


def tol(dtype):
    return 2e-5 if np.dtype(dtype) == np.float32 else 1e-12


@pytest.mark.parametrize("kind", KINDS)
def test_blocks_are_slices_and_products_with_identity_are_exact(kind, dtype):
    S = make(kind, 37, 100, dtype=dtype)
    full = S.toarray()
    assert full.shape == (37, 100) and full.dtype == dtype
    for rows, cols in [((0, 37), (0, 100)), ((3, 20), (10, 50)), ((36, 37), (99, 100)), ((5, 5), (0, 7))]:
        assert np.array_equal(S.block(*rows, *cols), full[rows[0]:rows[1], cols[0]:cols[1]])
    assert np.array_equal(S @ np.eye(100, dtype=dtype), full)
    assert np.array_equal(S.T @ np.eye(37, dtype=dtype), full.T)
    # the same key regenerates the same operator
    assert np.array_equal(make(kind, 37, 100, dtype=dtype).toarray(), full)
    assert not np.array_equal(make(kind, 37, 100, rng=1, dtype=dtype).toarray(), full)


def test_gaussian_columns_are_philox_normal_streams():
    """Column j of a Gaussian sketch is the Philox normal stream with counter (0, 0, j, tag),
    scaled by 1/sqrt(m): the vectorised generator gives the bits of randnla.random."""
    from randnla.random import Stream

    m = 1003
    S = sketch.gaussian(m, 6, rng=4)
    key = int(S.key[0]) | (int(S.key[1]) << 64)
    tag = 0x534B4741555353
    full = S.toarray()
    for j in range(6):
        stream = Stream(key=key, counter=[0, 0, j, tag]).standard_normal(m)
        assert np.array_equal(full[:, j], stream * (1 / np.sqrt(m)))


@pytest.mark.parametrize("kind", ["gaussian", "rademacher", "countsketch", "sparse_sign"])
def test_long_axis_nesting(kind):
    small, big = make(kind, 20, 50, rng=5), make(kind, 20, 130, rng=5)
    assert np.array_equal(small.toarray(), big.toarray()[:, :50])


@pytest.mark.parametrize("kind", KINDS)
def test_products_match_dense_matrix(kind, dtype, rng):
    n, m = 300, 41  # n not a power of two: SRHT pads to 512
    S = make(kind, m, n, dtype=dtype)
    M = S.toarray().astype(np.float64)
    A = rng.standard_normal((n, 7)).astype(dtype)
    ref = M @ A
    scale = np.abs(ref).max()
    for variant in (A, np.asfortranarray(A), np.repeat(A, 2, axis=1)[:, ::2]):
        out = S @ variant
        assert out.dtype == dtype and out.shape == (m, 7)
        assert np.abs(out - ref).max() <= tol(dtype) * scale * 10
    sparse_a = sp.random(n, 9, density=0.2, random_state=3, format="csr", dtype=dtype)
    for variant in (sparse_a, sparse_a.tocsc(), sp.csr_array(sparse_a)):
        out = S @ variant
        assert isinstance(out, np.ndarray) and out.shape == (m, 9)
        assert np.allclose(out, M @ sparse_a.toarray(), atol=tol(dtype) * 10, rtol=0)
    out = S @ aslinearoperator(A.astype(np.float64))
    assert np.allclose(out, ref, atol=tol(dtype) * 10 * scale)
    x = rng.standard_normal(n).astype(dtype)
    assert np.allclose(S @ x, M @ x, atol=tol(dtype) * 10 * np.abs(M @ x).max())
    assert np.allclose(S.matvec(x), S @ x) and np.allclose(S.matmat(A), S @ A)
    Y = rng.standard_normal((m, 5)).astype(dtype)
    assert np.allclose(S.T @ Y, M.T @ Y, atol=tol(dtype) * 10 * np.abs(M.T @ Y).max())
    assert np.allclose(S.rmatmat(Y), M.T @ Y, atol=tol(dtype) * 10 * np.abs(M.T @ Y).max())
    assert np.allclose(Y.T @ S, Y.T @ M, atol=tol(dtype) * 10 * np.abs(Y.T @ M).max())
    B = rng.standard_normal((6, n)).astype(dtype)
    assert np.allclose(B @ S.T, B @ M.T, atol=tol(dtype) * 10 * np.abs(B @ M.T).max())
    sparse_b = sp.random(6, n, density=0.2, random_state=4, format="csr", dtype=dtype)
    assert np.allclose(sparse_b @ S.T, sparse_b.toarray() @ M.T, atol=tol(dtype) * 10)
    assert np.allclose(S.T.toarray(), M.T)
    lin = S.aslinearoperator()
    assert np.allclose(lin.matvec(x), S @ x) and np.allclose(lin.rmatvec(Y[:, 0]), S.T @ Y[:, 0])
    assert np.allclose(S.T.aslinearoperator().matvec(Y[:, 0]), M.T @ Y[:, 0], atol=tol(dtype) * 100)


@pytest.mark.parametrize("kind", KINDS)
def test_adjoint_consistency(kind, rng):
    S = make(kind, 64, 1000)
    for _ in range(3):
        x, y = rng.standard_normal(1000), rng.standard_normal(64)
        lhs, rhs = (S @ x) @ y, x @ (S.T @ y)
        assert abs(lhs - rhs) <= 1e-12 * np.linalg.norm(x) * np.linalg.norm(y) * 10


@pytest.mark.parametrize("kind", KINDS)
def test_one_and_two_threads_are_bitwise_identical(kind, rng):
    n, m = 6000, 64  # several generation blocks and output chunks
    A = rng.standard_normal((n, 12))
    Y = rng.standard_normal((m, 10))
    B = rng.standard_normal((5, n))
    sparse_a = sp.random(n, 30, density=0.05, random_state=1, format="csr")
    one, two = make(kind, m, n, rng=3, n_threads=1), make(kind, m, n, rng=3, n_threads=2)
    for op in (lambda S: S @ A, lambda S: S.T @ Y, lambda S: B @ S.T, lambda S: S @ sparse_a,
               lambda S: S.block(5, 60, 100, 5000)):
        assert np.array_equal(op(one), op(two))


@pytest.mark.parametrize("kind", KINDS)
def test_norm_preservation_law(kind):
    """E ||S x||^2 = ||x||^2 (z-test over independent keys at significance 1e-6) and
    ||S x||^2 concentrates like a JL embedding (two-sided band)."""
    rng = np.random.default_rng(7)
    n, m, trials = 300, 64, 400
    x = rng.standard_normal(n)
    x[0] = 10.0  # one heavy coordinate: harder for sparse sketches
    ratios = np.array([np.sum((make(kind, m, n, rng=seed, n_threads=1) @ x) ** 2) for seed in range(trials)]) / (x @ x)
    z = (ratios.mean() - 1.0) / (ratios.std(ddof=1) / np.sqrt(trials))
    assert abs(z) < 4.9, (kind, ratios.mean(), z)
    assert np.mean(np.abs(ratios - 1) < 0.75) > 0.95


def test_srht_rows_are_distinct_and_padding_is_explicit():
    S = sketch.srht(64, 100, rng=2)
    rows = S._srht_rows()
    assert len(np.unique(rows)) == 64 and rows.max() < 128
    # the padded operator is an orthogonal transform: sqrt(m/N) S has orthonormal columns
    # after completing the rows, so ||S||_2^2 <= N/m
    assert np.linalg.norm(S.toarray(), 2) ** 2 <= 128 / 64 + 1e-9
    full = sketch.srht(128, 128, rng=2).toarray() * np.sqrt(128 / 128)
    assert np.allclose(full.T @ full, np.eye(128) * 128 / 128)


def test_bad_arguments():
    with pytest.raises(ValueError, match="m <= N"):
        sketch.srht(300, 100)
    with pytest.raises(ValueError, match="nnz_per_column"):
        sketch.sparse_sign(4, 10, nnz_per_column=5)
    with pytest.raises(ValueError, match="m must be"):
        sketch.gaussian(0, 10)
    with pytest.raises(TypeError, match="dtype"):
        sketch.gaussian(3, 10, dtype=np.int32)
    S = sketch.gaussian(3, 10, rng=0)
    with pytest.raises(ValueError, match="10 rows"):
        S @ np.ones((9, 2))
    with pytest.raises(ValueError, match="columns"):
        np.ones((2, 9)) @ S.T
    with pytest.raises(TypeError, match="complex"):
        S @ np.ones((10, 2), dtype=complex)
    with pytest.raises(ValueError, match="length"):
        S.matvec(np.ones(4))


def test_gpu_products_match_cpu(xp, dtype):
    if xp is np:
        pytest.skip("the NumPy path is covered above")
    for kind in KINDS:
        S = make(kind, 33, 500, dtype=dtype)
        A = np.random.default_rng(1).standard_normal((500, 6)).astype(dtype)
        out = S @ xp.asarray(A)
        assert type(out) is type(xp.asarray(A))
        assert np.allclose(to_numpy(out), S @ A, atol=tol(dtype) * 100)
        Y = np.random.default_rng(2).standard_normal((33, 4)).astype(dtype)
        assert np.allclose(to_numpy(S.T @ xp.asarray(Y)), S.T @ Y, atol=tol(dtype) * 100)
        assert np.allclose(to_numpy(S.toarray(like=xp.asarray(A))), S.toarray())


@pytest.mark.parametrize("n, d", [(5000, 19), (20000, 3)])
def test_srht_multi_block_products_match_dense_and_threads(n, d, dtype):
    """S A for n well above the in-cache block of the fused SRHT (several blocks, partial panels,
    padding) equals the materialised operator times A, and is identical for 1 and 2 threads."""
    rng = np.random.default_rng(11)
    m = 64
    A = rng.standard_normal((n, d)).astype(dtype)
    S1, S2 = sketch.srht(m, n, rng=3, dtype=dtype, n_threads=1), sketch.srht(m, n, rng=3, dtype=dtype, n_threads=2)
    ref = S1.block(0, m, 0, n).astype(np.float64) @ A.astype(np.float64)
    scale = np.abs(ref).max()
    out = S1 @ A
    assert np.abs(out - ref).max() <= tol(dtype) * scale * 100
    assert np.array_equal(out, S2 @ A)
    for variant in (np.asfortranarray(A), np.repeat(A, 2, axis=1)[:, ::2]):
        assert np.abs(S2 @ variant - ref).max() <= tol(dtype) * scale * 100
