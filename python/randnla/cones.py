"""Exact Euclidean projections onto spectral matrix cones and the vector cones behind them.

A spectral matrix cone is defined from a function of the eigenvalues (symmetric matrices) or
the singular values (any matrix). By the reduction theorem (Lewis 1995/1996; Cederberg & Boyd
2025), projecting a matrix onto such a cone reduces to projecting its eigenvalues or singular
values onto the matching vector cone and reassembling with the same vectors. The cost is one
decomposition through LAPACK (a tridiagonal reduction and its eigenproblem, then only the
eigenvectors that change are back-transformed; the spectraplex computes the eigenvalues first and
only the eigenvectors it keeps; the singular-value cones take that route on the Gram matrix when
only singular values above 5% of the largest change, ``gesdd`` otherwise), an
O(n log n) vector step that is exact to machine precision (ties, faces and polar points
included), and one BLAS-3 reassembly; inputs that a cheap test proves to be in the cone or its
polar cone skip the decomposition.

Every projection

- accepts a leading batch dimension (``X`` of shape ``(..., n, n)`` or ``(..., m, n)``, with ``t``
  and ``v`` of the batch shape or broadcastable to it); small matrices (n <= 32 symmetric, m, n <= 16
  rectangular) use double-precision solvers threaded across the batch with OpenMP (the batched
  Jacobi eigensolver of :mod:`randnla.linalg` for symmetric n <= 10 and on the Gram matrices of
  the singular-value cones for min(m, n) <= 10; tridiagonal QL, which computes the eigenvalues
  first and then only the eigenvectors that change, for symmetric 10 < n <= 32 and on the Gram
  matrices for larger min(m, n); one-sided Jacobi where the Gram route does not apply);
  symmetric matrices up to n = 104 (72 for the log-det cone) take the same QL solver one after
  the other (after the cheap in-cone / polar tests), as does the Gram matrix of a single
  rectangular matrix with min(m, n) <= 48; larger ones call LAPACK one after the other,
- keeps float32 as float32 and float64 as float64 (the vector step always runs in float64),
- takes ``dual=True`` to project onto the dual cone instead (Moreau: P_K*(z) = z + P_K(-z)),
- runs on the GPU for CuPy input (cuSOLVER decompositions, cuBLAS reassembly; the O(n) vector
  step runs on the host on the n eigenvalues only),
- never mutates its input and returns the projected point in the same structure.

Matrix cones: :func:`project_psd`, :func:`project_logdet_cone`, :func:`project_nuclear_norm_cone`,
:func:`project_spectral_norm_cone`, :func:`project_sum_largest_cone`; sets:
:func:`project_nuclear_norm_ball`, :func:`project_spectral_norm_ball`, :func:`project_spectraplex`.
Vector cones: :func:`project_nonneg`, :func:`project_soc`, :func:`project_exp_cone`,
:func:`project_power_cone`, :func:`project_log_cone`, :func:`project_l1_norm_cone`,
:func:`project_linf_norm_cone`, :func:`project_sum_largest_vector_cone`.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from randnla import _core
from randnla._backend import asnumpy, is_cupy, namespace_of
from randnla._validate import as_float_array, check_finite, check_int, check_n_threads, check_positive

__all__ = [
    "project_psd",
    "project_logdet_cone",
    "project_nuclear_norm_cone",
    "project_spectral_norm_cone",
    "project_sum_largest_cone",
    "project_nuclear_norm_ball",
    "project_spectral_norm_ball",
    "project_spectraplex",
    "project_nonneg",
    "project_soc",
    "project_exp_cone",
    "project_power_cone",
    "project_log_cone",
    "project_l1_norm_cone",
    "project_linf_norm_cone",
    "project_sum_largest_vector_cone",
]

# Cone kinds of the C++ core (randnla/cones/vector_step.hpp).
_NONNEG, _SOC, _EXP, _POWER, _LOG, _L1, _LINF, _TOPK, _L1_BALL, _LINF_BALL, _SIMPLEX = range(11)
_CONVENTIONS = ("hypograph", "epigraph")


# ---------------------------------------------------------------- plumbing
def _check_bool(value, name):
    if type(value) is bool:
        return value
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return bool(value)


def _check_convention(convention):
    if convention not in _CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r}; expected 'hypograph' or 'epigraph'")
    return convention


def _scalar_part(t, name, batch_shape, xp, dtype):
    """``t`` broadcast to the batch shape, as float64 (validated)."""
    if t is None:
        raise TypeError(f"{name} must be a real number or array, got None")
    if isinstance(t, numbers.Real) and not isinstance(t, (bool, np.bool_)):
        arr = xp.full(batch_shape, float(t), dtype=xp.float64)
    else:
        arr = as_float_array(t, name, xp=xp)
        try:
            arr = xp.broadcast_to(arr, batch_shape)
        except ValueError:
            raise ValueError(
                f"{name} must have the batch shape {tuple(batch_shape)} (or broadcast to it), got {tuple(arr.shape)}"
            ) from None
        arr = arr.astype(xp.float64)
    check_finite(arr, name)
    return arr


def _matrix(X, name, xp, square):
    arr = as_float_array(X, name, xp=xp, min_ndim=2)
    if square and arr.shape[-1] != arr.shape[-2]:
        raise ValueError(f"{name} must be square (shape (..., n, n)), got shape {tuple(arr.shape)}")
    if arr.shape[-1] == 0 or arr.shape[-2] == 0:
        raise ValueError(f"{name} must have nonzero matrix dimensions, got shape {tuple(arr.shape)}")
    return arr


# ---------------------------------------------------------------- fast path
# One plain float32/float64 NumPy matrix with Python/NumPy scalars is the inner loop of a
# first-order solver: it goes straight to the C++ core, which checks finiteness, symmetry and
# k itself; anything else (batches, lists, CuPy, NaN scalars for the error messages) takes the
# general path below.
_F64, _F32 = np.dtype(np.float64), np.dtype(np.float32)


def _fast_matrix(X, square):
    # identity tests on the (cached) native dtypes: other spellings take the general path
    if type(X) is np.ndarray and X.ndim == 2:
        dt = X.dtype
        if dt is _F64 or dt is _F32:
            rows, cols = X.shape
            if rows and cols and (not square or rows == cols):
                return X
    return None


def _fast_scalar(t):
    if type(t) is float or type(t) is int or isinstance(t, np.floating):
        t = float(t)
        if math.isfinite(t):
            return t
    return None


def _sym_fast(kind, X, t, v, param, dual, n_threads):
    fn = _core.cones.sym_cone_one_float32 if X.dtype is _F32 else _core.cones.sym_cone_one_float64
    return fn(kind, X, t, v, float(param), dual, n_threads)


def _svd_fast(kind, X, t, param, n_threads):
    fn = _core.cones.svd_cone_one_float32 if X.dtype is _F32 else _core.cones.svd_cone_one_float64
    return fn(kind, X, t, float(param), n_threads)


def _svd_cone(kind, t, X, n_threads):
    """(t, P) of a singular-value cone: the one-matrix fast path, else the general route."""
    ft = _fast_scalar(t)
    if ft is not None and _fast_matrix(X, False) is not None:
        P, to = _svd_fast(kind, X, ft, 0.0, n_threads)
        return to, P
    xp = namespace_of(t, X)
    X = _matrix(X, "X", xp, square=False)
    t = _scalar_part(t, "t", X.shape[:-2], xp, X.dtype)
    P, to = _svd(kind, X, t, 0.0, False, n_threads)
    return to, P


def _svd_ball(kind, X, radius):
    """P of a singular-value ball of the given radius (fast path, else the general route)."""
    radius = check_positive(radius, "radius", strict=False)
    if _fast_matrix(X, False) is not None:
        return _svd_fast(kind, X, 0.0, radius, 0)[0]
    xp = namespace_of(X)
    X = _matrix(X, "X", xp, square=False)
    t = xp.zeros(X.shape[:-2], dtype=xp.float64)
    return _svd(kind, X, t, radius, False)[0]


def _sym(kind, X, t, v, param, dual, n_threads):
    """Symmetric spectral cone on (t, v, X); returns (P, t, v) in X's library and dtype."""
    xp = namespace_of(X)
    batch = X.shape[:-2]
    n = X.shape[-1]
    count = int(np.prod(batch)) if batch else 1
    if is_cupy(X):
        return _sym_gpu(kind, X, t, v, param, dual)
    X3 = np.ascontiguousarray(X.reshape((count, n, n)))
    fn = _core.cones.sym_cone_float32 if X.dtype == np.float32 else _core.cones.sym_cone_float64
    P, to, vo = fn(kind, X3, np.ascontiguousarray(t.reshape(count)), np.ascontiguousarray(v.reshape(count)),
                   float(param), bool(dual), n_threads)
    return P.reshape(X.shape), to.reshape(batch).astype(X.dtype), vo.reshape(batch).astype(X.dtype)


