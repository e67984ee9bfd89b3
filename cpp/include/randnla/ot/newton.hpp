// randnla/ot/newton.hpp: the Newton system of the entropic dual with a sparsified Hessian.
//
//   H~ = [ diag(r)  P~ ; P~^T  diag(c) ],  H~ (df, dg) = (rhs_f, rhs_g)
//
// r, c are the TRUE row and column sums of the dense plan (so the kept pattern only changes the
// off-diagonal blocks), P~ the kept entries (CSR). df is eliminated (diag(r) is diagonal), leaving the
// Schur complement S = diag(c) - P~^T diag(r)^-1 P~ on dg, solved by Jacobi-preconditioned CG. The
// gauge direction (1, -1) is removed by fixing dg at one column (`fixed`), which keeps the reduced
// system definite whenever the kept graph is connected. All reductions run in a fixed order.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "randnla/common.hpp"
#include "randnla/ot/sinkhorn.hpp"
#include "randnla/parallel.hpp"

namespace randnla {
namespace ot {

struct NewtonSolve {
  std::vector<double> df, dg;
  index_t cg_iterations = 0;
  double relative_residual = 0.0;
};

namespace detail {
inline double dot(const std::vector<double>& x, const std::vector<double>& y) {
  double s = 0.0;
  for (size_t k = 0; k < x.size(); ++k) s += x[k] * y[k];
  return s;
}
}  // namespace detail

inline NewtonSolve solve_newton_schur(const Csr& P, const double* r, const double* c, const double* rhs_f,
                                      const double* rhs_g, index_t fixed, double rtol, index_t max_iter,
                                      int n_threads) {
  const index_t n = P.rows, m = P.cols;
  RANDNLA_REQUIRE(fixed >= 0 && fixed < m, "fixed column out of range");
  // Transpose (CSC of P~) by a counting sort: rows stay in increasing order within each column.
  std::vector<std::int64_t> tptr(static_cast<size_t>(m + 1), 0), tidx(P.indices.size());
  std::vector<double> tval(P.data.size());
  for (auto j : P.indices) tptr[static_cast<size_t>(j + 1)] += 1;
  for (index_t j = 0; j < m; ++j) tptr[static_cast<size_t>(j + 1)] += tptr[static_cast<size_t>(j)];
  {
    std::vector<std::int64_t> fill(tptr.begin(), tptr.end() - 1);
    for (index_t i = 0; i < n; ++i)
      for (std::int64_t q = P.indptr[static_cast<size_t>(i)]; q < P.indptr[static_cast<size_t>(i + 1)]; ++q) {
        const auto j = P.indices[static_cast<size_t>(q)];
        const auto dst = fill[static_cast<size_t>(j)]++;
        tidx[static_cast<size_t>(dst)] = i;
        tval[static_cast<size_t>(dst)] = P.data[static_cast<size_t>(q)];
      }
  }
  std::vector<double> inv_r(static_cast<size_t>(n));
  for (index_t i = 0; i < n; ++i) inv_r[static_cast<size_t>(i)] = r[i] > 0 ? 1.0 / r[i] : 0.0;

  std::vector<double> t(static_cast<size_t>(n));
  // y = P~^T diag(1/r) t_in   (t_in of length n)
  auto apply_pt = [&](const std::vector<double>& tin, std::vector<double>& y) {
    parallel_for_chunks(m, kColChunk, n_threads, [&](index_t j0, index_t j1, index_t) {
      for (index_t j = j0; j < j1; ++j) {
        double s = 0.0;
        for (std::int64_t q = tptr[static_cast<size_t>(j)]; q < tptr[static_cast<size_t>(j + 1)]; ++q)
          s += tval[static_cast<size_t>(q)] * tin[static_cast<size_t>(tidx[static_cast<size_t>(q)])];
        y[static_cast<size_t>(j)] = s;
      }
    });
  };
  // t = diag(1/r) P~ x
  auto apply_p = [&](const std::vector<double>& x, std::vector<double>& out) {
    parallel_for_chunks(n, kColChunk, n_threads, [&](index_t i0, index_t i1, index_t) {
      for (index_t i = i0; i < i1; ++i) {
        double s = 0.0;
        for (std::int64_t q = P.indptr[static_cast<size_t>(i)]; q < P.indptr[static_cast<size_t>(i + 1)]; ++q)
          s += P.data[static_cast<size_t>(q)] * x[static_cast<size_t>(P.indices[static_cast<size_t>(q)])];
        out[static_cast<size_t>(i)] = s * inv_r[static_cast<size_t>(i)];
      }
    });
  };
  std::vector<double> tmp(static_cast<size_t>(m));
  auto apply_s = [&](const std::vector<double>& x, std::vector<double>& y) {
    apply_p(x, t);
    apply_pt(t, tmp);
    for (index_t j = 0; j < m; ++j) y[static_cast<size_t>(j)] = c[j] * x[static_cast<size_t>(j)] - tmp[static_cast<size_t>(j)];
    y[static_cast<size_t>(fixed)] = 0.0;
  };

  // Right-hand side: rhs_g - P~^T diag(1/r) rhs_f.
  std::vector<double> b(static_cast<size_t>(m));
  for (index_t i = 0; i < n; ++i) t[static_cast<size_t>(i)] = rhs_f[i] * inv_r[static_cast<size_t>(i)];
  apply_pt(t, tmp);
  for (index_t j = 0; j < m; ++j) b[static_cast<size_t>(j)] = rhs_g[j] - tmp[static_cast<size_t>(j)];
  b[static_cast<size_t>(fixed)] = 0.0;

  // Jacobi: diag(S)_j = c_j - sum_i P~_ij^2 / r_i, floored relative to c_j (near-permutation plans
  // make it tiny).
  std::vector<double> dinv(static_cast<size_t>(m));
  for (index_t j = 0; j < m; ++j) {
    double s = 0.0;
    for (std::int64_t q = tptr[static_cast<size_t>(j)]; q < tptr[static_cast<size_t>(j + 1)]; ++q) {
      const double v = tval[static_cast<size_t>(q)];
      s += v * v * inv_r[static_cast<size_t>(tidx[static_cast<size_t>(q)])];
    }
    double d = c[j] - s;
    d = std::max(d, 1e-12 * c[j]);
    dinv[static_cast<size_t>(j)] = d > 0 ? 1.0 / d : 0.0;
  }
  dinv[static_cast<size_t>(fixed)] = 0.0;

  NewtonSolve out;
  std::vector<double> x(static_cast<size_t>(m), 0.0), res = b, z(static_cast<size_t>(m)), p(static_cast<size_t>(m)),
      q(static_cast<size_t>(m));
  const double bnorm = std::sqrt(detail::dot(b, b));
  double rz = 0.0;
  for (index_t j = 0; j < m; ++j) z[static_cast<size_t>(j)] = dinv[static_cast<size_t>(j)] * res[static_cast<size_t>(j)];
  p = z;
  rz = detail::dot(res, z);
  double rnorm = bnorm;
  index_t it = 0;
  if (bnorm > 0) {
    for (; it < max_iter; ++it) {
      if (rnorm <= rtol * bnorm) break;
      apply_s(p, q);
      const double pq = detail::dot(p, q);
      if (!(pq > 0)) break;  // lost definiteness (numerically): keep the current iterate
      const double alpha = rz / pq;
      for (index_t j = 0; j < m; ++j) {
        x[static_cast<size_t>(j)] += alpha * p[static_cast<size_t>(j)];
        res[static_cast<size_t>(j)] -= alpha * q[static_cast<size_t>(j)];
      }
      rnorm = std::sqrt(detail::dot(res, res));
      for (index_t j = 0; j < m; ++j) z[static_cast<size_t>(j)] = dinv[static_cast<size_t>(j)] * res[static_cast<size_t>(j)];
      const double rz_new = detail::dot(res, z);
      const double beta = rz_new / rz;
      rz = rz_new;
      for (index_t j = 0; j < m; ++j) p[static_cast<size_t>(j)] = z[static_cast<size_t>(j)] + beta * p[static_cast<size_t>(j)];
    }
  }
  out.cg_iterations = it;
  out.relative_residual = bnorm > 0 ? rnorm / bnorm : 0.0;
  // Back-substitute df = diag(1/r) (rhs_f - P~ dg).
  out.dg = x;
  apply_p(x, t);
  out.df.assign(static_cast<size_t>(n), 0.0);
  for (index_t i = 0; i < n; ++i)
    out.df[static_cast<size_t>(i)] = rhs_f[i] * inv_r[static_cast<size_t>(i)] - t[static_cast<size_t>(i)];
  return out;
}

}  // namespace ot
}  // namespace randnla
