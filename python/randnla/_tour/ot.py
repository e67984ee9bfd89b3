"""Tour: entropic optimal transport, Sinkhorn against Sinkhorn-Newton-Sparse."""

from __future__ import annotations

import warnings

import numpy as np

from randnla._tour import fmt_seconds, print_table, timed

TITLE = "Optimal transport: Sinkhorn vs Sinkhorn-Newton-Sparse"


def _error_at(history, iteration):
    """The marginal error recorded at the last iteration <= ``iteration``."""
    best = None
    for it, err, _ in history:
        if it <= iteration:
            best = err
    return best


def run(quick: bool) -> bool:
    from randnla.ot import sinkhorn

    n = 300 if quick else 600
    reg = 1e-3
    rng = np.random.default_rng(0)
    x, y = rng.random((n, 2)), rng.random((n, 2))
    C = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    C /= C.max()
    print(f"  Two clouds of {n} uniform points in [0, 1]^2, squared Euclidean cost / max, reg = {reg:g}, "
          f"tol = 1e-9 (L1 marginal error)")
    with timed() as t_sns:
        sns = sinkhorn(None, None, C, reg, method="sns", tol=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with timed() as t_log:
            plain = sinkhorn(None, None, C, reg, method="sinkhorn_log", tol=1e-9, max_iter=20_000)
    checkpoints = [1, 5, 10, 20]
    checkpoints += [20 + k for k in (1, 2, 4, 6, 8, 10) if 20 + k <= sns.n_iter]
    checkpoints += [100, 300, 1000, plain.n_iter]
    rows = []
    for it in sorted(set(checkpoints)):
        e_sns = _error_at(sns.history, it) if it <= sns.n_iter else None
        e_log = _error_at(plain.history, it)
        rows.append([it, "" if e_log is None else f"{e_log:.1e}", "" if e_sns is None else f"{e_sns:.1e}",
                     "sweep" if it <= sns.n_sinkhorn else ("Newton" if it <= sns.n_iter else "done")])
    print_table(["iteration", "Sinkhorn (log)", "SNS", "SNS stage"], rows)
    agree = float(np.abs(sns.plan - plain.plan).max())
    print(f"  SNS: {sns.n_sinkhorn} sweeps + {sns.n_newton} Newton steps ({sns.n_cg} CG iterations), "
          f"{fmt_seconds(t_sns.seconds)}; Sinkhorn: {plain.n_sinkhorn} sweeps, {fmt_seconds(t_log.seconds)} "
          f"({t_log.seconds / t_sns.seconds:.1f}x slower)")
    print(f"  max |P_sns - P_sinkhorn| = {agree:.1e}; cost <C, P> = {sns.cost:.6f} vs {plain.cost:.6f}")
    ok = sns.converged and plain.converged and agree <= 1e-7 and abs(sns.cost - plain.cost) <= 1e-8
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.2))
        for res, label in ((plain, "Sinkhorn (log domain)"), (sns, "Sinkhorn-Newton-Sparse")):
            ax.semilogy([h[0] for h in res.history], [h[1] for h in res.history], label=label)
        ax.set_xscale("log")
        ax.set_xlabel("iteration")
        ax.set_ylabel("L1 marginal error")
        ax.legend()
        fig.tight_layout()
        fig.savefig("randnla_ot_convergence.png", dpi=120)
        plt.close(fig)
        print("  plot written to randnla_ot_convergence.png")
    except ImportError:
        pass
    return bool(ok)
