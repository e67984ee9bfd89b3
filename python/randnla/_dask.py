"""randnla.sketch on Dask arrays: sketch each row chunk where it lives, combine in a tree.

:mod:`randnla.sketch` hands a ``dask.array.Array`` to this module (``randnla._backend.is_dask``);
nothing here is imported, and Dask itself is never imported, until a Dask array arrives.

Coordinated sampling
    Every row's priority rank h(seed, key) / ||a_i||^2 depends only on (seed, key, row), so the k+1
    smallest ranks of the whole matrix are among the union of each row chunk's k+1 smallest.
    One graph node per chunk sketches the chunk in place; the chunk sketches are merged with
    :func:`randnla.sketch.merge` in a tree of fan-in 8. The result is the sketch of the
    concatenated matrix, bit for bit (same keys, rows, weights, tau). Threshold sampling first
    computes the water-filling constant from all squared row norms (8 bytes per row travel to
    the client, the only global step), then keeps each chunk's rows with h <= min(1, c w) in place.

Linear sketches
    The entries of every operator are a pure function of (key, i, j), so the node of a chunk
    regenerates the column block S[:, rows of its chunk] from the operator's small description
    (its key and shape) and multiplies it with the chunk; the m x d contributions are summed in a
    tree.
    :func:`sketched_lstsq` and :func:`lstsq` use this pass; :func:`lstsq` then runs conjugate
    gradients on the preconditioned normal equations, one pass over A per iteration, moving only
    d-vectors between the workers and the client.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np

__all__ = [
    "priority_sample",
    "threshold_sample",
    "sketch_apply",
    "sketched_lstsq",
    "lstsq",
    "join_regression",
    "JoinRegressionResult",
]

FAN_IN = 8  # chunk results combined per tree node
_PANEL_ENTRIES = 1 << 21  # entries of S regenerated at once while one chunk is processed (16 MiB in float64)


def _sketch_module():
    from randnla import sketch

    return sketch


# ---------------------------------------------------------------------------------------------
# Chunks, offsets, keys and the tree reduction
# ---------------------------------------------------------------------------------------------


def _row_chunked(A, name):
    """A with a single chunk along every axis but the first, and known row-chunk sizes."""
    if A.ndim not in (1, 2):
        raise ValueError(f"{name} must be a 1-D or 2-D dask array, got {A.ndim} dimensions")
    if any(math.isnan(c) for c in A.chunks[0]):
        A = A.compute_chunk_sizes()
    if A.ndim == 2 and A.numblocks[1] != 1:
        A = A.rechunk({1: -1})
    return A


def _blocks(A):
    """The row chunks of A as a list of delayed objects (one per chunk)."""
    grid = A.to_delayed()
    return list(grid[:, 0]) if A.ndim == 2 else list(grid)


def _offsets(chunks):
    return np.concatenate([[0], np.cumsum(np.asarray(chunks, dtype=np.int64))]).astype(np.int64)


def _row_keys(offset, stop):
    """Default keys of one chunk: its global row indices (keys always live on the host)."""
    return np.arange(offset, stop, dtype=np.int64)


def _key_blocks(keys, A):
    """One keys entry per row chunk of A: a delayed int64 array, or (offset, stop) for row indices."""
    from dask import delayed

    from randnla import _backend

    n = A.shape[0]
    offsets = _offsets(A.chunks[0])
    if keys is None:
        return [None] * len(A.chunks[0]), offsets
    if _backend.is_dask(keys):
        if keys.ndim != 1 or keys.shape[0] != n:
            raise ValueError(f"keys must be a 1-D array with one key per row ({n}), got shape {keys.shape}")
        if not np.issubdtype(keys.dtype, np.integer):
            raise TypeError(f"keys must be int64 join keys, got dtype {keys.dtype}")
        keys = _row_chunked(keys, "keys").rechunk((A.chunks[0],))
        return list(keys.to_delayed()), offsets
    host = keys.get() if _backend.is_cupy(keys) else np.asarray(keys)
    if host.ndim != 1 or host.shape[0] != n:
        raise ValueError(f"keys must be a 1-D array with one key per row ({n}), got shape {host.shape}")
    if not np.issubdtype(host.dtype, np.integer):
        raise TypeError(f"keys must be int64 join keys, got dtype {host.dtype}")
    host = host.astype(np.int64, copy=False)
    return [delayed(host[offsets[i]:offsets[i + 1]]) for i in range(len(offsets) - 1)], offsets


def _chunk_keys(keys, offset, stop):
    if keys is None:
        return _row_keys(offset, stop)
    return keys


def tree_reduce(parts, combine, *args, fan_in=FAN_IN):
    """Combine delayed ``parts`` with ``combine(list, *args)`` in a tree of the given fan-in.

    Graph keys are content hashes of the inputs (``pure=True``), so concurrent reductions never
    share a key unless they compute the same thing.
    """
    from dask import delayed

    level = list(parts)
    if not level:
        raise ValueError("nothing to reduce")
    if len(level) == 1:
        return delayed(combine, pure=True)(level, *args)
    while len(level) > 1:
        level = [delayed(combine, pure=True)(level[i:i + fan_in], *args) for i in range(0, len(level), fan_in)]
    return level[0]


def _compute(obj):
    import dask

    (value,) = dask.compute(obj)
    return value


# ---------------------------------------------------------------------------------------------
# Coordinated sampling
# ---------------------------------------------------------------------------------------------


def _check_k(k):
    from randnla._validate import check_int

    return check_int(k, "k", minimum=1)


def _chunk_priority(block, keys, offset, stop, k, seed):
    sk = _sketch_module()
    return sk.priority_sample(block, k, seed=seed, keys=_chunk_keys(keys, offset, stop))


def _merge(parts, k):
    return _sketch_module().merge(list(parts), k)


def priority_sample(A, k, *, seed, keys=None):
    """Priority sample of a row-chunked Dask array; equals the in-memory sketch bit for bit.

    Keys must be distinct, as in memory; a key repeated in two chunks is detected only when both
    copies reach the merged candidates (the in-memory function checks every key).
    """
    from dask import delayed

    k = _check_k(k)
    seed = _sketch_module()._check_seed(seed)
    A = _row_chunked(A, "A")
    if A.ndim != 2:
        raise ValueError(f"A must be a 2-D array, got shape {A.shape}")
    key_parts, offsets = _key_blocks(keys, A)
    parts = [
        delayed(_chunk_priority, pure=True)(block, kp, int(offsets[i]), int(offsets[i + 1]), k, seed)
        for i, (block, kp) in enumerate(zip(_blocks(A), key_parts))
    ]
    return _compute(tree_reduce(parts, _merge, k))


def _chunk_weights(block):
    """Squared row norms of one chunk in float64 (as the in-memory sketch computes them), on the host."""
    sk = _sketch_module()
    w = sk._prepare_rows(block)[1]
    w = w.get() if _is_cupy(w) else np.asarray(w)
    return w[w > 0]  # the water-filling constant only involves the nonzero weights


def _concat(parts):
    return np.concatenate([np.asarray(p) for p in parts]) if parts else np.zeros(0)


def _chunk_threshold(block, keys, offset, stop, k, seed, c):
    sk = _sketch_module()
    return sk.threshold_sample(block, k, seed=seed, keys=_chunk_keys(keys, offset, stop), tau=c)


def threshold_sample(A, k, *, seed, keys=None, tau=None):
    """Threshold sample of a row-chunked Dask array; equals the in-memory sketch bit for bit.

    Unless ``tau`` is given, the water-filling constant is computed first from the squared row norms
    of all rows (one float64 per row is gathered on the client: the only step whose memory grows
    with the number of rows), exactly as the in-memory sketch computes it.
    """
    from dask import delayed

    from randnla import _core

    k = _check_k(k)
    seed = _sketch_module()._check_seed(seed)
    A = _row_chunked(A, "A")
    if A.ndim != 2:
        raise ValueError(f"A must be a 2-D array, got shape {A.shape}")
    blocks = _blocks(A)
    if tau is None:
        weights = _compute(tree_reduce([delayed(_chunk_weights, pure=True)(b) for b in blocks], _concat))
        c = float(_core.threshold_constant(np.ascontiguousarray(weights, dtype=np.float64), k))
    else:
        c = tau
    key_parts, offsets = _key_blocks(keys, A)
    parts = [
        delayed(_chunk_threshold, pure=True)(block, kp, int(offsets[i]), int(offsets[i + 1]), k, seed, c)
        for i, (block, kp) in enumerate(zip(blocks, key_parts))
    ]
    return _compute(tree_reduce(parts, _merge, k))


# ---------------------------------------------------------------------------------------------
# Linear sketches: S @ A one row chunk at a time
# ---------------------------------------------------------------------------------------------


def _result_dtype(S, A):
    dtype = np.result_type(S.dtype, A.dtype)
    return np.dtype(np.float32) if dtype == np.float32 else np.dtype(np.float64)


def _is_cupy(x):
    return type(x).__module__.startswith("cupy")


def _is_sparse(x):
    from randnla._backend import is_scipy_sparse

    return is_scipy_sparse(x)


def _column_block(S, c0, c1, like, dtype):
    """S[:, c0:c1], regenerated alone: a SciPy CSC matrix for the sparse kinds on the host, else dense."""
    if S.kind in ("countsketch", "sparse_sign") and not _is_cupy(like):
        import scipy.sparse as sp

        rows, signs = S._sparse_columns(c0, c1)
        s = rows.shape[1]
        data = signs.ravel().astype(dtype) * dtype.type(S._sparse_scale())
        return sp.csc_matrix((data, rows.ravel(), np.arange(0, (c1 - c0) * s + 1, s)), shape=(S.shape[0], c1 - c0))
    block = S.block(0, S.shape[0], c0, c1, like=like if _is_cupy(like) else None)
    return block.astype(dtype, copy=False)


def _apply_chunk(S, blocks, offset, dtype):
    """[S[:, rows] @ X for X in blocks]: the contribution of one row chunk (rows offset .. offset+len)."""
    dtype = np.dtype(dtype)
    m = S.shape[0]
    first = blocks[0]
    nb = first.shape[0]
    mats = []
    for X in blocks:
        if X.ndim == 1:
            X = X.reshape(nb, 1)
        if _is_sparse(X):
            X = X.tocsr().astype(dtype)
        elif X.dtype != dtype:
            X = X.astype(dtype)
        mats.append(X)
    panel = max(1, min(nb, _PANEL_ENTRIES // max(m, 1)))
    sums = [None] * len(mats)
    for p0 in range(0, nb, panel):
        p1 = min(nb, p0 + panel)
        Sp = _column_block(S, offset + p0, offset + p1, first, dtype)
        for t, X in enumerate(mats):
            contrib = Sp @ X[p0:p1]
            if hasattr(contrib, "toarray"):
                contrib = contrib.toarray()
            contrib = np.asarray(contrib) if not _is_cupy(contrib) else contrib
            sums[t] = contrib if sums[t] is None else sums[t] + contrib
    if nb == 0:
        xp = np
        sums = [xp.zeros((m, X.shape[1]), dtype=dtype) for X in mats]
    return [s.astype(dtype, copy=False) for s in sums]


def _sum_lists(parts):
    total = [p.copy() for p in parts[0]]
    for p in parts[1:]:
        for t in range(len(total)):
            total[t] += p[t]
    return total


def _sketch_pass(S, arrays):
    """Delayed [S @ X for X in arrays] (the arrays share the row chunks), summed in a tree."""
    from dask import delayed

    dtype = _result_dtype(S, arrays[0])
    for X in arrays[1:]:
        dtype = np.dtype(np.result_type(dtype, _result_dtype(S, X)))
    offsets = _offsets(arrays[0].chunks[0])
    columns = [_blocks(X) for X in arrays]
    parts = [
        delayed(_apply_chunk, pure=True)(S, [col[i] for col in columns], int(offsets[i]), dtype.str)
        for i in range(len(offsets) - 1)
    ]
    return tree_reduce(parts, _sum_lists), dtype


def _align(A, b):
    """b rechunked to A's row chunks."""
    if b.ndim == 1:
        return b.rechunk((A.chunks[0],))
    return b.rechunk((A.chunks[0], -1))


