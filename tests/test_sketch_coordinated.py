"""Coordinated sampling: the hash contract, unbiasedness (and the off-by-one that breaks it),
the error bound, exact merging and the file format."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import scipy.sparse as sp
from scipy import stats

from randnla import sketch
from randnla.sketch import (
    CoordinatedSketch,
    coordination_hash,
    estimate_matmul,
    merge,
    priority_sample,
    threshold_sample,
)
from tests._reference import philox4x64_10
from tests.conftest import to_numpy

Z_CRIT = float(stats.norm.isf(1e-6 / 2 / 4))  # two-sided 1e-6, Bonferroni over 4 entries


def reference_hash(seed, key):
    word = philox4x64_10([key % 2**64, 0, 0, 0x436F6F7264486173], [seed, 0x72616E646E6C6131])[0]
    return ((word >> 11) + 0.5) / 2**53


def test_hash_matches_pure_python_philox():
    keys = np.array([0, 1, 2, 12345, -1, -(2**63), 2**63 - 1], dtype=np.int64)
    for seed in (0, 7, 2**64 - 1):
        h = coordination_hash(keys, seed=seed)
        assert h.tolist() == [reference_hash(seed, int(k)) for k in keys]
        assert ((h > 0) & (h < 1)).all()
    assert not np.array_equal(coordination_hash(keys, seed=1), coordination_hash(keys, seed=2))
    assert sketch.HASH_VERSION == 1


def heavy_pair(n=60, seed=0):
    rng = np.random.default_rng(seed)
    scale = rng.pareto(1.5, size=n) + 0.1  # heavy-tailed row norms
    A = rng.standard_normal((n, 2)) * scale[:, None]
    B = A + 0.5 * rng.standard_normal((n, 2)) * scale[:, None]
    return A, B


def z_scores(estimates, truth):
    estimates = np.asarray(estimates).reshape(len(estimates), -1)
    sd = estimates.std(axis=0, ddof=1) / math.sqrt(len(estimates))
    return (estimates.mean(axis=0) - np.ravel(truth)) / sd


@pytest.mark.parametrize("sampler", [priority_sample, threshold_sample])
def test_estimator_is_unbiased(sampler):
    A, B = heavy_pair()
    truth = A.T @ B
    estimates = [estimate_matmul(sampler(A, 6, seed=s), sampler(B, 6, seed=s)) for s in range(3000)]
    z = z_scores(estimates, truth)
    assert np.all(np.abs(z) < Z_CRIT), z


def kth_smallest_variant(X, k, seed):
    """The biased rule (tau = k-th smallest rank, keep ranks <= tau), kept here so that the
    off-by-one can never come back unnoticed."""
    w = np.einsum("ij,ij->i", X, X)
    ranks = coordination_hash(np.arange(len(X)), seed=seed) / w
    tau = np.sort(ranks)[k - 1]
    keep = np.flatnonzero(ranks <= tau)
    return dataclasses.replace(priority_sample(X, k, seed=seed), keys=keep, rows=X[keep], norms_sq=w[keep], tau=tau)


def test_kth_smallest_threshold_fails_the_same_test():
    A, B = heavy_pair()
    truth = A.T @ B
    estimates = [estimate_matmul(kth_smallest_variant(A, 6, s), kth_smallest_variant(B, 6, s)) for s in range(3000)]
    z = z_scores(estimates, truth)
    assert np.max(np.abs(z)) > Z_CRIT, z


def sparse_pair(n=3000, d=80, s=3, seed=1):
    rng = np.random.default_rng(seed)

    def make():
        rows = np.repeat(np.arange(n), s)
        cols = rng.integers(0, d, size=n * s)
        vals = rng.standard_t(3, size=n * s)
        return sp.csr_array((vals, (rows, cols)), shape=(n, d))

    return make(), make()


def test_frobenius_error_bound_holds_with_stated_probability():
    eps, delta = 0.5, 0.2
    k = math.ceil(2 / (delta * eps**2)) + 1
    A, B = sparse_pair()
    truth = (A.T @ B).toarray()
    bound = eps * sp.linalg.norm(A) * sp.linalg.norm(B)
    trials = 100
    failures = sum(
        np.linalg.norm(estimate_matmul(priority_sample(A, k, seed=s), priority_sample(B, k, seed=s)) - truth) > bound
        for s in range(trials)
    )
    assert failures <= delta * trials


def assert_same_sketch(x, y):
    assert np.array_equal(x.keys, y.keys)
    rx, ry = x.rows, y.rows
    if sp.issparse(rx):
        assert (rx != ry).nnz == 0 and rx.shape == ry.shape
    else:
        assert np.array_equal(rx, ry)
    assert np.array_equal(x.norms_sq, y.norms_sq)
    assert x.tau == y.tau and x.kind == y.kind and x.seed == y.seed and x.shape == y.shape and x.k == y.k
    assert np.array_equal(x.spare_keys, y.spare_keys)


@pytest.mark.parametrize("layout", ["dense", "csr"])
def test_merge_equals_sketch_of_concatenation(layout, dtype):
    rng = np.random.default_rng(3)
    n, d, k = 400, 6, 25
    A = rng.standard_normal((n, d)).astype(dtype)
    A[rng.choice(n, 40, replace=False)] = 0  # zero rows are never sampled
    keys = rng.integers(-(2**62), 2**62, size=n, dtype=np.int64)  # distinct with overwhelming probability
    data = A if layout == "dense" else sp.csr_array(A)
    whole = priority_sample(data, k, seed=11, keys=keys)
    assert not np.isin(whole.keys, keys[~A.any(axis=1)]).any()
    cuts = [0, 7, 150, 390, n]  # includes a shard with fewer than k rows
    shards = [priority_sample(data[a:b], k + 3 * i, seed=11, keys=keys[a:b]) for i, (a, b) in
              enumerate(zip(cuts[:-1], cuts[1:]))]
    assert_same_sketch(merge(shards, k), whole)
    assert_same_sketch(merge([merge(shards[:2], k), merge(shards[2:], k)], k), whole)  # associative
    assert_same_sketch(merge(shards[::-1], k), whole)  # order free
    assert_same_sketch(merge(shards, 10), priority_sample(data, 10, seed=11, keys=keys))
    assert whole.rows.dtype == dtype


def test_threshold_merge_with_fixed_tau():
    rng = np.random.default_rng(4)
    A = rng.standard_normal((300, 4))
    tau = 0.02
    whole = threshold_sample(A, 30, seed=2, tau=tau)
    parts = [threshold_sample(A[:100], 10, seed=2, tau=tau, keys=np.arange(100)),
             threshold_sample(A[100:], 20, seed=2, tau=tau, keys=np.arange(100, 300))]
    merged = merge(parts)
    assert np.array_equal(merged.keys, whole.keys) and np.array_equal(merged.rows, whole.rows)
    adaptive = [threshold_sample(A[:100], 10, seed=2), threshold_sample(A[100:], 20, seed=2, keys=np.arange(100, 300))]
    with pytest.raises(ValueError, match="same fixed tau"):
        merge(adaptive)


def test_sparse_and_dense_inputs_agree():
    A, B = sparse_pair(n=500, d=20)
    sd, ss = priority_sample(A.toarray(), 50, seed=9), priority_sample(A, 50, seed=9)
    assert np.array_equal(sd.keys, ss.keys) and np.allclose(sd.rows, ss.rows.toarray())
    bd, bs = priority_sample(B.toarray(), 50, seed=9), priority_sample(B, 50, seed=9)
    assert np.allclose(estimate_matmul(sd, bd), estimate_matmul(ss, bs), rtol=1e-12, atol=1e-12)
    assert ss.stored_numbers < sd.stored_numbers


def test_small_inputs_are_exact_and_weights_are_threshold_probabilities(dtype):
    A = np.random.default_rng(0).standard_normal((30, 3)).astype(dtype)
    s = priority_sample(A, 30, seed=0)
    assert s.tau == math.inf and len(s.keys) == 30
    W = estimate_matmul(s, s)
    assert W.dtype == dtype
    assert np.allclose(W, A.astype(np.float64).T @ A, rtol=1e-5 if dtype == np.float32 else 1e-12)
    t = threshold_sample(A, 10, seed=0)
    assert abs(np.minimum(1, np.einsum("ij,ij->i", A.astype(float), A) * t.tau).sum() - 10) < 1e-9


def test_mismatches_raise():
    A = np.random.default_rng(0).standard_normal((50, 3))
    a = priority_sample(A, 10, seed=1)
    with pytest.raises(ValueError, match="different seeds"):
        estimate_matmul(a, priority_sample(A, 10, seed=2))
    with pytest.raises(ValueError, match="threshold"):
        estimate_matmul(a, threshold_sample(A, 10, seed=1))
    with pytest.raises(ValueError, match="hash versions"):
        estimate_matmul(a, dataclasses.replace(a, hash_version=99))
    with pytest.raises(ValueError, match="different seeds"):
        merge([a, priority_sample(A, 10, seed=2, keys=np.arange(50, 100))])
    with pytest.raises(ValueError, match="share keys"):
        merge([a, a])
    with pytest.raises(ValueError, match="only shrink"):
        merge([a], 11)
    with pytest.raises(ValueError, match="distinct"):
        priority_sample(A, 5, seed=1, keys=np.zeros(50, dtype=np.int64))
    with pytest.raises(ValueError, match="shape"):
        priority_sample(A, 5, seed=1, keys=np.arange(3))
    with pytest.raises(TypeError, match="seed"):
        priority_sample(A, 5, seed=None)
    with pytest.raises(ValueError, match="seed"):
        priority_sample(A, 5, seed=-1)
    with pytest.raises(ValueError, match="k must be"):
        priority_sample(A, 0, seed=1)
    with pytest.raises(ValueError, match="NaN"):
        priority_sample(np.full((3, 2), np.nan), 1, seed=1)


@pytest.mark.parametrize("layout", ["dense", "csr"])
def test_save_and_load_round_trip(tmp_path, layout):
    A = np.random.default_rng(5).standard_normal((80, 5))
    data = A if layout == "dense" else sp.csr_matrix(A)
    for s in (priority_sample(data, 12, seed=2**64 - 3), threshold_sample(data, 12, seed=4)):
        path = tmp_path / f"{s.kind}.npz"
        s.save(path)
        loaded = CoordinatedSketch.load(path)
        assert_same_sketch(loaded, s)
        assert loaded.hash_version == s.hash_version
    bad = dict(np.load(path))
    bad["format_version"] = np.array(99)
    np.savez(tmp_path / "bad.npz", **bad)
    with pytest.raises(ValueError, match="format version"):
        CoordinatedSketch.load(tmp_path / "bad.npz")


def test_gpu_sketch_matches_cpu(xp):
    if xp is np:
        pytest.skip("the NumPy path is covered above")
    A, B = heavy_pair(200)
    for sampler in (priority_sample, threshold_sample):
        ga, gb = sampler(xp.asarray(A), 20, seed=3), sampler(xp.asarray(B), 20, seed=3)
        ca, cb = sampler(A, 20, seed=3), sampler(B, 20, seed=3)
        assert np.array_equal(ga.keys, ca.keys) and ga.tau == ca.tau
        assert np.allclose(to_numpy(estimate_matmul(ga, gb)), estimate_matmul(ca, cb))


def test_gpu_selection_on_the_device_matches_host(xp):
    """Device ranks, partition and water-filling constant give the host's selection exactly
    (zero rows, custom keys, rows whose rank overflows to infinity)."""
    if xp is np:
        pytest.skip("the NumPy path is covered above")
    from randnla import _core
    from randnla.sketch import _GPU

    rng = np.random.default_rng(21)
    n = 5000
    w = rng.standard_t(2, n) ** 2
    w[rng.random(n) < 0.3] = 0.0
    w[:3] = 1e-320
    keys = rng.permutation(10 * n)[:n].astype(np.int64)
    for count in (1, 7, 200, n):
        pos, ranks, w_sel = _GPU.priority_select(5, keys, xp.asarray(w), count)
        pos_h, ranks_h = _core.priority_select(5, keys, w, count, 0)
        assert np.array_equal(pos, pos_h) and np.array_equal(ranks, ranks_h) and np.array_equal(w_sel, w[pos_h])
    for k in (10, 300):
        tau, kept, w_kept = _GPU.threshold_select(9, keys, xp.asarray(w), k, None)
        assert tau == _core.threshold_constant(w, k)
        h = _core.coordination_hash(9, keys, 0)
        with np.errstate(over="ignore", invalid="ignore"):
            want = np.flatnonzero(h < np.where(w > 0, np.minimum(1.0, w * tau), 0.0))
        assert np.array_equal(kept, want) and np.array_equal(w_kept, w[want])
    A = rng.standard_normal((n, 4)) * (w[:, None] > 0)
    for sampler in (priority_sample, threshold_sample):
        g, c = sampler(xp.asarray(A), 50, seed=2, keys=keys), sampler(A, 50, seed=2, keys=keys)
        assert np.array_equal(g.keys, c.keys) and g.tau == c.tau
        assert np.allclose(to_numpy(g.rows), c.rows, rtol=0, atol=0)
