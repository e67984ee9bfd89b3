"""Exact sampling of determinantal point processes (DPPs), k-DPPs and beta-ensembles.

A DPP on the ground set ``{0, ..., n-1}`` is given by an L-ensemble, ``P(S) = det(L_S) / det(I + L)``
with ``L`` symmetric positive semidefinite, or by its marginal kernel ``K = L (I + L)^{-1}``,
``P(A subset of S) = det(K_A)``. A k-DPP is the L-ensemble conditioned on ``|S| = k``.

:class:`DPP` accepts a dense ``L``, a dense ``K``, a low-rank factor ``B`` with ``L = B B^T`` or a
kernel function with data rows ``X`` (pairwise ``kernel(x, y)`` or matrix-form
``kernel_matrix(A, B)``), caches its preprocessing (eigendecomposition, tables of elementary
symmetric polynomials, Nystrom dictionaries) and samples with

- ``"spectral"``: Hough-Krishnapur-Peres-Virag with a log-space elementary-symmetric-polynomial
  table for k-DPPs; phase 2 (the projection DPP of the r chosen eigenvectors) in C++, either by
  rejection (propose items by their squared row norms, accept with the residual: one O(n r) pass
  plus O(r^3 log r)) or by the O(n r^2) Gram-Schmidt update, whichever costs less. For a factor
  ``L = B B^T`` the d x d dual route: phase 2 runs in the d-dimensional space with proposals
  ``|b_i|^2`` and never forms the n x d eigenvector block unless that is cheaper;
- ``"ldl"``: sequential samplers over items, no eigendecomposition; the fastest route to one
  sample from a dense kernel. For an L-ensemble: ONE Cholesky factorization of ``I + L`` (cached)
  and O(n k^2) work per sample of size k (the chain rule in the order n-1, ..., 0, with the
  conditional probabilities from Woodbury on a k x k matrix; details in
  ``cpp/include/randnla/dpp/cholesky_sampler.hpp``); when that matrix is too ill-conditioned (L
  with eigenvalues near 1e14 and above) a sample is finished on ``K = I - (I + L)^{-1}`` with its
  decisions so far imposed, so it stays exact. For a marginal kernel ``K``: blocked LDL^T on K
  (BLAS-3). DPPs only: k-DPPs use ``"spectral"``;
- ``"projection"``: the chain rule on a projection kernel ``K`` (eigenvalues 0 or 1);
- ``"vfx"`` (DPP-VFX) and ``"alpha"`` (alpha-DPP): intermediate (rejection) samplers for kernel
  functions that never evaluate the full n x n kernel.

Every sample is exact. Many samples (``size=``) are drawn in parallel in C++ with one Philox
stream per sample index, so the result does not depend on the number of threads.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from randnla import _core
from randnla._backend import is_cupy, namespace_of
from randnla._rng import philox_key
from randnla._validate import (
    as_float_array,
    check_choice,
    check_finite,
    check_int,
    check_n_threads,
    check_positive,
    check_square,
    check_symmetric,
)

__all__ = ["DPP", "sample", "beta_ensemble", "SamplerStats", "MaxIterError"]

_METHODS = ("auto", "spectral", "ldl", "projection", "vfx", "alpha")
# Phase 2 of the spectral sampler: 0 picks the direct or the rejection route by cost (1 and 2 force
# one of them; the tests use them to check both routes' laws).
_PHASE2_ROUTE = 0
_NO_TABLE = np.zeros((1, 1))
_NO_ROWS = np.zeros((0, 0))
_NO_VEC = np.zeros(0)
_NO_FORCED = np.zeros(0, dtype=np.int8)
# Sequential route on L: a bordering pivot d of G must exceed this times its rounding scale
# (1 + |z|^2 + |x|^2), else the sample is finished on K (see cholesky_sampler.hpp).
_CHOLESKY_TOLERANCE = 1e-12
# Dense-kernel routes evaluate the whole kernel of a kernel function only up to this size in "auto".
_AUTO_DENSE_LIMIT = 3000


class MaxIterError(RuntimeError):
    """An intermediate (rejection) sampler exceeded its ``max_iter`` attempts."""


@dataclass
class SamplerStats:
    """Counters of the last call to :meth:`DPP.sample` with ``method="vfx"`` or ``"alpha"``.

    Attributes
    ----------
    rejections : int
        Rejected intermediate samples (all samples of the call together).
    size_rejections : int
        DPP samples discarded because their size was not ``k`` (k-DPP mode).
    kernel_evaluations : int
        Kernel entries evaluated by the call, preprocessing included.
    attempts : list of int
        Attempts needed by each returned sample.
    """

    rejections: int = 0
    size_rejections: int = 0
    kernel_evaluations: int = 0
    attempts: list = field(default_factory=list)


# ----------------------------------------------------------------------------------------------
# kernel evaluation


class _Evaluator:
    """Entries of L: from a dense matrix, a factor or a kernel function (pairwise ``kernel(x, y)``
    or, with ``matrix=True``, matrix-form ``kernel_matrix(A, B)``), with a count of the entries
    evaluated."""

    def __init__(self, kind, data, kernel=None, matrix=False):
        self.kind = kind
        self.data = data
        self.kernel = kernel
        self.matrix = matrix
        self.count = 0
        self.n = data.shape[0]
        self.features = int(np.prod(data.shape[1:])) if data.ndim > 1 else 1

    def _matrix_call(self, row_data, col_data):
        """``kernel_matrix(row_data, col_data)`` as a float64 block, its shape and values checked."""
        m, c = row_data.shape[0], col_data.shape[0]
        self.count += m * c
        if m == 0 or c == 0:
            return np.empty((m, c))
        values = np.asarray(self.kernel(row_data, col_data), dtype=np.float64)
        if values.shape != (m, c):
            raise ValueError(
                f"kernel_matrix(A, B) must return a (len(A), len(B)) block: for A of shape {row_data.shape} "
                f"and B of shape {col_data.shape} expected {(m, c)}, got {values.shape}"
            )
        if not np.isfinite(values).all():
            raise ValueError("kernel_matrix returned NaN or infinite values")
        return values

    def _matrix_diag(self):
        """L_ii from the diagonals of ``kernel_matrix`` on row chunks of ``_DIAG_CHUNK`` items."""
        out = np.empty(self.n)
        for start in range(0, self.n, _DIAG_CHUNK):
            rows = self.data[start:start + _DIAG_CHUNK]
            out[start:start + rows.shape[0]] = np.diagonal(self._matrix_call(rows, rows))
        return out

    def diag(self):
        if self.matrix:
            return self._matrix_diag()
        self.count += self.n
        if self.kind == "L":
            return np.array(np.diagonal(self.data), dtype=np.float64)
        if self.kind == "factor":
            return np.einsum("ij,ij->i", self.data, self.data)
        rows = np.ascontiguousarray(self.data.T).T if self.data.ndim == 2 else self.data  # feature-major, see block
        values = np.asarray(self.kernel(rows, rows), dtype=np.float64)
        if values.shape != (self.n,):
            raise ValueError(f"kernel(X, X) must return the {self.n} diagonal values, got shape {values.shape}")
        return values

    def _rows(self, rows):
        """Data rows for the kernel. For 2-D data: the same arrays in feature-major memory order,
        so that the elementwise work of a kernel on the (rows, cols, features) broadcast runs over
        whole planes, and a reduction over the last (feature) axis adds planes instead of reducing
        many short rows (several times faster)."""
        if self.data.ndim == 2:
            return np.ascontiguousarray(self.data[rows].T).T
        return self.data[rows]

    def _kernel_block(self, row_data, col_data, out):
        """``out[i, j] = kernel(row_data[i], col_data[j])`` (rows from ``_rows``)."""
        m, c = row_data.shape[0], col_data.shape[0]
        self.count += m * c
        if m == 0 or c == 0:
            return out
        # row chunks of about _KERNEL_CHUNK broadcast elements: the kernel's temporaries then stay
        # in cache (a block of 164 x 150 10-D rows: 10-30% faster than in one call)
        pieces = max(1, round(m * c * self.features / _KERNEL_CHUNK))
        chunk = -(-m // pieces)
        right = col_data[None, ...]
        for start in range(0, m, chunk):
            left = row_data[start:start + chunk][:, None, ...]
            values = self.kernel(left, right)
            if np.shape(values) != (left.shape[0], c):
                raise ValueError(
                    "kernel(x, y) must broadcast over leading dimensions: for x of shape "
                    f"{left.shape} and y of shape {right.shape} expected {(left.shape[0], c)}, got {np.shape(values)}"
                )
            out[start:start + chunk] = values
        return out

    def block(self, rows, cols):
        same = rows is cols
        rows = np.asarray(rows, dtype=np.int64)
        cols = rows if same else np.asarray(cols, dtype=np.int64)
        if self.kind == "L":
            self.count += rows.size * cols.size
            return np.asarray(self.data[np.ix_(rows, cols)], dtype=np.float64)
        if self.kind == "factor":
            self.count += rows.size * cols.size
            return self.data[rows] @ self.data[cols].T
        if self.matrix:
            row_data = self.data[rows]
            return self._matrix_call(row_data, row_data if cols is rows else self.data[cols])
        return self._kernel_block(self._rows(rows), self._rows(cols), np.empty((rows.size, cols.size)))

    def symmetric_block(self, items):
        """``block(items, items)`` for a kernel function from three quarters of the entries: the
        two diagonal halves and one off-diagonal half, mirrored (about 15% faster at 100+ items),
        with one gather of each half's rows. A matrix-form kernel evaluates the block in one call
        (one gather)."""
        items = np.asarray(items, dtype=np.int64)
        m = items.size
        if self.kind != "kernel" or self.matrix or m < _SYMMETRIC_SPLIT:
            return self.block(items, items)
        h = m // 2
        first, second = self._rows(items[:h]), self._rows(items[h:])
        out = np.empty((m, m))
        self._kernel_block(first, first, out[:h, :h])
        self._kernel_block(first, second, out[:h, h:])
        out[h:, :h] = out[:h, h:].T
        self._kernel_block(second, second, out[h:, h:])
        return out

    def symmetrised_block(self, items):
        """``symmetric_block(items)`` averaged with its transpose: exactly symmetric for every kind."""
        block = self.symmetric_block(items)
        return 0.5 * (block + block.T)


# Broadcast elements (rows x columns x features) per kernel call, about.
_KERNEL_CHUNK = 1 << 16

# Items per kernel_matrix call when the diagonal L_ii is evaluated (the diagonals of square blocks).
_DIAG_CHUNK = 64

# Below this many items a symmetric kernel block is evaluated whole (one kernel call).
_SYMMETRIC_SPLIT = 64


def _eigh(a):
    """Symmetric eigendecomposition through the LAPACK table (dsyevd)."""
    values, vectors, info = _core.dpp_eigh(np.ascontiguousarray(a, dtype=np.float64))
    if info != 0:
        raise np.linalg.LinAlgError(f"dsyevd failed (info {info})")
    return values, vectors


def _psd_tolerance(values, n):
    top = float(np.abs(values).max()) if values.size else 0.0
    return 100.0 * max(n, 1) * np.finfo(np.float64).eps * max(top, np.finfo(np.float64).tiny)


# ----------------------------------------------------------------------------------------------
# the DPP object


class DPP:
    """A finite DPP (L-ensemble or marginal kernel) with cached preprocessing.

    Exactly one of ``L``, ``K``, ``factor``, ``kernel`` and ``kernel_matrix`` is given.

    Parameters
    ----------
    L : (n, n) array_like, optional
        Symmetric positive semidefinite likelihood kernel: ``P(S) = det(L_S) / det(I + L)``.
    K : (n, n) array_like, optional
        Symmetric marginal kernel with eigenvalues in [0, 1]: ``P(A subset of S) = det(K_A)``.
    factor : (n, d) array_like, optional
        Low-rank factor ``B`` with ``L = B B^T``; the spectral method works on the d x d matrix
        ``B^T B`` (the dual route) and never forms L.
    kernel : callable, optional
        ``kernel(x, y)`` returning the kernel values for rows ``x`` and ``y`` of ``X`` that broadcast
        against each other over their leading dimensions (the last dimension indexes features), e.g.
        ``lambda x, y: np.exp(-((x - y) ** 2).sum(-1) / 2)``. ``kernel(X, X)`` is the diagonal and
        ``kernel(X[i][:, None], X[j][None, :])`` a block. Needs ``X``. A block costs a
        (rows x columns x features) broadcast: prefer ``kernel_matrix`` when the kernel has a
        matrix form.
    X : (n, ...) array_like, optional
        Data rows for ``kernel`` or ``kernel_matrix``.
    kernel_matrix : callable, optional
        ``kernel_matrix(A, B)`` returning the ``(len(A), len(B))`` block of kernel values between the
        rows of ``A = X[rows]`` and ``B = X[cols]`` (the form of DPPy's ``L_eval_X_data`` and of
        scikit-learn's pairwise kernels, e.g. ``sklearn.metrics.pairwise.rbf_kernel``). An RBF block
        then runs through one matrix product, ``|a|^2 + |b|^2 - 2 A B^T``. Square blocks are
        evaluated in one call and symmetrised; the diagonal ``L_ii`` is read from the diagonals of
        blocks of 64 consecutive rows. Every returned block must have that shape and finite values
        (ValueError otherwise). Needs ``X``.

    Attributes
    ----------
    n : int
        Number of items.
    stats : SamplerStats
        Rejection counts, attempts and kernel evaluations of the last ``"vfx"``/``"alpha"`` call.

    Notes
    -----
    Computation is in float64 whatever the input dtype (the samplers' probabilities need it).
    Validation: ``L`` must be symmetric, finite and positive semidefinite up to a tolerance of
    ``100 n eps max|lambda|``; ``K`` must have eigenvalues in [0, 1] up to the same tolerance. The
    spectral check runs when an eigendecomposition is computed; the ``"ldl"`` route checks symmetry
    and finiteness, raises when the Cholesky factorization of ``I + L`` fails, and raises when a
    conditional probability on K leaves [0, 1] beyond tolerance.

    Examples
    --------
    >>> import numpy as np
    >>> from randnla.dpp import DPP
    >>> B = np.random.default_rng(0).standard_normal((6, 3))
    >>> dpp = DPP(B @ B.T)
    >>> S = dpp.sample(rng=0)
    >>> S.dtype
    dtype('int64')
    >>> len(dpp.sample(k=2, size=4, rng=0))
    4

    A kernel function in matrix form (an RBF kernel through one matrix product per block):

    >>> def rbf(A, B):
    ...     sq = (A**2).sum(1)[:, None] + (B**2).sum(1)[None, :] - 2 * A @ B.T
    ...     return np.exp(-np.maximum(sq, 0) / 2)
    >>> X = np.random.default_rng(0).standard_normal((5000, 3))
    >>> S = DPP(kernel_matrix=rbf, X=X).sample(k=5, method="alpha", rng=0)
    >>> S.size
    5
    """

    def __init__(self, L=None, *, K=None, factor=None, kernel=None, X=None, kernel_matrix=None):
        given = [
            name
            for name, value in (("L", L), ("K", K), ("factor", factor), ("kernel", kernel), ("kernel_matrix", kernel_matrix))
            if value is not None
        ]
        if len(given) != 1:
            raise ValueError(f"give exactly one of L, K, factor, kernel and kernel_matrix; got {given or 'none'}")
        if X is not None and kernel is None and kernel_matrix is None:
            raise ValueError("X is only used with kernel= or kernel_matrix=")
        # both kernel-function forms are kind "kernel"; _matrix tells the matrix form
        self._matrix = kernel_matrix is not None
        if self._matrix:
            kernel, name = kernel_matrix, "kernel_matrix"
        else:
            name = "kernel"
        self._kind = "kernel" if self._matrix else given[0]
        self._gpu = False
        self._row_weights = None
        if kernel is not None:
            if not callable(kernel):
                raise TypeError(f"{name} must be callable, got {type(kernel).__name__}")
            if X is None:
                raise ValueError(f"{name}= needs the data rows X")
            if is_cupy(X):
                raise TypeError("kernel functions run on NumPy data; X must be a NumPy array")
            data = as_float_array(X, "X", min_ndim=1, dtype=np.float64)
            check_finite(data, "X")
            if data.ndim == 1:
                data = data[:, None]
            self._data = np.ascontiguousarray(data) if self._matrix else data
            self._kernel = kernel
        else:
            name = given[0]
            value = {"L": L, "K": K, "factor": factor}[name]
            self._gpu = is_cupy(value)
            self._xp = namespace_of(value)
            arr = as_float_array(value, name, ndim=2)
            if name == "factor" and not self._gpu:
                # one pass: finiteness and the squared row norms (proposal weights of the dual sampler)
                arr = np.ascontiguousarray(arr, dtype=np.float64)
                norms, cumulative, finite = _core.dpp_row_norms(arr, 0)
                if not finite:
                    raise ValueError(f"{name} contains NaN or infinity")
                self._row_weights = (norms, cumulative)
            else:
                check_finite(arr, name)
            if name in ("L", "K"):
                check_square(arr, name)
                check_symmetric(arr, name, rtol=max(1e-10, 100 * float(np.finfo(arr.dtype).eps)))
            if self._gpu:
                self._data = arr.astype(self._xp.float64)
            else:
                self._data = np.ascontiguousarray(arr, dtype=np.float64)
            self._kernel = None
        self.n = int(self._data.shape[0])
        self._spectrum = None  # (V rows x r, lambda_L, lambda_K, log_lambda_L)
        self._esp = None  # log ESP table with the most rows computed so far
        self._rows = None  # V^T, C-contiguous
        self._dual = None  # factor: (theta, Mt = (W / sqrt(theta))^T, lambda_K, log theta)
        self._marginal = None  # dense K
        self._dense = None  # dense L of a factor or kernel function (sequential route)
        self._chol = None  # upper Cholesky factor U of I + L (Fortran order, I + L = U^T U)
        self._fallbacks = 0  # sequential samples finished on K after a numerical stop of the L route
        self._projection_rank = None
        self._intermediate = {}  # (method, k or None) -> precomputed state
        self.stats = SamplerStats()

    # ---- cached preprocessing ----

    def _evaluator(self):
        if self._kind == "kernel":
            return _Evaluator("kernel", self._data, self._kernel, self._matrix)
        if self._gpu:
            raise TypeError("the intermediate samplers need NumPy input")
        if self._kind == "K":
            raise ValueError("methods 'vfx' and 'alpha' need an L-ensemble (L, factor or kernel), not K")
        return _Evaluator(self._kind, self._data)

    def _cholesky(self):
        """Upper Cholesky factor of I + L (cached): the one factorization of the sequential route."""
        if self._chol is None:
            U, info = _core.dpp_cholesky_factor(self._sequential_L())
            if info != 0:
                raise ValueError("L must be positive semidefinite (the Cholesky factorization of I + L failed)")
            self._chol = U
        return self._chol

    def _sequential_L(self):
        """Dense L for the sequential route, kept for later samples."""
        if self._kind == "L":
            return self._data
        if self._dense is None:
            self._dense = np.ascontiguousarray(self._dense_L())
        return self._dense

    def _dense_L(self):
        if self._kind == "L":
            return self._data
        if self._kind == "factor":
            return self._data @ self._data.T
        if self._kind == "kernel":
            ev = _Evaluator("kernel", self._data, self._kernel, self._matrix)
            everything = np.arange(self.n)
            full = ev.block(everything, everything)  # one call (one gather) for kernel_matrix
            return 0.5 * (full + full.T)
        raise ValueError("an L-ensemble is needed here")

    def _eig_symmetric(self, a):
        if self._gpu:
            xp = self._xp
            values, vectors = xp.linalg.eigh(a)
            return values, vectors
        return _eigh(a)

    def spectrum(self):
        """Eigenvalues of L (``inf`` for unit eigenvalues of K) and the matching eigenvectors.

        Returns ``(lambda_L, V)`` with only the components of positive eigenvalue kept; cached.
        """
        s = self._get_spectrum()
        return s[1], s[0]

    def _get_spectrum(self):
        if self._spectrum is not None:
            return self._spectrum
        xp = self._xp if self._gpu else np
        n = self.n
        if self._kind == "factor" and not self._gpu:
            theta, Mt, lam_K, log_lam = self._get_dual()
            rows = Mt @ self._data.T  # V^T = Theta^{-1/2} W^T B^T, contiguous rows
            self._rows = rows
            self._spectrum = (rows.T, theta, lam_K, log_lam)
            return self._spectrum
        if self._kind == "factor":
            B = self._data
            gram = B.T @ B
            theta, W = self._eig_symmetric(0.5 * (gram + gram.T))
            tol = _psd_tolerance(theta, max(B.shape))
            keep = theta > tol
            theta = theta[keep]
            V = (B @ W[:, keep]) / xp.sqrt(theta)[None, :]
            lam_L = theta
            lam_K = theta / (1.0 + theta)
        else:
            a = self._data if self._kind != "kernel" else self._dense_L()
            values, vectors = self._eig_symmetric(a)
            tol = _psd_tolerance(values, n)
            smallest = float(values.min()) if n else 0.0
            if self._kind == "K":
                largest = float(values.max()) if n else 0.0
                tol_k = max(tol, 1e-10)
                if smallest < -tol_k or largest > 1.0 + tol_k:
                    raise ValueError(
                        f"K must have eigenvalues in [0, 1]; found eigenvalues in [{smallest:.3e}, {largest:.3e}]"
                    )
                lam_K = xp.clip(values, 0.0, 1.0)
                lam_K = xp.where(lam_K >= 1.0 - 1e-12, 1.0, lam_K)
                keep = lam_K > tol_k
                lam_K = lam_K[keep]
                with np.errstate(divide="ignore"):
                    lam_L = xp.where(lam_K >= 1.0, xp.inf, lam_K / xp.maximum(1.0 - lam_K, 1e-300))
            else:
                if smallest < -tol:
                    raise ValueError(
                        f"{'L' if self._kind == 'L' else 'the kernel matrix'} must be positive semidefinite; "
                        f"smallest eigenvalue {smallest:.3e} is below -{tol:.1e}"
                    )
                keep = values > tol
                lam_L = values[keep]
                lam_K = lam_L / (1.0 + lam_L)
            V = vectors[:, keep]
        if self._gpu:
            V = xp.ascontiguousarray(V)
        else:
            V = np.ascontiguousarray(V)
        with np.errstate(divide="ignore"):
            log_lam = xp.log(lam_L)
        self._spectrum = (V, lam_L, lam_K, log_lam)
        return self._spectrum

    def _get_dual(self):
        """Factor L = B B^T: eigenpairs (theta, W) of the d x d Gram matrix B^T B, cached."""
        if self._dual is None:
            from scipy.linalg import blas as scipy_blas

            B = self._data
            if B.shape[0] and B.shape[1]:
                upper = scipy_blas.dsyrk(1.0, B.T)  # B^T B (upper triangle), no copy of B
                gram = np.triu(upper) + np.triu(upper, 1).T
            else:
                gram = np.zeros((B.shape[1], B.shape[1]))
            theta, W = _eigh(gram)
            keep = theta > _psd_tolerance(theta, max(B.shape))
            theta = np.ascontiguousarray(theta[keep])
            Mt = np.ascontiguousarray((W[:, keep] / np.sqrt(theta)[None, :]).T)
            with np.errstate(divide="ignore"):
                log_lam = np.log(theta)
            self._dual = (theta, Mt, theta / (1.0 + theta), log_lam)
        return self._dual

    def _eigenvalues(self):
        """(lambda_L, lambda_K, log lambda_L), from the dual route for a NumPy factor."""
        if self._kind == "factor" and not self._gpu:
            theta, _, lam_K, log_lam = self._get_dual()
            return theta, lam_K, log_lam
        _, lam_L, lam_K, log_lam = self._get_spectrum()
        return lam_L, lam_K, log_lam

    @property
    def rank(self) -> int:
        """Rank of L (number of positive eigenvalues up to tolerance); computes the spectrum."""
        return int(self._eigenvalues()[0].shape[0])

    def _esp_table(self, k):
        if self._esp is None or self._esp.shape[0] < k + 1:
            log_lam = self._eigenvalues()[2]
            log_lam = np.asarray(log_lam.get() if self._gpu else log_lam, dtype=np.float64)
            self._esp = _core.dpp_log_esp_table(log_lam, int(k))
        return self._esp

    def _marginal_kernel(self):
        """Dense K: given, or I - (I + L)^{-1} by Cholesky (cheaper than an eigendecomposition)."""
        if self._marginal is not None:
            return self._marginal
        if self._kind == "K":
            self._marginal = self._data
        elif self._spectrum is not None and not self._gpu:
            V, _, lam_K, _ = self._spectrum
            self._marginal = (V * lam_K) @ V.T
        elif self._gpu:
            V, _, lam_K, _ = self._get_spectrum()
            self._marginal = (V * lam_K) @ V.T
        else:
            K = _marginal_from_cholesky(self._cholesky())
            self._marginal = K
        return self._marginal

    # ---- exact quantities ----

    def marginals(self):
        """Inclusion probabilities ``P(i in S) = K_ii`` (float64, same array library as the input).

        Uses the cached eigendecomposition when there is one, else a dense K (a Cholesky of I + L).
        """
        if self._spectrum is not None or self._kind in ("factor",):
            V, _, lam_K, _ = self._get_spectrum()
            return (V * V) @ lam_K
        K = self._marginal_kernel()
        xp = self._xp if self._gpu else np
        return xp.array(xp.diagonal(K), dtype=xp.float64)

    def expected_size(self) -> float:
        """``E|S| = tr K = sum lambda / (1 + lambda)``."""
        if self._spectrum is not None or self._kind == "factor":
            return float(self._eigenvalues()[1].sum())
        K = self._marginal_kernel()
        xp = self._xp if self._gpu else np
        return float(xp.trace(K))

    def log_prob(self, S, *, k=None) -> float:
        """``log P(S)``: ``logdet(L_S) - logdet(I + L)``, or for ``k=`` the k-DPP's ``logdet(L_S) - log e_k``.

        For a marginal kernel (``K=``) the DPP probability is ``|det(K - I_{complement of S})|``.
        """
        S = self._check_subset(S)
        if k is not None:
            k = check_int(k, "k", minimum=0, maximum=self.n)
            if S.size != k:
                return -math.inf
            if self._kind == "K":
                V, lam_L, _, _ = self._get_spectrum()
                if np.any(np.isinf(self._np(lam_L))):
                    raise ValueError("the k-DPP of a K with eigenvalue 1 is not defined here")
                L_S = self._np((V[S] * lam_L) @ V[S].T)
            else:
                L_S = self._block_L(S)
            sign, logdet = np.linalg.slogdet(L_S) if S.size else (1.0, 0.0)
            if sign <= 0:
                return -math.inf
            if k > self.rank:
                return -math.inf
            return float(logdet - self._esp_table(k)[k, -1])
        if self._kind == "K":
            K = self._np(self._data)
            M = -np.eye(self.n)
            M[np.ix_(S, S)] = 0.0
            M += K
            sign, logdet = np.linalg.slogdet(M)
            return float(logdet) if sign != 0 else -math.inf
        L_S = self._block_L(S)
        sign, logdet = np.linalg.slogdet(L_S) if S.size else (1.0, 0.0)
        if sign <= 0:
            return -math.inf
        return float(logdet - self._logdet_I_plus_L())

    def _logdet_I_plus_L(self):
        if self._spectrum is not None or self._kind == "factor":
            return float(np.log1p(self._np(self._eigenvalues()[0])).sum())
        L = self._np(self._dense_L())
        sign, logdet = np.linalg.slogdet(np.eye(self.n) + L)
        return float(logdet)

    def _block_L(self, S):
        if self._kind == "kernel":
            block = _Evaluator("kernel", self._data, self._kernel, self._matrix).block(S, S)
            return 0.5 * (block + block.T)
        if self._kind == "factor":
            B = self._np(self._data)[S]
            return B @ B.T
        return self._np(self._data)[np.ix_(S, S)]

    def _np(self, a):
        return a.get() if self._gpu and hasattr(a, "get") else np.asarray(a)

    def _check_subset(self, S):
        arr = np.asarray(self._np(S) if is_cupy(S) else S)
        if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
            raise ValueError("S must be a 1-D array of item indices")
        arr = arr.astype(np.int64)
        if arr.size and (arr.min() < 0 or arr.max() >= self.n):
            raise ValueError(f"S must hold indices in [0, {self.n})")
        if np.unique(arr).size != arr.size:
            raise ValueError("S must not repeat an item")
        return np.sort(arr)

    # ---- sampling ----

    def _choose_method(self, k, count):
        if self._kind == "kernel":
            if self.n > _AUTO_DENSE_LIMIT:
                return "alpha"
            return "spectral" if (k is not None or count > 1) else "ldl"
        if self._kind == "factor":
            return "spectral"
        if k is not None or count > 1 or self._spectrum is not None:
            return "spectral"
        return "ldl"

    def sample(self, *, k=None, size=None, method="auto", rng=None, n_threads=None, max_iter=1000, **options):
        """Draw an exact sample (or ``size`` independent samples).

        Parameters
        ----------
        k : int, optional
            Sample the k-DPP (the DPP conditioned on ``|S| = k``); ``0 <= k <= rank``.
        size : int, optional
            Number of independent samples; a list is returned when given.
        method : {"auto", "spectral", "ldl", "projection", "vfx", "alpha"}
            ``"auto"``: for a kernel function with n > 3000 items, ``"alpha"``; for a factor,
            ``"spectral"`` (dual route); for a k-DPP, for ``size > 1`` or when the eigendecomposition
            is already cached, ``"spectral"``; otherwise (one DPP sample from a dense kernel)
            ``"ldl"`` (one Cholesky factorization of ``I + L``, or blocked LDL^T on a given K).
        rng : None, int, SeedSequence, BitGenerator or Generator
            Randomness (SPEC 7). Sample ``s`` of a call uses its own Philox stream.
        n_threads : int, optional
            Threads for ``size > 1`` (all cores by default; ``"spectral"`` and ``"ldl"`` on an
            L-ensemble draw the samples in parallel); results do not depend on it.
        max_iter : int
            Attempts allowed per sample for ``"vfx"``/``"alpha"`` before :class:`MaxIterError`.
        **options
            For ``"vfx"``/``"alpha"``: ``oversampling`` (default 4.0) and ``max_size_rejections``
            (k-DPP mode: DPP samples of the wrong size allowed in a row, default 1000; a DPP sample
            has size k with probability about 7% at k = 50, so 100 in a row would fail about once
            in 2000 samples).

        Returns
        -------
        ndarray of int64, or list of them
            Sorted item indices (NumPy, or CuPy for CuPy input).
        """
        method = check_choice(method, "method", _METHODS)
        if k is not None:
            k = check_int(k, "k", minimum=0, maximum=self.n)
        count = 1 if size is None else check_int(size, "size", minimum=0)
        threads = check_n_threads(n_threads)
        max_iter = check_int(max_iter, "max_iter", minimum=1)
        if method == "auto":
            method = self._choose_method(k, count)
        if options and method not in ("vfx", "alpha"):
            raise TypeError(f"unexpected options {sorted(options)} for method {method!r}")
        key = philox_key(rng)
        if method == "spectral":
            samples = self._sample_spectral(k, count, key, threads)
        elif method == "ldl":
            if k is not None:
                raise ValueError("method 'ldl' samples DPPs, not k-DPPs; use method='spectral' for k=")
            samples = self._sample_ldl(count, key, threads)
        elif method == "projection":
            samples = self._sample_projection(k, count, key, threads)
        else:
            samples = _sample_intermediate(self, method, k, count, key, max_iter, options)
        if self._gpu:
            xp = self._xp
            samples = [s if is_cupy(s) else xp.asarray(s) for s in samples]
        return samples if size is not None else samples[0]

    def _sample_spectral(self, k, count, key, threads):
        lam_L, lam_K, log_lam = self._eigenvalues()
        if k is not None:
            rank = int(lam_L.shape[0])
            if k > rank:
                raise ValueError(f"k={k} exceeds the rank {rank} of L")
            if self._kind == "K" and bool((lam_K >= 1.0).any()):
                raise ValueError("k-DPPs need an L-ensemble: K has an eigenvalue 1 (L is unbounded)")
        if self._gpu:
            return _spectral_sample_gpu(self, k, count, key)
        table = self._esp_table(k) if k is not None else _NO_TABLE
        if self._kind == "factor":
            # dual route: phase 2 by rejection in the d-dimensional space (no n x d eigenvector block)
            # unless that is costlier than the rows of V for the chosen eigenvectors
            _, Mt, _, _ = self._dual
            weight, cumulative = self._row_weights
            rows = self._rows if self._rows is not None else _NO_ROWS
            flat, offsets, formed = _core.dpp_spectral_sample(
                rows, lam_L, lam_K, log_lam, -1 if k is None else int(k), table, self._data, Mt, weight, cumulative,
                key, 0, count, threads, _PHASE2_ROUTE,
            )
            if formed and self._rows is None:
                self._get_spectrum()  # later calls use the rows of V instead of forming V_J per sample
        else:
            if self._rows is None:
                self._rows = np.ascontiguousarray(self._spectrum[0].T)  # eigenvectors as contiguous rows
            flat, offsets, _ = _core.dpp_spectral_sample(
                self._rows, lam_L, lam_K, log_lam, -1 if k is None else int(k), table, _NO_ROWS, _NO_ROWS, _NO_VEC,
                _NO_VEC, key, 0, count, threads, _PHASE2_ROUTE,
            )
        if count == 1:
            return [flat]
        return np.split(flat, offsets[1:-1]) if count else []

    def _sample_ldl(self, count, key, threads):
        if self._gpu:
            raise TypeError("method 'ldl' runs on NumPy input; use method='spectral' for CuPy arrays")
        if self._kind == "K":
            return [_ldl_on_K(self._data, key, s, "K") for s in range(count)]
        # L-ensemble: one Cholesky factorization of I + L (cached) and O(n k^2) per sample
        samples, fallbacks = _sequential_L_samples(
            self._sequential_L(), self._cholesky(), key, count, threads, self._marginal_kernel
        )
        self._fallbacks += fallbacks
        return samples

    def _sample_projection(self, k, count, key, threads):
        if self._kind != "K":
            raise ValueError("method 'projection' needs a projection marginal kernel K= (eigenvalues 0 or 1)")
        if self._gpu:
            raise TypeError("method 'projection' runs on NumPy input; use method='spectral' for CuPy arrays")
        K = self._data
        if self._projection_rank is None:
            trace = float(np.trace(K))
            frob = float(np.einsum("ij,ij->", K, K))
            rank = int(round(trace))
            tol = 1e-8 * max(1.0, trace)
            if abs(trace - rank) > tol or abs(frob - trace) > tol:
                raise ValueError(
                    "K is not a projection (eigenvalues 0 or 1): trace "
                    f"{trace:.6g} and squared Frobenius norm {frob:.6g} must be the same integer"
                )
            self._projection_rank = rank
        rank = self._projection_rank
        if k is not None and k != rank:
            raise ValueError(f"a projection DPP has exactly {rank} items; got k={k}")
        flat, offsets = _core.dpp_projection_sample(K, rank, key, 0, count, threads)
        return np.split(flat, offsets[1:-1]) if count else []


def _marginal_from_cholesky(U):
    """K = I - (I + L)^{-1} from the upper Cholesky factor U of I + L (Fortran order)."""
    from scipy.linalg import lapack as scipy_lapack

    inv, info = scipy_lapack.dpotri(U, lower=0)  # upper triangle of (I + L)^{-1}, Fortran order
    if info != 0:
        raise ValueError("I + L is singular: L must be positive semidefinite")
    # the transposed view is C-ordered with a valid lower triangle; mirror it in place
    K = inv.T
    lower = np.tril_indices(K.shape[0], -1)
    K[lower[1], lower[0]] = K[lower]
    np.negative(K, out=K)  # K = I - (I + L)^{-1}
    K[np.diag_indices_from(K)] += 1.0
    return np.ascontiguousarray(K)


def _ldl_on_K(K, key, s, name, forced=None):
    """Sample ``s`` of the sequential sampler on a marginal kernel (optionally with decisions imposed)."""
    n = K.shape[0]
    tol = max(1e-8, 1000 * n * np.finfo(np.float64).eps)
    items, _, violation = _core.dpp_ldl_sample(K, key, s, 128, _NO_FORCED if forced is None else forced)
    if violation > tol:
        raise ValueError(
            f"{name} is not a valid DPP kernel: a conditional inclusion probability left [0, 1] by {violation:.2e}"
            + (" (K must have eigenvalues in [0, 1])" if name == "K" else " (L must be PSD)")
        )
    return items


def _sequential_L_samples(L, U, key, count, threads, marginal):
    """``count`` samples of DPP(L) from the upper Cholesky factor U of I + L (``dpp_cholesky_factor``):
    O(n k^2) each. A sample stopped for numerical reasons (items >= r decided) is finished on the
    marginal kernel ``marginal()`` with its decisions imposed. Returns (samples, number finished on K)."""
    flat, offsets, undecided = _core.dpp_cholesky_sample(L, U, key, 0, count, threads, _CHOLESKY_TOLERANCE)
    samples = [flat] if count == 1 else (np.split(flat, offsets[1:-1]) if count else [])
    stopped = np.flatnonzero(undecided >= 0)
    n = L.shape[0]
    for s in stopped:
        r = int(undecided[s])
        decided = np.zeros(n - r, dtype=np.int8)
        decided[n - 1 - samples[s]] = 1  # the items in reverse order: position t holds item n - 1 - t
        reverse = np.ascontiguousarray(marginal()[::-1, ::-1])
        samples[s] = np.sort(n - 1 - _ldl_on_K(reverse, key, int(s), "L", decided))
    return samples, int(stopped.size)


def sample(L, *, k=None, size=None, method="auto", rng=None, n_threads=None):
    """One-call form: ``DPP(L).sample(k=k, size=size, method=method, rng=rng)``.

    Examples
    --------
    >>> import numpy as np
    >>> from randnla.dpp import sample
    >>> B = np.random.default_rng(0).standard_normal((5, 5))
    >>> S = sample(B @ B.T, k=2, rng=0)
    >>> S.size
    2
    """
    return DPP(L).sample(k=k, size=size, method=method, rng=rng, n_threads=n_threads)


# ----------------------------------------------------------------------------------------------
# intermediate samplers: DPP-VFX and alpha-DPP
#
# Both draw an intermediate multiset sigma from a Poisson process with intensity R e^{1/R} l_i,
# accept it with probability e^z det(I + Lt) / (e^{t/R} det(I + H)), and return a DPP(Lt) sample
# mapped back through sigma, where (for L = B B^T in feature space and any PSD approximation H of
# alpha B^T B) l_i = alpha b_i^T (I + H)^{-1} b_i, z = tr H (I + H)^{-1} and
# Lt = diag(c / (R l))^{1/2} alpha L_{sigma sigma} diag(c / (R l))^{1/2} (c: multiplicities). The
# acceptance is at most 1 for every sigma (det(I + Y) <= e^{tr Y}), which is all exactness needs.
# DPP-VFX takes H = the Nystrom approximation (all n columns of the dictionary block, R = s);
# alpha-DPP takes H = the weighted dictionary covariance (only the dictionary block, R = z) and
# evaluates l_i lazily, only for items the Poisson process draws, thinning the cheap static bound
# alpha L_ii draw by draw (first against a partial bound from the leading dictionary items). A
# k-DPP is a DPP(alpha L) conditioned on |S| = k for every alpha > 0, with alpha chosen once from
# the dictionary so that E|S| is about k. alpha-DPP attempts are i.i.d., each from its own Philox
# stream, so a sample depends on the seed only (not on which scores earlier calls refined); the
# cost of an attempt is mostly the kernel block of sigma (about (k^2)^2 entries).

_PURPOSE_PRE = 0x44505000000000A1
_PURPOSE_SAMPLE = 0x44505000000000A2


def _generator(key, stream, purpose):
    counter = np.array([0, 0, stream, purpose], dtype=np.uint64)
    return np.random.Generator(np.random.Philox(key=key, counter=counter))


def _bless_step(ev, diag, dictionary, probs, lam, oversampling, gen, Ldd=None):
    """One BLESS ``reduce_lambda`` step: a new dictionary at ``lam`` from the previous one
    (``Ldd``: its symmetrised kernel block when already evaluated)."""
    n = diag.size
    ucb = np.minimum(oversampling * diag / (diag + lam), 1.0)
    candidates = np.flatnonzero(gen.random(n) < ucb)
    if dictionary.size == 0:
        scores = diag[candidates] / (diag[candidates] + lam)
    else:
        from scipy.linalg import solve_triangular

        cross = ev.block(candidates, dictionary)  # |U| x |D|
        if Ldd is None:
            Ldd = ev.symmetrised_block(dictionary)
        chol = np.linalg.cholesky(Ldd + lam * np.diag(probs))
        half = solve_triangular(chol, cross.T, lower=True, check_finite=False)  # |D| x |U|
        scores = np.maximum(diag[candidates] - np.einsum("ij,ij->j", half, half), 0.0) / lam
    keep_p = np.minimum(oversampling * scores, ucb[candidates])
    kept = gen.random(candidates.size) < keep_p / ucb[candidates]
    if kept.sum() > 0 or dictionary.size == 0:
        return candidates[kept], keep_p[kept]
    return dictionary, probs


def _bless(ev, diag, oversampling, gen, stop):
    """BLESS (Rudi et al. 2018) down a geometric lambda path until stop(lam, eig of the weighted
    dictionary) is true; returns (dictionary, probabilities, lam, the symmetrised kernel block of
    the dictionary or None when it is empty)."""
    n = diag.size
    total = float(diag.sum())
    lam = max(total, 1e-300)
    floor = 1e-10 * total / max(n, 1)
    dictionary = np.zeros(0, dtype=np.int64)
    probs = np.zeros(0)
    Ldd = None
    while True:
        previous = dictionary
        dictionary, probs = _bless_step(ev, diag, dictionary, probs, lam, oversampling, gen, Ldd)
        if dictionary is not previous:  # a new dictionary (a step that keeps nothing returns the old one)
            Ldd = None
            if dictionary.size:
                Ldd = ev.symmetrised_block(dictionary)
        if dictionary.size:
            weighted = Ldd / np.sqrt(np.outer(probs, probs))
            theta = np.clip(np.linalg.eigvalsh(weighted), 0.0, None)
        else:
            theta = np.zeros(0)
        if stop(lam, theta) or lam <= floor:
            return dictionary, probs, lam, Ldd, theta
        lam = lam / 2.0


def _solve_alpha(expected, k):
    """alpha with expected(alpha) = k (expected increasing in alpha)."""
    lo, hi = -60.0, 60.0
    f = lambda t: expected(math.exp(t)) - k  # noqa: E731
    if f(hi) < 0:
        raise ValueError(f"k={k} exceeds the numerical rank of the kernel")
    # bisection on log(alpha) (f is increasing): about 37 cheap steps to 1e-10, and no import
    # of scipy.optimize (hundreds of milliseconds on a first call)
    while hi - lo > 1e-10:
        mid = 0.5 * (lo + hi)
        if f(mid) < 0:
            lo = mid
        else:
            hi = mid
    return math.exp(0.5 * (lo + hi))


# alpha-DPP k-DPPs with k above this get a final dictionary with oversampling * k / _ALPHA_K_SCALE.
_ALPHA_K_SCALE = 12.0


class _IntermediateState:
    pass


def _prepare_intermediate(dpp, method, k, oversampling, key):
    ev = dpp._evaluator()
    gen = _generator(key, 0, _PURPOSE_PRE)
    diag = ev.diag()
    if np.any(diag < 0):
        raise ValueError("the kernel has negative diagonal entries: it is not positive semidefinite")
    state = _IntermediateState()
    state.method = method
    state.k = k
    state.diag = diag
    if k is None:
        stop = lambda lam, theta: lam <= 1.0  # noqa: E731
    else:
        stop = lambda lam, theta: (theta / (theta + lam)).sum() >= 2.0 * k + 2.0  # noqa: E731
    dictionary, probs, lam, Ldd, theta = _bless(ev, diag, oversampling, gen, stop)
    if method == "alpha" and k is not None and k > _ALPHA_K_SCALE:
        # The acceptance rate of alpha-DPP is about exp(-(sum_j delta_j^2 / 2) - 1/2), delta_j the
        # relative errors of the dictionary covariance on the ~k directions that matter: with a
        # fixed oversampling it decays exponentially in k (6% at k = 50 with 4.0). One last BLESS
        # step with oversampling proportional to k keeps it about constant (35% at k = 50).
        previous = dictionary
        dictionary, probs = _bless_step(
            ev, diag, dictionary, probs, lam, oversampling * k / _ALPHA_K_SCALE, gen, Ldd
        )
        if dictionary is not previous:
            Ldd = theta = None
    if dictionary.size == 0:
        raise ValueError("the kernel is zero: nothing to sample")
    if Ldd is None:
        Ldd = ev.symmetrised_block(dictionary)
    state.dictionary = dictionary
    if method == "alpha":
        from scipy.linalg import lapack as scipy_lapack

        weighted = Ldd / np.sqrt(np.outer(probs, probs))  # W = P^{-1/2} L_DD P^{-1/2}
        if theta is None:  # (BLESS computed them for its last dictionary)
            theta = np.clip(np.linalg.eigvalsh(weighted), 0.0, None)
        state.alpha = 1.0 if k is None else _solve_alpha(lambda a: float((a * theta / (a * theta + 1)).sum()), k)
        a = state.alpha
        # l_i = a (L_ii - a |R^{-1} P^{-1/2} L_{D,i}|^2) with R R^T = a W + I (Cholesky): the same
        # as a (L_ii - a |(a Theta + I)^{-1/2} V^T P^{-1/2} L_{D,i}|^2) for W = V Theta V^T, with
        # eigenvalues only (for alpha) and a triangular solve per refinement
        # the dictionary in the pivot order of a pivoted Cholesky factorization of a W + I: the
        # first _ALPHA_STAGE items then carry most of the projection, and the first entries of
        # R^{-1} P^{-1/2} L_{D,i} (R lower triangular) give a cheap upper bound of l_i
        shifted = a * weighted + np.eye(weighted.shape[0])
        _, piv, _, info = scipy_lapack.dpstrf(shifted, lower=1)
        if info == 0:
            order = piv - 1
            dictionary, probs = dictionary[order], probs[order]
            state.dictionary = dictionary
            shifted = shifted[np.ix_(order, order)]
        R, info = scipy_lapack.dpotrf(shifted, lower=1, clean=1)
        if info != 0:
            raise RuntimeError("the dictionary kernel is not positive semidefinite")
        state.z = float((a * theta / (a * theta + 1)).sum())
        state.logdet = 2.0 * float(np.log(np.diagonal(R)).sum())
        # refinements apply R^{-1} P^{-1/2} as one matrix product: R is the Cholesky factor of
        # a W + I (eigenvalues >= 1), so its inverse is well conditioned, and a GEMM on the few
        # fresh items of an attempt costs several times less than a triangular solve call
        Rinv, info = scipy_lapack.dtrtri(R, lower=1)
        if info != 0:
            raise RuntimeError("the dictionary kernel is not positive semidefinite")
        state.projector = np.tril(Rinv) / np.sqrt(probs)[None, :]
        state.probs = probs
        state.R = max(state.z, 1.0)
        state.upper = a * diag  # static upper bounds u_i of l_i: the proposal intensity
        state.upper_cumulative = np.cumsum(state.upper)
        state.upper_total = float(state.upper_cumulative[-1])
        state.bound = state.upper.copy()  # best known upper bound of l_i; l_i itself where refined
        state.refined = np.zeros(diag.size, dtype=bool)
        state.stage = _ALPHA_STAGE if dictionary.size > 2 * _ALPHA_STAGE else 0
        state.bounded = np.zeros(diag.size, dtype=bool)  # the partial bound is in state.bound
        state.unrefined = diag.size  # items whose l_i is not known yet
    else:
        values, U = np.linalg.eigh(Ldd)
        keep = values > 1e-12 * max(values.max(), 1e-300)
        E = U[:, keep].T / np.sqrt(values[keep])[:, None]  # m x |D|
        Bbar = E @ ev.block(dictionary, np.arange(diag.size))  # m x n: O(n m) kernel evaluations
        A = Bbar @ Bbar.T
        theta = np.clip(np.linalg.eigvalsh(A), 0.0, None)
        residual_trace = float(diag.sum() - np.einsum("ij,ij->", Bbar, Bbar))
        if k is None:
            state.alpha = 1.0
        else:
            state.alpha = _solve_alpha(
                lambda a: float(a * max(residual_trace, 0.0) + (a * theta / (a * theta + 1)).sum()), k
            )
        a = state.alpha
        state.z = float((a * theta / (a * theta + 1)).sum())
        state.logdet = float(np.log1p(a * theta).sum())
        Minv = np.linalg.inv(A + np.eye(A.shape[0]) / a)
        nystrom_diag = np.einsum("ij,ij->j", Bbar, Bbar)
        ell = a * diag - a * nystrom_diag + np.einsum("ij,ij->j", Bbar, Minv @ Bbar)
        state.ell = np.maximum(ell, 0.0)
        state.s = float(state.ell.sum())
        state.R = max(state.s, 1.0)  # q = R s
        state.cumulative = np.cumsum(state.ell)
    state.kernel_evaluations = ev.count
    return state


def _refine(state, ev, items):
    """Exact l_i (alpha-DPP scores) for the given items."""
    cross = ev.block(state.dictionary, items)  # |D| x m
    proj = state.projector @ cross  # R^{-1} P^{-1/2} L_{D,items}
    a = state.alpha
    return np.maximum(a * (state.diag[items] - a * np.einsum("ij,ij->j", proj, proj)), 0.0)


# alpha-DPP bounds l_i first from this many leading (pivoted) dictionary items (see _partial_bound).
_ALPHA_STAGE = 16


def _partial_bound(state, ev, items):
    """Upper bounds of l_i from the first ``state.stage`` dictionary items: R^{-1} is lower
    triangular, so the first entries of R^{-1} P^{-1/2} L_{D,i} depend on those items only and
    drop part of a nonnegative sum (relative margin 1e-9 of u_i against rounding)."""
    p = state.stage
    cross = ev.block(state.dictionary[:p], items)
    proj = state.projector[:p, :p] @ cross
    a = state.alpha
    partial = a * (state.diag[items] - a * np.einsum("ij,ij->j", proj, proj))
    return np.minimum(np.maximum(partial, 0.0) + 1e-9 * state.upper[items], state.upper[items] * (1.0 + 1e-9))


def _attempt_logdet(ev, state, items, counts, ell, t, threshold):
    """logdet(I + Lt) of one intermediate sample (``items`` with multiplicities ``counts`` and
    scores ``ell``, ``Lt = a G L_items G``, ``G = diag(sqrt(counts / (R ell)))``), stopped early
    when it is certainly below ``threshold``. Returns ``(logdet, factor, permutation)``: ``factor``
    is ``(Lt, U)`` for the sample (None when the factorization stopped or there are no items)."""
    a = state.alpha
    if not items.size:
        return 0.0, None, None
    weights = np.sqrt(counts / (state.R * ell))
    if items.size > _SMALL_DENSE:
        # blocked pivoted Cholesky of I + Lt that stops as soon as the rejection is certain
        return _progressive_logdet(ev, state, items, weights, a, threshold)
    block = ev.symmetric_block(items)
    scaled = weights * math.sqrt(0.5 * a)
    # Lt = (block + block^T) * outer(scaled, scaled) (exactly symmetric) and one Cholesky
    # factorization of I + Lt, in one C++ pass: the acceptance test and, on acceptance, the sample
    Lt, U, info = _core.dpp_scaled_cholesky_factor(block, scaled)
    if info != 0:
        raise RuntimeError("I + L_sigma is not positive definite: the kernel is not positive semidefinite")
    return 2.0 * float(np.log(np.diagonal(U)).sum()), (Lt, U), None


def _check_ratio(state, logdet, t):
    log_acc = state.z + logdet - state.logdet - t / state.R
    if log_acc > 1e-8 * max(1.0, t / state.R + state.z):
        raise RuntimeError(
            f"{state.method}: acceptance ratio exp({log_acc:.3g}) > 1; the kernel is not positive semidefinite"
        )


def _finish(items, factor, permutation, gen):
    """The DPP(Lt) sample of an accepted intermediate sample, as sorted ground-set indices."""
    if items.size == 0:
        return np.zeros(0, dtype=np.int64)
    inner = _small_dpp_sample(factor, gen)
    if permutation is not None:
        inner = permutation[inner]
    return np.sort(items[inner]).astype(np.int64)


def _one_intermediate_dpp(dpp, state, ev, gen, max_iter, stats):
    """One DPP(alpha L) sample by DPP-VFX (one sequential stream ``gen``)."""
    R = state.R
    for attempt in range(1, max_iter + 1):
        t_proposed = gen.poisson(R * math.exp(1.0 / R) * state.s)
        draws = np.searchsorted(state.cumulative, gen.random(t_proposed) * state.s, side="right")
        draws = np.minimum(draws, state.ell.size - 1)
        items, counts = np.unique(draws, return_counts=True)
        ell = state.ell[items]
        t = int(counts.sum())
        # accept iff log U <= z + logdet(I + Lt) - logdet(I + H) - t / R, i.e. logdet >= threshold
        log_u = math.log(gen.random() + 1e-300)
        threshold = log_u - (state.z - state.logdet - t / R)
        logdet, factor, permutation = _attempt_logdet(ev, state, items, counts, ell, t, threshold)
        if items.size and factor is None:
            stats.rejections += 1
            continue
        _check_ratio(state, logdet, t)
        if logdet >= threshold:
            stats.attempts.append(attempt)
            return _finish(items, factor, permutation, gen)
        stats.rejections += 1
    raise MaxIterError(
        f"method {state.method!r} rejected max_iter={max_iter} intermediate samples in a row; raise max_iter "
        "or oversampling (a better dictionary raises the acceptance rate)"
    )


_PURPOSE_ALPHA_ATTEMPT = 0x44505000000000A3


def _attempt_generator(state, key, s, j):
    """The generator of attempt ``j`` of sample ``s``: Philox(key, counter (0, j, s, purpose)), the
    state of a fresh one set on one generator kept in ``state`` (constructing a Philox generator
    costs about ten times more)."""
    gen = getattr(state, "attempt_generator", None)
    if gen is None:
        gen = state.attempt_generator = np.random.Generator(np.random.Philox(key=key))
    gen.bit_generator.state = {
        "bit_generator": "Philox",
        "state": {"counter": np.array([0, j, s, _PURPOSE_ALPHA_ATTEMPT], dtype=np.uint64), "key": key},
        "buffer": np.zeros(4, dtype=np.uint64),
        "buffer_pos": 4,
        "has_uint32": 0,
        "uinteger": 0,
    }
    return gen


def _alpha_proposal(state, ev, key, s, j):
    """Intermediate sample (attempt) ``j`` of sample ``s`` of alpha-DPP, from its own Philox stream
    (counter word 1 = j): a Poisson process with intensity c u_i on the static bounds
    u_i = alpha L_ii (prefix sums built once), thinned draw by draw to intensity c l_i, l_i the
    Nystrom ridge scores (refined on first use and cached), which is exactly a Poisson process with
    intensity c l_i. The result depends on (key, s, j) only, not on earlier calls. Returns
    (items, counts, t, log U, generator)."""
    gen = _attempt_generator(state, key, s, j)
    t_proposed = gen.poisson(state.R * math.exp(1.0 / state.R) * state.upper_total)
    # the position uniforms, the thinning uniforms (one per draw) and U, in one call (the same
    # stream as three calls). Sorted position uniforms give sorted positions (a merged search, and
    # runs of equal items); each draw still gets its own independent thinning uniform.
    r = gen.random(2 * t_proposed + 1)
    log_u = math.log(r[-1] + 1e-300)
    positions, x, pending = _core.dpp_alpha_positions(
        r, t_proposed, state.upper_cumulative, state.upper, state.upper_total, state.refined
    )
    # draw d is kept iff x_d = V_d u_i < l_i; l_i <= (partial bound) <= u_i, so only the draws
    # below the best known bound need l_i: the same decisions, fewer kernel evaluations
    if pending:
        waiting = ~state.refined[positions]
        pending = positions[waiting]
        if state.stage:
            fresh = _runs(pending[~state.bounded[pending]])[0]
            if fresh.size:
                state.bound[fresh] = _partial_bound(state, ev, fresh)
                state.bounded[fresh] = True
        fresh = _runs(pending[x[waiting] < state.bound[pending]])[0]
        if fresh.size:
            exact = _refine(state, ev, fresh)
            if np.any(exact > state.bound[fresh] * (1.0 + 1e-9)):
                raise RuntimeError("alpha-DPP: a refined score exceeds its bound (kernel not PSD?)")
            state.bound[fresh] = exact
            state.refined[fresh] = True
            state.bounded[fresh] = True
            state.unrefined -= fresh.size
    # kept draws: an item not refined has all its draws above l_i
    items, counts, kept = _core.dpp_alpha_keep(positions, x, state.bound)
    return items, counts, int(kept), log_u, gen


def _runs(a):
    """Distinct values and their counts of a sorted 1-D integer array."""
    if a.size == 0:
        return a, np.zeros(0, dtype=np.int64)
    start = np.empty(a.size, dtype=bool)
    start[0] = True
    np.not_equal(a[1:], a[:-1], out=start[1:])
    first = start.nonzero()[0]
    counts = np.empty(first.size, dtype=np.int64)
    np.subtract(first[1:], first[:-1], out=counts[:-1])
    counts[-1] = a.size - first[-1]
    return a[first], counts


def _alpha_sample(state, ev, key, s, k, max_iter, max_size_rejections, stats):
    """Sample ``s`` of an alpha-DPP (k-DPP when ``k`` is given): i.i.d. attempts in counter order,
    each accepted with the alpha-DPP ratio and, for a k-DPP, kept when its DPP sample has k items;
    the first success is returned."""
    R = state.R
    j = 0
    in_a_row = 0  # rejected attempts since the last accepted one
    size_rejections = 0
    while True:
        j += 1
        items, counts, t, log_u, gen = _alpha_proposal(state, ev, key, s, j)
        threshold = log_u - (state.z - state.logdet - t / R)
        logdet, factor, permutation = _attempt_logdet(ev, state, items, counts, state.bound[items], t, threshold)
        accepted = not (items.size and factor is None)
        if accepted:
            _check_ratio(state, logdet, t)
            accepted = logdet >= threshold
        if not accepted:
            stats.rejections += 1
            in_a_row += 1
            if in_a_row >= max_iter:
                raise MaxIterError(
                    f"method 'alpha' rejected max_iter={max_iter} intermediate samples in a row; raise "
                    "max_iter or oversampling (a better dictionary raises the acceptance rate)"
                )
            continue
        stats.attempts.append(in_a_row + 1)
        in_a_row = 0
        S = _finish(items, factor, permutation, gen)
        if k is None or S.size == k:
            return S
        stats.size_rejections += 1
        size_rejections += 1
        if size_rejections >= max_size_rejections:
            raise MaxIterError(
                f"method 'alpha': {max_size_rejections} DPP samples in a row had a size other than k={k}; "
                "raise max_size_rejections"
            )


# Panel width of the progressive Cholesky factorization of I + Lt.
_PANEL = 128


def _progressive_logdet(ev, state, items, weights, a, threshold):
    """logdet(I + Lt) by a left-looking Cholesky factorization, one panel of ``_PANEL`` pivots at a
    time (the pivots with the largest Schur-complement diagonal first), evaluating only the kernel
    columns it reaches.

    The Schur complement of I + Lt is again of the form I + PSD, so its diagonal is >= 1 and
    ``logdet so far + sum(log diagonal of the rest)`` (Hadamard) bounds the final logdet from above:
    once that bound is below ``threshold`` the rejection is certain and the factorization stops.
    Returns ``(logdet, (Lt, U), permutation)``, with ``Lt`` the permuted
    ``Lt[permutation][:, permutation]`` (its lower triangle) and ``U`` the upper Cholesky factor of
    ``I + Lt`` (Fortran order), or ``(bound, None, None)`` on early rejection.
    """
    from scipy.linalg import lapack as scipy_lapack

    m = items.size
    # positions done..m-1 hold the remaining items; chosen pivots are swapped to the front of that
    # range (b rows per panel), so the factor rows of the remaining items stay a contiguous slice
    perm = np.arange(m)
    where = np.arange(m)
    schur = np.maximum(1.0 + a * state.diag[items] * weights * weights, 1.0)
    lower = np.zeros((m, m))  # C order: the pivot row swaps below move contiguous rows
    values = np.zeros((m, m))  # lower triangle of the permuted Lt, for the sample
    done = 0
    logdet = 0.0
    while done < m:
        bound = logdet + float(np.log(schur[done:]).sum())
        if bound < threshold:
            return bound, None, None
        chosen = perm[done + np.argsort(-schur[done:], kind="stable")[: _PANEL]]
        b = chosen.size
        for i in range(b):
            target, q = done + i, chosen[i]
            position = where[q]
            if position != target:
                r = perm[target]
                lower[[position, target], :done] = lower[[target, position], :done]
                values[[position, target], :done] = values[[target, position], :done]
                schur[[position, target]] = schur[[target, position]]
                perm[position], perm[target] = r, q
                where[r], where[q] = position, target
        rows = perm[done:]
        panel = ev.block(items[rows], items[chosen]) * (a * weights[rows][:, None] * weights[chosen][None, :])
        values[done:, done:done + b] = panel
        panel[np.arange(b), np.arange(b)] += 1.0
        if done:
            panel -= lower[done:, :done] @ lower[done:done + b, :done].T
        head = 0.5 * (panel[:b] + panel[:b].T)
        chol, info = scipy_lapack.dpotrf(head, lower=1, clean=1)
        if info != 0:
            raise RuntimeError("I + L_sigma is not positive definite: the kernel is not positive semidefinite")
        inverse, info = scipy_lapack.dtrtri(chol, lower=1)
        if info != 0:
            raise RuntimeError("I + L_sigma is not positive definite: the kernel is not positive semidefinite")
        columns = panel @ np.tril(inverse).T  # panel chol^{-T}
        columns[:b] = chol
        lower[done:, done:done + b] = columns
        logdet += 2.0 * float(np.log(np.diagonal(chol)).sum())
        schur[done:] = np.maximum(schur[done:] - np.einsum("ij,ij->i", columns, columns), 1.0)
        done += b
    # the sequential sampler on L reads the rows of the lower triangle of Lt (C order) and the
    # upper factor U = C^T of I + Lt in Fortran order, which is C's C-ordered copy transposed
    return logdet, (np.ascontiguousarray(values), np.ascontiguousarray(lower).T), perm


# Up to this size I + Lt is factorized at once (its Cholesky factor gives the acceptance test and
# the sample); above it progressively, stopping as soon as the rejection is certain.
_SMALL_DENSE = 300


def _small_dpp_sample(factor, gen):
    """One DPP(Lt) sample from ``factor = (Lt, U)``, U the upper Cholesky factor of I + Lt: the
    sequential sampler on L, O(m k^2) after the factorization."""
    key = gen.integers(0, 2**64, size=2, dtype=np.uint64)
    Lt, U = factor
    samples, _ = _sequential_L_samples(Lt, U, key, 1, 1, lambda: _marginal_from_cholesky(U))
    return samples[0]


def _sample_intermediate(dpp, method, k, count, key, max_iter, options):
    oversampling = check_positive(options.pop("oversampling", 4.0), "oversampling")
    max_size_rejections = check_int(options.pop("max_size_rejections", 1000), "max_size_rejections", minimum=1)
    if options:
        raise TypeError(f"unexpected options {sorted(options)} for method {method!r}")
    if dpp._gpu:
        raise TypeError(f"method {method!r} runs on NumPy input")
    ev = dpp._evaluator()
    if k is not None and dpp._kind == "factor" and k > min(dpp._data.shape):
        raise ValueError(f"k={k} exceeds the rank of the factor ({min(dpp._data.shape)} columns)")
    cache_key = (method, k, oversampling)
    stats = SamplerStats()
    state = dpp._intermediate.get(cache_key)
    if state is None:
        state = _prepare_intermediate(dpp, method, k, oversampling, key)
        dpp._intermediate[cache_key] = state
        stats.kernel_evaluations += state.kernel_evaluations
    out = []
    if k == 0:
        return [np.zeros(0, dtype=np.int64) for _ in range(count)]
    for s in range(count):
        if method == "alpha":
            try:
                out.append(_alpha_sample(state, ev, key, s, k, max_iter, max_size_rejections, stats))
            except MaxIterError:
                dpp.stats = stats
                raise
            continue
        gen = _generator(key, s, _PURPOSE_SAMPLE)
        for _ in range(max_size_rejections):
            S = _one_intermediate_dpp(dpp, state, ev, gen, max_iter, stats)
            if k is None or S.size == k:
                break
            stats.size_rejections += 1
        else:
            dpp.stats = stats
            raise MaxIterError(
                f"method {method!r}: {max_size_rejections} DPP samples in a row had a size other than k={k}; "
                "raise max_size_rejections"
            )
        out.append(S)
    stats.kernel_evaluations += ev.count
    dpp.stats = stats
    return out


# ----------------------------------------------------------------------------------------------
# batched spectral sampler with array operations (the CuPy path; runs on NumPy too)

_PURPOSE_BATCH_PHASE1 = 0x44505000000000B1
_PURPOSE_BATCH_PHASE2 = 0x44505000000000B2


def _spectral_batched(xp, V, lam_K, log_lam, k, table, count, key, chunk_elements=1 << 25):
    """``count`` spectral samples with whole-batch array operations (TFP-style masking).

    Phase 1 runs on the host, vectorised over samples (m small steps); phase 2 runs on ``xp``
    (CuPy on the GPU) for a chunk of samples at a time: each of the ``r_max`` steps is a batched
    GEMV, a cumulative sum and a gather. Uniforms come from two Philox streams of ``key``
    (element ``s * width + j`` for sample ``s``), so the result is a pure function of the key.
    """
    from randnla.random import Stream

    lam_K = np.asarray(lam_K, dtype=np.float64)
    log_lam = np.asarray(log_lam, dtype=np.float64)
    m = lam_K.size
    n = int(V.shape[0])
    if count == 0:
        return []
    u1 = Stream(key=key, counter=[0, 0, 0, _PURPOSE_BATCH_PHASE1]).uniform((count, m)) if m else np.zeros((count, 0))
    if k is None:
        select = u1 < lam_K[None, :]
    else:
        select = np.zeros((count, m), dtype=bool)
        remaining = np.full(count, k, dtype=np.int64)
        with np.errstate(divide="ignore"):
            log_u = np.log(u1)
        for item in range(m, 0, -1):
            active = remaining > 0
            if not active.any():
                break
            ratio = log_lam[item - 1] + table[np.maximum(remaining - 1, 0), item - 1] - table[remaining, item]
            take = active & ((remaining == item) | (log_u[:, item - 1] < ratio))
            select[take, item - 1] = True
            remaining -= take
    sizes = select.sum(1)
    r_max = int(sizes.max()) if count else 0
    if r_max == 0:
        return [xp.zeros(0, dtype=xp.int64) for _ in range(count)]
    # selected eigenvector indices, padded with column 0 and masked
    order = np.argsort(~select, axis=1, kind="stable")[:, :r_max]
    mask = np.arange(r_max)[None, :] < sizes[:, None]
    like = V if is_cupy(V) else None
    u2 = Stream(key=key, counter=[0, 0, 0, _PURPOSE_BATCH_PHASE2]).uniform((count, r_max), like=like)
    u2 = xp.asarray(u2)
    out = []
    chunk = max(1, chunk_elements // max(1, n * r_max))
    for c0 in range(0, count, chunk):
        c1 = min(count, c0 + chunk)
        b = c1 - c0
        idx = xp.asarray(order[c0:c1])
        msk = xp.asarray(mask[c0:c1], dtype=xp.float64)
        active_size = xp.asarray(sizes[c0:c1])
        VJ = xp.transpose(V[:, idx], (1, 0, 2)) * msk[:, None, :]  # (b, n, r)
        residual = (VJ * VJ).sum(2)
        Q = xp.zeros((b, r_max, r_max))
        picks = xp.full((b, r_max), n, dtype=xp.int64)
        rows = xp.arange(b)
        for t in range(r_max):
            active = active_size > t
            cums = xp.cumsum(residual, axis=1)
            total = cums[:, -1]
            target = u2[c0:c1, t] * total
            pick = (cums <= target[:, None]).sum(axis=1)
            last_positive = n - 1 - xp.argmax(residual[:, ::-1] > 0, axis=1)
            pick = xp.minimum(pick, last_positive)
            v = VJ[rows, pick, :]
            for _ in range(2):
                if t:
                    coeff = xp.einsum("btr,br->bt", Q[:, :t], v)
                    v = v - xp.einsum("bt,btr->br", coeff, Q[:, :t])
            norm = xp.sqrt((v * v).sum(1))
            ok = active & (norm > 0) & (total > 0)
            w = xp.where(ok[:, None], v / xp.where(norm > 0, norm, 1.0)[:, None], 0.0)
            Q[:, t] = w
            dots = xp.einsum("bnr,br->bn", VJ, w)
            residual = xp.maximum(residual - dots * dots, 0.0)
            residual[rows, pick] = xp.where(ok, 0.0, residual[rows, pick])
            picks[:, t] = xp.where(ok, pick, n)
        picks = xp.sort(picks, axis=1)
        counts = (picks < n).sum(1)
        counts_host = counts.get() if hasattr(counts, "get") else np.asarray(counts)
        for s in range(b):
            out.append(picks[s, : int(counts_host[s])].copy())
    return out


def _spectral_sample_gpu(dpp, k, count, key):
    V, _, lam_K, log_lam = dpp._get_spectrum()
    xp = dpp._xp
    lam_host = lam_K.get() if hasattr(lam_K, "get") else np.asarray(lam_K)
    log_host = log_lam.get() if hasattr(log_lam, "get") else np.asarray(log_lam)
    table = dpp._esp_table(k) if k is not None else None
    return _spectral_batched(xp, V, lam_host, log_host, k, table, count, key)


# ----------------------------------------------------------------------------------------------
# beta-ensembles


def beta_ensemble(kind, N, beta, *, rng=None, loc=0.0, scale=None, M=None, M1=None, M2=None, a=None, b=None,
                  shape=None, n_threads=None):
    """Sample the N points of a Hermite, Laguerre or Jacobi beta-ensemble.

    The points have joint density proportional to ``|Delta(x)|^beta prod_i w(x_i)``, any ``beta > 0``
    (``beta = 2``: a DPP). They are the eigenvalues of a random tridiagonal matrix
    (Dumitriu-Edelman 2002 for Hermite and Laguerre, Killip-Nenciu 2004 for Jacobi), built in O(N).
    Their eigenvalues come from Sturm-count bisection to isolate each one, then Laguerre's
    iteration on the characteristic polynomial (cubic convergence), evaluated for 16 eigenvalues at
    once in SIMD lanes: O(N^2), no eigenvectors, absolute accuracy of order ``eps |T|`` per
    eigenvalue (as LAPACK's ``dsterf``, which it outpaces several times). With
    ``c_i = beta (N-1-i)/2``:

    - ``"hermite"``: ``w(x) = exp(-(x - loc)^2 / (2 scale^2))`` (default ``scale = sqrt(2)``);
      diagonal ``N(loc, scale^2)``, squared off-diagonal ``Gamma(c_i, scale^2)``. For large N,
      ``(x - loc) / (scale sqrt(beta N / 2))`` follows the semicircle law on [-2, 2].
    - ``"laguerre"``: ``w(x) = x^(shape-1) exp(-x / scale)`` on x > 0 (default ``scale = 2``), with
      ``shape = beta (M - N + 1) / 2`` for ``M >= N`` (default ``M = 2N``) unless ``shape`` is given:
      the eigenvalues of a beta-Wishart matrix. ``x / (beta M)`` follows Marchenko-Pastur with ratio
      ``N / M``.
    - ``"jacobi"``: ``w(x) = x^(a-1) (1-x)^(b-1)`` on [0, 1], with ``a = beta (M1 - N + 1) / 2``,
      ``b = beta (M2 - N + 1) / 2`` when ``M1, M2 >= N`` are given (MANOVA; Wachter law) and
      ``a = b = 1`` by default.

    Parameters
    ----------
    kind : {"hermite", "laguerre", "jacobi"}
    N : int
        Number of points.
    beta : float
        Inverse temperature, > 0.
    rng : None, int, SeedSequence, BitGenerator or Generator
        The variates come from a Philox4x64-10 stream keyed from ``rng``.
    n_threads : int, optional
        Threads for the eigenvalues of large models (N >= 3000; all cores by default). The result
        does not depend on it.

    Returns
    -------
    ndarray of float64, shape (N,)
        The points in increasing order.

    Examples
    --------
    >>> from randnla.dpp import beta_ensemble
    >>> x = beta_ensemble("hermite", 100, 2.0, rng=0)
    >>> x.shape
    (100,)
    """
    kind = check_choice(kind, "kind", ("hermite", "laguerre", "jacobi"))
    N = check_int(N, "N", minimum=1)
    beta = check_positive(beta, "beta")
    gen = np.random.Generator(np.random.Philox(key=philox_key(rng)))
    c = beta * (N - 1 - np.arange(N)) / 2.0
    if kind == "hermite":
        if M is not None or M1 is not None or M2 is not None or a is not None or b is not None or shape is not None:
            raise TypeError("hermite takes loc and scale only")
        scale = math.sqrt(2.0) if scale is None else check_positive(scale, "scale")
        if not (isinstance(loc, (int, float)) and math.isfinite(loc)):
            raise ValueError(f"loc must be a finite real number, got {loc!r}")
        diagonal = gen.normal(loc, scale, size=N)
        off_squared = gen.gamma(c[:-1], scale**2) if N > 1 else np.zeros(0)
    elif kind == "laguerre":
        if M1 is not None or M2 is not None or a is not None or b is not None:
            raise TypeError("laguerre takes M (or shape) and scale")
        scale = 2.0 if scale is None else check_positive(scale, "scale")
        if shape is None:
            M = 2 * N if M is None else check_int(M, "M", minimum=N)
            shape = beta * (M - N + 1) / 2.0
        else:
            if M is not None:
                raise TypeError("give M or shape, not both")
            shape = check_positive(shape, "shape")
        odd = gen.gamma(c + shape, scale)
        even = np.zeros(N)
        if N > 1:
            even[1:] = gen.gamma(c[:-1], scale)
        diagonal = odd + even
        off_squared = odd[:-1] * even[1:]
    else:
        if M is not None or shape is not None or scale is not None:
            raise TypeError("jacobi takes M1 and M2, or a and b")
        if M1 is not None or M2 is not None:
            if M1 is None or M2 is None or a is not None or b is not None:
                raise TypeError("give both M1 and M2 (and not a, b)")
            M1 = check_int(M1, "M1", minimum=N)
            M2 = check_int(M2, "M2", minimum=N)
            a = beta * (M1 - N + 1) / 2.0
            b = beta * (M2 - N + 1) / 2.0
        a = 1.0 if a is None else check_positive(a, "a")
        b = 1.0 if b is None else check_positive(b, "b")
        c_odd = gen.beta(c + a, c + b)
        c_even = np.zeros(N)
        if N > 1:
            c_even[1:] = gen.beta(c[:-1], c[1:] + a + b)
        xi_odd = (1.0 - c_even) * c_odd
        xi_even = np.zeros(N)
        if N > 1:
            xi_even[1:] = (1.0 - c_odd[:-1]) * c_even[1:]
        diagonal = xi_odd + xi_even
        off_squared = xi_odd[:-1] * xi_even[1:]
    return _core.dpp_tridiagonal_eigenvalues(diagonal, np.sqrt(off_squared), check_n_threads(n_threads))