def _meta_like(A, dtype, ndim):
    meta = getattr(A, "_meta", None)
    if meta is not None and _is_cupy(meta):
        import cupy

        return cupy.empty((0,) * ndim, dtype=dtype)
    return np.empty((0,) * ndim, dtype=dtype)


def _first_product(parts, vector):
    return parts[0][:, 0] if vector else parts[0]


def sketch_apply(S, A):
    """``S @ A`` for a Dask array A (n rows): a lazy m x d (or m) Dask array with one chunk.

    Each chunk's node regenerates S[:, rows of the chunk] from the operator's key (never a dense
    S) and multiplies it with the chunk where the chunk lives; the contributions are summed in a
    tree.
    """
    import dask.array as da

    A = _row_chunked(A, "A")
    if A.shape[0] != S.shape[1]:
        raise ValueError(f"A must have {S.shape[1]} rows to be multiplied by the operator, got shape {A.shape}")
    total, dtype = _sketch_pass(S, [A])
    from dask import delayed

    first = delayed(_first_product, pure=True)(total, A.ndim == 1)
    shape = (S.shape[0],) if A.ndim == 1 else (S.shape[0], A.shape[1])
    meta = _meta_like(A, dtype, A.ndim)
    return da.from_delayed(first, shape=shape, dtype=dtype, meta=meta)


