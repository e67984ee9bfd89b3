"""randnla.sketch on Dask arrays: a real LocalCluster (2 worker processes on the loopback interface).

Coordinated sketches of a row-chunked Dask array must equal the in-memory sketch of the
concatenated matrix bit for bit; linear sketches and least squares must agree with the in-memory
results to rounding; a worker killed mid-computation must not change the answer.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import scipy.sparse as sp

try:
    import dask
    import dask.array as da
    from distributed import Client, LocalCluster
except ImportError as err:  # pragma: no cover - depends on the environment
    pytest.skip(f"needs the optional Dask extra (pip install randnla[dask]): {err}", allow_module_level=True)

from randnla import _backend, sketch


@pytest.fixture(scope="module")
def client():
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None, silence_logs=50)
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def _assert_same_sketch(got, want):
    assert got.kind == want.kind and got.seed == want.seed and got.k == want.k
    assert tuple(got.shape) == tuple(want.shape)
    assert got.hash_version == want.hash_version
    assert np.array_equal(got.keys, want.keys) and got.keys.dtype == want.keys.dtype
    assert (got.tau == want.tau) or (np.isinf(got.tau) and np.isinf(want.tau))
    assert np.array_equal(got.norms_sq, want.norms_sq)
    assert np.array_equal(got.spare_keys, want.spare_keys)
    assert np.array_equal(got.spare_norms_sq, want.spare_norms_sq)
    for a, b in ((got.rows, want.rows), (got.spare_rows, want.spare_rows)):
        if b is None or (hasattr(b, "shape") and b.shape[0] == 0):
            assert a is None or a.shape[0] == 0
            continue
        if sp.issparse(b):
            assert sp.issparse(a) and a.shape == b.shape and a.dtype == b.dtype
            assert (a != b).nnz == 0
        else:
            assert a.dtype == b.dtype and np.array_equal(a, b)


def _heavy_rows(rng, n, d, zero_every=9):
    A = rng.standard_t(3, size=(n, d)) * rng.lognormal(0.0, 1.0, size=(n, 1))
    A[::zero_every] = 0.0  # zero rows are never sampled
    return A


CHUNKS = (700, 1300, 250, 2000, 1, 999, 1750, 1000)  # uneven, one single-row chunk; n = 8700


# --- import hygiene --------------------------------------------------------------------------


def test_importing_randnla_never_imports_dask():
    code = (
        "import sys, randnla, randnla.sketch, randnla._backend\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_is_dask_recognises_dask_arrays_only():
    assert _backend.is_dask(da.zeros((4, 2), chunks=2))
    assert not _backend.is_dask(np.zeros((4, 2)))
    assert not _backend.is_dask(sp.csr_matrix((4, 2)))
    assert not _backend.is_dask(dask.delayed(np.zeros)(3))


# --- coordinated sampling on the cluster --------------------------------------------------------


@pytest.mark.parametrize("k", [1, 6, 300, 20000])
def test_priority_sample_equals_in_memory(client, k):
    rng = np.random.default_rng(11)
    A = _heavy_rows(rng, sum(CHUNKS), 6)
    dA = da.from_array(A, chunks=(CHUNKS, 6))
    got = sketch.priority_sample(dA, k, seed=2026)
    _assert_same_sketch(got, sketch.priority_sample(A, k, seed=2026))


def test_priority_sample_with_dask_keys_and_float32(client):
    rng = np.random.default_rng(12)
    A = _heavy_rows(rng, sum(CHUNKS), 5).astype(np.float32)
    keys = rng.permutation(np.unique(rng.integers(-(2**62), 2**62, size=2 * A.shape[0]))[: A.shape[0]])
    dA = da.from_array(A, chunks=(CHUNKS, 5))
    dkeys = da.from_array(keys, chunks=1500)  # different chunking: aligned to A's rows inside
    got = sketch.priority_sample(dA, 40, seed=7, keys=dkeys)
    _assert_same_sketch(got, sketch.priority_sample(A, 40, seed=7, keys=keys))
    got_np_keys = sketch.priority_sample(dA, 40, seed=7, keys=keys)
    _assert_same_sketch(got_np_keys, sketch.priority_sample(A, 40, seed=7, keys=keys))


def test_sparse_chunks_priority_and_threshold(client):
    A = sp.random(6000, 80, density=0.03, random_state=3, format="csr")
    dA = da.from_array(A, chunks=(900, 80), asarray=False)
    for fn, k in ((sketch.priority_sample, 50), (sketch.threshold_sample, 50)):
        got = fn(dA, k, seed=99)
        assert sp.issparse(got.rows)
        _assert_same_sketch(got, fn(A, k, seed=99))


@pytest.mark.parametrize("k", [5, 400, 10**5])
def test_threshold_sample_equals_in_memory(client, k):
    rng = np.random.default_rng(13)
    A = _heavy_rows(rng, sum(CHUNKS), 4)
    dA = da.from_array(A, chunks=(CHUNKS, 4))
    got = sketch.threshold_sample(dA, k, seed=5)
    _assert_same_sketch(got, sketch.threshold_sample(A, k, seed=5))


def test_estimate_matmul_from_two_dask_sketches(client):
    """A^T B from sketches built on the cluster: equal to the in-memory estimate, and accurate."""
    rng = np.random.default_rng(14)
    n = sum(CHUNKS)
    A = _heavy_rows(rng, n, 5, zero_every=4)
    B = 0.5 * A[:, :3] + rng.standard_normal((n, 3))
    dA = da.from_array(A, chunks=(CHUNKS, 5))
    dB = da.from_array(B, chunks=(2500, 3))  # B chunked differently from A: coordination needs keys only
    eps, delta = 0.25, 0.05
    k = int(np.ceil(2 / (delta * eps**2))) + 1  # 641
    sa, sb = sketch.priority_sample(dA, k, seed=31), sketch.priority_sample(dB, k, seed=31)
    W = sketch.estimate_matmul(sa, sb)
    W_mem = sketch.estimate_matmul(sketch.priority_sample(A, k, seed=31), sketch.priority_sample(B, k, seed=31))
    assert np.array_equal(W, W_mem)
    err = np.linalg.norm(W - A.T @ B) / (np.linalg.norm(A) * np.linalg.norm(B))
    assert err <= eps


# --- linear sketches and least squares --------------------------------------------------------


@pytest.mark.parametrize("kind", ["gaussian", "rademacher", "srht", "countsketch", "sparse_sign"])
def test_operator_times_dask_array(client, kind):
    rng = np.random.default_rng(15)
    n = sum(CHUNKS)
    A = rng.standard_normal((n, 7))
    dA = da.from_array(A, chunks=(CHUNKS, 7))
    S = getattr(sketch, kind)(64, n, rng=3)
    got = S @ dA
    assert _backend.is_dask(got) and got.shape == (64, 7)
    want = S @ A
    np.testing.assert_allclose(got.compute(), want, rtol=0, atol=1e-12 * np.abs(want).max())
    v = S @ dA[:, 2]
    np.testing.assert_allclose(v.compute(), S @ A[:, 2], rtol=0, atol=1e-12 * np.abs(want).max())


def test_operator_is_shipped_as_its_description_never_dense():
    """The graph of S @ A carries the operator's key and shape, not S: it stays tiny for a huge S."""
    import cloudpickle

    n = 10**6
    dA = da.random.default_rng(0).standard_normal((n, 4), chunks=(125_000, 4))  # lazily generated
    for kind in ("gaussian", "countsketch"):
        S = getattr(sketch, kind)(256, n, rng=1)  # dense: 2 GB
        graph = dict((S @ dA).__dask_graph__())
        assert len(cloudpickle.dumps(graph)) < 10**6


