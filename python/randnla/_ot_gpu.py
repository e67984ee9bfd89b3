"""The CuPy path of :mod:`randnla.ot`: the same algorithms, every O(nm) pass on the device.

Log-sum-exp half-steps are fused CuPy reduction kernels (map, max-reduce, then exp-sum-reduce, with
no n x m temporary); the Newton stage forms the plan on the device, sparsifies it with the same
mass rule as the CPU core (a histogram of log P by ``bincount``), and solves the Schur complement
system by Jacobi-preconditioned CG with ``cupyx.scipy.sparse`` matrices. Only scalars (errors, step
sizes, the 1500-bucket histogram) travel to the host.
"""

from __future__ import annotations

import functools
import math
import time
import warnings

import numpy as np

from randnla import _gpu

_HIST_BUCKETS = 1500
_HIST_SCALE = 2.0


@functools.lru_cache(maxsize=None)
def _kernels():
    cp = _gpu.cupy()
    lse_max = cp.ReductionKernel(
        "float64 p, float64 c, float64 inv", "float64 y", "(p - c) * inv", "max(a, b)", "y = a",
        "__longlong_as_double(0xfff0000000000000ULL)",
        "ot_lse_max")
    lse_sum = cp.ReductionKernel(
        "float64 p, float64 c, float64 inv, float64 mx", "float64 y", "exp((p - c) * inv - mx)", "a + b", "y = a", "0",
        "ot_lse_sum")
    return lse_max, lse_sum


class _GpuProblem:
    def __init__(self, C, a, b, eps):
        cp = _gpu.cupy()
        self.cp = cp
        self.C = cp.ascontiguousarray(C, dtype=cp.float64)
        self.a = a.astype(cp.float64)
        self.b = b.astype(cp.float64)
        self.log_a = cp.log(self.a)
        self.log_b = cp.log(self.b)
        self.eps = eps
        self.inv = 1.0 / eps
        self.n, self.m = self.C.shape

    # ---- log-domain half-steps (fused reductions, no n x m temporaries)
    def _lse(self, pot, axis):
        lse_max, lse_sum = _kernels()
        if axis == 1:
            p = pot[None, :]
            mx = lse_max(p, self.C, self.inv, axis=1)
            s = lse_sum(p, self.C, self.inv, mx[:, None], axis=1)
        else:
            p = pot[:, None]
            mx = lse_max(p, self.C, self.inv, axis=0)
            s = lse_sum(p, self.C, self.inv, mx[None, :], axis=0)
        return mx + self.cp.log(s)

    def row_update(self, f, g):
        lse = self._lse(g, 1)
        err = float(self.cp.abs(self.cp.exp(f * self.inv + lse) - self.a).sum())
        return self.eps * (self.log_a - lse), err

    def col_update(self, f, g):
        lse = self._lse(f, 0)
        return self.eps * (self.log_b - lse)

    def plan(self, f, g):
        return self.cp.exp((f[:, None] + g[None, :] - self.C) * self.inv)

    def summary(self, f, g, histogram=False):
        cp = self.cp
        logP = (f[:, None] + g[None, :] - self.C) * self.inv
        out = {"max_logp": float(logP.max())}
        P = cp.exp(logP)
        out["P"], out["logP"] = P, logP
        out["r"], out["c"] = P.sum(1), P.sum(0)
        out["total"] = float(out["r"].sum())
        if histogram:
            bucket = cp.clip(-logP * _HIST_SCALE, 0, _HIST_BUCKETS - 1).astype(cp.int32).ravel()
            out["bucket"] = bucket.reshape(logP.shape)
            out["hist_count"] = cp.asnumpy(cp.bincount(bucket, minlength=_HIST_BUCKETS))
            out["hist_mass"] = cp.asnumpy(cp.bincount(bucket, weights=P.ravel(), minlength=_HIST_BUCKETS))
        return out

    def dual(self, f, g, s):
        return float(self.a @ f + self.b @ g) - self.eps * s["total"]

    def error(self, s):
        return float(self.cp.abs(s["r"] - self.a).sum() + self.cp.abs(s["c"] - self.b).sum())

    def newton_direction(self, s, drop_mass, k_min, k_max, rtol, max_cg):
        cp = self.cp
        import cupyx.scipy.sparse as cpsparse

        cut = _choose_cut(s["hist_count"], s["hist_mass"], drop_mass, k_min, k_max)
        keep = s["bucket"] < cut
        logP = s["logP"]
        keep[cp.arange(self.n), cp.argmax(logP, axis=1)] = True
        keep[cp.argmax(logP, axis=0), cp.arange(self.m)] = True
        rows, cols = cp.nonzero(keep)
        vals = s["P"][rows, cols]
        Pk = cpsparse.coo_matrix((vals, (rows, cols)), shape=(self.n, self.m)).tocsr()
        PkT = Pk.T.tocsr()
        r, c = s["r"], s["c"]
        inv_r = 1.0 / r
        rhs_f = self.eps * (self.a - r)
        rhs_g = self.eps * (self.b - c)
        fixed = int(cp.argmax(c))
        mask = cp.ones(self.m)
        mask[fixed] = 0.0

        def apply_s(x):
            return mask * (c * x - PkT @ (inv_r * (Pk @ x)))

        rhs = mask * (rhs_g - PkT @ (inv_r * rhs_f))
        squared = PkT.copy()
        squared.data = squared.data * squared.data
        diag = c - squared @ inv_r
        diag = cp.maximum(diag, 1e-12 * c)
        dinv = mask / diag
        x = cp.zeros(self.m)
        res = rhs.copy()
        z = dinv * res
        p = z.copy()
        rz = float(res @ z)
        bnorm = float(cp.linalg.norm(rhs))
        it = 0
        rnorm = bnorm
        while bnorm > 0 and it < max_cg and rnorm > rtol * bnorm:
            q = apply_s(p)
            pq = float(p @ q)
            if not pq > 0:
                break
            alpha = rz / pq
            x += alpha * p
            res -= alpha * q
            rnorm = float(cp.linalg.norm(res))
            z = dinv * res
            rz_new = float(res @ z)
            p = z + (rz_new / rz) * p
            rz = rz_new
            it += 1
        df = inv_r * (rhs_f - Pk @ x)
        return df, x, it, int(Pk.nnz)