# ---------------------------------------------------------------------------------------------
# Least squares
# ---------------------------------------------------------------------------------------------


def _as_dask_like(b, A, name):
    """b as a Dask array with A's row chunks (a NumPy b is split into the same chunks)."""
    import dask.array as da

    from randnla import _backend

    if not _backend.is_dask(b):
        b = np.asarray(b)
        b = da.from_array(b, chunks=(A.chunks[0],) if b.ndim == 1 else (A.chunks[0], -1))
    if b.ndim not in (1, 2) or b.shape[0] != A.shape[0]:
        raise ValueError(f"{name} must have {A.shape[0]} rows like A, got shape {b.shape}")
    b = _row_chunked(b, name)
    return _align(A, b)


def _to_host(x):
    return x.get() if _is_cupy(x) else np.asarray(x)


def sketched_sides(S, A, b):
    """(S @ A, S @ b) computed in one pass over the chunks of A and b, as host arrays."""
    total, _ = _sketch_pass(S, [A, b])
    SA, Sb = _compute(total)
    SA = _to_host(SA)
    Sb = _to_host(Sb)
    if b.ndim == 1:
        Sb = Sb[:, 0]
    return SA, Sb


def sketched_lstsq(A, b, *, m=None, eps=None, delta=0.01, kind="gaussian", rng=None, n_threads=None):
    """:func:`randnla.sketch.sketched_lstsq` for a Dask A: one pass over the chunks builds S A and S b.

    The operator, its default size and the small solve are those of the in-memory function, so the
    result agrees with it to rounding (the chunk contributions are summed in a different order).
    """
    from scipy.special import stdtrit

    from randnla._validate import check_choice, check_int, check_positive

    sk = _sketch_module()
    if kind in ("countsketch", "sparse_sign", "rademacher"):
        raise ValueError(f"kind={kind!r} cannot give an l-infinity guarantee (see randnla.sketch.sketched_lstsq); "
                         "use kind='gaussian' (guaranteed) or kind='srht' (fast)")
    check_choice(kind, "kind", ("gaussian", "srht"))
    A = _row_chunked(A, "A")
    if A.ndim != 2:
        raise ValueError(f"A must be a 2-D array, got shape {A.shape}")
    n, d = A.shape
    b = _as_dask_like(b, A, "b")
    if b.ndim != 1:
        raise ValueError(f"b must be a vector of length {n}, got shape {b.shape}")
    m, delta = sk._linf_sketch_rows(n, d, m, eps, delta, kind)
    dtype = sk._promote(np.dtype(A.dtype), np.dtype(b.dtype))
    S = (sk.gaussian if kind == "gaussian" else sk.srht)(m, n, rng=rng, dtype=dtype, n_threads=n_threads)
    SA, Sb = sketched_sides(S, A, b)
    x, stderr, resid = sk._solve_sketched(SA.astype(dtype, copy=False), Sb.astype(dtype, copy=False), m, d)
    t = float(stdtrit(m - d, 1.0 - delta / (2.0 * d)))
    return sk.SketchedLstsqResult(x=x, m=int(m), kind=kind, stderr=stderr, error_bar=t * stderr,
                                  residual_norm=resid)