def test_operator_float32_and_sparse_chunks(client):
    A = sp.random(5000, 30, density=0.05, random_state=4, format="csr", dtype=np.float32)
    dA = da.from_array(A, chunks=(1200, 30), asarray=False)
    for kind in ("gaussian", "countsketch"):
        S = getattr(sketch, kind)(40, 5000, rng=8, dtype=np.float32)
        got = (S @ dA).compute()
        want = S @ A
        assert got.dtype == np.float32 == want.dtype
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())


@pytest.mark.parametrize("kind", ["gaussian", "srht"])
def test_sketched_lstsq_on_dask_equals_in_memory(client, kind):
    rng = np.random.default_rng(16)
    n, d = sum(CHUNKS), 12
    A = rng.standard_normal((n, d))
    b = A @ rng.standard_normal(d) + 0.1 * rng.standard_normal(n)
    dA = da.from_array(A, chunks=(CHUNKS, d))
    db = da.from_array(b, chunks=2000)  # b chunked differently from A
    got = sketch.sketched_lstsq(dA, db, m=400, kind=kind, rng=5)
    want = sketch.sketched_lstsq(A, b, m=400, kind=kind, rng=5)
    assert got.m == want.m == 400 and got.kind == kind
    np.testing.assert_allclose(got.x, want.x, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got.stderr, want.stderr, rtol=1e-8)
    np.testing.assert_allclose(got.residual_norm, want.residual_norm, rtol=1e-9)
    # the error bars hold: simultaneous bars at level delta = 0.01 cover x*
    x_star = np.linalg.lstsq(A, b, rcond=None)[0]
    assert np.all(np.abs(got.x - x_star) <= got.error_bar)