def _svd(kind, X, t, param, dual, n_threads=0):
    """Unitarily invariant cone on (t, X), X of shape (..., m, n); returns (P, t)."""
    batch = X.shape[:-2]
    m, n = X.shape[-2:]
    count = int(np.prod(batch)) if batch else 1
    if is_cupy(X):
        return _svd_gpu(kind, X, t, param, dual)
    X3 = np.ascontiguousarray(X.reshape((count, m, n)))
    fn = _core.cones.svd_cone_float32 if X.dtype == np.float32 else _core.cones.svd_cone_float64
    P, to = fn(kind, X3, np.ascontiguousarray(t.reshape(count)), float(param), bool(dual), n_threads)
    return P.reshape(X.shape), to.reshape(batch).astype(X.dtype)


def _vector_step_host(kind, t, v, x, param, dual, n_threads=0):
    """The C++ vector step on host float64 arrays t (b,), v (b,), x (b, n)."""
    return _core.cones.vector_cone(kind, np.ascontiguousarray(t, dtype=np.float64),
                                   np.ascontiguousarray(v, dtype=np.float64),
                                   np.ascontiguousarray(x, dtype=np.float64), float(param), bool(dual), n_threads)


def _vector(kind, t, v, x, param, dual, n_threads, name="x"):
    """Vector cone on (t, v, x) with x of shape (..., n); returns (t, v, x)."""
    xp = namespace_of(x)
    batch = x.shape[:-1]
    n = x.shape[-1]
    count = int(np.prod(batch)) if batch else 1
    if xp is np:
        to, vo, xo = _vector_step_host(kind, t.reshape(count), v.reshape(count), x.reshape(count, n), param, dual,
                                       n_threads)
        return (to.reshape(batch).astype(x.dtype), vo.reshape(batch).astype(x.dtype),
                xo.reshape(x.shape).astype(x.dtype))
    # CuPy: the vector cones are O(n) per point; run them on the host and move the result back.
    to, vo, xo = _vector_step_host(kind, t.reshape(count).get(), v.reshape(count).get(),
                                   x.reshape(count, n).get(), param, dual, n_threads)
    return (xp.asarray(to.reshape(batch), dtype=x.dtype), xp.asarray(vo.reshape(batch), dtype=x.dtype),
            xp.asarray(xo.reshape(x.shape), dtype=x.dtype))