def _normal_chunk(block, b_block, pair):
    """For one chunk: A_c^T [b_c - A_c x, A_c p] (d x 2) and ||b_c - A_c x||^2, in float64 on the host."""
    if _is_cupy(block):
        import cupy as xp

        X = block.astype(xp.float64, copy=False)
        bb = b_block.astype(xp.float64, copy=False)
        V = xp.asarray(pair)
    else:
        xp = np
        X = block.tocsr().astype(np.float64, copy=False) if _is_sparse(block) else np.asarray(block, dtype=np.float64)
        bb = np.asarray(b_block, dtype=np.float64)
        V = pair
    U = X @ V  # (n_c, 2): A_c x and A_c p
    r = bb.ravel() - U[:, 0]
    W = X.T @ xp.stack([r, U[:, 1]], axis=1)
    return _to_host(W), float(_to_host(r @ r))


def _sum_normal(parts):
    W = parts[0][0].copy()
    rr = parts[0][1]
    for w, r in parts[1:]:
        W += w
        rr += r
    return W, rr


def _normal_pass(blocks, b_blocks, x, p):
    """(A^T (b - A x), A^T A p, ||b - A x||^2) in one pass over the chunks (only d-vectors travel)."""
    from dask import delayed

    pair = np.stack([x, p], axis=1)
    parts = [delayed(_normal_chunk, pure=True)(blk, bb, pair) for blk, bb in zip(blocks, b_blocks)]
    W, rr = _compute(tree_reduce(parts, _sum_normal))
    return W[:, 0], W[:, 1], max(float(rr), 0.0)


