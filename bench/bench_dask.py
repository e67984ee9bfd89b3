"""Coordinated and linear sketches of a Dask array on a LocalCluster vs the in-memory randnla path.

The matrix (n x 100, heavy-tailed rows) is generated chunk by chunk on the workers from Philox
streams addressed by the global entry index (entry (i, j) is a pure function of (key, i d + j)), so
it is never materialised in one process, and any row can be regenerated alone to check a sketch.
Each size runs on a fresh cluster (2 worker processes x 1 thread, loopback), so a worker's peak
resident memory (``VmHWM``) is the peak of that run alone.

Rows: priority sampling (k = 1000) and a sparse-sign linear sketch on the size that fits in one
process, against the in-memory path on the same data (generation + sketch in both); in full mode
also the 10^7 x 100 matrix (8 GB, which the in-memory path would need in one process).
"""

from __future__ import annotations

import math
import resource
import time

import numpy as np

from _harness import row

D = 100
K = 1000
SEED = 20261129
DATA_KEY = 4242


def _generate(block_info=None):
    """Rows [r0, r1) of the matrix: standard normals times a per-row lognormal scale."""
    r0, r1 = block_info[None]["array-location"][0]
    return _rows(r0, r1)


def _rows(r0, r1, n_threads=1):
    from randnla.random import Stream

    values = Stream(key=DATA_KEY).standard_normal((r1 - r0, D), offset=r0 * D, n_threads=n_threads)
    scale = np.exp(Stream(key=DATA_KEY + 1).standard_normal(r1 - r0, offset=r0, n_threads=n_threads))
    values *= scale[:, None]
    return values


def _dask_matrix(n, chunk):
    import dask.array as da

    nchunks = math.ceil(n / chunk)
    chunks = tuple(min(chunk, n - i * chunk) for i in range(nchunks))
    return da.map_blocks(_generate, chunks=(chunks, (D,)), dtype=np.float64, meta=np.empty((0, 0)))


