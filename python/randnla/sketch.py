"""Sketching: random operators, coordinated sampling for A^T B, and sketched least squares.

Operators
    :func:`gaussian`, :func:`rademacher`, :func:`srht`, :func:`countsketch`, :func:`sparse_sign`
    return an m x n :class:`SketchOperator`: a lazy, duck-typed linear operator whose entries are a
    pure function of (rng key, i, j), generated on the fly from Philox4x64-10 and never stored.
    ``S @ A`` works for NumPy arrays, SciPy sparse matrices, LinearOperators and CuPy arrays;
    so do ``A @ S.T``, ``S.T @ Y``, ``S.toarray()`` and ``S.aslinearoperator()``. Results are
    bitwise identical for any number of threads.

Coordinated sampling (Daliri, Freire, Li, Musco, ICLR 2025)
    :func:`priority_sample` and :func:`threshold_sample` keep a few rows of a matrix, chosen by a
    hash shared by every party that knows the seed (:func:`coordination_hash`), so that two
    sketches built apart estimate A^T B without bias (:func:`estimate_matmul`). Sketches of
    row-disjoint shards :func:`merge` into exactly the sketch of the whole, and save to ``.npz``.

Least squares
    :func:`sketched_lstsq` solves a sketched problem with a per-coordinate (l-infinity) error bar;
    :func:`lstsq` solves tall problems to full accuracy by sketch-and-precondition.

Scaling convention: every operator satisfies E[S^T S] = I (Gaussian and Rademacher entries have
variance 1/m; SRHT is (1/sqrt(m)) P H D; sparse sign entries are +-1/sqrt(s); CountSketch +-1).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from randnla import _core
from randnla import _backend, _dask
from randnla._dask import JoinRegressionResult, join_regression
from randnla._backend import is_cupy, is_linear_operator, is_scipy_sparse, namespace_of
from randnla._rng import philox_key
from randnla._validate import (
    as_float_array,
    check_choice,
    check_finite,
    check_int,
    check_n_threads,
    check_positive,
)

__all__ = [
    "SketchOperator",
    "gaussian",
    "rademacher",
    "srht",
    "countsketch",
    "sparse_sign",
    "HASH_VERSION",
    "coordination_hash",
    "CoordinatedSketch",
    "priority_sample",
    "threshold_sample",
    "estimate_matmul",
    "merge",
    "SketchedLstsqResult",
    "sketched_lstsq",
    "LstsqResult",
    "lstsq",
    "join_regression",
    "JoinRegressionResult",
]

_DENSE_KINDS = {"gaussian": 0, "rademacher": 1}
_SPARSE_KINDS = ("countsketch", "sparse_sign")
_PANEL = 64  # columns per pass when densifying sparse or operator input


def _float_dtype(dtype, name="dtype"):
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must be float32 or float64, got {dtype}")
    return dtype


def _promote(*dtypes):
    dtype = np.result_type(*dtypes)
    return np.dtype(np.float32) if dtype == np.float32 else np.dtype(np.float64)


def _suffix(dtype):
    return "float32" if np.dtype(dtype) == np.float32 else "float64"


def _popcount_parity(x):
    """(-1)^popcount(x) for a non-negative int64 array."""
    x = np.asarray(x, dtype=np.uint64)
    if hasattr(np, "bitwise_count"):
        counts = np.bitwise_count(x)
    else:  # pragma: no cover - NumPy < 2.0
        table = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
        counts = np.zeros(x.shape, dtype=np.uint8)
        for shift in range(0, 64, 8):
            counts += table[((x >> np.uint64(shift)) & np.uint64(255)).astype(np.intp)]
    return np.where(counts & 1, -1, 1).astype(np.int8)


# ---------------------------------------------------------------------------------------------
# Operators
# ---------------------------------------------------------------------------------------------


class SketchOperator:
    """An m x n random sketching operator generated lazily from a Philox key.

    Build one with :func:`gaussian`, :func:`rademacher`, :func:`srht`, :func:`countsketch` or
    :func:`sparse_sign`. It behaves like a ``scipy.sparse.linalg.LinearOperator`` (``shape``,
    ``dtype``, ``matvec``, ``rmatvec``, ``matmat``, ``rmatmat``, ``T``, ``@``) without ever storing
    S: each product regenerates the entries it needs. ``S @ A`` accepts NumPy arrays (1-D or 2-D),
    SciPy sparse matrices, LinearOperators and CuPy arrays, and returns a dense array of the
    input's library (NumPy for sparse and operator input). ``A @ S.T`` and ``S.T @ Y`` work the
    same way. The result dtype is NumPy's promotion of the operator's and the input's dtype.

    Attributes
    ----------
    kind : str
        ``"gaussian"``, ``"rademacher"``, ``"srht"``, ``"countsketch"`` or ``"sparse_sign"``.
    key : numpy.ndarray
        The 128-bit Philox key (two uint64 words) every entry derives from.
    nnz_per_column : int or None
        Nonzeros per column of the sparse kinds.
    """

    __array_ufunc__ = None  # make ndarray @ S defer to S.__rmatmul__

    def __init__(self, kind, m, n, key, dtype=np.float64, nnz_per_column=None, n_threads=None):
        self.kind = kind
        self.shape = (int(m), int(n))
        self.key = np.asarray(key, dtype=np.uint64)
        self.dtype = _float_dtype(dtype)
        self.nnz_per_column = nnz_per_column
        self.n_threads = check_n_threads(n_threads)
        self.ndim = 2

    def __repr__(self):
        extra = f", nnz_per_column={self.nnz_per_column}" if self.kind == "sparse_sign" else ""
        return f"<{self.shape[0]}x{self.shape[1]} {self.kind} SketchOperator, dtype={self.dtype}{extra}>"

    # -- LinearOperator protocol ------------------------------------------------------------
    @property
    def T(self):
        """The transpose S^T (n x m), itself a lazy operator."""
        return _TransposedSketch(self)

    def transpose(self):
        return self.T

    @property
    def H(self):
        return self.T

    def adjoint(self):
        return self.T

    def matvec(self, x):
        """S @ x for a vector x of length n."""
        return self @ _as_vector(x, self.shape[1], "x")

    def rmatvec(self, y):
        """S^T @ y for a vector y of length m."""
        return self.T @ _as_vector(y, self.shape[0], "y")

    def matmat(self, X):
        """S @ X for X of shape (n, k)."""
        return self @ X

    def rmatmat(self, Y):
        """S^T @ Y for Y of shape (m, k)."""
        return self.T @ Y

    def dot(self, x):
        return self @ x

    def __matmul__(self, other):
        if _backend.is_dask(other):
            return _dask.sketch_apply(self, other)
        if isinstance(other, (SketchOperator, _TransposedSketch)):
            return NotImplemented
        return _dispatch(self._apply_left, other, self.shape[1], "A", self.shape[0])

    def __rmatmul__(self, other):
        # other (p x m) @ S (m x n) = (S^T other^T)^T
        return _dispatch_right(lambda a: self._apply_transpose(a), other, self.shape[0], self.shape[1])

    def __call__(self, x):
        return self @ x

    # -- materialisation ---------------------------------------------------------------------
    def toarray(self, *, like=None):
        """The dense m x n matrix S (for tests and small sizes). ``like``: a CuPy array for CuPy."""
        return self.block(0, self.shape[0], 0, self.shape[1], like=like)

    todense = toarray

    def block(self, row_start, row_stop, col_start, col_stop, *, like=None):
        """S[row_start:row_stop, col_start:col_stop], regenerated alone (equals the slice of toarray)."""
        m, n = self.shape
        row_start = check_int(row_start, "row_start", minimum=0, maximum=m)
        row_stop = check_int(row_stop, "row_stop", minimum=row_start, maximum=m)
        col_start = check_int(col_start, "col_start", minimum=0, maximum=n)
        col_stop = check_int(col_stop, "col_stop", minimum=col_start, maximum=n)
        if self.kind in _DENSE_KINDS:
            fn = getattr(_core, f"dense_block_{_suffix(self.dtype)}")
            out = np.ascontiguousarray(
                fn(_DENSE_KINDS[self.kind], self.key, m, row_start, row_stop, col_start, col_stop, self.n_threads).T
            )
        elif self.kind == "srht":
            rows = self._srht_rows()[row_start:row_stop]
            signs = _core.srht_signs(self.key, col_start, col_stop)
            cols = np.arange(col_start, col_stop, dtype=np.int64)
            parity = _popcount_parity(rows[:, None] & cols[None, :])
            out = (parity * signs[None, :]).astype(self.dtype) * self.dtype.type(1.0 / math.sqrt(m))
        else:
            rows, signs = self._sparse_columns(col_start, col_stop)
            out = np.zeros((m, col_stop - col_start), dtype=self.dtype)
            cols = np.repeat(np.arange(col_stop - col_start), rows.shape[1])
            out[rows.ravel(), cols] = signs.ravel().astype(self.dtype) * self.dtype.type(self._sparse_scale())
            out = out[row_start:row_stop]
        if like is not None and is_cupy(like):
            return namespace_of(like).asarray(out)
        return out

    def tosparse(self):
        """S as a ``scipy.sparse.csc_array`` (sparse kinds only)."""
        if self.kind not in _SPARSE_KINDS:
            raise ValueError(f"tosparse() is for sparse operators; a {self.kind} operator is dense (use toarray())")
        import scipy.sparse as sp

        m, n = self.shape
        rows, signs = self._sparse_columns(0, n)
        s = rows.shape[1]
        data = signs.ravel().astype(self.dtype) * self.dtype.type(self._sparse_scale())
        return sp.csc_array((data, rows.ravel(), np.arange(0, n * s + 1, s)), shape=(m, n))

    def aslinearoperator(self, *, like=None):
        """A ``scipy.sparse.linalg.LinearOperator`` wrapping S (a cupyx one when ``like`` is a CuPy array)."""
        if like is not None and is_cupy(like):
            from cupyx.scipy.sparse.linalg import LinearOperator
        else:
            from scipy.sparse.linalg import LinearOperator

        return LinearOperator(
            self.shape, matvec=self.matvec, rmatvec=self.rmatvec, matmat=self.matmat, rmatmat=self.rmatmat,
            dtype=self.dtype,
        )

    # -- internals ---------------------------------------------------------------------------
    def _srht_rows(self):
        m, n = self.shape
        return _core.srht_rows(self.key, m, _next_pow2(n))

    def _sparse_spec(self):
        s = 1 if self.kind == "countsketch" else self.nnz_per_column
        return s, self.kind == "countsketch"

    def _sparse_scale(self):
        s, _ = self._sparse_spec()
        return 1.0 / math.sqrt(s)

    def _sparse_columns(self, col_start, col_stop):
        s, cs = self._sparse_spec()
        return _core.sparse_columns(self.key, self.shape[0], s, cs, col_start, col_stop, self.n_threads)

    def _apply_left(self, a):
        """S @ a for a 2-D input with a.shape[0] == n (NumPy, SciPy sparse, LinearOperator, CuPy)."""
        m, n = self.shape
        if is_cupy(a):
            return _GPU.apply_left(self, a)
        if is_linear_operator(a):
            return _operator_panels(a, lambda block: self._apply_left(block), m, "A")
        if is_scipy_sparse(a):
            dtype = _promote(self.dtype, a.dtype)
            if self.kind in _SPARSE_KINDS:
                csr = a.tocsr().astype(dtype, copy=False)
                s, cs = self._sparse_spec()
                fn = getattr(_core, f"sparse_apply_left_csr_{_suffix(dtype)}")
                return fn(self.key, m, s, cs, csr.data, csr.indices, csr.indptr, n, csr.shape[1], self.n_threads)
            if self.kind in _DENSE_KINDS:
                csr = a.tocsr().astype(dtype, copy=False)
                d = csr.shape[1]
                out_t = np.zeros((d, m), dtype=dtype)
                fn = getattr(_core, f"dense_block_{_suffix(dtype)}")
                step = max(256, (1 << 18) // max(m, 1))
                for o in range(0, n, step):
                    stop = min(n, o + step)
                    g_t = fn(_DENSE_KINDS[self.kind], self.key, m, 0, m, o, stop, self.n_threads)  # (w, m) = G^T
                    out_t += csr[o:stop].T @ g_t
                return np.ascontiguousarray(out_t.T)
            csc = a.tocsc().astype(dtype)
            out = np.empty((m, csc.shape[1]), dtype=dtype)
            for c0 in range(0, csc.shape[1], _PANEL):
                c1 = min(csc.shape[1], c0 + _PANEL)
                out[:, c0:c1] = self._apply_left(np.asarray(csc[:, c0:c1].toarray()))
            return out
        a = np.asarray(a)
        dtype = _promote(self.dtype, a.dtype)
        if a.dtype != dtype:
            a = a.astype(dtype)
        if not (a.flags.c_contiguous or a.flags.f_contiguous):
            a = np.ascontiguousarray(a)
        suffix = _suffix(dtype)
        if self.kind in _DENSE_KINDS:
            return getattr(_core, f"dense_apply_left_{suffix}")(_DENSE_KINDS[self.kind], self.key, m, a, self.n_threads)
        if self.kind == "srht":
            return getattr(_core, f"srht_apply_left_{suffix}")(self.key, m, a, self.n_threads)
        s, cs = self._sparse_spec()
        return getattr(_core, f"sparse_apply_left_dense_{suffix}")(self.key, m, s, cs, a, self.n_threads)

    def _apply_transpose(self, y):
        """S^T @ y for a 2-D input with y.shape[0] == m."""
        m, n = self.shape
        if is_cupy(y):
            return _GPU.apply_transpose(self, y)
        if is_linear_operator(y):
            return _operator_panels(y, lambda block: self._apply_transpose(block), n, "Y")
        if is_scipy_sparse(y):
            y = y.toarray()  # Y has only m (small) rows
        y = np.asarray(y)
        dtype = _promote(self.dtype, y.dtype)
        if y.dtype != dtype:
            y = y.astype(dtype)
        if not (y.flags.c_contiguous or y.flags.f_contiguous):
            y = np.ascontiguousarray(y)
        suffix = _suffix(dtype)
        if self.kind in _DENSE_KINDS:
            return getattr(_core, f"dense_apply_transpose_{suffix}")(_DENSE_KINDS[self.kind], self.key, n, y, self.n_threads)
        if self.kind == "srht":
            return getattr(_core, f"srht_apply_transpose_{suffix}")(self.key, n, y, self.n_threads)
        s, cs = self._sparse_spec()
        return getattr(_core, f"sparse_apply_transpose_{suffix}")(self.key, n, s, cs, y, self.n_threads)

    def _apply_right(self, a):
        """a @ S^T for a 2-D input with a.shape[1] == n; returns (p, m)."""
        m, n = self.shape
        if is_cupy(a):
            return _GPU.apply_left(self, a.T).T
        if is_linear_operator(a):
            return self._apply_left(_TransposedOperator(a)).T
        if self.kind in _SPARSE_KINDS:
            s, cs = self._sparse_spec()
            if is_scipy_sparse(a):
                dtype = _promote(self.dtype, a.dtype)
                csr = a.tocsr().astype(dtype, copy=False)
                fn = getattr(_core, f"sparse_apply_right_csr_{_suffix(dtype)}")
                return fn(self.key, m, s, cs, csr.data, csr.indices.astype(np.int64), csr.indptr.astype(np.int64),
                          csr.shape[0], n, self.n_threads)
            a = np.asarray(a)
            dtype = _promote(self.dtype, a.dtype)
            a = np.ascontiguousarray(a, dtype=dtype)
            return getattr(_core, f"sparse_apply_right_dense_{_suffix(dtype)}")(self.key, m, s, cs, a, self.n_threads)
        if is_scipy_sparse(a):
            return self._apply_left(a.T.tocsr()).T
        return self._apply_left(np.asarray(a).T).T


class _TransposedSketch:
    """S^T for a :class:`SketchOperator` S: n x m, lazy."""

    __array_ufunc__ = None

    def __init__(self, parent):
        self.parent = parent
        self.shape = (parent.shape[1], parent.shape[0])
        self.dtype = parent.dtype
        self.ndim = 2

    def __repr__(self):
        return f"<transpose of {self.parent!r}>"

    @property
    def T(self):
        return self.parent

    def transpose(self):
        return self.parent

    @property
    def H(self):
        return self.parent

    def adjoint(self):
        return self.parent

    def matvec(self, y):
        return self @ _as_vector(y, self.shape[1], "y")

    def rmatvec(self, x):
        return self.parent @ _as_vector(x, self.shape[0], "x")

    def matmat(self, Y):
        return self @ Y

    def rmatmat(self, X):
        return self.parent @ X

    def dot(self, y):
        return self @ y

    def __call__(self, y):
        return self @ y

    def __matmul__(self, other):
        if isinstance(other, (SketchOperator, _TransposedSketch)):
            return NotImplemented
        return _dispatch(self.parent._apply_transpose, other, self.shape[1], "Y", self.shape[0])

    def __rmatmul__(self, other):
        # other (p x n) @ S^T (n x m)
        return _dispatch_right_plain(self.parent._apply_right, other, self.shape[0])

    def toarray(self, *, like=None):
        out = self.parent.toarray(like=like).T
        return namespace_of(out).ascontiguousarray(out)

    todense = toarray

    def aslinearoperator(self, *, like=None):
        if like is not None and is_cupy(like):
            from cupyx.scipy.sparse.linalg import LinearOperator
        else:
            from scipy.sparse.linalg import LinearOperator

        return LinearOperator(self.shape, matvec=self.matvec, rmatvec=self.rmatvec, matmat=self.matmat,
                              rmatmat=self.rmatmat, dtype=self.dtype)


class _TransposedOperator:
    """The transpose of a duck-typed LinearOperator (for A @ S^T with A an operator)."""

    def __init__(self, op):
        self.op = op
        self.shape = (op.shape[1], op.shape[0])
        self.dtype = op.dtype

    def matvec(self, x):
        return self.op.rmatvec(x)

    def rmatvec(self, y):
        return self.op.matvec(y)

    def matmat(self, X):
        return self.op.rmatmat(X) if hasattr(self.op, "rmatmat") else np.column_stack([self.op.rmatvec(c) for c in X.T])


def _next_pow2(n):
    return 1 << max(int(n) - 1, 0).bit_length()


def _as_vector(x, length, name):
    xp = namespace_of(x)
    x = xp.asarray(x) if not is_scipy_sparse(x) else x.toarray()
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 1 or x.shape[0] != length:
        raise ValueError(f"{name} must be a vector of length {length}, got shape {tuple(x.shape)}")
    return x


def _check_input_rows(a, rows, name, what):
    if not (is_scipy_sparse(a) or is_linear_operator(a) or is_cupy(a)):
        a = as_float_array(a, name)
    if len(a.shape) not in (1, 2) or a.shape[0] != rows:
        raise ValueError(f"{name} must have {rows} rows to be multiplied by {what}, got shape {tuple(a.shape)}")
    if hasattr(a, "dtype") and np.dtype(a.dtype).kind == "c":
        raise TypeError(f"{name} is complex; sketching operators are real")
    return a


def _dispatch(apply, other, rows, name, out_rows):
    """S @ other: handles vectors (1-D) and the 2-D cases through ``apply``."""
    a = _check_input_rows(other, rows, name, f"an operator with {rows} columns")
    if len(a.shape) == 1:
        xp = namespace_of(a)
        return apply(xp.reshape(a, (rows, 1)))[:, 0]
    return apply(a)


def _dispatch_right(apply_transpose, other, cols, out_cols):
    """other @ S = (S^T other^T)^T for other (p x m)."""
    if is_linear_operator(other):
        raise TypeError("use S.T @ A.T (or S.aslinearoperator()) to compose a LinearOperator with a sketch")
    if not (is_scipy_sparse(other) or is_cupy(other)):
        other = as_float_array(other, "A")
    if other.shape[-1] != cols:
        raise ValueError(f"A must have {cols} columns to multiply the operator, got shape {tuple(other.shape)}")
    if len(other.shape) == 1:
        xp = namespace_of(other)
        return apply_transpose(xp.reshape(other, (cols, 1)))[:, 0]
    return apply_transpose(other.T).T


def _dispatch_right_plain(apply_right, other, cols):
    """other @ S^T for other (p x n)."""
    if not (is_scipy_sparse(other) or is_cupy(other) or is_linear_operator(other)):
        other = as_float_array(other, "A")
    if other.shape[-1] != cols:
        raise ValueError(f"A must have {cols} columns to multiply S.T, got shape {tuple(other.shape)}")
    if len(other.shape) == 1:
        xp = namespace_of(other)
        return apply_right(xp.reshape(other, (1, cols)))[0]
    return apply_right(other)


def _operator_panels(op, apply, out_rows, name):
    """apply(op) for a LinearOperator op (r x c), one panel of its columns at a time."""
    r, c = op.shape
    dtype = _promote(np.dtype(op.dtype) if op.dtype is not None else np.float64)
    out = None
    for c0 in range(0, c, _PANEL):
        c1 = min(c, c0 + _PANEL)
        eye = np.zeros((c, c1 - c0), dtype=dtype)
        eye[np.arange(c0, c1), np.arange(c1 - c0)] = 1
        block = op.matmat(eye) if hasattr(op, "matmat") else np.column_stack([op.matvec(e) for e in eye.T])
        block = np.asarray(block)
        if block.ndim == 1:
            block = block[:, None]
        res = apply(block)
        if out is None:
            out = np.empty((res.shape[0], c), dtype=res.dtype)
        out[:, c0:c1] = res
    if out is None:
        out = np.zeros((out_rows, 0), dtype=dtype)
    return out


def _check_size(m, n):
    m = check_int(m, "m", minimum=1)
    n = check_int(n, "n", minimum=1)
    return m, n


def gaussian(m, n, *, rng=None, dtype=np.float64, n_threads=None):
    """An m x n Gaussian sketch: i.i.d. N(0, 1/m) entries, generated on the fly.

    ``S @ A`` generates S blockwise (about 2 MiB at a time) and multiplies each block with one
    GEMM, so no full S is ever stored and generation overlaps the data pass.

    Parameters
    ----------
    m, n : int
        Sketch rows and input rows (S is m x n).
    rng : None, int, SeedSequence, BitGenerator or Generator
        Source of the Philox key.
    dtype : float32 or float64
        Entries are the float64 values rounded to ``dtype`` (float32 and float64 operators agree).
    n_threads : int, optional
        Threads for generation (None: all cores); results do not depend on it.

    Examples
    --------
    >>> import numpy as np
    >>> from randnla.sketch import gaussian
    >>> S = gaussian(50, 1000, rng=0)
    >>> A = np.ones((1000, 3))
    >>> (S @ A).shape
    (50, 3)
    >>> bool(np.allclose(S @ A, S.toarray() @ A))
    True
    """
    m, n = _check_size(m, n)
    return SketchOperator("gaussian", m, n, philox_key(rng), _float_dtype(dtype), n_threads=n_threads)


def rademacher(m, n, *, rng=None, dtype=np.float64, n_threads=None):
    """An m x n Rademacher sketch: i.i.d. +-1/sqrt(m) entries (one random bit each).

    Examples
    --------
    >>> from randnla.sketch import rademacher
    >>> S = rademacher(4, 6, rng=0)
    >>> sorted(set((S.toarray() * 2).ravel().tolist()))
    [-1.0, 1.0]
    """
    m, n = _check_size(m, n)
    return SketchOperator("rademacher", m, n, philox_key(rng), _float_dtype(dtype), n_threads=n_threads)


def srht(m, n, *, rng=None, dtype=np.float64, n_threads=None):
    """An m x n subsampled randomized Hadamard transform S = (1/sqrt(m)) P H_N D.

    D holds random signs, the input is zero-padded to N = 2^ceil(log2 n) rows, H_N is the
    unnormalised Walsh-Hadamard matrix (applied by an in-place fast transform, O(N log N) per
    column) and P keeps m distinct rows chosen without replacement (so m <= N).

    Examples
    --------
    >>> import numpy as np
    >>> from randnla.sketch import srht
    >>> S = srht(8, 20, rng=0)
    >>> x = np.arange(20.0)
    >>> bool(np.allclose(S @ x, S.toarray() @ x))
    True
    """
    m, n = _check_size(m, n)
    big_n = _next_pow2(n)
    if m > big_n:
        raise ValueError(f"srht needs m <= N = {big_n} (n = {n} padded to a power of two), got m = {m}")
    return SketchOperator("srht", m, n, philox_key(rng), _float_dtype(dtype), n_threads=n_threads)


def countsketch(m, n, *, rng=None, dtype=np.float64, n_threads=None):
    """An m x n CountSketch: each column holds one +-1 at a random row (O(nnz) to apply).

    Examples
    --------
    >>> import numpy as np
    >>> from randnla.sketch import countsketch
    >>> S = countsketch(5, 12, rng=0)
    >>> np.count_nonzero(S.toarray(), axis=0).tolist() == [1] * 12
    True
    """
    m, n = _check_size(m, n)
    return SketchOperator("countsketch", m, n, philox_key(rng), _float_dtype(dtype), nnz_per_column=1,
                          n_threads=n_threads)


def sparse_sign(m, n, *, nnz_per_column=8, rng=None, dtype=np.float64, n_threads=None):
    """An m x n sparse sign sketch: each column holds ``nnz_per_column`` entries +-1/sqrt(s) at
    distinct random rows (a SASO / OSNAP-type embedding; ``nnz_per_column=1`` is CountSketch-like).

    Examples
    --------
    >>> import numpy as np
    >>> from randnla.sketch import sparse_sign
    >>> S = sparse_sign(16, 40, nnz_per_column=4, rng=0)
    >>> np.count_nonzero(S.toarray(), axis=0).tolist() == [4] * 40
    True
    """
    m, n = _check_size(m, n)
    s = check_int(nnz_per_column, "nnz_per_column", minimum=1, maximum=m)
    return SketchOperator("sparse_sign", m, n, philox_key(rng), _float_dtype(dtype), nnz_per_column=s,
                          n_threads=n_threads)


# ---------------------------------------------------------------------------------------------
# Coordinated sampling
# ---------------------------------------------------------------------------------------------

#: Version of :func:`coordination_hash`. Sketches record it; mixing versions is an error.
HASH_VERSION = int(_core.coordination_hash_version)
_SKETCH_FORMAT = "randnla.sketch.CoordinatedSketch"
_SKETCH_FORMAT_VERSION = 1


def _check_seed(seed):
    if seed is None:
        raise TypeError("seed is required: coordinated sketches need a seed shared by every party")
    seed = check_int(seed, "seed", minimum=0)
    if seed >= 2**64:
        raise ValueError(f"seed must be < 2**64, got {seed}")
    return seed


def _check_keys(keys, n, xp=np):
    if keys is None:
        return np.arange(n, dtype=np.int64)
    if is_cupy(keys):
        keys = keys.get()
    keys = np.asarray(keys)
    if keys.dtype.kind not in "iu":
        raise TypeError(f"keys must be integers (int64 join keys), got dtype {keys.dtype}")
    if keys.dtype == np.uint64 and keys.size and keys.max() > np.iinfo(np.int64).max:
        raise ValueError("keys must fit in int64")
    keys = np.ascontiguousarray(keys, dtype=np.int64)
    if keys.shape != (n,):
        raise ValueError(f"keys must have shape ({n},) (one key per row), got {keys.shape}")
    if np.unique(keys).size != n:
        raise ValueError("keys must be distinct: each row needs its own join key")
    return keys


def coordination_hash(keys, *, seed):
    """The shared uniform hash h(seed, key) in (0, 1) behind coordinated sampling (version 1).

    A pure function of (seed, key), the same in every process, on every platform and on the GPU:
    ``w`` = first 64-bit word of Philox4x64-10 with counter ``(key mod 2**64, 0, 0,
    0x436f6f7264486173)`` and key ``(seed, 0x72616e646e6c6131)``, then
    ``h = (floor(w / 2**11) + 0.5) / 2**53``. String keys should first be mapped to int64 by a
    fixed hash of your choice (never Python's salted ``hash()``).

    Examples
    --------
    >>> from randnla.sketch import coordination_hash
    >>> h = coordination_hash([0, 1, 2], seed=42)
    >>> bool(((0 < h) & (h < 1)).all())
    True
    """
    seed = _check_seed(seed)
    if is_cupy(keys):
        if keys.dtype.kind not in "iu":
            raise TypeError(f"keys must be integers, got dtype {keys.dtype}")
        return _GPU.coordination_hash(keys.ravel(), seed).reshape(keys.shape)
    keys_np = np.atleast_1d(np.asarray(keys))
    if keys_np.dtype.kind not in "iu":
        raise TypeError(f"keys must be integers, got dtype {keys_np.dtype}")
    out = _core.coordination_hash(seed, np.ascontiguousarray(keys_np, dtype=np.int64).ravel(), 0)
    return out.reshape(keys_np.shape)


@dataclass(eq=False)
class CoordinatedSketch:
    """Rows kept by :func:`priority_sample` or :func:`threshold_sample`.

    Attributes
    ----------
    keys : numpy.ndarray of int64
        Join keys of the kept rows, ascending.
    rows : array or scipy.sparse CSR matrix
        The kept rows (``len(keys)`` x ``shape[1]``), in the input's format (NumPy, CuPy or CSR).
    norms_sq : numpy.ndarray of float64
        Squared Euclidean norms of the kept rows (the sampling weights).
    tau : float
        Threshold: row i was kept with probability ``min(1, norms_sq[i] * tau)`` (``inf``: all
        nonzero rows were kept).
    kind : str
        ``"priority"`` or ``"threshold"``.
    seed : int
        The coordination seed.
    shape : tuple
        Shape of the sketched matrix (rows summed over merged shards, columns).
    k : int
        The sample size asked for.
    hash_version : int
        Version of :func:`coordination_hash` used.
    spare_keys, spare_rows, spare_norms_sq
        Priority sketches also keep the entry whose rank set ``tau`` (the (k+1)-st smallest):
        not used by the estimator, but needed so that :func:`merge` is exact.
    """

    keys: np.ndarray
    rows: object
    norms_sq: np.ndarray
    tau: float
    kind: str
    seed: int
    shape: tuple
    k: int
    hash_version: int = HASH_VERSION
    spare_keys: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    spare_rows: object = None
    spare_norms_sq: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __repr__(self):
        return (f"CoordinatedSketch(kind={self.kind!r}, kept={len(self.keys)}, k={self.k}, tau={self.tau:.3e}, "
                f"shape={self.shape}, seed={self.seed}, hash_version={self.hash_version})")

    @property
    def inclusion_probabilities(self):
        """``min(1, norms_sq * tau)`` for the kept rows."""
        with np.errstate(invalid="ignore", over="ignore"):
            return np.minimum(1.0, self.norms_sq * self.tau)

    @property
    def stored_numbers(self):
        """Numbers the sketch stores for the estimator: values, column indices, keys and tau."""
        if is_scipy_sparse(self.rows):
            return int(2 * self.rows.nnz + len(self.keys) + 1)
        return int(self.rows.size + len(self.keys) + 1)

    def save(self, path):
        """Write the sketch to a versioned ``.npz`` file (no pickles)."""
        fields = {
            "format": np.array(_SKETCH_FORMAT),
            "format_version": np.array(_SKETCH_FORMAT_VERSION),
            "keys": self.keys,
            "norms_sq": self.norms_sq,
            "tau": np.array(self.tau, dtype=np.float64),
            "kind": np.array(self.kind),
            "seed": np.array(str(self.seed)),
            "shape": np.array(self.shape, dtype=np.int64),
            "k": np.array(self.k, dtype=np.int64),
            "hash_version": np.array(self.hash_version, dtype=np.int64),
            "spare_keys": self.spare_keys,
            "spare_norms_sq": self.spare_norms_sq,
        }
        for prefix, rows in (("rows", self.rows), ("spare_rows", self.spare_rows)):
            if rows is None:
                fields[f"{prefix}_layout"] = np.array("none")
            elif is_scipy_sparse(rows):
                csr = rows.tocsr()
                fields.update({f"{prefix}_layout": np.array("csr"), f"{prefix}_data": csr.data,
                               f"{prefix}_indices": csr.indices, f"{prefix}_indptr": csr.indptr,
                               f"{prefix}_shape": np.array(csr.shape, dtype=np.int64)})
            else:
                fields.update({f"{prefix}_layout": np.array("dense"),
                               f"{prefix}_data": rows.get() if is_cupy(rows) else np.asarray(rows)})
        np.savez(path, **fields)

    @classmethod
    def load(cls, path):
        """Read a sketch written by :meth:`save` (rows come back as NumPy or CSR arrays)."""
        import scipy.sparse as sp

        with np.load(path, allow_pickle=False) as f:
            if "format" not in f or str(f["format"]) != _SKETCH_FORMAT:
                raise ValueError(f"{path} is not a randnla coordinated sketch file")
            version = int(f["format_version"])
            if version != _SKETCH_FORMAT_VERSION:
                raise ValueError(f"{path} has sketch format version {version}; this randnla reads "
                                 f"version {_SKETCH_FORMAT_VERSION}")

            def rows_of(prefix):
                layout = str(f[f"{prefix}_layout"])
                if layout == "none":
                    return None
                if layout == "csr":
                    return sp.csr_array((f[f"{prefix}_data"], f[f"{prefix}_indices"], f[f"{prefix}_indptr"]),
                                        shape=tuple(int(v) for v in f[f"{prefix}_shape"]))
                return np.array(f[f"{prefix}_data"])

            return cls(keys=np.array(f["keys"]), rows=rows_of("rows"), norms_sq=np.array(f["norms_sq"]),
                       tau=float(f["tau"]), kind=str(f["kind"]), seed=int(str(f["seed"])),
                       shape=tuple(int(v) for v in f["shape"]), k=int(f["k"]), hash_version=int(f["hash_version"]),
                       spare_keys=np.array(f["spare_keys"]), spare_rows=rows_of("spare_rows"),
                       spare_norms_sq=np.array(f["spare_norms_sq"]))


def _prepare_rows(A, name="A"):
    """(matrix for gathering, squared row norms in float64, n, d)."""
    if is_cupy(A):
        return _GPU.prepare_rows(A, name)
    if is_scipy_sparse(A):
        csr = A.tocsr()
        if csr.dtype not in (np.float32, np.float64):
            csr = csr.astype(np.float64)
        if not csr.has_canonical_format:
            csr = csr.copy()
            csr.sum_duplicates()
        if csr.nnz and not np.isfinite(csr.data).all():
            raise ValueError(f"{name} contains NaN or infinity")
        fn = getattr(_core, f"row_norms_sq_csr_{_suffix(csr.dtype)}")
        w = fn(csr.data, csr.indptr.astype(np.int64, copy=False), 0)
        return csr, w, csr.shape[0], csr.shape[1]
    A = as_float_array(A, name, ndim=2)
    check_finite(A, name)
    if not (A.flags.c_contiguous or A.flags.f_contiguous):
        A = np.ascontiguousarray(A)
    w = getattr(_core, f"row_norms_sq_dense_{_suffix(A.dtype)}")(A, 0)
    return A, w, A.shape[0], A.shape[1]


def _take_rows(matrix, positions):
    if is_scipy_sparse(matrix):
        return matrix[positions]
    if is_cupy(matrix):
        xp = namespace_of(matrix)
        return matrix[xp.asarray(positions)]
    return matrix[positions]


def _concat_rows(parts):
    if is_scipy_sparse(parts[0]):
        import scipy.sparse as sp

        stacked = sp.vstack(parts, format="csr")
        return sp.csr_array(stacked) if isinstance(parts[0], sp.sparray) else sp.csr_matrix(stacked)
    xp = namespace_of(parts[0])
    return xp.concatenate(parts, axis=0)


def _priority_from(matrix, keys, w, k, seed, shape):
    """The priority sketch of the rows of ``matrix`` (with keys and weights): one code path for
    sampling and merging, so a merged sketch equals the sketch of the concatenation bit for bit."""
    if is_cupy(w):
        # weights on the device: ranks and selection there too; only the k + 1 chosen rows' data comes back
        positions, ranks, w_sel = _GPU.priority_select(seed, keys, w, k + 1)
    else:
        positions, ranks = _core.priority_select(seed, keys, np.ascontiguousarray(w, dtype=np.float64), k + 1, 0)
        w_sel = w[positions]
    n_kept = len(positions)
    if len(positions) <= k:
        tau = math.inf
    else:
        tau = float(ranks[k])
        n_kept = int(np.count_nonzero(ranks[:k] < tau))
    order = np.argsort(keys[positions[:n_kept]], kind="stable")
    kept, kept_w = positions[:n_kept][order], w_sel[:n_kept][order]
    spare, spare_w = positions[n_kept:], w_sel[n_kept:]
    return CoordinatedSketch(
        keys=keys[kept].copy(), rows=_take_rows(matrix, kept), norms_sq=kept_w.copy(), tau=tau, kind="priority",
        seed=seed, shape=shape, k=k, spare_keys=keys[spare].copy(), spare_rows=_take_rows(matrix, spare),
        spare_norms_sq=spare_w.copy(),
    )


def priority_sample(A, k, *, seed, keys=None):
    """Coordinated priority sample of the rows of A (fixed size k).

    Each nonzero row i gets the rank ``h(seed, key_i) / ||a_i||^2`` (:func:`coordination_hash`);
    the sketch keeps the k rows of smallest rank and sets ``tau`` to the (k+1)-st smallest rank
    (not the k-th: that variant is biased). Row i is then kept with probability
    ``min(1, ||a_i||^2 tau)`` given the other ranks, and :func:`estimate_matmul` divides by the
    joint probability ``min(1, ||a_i||^2 tau_A, ||b_i||^2 tau_B)`` of two sketches built apart.

    With ``k = 2 / (delta eps^2) + 1`` the estimate W of A^T B satisfies
    ``||W - A^T B||_F <= eps ||A||_F ||B||_F`` with probability at least ``1 - delta``, using
    O(k s) stored numbers for rows with at most s nonzeros.

    Parameters
    ----------
    A : (n, d) array, SciPy sparse matrix or CuPy array
        Rows to sample (sparse input keeps CSR rows; zero rows are never kept).
    k : int
        Sample size.
    seed : int
        Coordination seed in [0, 2**64), shared by all parties whose sketches will be combined.
    keys : (n,) int64 array, optional
        Distinct join keys of the rows (default: the row index). Sketch a shard of a larger
        matrix by passing its global keys; :func:`merge` then combines the shard sketches.

    Returns
    -------
    CoordinatedSketch

    Examples
    --------
    >>> import numpy as np
    >>> from randnla.sketch import priority_sample, estimate_matmul
    >>> rng = np.random.default_rng(0)
    >>> A, B = rng.standard_normal((1000, 3)), rng.standard_normal((1000, 2))
    >>> sa, sb = priority_sample(A, 200, seed=7), priority_sample(B, 200, seed=7)
    >>> W = estimate_matmul(sa, sb)
    >>> W.shape, len(sa.keys)
    ((3, 2), 200)
    """
    if _backend.is_dask(A):
        return _dask.priority_sample(A, k, seed=seed, keys=keys)
    k = check_int(k, "k", minimum=1)
    seed = _check_seed(seed)
    matrix, w, n, d = _prepare_rows(A)
    keys = _check_keys(keys, n)
    return _priority_from(matrix, keys, w, k, seed, (n, d))


def threshold_sample(A, k, *, seed, keys=None, tau=None):
    """Coordinated threshold sample of the rows of A (expected size k).

    Row i is kept when ``h(seed, key_i) < min(1, tau ||a_i||^2)``, with ``tau`` the water-filling
    constant ``sum_i min(1, tau ||a_i||^2) = k`` (computed exactly by sorting), or the value given.
    Simpler than :func:`priority_sample` but of random size; shards sketched with the same fixed
    ``tau`` merge exactly.

    Parameters
    ----------
    A : (n, d) array, SciPy sparse matrix or CuPy array
    k : int
        Expected sample size (ignored when ``tau`` is given, apart from being recorded).
    seed : int
        Coordination seed.
    keys : (n,) int64 array, optional
        Distinct join keys (default: row index).
    tau : float, optional
        A fixed threshold (needed to merge shard sketches).

    Examples
    --------
    >>> import numpy as np
    >>> from randnla.sketch import threshold_sample
    >>> A = np.random.default_rng(0).standard_normal((500, 4))
    >>> s = threshold_sample(A, 50, seed=1)
    >>> s.kind, 20 < len(s.keys) < 80
    ('threshold', True)
    """
    if _backend.is_dask(A):
        return _dask.threshold_sample(A, k, seed=seed, keys=keys, tau=tau)
    k = check_int(k, "k", minimum=1)
    seed = _check_seed(seed)
    matrix, w, n, d = _prepare_rows(A)
    keys = _check_keys(keys, n)
    if tau is not None:
        tau = check_positive(tau, "tau") if not (isinstance(tau, float) and math.isinf(tau)) else math.inf
    if is_cupy(w):
        tau, kept, w_kept = _GPU.threshold_select(seed, keys, w, k, tau)
    else:
        if tau is None:
            tau = float(_core.threshold_constant(np.ascontiguousarray(w), k))
        h = _core.coordination_hash(seed, keys, 0)
        with np.errstate(over="ignore", invalid="ignore"):
            p = np.where(w > 0, np.minimum(1.0, w * tau), 0.0)
        kept = np.flatnonzero(h < p)
        w_kept = w[kept]
    order = np.argsort(keys[kept], kind="stable")
    kept, w_kept = kept[order], w_kept[order]
    return CoordinatedSketch(keys=keys[kept].copy(), rows=_take_rows(matrix, kept), norms_sq=w_kept.copy(),
                             tau=float(tau), kind="threshold", seed=seed, shape=(n, d), k=k)


def _check_compatible(sketches, what):
    first = sketches[0]
    for s in sketches:
        if not isinstance(s, CoordinatedSketch):
            raise TypeError(f"{what} takes CoordinatedSketch objects, got {type(s).__name__}")
    for s in sketches[1:]:
        if s.hash_version != first.hash_version:
            raise ValueError(f"sketches use different coordination hash versions ({first.hash_version} and "
                             f"{s.hash_version}); rebuild them with one randnla version")
        if s.seed != first.seed:
            raise ValueError(f"sketches were built with different seeds ({first.seed} and {s.seed}); "
                             "coordination needs one shared seed")
        if s.kind != first.kind:
            raise ValueError(f"cannot combine a {first.kind} sketch with a {s.kind} sketch")


def estimate_matmul(sketch_a, sketch_b):
    """Unbiased estimate of A^T B from coordinated sketches of A (n x d) and B (n x m).

    Rows present in both sketches (matched by key) are weighted by the inverse of their joint
    inclusion probability ``min(1, ||a_i||^2 tau_A, ||b_i||^2 tau_B)`` (the hash is shared, so the
    joint probability is the minimum, not the product). Pass the same sketch twice for A^T A.

    Returns
    -------
    (d, m) array (NumPy, or CuPy for CuPy sketches); float32 only when both sketches are float32.

    Raises
    ------
    ValueError
        Different seeds, kinds or hash versions.

    Examples
    --------
    >>> import numpy as np
    >>> from randnla.sketch import priority_sample, estimate_matmul
    >>> A = np.random.default_rng(0).standard_normal((50, 2))
    >>> s = priority_sample(A, 60, seed=3)          # k >= n: every row is kept
    >>> bool(np.allclose(estimate_matmul(s, s), A.T @ A))
    True
    """
    _check_compatible([sketch_a, sketch_b], "estimate_matmul")
    common, ia, ib = np.intersect1d(sketch_a.keys, sketch_b.keys, assume_unique=True, return_indices=True)
    with np.errstate(over="ignore", invalid="ignore"):
        p = np.minimum(1.0, np.minimum(sketch_a.norms_sq[ia] * sketch_a.tau, sketch_b.norms_sq[ib] * sketch_b.tau))
    ra, rb = sketch_a.rows, sketch_b.rows
    dtype = _promote(ra.dtype, rb.dtype)
    d, m = sketch_a.shape[1], sketch_b.shape[1]
    if is_cupy(ra) or is_cupy(rb):
        return _GPU.estimate(ra, rb, ia, ib, p, dtype)
    if len(common) == 0:
        return np.zeros((d, m), dtype=dtype)
    a_rows, b_rows = _take_rows(ra, ia), _take_rows(rb, ib)
    inv = 1.0 / p
    if is_scipy_sparse(a_rows):
        import scipy.sparse as sp

        a_scaled = sp.csr_matrix(a_rows, dtype=np.float64).multiply(inv[:, None]).tocsr()
    else:
        a_scaled = np.asarray(a_rows, dtype=np.float64) * inv[:, None]
    b64 = _csr64(b_rows) if is_scipy_sparse(b_rows) else np.asarray(b_rows, dtype=np.float64)
    product = a_scaled.T @ b64
    if is_scipy_sparse(product):
        product = product.toarray()
    return np.asarray(product, dtype=dtype)


def _csr64(rows):
    import scipy.sparse as sp

    return sp.csr_matrix(rows, dtype=np.float64)


def merge(sketches, k=None):
    """Combine sketches of row-disjoint shards into the sketch of the stacked matrix.

    Priority sketches: the result equals, exactly, ``priority_sample`` of the concatenated rows
    (with their keys) at sample size ``k`` (default: the smallest k of the inputs; a larger k
    cannot be recovered). Merging is associative, so shards can be combined in any tree order
    (e.g. per chunk of a distributed array). Threshold sketches merge when they share ``tau``.

    Raises
    ------
    ValueError
        Different seeds, kinds, hash versions, column counts or storage layouts; overlapping keys;
        a ``k`` larger than a shard's; threshold sketches with different ``tau``.

    Examples
    --------
    >>> import numpy as np
    >>> from randnla.sketch import priority_sample, merge
    >>> A = np.random.default_rng(0).standard_normal((100, 3))
    >>> keys = np.arange(100)
    >>> parts = [priority_sample(A[:60], 10, seed=5, keys=keys[:60]),
    ...          priority_sample(A[60:], 10, seed=5, keys=keys[60:])]
    >>> whole = priority_sample(A, 10, seed=5)
    >>> bool(np.array_equal(merge(parts).keys, whole.keys))
    True
    """
    sketches = list(sketches)
    if not sketches:
        raise ValueError("merge needs at least one sketch")
    _check_compatible(sketches, "merge")
    first = sketches[0]
    d = first.shape[1]
    sparse = is_scipy_sparse(first.rows)
    for s in sketches:
        if s.shape[1] != d:
            raise ValueError(f"sketches have different column counts ({d} and {s.shape[1]})")
        if is_scipy_sparse(s.rows) != sparse or is_cupy(s.rows) != is_cupy(first.rows):
            raise ValueError("sketches store rows in different layouts (dense/CSR/GPU); convert them first")
    n_total = sum(s.shape[0] for s in sketches)
    all_keys = np.concatenate([np.concatenate([s.keys, s.spare_keys]) for s in sketches]).astype(np.int64)
    if np.unique(all_keys).size != all_keys.size:
        raise ValueError("sketches share keys: merge combines sketches of row-disjoint shards")
    all_w = np.concatenate([np.concatenate([s.norms_sq, s.spare_norms_sq]) for s in sketches])
    row_parts = []
    for s in sketches:
        row_parts.append(s.rows)
        if s.spare_rows is not None and len(s.spare_keys):
            row_parts.append(s.spare_rows)
    matrix = _concat_rows(row_parts)
    if first.kind == "priority":
        smallest = min(s.k for s in sketches)
        k = smallest if k is None else check_int(k, "k", minimum=1)
        if k > smallest:
            raise ValueError(f"k = {k} exceeds a shard's sample size {smallest}; a merge can only shrink k")
        return _priority_from(matrix, all_keys, all_w, k, first.seed, (n_total, d))
    taus = {s.tau for s in sketches}
    if len(taus) != 1:
        raise ValueError("threshold sketches merge only when built with the same fixed tau "
                         "(pass tau= to threshold_sample)")
    order = np.argsort(all_keys, kind="stable")
    return CoordinatedSketch(keys=all_keys[order], rows=_take_rows(matrix, order), norms_sq=all_w[order],
                             tau=first.tau, kind="threshold", seed=first.seed, shape=(n_total, d),
                             k=sum(s.k for s in sketches) if k is None else check_int(k, "k", minimum=1))


# ---------------------------------------------------------------------------------------------
# Least squares
# ---------------------------------------------------------------------------------------------


def gaussian_rows_for_linf(d, eps, delta):
    """Smallest m with m >= 2 d ln(4d/delta) / eps^2 / (1 - sqrt(d/m) - sqrt(2 ln(4/delta)/m))^2.

    The number of Gaussian sketch rows for which ``||x' - x*||_inf <= eps ||A x* - b|| ||A^+|| / sqrt(d)``
    holds with probability ``1 - delta`` (x' is Gaussian given S A, with covariance bounded through
    sigma_min(S U); a union bound over the d coordinates).
    """
    base = 2.0 * d * math.log(4.0 * d / delta) / eps**2
    tail = 2.0 * math.log(4.0 / delta)

    def ok(m):
        gap = 1.0 - math.sqrt(d / m) - math.sqrt(tail / m)
        return gap > 0 and m * gap**2 >= base

    lo, hi = d + 1, max(d + 2, int(base) + 1)
    while not ok(hi):
        hi *= 2
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


@dataclass
class SketchedLstsqResult:
    """Result of :func:`sketched_lstsq`.

    Attributes
    ----------
    x : array
        The sketched solution argmin ||S A x - S b||.
    m : int
        Sketch rows used.
    kind : str
        Sketch used (``"gaussian"`` or ``"srht"``).
    stderr : array
        Per-coordinate standard error ``sigma_hat * ||row i of R^{-1}||`` (S A = Q R,
        ``sigma_hat^2 = ||S A x - S b||^2 / (m - d)``): exact for the Gaussian sketch, where the
        sketched problem is a Gaussian linear model given S A.
    error_bar : array
        ``t * stderr`` with t the Student quantile at ``1 - delta / (2 d)``: simultaneous
        (Bonferroni) bars at level ``delta``.
    residual_norm : float
        ``||S A x - S b||``, an estimate of ``||A x* - b||``.
    """

    x: object
    m: int
    kind: str
    stderr: object
    error_bar: object
    residual_norm: float


def _as_matrix_input(A, name="A", *, finite_check=True):
    """``finite_check=False`` leaves the NaN/inf check to the caller (see :func:`_check_sketch_finite`)."""
    if is_scipy_sparse(A) or is_linear_operator(A):
        if len(A.shape) != 2:
            raise ValueError(f"{name} must be 2-dimensional")
        return A
    A = as_float_array(A, name, ndim=2)
    if finite_check:
        check_finite(A, name)
    return A


def _check_sketch_finite(SA, A, name="A"):
    """Every row of A reaches the sketch S A with a nonzero weight in each sketch kind here (sparse
    sign columns have nonzeros, Gaussian entries are nonzero, SRHT mixes every row into every
    sampled row), so a NaN or inf in A makes S A non-finite: checking the small S A replaces a full
    pass over A. Only when S A is not finite is A itself checked, for the precise message."""
    if bool(np.isfinite(SA).all()):
        return
    check_finite(A, name)
    raise ValueError(f"the sketch of {name} overflowed: {name} has entries too large to sketch in its dtype; "
                     "rescale it")


def _rhs(b, n, xp):
    b = as_float_array(b, "b", xp=xp)
    if b.ndim != 1 or b.shape[0] != n:
        raise ValueError(f"b must be a vector of length {n}, got shape {tuple(b.shape)}")
    check_finite(b, "b")
    return b


def _linf_sketch_rows(n, d, m, eps, delta, kind):
    """Validated (m, delta) for sketched_lstsq: the rows the l-infinity guarantee needs (shared with Dask)."""
    delta = check_positive(delta, "delta")
    if delta >= 1:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    if m is not None and eps is not None:
        raise ValueError("give m or eps, not both")
    big_n = _next_pow2(n)
    if m is None:
        eps = 0.5 if eps is None else check_positive(eps, "eps")
        if kind == "gaussian":
            m = gaussian_rows_for_linf(d, eps, delta)
        else:
            m = min(max(math.ceil(4 * d * math.log(4 * d / delta) / eps**2), 16 * d), big_n)
    else:
        m = check_int(m, "m", minimum=d + 1)
    if kind == "srht" and m > big_n:
        raise ValueError(f"srht needs m <= N = {big_n}, got m = {m}")
    if m <= d:
        raise ValueError(f"the sketch needs more rows than A has columns (m = {m}, d = {d}); take a smaller eps or "
                         "a larger m")
    return m, delta


def sketched_lstsq(A, b, *, m=None, eps=None, delta=0.01, kind="gaussian", rng=None, n_threads=None):
    """Sketched least squares with a per-coordinate (l-infinity) error guarantee.

    Solves ``min ||S A x - S b||`` by Householder QR of S A, for a dense sketch S, and returns
    error bars for every coordinate of x. With the Gaussian sketch (the default and the mode with a
    guarantee) and ``m = gaussian_rows_for_linf(d, eps, delta)`` rows,
    ``||x - x*||_inf <= eps ||A x* - b|| ||A^+|| / sqrt(d)`` with probability ``1 - delta``.
    The SRHT is the fast mode (O(n d log n)); its l-infinity behaviour is empirical (matching the
    Gaussian from about 16 d rows), so its default m adds a safety factor:
    ``ceil(4 d ln(4d/delta) / eps^2)`` clamped to [16 d, N].

    Sparse sketches (CountSketch, sparse sign) are refused: a residual concentrated on one row
    lands in one or a few sketch rows, and when those rows also hold a high-leverage row of A the
    error of one coordinate becomes a constant fraction of ||A x* - b|| ||A^+||, so no l-infinity
    bound of this form holds for them. The Rademacher sketch is refused too (the Gaussian
    independence argument behind the guarantee and the error bars does not apply).

    Parameters
    ----------
    A : (n, d) array, SciPy sparse matrix, LinearOperator or CuPy array
    b : (n,) array
    m : int, optional
        Sketch rows (give m or eps, not both). Must exceed d.
    eps : float, optional
        Target l-infinity accuracy in the units above (default 0.5 when m is not given).
    delta : float
        Failure probability used for the default m and the error bars.
    kind : {"gaussian", "srht"}
    rng : None, int, SeedSequence, BitGenerator or Generator

    Returns
    -------
    SketchedLstsqResult

    Examples
    --------
    >>> import numpy as np
    >>> from randnla.sketch import sketched_lstsq
    >>> rng = np.random.default_rng(0)
    >>> A = rng.standard_normal((2000, 5)); b = A @ np.ones(5) + 0.1 * rng.standard_normal(2000)
    >>> res = sketched_lstsq(A, b, eps=1.0, rng=0)
    >>> bool(np.all(np.abs(res.x - 1) < 5 * res.stderr + 0.05)), res.m > 5
    (True, True)
    """
    if _backend.is_dask(A):
        return _dask.sketched_lstsq(A, b, m=m, eps=eps, delta=delta, kind=kind, rng=rng, n_threads=n_threads)
    if kind in _SPARSE_KINDS:
        raise ValueError(
            f"kind={kind!r} cannot give an l-infinity guarantee: a sparse sketch maps a residual concentrated "
            "on one row into one (or a few) sketch rows, and when such a row also holds a high-leverage row of A "
            "the error of that coordinate is a constant fraction of ||Ax*-b|| ||A^+||. Use kind='gaussian' "
            "(guaranteed) or kind='srht' (fast)."
        )
    if kind == "rademacher":
        raise ValueError("kind='rademacher' is not offered for l-infinity regression: the guarantee and the error "
                         "bars rely on Gaussian entries; use kind='gaussian' or kind='srht'")
    check_choice(kind, "kind", ("gaussian", "srht"))
    A = _as_matrix_input(A)
    n, d = A.shape
    xp = namespace_of(A)
    b = _rhs(b, n, xp)
    m, delta = _linf_sketch_rows(n, d, m, eps, delta, kind)
    dtype = _promote(np.dtype(A.dtype) if A.dtype is not None else np.float64, b.dtype)
    S = (gaussian if kind == "gaussian" else srht)(m, n, rng=rng, dtype=dtype, n_threads=n_threads)
    if isinstance(A, np.ndarray) or is_cupy(A):
        both = S @ xp.concatenate([A.astype(dtype, copy=False), b.astype(dtype, copy=False)[:, None]], axis=1)
        SA, Sb = both[:, :d], both[:, d]
    else:
        SA, Sb = S @ A, S @ b
    x, stderr, resid = _solve_sketched(SA, Sb, m, d)
    from scipy.special import stdtrit

    t = float(stdtrit(m - d, 1.0 - delta / (2.0 * d)))
    return SketchedLstsqResult(x=x, m=int(m), kind=kind, stderr=stderr, error_bar=t * stderr,
                               residual_norm=resid)


def _solve_sketched(SA, Sb, m, d):
    """x = argmin ||SA x - Sb|| by Householder QR, the OLS standard errors and the residual norm."""
    if is_cupy(SA):
        return _GPU.solve_sketched(SA, Sb, m, d)
    import scipy.linalg as la

    q, r = la.qr(SA, mode="economic")
    diag = np.abs(np.diag(r))
    if diag.size == 0 or diag.min() <= diag.max() * np.finfo(SA.dtype).eps * max(SA.shape):
        raise ValueError("S A is rank deficient: A does not have full column rank (or m is too small)")
    x = la.solve_triangular(r, q.T @ Sb)
    resid = float(np.linalg.norm(SA @ x - Sb))
    r_inv = la.solve_triangular(r, np.eye(d, dtype=r.dtype))
    sigma = resid / math.sqrt(m - d)
    stderr = sigma * np.linalg.norm(r_inv, axis=1)
    return x, stderr.astype(SA.dtype), resid


def _cg_normal_one_pass(A, b, r, y, tol, max_iter, n_threads=0):
    """Conjugate gradients on (A R^-1)^T (A R^-1) y = (A R^-1)^T b for a dense C-contiguous float64 A.

    Each iteration reads A once (``_core.normal_pass``: every row gives q_i = a_i . t and, while
    still in cache, adds q_i a_i to A^T q; fixed row chunks summed in order, so the result does not
    depend on the thread count). The gradient s = R^-T A^T r and ||r||^2 are updated by recurrences
    (||r_new||^2 = ||r||^2 - alpha gamma), which is accurate because A R^-1 is well conditioned.
    Stops when ||s|| <= tol ||r|| (||A R^-1|| is close to 1) and returns (y, iterations, converged).
    """
    import scipy.linalg as la

    x = la.solve_triangular(r, y, check_finite=False)
    g, r_norm_sq = _core.normal_pass(A, x, b, n_threads)
    s = la.solve_triangular(r, g, trans="T", check_finite=False)
    gamma = float(s @ s)
    p = s.copy()
    for iteration in range(1, max_iter + 1):
        if math.sqrt(gamma) <= tol * math.sqrt(max(r_norm_sq, 0.0)) or gamma == 0.0:
            return y, iteration - 1, True
        t = la.solve_triangular(r, p, check_finite=False)
        u, qq = _core.normal_pass(A, t, None, n_threads)
        if qq == 0.0:
            return y, iteration, True
        alpha = gamma / qq
        y = y + alpha * p
        s = s - alpha * la.solve_triangular(r, u, trans="T", check_finite=False)
        r_norm_sq -= alpha * gamma
        gamma_new = float(s @ s)
        p = s + (gamma_new / gamma) * p
        gamma = gamma_new
    return y, max_iter, math.sqrt(gamma) <= tol * math.sqrt(max(r_norm_sq, 0.0))


def _cg_refined(A, b, r, y, tol, max_iter, n_threads=0):
    """Iterative refinement with float32 inner iterations for a dense C-contiguous float64 A.

    Outer steps compute the true gradient s = R^-T A^T (b - A x) and ||b - A x||^2 in float64 (one
    pass; the first also writes A rounded to float32). Each inner solve runs conjugate gradients
    on (A32 R^-1)^T (A32 R^-1) dy = s, reading the float32 copy (half the bytes of a float64 pass,
    accumulated in double) until the inner gradient falls below 1e-6 ||s|| (about the accuracy
    the rounding of A to float32 allows) or the final tolerance; then y += dy. Each outer step thus
    gains about six digits; when one gains fewer than three (A so ill-conditioned that A32 R^-1 is
    far from A R^-1), the iteration continues in float64 (:func:`_cg_normal_one_pass`).
    Stops when ||s|| <= tol ||b - A x||; returns (y, iterations, converged, ||b - A x||) with
    iterations = float32 inner iterations + float64 passes.
    """
    import scipy.linalg as la

    n, d = A.shape
    a32 = np.empty((n, d), dtype=np.float32)
    x = la.solve_triangular(r, y, check_finite=False)
    g, rr = _core.normal_pass(A, x, b, n_threads, a32)
    s = la.solve_triangular(r, g, trans="T", check_finite=False)
    s_norm = math.sqrt(float(s @ s))
    iterations = 0
    previous = None
    while True:
        r_norm = math.sqrt(max(rr, 0.0))
        if s_norm <= tol * r_norm or s_norm == 0.0:
            return y, iterations, True, r_norm
        # written so that a NaN (float32 overflow in the copy of A) also counts as no progress
        stalled = previous is not None and not s_norm <= 1e-3 * previous[0]
        if stalled and not s_norm <= previous[0]:
            y = previous[1]  # the refinement step made things worse: undo it
        if iterations >= max_iter:
            if stalled:
                return y, iterations, False, None
            return y, iterations, False, r_norm
        if stalled:
            y, more, converged = _cg_normal_one_pass(A, b, r, y, tol, max_iter - iterations, n_threads)
            return y, iterations + more, converged, None
        target = max(1e-6 * s_norm, 0.5 * tol * r_norm)
        dy = np.zeros(d)
        s_in, p = s.copy(), s.copy()
        gamma = s_norm * s_norm
        while math.sqrt(gamma) > target and iterations < max_iter:
            t = la.solve_triangular(r, p, check_finite=False)
            u, qq = _core.normal_pass(a32, t, None, n_threads)
            iterations += 1
            if not 0.0 < qq < math.inf:
                break
            alpha = gamma / qq
            dy += alpha * p
            s_in -= alpha * la.solve_triangular(r, u, trans="T", check_finite=False)
            gamma_new = float(s_in @ s_in)
            p = s_in + (gamma_new / gamma) * p
            gamma = gamma_new
        previous = (s_norm, y)
        y = y + dy
        x = la.solve_triangular(r, y, check_finite=False)
        g, rr = _core.normal_pass(A, x, b, n_threads)
        iterations += 1
        s = la.solve_triangular(r, g, trans="T", check_finite=False)
        s_norm = math.sqrt(float(s @ s))


@dataclass
class LstsqResult:
    """Result of :func:`lstsq`.

    Attributes
    ----------
    x : array
        The least-squares solution.
    residual_norm : float
        ``||A x - b||``.
    n_iter : int
        Iterations on the preconditioned problem (one pass over A each for dense NumPy A:
        conjugate gradients on the preconditioned normal equations, counting the float32 inner
        passes and the float64 gradient passes; LSQR otherwise).
    converged : bool
        Whether the iteration met ``tol``.
    sketch_rows : int
        Rows of the sketch whose QR gave the preconditioner.
    """

    x: object
    residual_norm: float
    n_iter: int
    converged: bool
    sketch_rows: int


def lstsq(A, b, *, rng=None, tol=None, sketch="sparse_sign", oversampling=10, max_iter=None, n_threads=None):
    """Least squares to full accuracy for tall A by sketch-and-precondition (Blendenpik/LSRN).

    A sketch S A (m = ``oversampling`` * d rows) is factored by Householder QR, S A = Q R; then
    ``min ||A R^{-1} y - b||`` is solved iteratively from the sketched solution, and x = R^{-1} y.
    Since A R^{-1} has a condition number close to (1 + sqrt(d/m)) / (1 - sqrt(d/m)) whatever the
    conditioning of A, the iteration count depends only on ``tol``. For a dense NumPy A the
    iteration is conjugate gradients on the preconditioned normal equations with one pass over A
    per iteration (safe here because A R^{-1} is well conditioned), run as iterative refinement:
    float64 passes give the true gradient, and the inner iterations read a float32 copy of A
    (n d / 2 extra float64 words of memory; half the bytes per pass), falling back to float64
    passes when A is too ill-conditioned for float32 rows to help. For sparse matrices and
    LinearOperators it is LSQR, which touches A only through products.

    Computed in float64 (float32 input is promoted; x is returned in the input's dtype).

    Parameters
    ----------
    A : (n, d) array, SciPy sparse matrix, LinearOperator or CuPy array, n >= d, full column rank
    b : (n,) array
    rng : None, int, SeedSequence, BitGenerator or Generator
    tol : float, optional
        Stop when the preconditioned gradient is below ``tol`` times the residual norm (LSQR:
        ``atol = btol = tol``); default 1e-14, the accuracy of ``numpy.linalg.lstsq``.
    sketch : {"sparse_sign", "srht", "gaussian"}
    oversampling : float
        m = ceil(oversampling * d), at most n.
    max_iter : int, optional
        Iteration limit (default 200 + 2 d; a few dozen iterations are typical).

    Returns
    -------
    LstsqResult

    Examples
    --------
    >>> import numpy as np
    >>> from randnla.sketch import lstsq
    >>> rng = np.random.default_rng(0)
    >>> A = rng.standard_normal((3000, 20)); b = rng.standard_normal(3000)
    >>> res = lstsq(A, b, rng=0)
    >>> bool(np.allclose(res.x, np.linalg.lstsq(A, b, rcond=None)[0], atol=1e-10)), res.converged
    (True, True)
    """
    if _backend.is_dask(A):
        return _dask.lstsq(A, b, rng=rng, tol=tol, sketch=sketch, oversampling=oversampling,
                           max_iter=max_iter, n_threads=n_threads)
    check_choice(sketch, "sketch", ("sparse_sign", "srht", "gaussian"))
    A = _as_matrix_input(A, finite_check=is_cupy(A))  # NumPy: checked through its sketch below
    n, d = A.shape
    if n < d:
        raise ValueError(f"lstsq is for tall A (n >= d), got shape {(n, d)}")
    xp = namespace_of(A)
    b = _rhs(b, n, xp)
    out_dtype = _promote(np.dtype(A.dtype) if A.dtype is not None else np.float64, b.dtype)
    tol = 1e-14 if tol is None else check_positive(tol, "tol")
    oversampling = check_positive(oversampling, "oversampling")
    m = min(n, max(d + 1, math.ceil(oversampling * d)))
    if sketch == "srht":
        m = min(m, _next_pow2(n))
    max_iter = 200 + 2 * d if max_iter is None else check_int(max_iter, "max_iter", minimum=1)
    if is_cupy(A):
        return _GPU.lstsq(A, b, m, sketch, rng, tol, max_iter, out_dtype)
    if not is_linear_operator(A) and A.dtype != np.float64:
        A = A.astype(np.float64)
    b64 = np.asarray(b, dtype=np.float64)
    if sketch == "sparse_sign":
        # four nonzeros per column: at m = 10 d, A R^-1 is about as well conditioned as with eight
        # (the same iteration count on incoherent A, a few more on strongly coherent A; measured)
        # for half the cost of S A
        S = sparse_sign(m, n, nnz_per_column=min(4, m), rng=rng, n_threads=n_threads)
    else:
        S = (srht if sketch == "srht" else gaussian)(m, n, rng=rng, n_threads=n_threads)
    import scipy.linalg as la
    from scipy.sparse.linalg import LinearOperator, lsqr

    if sketch == "sparse_sign" and isinstance(A, np.ndarray) and A.flags.c_contiguous:
        # S [A, b] in one sweep over A (the pattern of S generated once)
        s_nnz, _ = S._sparse_spec()
        sab = _core.sparse_sketch_stacked(S.key, m, s_nnz, A, b64, S.n_threads)
        _check_sketch_finite(sab[:, :d], A)
    else:
        SA = np.asarray(S @ A, dtype=np.float64)
        if not (is_scipy_sparse(A) or is_linear_operator(A)):
            _check_sketch_finite(SA, A)
        sab = np.column_stack([SA, np.asarray(S @ b64, dtype=np.float64)])
    # R of [S A, S b]: its top-left block is R of S A and its last column holds Q^T S b, the
    # sketched solution's right-hand side (no explicit Q). geqrt factors each block of 64 columns
    # by recursive halving (level-3 BLAS): far fewer BLAS calls, hence thread synchronisations,
    # than geqrf's column-by-column panels, for about the same flops (measured several times
    # faster than geqrf when the cores are shared with other work, at 2000 x 201 and 5000 x 501).
    from scipy.linalg import lapack

    r_aug = lapack.dgeqrt(min(m, d + 1, 64), np.asfortranarray(sab), overwrite_a=True)[0]
    r, y0 = np.triu(r_aug[:d, :d]), r_aug[:d, d].copy()
    diag = np.abs(np.diag(r))
    if diag.min() <= diag.max() * 1e-15 * max(m, d):
        raise ValueError("A is rank deficient (its sketch has a zero pivot); lstsq needs full column rank")
    if is_linear_operator(A):
        mv, rmv = A.matvec, A.rmatvec
    else:
        At = A.T
        mv, rmv = (lambda v: A @ v), (lambda u: At @ u)

    def matvec(y):
        return mv(la.solve_triangular(r, y))

    def rmatvec(u):
        return la.solve_triangular(r, np.asarray(rmv(u), dtype=np.float64), trans="T")

    residual_norm = None
    if isinstance(A, np.ndarray) and A.flags.c_contiguous:
        y, n_iter, converged, residual_norm = _cg_refined(A, b64, r, y0, tol, max_iter, check_n_threads(n_threads))
        istop = 1 if converged else 7
    else:
        preconditioned = LinearOperator((n, d), matvec=matvec, rmatvec=rmatvec, dtype=np.float64)
        residual0 = b64 - matvec(y0)
        result = lsqr(preconditioned, residual0, atol=tol, btol=tol, iter_lim=max_iter)
        y = y0 + result[0]
        istop, n_iter = int(result[1]), int(result[2])
        converged = istop in (0, 1, 2, 4, 5) and n_iter < max_iter
    x = la.solve_triangular(r, y)
    if residual_norm is None:
        residual_norm = float(np.linalg.norm(b64 - np.asarray(mv(x))))
    if not converged:
        warnings.warn(f"lstsq: LSQR stopped after {n_iter} iterations without reaching tol={tol:g} "
                      f"(istop={istop})", RuntimeWarning, stacklevel=2)
    return LstsqResult(x=x.astype(out_dtype), residual_norm=residual_norm, n_iter=n_iter, converged=converged,
                       sketch_rows=int(m))


# ---------------------------------------------------------------------------------------------
# CuPy path: the same operators and samplers on the device (CuPy imported only when used)
# ---------------------------------------------------------------------------------------------


class _GPU:
    """Device implementations. Dense blocks and the coordination hash come from the kernels in
    ``cpp/cuda/sketch_ops.cu`` (same Philox functions as the host, so the same bits); SRHT uses a
    batched in-place Walsh-Hadamard transform written with CuPy array operations; the sparse
    operators become a cuSPARSE CSR matrix built from the column hashes. Coordinated sampling
    computes row norms, hashes, ranks, the top-k partition and the water-filling constant on the
    device (kernels with the host's order of operations, so the selection is the host's)."""

    @staticmethod
    def _cp():
        from randnla import _gpu

        return _gpu.cupy()

    @staticmethod
    def dense_block(op, row0, row1, col0, col1, dtype):
        from randnla import _gpu

        cp = _GPU._cp()
        out = cp.empty((row1 - row0, col1 - col0), dtype=dtype)
        kernel = _gpu.get_kernel("sketch_ops.cu", f"sketch_dense_block_{_suffix(dtype)}")
        args = (np.uint64(op.key[0]), np.uint64(op.key[1]), np.int32(_DENSE_KINDS[op.kind]), np.int64(row0),
                np.int64(row1), np.int64(col0), np.int64(col1), np.float64(1.0 / math.sqrt(op.shape[0])), out)
        _gpu.launch_1d(kernel, out.size, args)
        return out

    @staticmethod
    def srht_parts(op, dtype):
        from randnla import _gpu

        cp = _GPU._cp()
        n = op.shape[1]
        signs = cp.empty(n, dtype=cp.int8)
        kernel = _gpu.get_kernel("sketch_ops.cu", "sketch_srht_signs")
        _gpu.launch_1d(kernel, n, (np.uint64(op.key[0]), np.uint64(op.key[1]), np.int64(n), signs))
        rows = cp.asarray(op._srht_rows())  # m indices (small)
        return signs.astype(dtype), rows

    @staticmethod
    def fwht(x):
        """In-place unnormalised Walsh-Hadamard transform along axis 0 of an (N, k) array."""
        big_n, k = x.shape
        h = 1
        while h < big_n:
            view = x.reshape(big_n // (2 * h), 2, h, k)
            a = view[:, 0].copy()
            b = view[:, 1]
            view[:, 0] += b
            view[:, 1] = a - b
            h *= 2
        return x

    @staticmethod
    def sparse_matrix(op, dtype):
        import cupyx.scipy.sparse as csp

        cp = _GPU._cp()
        m, n = op.shape
        rows, signs = op._sparse_columns(0, n)  # n * s column hashes, generated by the C++ core
        s = rows.shape[1]
        data = cp.asarray(signs.ravel().astype(dtype) * dtype.type(op._sparse_scale()))
        return csp.csc_matrix((data, cp.asarray(rows.ravel().astype(np.int32)), cp.arange(0, n * s + 1, s,
                                                                                          dtype=cp.int32)),
                              shape=(m, n)).tocsr()

    @staticmethod
    def apply_left(op, a):
        cp = _GPU._cp()
        m, n = op.shape
        dtype = _promote(op.dtype, a.dtype)
        if op.kind in _SPARSE_KINDS:
            out = _GPU.sparse_matrix(op, dtype) @ a.astype(dtype)
            return out.toarray() if hasattr(out, "toarray") else out
        if hasattr(a, "toarray"):  # cupyx sparse input of a dense operator
            a = a.toarray()
        a = a.astype(dtype, copy=False)
        if op.kind in _DENSE_KINDS:
            step = max(256, (1 << 22) // max(m, 1))
            out = cp.zeros((m, a.shape[1]), dtype=dtype)
            for o in range(0, n, step):
                stop = min(n, o + step)
                out += _GPU.dense_block(op, 0, m, o, stop, dtype) @ a[o:stop]
            return out
        signs, rows = _GPU.srht_parts(op, dtype)
        x = cp.zeros((_next_pow2(n), a.shape[1]), dtype=dtype)
        x[:n] = a * signs[:, None]
        _GPU.fwht(x)
        return x[rows] * dtype.type(1.0 / math.sqrt(m))

    @staticmethod
    def apply_transpose(op, y):
        cp = _GPU._cp()
        m, n = op.shape
        dtype = _promote(op.dtype, y.dtype)
        if hasattr(y, "toarray"):
            y = y.toarray()
        y = y.astype(dtype, copy=False)
        if op.kind in _SPARSE_KINDS:
            return _GPU.sparse_matrix(op, dtype).T @ y
        if op.kind in _DENSE_KINDS:
            step = max(256, (1 << 22) // max(m, 1))
            out = cp.empty((n, y.shape[1]), dtype=dtype)
            for o in range(0, n, step):
                stop = min(n, o + step)
                out[o:stop] = _GPU.dense_block(op, 0, m, o, stop, dtype).T @ y
            return out
        signs, rows = _GPU.srht_parts(op, dtype)
        x = cp.zeros((_next_pow2(n), y.shape[1]), dtype=dtype)
        x[rows] = y
        _GPU.fwht(x)
        return x[:n] * signs[:, None] * dtype.type(1.0 / math.sqrt(m))

    @staticmethod
    def coordination_hash(keys, seed):
        from randnla import _gpu

        cp = _GPU._cp()
        keys = cp.ascontiguousarray(cp.asarray(keys, dtype=cp.int64))
        out = cp.empty(keys.size, dtype=cp.float64)
        kernel = _gpu.get_kernel("sketch_ops.cu", "sketch_coordination_hash")
        _gpu.launch_1d(kernel, keys.size, (np.uint64(seed), keys, np.int64(keys.size), out))
        return out

    @staticmethod
    def prepare_rows(A, name):
        """Row norms on the device (float64, kept there: the hash, the ranks and the selection run
        on the device too, and only the selected rows' keys, ranks and weights come to the host)."""
        from randnla import _gpu

        cp = _GPU._cp()
        if hasattr(A, "tocsr"):
            csr = A.tocsr()
            if csr.dtype not in (np.float32, np.float64):
                csr = csr.astype(np.float64)
            if not csr.has_canonical_format:
                csr = csr.copy()
                csr.sum_duplicates()
            if csr.nnz and not bool(cp.isfinite(csr.data).all()):
                raise ValueError(f"{name} contains NaN or infinity")
            n = csr.shape[0]
            w = cp.empty(n, dtype=cp.float64)
            kernel = _gpu.get_kernel("sketch_ops.cu", f"sketch_row_norms_sq_csr_{_suffix(csr.dtype)}")
            _gpu.launch_1d(kernel, n, (cp.ascontiguousarray(csr.data), csr.indptr.astype(cp.int64), np.int64(n), w))
            return csr, w, csr.shape[0], csr.shape[1]
        A = as_float_array(A, name, ndim=2)
        check_finite(A, name)
        if not (A.flags.c_contiguous or A.flags.f_contiguous):
            A = cp.ascontiguousarray(A)
        n, d = A.shape
        rs, cs = (d, 1) if A.flags.c_contiguous else (1, n)
        w = cp.empty(n, dtype=cp.float64)
        kernel = _gpu.get_kernel("sketch_ops.cu", f"sketch_row_norms_sq_dense_{_suffix(A.dtype)}")
        _gpu.launch_1d(kernel, n, (A, np.int64(n), np.int64(d), np.int64(rs), np.int64(cs), w))
        return A, w, n, d

    @staticmethod
    def _device_keys(keys):
        cp = _GPU._cp()
        n = keys.size
        # default keys are the row indices: generate them on the device instead of copying
        if n and keys[0] == 0 and keys[-1] == n - 1 and bool(np.all(np.diff(keys) == 1)):
            return cp.arange(n, dtype=cp.int64)
        return cp.asarray(keys)

    @staticmethod
    def priority_select(seed, keys, w, count):
        """The host's priority_select on device weights: (positions, ranks, weights) of the (up to)
        ``count`` smallest ranks ordered by (rank, key), as host arrays.

        The ranks are computed on the device by the host's expression; a device partition finds
        the count-th smallest rank, and only the rows at or below it (count of them, more only on
        exact ties) come to the host to be put in (rank, key) order."""
        from randnla import _gpu

        cp = _GPU._cp()
        n = w.size
        ranks = cp.empty(n, dtype=cp.float64)
        kernel = _gpu.get_kernel("sketch_ops.cu", "sketch_priority_ranks")
        _gpu.launch_1d(kernel, n, (np.uint64(seed), _GPU._device_keys(keys), w, np.int64(n), ranks))
        positive = w > 0
        take = min(count, int(cp.count_nonzero(positive)))
        if take == 0:
            return np.empty(0, np.int64), np.empty(0), np.empty(0)
        kth = cp.partition(ranks, take - 1)[take - 1]
        candidates = cp.flatnonzero((ranks <= kth) & positive)
        positions = cp.asnumpy(candidates).astype(np.int64)
        cand_ranks = cp.asnumpy(ranks[candidates])
        order = np.lexsort((keys[positions], cand_ranks))[:take]
        positions = positions[order]
        return positions, cand_ranks[order], cp.asnumpy(w[cp.asarray(positions)])

    @staticmethod
    def threshold_select(seed, keys, w, k, tau):
        """Threshold sampling on device weights: (tau, kept positions, their weights) on the host.
        tau (when not given) is the host's water-filling constant, computed on the device from the
        sorted weights with the host's order of additions."""
        from randnla import _gpu

        cp = _GPU._cp()
        if tau is None:
            nonzero = w[w > 0]
            count = int(nonzero.size)
            if count <= k:
                tau = math.inf
            else:
                ordered = cp.ascontiguousarray(cp.sort(nonzero)[::-1])
                suffix = cp.empty(k + 1, dtype=cp.float64)
                out = cp.empty(1, dtype=cp.float64)
                kernel = _gpu.get_kernel("sketch_ops.cu", "sketch_threshold_constant")
                kernel((1,), (1,), (ordered, np.int64(count), np.int64(k), suffix, out))
                tau = float(out[0])
        h = _GPU.coordination_hash(_GPU._device_keys(keys), seed)
        p = cp.where(w > 0, cp.minimum(1.0, w * tau), 0.0)
        kept = cp.flatnonzero(h < p)
        return tau, cp.asnumpy(kept).astype(np.int64), cp.asnumpy(w[kept])

    @staticmethod
    def estimate(ra, rb, ia, ib, p, dtype):
        cp = _GPU._cp()
        if not (is_cupy(ra) and is_cupy(rb)):
            raise TypeError("estimate_matmul: both sketches must hold GPU rows (or both host rows)")
        a = ra[cp.asarray(ia)]
        b = rb[cp.asarray(ib)]
        if hasattr(a, "toarray"):
            a = a.toarray()
        if hasattr(b, "toarray"):
            b = b.toarray()
        scaled = a.astype(cp.float64) * cp.asarray(1.0 / p)[:, None]
        return (scaled.T @ b.astype(cp.float64)).astype(dtype)

    @staticmethod
    def solve_sketched(SA, Sb, m, d):
        import cupyx.scipy.linalg as cla

        cp = _GPU._cp()
        q, r = cp.linalg.qr(SA, mode="reduced")
        diag = cp.abs(cp.diag(r))
        if float(diag.min()) <= float(diag.max()) * np.finfo(SA.dtype).eps * max(SA.shape):
            raise ValueError("S A is rank deficient: A does not have full column rank (or m is too small)")
        x = cla.solve_triangular(r, q.T @ Sb)
        resid = float(cp.linalg.norm(SA @ x - Sb))
        r_inv = cla.solve_triangular(r, cp.eye(d, dtype=r.dtype))
        stderr = (resid / math.sqrt(m - d)) * cp.linalg.norm(r_inv, axis=1)
        return x, stderr.astype(SA.dtype), resid

    @staticmethod
    def lstsq(A, b, m, kind, rng, tol, max_iter, out_dtype):
        import cupyx.scipy.linalg as cla
        from cupyx.scipy.sparse.linalg import LinearOperator, lsmr

        cp = _GPU._cp()
        n, d = A.shape
        A = A.astype(cp.float64)
        b = b.astype(cp.float64)
        if kind == "sparse_sign":
            S = sparse_sign(m, n, nnz_per_column=min(8, m), rng=rng)
        else:
            S = (srht if kind == "srht" else gaussian)(m, n, rng=rng)
        SA = S @ A
        q, r = cp.linalg.qr(SA, mode="reduced")
        diag = cp.abs(cp.diag(r))
        if float(diag.min()) <= float(diag.max()) * 1e-15 * max(m, d):
            raise ValueError("A is rank deficient (its sketch has a zero pivot); lstsq needs full column rank")
        y0 = q.T @ (S @ b)

        def matvec(y):
            return A @ cla.solve_triangular(r, y)

        def rmatvec(u):
            return cla.solve_triangular(r, A.T @ u, trans="T")

        op = LinearOperator((n, d), matvec=matvec, rmatvec=rmatvec, dtype=cp.float64)
        result = lsmr(op, b - matvec(y0), atol=tol, btol=tol, maxiter=max_iter)
        y = y0 + result[0]
        istop, n_iter = int(result[1]), int(result[2])
        converged = istop in (0, 1, 2, 4, 5) and n_iter < max_iter
        x = cla.solve_triangular(r, y)
        residual_norm = float(cp.linalg.norm(b - A @ x))
        if not converged:
            warnings.warn(f"lstsq: LSMR stopped after {n_iter} iterations without reaching tol={tol:g} "
                          f"(istop={istop})", RuntimeWarning, stacklevel=3)
        return LstsqResult(x=x.astype(out_dtype), residual_norm=residual_norm, n_iter=n_iter, converged=converged,
                           sketch_rows=int(m))