# ---------------------------------------------------------------- CuPy paths
# Written against the array module ``xp`` (CuPy in use; NumPy in the tests, which exercise the same
# code on the CPU): decompositions and reassembly in xp, the O(n) vector step on the host.
def _gpu_symmetrize(X, name, xp=None):
    xp = namespace_of(X) if xp is None else xp
    check_finite(X, name)
    asym = xp.abs(X - xp.swapaxes(X, -1, -2)).max(axis=(-2, -1))
    scale = xp.abs(X).max(axis=(-2, -1))
    tol = 100.0 * float(np.finfo(X.dtype).eps)
    if bool((asym > tol * scale).any()):
        raise ValueError(f"{name} must be symmetric: relative asymmetry exceeds {tol:.1e}")
    return 0.5 * (X + xp.swapaxes(X, -1, -2))


def _sym_gpu(kind, X, t, v, param, dual, xp=None):
    xp = namespace_of(X) if xp is None else xp
    S = _gpu_symmetrize(X, "X", xp)
    batch = X.shape[:-2]
    n = X.shape[-1]
    count = int(np.prod(batch)) if batch else 1
    w, Q = xp.linalg.eigh(S)  # cuSOLVER syevd (batched syevj for stacks)
    to, vo, x = _vector_step_host(kind, asnumpy(t).reshape(count), asnumpy(v).reshape(count),
                                  asnumpy(w).reshape(count, n).astype(np.float64), param, dual)
    xg = xp.asarray(x.reshape(w.shape), dtype=X.dtype)
    P = xp.matmul(Q * xg[..., None, :], xp.swapaxes(Q, -1, -2))
    P = 0.5 * (P + xp.swapaxes(P, -1, -2))
    return P, xp.asarray(to.reshape(batch), dtype=X.dtype), xp.asarray(vo.reshape(batch), dtype=X.dtype)


