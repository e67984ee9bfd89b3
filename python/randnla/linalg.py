"""Jacobi eigen- and singular value decompositions: accurate, batched, with a random pivot rule.

Jacobi's method diagonalizes a symmetric matrix by plane rotations. With a *relative* stopping
test (rotate the pair (p, q) only while ``|a_pq| > tol * sqrt(|a_pp a_qq|)``) and no
tridiagonalization, it computes every eigenvalue of a graded positive definite matrix
``H = D A D`` to high relative accuracy (Demmel and Veselic, 1992), where LAPACK's QR-based
drivers (``numpy.linalg.eigh``) lose every digit of the small eigenvalues. Its simple structure
also makes it fast on large stacks of small matrices: groups of matrices are processed together,
one per SIMD lane, and groups run on all cores.

Three pivot rules choose the pairs:

- ``"cyclic"``: row-cyclic order (0, 1), (0, 2), ..., (n-2, n-1); quadratic convergence.
- ``"round_robin"``: the parallel (circle-method) order, n - 1 rounds of disjoint pairs; the
  order the batched CPU kernel and the GPU kernel prefer.
- ``"random"``: a uniformly random pair at each step (Detherage and Shah, "Matrix
  factorizations with uniformly random pivoting", arXiv 2505.02023): the expected squared
  off-diagonal norm decreases by exactly the factor ``1 - 1/N`` per rotation,
  ``N = n (n - 1) / 2``. Linear convergence (a few times more rotations than cyclic); the pairs
  come from Philox streams addressed by (matrix index, rotation index), so the result depends
  on ``rng`` only, never on the number of threads. ``max_sweeps`` counts blocks of N rotations.

Large matrices (``n >= BLOCKED_MIN_N``, default 128; below it the element-wise kernel, SIMD
across the batch, is faster on stacks) run a blocked solver: the indices are split into blocks
of ``BLOCK_SIZE`` columns (automatic by default: 16 below n = 256, 32 below 1024, then 64); a
sweep visits every pair of blocks once in round-robin order, the disjoint pairs of one step
together; each pair's ``2b x 2b`` diagonal block gets one sweep of the element-wise kernel
(every other step only over the ``b x b`` pairs between the two blocks; SIMD across the pairs,
on the calling thread) and its orthogonal transform is applied to the rest of ``A`` and to the
eigenvectors with BLAS-3 matrix products (the BLAS's own threads are the only threads there:
``n_threads`` does not apply). A pair whose block already passes the relative test is skipped,
and the solve stops after a sweep that skips every pair, so the stopping rule is the same
element-wise relative test and the eigenvalues are still read off the diagonal (no
tridiagonalization, no shift). Inside each pair the order is row-cyclic for every ``pivot``
(the fastest there); ``"random"`` relabels the blocks by a random permutation (from ``rng``) at
every sweep, so that the pairs of blocks met together are random; the exact ``1 - 1/N`` law of
the random rule holds on the element-wise path (``n < BLOCKED_MIN_N``) only.

Functions: :func:`eigh`, :func:`eigvalsh`, :func:`svd` (one-sided Hestenes Jacobi) and
:func:`eigh_spd` (Cholesky, then one-sided Jacobi on the factor: the accurate route for
positive definite matrices).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from randnla import _backend, _rng, _validate

__all__ = ["JacobiInfo", "eigh", "eigvalsh", "svd", "eigh_spd", "PIVOTS", "BLOCKED_MIN_N", "BLOCK_SIZE"]

PIVOTS = ("cyclic", "round_robin", "random")
_PIVOT_CODES = {name: code for code, name in enumerate(PIVOTS)}

# Matrices with n >= BLOCKED_MIN_N go to the blocked solver of eigh/eigvalsh (CPU); BLOCK_SIZE is
# its number of columns per block (None: automatic). Module settings, read at each call.
BLOCKED_MIN_N = 128
BLOCK_SIZE = None

# Largest n handled by the GPU batched kernel (one matrix per thread block, in shared memory).
GPU_MAX_N = 32


@dataclass
class JacobiInfo:
    """How a Jacobi solve went, per matrix of the batch.

    Attributes have the batch shape of the input (``()`` for a single matrix, then they are
    Python scalars).

    Attributes
    ----------
    converged : bool or ndarray of bool
        Every pair passed the relative test at exit.
    sweeps : int or ndarray of int
        Sweeps that performed at least one rotation (random rule: blocks of N draws).
    rotations : int or ndarray of int
        Rotations performed (pairs skipped by the relative test are not counted).
    off_diagonal : float or ndarray of float
        Final scaled off-diagonal size ``max_{p<q} |a_pq| / sqrt(|a_pp a_qq|)`` (for the
        one-sided solvers, the largest cosine ``|g_p . g_q| / (||g_p|| ||g_q||)``).
    tol : float
        The relative threshold used.
    pivot : str
        The pivot rule used.
    """

    converged: object
    sweeps: object
    rotations: object
    off_diagonal: object
    tol: float
    pivot: str


def _scalarize(x, batch_shape):
    x = np.asarray(x).reshape(batch_shape)
    return x.item() if x.ndim == 0 else x


def _make_info(raw, batch_shape, tol, pivot, what, stacklevel=4):
    converged, sweeps, rotations, off = raw
    info = JacobiInfo(
        converged=_scalarize(converged, batch_shape),
        sweeps=_scalarize(sweeps, batch_shape),
        rotations=_scalarize(rotations, batch_shape),
        off_diagonal=_scalarize(off, batch_shape),
        tol=float(tol),
        pivot=pivot,
    )
    failed = int(np.size(converged) - np.count_nonzero(converged))
    if failed:
        warnings.warn(
            f"{what}: Jacobi did not converge for {failed} of {np.size(converged)} matri"
            f"{'x' if np.size(converged) == 1 else 'ces'} within max_sweeps (largest scaled off-diagonal "
            f"{float(np.max(off)):.2e} > tol {tol:.2e}); increase max_sweeps or tol",
            RuntimeWarning,
            stacklevel=stacklevel,
        )
    return info


def _common_arguments(pivot, tol, max_sweeps, n_threads, dtype, n):
    _validate.check_choice(pivot, "pivot", PIVOTS)
    eps = float(np.finfo(dtype).eps)
    if tol is None:
        tol = math.sqrt(max(n, 1)) * eps
    else:
        tol = _validate.check_positive(tol, "tol", strict=False)
    if max_sweeps is None:
        max_sweeps = 100 if pivot == "random" else 30
    else:
        max_sweeps = _validate.check_int(max_sweeps, "max_sweeps", minimum=0)
    threads = _validate.check_n_threads(n_threads)
    return tol, max_sweeps, threads


def _key(pivot, rng):
    if pivot == "random":
        return _rng.philox_key(rng)
    return np.zeros(2, dtype=np.uint64)


def _prepare_square(A, name):
    xp = _backend.namespace_of(A)
    arr = _validate.as_float_array(A, name, xp=xp, min_ndim=2)
    _validate.check_square(arr, name)
    if xp is not np:
        # The C++ core checks NumPy input in one parallel pass (finite, symmetric).
        _validate.check_finite(arr, name)
        _validate.check_symmetric(arr, name)
    return xp, arr


def _eigh_impl(A, *, vectors, pivot, tol, max_sweeps, rng, return_info, n_threads, spd, what):
    xp, arr = _prepare_square(A, "A")
    n = arr.shape[-1]
    tol, max_sweeps, threads = _common_arguments(pivot, tol, max_sweeps, n_threads, arr.dtype, n)
    key = _key(pivot, rng)
    batch_shape = arr.shape[:-2]
    if xp is not np:
        if spd:
            raise TypeError("eigh_spd runs on NumPy arrays only for now; use eigh for CuPy input")
        w, v, raw = _eigh_gpu(arr, vectors=vectors, pivot=pivot, tol=tol, max_sweeps=max_sweeps, key=key)
        info = _make_info(raw, batch_shape, tol, pivot, what)
        out = (w.reshape(batch_shape + (n,)),)
        if vectors:
            out = out + (v.reshape(batch_shape + (n, n)),)
        if return_info:
            out = out + (info,)
        return out if len(out) > 1 else out[0]
    from randnla import _core

    stack = np.ascontiguousarray(arr.reshape((math.prod(batch_shape), n, n)))
    kernel = _core.jacobi_eigh_float32 if arr.dtype == np.float32 else _core.jacobi_eigh_float64
    block = 0 if BLOCK_SIZE is None else _validate.check_int(BLOCK_SIZE, "BLOCK_SIZE", minimum=1)
    min_n = _validate.check_int(BLOCKED_MIN_N, "BLOCKED_MIN_N", minimum=0)
    w, v, raw = kernel(stack, _PIVOT_CODES[pivot], tol, max_sweeps, vectors, key, threads, spd,
                       _validate.symmetry_tolerance(arr.dtype), min_n, block)
    w = w.reshape(batch_shape + (n,))
    info = _make_info(raw, batch_shape, tol, pivot, what)
    out = (w, v.reshape(batch_shape + (n, n))) if vectors else (w,)
    if return_info:
        out = out + (info,)
    return out if len(out) > 1 else out[0]


def _eigh_gpu(arr, *, vectors, pivot, tol, max_sweeps, key):
    """CuPy path: the batched kernel of cpp/cuda/jacobi_eigh.cu for n <= GPU_MAX_N, else cuSOLVER.

    Deterministic rules run in round-robin order on the GPU (a round of disjoint pairs is one
    parallel step); the random rule uses the same Philox pair stream as the CPU.
    """
    from randnla import _gpu

    cp = _gpu.cupy()
    n = arr.shape[-1]
    stack = cp.ascontiguousarray(arr.reshape((math.prod(arr.shape[:-2]), n, n)))
    batch = stack.shape[0]
    if n > GPU_MAX_N:
        # Documented fallback: cuSOLVER syevd (normwise accuracy, no Jacobi sweeps).
        if vectors:
            w, v = cp.linalg.eigh(stack)
        else:
            w, v = cp.linalg.eigvalsh(stack), None
        raw = (np.ones(batch, dtype=bool), np.zeros(batch, dtype=np.int32), np.zeros(batch, dtype=np.int64),
               np.zeros(batch))
        return w, v, raw
    real = np.float32 if arr.dtype == np.float32 else np.float64
    name = "jacobi_eigh_batched_float32" if real == np.float32 else "jacobi_eigh_batched_float64"
    kernel = _gpu.get_kernel("jacobi_eigh.cu", name)
    w = cp.empty((batch, n), dtype=real)
    v = cp.empty((batch, n, n), dtype=real) if vectors else cp.empty((1,), dtype=real)
    sweeps = cp.zeros(batch, dtype=cp.int32)
    rotations = cp.zeros(batch, dtype=cp.int64)
    converged = cp.zeros(batch, dtype=cp.uint8)
    if batch and n:
        threads = 32 if n <= 8 else (64 if n <= 16 else 128)
        kernel((batch,), (threads,), (stack, np.int32(n), real(tol), np.int32(max_sweeps), np.int32(bool(vectors)),
                                      np.int32(pivot == "random"), np.uint64(key[0]), np.uint64(key[1]), w, v,
                                      sweeps, rotations, converged))
    elif batch:
        converged.fill(1)
    # Per-matrix reports are small: bring them to the host for the info object and the warning.
    off = np.zeros(batch)
    conv = cp.asnumpy(converged).astype(bool)
    if not conv.all():
        off = np.where(conv, 0.0, np.nan)  # the kernel does not report the size of what is left
    raw = (conv, cp.asnumpy(sweeps), cp.asnumpy(rotations), off)
    return w, (v if vectors else None), raw


def eigh(A, *, pivot="cyclic", tol=None, max_sweeps=None, rng=None, return_info=False, n_threads=None):
    """Eigenvalues and eigenvectors of symmetric matrices by two-sided Jacobi.

    Same conventions as ``numpy.linalg.eigh``: ascending eigenvalues ``w`` and orthonormal
    eigenvectors in the columns of ``V``, batched over leading dimensions. The stopping test is
    relative, ``|a_pq| <= tol * sqrt(|a_pp a_qq|)`` for every pair, and the eigenvalues are read
    off the final diagonal, so graded matrices (``D A D`` with ``D`` diagonal, ``A`` well
    conditioned, positive definite or scaled diagonally dominant) get every eigenvalue to high
    relative accuracy, not just to ``eps * ||A||``.

    Parameters
    ----------
    A : (..., n, n) array_like
        Real symmetric matrices (float32 or float64; integers become float64). Symmetry is
        checked to ~100 ulps relative to ``max |A|`` (``ValueError`` otherwise); only the upper
        triangle is used. Complex input raises ``TypeError``. NumPy or CuPy.
    pivot : {"cyclic", "round_robin", "random"}
        Pair ordering (see the module docstring). ``"random"`` is the provable mode.
    tol : float, optional
        Relative threshold; default ``sqrt(n) * eps`` of the dtype.
    max_sweeps : int, optional
        Default 30 (100 blocks of ``n (n - 1) / 2`` rotations for ``"random"``). If some matrix
        has not converged by then, a ``RuntimeWarning`` is issued and ``info.converged`` says
        which.
    rng : None, int, SeedSequence, BitGenerator or Generator
        Seeds the random pivots (only used by ``pivot="random"``).
    return_info : bool
        Also return a :class:`JacobiInfo`.
    n_threads : int, optional
        Threads across the batch (default: all cores). Results do not depend on it. The
        blocked solver (``n >= BLOCKED_MIN_N``) leaves its threading to the BLAS.

    Returns
    -------
    w : (..., n) ndarray
        Eigenvalues in ascending order (the dtype of ``A``).
    V : (..., n, n) ndarray
        ``V[..., :, k]`` is the eigenvector of ``w[..., k]``.
    info : JacobiInfo
        Only with ``return_info=True``.

    Notes
    -----
    Stacks of matrices run in groups of 16 (float64) or 32 (float32) matrices, one per SIMD
    lane (the loops over a group vectorize across matrices; sizes 2-8, 16 and 32 are compiled
    for their n); each matrix gets exactly the result it would get alone, and ``"cyclic"`` or
    ``"round_robin"`` give the same bits for any batching and thread count. The random rule
    runs one matrix at a time, its pairs drawn from the stream of the matrix's index in the
    batch. Matrices with ``n >= BLOCKED_MIN_N`` run one at a time through the blocked solver
    described in the module docstring (BLAS-3 updates, pairs of blocks in parallel; same
    relative stopping test, results independent of the thread count); it still costs several
    times ``numpy.linalg.eigh`` on one large matrix (use Jacobi there for its accuracy).
    CuPy input with n <= 32 runs a batched GPU kernel (one matrix per thread block, the
    relative test): ``"cyclic"`` and ``"round_robin"`` both run in round-robin order there (a
    round of disjoint pairs is one parallel step), ``"random"`` draws the same Philox pairs as
    the CPU; ``info.off_diagonal`` is 0 for converged matrices and NaN otherwise. Larger CuPy
    matrices fall back to ``cupy.linalg.eigh`` (cuSOLVER syevd: normwise, not relative,
    accuracy; ``info`` then reports zero sweeps).

    Examples
    --------
    >>> import numpy as np
    >>> from randnla.linalg import eigh
    >>> A = np.array([[2.0, 1.0], [1.0, 2.0]])
    >>> w, V = eigh(A)
    >>> np.allclose(w, [1.0, 3.0]), np.allclose(A @ V, V * w)
    (True, True)
    >>> w, V, info = eigh(A, pivot="random", rng=0, return_info=True)
    >>> bool(info.converged)
    True
    """
    return _eigh_impl(A, vectors=True, pivot=pivot, tol=tol, max_sweeps=max_sweeps, rng=rng,
                      return_info=return_info, n_threads=n_threads, spd=False, what="eigh")


def eigvalsh(A, *, pivot="cyclic", tol=None, max_sweeps=None, rng=None, return_info=False, n_threads=None):
    """Eigenvalues (ascending) of symmetric matrices by two-sided Jacobi.

    Like :func:`eigh` without the eigenvectors (faster: no rotations are accumulated). Same
    parameters; returns ``w`` (and the info object with ``return_info=True``).

    Examples
    --------
    >>> import numpy as np
    >>> from randnla.linalg import eigvalsh
    >>> np.allclose(eigvalsh(np.diag([3.0, 1.0, 2.0])), [1.0, 2.0, 3.0])
    True
    """
    return _eigh_impl(A, vectors=False, pivot=pivot, tol=tol, max_sweeps=max_sweeps, rng=rng,
                      return_info=return_info, n_threads=n_threads, spd=False, what="eigvalsh")


def eigh_spd(A, *, compute_v=True, pivot="cyclic", tol=None, max_sweeps=None, rng=None, return_info=False,
             n_threads=None):
    """Eigen-decomposition of symmetric positive definite matrices to high relative accuracy.

    The Veselic-Hari route: Cholesky ``A = L L^T`` (LAPACK potrf), then one-sided Jacobi on the
    columns of ``G = L^T`` (``A = G^T G``): the eigenvalues are the squared column norms
    ``||g_j||^2``, the eigenvectors the accumulated rotations. For ``A = D B D`` with ``B`` well
    conditioned, ``G`` is column-graded, which one-sided Jacobi handles to full relative
    accuracy.

    Parameters
    ----------
    A : (..., n, n) array_like
        Symmetric positive definite matrices; ``ValueError`` when the Cholesky factorization
        fails (not positive definite in working precision). NumPy only (CuPy input raises
        ``TypeError``).
    compute_v : bool
        Return the eigenvectors too (default).
    pivot, tol, max_sweeps, rng, return_info, n_threads
        As in :func:`eigh`; the relative test is on cosines, ``|g_p . g_q| <= tol ||g_p|| ||g_q||``.

    Returns
    -------
    w : (..., n) ndarray
        Ascending eigenvalues.
    V : (..., n, n) ndarray
        Eigenvectors (columns); only with ``compute_v=True``.
    info : JacobiInfo
        Only with ``return_info=True``.

    Examples
    --------
    >>> import numpy as np
    >>> from randnla.linalg import eigh_spd
    >>> d = np.array([1.0, 1e-8, 1e-16])
    >>> H = d[:, None] * np.array([[2.0, 0.5, 0.2], [0.5, 2.0, 0.5], [0.2, 0.5, 2.0]]) * d
    >>> w = eigh_spd(H, compute_v=False)
    >>> bool(abs(w[0] / 1.8e-32 - 1.1) < 0.2)
    True
    """
    return _eigh_impl(A, vectors=compute_v, pivot=pivot, tol=tol, max_sweeps=max_sweeps, rng=rng,
                      return_info=return_info, n_threads=n_threads, spd=True, what="eigh_spd")


def svd(A, *, full_matrices=False, compute_uv=True, pivot="cyclic", tol=None, max_sweeps=None, rng=None,
        return_info=False, n_threads=None):
    """Singular value decomposition by one-sided (Hestenes) Jacobi.

    Same conventions as ``numpy.linalg.svd``: ``A = U @ diag(s) @ Vh`` with ``s`` descending,
    batched over leading dimensions (default ``full_matrices=False`` here). Orthogonal rotations
    are applied to the columns of ``A`` (of ``A^T`` when ``m < n``) until every pair of columns is
    numerically orthogonal, ``|g_p . g_q| <= tol ||g_p|| ||g_q||``; then ``s_j = ||g_j||``. For
    column-graded matrices ``A = B D`` the small singular values keep high relative accuracy,
    which ``numpy.linalg.svd`` (bidiagonalization) loses.

    Parameters
    ----------
    A : (..., m, n) array_like
        Real matrices (float32/float64), NumPy. Complex input raises ``TypeError``.
    full_matrices : bool
        Return square ``U`` (m, m) and ``Vh`` (n, n); the extra orthonormal columns come from a
        QR factorization (LAPACK geqrf/orgqr). Also used for the singular vectors of zero
        singular values.
    compute_uv : bool
        Return ``U`` and ``Vh``; otherwise only ``s``.
    pivot, tol, max_sweeps, rng, return_info, n_threads
        As in :func:`eigh`; the default tol is ``sqrt(max(m, n)) * eps``.

    Returns
    -------
    U : (..., m, k) or (..., m, m) ndarray
    s : (..., k) ndarray, k = min(m, n)
    Vh : (..., k, n) or (..., n, n) ndarray
        Only ``s`` when ``compute_uv=False``; ``info`` appended with ``return_info=True``.

    Examples
    --------
    >>> import numpy as np
    >>> from randnla.linalg import svd
    >>> A = np.random.default_rng(0).standard_normal((5, 3))
    >>> U, s, Vh = svd(A, pivot="random", rng=0)
    >>> np.allclose(U * s @ Vh, A), np.allclose(s, np.linalg.svd(A, compute_uv=False))
    (True, True)
    """
    xp = _backend.namespace_of(A)
    if xp is not np:
        raise TypeError("randnla.linalg.svd runs on NumPy arrays only for now; use cupy.linalg.svd for CuPy input")
    arr = _validate.as_float_array(A, "A", xp=np, min_ndim=2)
    _validate.check_finite(arr, "A")
    m, n = arr.shape[-2:]
    tol, max_sweeps, threads = _common_arguments(pivot, tol, max_sweeps, n_threads, arr.dtype, max(m, n))
    key = _key(pivot, rng)
    batch_shape = arr.shape[:-2]
    from randnla import _core

    stack = np.ascontiguousarray(arr.reshape((math.prod(batch_shape), m, n)))
    kernel = _core.jacobi_svd_float32 if arr.dtype == np.float32 else _core.jacobi_svd_float64
    s, u, vh, raw = kernel(stack, _PIVOT_CODES[pivot], tol, max_sweeps, bool(compute_uv), bool(full_matrices), key,
                           threads)
    info = _make_info(raw, batch_shape, tol, pivot, "svd", stacklevel=3)
    k = min(m, n)
    s = s.reshape(batch_shape + (k,))
    if compute_uv:
        out = (u.reshape(batch_shape + u.shape[1:]), s, vh.reshape(batch_shape + vh.shape[1:]))
    else:
        out = (s,)
    if return_info:
        out = out + (info,)
    return out if len(out) > 1 else out[0]