def test_sketched_lstsq_on_dask_refuses_sparse_kinds():
    dA = da.ones((100, 3), chunks=50)
    for kind in ("countsketch", "sparse_sign"):
        with pytest.raises(ValueError, match="l-infinity"):
            sketch.sketched_lstsq(dA, np.ones(100), kind=kind)


@pytest.mark.parametrize("kind, scheduler", [("sparse_sign", "cluster"), ("gaussian", "threads"), ("srht", "threads")])
def test_lstsq_on_dask_reaches_lapack_accuracy(client, kind, scheduler):
    rng = np.random.default_rng(17)
    n, d = sum(CHUNKS), 20
    A = rng.standard_normal((n, d)) @ np.diag(np.logspace(0, 6, d))  # kappa 1e6
    b = A @ rng.standard_normal(d) + rng.standard_normal(n)
    dA = da.from_array(A, chunks=(CHUNKS, d))
    if scheduler == "cluster":
        res = sketch.lstsq(dA, b, rng=1, sketch=kind)  # one pass over the chunks per iteration
    else:
        with dask.config.set(scheduler=scheduler):
            res = sketch.lstsq(dA, b, rng=1, sketch=kind)
    x_ref = np.linalg.lstsq(A, b, rcond=None)[0]
    r_ref = np.linalg.norm(A @ x_ref - b)
    r_got = np.linalg.norm(A @ res.x - b)
    assert res.converged and res.sketch_rows == sketch.lstsq(A, b, rng=1, sketch=kind).sketch_rows
    assert abs(res.residual_norm - r_got) <= 1e-9 * r_got  # both carry the rounding of b - A x (|A||x| ~ 1e6)
    assert (r_got - r_ref) / r_ref < 1e-10
    np.testing.assert_allclose(A @ res.x, A @ x_ref, rtol=0, atol=1e-8 * np.linalg.norm(b))


def test_lstsq_on_sparse_float32_chunks():
    A = sp.random(6000, 15, density=0.2, random_state=5, format="csr", dtype=np.float32)
    A = (A + sp.eye(6000, 15, dtype=np.float32)).tocsr()
    b = np.random.default_rng(6).standard_normal(6000).astype(np.float32)
    dA = da.from_array(A, chunks=(1000, 15), asarray=False)
    with dask.config.set(scheduler="threads"):
        res = sketch.lstsq(dA, da.from_array(b, chunks=1000), rng=2)
    assert res.x.dtype == np.float32 and res.converged
    A64, b64 = A.toarray().astype(np.float64), b.astype(np.float64)
    x_ref = np.linalg.lstsq(A64, b64, rcond=None)[0]
    np.testing.assert_allclose(res.x, x_ref.astype(np.float32), rtol=1e-5, atol=1e-6)


# --- regression through a join ------------------------------------------------------------------