def _svd_gpu(kind, X, t, param, dual, xp=None):
    xp = namespace_of(X) if xp is None else xp
    check_finite(X, "X")
    batch = X.shape[:-2]
    count = int(np.prod(batch)) if batch else 1
    U, s, Vt = xp.linalg.svd(X, full_matrices=False)
    r = s.shape[-1]
    zeros = np.zeros(count)
    to, _, x = _vector_step_host(kind, asnumpy(t).reshape(count), zeros,
                                 asnumpy(s).reshape(count, r).astype(np.float64), param, dual)
    xg = xp.asarray(x.reshape(s.shape), dtype=X.dtype)
    P = xp.matmul(U * xg[..., None, :], Vt)
    return P, xp.asarray(to.reshape(batch), dtype=X.dtype)


# ---------------------------------------------------------------- matrix cones
def project_psd(X, *, dual=False, n_threads=None):
    """Project symmetric matrices onto the positive semidefinite cone.

    P = Q max(Lambda, 0) Q^T from one eigendecomposition X = Q Lambda Q^T; the cone is self-dual,
    so ``dual=True`` gives the same result. A Cholesky factorisation first detects inputs that
    are already positive definite (returned unchanged) or negative definite (mapped to 0).

    Parameters
    ----------
    X : array_like, shape (..., n, n)
        Symmetric matrices (asymmetry beyond round-off raises ``ValueError``).
    dual : bool
        Project onto the dual cone (the PSD cone again).
    n_threads : int, optional
        Threads across the batch for small matrices (None: all cores).

    Returns
    -------
    P : ndarray, shape (..., n, n)
        The projections, exactly symmetric.

    Examples
    --------
    >>> import numpy as np
    >>> from randnla.cones import project_psd
    >>> P = project_psd(np.array([[1.0, 2.0], [2.0, 1.0]]))
    >>> np.round(P, 12)
    array([[1.5, 1.5],
           [1.5, 1.5]])
    """
    _check_bool(dual, "dual")
    n_threads = check_n_threads(n_threads)
    if _fast_matrix(X, True) is not None:
        return _sym_fast(_NONNEG, X, 0.0, 0.0, 0.0, False, n_threads)[0]
    xp = namespace_of(X)
    X = _matrix(X, "X", xp, square=True)
    zeros = xp.zeros(X.shape[:-2], dtype=xp.float64)
    return _sym(_NONNEG, X, zeros, zeros, 0.0, False, n_threads)[0]


def project_logdet_cone(t, v, X, *, dual=False, convention="hypograph", n_threads=None):
    """Project (t, v, X) onto the log-determinant cone.

    With the default ``convention="hypograph"`` (JuMP/MathOptInterface ``LogDetConeTriangle``,
    Hypatia, MOSEK) the cone is

        K = closure {(t, v, X): v > 0, X positive definite, t <= v log det(X / v)},

    whose closure adds {(t, 0, X): t <= 0, X PSD}. SCS's log-det cone is the epigraph form
    ``t >= -v log det(X / v)`` (``convention="epigraph"``): the two differ by the sign of t,
    (t, v, X) in K_hypograph if and only if (-t, v, X) in K_epigraph, and since t -> -t is an
    isometry the projections differ by that sign flip too. (SCS's documentation states the
    hypograph inequality, but its code and its MathOptInterface bridge use the epigraph.)

    The eigenvalues of X and (t, v) are projected onto the vector log cone by a safeguarded
    Newton method in logarithmic variables (outer unknown log v, inner log of the multiplier),
    exact to machine precision up to the faces v = 0 and x -> 0; the v = 0 face is always also
    considered. Only when an eigenvalue of the exact projection is below the smallest positive
    double (x ~ v exp(-t / v) < 1e-308) is the answer the nearest representable feasible point,
    with a relative error up to about 1e-5.

    Parameters
    ----------
    t, v : float or array_like of the batch shape
    X : array_like, shape (..., n, n)
        Symmetric matrices.
    dual : bool
        Project onto the dual cone instead.
    convention : {"hypograph", "epigraph"}
    n_threads : int, optional

    Returns
    -------
    t, v, X : the projected point (arrays of the batch shape and (..., n, n)).

    Examples
    --------
    >>> import numpy as np
    >>> from randnla.cones import project_logdet_cone
    >>> t, v, P = project_logdet_cone(5.0, 1.0, np.eye(3))
    >>> bool(t <= v * np.linalg.slogdet(P / v)[1] + 1e-12)
    True
    """
    _check_bool(dual, "dual")
    _check_convention(convention)
    n_threads = check_n_threads(n_threads)
    flip = convention == "hypograph"
    ft, fv = _fast_scalar(t), _fast_scalar(v)
    if ft is not None and fv is not None and _fast_matrix(X, True) is not None:
        P, to, vo = _sym_fast(_LOG, X, -ft if flip else ft, fv, 0.0, bool(dual), n_threads)
        return (-to if flip else to), vo, P
    xp = namespace_of(t, v, X)
    X = _matrix(X, "X", xp, square=True)
    batch = X.shape[:-2]
    t = _scalar_part(t, "t", batch, xp, X.dtype)
    v = _scalar_part(v, "v", batch, xp, X.dtype)
    P, to, vo = _sym(_LOG, X, -t if flip else t, v, 0.0, dual, n_threads)
    return (-to if flip else to), vo, P