def preconditioned_cg(A, b, SA, Sb, *, tol, maxiter):
    """Least squares min ||A x - b|| for a Dask A from its sketch (S A, S b), to tolerance ``tol``.

    R from the QR of S A preconditions conjugate gradients on the normal equations, started from
    the sketch-and-solve solution R^-1 Q^T S b. Pass k computes, at the current iterate x_k and
    direction p_k, the true gradient A^T (b - A x_k), ||b - A x_k|| and A^T A p_k, so convergence is
    always judged on the true residual, with the LSQR test
    ``||(A R^-1)^T r|| <= tol ||A R^-1|| ||r||`` (or ``||r|| <= tol ||b||`` for a consistent system);
    ``tol`` is raised to ``10 eps cond(R)``, the floor of that test in double precision.

    Returns (x, iterations, converged, residual norm).
    """
    import scipy.linalg as sla

    n, d = A.shape
    SA = np.asarray(SA, dtype=np.float64)
    Q, R = np.linalg.qr(SA)
    diag = np.abs(np.diag(R))
    if diag.size < d or diag.min() <= 10 * np.finfo(np.float64).eps * max(SA.shape) * diag.max():
        raise ValueError("A appears rank-deficient (its sketch S A is singular); lstsq needs full column rank")
    x = sla.solve_triangular(R, Q.T @ np.asarray(Sb, dtype=np.float64))
    blocks, b_blocks = _blocks(A), _blocks(b)
    bnorm = math.sqrt(float(_compute(tree_reduce([_delayed_sq(bb) for bb in b_blocks], _sum_scalars))))
    scale = 1.0 + math.sqrt(d / SA.shape[0])  # ||A R^-1|| for a subspace embedding with m = SA.shape[0]
    # The true gradient A^T r is computed to about eps ||A|| ||r||, so ||R^-T A^T r|| cannot fall
    # much below eps cond(A) ||r||: ask for no less (cond(R) is cond(A) up to the embedding's distortion).
    limit = max(tol, 10 * np.finfo(np.float64).eps * float(np.linalg.cond(R)))

    def precondition(g):
        return sla.solve_triangular(R, sla.solve_triangular(R, g, trans="T"))

    def converged(g_true, rr):
        rnorm = math.sqrt(rr)
        zt = precondition(g_true)
        return rnorm <= tol * bnorm or math.sqrt(max(float(g_true @ zt), 0.0)) <= limit * scale * rnorm

    zeros = np.zeros(d)
    g, _, rr = _normal_pass(blocks, b_blocks, x, zeros)
    if converged(g, rr):
        return x, 0, True, math.sqrt(rr)
    z = precondition(g)
    rz = float(g @ z)
    p = z
    for iteration in range(1, maxiter + 1):
        g_true, Ap, rr = _normal_pass(blocks, b_blocks, x, p)
        if iteration > 1 and converged(g_true, rr):
            return x, iteration - 1, True, math.sqrt(rr)
        pAp = float(p @ Ap)
        if not pAp > 0.0:
            break
        alpha = rz / pAp
        x = x + alpha * p
        g = g_true - alpha * Ap
        z = precondition(g)
        rz_new = float(g @ z)
        p = z + (rz_new / rz) * p
        rz = rz_new
    g_true, _, rr = _normal_pass(blocks, b_blocks, x, zeros)
    return x, maxiter, converged(g_true, rr), math.sqrt(rr)