def _peak_mb():
    """Peak resident memory of this process in MB (VmHWM: unlike ru_maxrss, not inherited through exec)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _cluster():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None, silence_logs=50)
    return cluster, Client(cluster)


def _check_sketch(s, n):
    """Invariants of a priority sketch, with its rows regenerated from the data streams."""
    from randnla.sketch import coordination_hash

    rows_ok = all(np.array_equal(s.rows[t], _rows(int(key), int(key) + 1)[0]) for t, key in enumerate(s.keys))
    w_ok = np.array_equal(s.norms_sq, np.einsum("ij,ij->i", s.rows, s.rows)) or np.allclose(
        s.norms_sq, np.einsum("ij,ij->i", s.rows, s.rows), rtol=1e-14)
    ranks = coordination_hash(s.keys, seed=SEED) / s.norms_sq
    spare_rank = coordination_hash(s.spare_keys, seed=SEED) / s.spare_norms_sq
    tau_ok = len(s.keys) == K and bool(np.all(ranks < s.tau)) and spare_rank.size == 1 and spare_rank[0] == s.tau
    return rows_ok and w_ok and tau_ok and s.shape == (n, D)


def _same(a, b):
    return (np.array_equal(a.keys, b.keys) and np.array_equal(a.rows, b.rows) and a.tau == b.tau
            and np.array_equal(a.norms_sq, b.norms_sq) and np.array_equal(a.spare_keys, b.spare_keys))


def _lstsq_row(sketch, n):
    """Sketch-and-precondition on a persisted Dask array vs the in-memory randnla lstsq (LAPACK checks both)."""
    import dask
    import dask.array as da

    chunk = 25_000
    x0 = np.linspace(-1.0, 1.0, D)
    cluster, client = _cluster()
    try:
        dA = _dask_matrix(n, chunk)
        db = dA @ x0 + da.sin(da.arange(n, chunks=dA.chunks[0], dtype=np.float64))
        dA, db = dask.persist(dA, db)
        client.wait_for_workers(2)
        t0 = time.perf_counter()
        res = sketch.lstsq(dA, db, rng=3)
        t_dask = time.perf_counter() - t0
    finally:
        client.close()
        cluster.close()
    A = _rows(0, n, None)
    b = A @ x0 + np.sin(np.arange(n, dtype=np.float64))
    t0 = time.perf_counter()
    res_mem = sketch.lstsq(A, b, rng=3)
    t_mem = time.perf_counter() - t0
    x_ref = np.linalg.lstsq(A, b, rcond=None)[0]  # LAPACK, for the accuracy check of both
    r_ref = np.linalg.norm(A @ x_ref - b)
    gap = float((np.linalg.norm(A @ res.x - b) - r_ref) / r_ref)
    gap_mem = float((np.linalg.norm(A @ res_mem.x - b) - r_ref) / r_ref)
    return row(f"lstsq {n:.0e} x {D} (persisted, {n // chunk} chunks), sketch-and-precondition", t_dask,
               "in-memory randnla lstsq (LSQR)", t_mem, bool(res.converged and gap < 1e-10),
               bool(res_mem.converged and gap_mem < 1e-10),
               note=(f"{res.n_iter} passes over the chunks vs {res_mem.n_iter} LSQR iterations; relative residual "
                     f"gap to numpy.linalg.lstsq {gap:.1e} (in-memory {gap_mem:.1e})"))


def run(quick: bool):
    import dask  # noqa: F401  (ImportError: run.py reports the area as skipped)
    import distributed  # noqa: F401

    from randnla import sketch

    rows = []
    n_fit = 10**6
    chunk = 62_500  # 50 MB per chunk in float64
    chunk_mb = chunk * D * 8 / 2**20

    # -- the size that fits: cluster vs in-memory on the same data --------------------------------
    cluster, client = _cluster()
    try:
        base = client.run(_peak_mb)
        dA = _dask_matrix(n_fit, chunk)
        t0 = time.perf_counter()
        s_dask = sketch.priority_sample(dA, K, seed=SEED)
        t_dask = time.perf_counter() - t0
        peaks = client.run(_peak_mb)
        S = sketch.sparse_sign(400, n_fit, rng=1)
        if not quick:
            t0 = time.perf_counter()
            SA_dask = (S @ dA).compute()
            t_lin_dask = time.perf_counter() - t0
    finally:
        client.close()
        cluster.close()

    t0 = time.perf_counter()
    A = _rows(0, n_fit, None)
    t_gen = time.perf_counter() - t0
    t0 = time.perf_counter()
    s_mem = sketch.priority_sample(A, K, seed=SEED)
    t_mem = t_gen + time.perf_counter() - t0
    if not quick:
        t0 = time.perf_counter()
        SA_mem = S @ A
        t_lin_mem = t_gen + time.perf_counter() - t0
    del A
    same = _same(s_dask, s_mem)
    peak = max(peaks.values())
    rows.append(row(
        f"priority_sample k={K}, {n_fit:.0e} x {D} ({n_fit // chunk} chunks of {chunk_mb:.0f} MB), generate + sketch",
        t_dask, "in-memory randnla priority_sample (one process, generate + sketch)", t_mem, same, True,
        note=(f"{'bit-identical' if same else 'DIFFERENT'}; cluster {n_fit / t_dask:.3g} rows/s vs in-memory "
              f"{n_fit / t_mem:.3g} rows/s; peak RSS per worker {peak:.0f} MB (at start "
              f"{max(base.values()):.0f} MB)"),
        goal="identical; worker memory a few chunks",
    ))
    if not quick:
        lin_err = float(np.abs(SA_dask - SA_mem).max() / np.abs(SA_mem).max())
        rows.append(row(
            f"sparse_sign(400) @ A, {n_fit:.0e} x {D}, generate + sketch", t_lin_dask,
            "in-memory randnla S @ A (generate + sketch)", t_lin_mem, lin_err < 1e-12, True,
            note=f"max rel. difference {lin_err:.1e}; cluster {n_fit / t_lin_dask:.3g} rows/s",
        ))
    rows.append(_lstsq_row(sketch, 10**5 if quick else 10**6))
    if quick:
        return rows

    # -- 10^7 x 100 (8 GB): only chunk-wise ----------------------------------------------------------
    n_big = 10**7
    cluster, client = _cluster()
    try:
        base = client.run(_peak_mb)
        dA = _dask_matrix(n_big, chunk)
        t0 = time.perf_counter()
        s_big = sketch.priority_sample(dA, K, seed=SEED)
        t_big = time.perf_counter() - t0
        peaks = client.run(_peak_mb)
    finally:
        client.close()
        cluster.close()
    ok = _check_sketch(s_big, n_big)
    peak_big = max(peaks.values())
    rows.append(row(
        f"priority_sample k={K}, {n_big:.0e} x {D} ({n_big // chunk} chunks, 8 GB never in one process)",
        t_big, f"in-memory path: needs 8 GB in one process (throughput at {n_fit:.0e} rows above)", float("nan"),
        ok, True,
        note=(f"{n_big / t_big:.3g} rows/s (in-memory at {n_fit:.0e}: {n_fit / t_mem:.3g} rows/s); peak RSS per "
              f"worker {peak_big:.0f} MB vs {peak:.0f} MB at {n_fit:.0e} rows (chunk {chunk_mb:.0f} MB); kept rows "
              "regenerated and checked, ranks < tau = rank of the spare"),
        goal="peak memory independent of n",
    ))
    return rows