def project_nuclear_norm_cone(t, X, *, dual=False, n_threads=None):
    """Project (t, X) onto the nuclear-norm cone {(t, X): ||X||_* <= t}.

    X may be any m x n matrix (m < n included). The singular values (from the Gram matrix's
    eigenvalues when the threshold is at least 5% of the largest, else a thin ``gesdd``), the
    sorted l1-cone projection, and a reassembly from the singular vectors that stay nonzero.
    The dual cone is the spectral-norm cone.

    Parameters
    ----------
    t : float or array_like of the batch shape
    X : array_like, shape (..., m, n)
    dual : bool
        Project onto the dual cone {||X||_2 <= t} instead.
    n_threads : int, optional
        Threads across the batch for small matrices (None: all cores).

    Returns
    -------
    t, X : the projected point.

    Examples
    --------
    >>> import numpy as np
    >>> from randnla.cones import project_nuclear_norm_cone
    >>> t, P = project_nuclear_norm_cone(1.0, np.diag([3.0, 1.0]))
    >>> float(t), np.round(np.diag(P), 12).tolist()
    (2.0, [2.0, 0.0])
    """
    _check_bool(dual, "dual")
    return _svd_cone(_LINF if dual else _L1, t, X, check_n_threads(n_threads))


def project_spectral_norm_cone(t, X, *, dual=False, n_threads=None):
    """Project (t, X) onto the spectral-norm cone {(t, X): ||X||_2 <= t}.

    Singular values are clipped at the new t, found exactly by the sorted l-infinity cone
    projection. The dual cone is the nuclear-norm cone.

    Parameters
    ----------
    t : float or array_like of the batch shape
    X : array_like, shape (..., m, n)
    dual : bool
        Project onto the dual cone {||X||_* <= t} instead.
    n_threads : int, optional
        Threads across the batch for small matrices (None: all cores).

    Returns
    -------
    t, X : the projected point.

    Examples
    --------
    >>> import numpy as np
    >>> from randnla.cones import project_spectral_norm_cone
    >>> t, P = project_spectral_norm_cone(0.0, np.diag([3.0, 1.0]))
    >>> float(t), np.round(np.diag(P), 12).tolist()
    (1.5, [1.5, 1.0])
    """
    _check_bool(dual, "dual")
    return _svd_cone(_L1 if dual else _LINF, t, X, check_n_threads(n_threads))


def project_sum_largest_cone(t, X, k, *, dual=False, n_threads=None):
    """Project (t, X) onto {(t, X): sum of the k largest eigenvalues of X <= t}.

    ``k = 1`` is the lambda_max cone, ``k = n`` the half space ``trace(X) <= t`` (no
    decomposition needed). The vector step finds the KKT block structure (top block shifted by
    eta, tied block meeting at tau) by an exhaustive scan with prefix sums, so exactly tied
    eigenvalues and points of the polar cone are handled exactly. Only the eigenpairs that change
    enter the reassembly.

    The dual cone is {(s, Y): 0 <= -Y <= s I (Loewner order), trace(-Y) = k s}.

    Parameters
    ----------
    t : float or array_like of the batch shape
    X : array_like, shape (..., n, n)
        Symmetric matrices.
    k : int
        1 <= k <= n.
    dual : bool
    n_threads : int, optional

    Returns
    -------
    t, X : the projected point.

    Examples
    --------
    >>> import numpy as np
    >>> from randnla.cones import project_sum_largest_cone
    >>> t, P = project_sum_largest_cone(0.0, np.diag([2.0, 1.0, -1.0]), 1)
    >>> float(t), np.round(np.diag(P), 12).tolist()
    (1.0, [1.0, 1.0, -1.0])
    """
    _check_bool(dual, "dual")
    n_threads = check_n_threads(n_threads)
    ft = _fast_scalar(t)
    if ft is not None and _fast_matrix(X, True) is not None and type(k) is int and 1 <= k < X.shape[0]:
        P, to, _ = _sym_fast(_TOPK, X, ft, 0.0, float(k), bool(dual), n_threads)
        return to, P
    xp = namespace_of(t, X)
    X = _matrix(X, "X", xp, square=True)
    n = X.shape[-1]
    k = check_int(k, "k", minimum=1, maximum=n)
    batch = X.shape[:-2]
    t = _scalar_part(t, "t", batch, xp, X.dtype)
    if k == n:
        return _trace_halfspace(t, X, dual)
    zeros = xp.zeros(batch, dtype=xp.float64)
    P, to, _ = _sym(_TOPK, X, t, zeros, float(k), dual, n_threads)
    return to, P