def lstsq(A, b, *, rng=None, tol=None, sketch="sparse_sign", oversampling=10, max_iter=None, n_threads=None):
    """:func:`randnla.sketch.lstsq` for a tall Dask A (sketch-and-precondition, full accuracy).

    One pass sketches [A b] with the same operator as the in-memory function (regenerated per
    chunk); the QR factor R of S A then preconditions conjugate gradients on the normal equations
    (:func:`preconditioned_cg`): one pass over A's chunks per iteration, and only d-vectors travel
    between the workers and the client. Computed in float64; x is returned in the input's dtype.
    """
    from randnla._validate import check_choice, check_int, check_positive

    sk = _sketch_module()
    check_choice(sketch, "sketch", ("sparse_sign", "srht", "gaussian"))
    A = _row_chunked(A, "A")
    if A.ndim != 2:
        raise ValueError(f"A must be a 2-D array, got shape {A.shape}")
    n, d = A.shape
    if n < d:
        raise ValueError(f"lstsq is for tall A (n >= d), got shape {(n, d)}")
    b = _as_dask_like(b, A, "b")
    if b.ndim != 1:
        raise ValueError(f"b must be a vector of length {n}, got shape {b.shape}")
    out_dtype = sk._promote(np.dtype(A.dtype), np.dtype(b.dtype))
    tol = 1e-14 if tol is None else check_positive(tol, "tol")
    oversampling = check_positive(oversampling, "oversampling")
    m = min(n, max(d + 1, math.ceil(oversampling * d)))
    if sketch == "srht":
        m = min(m, sk._next_pow2(n))
    max_iter = 200 + 2 * d if max_iter is None else check_int(max_iter, "max_iter", minimum=1)
    if sketch == "sparse_sign":
        S = sk.sparse_sign(m, n, nnz_per_column=min(8, m), rng=rng, n_threads=n_threads)
    else:
        S = (sk.srht if sketch == "srht" else sk.gaussian)(m, n, rng=rng, n_threads=n_threads)
    SA, Sb = sketched_sides(S, A, b)
    x, n_iter, converged, residual_norm = preconditioned_cg(A, b, SA, Sb, tol=tol, maxiter=max_iter)
    if not converged:
        warnings.warn(f"lstsq: conjugate gradients stopped after {n_iter} passes without reaching tol={tol:g}",
                      RuntimeWarning, stacklevel=3)
    return sk.LstsqResult(x=x.astype(out_dtype), residual_norm=float(residual_norm), n_iter=int(n_iter),
                          converged=bool(converged), sketch_rows=int(m))


def _sq(block):
    v = _to_host(block).astype(np.float64).ravel()
    return float(v @ v)


def _delayed_sq(block):
    from dask import delayed

    return delayed(_sq, pure=True)(block)


def _sum_scalars(parts):
    return float(sum(parts))


# ---------------------------------------------------------------------------------------------
# Regression through a join
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class JoinRegressionResult:
    """Least-squares model of a target on joined features, estimated from two coordinated sketches.

    Attributes
    ----------
    x : numpy.ndarray
        Coefficients (one per feature column of ``sketch_X``).
    gram : numpy.ndarray
        Estimate of X_J^T X_J over the joined rows J (d x d).
    cross : numpy.ndarray
        Estimate of X_J^T y_J.
    ridge : float
        The ridge added to ``gram`` before solving.
    n_common : int
        Keys kept by both sketches (the rows the estimates are built from).
    """

    x: np.ndarray
    gram: np.ndarray
    cross: np.ndarray
    ridge: float
    n_common: int


def _dense_host(rows):
    if rows is None:
        return None
    if hasattr(rows, "toarray"):
        rows = rows.toarray()
    return np.asarray(_to_host(rows), dtype=np.float64)