def test_join_regression_from_dask_sketches(client):
    """Features in one table, target in another, joined by key; both sketched on the cluster."""
    rng = np.random.default_rng(18)
    n_x, d = 6000, 4
    keys_x = rng.permutation(np.arange(0, 3 * n_x, 3))  # feature table keys
    X = rng.standard_normal((n_x, d)) * np.array([1.0, 3.0, 0.5, 2.0])
    beta = np.array([1.5, -0.5, 2.0, 0.25])
    keys_t = np.arange(0, 4 * n_x, 4)[: n_x]  # target table keys: only every 12th key joins
    t_lookup = {int(k): i for i, k in enumerate(keys_x)}
    joined = np.array([t_lookup.get(int(k), -1) for k in keys_t])
    y = np.where(joined >= 0, X[np.maximum(joined, 0)] @ beta, 0.0) + 0.3 * rng.standard_normal(n_x)
    T = np.column_stack([y, np.ones(n_x)])
    dX = da.from_array(X, chunks=(1000, d))
    dT = da.from_array(T, chunks=(1500, 2))
    k = 3000
    sx = sketch.priority_sample(dX, k, seed=77, keys=da.from_array(keys_x, chunks=1000))
    st = sketch.priority_sample(dT, k, seed=77, keys=keys_t)
    fit = sketch.join_regression(sx, st)
    J = joined >= 0
    XJ, yJ = X[joined[J]], y[J]
    exact = np.linalg.lstsq(XJ, yJ, rcond=None)[0]
    assert fit.n_common > 50
    # the estimate of X_J^T X_J and X_J^T y_J is unbiased; with ~1/2 of the joined rows kept the
    # coefficients land within a few standard errors of the exact join regression
    assert np.abs(fit.x - exact).max() < 0.15
    # noise-free target: the model is recovered exactly from any coordinated pair
    T0 = np.column_stack([np.where(J, X[np.maximum(joined, 0)] @ beta, 0.0), np.ones(n_x)])
    st0 = sketch.priority_sample(da.from_array(T0, chunks=(1500, 2)), 500, seed=77, keys=keys_t)
    sx0 = sketch.priority_sample(dX, 1500, seed=77, keys=keys_x)
    np.testing.assert_allclose(sketch.join_regression(sx0, st0, ridge=0.0).x, beta, rtol=1e-10)


def test_join_regression_rejects_mismatched_sketches():
    A = np.random.default_rng(0).standard_normal((50, 2))
    with pytest.raises(ValueError, match="seed"):
        sketch.join_regression(sketch.priority_sample(A, 10, seed=1), sketch.priority_sample(A, 10, seed=2))
    with pytest.raises(ValueError, match="ridge"):
        sketch.join_regression(sketch.priority_sample(A, 10, seed=1), sketch.priority_sample(A, 10, seed=1),
                               ridge=-1.0)


# --- the threaded scheduler, the tree, validation ---------------------------------------------------


def test_threaded_scheduler_and_a_deep_tree():
    rng = np.random.default_rng(19)
    A = _heavy_rows(rng, 7000, 3)
    dA = da.from_array(A, chunks=(100, 3))  # 70 chunks: a three-level merge tree
    with dask.config.set(scheduler="threads"):
        _assert_same_sketch(sketch.priority_sample(dA, 25, seed=4), sketch.priority_sample(A, 25, seed=4))
        _assert_same_sketch(sketch.threshold_sample(dA, 25, seed=4), sketch.threshold_sample(A, 25, seed=4))
        S = sketch.sparse_sign(32, 7000, rng=2)
        np.testing.assert_allclose((S @ dA).compute(), S @ A, rtol=0, atol=1e-12 * np.abs(A).sum())
    # unknown chunk sizes (after a boolean filter) are computed first; default keys = row index
    keep = A[:, 0] > 0
    filtered = dA[dA[:, 0] > 0]
    assert np.isnan(filtered.shape[0])
    with dask.config.set(scheduler="threads"):
        _assert_same_sketch(sketch.priority_sample(filtered, 25, seed=4, keys=da.arange(7000, chunks=100)[keep]),
                            sketch.priority_sample(A[keep], 25, seed=4, keys=np.arange(7000)[keep]))
        _assert_same_sketch(sketch.priority_sample(filtered, 25, seed=4), sketch.priority_sample(A[keep], 25, seed=4))
    # column chunks are joined inside: the result does not depend on how A is chunked
    dA2 = da.from_array(A, chunks=(1200, 1))
    with dask.config.set(scheduler="sync"):
        _assert_same_sketch(sketch.priority_sample(dA2, 25, seed=4), sketch.priority_sample(A, 25, seed=4))