def _trace_halfspace(t, X, dual):
    """{trace X <= t} and its dual ray {s (1, -I): s >= 0}: no decomposition."""
    xp = namespace_of(X)
    if is_cupy(X):
        S = _gpu_symmetrize(X, "X")
    else:
        S = np.array(X, copy=True)
        check_finite(S, "X")
        from randnla._validate import check_symmetric

        check_symmetric(S, "X")
        S = 0.5 * (S + np.swapaxes(S, -1, -2))
    n = X.shape[-1]
    tr = xp.trace(S, axis1=-2, axis2=-1).astype(xp.float64)
    eye = xp.eye(n, dtype=X.dtype)
    if not dual:
        delta = xp.maximum(tr - t, 0.0) / (n + 1)
        P = S - delta.astype(X.dtype)[..., None, None] * eye
        return (t + delta).astype(X.dtype), P.astype(X.dtype)
    s = xp.maximum(t - tr, 0.0) / (n + 1)
    P = -(s.astype(X.dtype)[..., None, None] * eye) + 0 * S
    return s.astype(X.dtype), P.astype(X.dtype)


def project_nuclear_norm_ball(X, radius=1.0):
    """Project X onto the nuclear-norm ball {||X||_* <= radius} (sorted l1-ball step on singular values).

    Parameters
    ----------
    X : array_like, shape (..., m, n)
    radius : float
        Non-negative.

    Returns
    -------
    P : ndarray, shape (..., m, n)

    Examples
    --------
    >>> import numpy as np
    >>> from randnla.cones import project_nuclear_norm_ball
    >>> np.round(np.diag(project_nuclear_norm_ball(np.diag([3.0, 1.0]), 1.0)), 12).tolist()
    [1.0, 0.0]
    """
    return _svd_ball(_L1_BALL, X, radius)


def project_spectral_norm_ball(X, radius=1.0):
    """Project X onto the spectral-norm ball {||X||_2 <= radius} (singular values clipped).

    Parameters
    ----------
    X : array_like, shape (..., m, n)
    radius : float
        Non-negative.

    Returns
    -------
    P : ndarray, shape (..., m, n)

    Examples
    --------
    >>> import numpy as np
    >>> from randnla.cones import project_spectral_norm_ball
    >>> np.round(np.diag(project_spectral_norm_ball(np.diag([3.0, 0.5]), 1.0)), 12).tolist()
    [1.0, 0.5]
    """
    return _svd_ball(_LINF_BALL, X, radius)


def project_spectraplex(X, trace=1.0, *, n_threads=None):
    """Project symmetric X onto the spectraplex {X PSD, trace(X) = trace} (simplex step on eigenvalues).

    Parameters
    ----------
    X : array_like, shape (..., n, n)
        Symmetric matrices.
    trace : float
        Positive total.
    n_threads : int, optional

    Returns
    -------
    P : ndarray, shape (..., n, n)

    Examples
    --------
    >>> import numpy as np
    >>> from randnla.cones import project_spectraplex
    >>> np.round(np.diag(project_spectraplex(np.diag([2.0, 0.5, -1.0]))), 12).tolist()
    [1.0, 0.0, 0.0]
    """
    trace = check_positive(trace, "trace")
    n_threads = check_n_threads(n_threads)
    if _fast_matrix(X, True) is not None:
        return _sym_fast(_SIMPLEX, X, 0.0, 0.0, trace, False, n_threads)[0]
    xp = namespace_of(X)
    X = _matrix(X, "X", xp, square=True)
    zeros = xp.zeros(X.shape[:-2], dtype=xp.float64)
    return _sym(_SIMPLEX, X, zeros, zeros, trace, False, n_threads)[0]


