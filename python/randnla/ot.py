"""Entropic optimal transport: log-domain Sinkhorn and Sinkhorn-Newton-Sparse (SNS).

Conventions (POT's): ``a`` (length n) and ``b`` (length m) are histograms of equal total mass (an
empty list or None means uniform), ``C`` the (n, m) cost matrix, ``reg`` the regularisation in cost
units (POT's ``reg``; the SNS paper's eta is ``1 / reg``). The plan is

    P_ij = exp((f_i + g_j - C_ij) / reg)

with dual potentials ``f``, ``g`` in cost units (POT's ``log_u = f / reg``, ``log_v = g / reg``). The
regularised objective is ``<C, P> + reg * sum_ij P_ij (log P_ij - 1)`` (OTT-JAX / RegOT convention; POT's
``reg * sum P log P`` variant differs by ``reg * sum(a)`` on feasible plans), whose dual is

    F(f, g) = <a, f> + <b, g> - reg * sum_ij P_ij.

Methods: ``"sinkhorn_log"`` (fused C++ log-sum-exp sweeps), ``"sinkhorn"`` (scaling form with
absorption of large scalings, one pass over the stored kernel per sweep) and ``"sns"`` (a Sinkhorn warm-up, then Newton steps on F with a
sparsified Hessian solved by preconditioned conjugate gradients and an Armijo line search; Tang et al.,
ICLR 2024). CuPy input runs on the GPU.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from randnla import _validate
from randnla._backend import is_cupy, namespace_of

__all__ = ["OTResult", "sinkhorn", "sinkhorn2", "wasserstein", "METHODS"]

METHODS = ("sns", "sinkhorn_log", "sinkhorn")

# Problems with fewer entries than this run on one thread (identical results, less overhead).
_SERIAL_BELOW = 100_000

# Defaults of the SNS method (see the docstring of `sinkhorn`).
_SNS_DEFAULTS = {
    "warmup_iter": 20,
    "sinkhorn_budget": 200,
    "switch_tol": 1e-2,
    "newton_max_iter": 500,
    "sparsity_mass": 1e-2,
    "max_density": 0.2,
    "cg_max_iter": 1000,
    "armijo": 1e-4,
    "line_search_trials": 40,
    "fallback_sweeps": 50,
    "absorb_threshold": 1e50,
    "newton_solver": "cg",
    "overrelaxation": None,
    "truncate": True,
}

NEWTON_SOLVERS = ("cg", "ldl")

# SNS warm-up from scratch: if the L1 error after this many sweeps is still above 0.9^(3/7) times the
# first (less than 10 % per seven sweeps), the sweeps restart from a solution at 10 times the
# regularisation (at most this many levels).
_PLATEAU_SWEEPS = 4
_PLATEAU_LEVELS = 3


@dataclass
class OTResult:
    """The result of :func:`sinkhorn`.

    Attributes
    ----------
    plan : ndarray, shape (n, m)
        The dense transport plan ``exp((f_i + g_j - C_ij) / reg)`` (dtype of ``C``).
    f, g : ndarray
        Dual potentials in cost units, float64 (``-inf`` on zero-weight entries of ``a``/``b``). Their
        gauge (``f + t, g - t`` gives the same plan) is fixed by ``mean(f) == mean(g)``.
    cost : float
        Transport cost ``<C, P>``.
    objective : float
        Regularised objective ``<C, P> + reg * sum P (log P - 1)`` of the returned plan.
    dual_objective : float
        ``<a, f> + <b, g> - reg * sum P``; equals ``objective`` at the optimum.
    n_iter : int
        Total iterations: ``n_sinkhorn + n_newton``.
    n_sinkhorn, n_newton : int
        Sinkhorn sweeps (row and column updates) and Newton steps taken.
    n_cg : int
        Conjugate-gradient iterations over all Newton steps.
    marginal_error : float
        ``||P 1 - a||_1 + ||P^T 1 - b||_1`` on the full vectors of the dense float64 plan.
    converged : bool
        Whether ``marginal_error <= tol``.
    history : list of (int, float, float)
        (iteration, L1 marginal error, elapsed seconds) as the solver went.
    dual_history : list of float
        F after the warm-up and after each accepted Newton step (non-decreasing).
    """

    plan: object
    f: object
    g: object
    cost: float
    objective: float
    dual_objective: float
    n_iter: int
    n_sinkhorn: int
    n_newton: int
    n_cg: int
    marginal_error: float
    converged: bool
    reg: float
    method: str
    history: list = field(default_factory=list)
    dual_history: list = field(default_factory=list)

    def sparse_plan(self, threshold: float = 0.0):
        """The plan as a CSR matrix keeping entries ``> threshold`` (scipy, or cupyx for CuPy plans)."""
        threshold = _validate.check_positive(threshold, "threshold", strict=False)
        if is_cupy(self.plan):
            import cupyx.scipy.sparse as cpsparse

            kept = self.plan * (self.plan > threshold)
            return cpsparse.csr_matrix(kept)
        import scipy.sparse

        kept = np.where(self.plan > threshold, self.plan, 0)
        return scipy.sparse.csr_matrix(kept)


# --------------------------------------------------------------------------------------------------
# validation


def _marginal(w, name, size, xp, dtype):
    if w is None or (isinstance(w, (list, tuple)) and len(w) == 0):
        return None
    arr = _validate.as_float_array(w, name, xp=xp, ndim=1)
    if arr.shape[0] != size:
        raise ValueError(f"{name} must have length {size} to match C, got {arr.shape[0]}")
    _validate.check_finite(arr, name)
    if bool((arr < 0).any()):
        raise ValueError(f"{name} must be non-negative")
    if not float(arr.sum()) > 0:
        raise ValueError(f"{name} must have positive total mass")
    return arr.astype(xp.float64)


def _prepare(a, b, C, reg, defer_cost_check=False):
    xp = namespace_of(a if not isinstance(a, (list, tuple)) else None, b if not isinstance(b, (list, tuple)) else None, C)
    C = _validate.as_float_array(C, "C", xp=xp, ndim=2)
    n, m = C.shape
    if n == 0 or m == 0:
        raise ValueError(f"C must be non-empty, got shape {tuple(C.shape)}")
    # A finite sum proves every entry finite (NaN and infinities propagate), with no boolean temporary
    # of C's size; an overflowing sum of finite entries takes the exact check. On the CPU the caller
    # may defer the check to the first kernel pass of the scaling sweeps (one read of C less).
    if not (defer_cost_check and xp is np) and not math.isfinite(float(C.sum())):
        _validate.check_finite(C, "C")
    reg = _validate.check_positive(reg, "reg")
    a_arr = _marginal(a, "a", n, xp, C.dtype)
    b_arr = _marginal(b, "b", m, xp, C.dtype)
    if a_arr is None and b_arr is None:
        a_arr = xp.full(n, 1.0 / n)
        b_arr = xp.full(m, 1.0 / m)
    elif a_arr is None:
        a_arr = xp.full(n, float(b_arr.sum()) / n)
    elif b_arr is None:
        b_arr = xp.full(m, float(a_arr.sum()) / m)
    sa, sb = float(a_arr.sum()), float(b_arr.sum())
    low_precision = any(getattr(w, "dtype", np.float64) == np.float32 for w in (a, b) if not isinstance(w, (list, tuple)) and w is not None)
    rtol = 1e-6 if low_precision else 1e-10
    if abs(sa - sb) > rtol * max(sa, sb):
        raise ValueError(f"a and b must have the same total mass, got sum(a) = {sa!r} and sum(b) = {sb!r}")
    # Equal masses exactly (the Newton system is inconsistent otherwise).
    b_arr = b_arr * (sa / sb)
    return xp, a_arr, b_arr, C, reg


def _check_options(options):
    unknown = set(options) - set(_SNS_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown option(s) {sorted(unknown)}; expected some of {sorted(_SNS_DEFAULTS)}")
    opts = dict(_SNS_DEFAULTS)
    opts.update(options)
    opts["newton_solver"] = _validate.check_choice(opts["newton_solver"], "newton_solver", NEWTON_SOLVERS)
    relax = opts["overrelaxation"]
    if relax is not None and not (isinstance(relax, str) and relax == "auto"):
        if isinstance(relax, str) or not 1.0 <= float(relax) < 2.0:
            raise ValueError(f"overrelaxation must be None, 'auto' or a number in [1, 2), got {relax!r}")
    for key in ("warmup_iter", "sinkhorn_budget", "newton_max_iter", "cg_max_iter", "line_search_trials", "fallback_sweeps"):
        opts[key] = _validate.check_int(opts[key], key, minimum=0)
    for key in ("switch_tol", "sparsity_mass", "armijo", "absorb_threshold"):
        opts[key] = _validate.check_positive(opts[key], key, strict=False)
    if not 1.0 < opts["absorb_threshold"] <= 1e50:
        raise ValueError(f"absorb_threshold must be in (1, 1e50], got {opts['absorb_threshold']!r}")
    opts["max_density"] = _validate.check_positive(opts["max_density"], "max_density")
    if not isinstance(opts["truncate"], (bool, np.bool_)):
        raise TypeError(f"truncate must be a bool, got {type(opts['truncate']).__name__}")
    opts["truncate"] = bool(opts["truncate"])
    return opts


def _warm_start(warm_start, n, m, xp):
    if warm_start is None:
        return None
    if isinstance(warm_start, OTResult):
        f, g = warm_start.f, warm_start.g
    else:
        try:
            f, g = warm_start
        except (TypeError, ValueError):
            raise TypeError("warm_start must be an OTResult or a pair (f, g) of potentials in cost units") from None
    f = _validate.as_float_array(f, "warm_start[0]", xp=xp, ndim=1).astype(xp.float64)
    g = _validate.as_float_array(g, "warm_start[1]", xp=xp, ndim=1).astype(xp.float64)
    if f.shape[0] != n or g.shape[0] != m:
        raise ValueError(f"warm_start potentials must have lengths ({n}, {m}), got ({f.shape[0]}, {g.shape[0]})")
    return f, g


# --------------------------------------------------------------------------------------------------
# CPU driver


class _CpuProblem:
    """The C++ passes on one (sub)problem with strictly positive weights."""

    def __init__(self, C, a, b, eps, n_threads):
        from randnla import _core

        self.core = _core
        self.C = np.ascontiguousarray(C)
        self.suffix = "float32" if self.C.dtype == np.float32 else "float64"
        self.a = np.ascontiguousarray(a, dtype=np.float64)
        self.b = np.ascontiguousarray(b, dtype=np.float64)
        self.log_a = np.log(self.a)
        self.log_b = np.log(self.b)
        self.eps = eps
        self.n_threads = n_threads
        self.n, self.m = self.C.shape
        # The output plan: scaling sweeps that stop at the tolerance write their plan into it (a
        # product per entry with the stored kernel instead of an exp) and leave (f, g, summary) in
        # self.last_plan, which the final plan pass reuses when the potentials are unchanged.
        self.plan_out = None
        self.last_plan = None
        # The finiteness check of C left to the first scaling sweeps (their first pass over C).
        self.check_cost = False

    def sweeps(self, method, f, g, max_sweeps, tol, tau=1e50, handover=None, relax=1.0, eps=None, truncate=True,
               start_rows=False):
        fn = getattr(self.core, "ot_sweeps_" + self.suffix)
        own_eps = eps is None or eps == self.eps
        eps = self.eps if eps is None else eps
        # The plan buffer also holds the scaling form's kernel (float64), at any eps; the plan is
        # written into it only at the problem's own eps.
        report = fn("log" if method != "sinkhorn" else "scaling", self.C, self.a, self.b, self.log_a, self.log_b, eps,
                    f, g, int(max_sweeps), float(tol), float(tau), self.n_threads, handover, float(relax),
                    self.plan_out, own_eps, bool(truncate), self.check_cost and method == "sinkhorn", bool(start_rows))
        if method == "sinkhorn":
            self.check_cost = False
        if report.get("nonfinite_cost"):
            raise ValueError("C contains NaN or infinity")
        summary = report.get("plan_summary")
        self.last_plan = None if summary is None else (f.copy(), g.copy(), summary)
        return report

    def reuse_plan(self, f, g):
        """The summary of the plan the last sweeps wrote into plan_out, if it belongs to (f, g)."""
        if self.last_plan is None:
            return None
        f0, g0, summary = self.last_plan
        return summary if np.array_equal(f0, f) and np.array_equal(g0, g) else None

    def plan_pass(self, f, g, histogram=False, plan_out=None):
        fn = getattr(self.core, "ot_plan_pass_" + self.suffix)
        return fn(self.C, f, g, self.eps, histogram, plan_out, self.n_threads)

    def dual(self, f, g, summary):
        return float(self.a @ f + self.b @ g - self.eps * summary["total"])

    def error(self, summary):
        return float(np.abs(summary["r"] - self.a).sum() + np.abs(summary["c"] - self.b).sum())

    def newton_direction(self, f, g, summary, drop_mass, k_min, k_max, rtol, max_cg, solver="cg"):
        r, c = summary["r"], summary["c"]
        rhs_f = self.eps * (self.a - r)
        rhs_g = self.eps * (self.b - c)
        fixed = int(np.argmax(c))
        if solver == "ldl":
            fn = getattr(self.core, "ot_newton_pattern_" + self.suffix)
            indptr, indices, data, cut = fn(self.C, f, g, self.eps, summary["hist_count"], summary["hist_mass"],
                                            float(drop_mass), int(k_min), int(k_max), summary["col_argmax"],
                                            self.n_threads)
            df, dg = _direct_newton_solve(indptr, indices, data, r, c, rhs_f, rhs_g, fixed)
            return {"df": df, "dg": dg, "cg_iterations": 0, "relative_residual": 0.0, "nnz": int(indptr[-1]),
                    "cut": cut}
        fn = getattr(self.core, "ot_newton_direction_" + self.suffix)
        return fn(self.C, f, g, self.eps, summary["hist_count"], summary["hist_mass"], float(drop_mass), int(k_min),
                  int(k_max), summary["col_argmax"], r, c, rhs_f, rhs_g, fixed, float(rtol), int(max_cg), self.n_threads)


def _direct_newton_solve(indptr, indices, data, r, c, rhs_f, rhs_g, fixed):
    """Solves the sparsified Newton system exactly by a sparse direct factorisation.

    ``H~ = [[diag(r), P~], [P~^T, diag(c)]]`` (``P~`` the kept plan entries in CSR, ``r``, ``c`` the
    true row and column sums) with the gauge removed by fixing ``dg[fixed] = 0``: the remaining
    (n + m - 1) system is symmetric positive definite whenever the kept graph is connected or drops
    mass. SciPy has no sparse Cholesky/LDL^T, so it is factored by SuperLU (``splu``) with a symmetric
    fill-reducing ordering (minimum degree on ``A^T + A``) and diagonal pivots, i.e. an LU that
    follows the LDL^T elimination order of the SPD matrix.
    """
    import scipy.sparse as sp
    from scipy.sparse.linalg import splu

    n, m = len(r), len(c)
    P = sp.csr_matrix((data, indices, indptr), shape=(n, m))
    H = sp.bmat([[sp.diags(r), P], [P.T, sp.diags(c)]], format="csc")
    keep = np.ones(n + m, dtype=bool)
    keep[n + fixed] = False
    idx = np.flatnonzero(keep)
    H = H[idx][:, idx].tocsc()
    rhs = np.concatenate([rhs_f, rhs_g])[idx]
    lu = splu(H, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
    x = np.zeros(n + m)
    x[idx] = lu.solve(rhs)
    return x[:n], x[n:]


class _Tracker:
    """Iteration counts, history, callback and verbose printing."""

    def __init__(self, callback, verbose):
        self.start = time.perf_counter()
        self.callback = callback
        self.verbose = verbose
        self.history = []
        self.n_sinkhorn = 0
        self.n_newton = 0
        self.n_cg = 0
        self.stopped = False

    def total(self):
        return self.n_sinkhorn + self.n_newton

    def sweeps_done(self, report):
        base = self.start
        offset = time.perf_counter() - base - (float(report["seconds"][-1]) if len(report["seconds"]) else 0.0)
        for at, err, sec in zip(report["at"], report["errors"], report["seconds"]):
            self.history.append((self.n_sinkhorn + int(at), float(err), offset + float(sec)))
        self.n_sinkhorn += int(report["sweeps"])
        if len(report["errors"]):
            self._notify("sinkhorn", float(report["errors"][-1]))

    def newton_done(self, err, step, cg_iterations, nnz):
        self.n_newton += 1
        self.n_cg += int(cg_iterations)
        self.history.append((self.total(), float(err), time.perf_counter() - self.start))
        self._notify("newton", err, step=step, cg_iterations=int(cg_iterations), nnz=int(nnz))

    def _notify(self, stage, err, **extra):
        info = {"stage": stage, "iteration": self.total(), "n_sinkhorn": self.n_sinkhorn, "n_newton": self.n_newton,
                "marginal_error": err, "elapsed": time.perf_counter() - self.start, **extra}
        if self.verbose:
            details = "".join(f" {k}={v:.3g}" if isinstance(v, float) else f" {k}={v}" for k, v in extra.items())
            print(f"[{stage}] it={info['iteration']:6d} err={err:.3e} t={info['elapsed']:.3f}s{details}")
        if self.callback is not None and self.callback(info):
            self.stopped = True


def _solve_cpu(problem, method, tol, max_iter, warm, opts, tracker):
    n, m, eps = problem.n, problem.m, problem.eps
    if warm is not None:
        f, g = (np.array(w, dtype=np.float64) for w in warm)
        summary = problem.plan_pass(f, g)
        if problem.error(summary) <= tol:
            return f, g, []
    else:
        f = np.zeros(n)
        g = np.zeros(m)
    dual_history = []
    chunk = 50 if (tracker.callback is not None or tracker.verbose) else max_iter

    # SNS warms up (and falls back) with scaling-form sweeps: one pass over the stored kernel K per
    # sweep instead of an exp per entry, with absorption and log-domain half-steps keeping it stable.
    sweep_method = "sinkhorn" if method == "sns" else method
    # Over-relaxation of the scaling sweeps: adaptive (0) in SNS unless fixed by the caller.
    relax = opts["overrelaxation"]
    relax = (0.0 if method == "sns" else 1.0) if relax is None else (0.0 if relax == "auto" else float(relax))

    def run_sweeps(count, stop_tol, handover=None, eps_k=None, start_rows=False):
        remaining = count
        report = None
        while remaining > 0 and not tracker.stopped:
            step = min(chunk, remaining, max_iter - tracker.total())
            if step <= 0:
                break
            hand = None if handover is None else handover[:3] + (tracker.n_sinkhorn,) + handover[3:]
            report = problem.sweeps(sweep_method, f, g, step, stop_tol, opts["absorb_threshold"], hand, relax, eps_k,
                                    opts["truncate"], start_rows)
            start_rows = False
            tracker.sweeps_done(report)
            remaining -= max(int(report["sweeps"]), 1)
            if (report["reached_tol"] or report["handed_over"] or report["plateau"]
                    or not np.all(np.isfinite(report["errors"]))):
                break
            if handover is not None:
                handover = handover[:5]  # the plateau probe counts from the first sweep only
        return report

    def scaled_warm_up(eps_k, handover, stop_tol, level):
        # Sweeps at eps_k with a plateau probe: if the error has not moved after _PLATEAU_SWEEPS
        # sweeps (mass must travel across the support, e.g. 1-D W1 costs), first solve at 10 eps_k
        # to a loose tolerance (recursively), then resume at eps_k from those potentials.
        probe = handover + (_PLATEAU_SWEEPS,) if level < _PLATEAU_LEVELS else handover
        report = run_sweeps(max_iter - tracker.total(), stop_tol, probe, eps_k)
        if report is not None and report["plateau"]:
            coarse_tol = max(stop_tol, 1e-4 * float(problem.a.sum()))
            coarse = (10, 20, 10**9, coarse_tol, coarse_tol)
            scaled_warm_up(10.0 * eps_k, coarse, coarse_tol, level + 1)
            # Potentials from 10 eps_k: their kernel at eps_k underflows on whole rows, so the sweeps
            # start from the row-normalised kernel.
            report = run_sweeps(max_iter - tracker.total(), stop_tol, handover, eps_k, start_rows=True)
        return report

    if method in ("sinkhorn_log", "sinkhorn"):
        # The caller checks the error on the true plan and resumes if needed.
        run_sweeps(max_iter - tracker.total(), tol)
        return f, g, dual_history

    # ---- SNS: warm-up. Scaling sweeps (one pass over K each) until the handover rule of the C++
    # core: at least 10 sweeps; then, once the L1 error is below switch_tol * sum(a) or warmup_iter
    # sweeps are done, Sinkhorn continues while the linear rate of its last five sweeps predicts
    # convergence within warmup_iter + sinkhorn_budget sweeps in all (cheaper than Newton steps).
    if opts["warmup_iter"] > 0:
        switch = max(tol, opts["switch_tol"] * float(problem.a.sum()))
        handover = (min(10, opts["warmup_iter"]), opts["warmup_iter"], opts["warmup_iter"] + opts["sinkhorn_budget"],
                    switch, tol)
        if warm is None:
            report = scaled_warm_up(eps, handover, tol, 0)
        else:
            report = run_sweeps(max_iter - tracker.total(), tol, handover)
        if report is not None and report["reached_tol"]:
            return f, g, dual_history
    summary = problem.plan_pass(f, g, histogram=True)
    err = problem.error(summary)
    F = problem.dual(f, g, summary)
    dual_history.append(F)
    nu = opts["sparsity_mass"]
    k_min = min(2 * max(n, m), n * m)
    k_max = max(k_min, int(opts["max_density"] * n * m))
    failures = 0
    newton_steps = 0
    newton_errors = []
    while err > tol and not tracker.stopped and tracker.total() < max_iter and newton_steps < opts["newton_max_iter"]:
        drop = max(1e-12, nu * err) * summary["total"]
        err_l2 = math.sqrt(float(((problem.a - summary["r"]) ** 2).sum() + ((problem.b - summary["c"]) ** 2).sum()))
        rtol = min(0.1, math.sqrt(err_l2))
        sol = problem.newton_direction(f, g, summary, drop, k_min, k_max, rtol, opts["cg_max_iter"],
                                       opts["newton_solver"])
        df, dg = sol["df"], sol["dg"]
        shift = (df.sum() - dg.sum()) / (n + m)
        df = df - shift
        dg = dg + shift
        slope = float((problem.a - summary["r"]) @ df + (problem.b - summary["c"]) @ dg)
        accepted = None
        alpha = 1.0
        if slope > 0 and np.all(np.isfinite(df)) and np.all(np.isfinite(dg)):
            for _ in range(max(opts["line_search_trials"], 1)):
                f_try = f + alpha * df
                g_try = g + alpha * dg
                trial = problem.plan_pass(f_try, g_try, histogram=True)
                if trial["max_logp"] < 700 and np.isfinite(trial["total"]):
                    F_try = problem.dual(f_try, g_try, trial)
                    err_try = problem.error(trial)
                    armijo = F_try >= F + opts["armijo"] * alpha * slope
                    # Near convergence the increase of F is below rounding: accept a step that keeps F
                    # within rounding and reduces the marginal error.
                    rounding = F_try >= F - 1e-14 * (abs(F) + eps * summary["total"]) and err_try < err
                    if armijo or rounding:
                        accepted = (f_try, g_try, trial, F_try, err_try)
                        break
                alpha *= 0.5
        newton_steps += 1
        if accepted is None or alpha < 1e-6:
            failures += 1
        if accepted is not None:
            if accepted[4] > 0.25 * err:
                # A linear rate: the pattern drops too much mass, so allow a denser one.
                k_max = min(n * m, 2 * k_max)
            f, g, summary, F_new, err = accepted
            F = F_new
            dual_history.append(F_new)
            tracker.newton_done(err, alpha, sol["cg_iterations"], sol["nnz"])
        else:
            tracker.newton_done(err, 0.0, sol["cg_iterations"], sol["nnz"])
        newton_errors.append(err)
        stagnating = len(newton_errors) > 5 and newton_errors[-1] > 0.1 * newton_errors[-6]
        if stagnating:
            newton_errors.clear()
        if failures >= 2 or accepted is None and failures >= 1 and slope <= 0 or stagnating:
            # Fall back: Sinkhorn sweeps (always ascent), then a denser pattern.
            failures = 0
            nu *= 0.1
            k_max = min(n * m, 2 * k_max)
            f = np.ascontiguousarray(f)
            g = np.ascontiguousarray(g)
            run_sweeps(opts["fallback_sweeps"], tol)
            summary = problem.plan_pass(f, g, histogram=True)
            err = problem.error(summary)
            F = problem.dual(f, g, summary)
            dual_history.append(F)
    if err > tol and not tracker.stopped and tracker.total() < max_iter:
        # Newton budget spent: finish with Sinkhorn sweeps.
        f = np.ascontiguousarray(f)
        g = np.ascontiguousarray(g)
        run_sweeps(max_iter - tracker.total(), tol)
    return f, g, dual_history


def sinkhorn(a, b, C, reg, *, method="sns", tol=1e-9, max_iter=None, warm_start=None, n_threads=None, callback=None,
             verbose=False, **options):
    """Entropic optimal transport between histograms ``a`` and ``b`` with cost ``C``.

    Solves ``min_P <C, P> + reg * sum_ij P_ij (log P_ij - 1)`` over ``P >= 0`` with ``P 1 = a`` and
    ``P^T 1 = b``, through its dual potentials (``P_ij = exp((f_i + g_j - C_ij) / reg)``), in the log
    domain throughout, so ``reg`` may be small (1e-4 on a cost of maximum 1).

    Parameters
    ----------
    a, b : array_like, shape (n,) and (m,), or None / []
        Non-negative weights of equal total mass (relative difference at most 1e-10, 1e-6 for float32
        input; ``b`` is rescaled to the mass of ``a`` exactly). None or an empty list means uniform.
        Zero weights are allowed: their rows/columns of the plan are zero and their potentials ``-inf``.
    C : array_like, shape (n, m)
        Finite cost matrix, float32 or float64 (n != m allowed).
    reg : float
        Regularisation (> 0) in the units of ``C`` (POT's ``reg``; the SNS paper's ``eta = 1 / reg``).
        Costs are often normalised to ``C / C.max()`` first; ``reg`` is not rescaled here.
    method : {"sns", "sinkhorn_log", "sinkhorn"}
        ``"sns"``: Sinkhorn-Newton-Sparse. A warm-up of Sinkhorn sweeps (scaling form with
        absorption, as ``"sinkhorn"``): at least 10; then, once the L1 marginal error is below
        ``switch_tol * sum(a)`` (default 1e-2) or ``warmup_iter`` sweeps (default 20) are done, the
        sweeps continue while the linear rate of the last five predicts convergence within
        ``warmup_iter + sinkhorn_budget`` sweeps in all (default budget 200: such problems, e.g. large
        ``reg`` or 1-D costs, are solved faster by Sinkhorn alone), else Newton steps on the dual
        follow. From a cold start, if the error after 4 sweeps is still above ``0.9 ** (3 / 7)``
        (0.956) times that after the first (mass has to travel across the support, as for 1-D W1 costs), the warm-up first
        solves at ``10 * reg`` to an L1 error of ``1e-4 * sum(a)`` (the same rule applies there, up
        to ``1000 * reg``) and resumes from those potentials (the history then records the errors
        of the plans at the larger regularisation too). Each Newton step
        keeps the largest plan entries (fewest entries whose
        dropped mass is at most ``sparsity_mass * marginal_error * sum(P)``, default ``sparsity_mass``
        1e-2, at least ``2 max(n, m)`` and at most ``max_density * n * m`` entries, default 0.2, doubled
        whenever a step reduces the error by less than 4x, plus each
        row's and column's largest entry), puts the true row and column sums of the dense plan on the
        diagonal, removes the gauge direction ``(1, -1)`` by fixing one potential, solves the Schur
        complement system by Jacobi-preconditioned conjugate gradients (relative tolerance
        ``min(0.1, sqrt(||grad||_2))``, at most ``cg_max_iter`` = 1000 iterations) and takes an
        Armijo backtracking line search on the dual objective (``armijo`` = 1e-4, halving, at most
        ``line_search_trials`` = 40 trials). ``newton_solver="ldl"`` instead solves the gauge-fixed
        (n + m - 1) system exactly by a sparse direct factorisation (SciPy's SuperLU ``splu`` with a
        symmetric minimum-degree ordering and diagonal pivots, the elimination of an LDL^T; SciPy has
        no sparse Cholesky); it suits near-permutation plans, but fills in on diffuse ones (CPU
        only: CuPy input always uses conjugate gradients). Two failed steps, or five steps that reduce the error by
        less than 10x, trigger ``fallback_sweeps`` = 50 Sinkhorn sweeps and a denser pattern; after
        ``newton_max_iter`` = 500 steps it finishes with sweeps.
        The SNS sweeps are over-relaxed (``overrelaxation="auto"``, the SNS default): plain
        sweeps until the error is below ``0.5 * sum(a)`` and its linear rate ``kappa`` is steady,
        then ``u <- u^(1 - w) (a / K v)^w`` (likewise ``v``) with ``w = 2 / (1 + sqrt(1 - kappa))``
        (at most 1.9), the optimal successive over-relaxation factor of the two-block iteration;
        every ten sweeps the observed rate ``lambda`` refines ``kappa`` through the SOR relation
        ``(lambda + w - 1)^2 = lambda w^2 kappa`` (``w`` only grows). No handover to Newton while the
        error is still above its value at the switch (the transient of a new ``w``); back to
        ``w = 1`` if the error grows 100-fold or stops decreasing. ``overrelaxation`` may also be a fixed
        ``w`` in [1, 2), and applies to ``"sinkhorn"`` too (default 1: plain sweeps).
        ``"sinkhorn_log"``: log-domain Sinkhorn, one fused streaming log-sum-exp pass over C per
        half-iteration. ``"sinkhorn"``: scaling form ``diag(u) K diag(v)`` with absorption of scalings
        outside ``[1 / absorb_threshold, absorb_threshold]`` (default and maximum 1e50: entries of
        ``K`` below ``absorb_threshold * 1e-300`` are dropped, which keeps the products normal numbers
        and the plan mass lost per entry below 1e-150) into the potentials. ``K = exp((f_i + g_j -
        C_ij) / reg)`` is stored once (float64, n * m entries, like POT's kernel; for float64 ``C`` it
        shares the memory of the returned plan); a sweep is then one pass over ``K`` (no
        exponential), with log-domain half-steps after an absorption (a fresh ``K`` that underflows on
        whole rows is first recomputed with its rows normalised by an exact log-domain row update).
        Truncation (``truncate=True``, the default, for ``"sns"`` and ``"sinkhorn"``), in two forms.
        Bounds, from the first sweep on: each time ``K`` is computed, the largest entry of each tile
        of 4 rows by 16 columns is recorded; a sweep reads, for each group of 4 rows, the tile of
        largest bound (largest entry times the sum of ``v`` over the tile) and then the smallest
        range of tiles holding every tile whose bound is not below ``rel`` times the partial row sums
        over the number of tiles, so the tiles left out add less than ``rel`` times each row sum;
        each left-out tile adds at most its largest entry times the group's sum of ``u`` to its
        columns, and columns where that exceeds ``rel`` times their sum are summed again over all
        rows. ``rel = tol / (100 sum(a))``, or ``1e-5`` times the last error (relative, at most 1e-5)
        while that is above ``1e3 tol``, in which case an error at the tolerance is confirmed by one
        more sweep. Kernels on which the tiles would not thin the sweep (diffuse plans, costs with no
        order in the indices) skip the bounds until ``K`` is recomputed. Spans, once the scalings
        settle: each row reads ``K`` only on its span, the smallest column range holding
        every entry within ``exp(-keep)`` of its row's or its column's sum, ``keep = log(max(n, m)) +
        log(100 sum(a) / tol) + 8`` (no spans when that exceeds 60); the spans are recomputed
        (one pass over ``K``, no exponential) before the scalings drift by a factor ``e^8`` from those
        they were measured at, so the entries left out move the marginals by at most ``tol / 100`` in
        L1; where they cover more than 60 % of ``K`` or last under three sweeps they are dropped and
        retried later. On 1-D and other banded plans at small ``reg`` this makes a sweep several
        times cheaper. The returned plan and its error are always those of the dense
        ``exp((f + g - C) / reg)``.
    tol : float
        Stop when the L1 marginal error ``||P 1 - a||_1 + ||P^T 1 - b||_1`` of the plan is at most tol.
    max_iter : int, optional
        Maximum iterations (Sinkhorn sweeps plus Newton steps). Default 100000 for the Sinkhorn
        methods, 10000 for SNS.
    warm_start : OTResult or (f, g), optional
        Starting potentials in cost units (POT's ``warmstart=(log_u, log_v)`` is ``(reg * log_u,
        reg * log_v)``).
    n_threads : int, optional
        Threads for the C++ passes (None: all cores). Results are identical for any thread count.
    callback : callable, optional
        ``callback(info) -> bool`` with a dict ``info`` (stage, iteration, marginal_error, elapsed, ...),
        called after each Newton step and each block of Sinkhorn sweeps; returning True stops.
    verbose : bool
        Print the progress.
    **options
        The SNS and absorption knobs named above.

    Returns
    -------
    OTResult
        Plan (dtype of ``C``; float32 plans are rounded from the float64 computation), potentials
        (always float64: float32 cannot reach small marginal errors), cost, objectives, iteration
        counts, the L1 marginal error of the float64 plan, ``converged`` and the history. A
        ``RuntimeWarning`` is issued when ``tol`` was not reached.

    Examples
    --------
    >>> import numpy as np
    >>> from randnla.ot import sinkhorn
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.random((200, 2)), rng.random((150, 2))
    >>> C = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    >>> C /= C.max()
    >>> res = sinkhorn(None, None, C, 1e-3)
    >>> bool(res.converged), res.marginal_error <= 1e-9
    (True, True)
    >>> np.allclose(res.plan.sum(1), 1 / 200)
    True
    """
    method = _validate.check_choice(method, "method", METHODS)
    opts = _check_options(options)
    tol = _validate.check_positive(tol, "tol")
    # Where the scaling sweeps read C first (cold start, sweeps before anything else), they also
    # check that it is finite.
    sweeps_first = (warm_start is None and (method == "sinkhorn" or (method == "sns" and opts["warmup_iter"] > 0))
                    and (max_iter is None or (isinstance(max_iter, (int, np.integer)) and max_iter > 0)))
    xp, a, b, C, reg = _prepare(a, b, C, reg, defer_cost_check=sweeps_first)
    n, m = C.shape
    if max_iter is None:
        max_iter = 10_000 if method == "sns" else 100_000
    max_iter = _validate.check_int(max_iter, "max_iter", minimum=0)
    threads = _validate.check_n_threads(n_threads)
    if callback is not None and not callable(callback):
        raise TypeError("callback must be callable")
    warm = _warm_start(warm_start, n, m, xp)
    if xp is not np:
        from randnla import _ot_gpu

        return _ot_gpu.solve(a, b, C, reg, method=method, tol=tol, max_iter=max_iter, warm=warm, opts=opts,
                             callback=callback, verbose=verbose)

    tracker = _Tracker(callback, verbose)
    keep_a = a > 0
    keep_b = b > 0
    full = bool(keep_a.all() and keep_b.all())
    C_sub = C if full else C[np.ix_(keep_a, keep_b)]
    if C_sub.size < _SERIAL_BELOW:
        threads = 1  # thread start-up would dominate; results do not depend on the thread count
    problem = _CpuProblem(C_sub, a[keep_a], b[keep_b], reg, threads)
    if sweeps_first:
        if full:
            problem.check_cost = True
        elif not math.isfinite(float(C.sum())):
            _validate.check_finite(C, "C")  # the sweeps see only the positive-weight part
    if warm is not None and not full:
        warm = (warm[0][keep_a], warm[1][keep_b])
        if not (np.all(np.isfinite(warm[0])) and np.all(np.isfinite(warm[1]))):
            raise ValueError("warm_start potentials must be finite on the positive weights")
    elif warm is not None and not (np.all(np.isfinite(warm[0])) and np.all(np.isfinite(warm[1]))):
        raise ValueError("warm_start potentials must be finite")
    plan_sub = np.empty(C_sub.shape, dtype=C.dtype)
    problem.plan_out = plan_sub
    f, g, dual_history = _solve_cpu(problem, method, tol, max_iter, warm, opts, tracker)
    if problem.check_cost:  # no sweeps ran after all
        _validate.check_finite(C, "C")
    for _ in range(3):
        # The plan and the error on the true dense plan, in one pass (or from the last sweeps, which
        # wrote the plan of these potentials), then the gauge: mean(f) == mean(g) (the plan and its
        # summary do not depend on it).
        summary = problem.reuse_plan(f, g)
        if summary is None:
            summary = problem.plan_pass(f, g, plan_out=plan_sub)
        shift = 0.5 * (float(f.mean()) - float(g.mean()))
        f = f - shift
        g = g + shift
        error = problem.error(summary)
        if error <= tol or tracker.stopped or tracker.total() >= max_iter or not np.isfinite(error):
            break
        # The sweeps measured the rows of a plan whose columns are exact up to rounding: resume.
        f, g, more = _solve_cpu(problem, method, tol, max_iter, (f, g), opts, tracker)
        dual_history += more
    total = float(summary["total"])
    if full:
        plan, f_full, g_full = plan_sub, f, g
    else:
        plan = np.zeros(C.shape, dtype=C.dtype)
        plan[np.ix_(keep_a, keep_b)] = plan_sub
        f_full = np.full(n, -np.inf)
        g_full = np.full(m, -np.inf)
        f_full[keep_a] = f
        g_full[keep_b] = g
    finite = np.isfinite(error) and np.all(np.isfinite(f)) and np.all(np.isfinite(g))
    converged = bool(finite and error <= tol)
    if not converged:
        warnings.warn(
            f"sinkhorn(method={method!r}) did not reach tol={tol:.1e}: marginal error {error:.3e} after "
            f"{tracker.total()} iterations (reg={reg:.3g}); raise max_iter or reg", RuntimeWarning, stacklevel=2)
    cost = float(summary["cost"])
    return OTResult(
        plan=plan, f=f_full, g=g_full, cost=cost, objective=cost + reg * (float(summary["plogp"]) - total),
        dual_objective=problem.dual(f, g, summary), n_iter=tracker.total(), n_sinkhorn=tracker.n_sinkhorn,
        n_newton=tracker.n_newton, n_cg=tracker.n_cg, marginal_error=error, converged=converged, reg=reg,
        method=method, history=tracker.history, dual_history=dual_history)


def sinkhorn2(a, b, C, reg, *, method="sns", value="cost", **kwargs):
    """The value of entropic optimal transport (POT's ``ot.sinkhorn2``).

    Parameters
    ----------
    a, b, C, reg, method, **kwargs
        As in :func:`sinkhorn`.
    value : {"cost", "objective"}
        ``"cost"``: the transport cost ``<C, P>`` of the entropic plan (what ``ot.sinkhorn2`` returns);
        ``"objective"``: the regularised objective ``<C, P> + reg * sum P (log P - 1)``.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from randnla.ot import sinkhorn2
    >>> C = np.abs(np.subtract.outer(np.linspace(0, 1, 50), np.linspace(0, 1, 60)))
    >>> round(sinkhorn2(None, None, C, 1e-3), 5)  # exact OT (ot.emd2): 0.0061686
    0.00617
    """
    value = _validate.check_choice(value, "value", ("cost", "objective"))
    result = sinkhorn(a, b, C, reg, method=method, **kwargs)
    return result.cost if value == "cost" else result.objective


def wasserstein(x, y, a=None, b=None, *, p=2, reg=None, method="sns", return_result=False, **kwargs):
    """Entropic approximation of the p-Wasserstein distance between two point clouds.

    The cost is ``C_ij = ||x_i - y_j||_2 ** p``; the result is ``<C, P> ** (1 / p)`` for the entropic
    plan ``P`` of :func:`sinkhorn`.

    Parameters
    ----------
    x : array_like, shape (n, d) or (n,)
    y : array_like, shape (m, d) or (m,)
    a, b : array_like, optional
        Weights (uniform by default).
    p : float
        Exponent (>= 1).
    reg : float, optional
        Regularisation in cost units; default ``1e-3 * C.max()``.
    method : str
        As in :func:`sinkhorn`.
    return_result : bool
        Also return the :class:`OTResult`.
    **kwargs
        Passed to :func:`sinkhorn`.

    Returns
    -------
    float, or (float, OTResult)

    Examples
    --------
    >>> import numpy as np
    >>> from randnla.ot import wasserstein
    >>> x = np.linspace(0, 1, 100)
    >>> round(wasserstein(x, x + 0.5, p=1), 3)
    0.5
    """
    xp = namespace_of(x, y)
    x = _validate.as_float_array(x, "x", xp=xp)
    y = _validate.as_float_array(y, "y", xp=xp)
    if x.ndim == 1:
        x = x[:, None]
    if y.ndim == 1:
        y = y[:, None]
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must be point clouds of shape (n, d) and (m, d), got {tuple(x.shape)} and {tuple(y.shape)}")
    _validate.check_finite(x, "x")
    _validate.check_finite(y, "y")
    p = _validate.check_positive(p, "p")
    if p < 1:
        raise ValueError(f"p must be >= 1, got {p}")
    dtype = _validate.result_dtype(x.dtype, y.dtype)
    x64 = x.astype(xp.float64)
    y64 = y.astype(xp.float64)
    sq = (x64 * x64).sum(1)[:, None] + (y64 * y64).sum(1)[None, :] - 2.0 * (x64 @ y64.T)
    sq = xp.maximum(sq, 0.0)
    C = sq if p == 2 else xp.sqrt(sq) ** p
    C = C.astype(dtype)
    if reg is None:
        reg = 1e-3 * float(C.max()) if float(C.max()) > 0 else 1e-3
    result = sinkhorn(a, b, C, reg, method=method, **kwargs)
    distance = max(result.cost, 0.0) ** (1.0 / p)
    return (distance, result) if return_result else distance