def join_regression(sketch_X, sketch_y, *, ridge="auto", target=0):
    """Least-squares model of a target on features held by another party, joined by key.

    ``sketch_X`` is a coordinated sketch of a feature table X (one row per join key) and
    ``sketch_y`` one of a target table (one row per key; ``target`` selects the target column),
    built apart with the same seed. The model minimises ``||X_J x - y_J||`` over the joined rows J
    (keys present in both tables), estimated without the join:
    ``G = sum_i x_i x_i^T / p_i`` and ``c = sum_i x_i y_i / p_i`` over the keys kept by both
    sketches, ``p_i = min(1, ||x_i||^2 tau_X, ||t_i||^2 tau_y)`` (the joint inclusion probability
    of a coordinated pair), then ``x = (G + ridge I)^-1 c``. Both estimates are unbiased for
    ``X_J^T X_J`` and ``X_J^T y_J`` provided every row of the target table has a nonzero weight:
    sketch the target table with a constant column (``[y, 1]``), otherwise rows with ``y_i = 0``
    are never sampled and drop out of the Gram estimate.

    Parameters
    ----------
    sketch_X, sketch_y : CoordinatedSketch
        Same seed, kind and hash version (built by :func:`priority_sample` or
        :func:`threshold_sample`, in memory or on Dask arrays).
    ridge : float or "auto"
        Ridge added to G (G can be singular when few joined rows are kept). ``"auto"``:
        ``1e-8 * trace(G) / d``.
    target : int
        Column of ``sketch_y``'s rows holding the target.

    Returns
    -------
    JoinRegressionResult
        ``x``, the estimates ``gram`` and ``cross``, the ``ridge`` used and ``n_common``.

    Examples
    --------
    >>> import numpy as np
    >>> from randnla.sketch import priority_sample, join_regression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((2000, 3))             # feature table, keys 0 .. 1999
    >>> keys_t = np.arange(500, 2500)                  # target table, keys 500 .. 2499
    >>> y = np.zeros(2000)
    >>> y[:1500] = X[500:] @ [1.0, -2.0, 0.5]          # keys 500 .. 1999 join
    >>> T = np.column_stack([y, np.ones(2000)])        # the constant column keeps every row's weight > 0
    >>> sx = priority_sample(X, 400, seed=4)
    >>> sy = priority_sample(T, 400, seed=4, keys=keys_t)
    >>> fit = join_regression(sx, sy)
    >>> np.round(fit.x, 6)
    array([ 1. , -2. ,  0.5])
    """
    from randnla._validate import check_int

    sk = _sketch_module()
    sk._check_compatible([sketch_X, sketch_y], "join_regression")
    d = int(sketch_X.shape[1])
    t_cols = int(sketch_y.shape[1])
    target = check_int(target, "target", minimum=-t_cols, maximum=t_cols - 1)
    common, ix, iy = np.intersect1d(sketch_X.keys, sketch_y.keys, assume_unique=True, return_indices=True)
    with np.errstate(over="ignore", invalid="ignore"):
        p = np.minimum(1.0, np.minimum(sketch_X.norms_sq[ix] * sketch_X.tau, sketch_y.norms_sq[iy] * sketch_y.tau))
    X = _dense_host(sk._take_rows(sketch_X.rows, ix)) if len(common) else np.zeros((0, d))
    T = _dense_host(sk._take_rows(sketch_y.rows, iy)) if len(common) else np.zeros((0, t_cols))
    y = T[:, target]
    Xs = X / p[:, None]
    gram = Xs.T @ X
    gram = 0.5 * (gram + gram.T)
    cross = Xs.T @ y
    if isinstance(ridge, str):
        if ridge != "auto":
            raise ValueError(f"ridge must be a non-negative number or 'auto', got {ridge!r}")
        lam = 1e-8 * float(np.trace(gram)) / max(d, 1)
    else:
        lam = float(ridge)
        if not (lam >= 0.0 and math.isfinite(lam)):
            raise ValueError(f"ridge must be a non-negative finite number, got {ridge!r}")
    system = gram + lam * np.eye(d)
    if len(common) == 0 or not np.any(system):
        warnings.warn("the two sketches share no joined rows with nonzero weight; the model is zero "
                      "(increase k)", RuntimeWarning, stacklevel=2)
        return JoinRegressionResult(np.zeros(d), gram, cross, lam, int(len(common)))
    x = np.linalg.lstsq(system, cross, rcond=None)[0]
    return JoinRegressionResult(x, gram, cross, lam, int(len(common)))