# ---------------------------------------------------------------- vector cones
def _vec_input(x, name, min_len=1):
    xp = namespace_of(x)
    arr = as_float_array(x, name, xp=xp, min_ndim=1)
    if arr.shape[-1] < min_len:
        raise ValueError(f"{name} must have at least {min_len} entries in its last dimension, got shape {tuple(arr.shape)}")
    return arr, xp


def project_nonneg(x, *, dual=False, n_threads=None):
    """Project onto the nonnegative orthant (self-dual): max(x, 0).

    Examples
    --------
    >>> from randnla.cones import project_nonneg
    >>> project_nonneg([1.0, -2.0]).tolist()
    [1.0, 0.0]
    """
    _check_bool(dual, "dual")
    n_threads = check_n_threads(n_threads)
    x, xp = _vec_input(x, "x")
    z = xp.zeros(x.shape[:-1], dtype=xp.float64)
    return _vector(_NONNEG, z, z, x, 0.0, False, n_threads)[2]


def project_soc(t, x, *, dual=False, n_threads=None):
    """Project (t, x) onto the second-order cone {||x||_2 <= t} (self-dual).

    Parameters
    ----------
    t : float or array_like of the batch shape
    x : array_like, shape (..., n)

    Returns
    -------
    t, x : the projected point.

    Examples
    --------
    >>> from randnla.cones import project_soc
    >>> t, x = project_soc(0.0, [2.0, 0.0])
    >>> float(t), x.tolist()
    (1.0, [1.0, 0.0])
    """
    _check_bool(dual, "dual")
    n_threads = check_n_threads(n_threads)
    x, xp = _vec_input(x, "x")
    t = _scalar_part(t, "t", x.shape[:-1], xp, x.dtype)
    to, _, xo = _vector(_SOC, t, xp.zeros_like(t), x, 0.0, False, n_threads)
    return to, xo


def project_exp_cone(v, *, dual=False, n_threads=None):
    """Project onto the exponential cone cl{(r, s, t): s > 0, s exp(r / s) <= t}.

    Friberg's univariate root-finding method (the projection onto the curved boundary is
    s (rho, 1, e^rho)), solved by Newton's method safeguarded by a bracket, combined with the
    closed-form projections onto the faces; the closest feasible candidate is returned, so the
    result is exact near every boundary piece. Points are rescaled to unit max-norm first.
    The dual cone is cl{(u, v, w): u < 0, -u exp(v / u) <= e w}.

    Parameters
    ----------
    v : array_like, shape (..., 3)
        Points (r, s, t), SCS's order (x, y, z).

    Returns
    -------
    ndarray, shape (..., 3)

    Examples
    --------
    >>> from randnla.cones import project_exp_cone
    >>> project_exp_cone([-1.0, -1.0, 2.0]).tolist()
    [-1.0, 0.0, 2.0]
    """
    _check_bool(dual, "dual")
    n_threads = check_n_threads(n_threads)
    x, xp = _vec_input(v, "v")
    if x.shape[-1] != 3:
        raise ValueError(f"v must have shape (..., 3), got {tuple(x.shape)}")
    z = xp.zeros(x.shape[:-1], dtype=xp.float64)
    return _vector(_EXP, z, z, x, 0.0, dual, n_threads)[2]


def project_power_cone(v, alpha, *, dual=False, n_threads=None):
    """Project onto the power cone {(x, y, z): x^alpha y^(1-alpha) >= |z|, x, y >= 0}.

    The projection onto the curved boundary is parametrised by r = |z| (Hien 2015) and found by
    a safeguarded Newton method. The dual cone is
    {(u, v, w): (u/alpha)^alpha (v/(1-alpha))^(1-alpha) >= |w|, u, v >= 0}.

    Parameters
    ----------
    v : array_like, shape (..., 3)
    alpha : float in (0, 1)

    Returns
    -------
    ndarray, shape (..., 3)

    Examples
    --------
    >>> from randnla.cones import project_power_cone
    >>> project_power_cone([1.0, 1.0, 0.5], 0.5).tolist()
    [1.0, 1.0, 0.5]
    """
    _check_bool(dual, "dual")
    n_threads = check_n_threads(n_threads)
    alpha = check_positive(alpha, "alpha")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    x, xp = _vec_input(v, "v")
    if x.shape[-1] != 3:
        raise ValueError(f"v must have shape (..., 3), got {tuple(x.shape)}")
    z = xp.zeros(x.shape[:-1], dtype=xp.float64)
    return _vector(_POWER, z, z, x, alpha, dual, n_threads)[2]