def _choose_cut(count, mass, drop_mass, k_min, k_max):
    """Same rule as randnla::ot::choose_cut (C++)."""
    nb = len(count)
    cut, tail = nb, 0.0
    for k in range(nb - 1, -1, -1):
        if tail + mass[k] > drop_mass:
            break
        tail += mass[k]
        cut = k
    cut = max(cut, 1)
    kept = int(count[:cut].sum())
    while kept < k_min and cut < nb:
        kept += int(count[cut])
        cut += 1
    while kept > k_max and cut > 1 and kept - int(count[cut - 1]) >= k_min:
        kept -= int(count[cut - 1])
        cut -= 1
    return cut


def solve(a, b, C, reg, *, method, tol, max_iter, warm, opts, callback, verbose):
    """The CuPy counterpart of the CPU driver in randnla.ot (same options, same result)."""
    from randnla.ot import OTResult, _Tracker

    cp = _gpu.cupy()
    # On the device "sinkhorn" also runs log-domain sweeps (fused reductions; no stored kernel).
    tracker = _Tracker(callback, verbose)
    keep_a, keep_b = a > 0, b > 0
    full = bool(keep_a.all() and keep_b.all())
    ia, ib = cp.flatnonzero(keep_a), cp.flatnonzero(keep_b)
    C_sub = C if full else C[ia][:, ib]
    pr = _GpuProblem(C_sub, a[ia], b[ib], reg)
    n, m, eps = pr.n, pr.m, pr.eps
    dual_history = []

    if warm is not None:
        f, g = warm[0][ia].copy(), warm[1][ib].copy()
        done = pr.error(pr.summary(f, g)) <= tol
    else:
        f, g = cp.zeros(n), cp.zeros(m)
        done = False

    def sweeps(count, stop_tol):
        # The row half-step measures the row error of the plan left by the previous sweep of this call
        # (whose columns are exact); the first one of a call only starts the sweep.
        nonlocal f, g
        for k in range(count + 1):
            if tracker.stopped or (k > 0 and tracker.total() >= max_iter):
                return False
            f_old = f
            f_new, err = pr.row_update(f, g)
            if k > 0:
                tracker.history.append((tracker.total(), err, time.perf_counter() - tracker.start))
                if err <= stop_tol or not math.isfinite(err) or k == count:
                    f = f_old
                    return err <= stop_tol
            f = f_new
            g = pr.col_update(f, g)
            tracker.n_sinkhorn += 1
        return False

    if not done and method in ("sinkhorn_log", "sinkhorn"):
        sweeps(max_iter, tol)
    elif not done:
        switch = max(tol, opts["switch_tol"] * float(pr.a.sum()))
        sweeps(opts["warmup_iter"], switch)
        s = pr.summary(f, g, histogram=True)
        err = pr.error(s)
        F = pr.dual(f, g, s)
        dual_history.append(F)
        nu = opts["sparsity_mass"]
        k_min = min(2 * max(n, m), n * m)
        k_max = max(k_min, int(opts["max_density"] * n * m))
        failures = steps = 0
        newton_errors = []
        while err > tol and not tracker.stopped and tracker.total() < max_iter and steps < opts["newton_max_iter"]:
            drop = max(1e-12, nu * err) * s["total"]
            err_l2 = float(cp.sqrt(((pr.a - s["r"]) ** 2).sum() + ((pr.b - s["c"]) ** 2).sum()))
            df, dg, cg_its, nnz = pr.newton_direction(s, drop, k_min, k_max, min(0.1, math.sqrt(err_l2)),
                                                      opts["cg_max_iter"])
            shift = (df.sum() - dg.sum()) / (n + m)
            df, dg = df - shift, dg + shift
            slope = float((pr.a - s["r"]) @ df + (pr.b - s["c"]) @ dg)
            accepted, alpha = None, 1.0
            if slope > 0 and bool(cp.isfinite(df).all()) and bool(cp.isfinite(dg).all()):
                for _ in range(max(opts["line_search_trials"], 1)):
                    f_try, g_try = f + alpha * df, g + alpha * dg
                    trial = pr.summary(f_try, g_try, histogram=True)
                    if trial["max_logp"] < 700 and math.isfinite(trial["total"]):
                        F_try = pr.dual(f_try, g_try, trial)
                        err_try = pr.error(trial)
                        if F_try >= F + opts["armijo"] * alpha * slope or (
                                F_try >= F - 1e-14 * (abs(F) + eps * s["total"]) and err_try < err):
                            accepted = (f_try, g_try, trial, F_try, err_try)
                            break
                    alpha *= 0.5
            steps += 1
            if accepted is None or alpha < 1e-6:
                failures += 1
            if accepted is not None:
                if accepted[4] > 0.25 * err:
                    k_max = min(n * m, 2 * k_max)
                f, g, s, F, err = accepted
                dual_history.append(F)
            tracker.newton_done(err, alpha if accepted is not None else 0.0, cg_its, nnz)
            newton_errors.append(err)
            stagnating = len(newton_errors) > 5 and newton_errors[-1] > 0.1 * newton_errors[-6]
            if stagnating:
                newton_errors.clear()
            if failures >= 2 or (accepted is None and slope <= 0) or stagnating:
                failures = 0
                nu *= 0.1
                k_max = min(n * m, 2 * k_max)
                sweeps(opts["fallback_sweeps"], tol)
                s = pr.summary(f, g, histogram=True)
                err = pr.error(s)
                F = pr.dual(f, g, s)
                dual_history.append(F)
        if err > tol and not tracker.stopped:
            sweeps(max_iter, tol)

    shift = 0.5 * (float(f.mean()) - float(g.mean()))
    f, g = f - shift, g + shift
    s = pr.summary(f, g)
    error = pr.error(s)
    total = s["total"]
    P = s["P"]
    cost = float((P * pr.C).sum())
    positive = P > 0
    plogp = float(cp.where(positive, P * s["logP"], 0.0).sum())
    plan_sub = P.astype(C.dtype)
    if full:
        plan, f_full, g_full = plan_sub, f, g
    else:
        plan = cp.zeros(C.shape, dtype=C.dtype)
        plan[cp.ix_(ia, ib)] = plan_sub
        f_full = cp.full(C.shape[0], -cp.inf)
        g_full = cp.full(C.shape[1], -cp.inf)
        f_full[ia], g_full[ib] = f, g
    converged = bool(math.isfinite(error) and error <= tol)
    if not converged:
        warnings.warn(
            f"sinkhorn(method={method!r}) did not reach tol={tol:.1e}: marginal error {error:.3e} after "
            f"{tracker.total()} iterations (reg={reg:.3g}); raise max_iter or reg", RuntimeWarning, stacklevel=3)
    return OTResult(
        plan=plan, f=f_full, g=g_full, cost=cost, objective=cost + reg * (plogp - total), dual_objective=pr.dual(f, g, s),
        n_iter=tracker.total(), n_sinkhorn=tracker.n_sinkhorn, n_newton=tracker.n_newton, n_cg=tracker.n_cg,
        marginal_error=error, converged=converged, reg=reg, method=method, history=tracker.history,
        dual_history=dual_history)


_ = np  # NumPy is used for the host-side histogram arrays