def test_bad_input_on_dask_arrays():
    dA = da.zeros((100, 3), chunks=30)
    with dask.config.set(scheduler="sync"):
        with pytest.raises(ValueError, match="keys"):
            sketch.priority_sample(dA, 5, seed=1, keys=np.arange(99))
        with pytest.raises(TypeError, match="keys"):
            sketch.priority_sample(dA, 5, seed=1, keys=np.zeros(100))
        with pytest.raises(ValueError, match="k"):
            sketch.priority_sample(dA, 0, seed=1)
        with pytest.raises(ValueError, match="rows"):
            sketch.gaussian(10, 99, rng=0) @ dA
        with pytest.raises(ValueError, match="2-D"):
            sketch.priority_sample(da.zeros(10, chunks=5), 5, seed=1)


# --- a worker dies mid-computation -------------------------------------------------------------------


def _slow_chunk(block, marker_dir):
    """Identity on a chunk, slowly, leaving a marker with the worker's pid while it runs."""
    with open(os.path.join(marker_dir, f"running-{os.getpid()}"), "w"):
        pass
    time.sleep(0.4)
    return block


def test_worker_killed_mid_computation_does_not_change_the_result(client, tmp_path):
    rng = np.random.default_rng(20)
    A = _heavy_rows(rng, sum(CHUNKS), 6)
    dA = da.from_array(A, chunks=(CHUNKS, 6)).map_blocks(_slow_chunk, str(tmp_path), dtype=A.dtype)
    worker_pids = set(client.run(os.getpid).values())
    result, failure = [], []

    def compute():
        try:
            result.append(sketch.priority_sample(dA, 30, seed=123))
        except BaseException as err:  # pragma: no cover - reported below
            failure.append(err)

    thread = threading.Thread(target=compute)
    thread.start()
    victim = None
    deadline = time.monotonic() + 30
    while victim is None and time.monotonic() < deadline:
        for name in os.listdir(tmp_path):
            pid = int(name.split("-")[1])
            if pid in worker_pids:
                victim = pid
                break
        time.sleep(0.02)
    assert victim is not None, "no chunk computation started on a worker"
    os.kill(victim, signal.SIGKILL)
    thread.join(120)
    assert not thread.is_alive() and not failure, failure
    _assert_same_sketch(result[0], sketch.priority_sample(A, 30, seed=123))
    # the worker was really lost (its nanny restarts it)
    client.wait_for_workers(2, timeout=60)
    assert victim not in set(client.run(os.getpid).values())


# --- CuPy chunks (GPU only) ------------------------------------------------------------------------


@pytest.mark.gpu
def test_cupy_chunks_sketch_on_the_device(cupy):
    rng = np.random.default_rng(21)
    A = _heavy_rows(rng, sum(CHUNKS), 6)
    A_gpu = cupy.asarray(A)
    dA = da.from_array(A_gpu, chunks=(CHUNKS, 6), asarray=False)
    with dask.config.set(scheduler="threads"):
        got = sketch.priority_sample(dA, 50, seed=8)
        want = sketch.priority_sample(A_gpu, 50, seed=8)
        assert np.array_equal(got.keys, want.keys) and got.tau == want.tau
        assert np.array_equal(cupy.asnumpy(got.rows), cupy.asnumpy(want.rows))
        S = sketch.gaussian(32, A.shape[0], rng=4)
        SA = (S @ dA).compute()
        assert _backend.is_cupy(SA)
        np.testing.assert_allclose(cupy.asnumpy(SA), S @ A, rtol=0, atol=1e-12 * np.abs(A).sum())