def project_log_cone(t, v, x, *, dual=False, convention="hypograph", n_threads=None):
    """Project (t, v, x) onto the vector log cone, the eigenvalue cone behind the log-det cone.

    Hypograph convention: closure {(t, v, x): v > 0, x > 0, t <= v sum_i log(x_i / v)}; with
    ``convention="epigraph"``, t >= -v sum_i log(x_i / v) (SCS). For x of length 1 the epigraph
    cone is the exponential cone in the order (-t, v, x). See :func:`project_logdet_cone`.

    Parameters
    ----------
    t, v : float or array_like of the batch shape
    x : array_like, shape (..., n)

    Returns
    -------
    t, v, x : the projected point.

    Examples
    --------
    >>> from randnla.cones import project_log_cone
    >>> t, v, x = project_log_cone(0.0, 1.0, [1.0, 1.0])
    >>> float(t), float(v), x.tolist()
    (0.0, 1.0, [1.0, 1.0])
    """
    _check_bool(dual, "dual")
    _check_convention(convention)
    n_threads = check_n_threads(n_threads)
    x, xp = _vec_input(x, "x")
    batch = x.shape[:-1]
    t = _scalar_part(t, "t", batch, xp, x.dtype)
    v = _scalar_part(v, "v", batch, xp, x.dtype)
    flip = convention == "hypograph"
    to, vo, xo = _vector(_LOG, -t if flip else t, v, x, 0.0, dual, n_threads)
    return (-to if flip else to), vo, xo


def project_l1_norm_cone(t, x, *, dual=False, n_threads=None):
    """Project (t, x) onto {||x||_1 <= t} (sort-based, O(n log n)); the dual is the l-infinity cone.

    Examples
    --------
    >>> from randnla.cones import project_l1_norm_cone
    >>> t, x = project_l1_norm_cone(1.0, [3.0, -1.0])
    >>> float(t), x.tolist()
    (2.0, [2.0, -0.0])
    """
    _check_bool(dual, "dual")
    n_threads = check_n_threads(n_threads)
    x, xp = _vec_input(x, "x")
    t = _scalar_part(t, "t", x.shape[:-1], xp, x.dtype)
    to, _, xo = _vector(_LINF if dual else _L1, t, xp.zeros_like(t), x, 0.0, False, n_threads)
    return to, xo


def project_linf_norm_cone(t, x, *, dual=False, n_threads=None):
    """Project (t, x) onto {||x||_inf <= t} (sort-based); the dual is the l1 cone.

    Examples
    --------
    >>> from randnla.cones import project_linf_norm_cone
    >>> t, x = project_linf_norm_cone(0.0, [3.0, 1.0])
    >>> float(t), x.tolist()
    (1.5, [1.5, 1.0])
    """
    _check_bool(dual, "dual")
    n_threads = check_n_threads(n_threads)
    x, xp = _vec_input(x, "x")
    t = _scalar_part(t, "t", x.shape[:-1], xp, x.dtype)
    to, _, xo = _vector(_L1 if dual else _LINF, t, xp.zeros_like(t), x, 0.0, False, n_threads)
    return to, xo


def project_sum_largest_vector_cone(t, x, k, *, dual=False, n_threads=None):
    """Project (t, x) onto {sum of the k largest entries of x <= t}; see :func:`project_sum_largest_cone`.

    Examples
    --------
    >>> from randnla.cones import project_sum_largest_vector_cone
    >>> t, x = project_sum_largest_vector_cone(-2.0, [2.0, 1.0, 1.0], 2)
    >>> float(t), x.tolist()
    (0.0, [0.0, 0.0, 0.0])
    """
    _check_bool(dual, "dual")
    n_threads = check_n_threads(n_threads)
    x, xp = _vec_input(x, "x")
    k = check_int(k, "k", minimum=1, maximum=x.shape[-1])
    t = _scalar_part(t, "t", x.shape[:-1], xp, x.dtype)
    to, _, xo = _vector(_TOPK, t, xp.zeros_like(t), x, float(k), dual, n_threads)
    return to, xo
