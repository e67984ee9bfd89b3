// randnla/cones/matrix_cones.hpp: projections onto spectral matrix cones by the reduction theorem
// (Lewis): project the eigenvalues (symmetric cones) or singular values (unitarily invariant cones)
// with the vector step, then reassemble with the same vectors.
//
// Cost per matrix (double precision): a tridiagonal reduction and the tridiagonal eigenproblem
// (sytrd, then divide and conquer: up to kSplitMaxN the tridiagonal matrix is torn recursively
// with an in-house SIMD secular solver in every merge, and for the cones that keep part of the
// spectrum the top-level merge forms only the needed vectors; stevd beyond), the O(n log n)
// vector step, then the back transformation of only the
// eigenvectors that enter the reassembly (ormtr) and one BLAS-3 reassembly on whichever is
// smaller, the columns whose value is nonzero (P = sum x_i q_i q_i^T) or the columns whose value
// changed (P = X + sum (x_i - lambda_i) q_i q_i^T), split by sign into two SYRKs so P is exactly
// symmetric. The singular-value cones change only the singular values above a threshold and take
// the same route on the Gram matrix when that threshold is not small (project_svd_gram); gesdd
// otherwise. The spectraplex, whose reassembly typically needs few eigenpairs, takes the
// eigenvalues first (sterf) and only the needed vectors by inverse iteration (stein). The log-det
// cone (every eigenvalue moves) back-transforms all vectors and reassembles with one SYRK. Single
// precision uses syevd / gesdd.
// Inputs already in the cone or in its polar cone skip the decomposition when a cheap test
// (Cholesky, Frobenius-norm bounds) proves it.
//
// Small matrices run threaded across the batch in double precision with no BLAS inside the
// parallel region: n <= kSymBatchJacobiMaxN (symmetric) and max(m, n) <= kBatchJacobiMaxN (Gram
// matrices of the singular-value cones) through randnla/jacobi's batched (SIMD) Jacobi solver,
// n <= kJacobiMaxN through an in-house tridiagonal QL solver (and n <= small_ql_max_n(kind) one after the
// other, after the shortcuts), small SVDs through one-sided Jacobi
// preconditioned by QL on the Gram matrix. Larger matrices run one after the other, each with the
// BLAS's own threads, and keep their LAPACK workspaces between calls.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "randnla/cones/vector_step.hpp"
#include "randnla/jacobi/eigh.hpp"
#include "randnla/lapack.hpp"
#include "randnla/parallel.hpp"
#include "randnla/symmetric.hpp"

namespace randnla {
namespace cones {

constexpr index_t kJacobiMaxN = 32;
// Above kJacobiMaxN, matrices up to this size still take the small QL route, one after the
// other after the Cholesky / norm shortcuts of the LAPACK route. Measured single calls (us, one
// thread, against the LAPACK route with the torn tridiagonal solver): n = 72: psd 313 -> 216,
// sum_largest 308 -> 195, spectraplex 244 -> 149, log-det 353 -> 329; n = 104: psd 617 -> 594,
// sum_largest 606 -> 466, log-det 735 -> 872; n = 112: psd 703 -> 727; n = 128: sum_largest
// 860 -> 827, spectraplex 706 -> 661. The unblocked reduction and the n^2 rotations lose to
// LAPACK from about n = 76 for log-det (every vector is needed) and n = 108 for the others.
constexpr index_t kSmallQlMaxN = 104;
constexpr index_t kSmallQlLogdetMaxN = 72;
inline index_t small_ql_max_n(Kind kind) { return kind == Kind::log_epi ? kSmallQlLogdetMaxN : kSmallQlMaxN; }
// The small Gram route of the singular-value cones up to r = min(m, n) = this (n = 40 square:
// nuclear cone 148 -> 84 us; equal to the LAPACK Gram route at 64).
constexpr index_t kGramSmallMaxR = 48;
// Batches of matrices up to this size use randnla/jacobi's batched (SIMD) Jacobi solver.
constexpr index_t kBatchJacobiMaxN = 16;
// The symmetric cones (and the Gram matrices of the singular-value cones) use it up to this size
// only: beyond, the small QL route with its partial vectors is about as fast per matrix even
// against SIMD across a batch (measured per matrix, batches of 256, with n / 2 vectors for QL:
// n = 8: Jacobi 2.3 us, QL 2.9; n = 10: 4.1 vs 4.7; n = 11: 5.3 vs 5.4; n = 12: 6.5 vs 6.4;
// n = 16: 12.6 vs 10.7), and far faster for a single matrix, where Jacobi has no batch to
// vectorise across (n = 12: 13 vs 4.6 us).
constexpr index_t kSymBatchJacobiMaxN = 10;
// Batch buffers up to this many doubles (32 MiB) stay allocated between calls (per thread).
constexpr std::size_t kKeepBatchDoubles = std::size_t(1) << 22;
// LAPACK workspaces of matrices up to this size stay allocated between calls (per thread).
constexpr index_t kKeepWorkspaceMaxN = 512;
// One-sided Jacobi beats gesdd only for small SVDs (measured crossover about 24).
constexpr index_t kSvdSmallMaxN = 16;

// ---------------------------------------------------------------- small eigensolvers
// Householder tridiagonalisation and implicit QL with Wilkinson shifts, arranged for small n
// (n <= kSmallQlMaxN), where LAPACK's per-call overheads dominate. The QL sweeps are a dependent
// chain of square roots and divisions (about 2.2 sweeps per eigenvalue, n^2 rotations in all), so
// the solver runs in three separable stages:
//   values():  the tridiagonal reduction (full row-major storage: every inner loop is a
//              contiguous, vectorised row update, no reductions) and the QL chain on (d, e) alone,
//              which records each sweep's rotations instead of applying them;
//   vectors(): the eigenvectors of selected eigenvalues only: the recorded rotations applied, in
//              reverse order, to the k needed unit vectors (n x k, a sweep at a time with the
//              running row kept in a buffer, as LAPACK's dlasr), then the Householder reflectors
//              (2 n^2 k flops).
// So a cone that changes k of the n eigenpairs pays 6 k (not 6 n) flops per rotation and no
// explicit orthogonal matrix. The caller scales A to unit max-norm first (plain sqrt(a^2 + b^2),
// no hypot).
struct SmallEigh {
  index_t n = 0;
  std::vector<double> A, d, e, tau, p, rc, rs, W;
  std::vector<index_t> sweeps;  // per sweep: top pair index, bottom pair index, first rotation

  static double dot(const double* __restrict a, const double* __restrict b, index_t m) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    index_t j = 0;
    for (; j + 4 <= m; j += 4) {
      s0 += a[j] * b[j];
      s1 += a[j + 1] * b[j + 1];
      s2 += a[j + 2] * b[j + 2];
      s3 += a[j + 3] * b[j + 3];
    }
    for (; j < m; ++j) s0 += a[j] * b[j];
    return (s0 + s1) + (s2 + s3);
  }

  // A (n x n row-major, symmetric, scaled) -> eigenvalues in d[0..n) (unordered). False when QL
  // needs more than 60 sweeps for one eigenvalue.
  bool values(index_t n_, const double* A0) {
    n = n_;
    const std::size_t sn = static_cast<std::size_t>(n);
    A.assign(A0, A0 + n * n);
    d.resize(sn);
    e.resize(sn);
    tau.resize(sn);
    p.resize(sn);
    rc.clear();
    rs.clear();
    sweeps.clear();
    tridiagonalize();
    return ql_chain();
  }

  // Householder reflectors H_k = I - tau_k v_k v_k^T (v_k[k + 1] = 1, the rest in row k of A
  // beyond column k + 1) with H_{n-3} ... H_0 A H_0 ... H_{n-3} tridiagonal.
  void tridiagonalize() {
    double* __restrict a = A.data();
    double* __restrict pv_ = p.data();
    for (index_t k = 0; k + 2 < n; ++k) {
      const index_t m = n - k - 1;
      double* __restrict x = a + k * n + k + 1;
      d[k] = a[k * n + k];
      const double alpha = x[0];
      const double sigma = dot(x + 1, x + 1, m - 1);
      if (sigma == 0) {
        tau[k] = 0;
        e[k] = alpha;
        continue;
      }
      const double norm = std::sqrt(alpha * alpha + sigma);
      const double beta = alpha >= 0 ? -norm : norm;
      const double tk = (beta - alpha) / beta;
      const double scal = 1 / (alpha - beta);
      x[0] = 1;
      for (index_t j = 1; j < m; ++j) x[j] *= scal;
      tau[k] = tk;
      e[k] = beta;
      double* __restrict B = a + (k + 1) * n + k + 1;  // trailing m x m block, both triangles
      // p = tau B v as a sum of B's rows (B symmetric), w = p - (tau / 2) (p . v) v
      for (index_t j = 0; j < m; ++j) pv_[j] = 0;
      index_t i = 0;
      for (; i + 4 <= m; i += 4) {  // four rows per pass over p
        const double* __restrict r0 = B + i * n;
        const double* __restrict r1 = r0 + n;
        const double* __restrict r2 = r1 + n;
        const double* __restrict r3 = r2 + n;
        const double x0 = x[i], x1 = x[i + 1], x2 = x[i + 2], x3 = x[i + 3];
        for (index_t j = 0; j < m; ++j) pv_[j] += (x0 * r0[j] + x1 * r1[j]) + (x2 * r2[j] + x3 * r3[j]);
      }
      for (; i < m; ++i) {
        const double* __restrict row = B + i * n;
        const double xi = x[i];
        for (index_t j = 0; j < m; ++j) pv_[j] += xi * row[j];
      }
      for (index_t j = 0; j < m; ++j) pv_[j] *= tk;
      const double K = -0.5 * tk * dot(pv_, x, m);
      for (index_t j = 0; j < m; ++j) pv_[j] += K * x[j];
      for (index_t i = 0; i < m; ++i) {  // B -= v w^T + w v^T
        double* __restrict row = B + i * n;
        const double vi = x[i], wi = pv_[i];
        for (index_t j = 0; j < m; ++j) row[j] -= vi * pv_[j] + wi * x[j];
      }
    }
    if (n >= 2) {
      d[n - 2] = a[(n - 2) * n + n - 2];
      e[n - 2] = a[(n - 2) * n + n - 1];
    }
    d[n - 1] = a[(n - 1) * n + n - 1];
    e[n - 1] = 0;
  }

  // One implicit QL sweep's state (tql2's recurrences): rotations of pairs top, top - 1, ... are
  // stored at rc/rs[first + top - i].
  struct Sweep {
    double s = 1, c = 1, s2 = 1, p = 0, g = 0;
    index_t top = 0, first = 0, bottom = 0;
    bool active = false;
  };

  // The rotation of pair i; false when the sweep ends early (f = g = 0: d[i + 1] settled).
  // tql2's recurrence (f = s e_i, b = c e_i, r = sqrt(f^2 + g^2), s = f / r, c = g / r,
  // q = (d_i - d_{i+1} + p) s + 2 c b, p = s q, g = c q - b) is rewritten with x = r^2 so that
  // the chain from one rotation to the next holds one division and no square root:
  // qq = r q = (d_i - d_{i+1} + p) f + 2 b g, p = f qq / x, g' = g qq / x - b, and the next
  // f^2 = s^2 e^2 = (f^2 / x) e^2. The square roots (for s, c, and the next f, b) run alongside.
  bool rotate(Sweep& w, index_t i, index_t m) {
    double* __restrict dd = d.data();
    double* __restrict ee = e.data();
    const double ei = ee[i];
    const double f = w.s * ei, b = w.c * ei;
    const double f2 = w.s2 * (ei * ei);
    const double x = std::fma(w.g, w.g, f2);
    if (x == 0) {
      ee[i + 1] = 0;
      dd[i + 1] -= w.p;
      ee[m] = 0;
      return false;
    }
    const double rx = 1 / x;
    const double r = std::sqrt(x);
    const double gg = dd[i + 1] - w.p;
    const double qq = std::fma(dd[i] - gg, f, 2 * b * w.g);
    const double gq = w.g * qq;
    ee[i + 1] = r;
    // s from s^2 = f^2 / x (not f / r): s^2 and the next f^2 stay consistent to an ulp, so
    // c^2 + s^2 = 1 to a few ulps for every rotation instead of drifting along the sweep.
    w.s2 = f2 * rx;
    w.s = std::copysign(std::sqrt(w.s2), f);
    w.c = w.g * (r * rx);
    rc[w.first + w.top - i] = w.c;
    rs[w.first + w.top - i] = w.s;
    w.p = (f * qq) * rx;
    dd[i + 1] = gg + w.p;
    w.g = std::fma(gq, rx, -b);
    return true;
  }

  void start(Sweep& w, index_t l, index_t m, double shift) {
    w.s = w.c = w.s2 = 1;
    w.p = 0;
    w.g = d[m] - shift;
    w.top = m - 1;
    w.bottom = l;
    w.active = true;
  }

  void finish(Sweep& w, index_t l, index_t m) {
    d[l] -= w.p;
    e[l] = w.g;
    e[m] = 0;
    w.active = false;
  }

  void record(const Sweep& w) {
    if (w.bottom > w.top) return;
    sweeps.push_back(w.top);
    sweeps.push_back(w.bottom);
    sweeps.push_back(w.first);
  }

  // Implicit QL with Wilkinson shifts on d, e, rotations recorded. On blocks of kDoubleMin or
  // more rows, two sweeps with the same (Wilkinson) shift run interleaved, the second kLag pairs
  // behind the first: the second only touches entries the first has finished with, so the result
  // is that of the two sweeps one after the other, while their two dependent chains of square
  // roots and divisions overlap. Measured at n = 30: 27% more rotations than single sweeps, 20%
  // less time (the other eigenvalue of the leading 2 x 2 block as the second shift needs 36% more
  // rotations and gains less).
  static constexpr index_t kDoubleMin = 4, kLag = 2;

  bool ql_chain() {
    double* __restrict dd = d.data();
    double* __restrict ee = e.data();
    const double eps = std::numeric_limits<double>::epsilon();
    for (index_t l = 0; l < n; ++l) {
      int iter = 0;
      index_t m;
      do {
        for (m = l; m < n - 1; ++m)
          if (std::abs(ee[m]) <= eps * (std::abs(dd[m]) + std::abs(dd[m + 1]))) break;
        if (m == l) break;
        if (iter >= 60) return false;
        const double g0 = (dd[l + 1] - dd[l]) / (2 * ee[l]);
        const double r0 = std::sqrt(g0 * g0 + 1.0);
        const double shift = dd[l] - ee[l] / (g0 + (g0 >= 0 ? r0 : -r0));
        const index_t len = m - l;
        Sweep A;
        A.first = static_cast<index_t>(rc.size());
        if (len < kDoubleMin) {
          ++iter;
          rc.resize(rc.size() + len);
          rs.resize(rs.size() + len);
          start(A, l, m, shift);
          index_t i = m - 1;
          for (; i >= l; --i)
            if (!rotate(A, i, m)) break;
          A.bottom = i + 1;
          if (i < l) finish(A, l, m);
          record(A);
          continue;
        }
        iter += 2;
        Sweep B;
        B.first = A.first + len;
        rc.resize(rc.size() + 2 * len);
        rs.resize(rs.size() + 2 * len);
        start(A, l, m, shift);
        bool b_started = false;
        for (index_t i = m - 1;; --i) {
          if (A.active) {
            if (!rotate(A, i, m)) {
              A.active = false;
              A.bottom = i + 1;
            } else if (i == l) {
              finish(A, l, m);
            }
          }
          const index_t j = i + kLag;
          if (j == m - 1) {
            start(B, l, m, shift);
            b_started = true;
          }
          if (b_started && B.active && j <= m - 1) {
            if (!rotate(B, j, m)) {
              B.active = false;
              B.bottom = j + 1;
            } else if (j == l) {
              finish(B, l, m);
            }
          }
          if (b_started && !B.active && !A.active) break;  // either may end early
        }
        record(A);
        record(B);
      } while (m != l);
    }
    return true;
  }

  // Eigenvectors of the eigenvalues d[cols[0..k)] into V (n x k row-major: column j is the
  // eigenvector of d[cols[j]]). Columns go in groups of up to sixteen (Q <= 4 vectors of four
  // held in registers), sized to k: a sweep's rotations form a dependent chain through the
  // running row, which each group carries for all its columns at once, and the reflectors' inner
  // products accumulate in registers as well.
  typedef double v4 __attribute__((vector_size(32), aligned(8)));

  template <int Q>
  void vectors_group(double* __restrict wg, index_t kp) {
    auto load = [&](index_t row, v4* x) {
      for (int q = 0; q < Q; ++q) x[q] = *reinterpret_cast<const v4*>(wg + row * kp + 4 * q);
    };
    auto store = [&](index_t row, const v4* x) {
      for (int q = 0; q < Q; ++q) *reinterpret_cast<v4*>(wg + row * kp + 4 * q) = x[q];
    };
    // Z = G_1 ... G_N (time order) restricted to the columns: G_N first. A sweep's rotations
    // (pairs top, top - 1, ..., bottom in time order) are applied bottom to top.
    for (index_t sidx = static_cast<index_t>(sweeps.size()) - 3; sidx >= 0; sidx -= 3) {
      const index_t top = sweeps[sidx], bottom = sweeps[sidx + 1], first = sweeps[sidx + 2];
      const double* cs = rc.data() + first + top;  // rotation of pair i: first + top - i
      const double* ss = rs.data() + first + top;
      v4 carry[Q], nb[Q];
      load(bottom, carry);
      for (index_t i = bottom; i <= top; ++i) {
        const double c = cs[-i], sn = ss[-i];
        load(i + 1, nb);
        v4 out[Q];
        for (int q = 0; q < Q; ++q) {
          out[q] = c * carry[q] + sn * nb[q];
          carry[q] = c * nb[q] - sn * carry[q];
        }
        store(i, out);
      }
      store(top + 1, carry);
    }
    // V = H_0 ... H_{n-3} W: reflectors from the last
    const double* __restrict a = A.data();
    for (index_t r = n - 3; r >= 0; --r) {
      const double tk = tau[r];
      if (tk == 0) continue;
      const index_t m = n - r - 1;
      const double* __restrict v = a + r * n + r + 1;
      v4 u[Q] = {}, x[Q];
      for (index_t i = 0; i < m; ++i) {
        load(r + 1 + i, x);
        for (int q = 0; q < Q; ++q) u[q] += v[i] * x[q];
      }
      for (int q = 0; q < Q; ++q) u[q] *= tk;
      for (index_t i = 0; i < m; ++i) {
        load(r + 1 + i, x);
        for (int q = 0; q < Q; ++q) x[q] -= v[i] * u[q];
        store(r + 1 + i, x);
      }
    }
  }

  void vectors(const index_t* cols, index_t k, double* __restrict V) {
    const index_t kp = (k + 3) / 4 * 4;
    W.assign(static_cast<std::size_t>(n * kp), 0.0);
    double* __restrict w = W.data();
    for (index_t j = 0; j < k; ++j) w[cols[j] * kp + j] = 1;
    for (index_t j0 = 0; j0 < kp;) {
      const index_t q = std::min<index_t>(4, (kp - j0) / 4);
      if (q == 4) vectors_group<4>(w + j0, kp);
      else if (q == 3) vectors_group<3>(w + j0, kp);
      else if (q == 2) vectors_group<2>(w + j0, kp);
      else vectors_group<1>(w + j0, kp);
      j0 += 4 * q;
    }
    for (index_t i = 0; i < n; ++i)
      for (index_t j = 0; j < k; ++j) V[i * k + j] = w[i * kp + j];
  }
};

// All eigenpairs: Z (row-major n x n, destroyed) holds A on entry (scaled to unit max-norm) and
// the eigenvectors as columns on exit, d the eigenvalues (unordered). False when QL does not
// converge (the caller then uses Jacobi).
inline bool tridiagonal_ql_eigh(index_t n, double* z, double* d) {
  thread_local SmallEigh se;
  thread_local std::vector<index_t> all;
  if (!se.values(n, z)) return false;
  all.resize(static_cast<std::size_t>(n));
  for (index_t i = 0; i < n; ++i) all[i] = i;
  se.vectors(all.data(), n, z);
  std::copy(se.d.begin(), se.d.begin() + n, d);
  return true;
}

// One-sided (Hestenes) Jacobi SVD of an m x n matrix A (row-major, m >= n, destroyed): on return
// the columns of A are U diag(s) (mutually orthogonal) and V (n x n row-major) is orthogonal, so
// the input equals A V^T. High relative accuracy; the caller scales A to unit max-norm.
// With keep_v, V holds a starting rotation already applied to A (e.g. the eigenvectors of A^T A,
// after which one or two sweeps restore full accuracy).
inline bool onesided_jacobi_svd(index_t m, index_t n, double* A, double* s, double* V, bool keep_v = false) {
  if (!keep_v)
    for (index_t i = 0; i < n; ++i)
      for (index_t j = 0; j < n; ++j) V[i * n + j] = i == j ? 1.0 : 0.0;
  const double eps = std::numeric_limits<double>::epsilon();
  bool converged = false;
  for (int sweep = 0; sweep < 80 && !converged; ++sweep) {
    converged = true;
    for (index_t p = 0; p < n; ++p) {
      for (index_t q = p + 1; q < n; ++q) {
        double alpha = 0, beta = 0, gamma = 0;
        for (index_t k = 0; k < m; ++k) {
          const double ap = A[k * n + p], aq = A[k * n + q];
          alpha += ap * ap;
          beta += aq * aq;
          gamma += ap * aq;
        }
        if (gamma == 0 || std::abs(gamma) <= eps * std::sqrt(alpha) * std::sqrt(beta)) continue;
        converged = false;
        const double zeta = (beta - alpha) / (2 * gamma);
        const double t = (zeta >= 0 ? 1.0 : -1.0) / (std::abs(zeta) + std::sqrt(1 + zeta * zeta));
        const double c = 1 / std::sqrt(1 + t * t), sn = c * t;
        for (index_t k = 0; k < m; ++k) {
          const double ap = A[k * n + p], aq = A[k * n + q];
          A[k * n + p] = c * ap - sn * aq;
          A[k * n + q] = sn * ap + c * aq;
        }
        for (index_t k = 0; k < n; ++k) {
          const double vp = V[k * n + p], vq = V[k * n + q];
          V[k * n + p] = c * vp - sn * vq;
          V[k * n + q] = sn * vp + c * vq;
        }
      }
    }
  }
  for (index_t j = 0; j < n; ++j) {
    double sum = 0;
    for (index_t k = 0; k < m; ++k) sum += A[k * n + j] * A[k * n + j];
    s[j] = std::sqrt(sum);
  }
  return converged;
}

// ---------------------------------------------------------------- shared pieces
namespace detail {

// Copies the symmetric part of X (row-major n x n) into P, checking finiteness and symmetry.
// Returns max |x_ij|.
template <class T>
double symmetrize_checked(const T* X, T* P, index_t n, const char* name) {
  double asym = 0, mx = 0;
  bool finite = true;
  // mirrored tile pairs, so that the column reads and writes stay in cache
  for (index_t ib = 0; ib < n; ib += kSymmetricTile) {
    const index_t ie = std::min(n, ib + kSymmetricTile);
    for (index_t jb = 0; jb <= ib; jb += kSymmetricTile) {
      for (index_t i = ib; i < ie; ++i) {
        const index_t jend = std::min(i + 1, jb + kSymmetricTile);
        for (index_t j = jb; j < jend; ++j) {
          const T a = X[i * n + j], b = X[j * n + i];
          finite = finite && std::isfinite(a) && std::isfinite(b);
          asym = std::max(asym, std::abs(static_cast<double>(a) - static_cast<double>(b)));
          mx = std::max(mx, std::max(std::abs(static_cast<double>(a)), std::abs(static_cast<double>(b))));
          const T s = i == j ? a : static_cast<T>(0.5 * (static_cast<double>(a) + static_cast<double>(b)));
          P[i * n + j] = s;
          P[j * n + i] = s;
        }
      }
    }
  }
  RANDNLA_REQUIRE(finite, name, " contains NaN or infinity");
  RANDNLA_REQUIRE(asym <= 100 * epsilon_of<T>() * mx, name, " must be symmetric: relative asymmetry ",
                  mx > 0 ? asym / mx : asym, " exceeds ", 100 * epsilon_of<T>());
  return mx;
}

// +1 when every diagonal entry is positive, -1 when every one is negative, else 0 (then neither
// X nor -X can be positive definite).
template <class T>
int diagonal_sign(const T* P, index_t n) {
  bool pos = true, neg = true;
  for (index_t i = 0; i < n; ++i) {
    pos = pos && P[i * n + i] > 0;
    neg = neg && P[i * n + i] < 0;
  }
  return pos ? 1 : (neg ? -1 : 0);
}

// Whether norm_precheck can prove anything for this kind (it needs ||X||_F, one more pass).
inline bool norm_precheck_applies(Kind kind) {
  return kind == Kind::l1 || kind == Kind::linf || kind == Kind::l1_ball || kind == Kind::linf_ball ||
         kind == Kind::top_k;
}

template <class T>
double max_abs(const T* X, index_t count) {
  double m4[4] = {0, 0, 0, 0};  // four independent chains, which vectorise
  index_t i = 0;
  for (; i + 4 <= count; i += 4)
    for (int q = 0; q < 4; ++q) m4[q] = std::max(m4[q], std::abs(static_cast<double>(X[i + q])));
  for (; i < count; ++i) m4[0] = std::max(m4[0], std::abs(static_cast<double>(X[i])));
  return std::max(std::max(m4[0], m4[1]), std::max(m4[2], m4[3]));
}

template <class T>
double frobenius(const T* X, index_t count) {
  const double mx = max_abs(X, count);
  if (mx == 0) return 0;
  const double inv = 1 / mx;  // a multiplication per entry, not a division (1 ulp apart)
  double s4[4] = {0, 0, 0, 0};  // four partial sums: independent chains, which vectorise
  index_t i = 0;
  for (; i + 4 <= count; i += 4)
    for (int q = 0; q < 4; ++q) {
      const double y = static_cast<double>(X[i + q]) * inv;
      s4[q] += y * y;
    }
  for (; i < count; ++i) {
    const double y = static_cast<double>(X[i]) * inv;
    s4[0] += y * y;
  }
  return mx * std::sqrt((s4[0] + s4[1]) + (s4[2] + s4[3]));
}

// Cheap proofs that a point is in the cone (unchanged) or its polar (zero) without a decomposition.
// Returns -1 when nothing is proved. Frobenius bounds: ||X||_2 <= ||X||_F <= ||X||_* <= sqrt(r) ||X||_F.
inline int norm_precheck(Kind kind, double param, double t, double fro, index_t r) {
  const double sr = std::sqrt(static_cast<double>(r));
  switch (kind) {
    case Kind::l1:
      if (sr * fro <= t) return unchanged;
      if (fro <= -t) return zero;
      return -1;
    case Kind::linf:
      if (fro <= t) return unchanged;
      if (sr * fro <= -t) return zero;
      return -1;
    case Kind::l1_ball:
      return sr * fro <= param ? unchanged : -1;
    case Kind::linf_ball:
      return fro <= param ? unchanged : -1;
    case Kind::top_k:
      return std::sqrt(param) * fro <= t ? unchanged : -1;  // sum of k largest <= sqrt(k) ||X||_F
    default:
      return -1;
  }
}

}  // namespace detail

// ---------------------------------------------------------------- partial symmetric eigensolver
// syevd = sytrd (4/3 n^3) + divide and conquer on the tridiagonal matrix + ormtr, the back
// transformation of all n vectors (2 n^3). Here the tridiagonal eigenproblem is solved first
// (stevd: values and the tridiagonal's vectors), the vector step says which eigenpairs enter the
// reassembly, and only those k vectors are back-transformed (2 n^2 k) and reassembled (n^2 k).
// MRRR on a subset (stemr by index) was measured slower than stevd on all of T beyond ~n/10
// vectors (bisection per eigenvalue), and syevr's subset path (stebz + stein) slower still.
// Workspace sizes follow LAPACK's documented minima (block size 64), so no queries run.
template <class T>
struct SplitWork;

template <class T>
struct TridiagWork {
  std::vector<T> A, d, e, tau, lam, Z, work, d0, e0;
  std::vector<lapack::fint> iwork, iblock, ifail;
  std::unique_ptr<SplitWork<T>> split;  // scratch of tridiag_full
};

template <class T>
bool tridiag_full(index_t n, T* d, T* e, T* Q, index_t ldq, TridiagWork<T>& tw, SplitWork<T>& parent);

// The full tridiagonal eigenproblem by the torn solver (tridiag_full) up to this order, stevd
// beyond. Measured (log-det projection, one thread): n = 100 0.78 -> 0.67 ms, 300 9.3 -> 7.1,
// 500 26.6 -> 24.8; slower at 600 (48 vs 54) and 1000.
constexpr index_t kFullSplitMaxN = 512;

// Scale at which sytrd/stevd are used without the rescaling syevd does internally.
template <class T>
bool tridiag_safe_scale(double amax) {
  const double lo = std::sqrt(static_cast<double>(std::numeric_limits<T>::min()) / epsilon_of<T>());
  return amax == 0 || (amax > lo && amax < 1 / lo);
}

// sytrd of tw.A (lower): the tridiagonal matrix in tw.d / tw.e, the reflectors in tw.A / tw.tau,
// with the workspaces sized for every tridiagonal solver used after it.
template <class T>
bool tridiag_reduce(index_t n, TridiagWork<T>& tw) {
  const lapack::fint ln = static_cast<lapack::fint>(n);
  const std::size_t sn = static_cast<std::size_t>(n);
  tw.d.resize(sn);
  tw.e.resize(sn);
  tw.tau.resize(sn);
  const std::size_t lwork = std::max<std::size_t>(64 * sn + 8192, 1 + 4 * sn + sn * sn);
  if (tw.work.size() < lwork) tw.work.resize(lwork);
  if (tw.iwork.size() < 5 * sn + 3) tw.iwork.resize(5 * sn + 3);
  return lapack::sytrd<T>('L', ln, tw.A.data(), ln, tw.d.data(), tw.e.data(), tw.tau.data(), tw.work.data(),
                          static_cast<lapack::fint>(tw.work.size())) == 0;
}

// Reduces tw.A (n x n, column-major, lower triangle read) to tridiagonal form and solves the
// tridiagonal eigenproblem: eigenvalues ascending in tw.lam, the tridiagonal's eigenvectors in
// tw.Z (n x n). Returns false if LAPACK reports a failure.
template <class T>
bool tridiag_eigen(index_t n, TridiagWork<T>& tw) {
  const lapack::fint ln = static_cast<lapack::fint>(n);
  if (!tridiag_reduce(n, tw)) return false;
  tw.Z.resize(static_cast<std::size_t>(n) * static_cast<std::size_t>(n));
  if (std::is_same<T, double>::value && n <= kFullSplitMaxN) {
    if (!tw.split) tw.split = std::make_unique<SplitWork<T>>();
    if (!tridiag_full(n, tw.d.data(), tw.e.data(), tw.Z.data(), n, tw, *tw.split)) return false;
    tw.lam.assign(tw.d.begin(), tw.d.begin() + n);
    return true;
  }
  const lapack::fint info =
      lapack::stevd<T>('V', ln, tw.d.data(), tw.e.data(), tw.Z.data(), ln, tw.work.data(),
                       static_cast<lapack::fint>(tw.work.size()), tw.iwork.data(),
                       static_cast<lapack::fint>(tw.iwork.size()));
  tw.lam.swap(tw.d);
  return info == 0;
}

// Back-transforms the k tridiagonal eigenvectors starting at Z (leading dimension n) in place.
template <class T>
bool tridiag_backtransform(index_t n, T* Z, index_t k, TridiagWork<T>& tw) {
  if (n == 1 || k == 0) return true;
  const lapack::fint ln = static_cast<lapack::fint>(n);
  return lapack::ormtr<T>('L', 'L', 'N', ln, static_cast<lapack::fint>(k), tw.A.data(), ln, tw.tau.data(), Z, ln,
                          tw.work.data(), static_cast<lapack::fint>(tw.work.size())) == 0;
}

// Back-transforms eigenvectors lo..hi (0-based, inclusive) in place; returns their first column.
template <class T>
T* tridiag_vectors(index_t n, index_t lo, index_t hi, TridiagWork<T>& tw) {
  T* Z = tw.Z.data() + lo * n;
  return tridiag_backtransform(n, Z, hi - lo + 1, tw) ? Z : nullptr;
}

// One divide-and-conquer level with selected vectors. stevd's cost at n >= ~150 is mostly the
// matrix products of its merges, and the top-level merge alone (two (n/2) x (n/2) blocks times
// the n x n eigenvector matrix of the rank-one update) is about n^3 of its ~4/3 n^3 flops. Here
// the tridiagonal matrix is torn at n1 = n / 2 into T1 (+) T2 + rho v v^T exactly as stedc does,
// the halves are solved in full (torn again in the same way down to kSplitHalfMinN, then stevd),
// LAPACK's deflation (laed2) and the secular-equation solver below give every eigenvalue, the
// vector step picks the eigenpairs that enter the reassembly, and only those k vectors are
// formed (Gu-Eisenstat recomputed z, as laed3 does) and multiplied by the halves' vectors:
// n^2 k / 2 ... n^2 k flops instead of n^3. Double precision; the caller falls back to syevd
// when LAPACK reports a failure.
// Measured at n = 300, one thread: stevd 3.6 ms; the halves 1.9 ms by stevd (1.45 ms torn
// again), the secular roots 0.3 ms (laed4 0.7 ms), ~n/2 vectors of the merge 0.4 ms. Faster on
// the whole LAPACK route up to n = 600 (PSD: n = 33 0.087 -> 0.078 ms, 64 0.28 -> 0.23, 100
// 0.71 -> 0.57, against the full solve); no faster at n = 700 and 1000 (measured with stevd's
// halves and laed4, and again with the torn halves and the SIMD secular solver), so larger
// matrices keep stevd (which also bounds the extra n x n buffers).
constexpr index_t kSplitMinN = 33;
constexpr index_t kSplitMaxN = 600;
// Halves (and their halves, ...) of at least this order are torn again, down to stevd on pieces
// of 32 to 63: the secular solver below is cheaper than laed4 in stevd's own merges. Measured
// (PSD, one thread): n = 128 0.98 -> 0.91 ms, 200 2.34 -> 2.10, 300 5.4 -> 4.9, 450 14.3 -> 13.2.
constexpr index_t kSplitHalfMinN = 32;

// ---------------------------------------------------------------- secular equation
// The roots of the secular equation 1 + rho sum_j z_j^2 / (d_j - x) = 0 (d ascending, distinct,
// z_j != 0, rho > 0: the deflated problem laed2 leaves), root i in (d_i, d_{i+1}), i < K - 1.
// Middle-way iteration of Li (the interior case of LAPACK's laed4, without its three-pole
// variant): the root is written x = d_org + tau with d_org the nearer pole, each step
// interpolates the secular function by the two adjacent poles and a constant and is safeguarded
// by the bracket [lb, ub], and the iteration stops on laed4's test |f| <= eps * (bound on the
// rounding error of f), so the roots carry laed4's backward error. Each evaluation is one pass
// over the K poles in independent SIMD lanes, with no running-sum dependence: the rounding bound
// of the recursive sums (the sum of their partial sums) is the same sum weighted by the terms'
// positions. Returns false (the caller then runs laed4 for this root) after kSecularMaxIter
// steps; delta_j = d_j - x comes from the same tau, accurate relative to the distance to the
// nearer pole as the Gu-Eisenstat vectors need. Measured at n = 300 (K ~ 290), one thread:
// 0.28 ms for all roots against 0.74 ms for laed4 (3.7 steps per root on average for both).
constexpr int kSecularMaxIter = 40;
constexpr int kSecularLanes = 8;

struct SecularSums {
  double psi, dpsi, psi_err, phi, dphi, phi_err;
};

// Over j in [j0, j1): sum z_j^2 / (dd_j - tau), sum (z_j / (dd_j - tau))^2 and
// sum |pos_j - ref| z_j^2 / (dd_j - tau) (all terms of one side have one sign).
// With AVX-512 the quotients come from the 14-bit reciprocal estimate and two Newton steps
// (relative error a few ulps, within the rounding bound the convergence test allows for).
inline void secular_side(index_t j0, index_t j1, const double* dd, const double* z, const double* pos, double tau,
                         double ref, double& sum, double& dsum, double& err) {
#if defined(__AVX512F__)
  const __m512d vtau = _mm512_set1_pd(tau), vref = _mm512_set1_pd(ref), one = _mm512_set1_pd(1.0);
  const __m512d absmask = _mm512_castsi512_pd(_mm512_set1_epi64(0x7fffffffffffffffLL));
  __m512d a = _mm512_setzero_pd(), b = _mm512_setzero_pd(), c = _mm512_setzero_pd();
  __m512d a2 = _mm512_setzero_pd(), b2 = _mm512_setzero_pd(), c2 = _mm512_setzero_pd();
  auto step = [&](__m512d vd, __m512d vz, __m512d vp, __m512d& sa, __m512d& sb, __m512d& sc, __mmask8 m) {
    const __m512d x = _mm512_sub_pd(vd, vtau);
    __m512d r = _mm512_rcp14_pd(x);
    r = _mm512_fmadd_pd(r, _mm512_fnmadd_pd(x, r, one), r);
    r = _mm512_fmadd_pd(r, _mm512_fnmadd_pd(x, r, one), r);
    const __m512d t = _mm512_maskz_mul_pd(m, vz, r);  // lanes outside the range contribute 0
    const __m512d zt = _mm512_mul_pd(vz, t);
    sa = _mm512_add_pd(sa, zt);
    sb = _mm512_fmadd_pd(t, t, sb);
    sc = _mm512_fmadd_pd(_mm512_and_pd(_mm512_sub_pd(vp, vref), absmask), zt, sc);
  };
  index_t j = j0;
  for (; j + 16 <= j1; j += 16) {
    step(_mm512_loadu_pd(dd + j), _mm512_loadu_pd(z + j), _mm512_loadu_pd(pos + j), a, b, c, 0xFF);
    step(_mm512_loadu_pd(dd + j + 8), _mm512_loadu_pd(z + j + 8), _mm512_loadu_pd(pos + j + 8), a2, b2, c2, 0xFF);
  }
  for (; j < j1; j += 8) {
    const index_t rem = std::min<index_t>(8, j1 - j);
    const __mmask8 m = static_cast<__mmask8>((1u << rem) - 1u);
    step(_mm512_mask_loadu_pd(one, m, dd + j), _mm512_maskz_loadu_pd(m, z + j), _mm512_mask_loadu_pd(vref, m, pos + j),
         a, b, c, m);
  }
  sum = _mm512_reduce_add_pd(_mm512_add_pd(a, a2));
  dsum = _mm512_reduce_add_pd(_mm512_add_pd(b, b2));
  err = _mm512_reduce_add_pd(_mm512_add_pd(c, c2));
#else
  constexpr int L = kSecularLanes;
  double a[L] = {0}, b[L] = {0}, c[L] = {0};
  index_t j = j0;
  for (; j + L <= j1; j += L)
    for (int l = 0; l < L; ++l) {
      const double t = z[j + l] / (dd[j + l] - tau);
      const double zt = z[j + l] * t;
      a[l] += zt;
      b[l] += t * t;
      c[l] += std::abs(pos[j + l] - ref) * zt;
    }
  for (; j < j1; ++j) {
    const double t = z[j] / (dd[j] - tau);
    const double zt = z[j] * t;
    a[0] += zt;
    b[0] += t * t;
    c[0] += std::abs(pos[j] - ref) * zt;
  }
  sum = dsum = err = 0;
  for (int l = 0; l < L; ++l) {
    sum += a[l];
    dsum += b[l];
    err += c[l];
  }
#endif
}

// Sums over j < ii (psi) and j > ii (phi) of z_j^2 / (dd_j - tau) and of (z_j / (dd_j - tau))^2,
// with the position weights of the recursive-summation bound. pos holds 0, 1, 2, ... as doubles.
inline SecularSums secular_sums(index_t K, index_t ii, const double* dd, const double* z, const double* pos,
                                double tau) {
  SecularSums s;
  const double ref = static_cast<double>(ii);
  secular_side(0, ii, dd, z, pos, tau, ref, s.psi, s.dpsi, s.psi_err);
  secular_side(ii + 1, K, dd, z, pos, tau, ref, s.phi, s.dphi, s.phi_err);
  s.psi_err = std::abs(s.psi_err);
  return s;
}

// Root i (0-based, i < K - 1, K >= 3) into dlam and delta (K values); dd (K) and pos (K, 0..K-1)
// are scratch / constant. False when the iteration did not converge.
inline bool secular_root_interior(index_t K, index_t i, const double* d, const double* z, double rho, double* delta,
                                  double& dlam, double* dd, const double* pos) {
  const double eps = std::numeric_limits<double>::epsilon() / 2;  // LAPACK's dlamch('E')
  const double rhoinv = 1 / rho;
  const index_t ip1 = i + 1;
  const double del = d[ip1] - d[i], midpt = del / 2;
  // initial guess: the two nearest poles exactly, the others frozen at the midpoint
  for (index_t j = 0; j < K; ++j) dd[j] = d[j] - d[i];
  double psi = 0, phi = 0, unused1, unused2;
  secular_side(0, i, dd, z, pos, midpt, 0.0, psi, unused1, unused2);
  secular_side(ip1 + 1, K, dd, z, pos, midpt, 0.0, phi, unused1, unused2);
  double c = rhoinv + psi + phi;
  double w = c + z[i] * z[i] / (-midpt) + z[ip1] * z[ip1] / (del - midpt);
  const bool orgati = w > 0;
  double tau, lb, ub;
  if (orgati) {
    const double a = c * del + z[i] * z[i] + z[ip1] * z[ip1], b = z[i] * z[i] * del;
    const double r = std::sqrt(std::abs(a * a - 4 * b * c));
    tau = a > 0 ? 2 * b / (a + r) : (a - r) / (2 * c);
    lb = 0, ub = midpt;
  } else {
    const double a = c * del - z[i] * z[i] - z[ip1] * z[ip1], b = z[ip1] * z[ip1] * del;
    const double r = std::sqrt(std::abs(a * a + 4 * b * c));
    tau = a < 0 ? 2 * b / (a - r) : -(a + r) / (2 * c);
    lb = -midpt, ub = 0;
  }
  const index_t ii = orgati ? i : ip1;
  if (!orgati)
    for (index_t j = 0; j < K; ++j) dd[j] = d[j] - d[ip1];
  // f(tau) with its ii-th term apart; dw = f'(tau); err = laed4's rounding bound
  double dw = 0, err = 0, dpsi = 0, dphi = 0;
  auto evaluate = [&](double tt) {
    const SecularSums s = secular_sums(K, ii, dd, z, pos, tt);
    psi = s.psi, dpsi = s.dpsi, phi = s.phi, dphi = s.dphi;
    const double q = z[ii] / (dd[ii] - tt);
    dw = dpsi + dphi + q * q;
    const double term = z[ii] * q;
    w = rhoinv + phi + psi + term;
    err = 8 * (phi - psi) + (s.psi_err + s.phi_err) + 2 * rhoinv + 3 * std::abs(term) + std::abs(tt) * dw;
  };
  evaluate(tau);
  bool swtch = false;
  double prew = w;
  for (int iter = 0; iter <= kSecularMaxIter; ++iter) {
    if (std::abs(w) <= eps * err) {
      dlam = d[ii] + tau;
      for (index_t j = 0; j < K; ++j) delta[j] = dd[j] - tau;
      return true;
    }
    if (iter == kSecularMaxIter) break;
    if (w <= 0)
      lb = std::max(lb, tau);
    else
      ub = std::min(ub, tau);
    // two-pole interpolation (the poles d_i, d_{i+1}) plus a constant
    const double di = dd[i] - tau, dip1 = dd[ip1] - tau;
    double cc;
    if (!swtch) {
      cc = orgati ? w - dip1 * dw - (d[i] - d[ip1]) * (z[i] / di) * (z[i] / di)
                  : w - di * dw - (d[ip1] - d[i]) * (z[ip1] / dip1) * (z[ip1] / dip1);
    } else {
      const double q = z[ii] / (dd[ii] - tau);
      const double ps = orgati ? dpsi + q * q : dpsi, ph = orgati ? dphi : dphi + q * q;
      cc = w - di * ps - dip1 * ph;
      dpsi = ps, dphi = ph;
    }
    double a = (di + dip1) * w - di * dip1 * dw;
    const double b = di * dip1 * w;
    double eta;
    if (cc == 0) {
      if (a == 0) {
        if (!swtch)
          a = orgati ? z[i] * z[i] + dip1 * dip1 * (dpsi + dphi) : z[ip1] * z[ip1] + di * di * (dpsi + dphi);
        else
          a = di * di * dpsi + dip1 * dip1 * dphi;
      }
      eta = b / a;
    } else if (a <= 0) {
      eta = (a - std::sqrt(std::abs(a * a - 4 * b * cc))) / (2 * cc);
    } else {
      eta = 2 * b / (a + std::sqrt(std::abs(a * a - 4 * b * cc)));
    }
    if (w * eta >= 0 || !std::isfinite(eta)) eta = -w / dw;
    if (tau + eta > ub || tau + eta < lb || !std::isfinite(eta)) eta = (w < 0 ? ub - tau : lb - tau) / 2;
    prew = w;
    tau += eta;
    evaluate(tau);
    if (iter == 0)
      swtch = orgati ? -w > std::abs(prew) / 10 : w > std::abs(prew) / 10;
    else if (w * prew > 0 && std::abs(w) > std::abs(prew) / 10)
      swtch = !swtch;
  }
  return false;
}

template <class T>
struct SplitWork {
  std::vector<T> d, e, Q, Q2, z, dlamda, w, delta, zhat, S, Yr, tmp;
  std::vector<double> dd, pos;  // secular solver scratch, 0, 1, 2, ... as doubles
  std::vector<lapack::fint> indxq, indx, indxc, indxp, coltyp;
  std::vector<index_t> order;  // ascending position -> root j (< K) or K + deflated column
  std::vector<T> lam;  // eigenvalues ascending
  lapack::fint K = 0;
  T rho = 0;
  index_t n1 = 0;
  bool zhat_ready = false;
  std::unique_ptr<SplitWork> child;  // for halves solved by tearing again
};

template <class T>
bool split_solve(index_t n, const T* d, const T* e, TridiagWork<T>& tw, SplitWork<T>& sw);
template <class T>
T* split_vectors(index_t n, index_t lo, index_t hi, SplitWork<T>& sw, T* out = nullptr, index_t ldo = 0);

// The full eigendecomposition of the tridiagonal (d, e) of order n (both overwritten: d by the
// eigenvalues, ascending), vectors into Q (leading dimension ldq): stevd, or from
// kSplitHalfMinN one more tear with the secular solver below and all vectors of that merge
// (stevd's own merges run laed4, about a third of its cost at n = 150).
template <class T>
bool tridiag_full(index_t n, T* d, T* e, T* Q, index_t ldq, TridiagWork<T>& tw, SplitWork<T>& parent) {
  using lapack::fint;
  if (std::is_same<T, double>::value && n >= kSplitHalfMinN) {
    if (!parent.child) parent.child = std::make_unique<SplitWork<T>>();
    SplitWork<T>& sw = *parent.child;
    if (!split_solve(n, d, e, tw, sw)) return false;
    split_vectors(n, 0, n - 1, sw, Q, ldq);
    std::copy(sw.lam.begin(), sw.lam.end(), d);
    return true;
  }
  return lapack::stevd<T>('V', static_cast<fint>(n), d, e, Q, static_cast<fint>(ldq), tw.work.data(),
                          static_cast<fint>(tw.work.size()), tw.iwork.data(),
                          static_cast<fint>(tw.iwork.size())) == 0;
}

// Tears the tridiagonal (d, e) of order n, solves the halves and the merge's secular equation:
// all eigenvalues ascending in sw.lam; the vectors then come from split_vectors.
template <class T>
bool split_solve(index_t n, const T* d, const T* e, TridiagWork<T>& tw, SplitWork<T>& sw) {
  using lapack::fint;
  const std::size_t sn = static_cast<std::size_t>(n);
  const index_t n1 = n / 2, n2 = n - n1;
  sw.n1 = n1;
  sw.d.assign(d, d + n);
  sw.e.assign(e, e + n);
  T rho = sw.e[n1 - 1];
  sw.d[n1 - 1] -= std::abs(rho);
  sw.d[n1] -= std::abs(rho);
  sw.Q.resize(sn * sn);  // the halves' blocks are written by stevd, the off-diagonal blocks are zero
  for (index_t c = 0; c < n1; ++c) std::fill(sw.Q.data() + c * n + n1, sw.Q.data() + (c + 1) * n, T(0));
  for (index_t c = n1; c < n; ++c) std::fill(sw.Q.data() + c * n, sw.Q.data() + c * n + n1, T(0));
  const fint ln = static_cast<fint>(n);
  if (!tridiag_full(n1, sw.d.data(), sw.e.data(), sw.Q.data(), n, tw, sw) ||
      !tridiag_full(n2, sw.d.data() + n1, sw.e.data() + n1, sw.Q.data() + n1 * n + n1, n, tw, sw))
    return false;
  sw.z.resize(sn);
  for (index_t i = 0; i < n1; ++i) sw.z[i] = sw.Q[(n1 - 1) + i * n];          // last row of the first half
  for (index_t i = n1; i < n; ++i) sw.z[i] = sw.Q[n1 + i * n];                // first row of the second half
  sw.indxq.resize(sn);
  for (index_t i = 0; i < n1; ++i) sw.indxq[i] = static_cast<fint>(i + 1);
  for (index_t i = 0; i < n2; ++i) sw.indxq[n1 + i] = static_cast<fint>(i + 1);
  sw.dlamda.resize(sn);
  sw.w.resize(sn);
  sw.Q2.resize(sn * sn);  // laed2 documents n1^2 + n2^2; the whole square is safe
  sw.indx.resize(sn);
  sw.indxc.resize(sn);
  sw.indxp.resize(sn);
  sw.coltyp.resize(std::max<std::size_t>(sn, 4));
  fint K = 0;
  if (lapack::laed2<T>(K, ln, static_cast<fint>(n1), sw.d.data(), sw.Q.data(), ln, sw.indxq.data(), rho, sw.z.data(),
                       sw.dlamda.data(), sw.w.data(), sw.Q2.data(), sw.indx.data(), sw.indxc.data(), sw.indxp.data(),
                       sw.coltyp.data()) != 0)
    return false;
  sw.K = K;
  sw.rho = rho;
  sw.zhat_ready = false;
  sw.delta.resize(static_cast<std::size_t>(K) * static_cast<std::size_t>(K));
  const bool fast = std::is_same<T, double>::value && K >= 3;
  if (fast) {
    sw.dd.resize(static_cast<std::size_t>(K));
    sw.pos.resize(static_cast<std::size_t>(K));
    for (fint j = 0; j < K; ++j) sw.pos[j] = static_cast<double>(j);
  }
  for (fint j = 0; j < K; ++j) {
    T* dj = sw.delta.data() + static_cast<std::size_t>(j) * K;
    if constexpr (std::is_same<T, double>::value) {
      if (fast && j < K - 1 &&
          secular_root_interior(K, j, sw.dlamda.data(), sw.w.data(), rho, dj, sw.d[j], sw.dd.data(), sw.pos.data()))
        continue;
    }
    if (lapack::laed4<T>(K, j + 1, sw.dlamda.data(), sw.w.data(), dj, rho, sw.d[j]) != 0) return false;
  }
  sw.order.resize(sn);
  for (index_t i = 0; i < n; ++i) sw.order[i] = i;
  std::stable_sort(sw.order.begin(), sw.order.end(), [&](index_t a, index_t b) { return sw.d[a] < sw.d[b]; });
  sw.lam.resize(sn);
  for (index_t i = 0; i < n; ++i) sw.lam[i] = sw.d[sw.order[i]];
  return true;
}

// All eigenvalues of the tridiagonal matrix (tw.d, tw.e after sytrd), ascending in tw.lam.
template <class T>
bool split_values(index_t n, TridiagWork<T>& tw, SplitWork<T>& sw) {
  if (!split_solve(n, tw.d.data(), tw.e.data(), tw, sw)) return false;
  tw.lam.assign(sw.lam.begin(), sw.lam.end());
  return true;
}

// Tridiagonal eigenvectors of the ascending eigenvalues lo..hi into out (n x k column-major,
// leading dimension ldo; sw.tmp with ldo = n when out is null); returns their first column.
template <class T>
T* split_vectors(index_t n, index_t lo, index_t hi, SplitWork<T>& sw, T* out, index_t ldo) {
  using lapack::fint;
  const index_t K = sw.K, n1 = sw.n1, n2 = n - n1, k = hi - lo + 1;
  const std::size_t sK = static_cast<std::size_t>(K);
  const index_t ctot1 = sw.coltyp[0], n12 = sw.coltyp[0] + sw.coltyp[1], n23 = sw.coltyp[1] + sw.coltyp[2];
  if (K > 2 && !sw.zhat_ready) {  // z recomputed from the roots (Gu-Eisenstat), as laed3 does
    sw.zhat.resize(sK);
    for (index_t i = 0; i < K; ++i) sw.zhat[i] = sw.delta[i * sK + i];
    for (index_t j = 0; j < K; ++j) {
      const T* dj = sw.delta.data() + j * sK;
      for (index_t i = 0; i < j; ++i) sw.zhat[i] *= dj[i] / (sw.dlamda[i] - sw.dlamda[j]);
      for (index_t i = j + 1; i < K; ++i) sw.zhat[i] *= dj[i] / (sw.dlamda[i] - sw.dlamda[j]);
    }
    for (index_t i = 0; i < K; ++i) sw.zhat[i] = std::copysign(std::sqrt(-sw.zhat[i]), sw.w[i]);
    sw.zhat_ready = true;
  }
  index_t roots = 0;
  for (index_t p = lo; p <= hi; ++p) roots += sw.order[p] < K;
  if (out == nullptr) {
    sw.tmp.resize(static_cast<std::size_t>(n * k));
    out = sw.tmp.data();
    ldo = n;
  }
  T* Y = out;
  if (roots > 0) {
    sw.S.resize(sK * static_cast<std::size_t>(roots));
    std::vector<T>& col = sw.Yr;  // scratch for one unpermuted vector
    col.resize(sK);
    index_t r = 0;
    for (index_t p = lo; p <= hi; ++p) {
      const index_t j = sw.order[p];
      if (j >= K) continue;
      T* s = sw.S.data() + r * sK;
      const T* dj = sw.delta.data() + j * sK;
      if (K == 1) {
        s[0] = T(1);
      } else if (K == 2) {
        s[0] = dj[sw.indxc[0] - 1];
        s[1] = dj[sw.indxc[1] - 1];
      } else {
        for (index_t i = 0; i < K; ++i) col[i] = sw.zhat[i] / dj[i];
        T lane[kSecularLanes] = {};  // independent partial sums (vectorised)
        index_t i = 0;
        for (; i + kSecularLanes <= K; i += kSecularLanes)
          for (int l = 0; l < kSecularLanes; ++l) lane[l] += col[i + l] * col[i + l];
        for (; i < K; ++i) lane[0] += col[i] * col[i];
        T nrm = 0;
        for (int l = 0; l < kSecularLanes; ++l) nrm += lane[l];
        const T inv = T(1) / std::sqrt(nrm);
        for (index_t i = 0; i < K; ++i) s[i] = col[sw.indxc[i] - 1] * inv;
      }
      ++r;
    }
    sw.Yr.resize(static_cast<std::size_t>(n * roots));
    T* R = sw.Yr.data();
    const fint ln = static_cast<fint>(n), lK = static_cast<fint>(K), lr = static_cast<fint>(roots);
    if (n12 > 0)
      lapack::gemm<T>('N', 'N', static_cast<fint>(n1), lr, static_cast<fint>(n12), T(1), sw.Q2.data(),
                      static_cast<fint>(n1), sw.S.data(), lK, T(0), R, ln);
    else
      for (index_t c = 0; c < roots; ++c) std::fill(R + c * n, R + c * n + n1, T(0));
    if (n23 > 0)
      lapack::gemm<T>('N', 'N', static_cast<fint>(n2), lr, static_cast<fint>(n23), T(1), sw.Q2.data() + n1 * n12,
                      static_cast<fint>(n2), sw.S.data() + ctot1, lK, T(0), R + n1, ln);
    else
      for (index_t c = 0; c < roots; ++c) std::fill(R + c * n + n1, R + c * n + n, T(0));
  }
  index_t r = 0;
  for (index_t p = lo; p <= hi; ++p) {
    const index_t j = sw.order[p];
    const T* src = j < K ? sw.Yr.data() + (r++) * n : sw.Q.data() + j * n;  // deflated: column j of Q
    std::copy(src, src + n, Y + (p - lo) * ldo);
  }
  return Y;
}

// Values first, then only the needed vectors: for the cone whose reassembly typically involves
// few eigenpairs (the spectraplex: only the eigenvalues above the threshold stay nonzero), the
// tridiagonal eigenvalues come from sterf (O(n^2), a third of stevd's cost at n = 100-300), the
// vector step picks the eigenpairs that change, and inverse iteration (stein) computes just those
// k tridiagonal vectors when k <= n / kSteinMaxFraction; otherwise (or when stein reports a
// failure) stevd solves the whole tridiagonal problem as in tridiag_eigen.
constexpr index_t kSteinMaxFraction = 5;

inline bool values_first_kind(Kind kind, index_t n) { return n >= 8 && kind == Kind::simplex; }

// sytrd, then eigenvalues only (ascending in tw.lam); tw.d0 / tw.e0 keep the tridiagonal matrix.
template <class T>
bool tridiag_values(index_t n, TridiagWork<T>& tw) {
  const lapack::fint ln = static_cast<lapack::fint>(n);
  if (!tridiag_reduce(n, tw)) return false;
  tw.d0.assign(tw.d.begin(), tw.d.end());
  tw.e0.assign(tw.e.begin(), tw.e.end());
  if (lapack::sterf<T>(ln, tw.d.data(), tw.e.data()) != 0) return false;
  tw.lam.swap(tw.d);
  return true;
}

// Tridiagonal eigenvectors for the ascending eigenvalues lo..hi of tw.lam, into tw.Z (n x k, k =
// hi - lo + 1) by stein, or all n into tw.Z by stevd (then *first = lo, else 0). False on failure.
template <class T>
bool tridiag_selected_vectors(index_t n, index_t lo, index_t hi, TridiagWork<T>& tw, index_t* first) {
  const lapack::fint ln = static_cast<lapack::fint>(n);
  const std::size_t sn = static_cast<std::size_t>(n);
  const index_t k = hi - lo + 1;
  if (k * kSteinMaxFraction <= n) {
    tw.Z.resize(sn * static_cast<std::size_t>(k));
    tw.iblock.assign(sn, 1);
    tw.ifail.resize(sn + 1);
    tw.ifail[sn] = ln;  // isplit: one block of n
    if (tw.iwork.size() < sn) tw.iwork.resize(sn);
    const lapack::fint info =
        lapack::stein<T>(ln, tw.d0.data(), tw.e0.data(), static_cast<lapack::fint>(k), tw.lam.data() + lo,
                         tw.iblock.data(), tw.ifail.data() + sn, tw.Z.data(), ln, tw.work.data(), tw.iwork.data(),
                         tw.ifail.data());
    if (info == 0) {
      *first = 0;
      return true;
    }
  }
  tw.Z.resize(sn * sn);
  tw.d.assign(tw.d0.begin(), tw.d0.end());
  tw.e.assign(tw.e0.begin(), tw.e0.end());
  if (tw.iwork.size() < 5 * sn + 3) tw.iwork.resize(5 * sn + 3);
  *first = lo;
  return lapack::stevd<T>('V', ln, tw.d.data(), tw.e.data(), tw.Z.data(), ln, tw.work.data(),
                          static_cast<lapack::fint>(tw.work.size()), tw.iwork.data(),
                          static_cast<lapack::fint>(tw.iwork.size())) == 0;
}

// ---------------------------------------------------------------- symmetric (eigenvalue) cones
template <class T>
struct SymWork {
  std::vector<T> A, w, work, B;
  std::vector<lapack::fint> iwork;
  std::vector<double> x, coef, dA, dV, dw, dG, dE;
  TridiagWork<T> tri;
  SplitWork<T> split;
  StepScratch scratch;
  index_t work_n = -1;  // size the syevd workspace was queried for
};

// P += sum_{i in [lo, hi]} coef[i] q_i q_i^T (or P = that sum when `full`), where column i - lo
// of Q (column-major, leading dimension n; scratch, may be scaled in place) is q_i. Two SYRKs, one
// per sign, so P stays exactly symmetric. P holds the symmetrised input on entry.
template <class T>
void reassemble_sym_range(T* P, T* Q, index_t lo, index_t hi, const double* coef, bool full, index_t n,
                          std::vector<T>& B) {
  index_t count = 0, positive = 0;
  for (index_t i = lo; i <= hi; ++i) {
    count += coef[i] != 0;
    positive += coef[i] > 0;
  }
  if (count == 0) {
    if (full) std::fill(P, P + n * n, T(0));
    return;
  }
  const lapack::fint ln = static_cast<lapack::fint>(n);
  T beta = full ? T(0) : T(1);
  if (positive == hi - lo + 1) {  // every coefficient positive (log-det): scale Q in place, one SYRK
    for (index_t i = lo; i <= hi; ++i) {
      const T f = static_cast<T>(std::sqrt(coef[i]));
      T* q = Q + (i - lo) * n;
      for (index_t r = 0; r < n; ++r) q[r] *= f;
    }
    lapack::syrk<T>('L', 'N', ln, static_cast<lapack::fint>(positive), T(1), Q, ln, beta, P, ln);
    fill_upper_from_lower(P, n, n);
    return;
  }
  B.resize(static_cast<std::size_t>(n * count));
  for (int sign = 1; sign >= -1; sign -= 2) {
    index_t p = 0;
    for (index_t i = lo; i <= hi; ++i) {
      const double c = coef[i];
      if (sign * c > 0) {
        const T f = static_cast<T>(std::sqrt(sign * c));
        const T* q = Q + (i - lo) * n;
        T* b = B.data() + p * n;
        for (index_t r = 0; r < n; ++r) b[r] = q[r] * f;
        ++p;
      }
    }
    if (p > 0) {
      lapack::syrk<T>('L', 'N', ln, static_cast<lapack::fint>(p), T(sign), B.data(), ln, beta, P, ln);
      beta = T(1);
    }
  }
  fill_upper_from_lower(P, n, n);
}

// What the vector step did to the n values `before` (eigenvalues or singular values): how many
// results are nonzero and how many changed. Every reassembly sums over the smaller set: the
// nonzero results (P = sum x_i q_i q_i^T, `full`) or the changes (P = X + sum (x_i - before_i) ...).
struct StepChange {
  index_t nonzero = 0, changed = 0;
  bool none() const { return changed == 0; }
  bool full() const { return nonzero <= changed; }
};

template <class S>
inline StepChange step_change(const double* x, const S* before, index_t n) {
  StepChange c;
  for (index_t i = 0; i < n; ++i) {
    c.nonzero += x[i] != 0;
    c.changed += x[i] != static_cast<double>(before[i]);
  }
  return c;
}

// Which eigenpairs enter the reassembly: the nonzero values (P = sum x_i q_i q_i^T) or the
// changed ones (P = X + sum (x_i - lam_i) q_i q_i^T), whichever are fewer. Fills coef and the
// index range [lo, hi] holding them; returns false when nothing changed.
inline bool reassembly_plan(const double* x, const double* lam, index_t n, std::vector<double>& coef, bool& full,
                            index_t& lo, index_t& hi) {
  const StepChange change = step_change(x, lam, n);
  if (change.none()) return false;
  full = change.full();
  coef.resize(static_cast<std::size_t>(n));
  lo = n, hi = -1;
  for (index_t i = 0; i < n; ++i) {
    coef[i] = full ? x[i] : x[i] - lam[i];
    if (coef[i] != 0) {
      lo = std::min(lo, i);
      hi = i;
    }
  }
  return true;
}

// The partial route for one matrix (P holds the symmetrised input). Returns false, with t and v
// untouched, when LAPACK fails; the caller then uses syevd.
template <class T>
bool project_sym_partial(T* P, index_t n, double& t, double& v, Kind kind, double param, bool dual, SymWork<T>& wk) {
  TridiagWork<T>& tw = wk.tri;
  tw.A.assign(P, P + n * n);
  const bool values_first = values_first_kind(kind, n);
  // log-det moves every eigenvalue (all vectors are needed: tridiag_eigen's full solve)
  const bool split = !values_first && n >= kSplitMinN && n <= kSplitMaxN && kind != Kind::log_epi;
  if (split) {
    if (!tridiag_reduce(n, tw) || !split_values(n, tw, wk.split)) return false;
  } else if (!(values_first ? tridiag_values(n, tw) : tridiag_eigen(n, tw))) {
    return false;
  }
  wk.x.resize(static_cast<std::size_t>(n));
  wk.dw.resize(static_cast<std::size_t>(n));
  for (index_t i = 0; i < n; ++i) wk.x[i] = wk.dw[i] = static_cast<double>(tw.lam[i]);
  double t1 = t, v1 = v;
  apply_step(kind, param, dual, t1, v1, wk.x.data(), n, wk.scratch);
  bool full = false;
  index_t lo = 0, hi = -1;
  if (!reassembly_plan(wk.x.data(), wk.dw.data(), n, wk.coef, full, lo, hi)) {
    t = t1, v = v1;
    return true;
  }
  if (hi < lo) {  // full form with no nonzero value
    std::fill(P, P + n * n, T(0));
    t = t1, v = v1;
    return true;
  }
  T* Z = nullptr;
  if (values_first) {
    index_t first = 0;
    if (!tridiag_selected_vectors(n, lo, hi, tw, &first)) return false;
    T* Zs = tw.Z.data() + first * n;
    if (!tridiag_backtransform(n, Zs, hi - lo + 1, tw)) return false;
    Z = Zs;
  } else if (split) {
    Z = split_vectors(n, lo, hi, wk.split);
    if (!tridiag_backtransform(n, Z, hi - lo + 1, tw)) return false;
  } else {
    Z = tridiag_vectors(n, lo, hi, tw);
  }
  if (Z == nullptr) return false;
  t = t1, v = v1;
  reassemble_sym_range<T>(P, Z, lo, hi, wk.coef.data(), full, n, wk.B);
  return true;
}

// Cheap proofs for one matrix (P holds the symmetrised input) that it is in the cone (P and t, v
// unchanged) or in its polar cone (P = 0, t = v = 0), without a decomposition; true when settled.
template <class T>
bool sym_shortcut(T* P, index_t n, double& t, double& v, Kind kind, double param, bool dual, SymWork<T>& wk) {
  const lapack::fint ln = static_cast<lapack::fint>(std::max<index_t>(n, 1));
  wk.A.resize(static_cast<std::size_t>(n * n));
  // Cholesky proves membership (PSD: of X or of -X; log-det: gives log det) without an
  // eigendecomposition; tried only when the diagonal's signs allow definiteness.
  const int dsign = (kind == Kind::nonneg || kind == Kind::log_epi) && !dual ? detail::diagonal_sign(P, n) : 0;
  if (kind == Kind::nonneg && !dual && dsign > 0) {
    std::copy(P, P + n * n, wk.A.begin());
    if (lapack::potrf<T>('L', ln, wk.A.data(), ln) == 0) return true;
  }
  if (kind == Kind::nonneg && !dual && dsign < 0) {
    for (index_t i = 0; i < n * n; ++i) wk.A[i] = -P[i];
    if (lapack::potrf<T>('L', ln, wk.A.data(), ln) == 0) {
      std::fill(P, P + n * n, T(0));
      return true;
    }
  }
  if (kind == Kind::log_epi && !dual && v > 0 && dsign > 0) {
    std::copy(P, P + n * n, wk.A.begin());
    if (lapack::potrf<T>('L', ln, wk.A.data(), ln) == 0) {
      double logdet = 0;
      for (index_t i = 0; i < n; ++i) logdet += 2 * std::log(static_cast<double>(wk.A[i * n + i]));
      if (std::isfinite(logdet) && -v * (logdet - static_cast<double>(n) * std::log(v)) <= t) return true;
    }
  }
  if (!dual && detail::norm_precheck_applies(kind)) {
    const int pre = detail::norm_precheck(kind, param, t, detail::frobenius(P, n * n), n);
    if (pre == unchanged) return true;
    if (pre == zero) {
      std::fill(P, P + n * n, T(0));
      t = v = 0;
      return true;
    }
  }
  return false;
}

// One matrix through LAPACK. t, v are updated in place.
template <class T>
void project_sym_lapack(const T* X, T* P, index_t n, double& t, double& v, Kind kind, double param, bool dual,
                        SymWork<T>& wk) {
  const double amax = detail::symmetrize_checked(X, P, n, "X");
  if (sym_shortcut<T>(P, n, t, v, kind, param, dual, wk)) return;  // also sizes wk.A
  const lapack::fint ln = static_cast<lapack::fint>(std::max<index_t>(n, 1));
  // Partial spectrum (all of it for log-det, where every eigenvalue moves; sytrd + stevd + ormtr
  // skip syevd's norm, scaling and copy passes). Double precision only:
  // single-precision MRRR (sstemr) loses orthogonality (measured 3e-5 at n = 40), syevd does not.
  if (std::is_same<T, double>::value && tridiag_safe_scale<T>(amax) &&
      project_sym_partial<T>(P, n, t, v, kind, param, dual, wk))
    return;
  std::copy(P, P + n * n, wk.A.begin());
  wk.w.resize(static_cast<std::size_t>(n));
  if (wk.work_n != n) {  // workspace query once per size
    T wq;
    lapack::fint iq;
    lapack::syevd<T>('V', 'L', ln, wk.A.data(), ln, wk.w.data(), &wq, -1, &iq, -1);
    wk.work.resize(static_cast<std::size_t>(wq) + 1);
    wk.iwork.resize(static_cast<std::size_t>(iq) + 1);
    wk.work_n = n;
  }
  lapack::fint info = lapack::syevd<T>('V', 'L', ln, wk.A.data(), ln, wk.w.data(), wk.work.data(),
                                       static_cast<lapack::fint>(wk.work.size()), wk.iwork.data(),
                                       static_cast<lapack::fint>(wk.iwork.size()));
  if (info != 0) {  // retry with syevr
    std::vector<T> a(P, P + n * n), z(static_cast<std::size_t>(n * n));
    std::vector<lapack::fint> isuppz(static_cast<std::size_t>(2 * n));
    lapack::fint found = 0, iq;
    T wq;
    lapack::syevr<T>('V', 'A', 'L', ln, a.data(), ln, T(0), T(0), 0, 0, T(0), &found, wk.w.data(), z.data(), ln,
                     isuppz.data(), &wq, -1, &iq, -1);
    std::vector<T> work(static_cast<std::size_t>(wq) + 1);
    std::vector<lapack::fint> iwork(static_cast<std::size_t>(iq) + 1);
    info = lapack::syevr<T>('V', 'A', 'L', ln, a.data(), ln, T(0), T(0), 0, 0, T(0), &found, wk.w.data(), z.data(),
                            ln, isuppz.data(), work.data(), static_cast<lapack::fint>(work.size()), iwork.data(),
                            static_cast<lapack::fint>(iwork.size()));
    if (info != 0) throw std::runtime_error("randnla: the symmetric eigensolver failed (info " + std::to_string(info) + ")");
    std::copy(z.begin(), z.end(), wk.A.begin());
  }
  wk.x.resize(static_cast<std::size_t>(n));
  wk.dw.resize(static_cast<std::size_t>(n));
  for (index_t i = 0; i < n; ++i) wk.x[i] = wk.dw[i] = static_cast<double>(wk.w[i]);
  apply_step(kind, param, dual, t, v, wk.x.data(), n, wk.scratch);
  bool full = false;
  index_t lo = 0, hi = -1;
  if (!reassembly_plan(wk.x.data(), wk.dw.data(), n, wk.coef, full, lo, hi)) return;
  if (hi < lo) {
    std::fill(P, P + n * n, T(0));
    return;
  }
  reassemble_sym_range<T>(P, wk.A.data() + lo * n, lo, hi, wk.coef.data(), full, n, wk.B);
}

// P (lower triangle, then mirrored) = [P +] sum_j c_j v_j v_j^T over the k columns of V (n x k
// row-major; c carries any scaling of the columns), one rank-one row update
// per column with a nonzero coefficient over contiguous rows of V^T (Vt scratch, k x n).
template <class T>
void reassemble_small(T* P, index_t n, const double* V, index_t k, const double* c, bool full, double* acc,
                      double* Vt) {
  for (index_t i = 0; i < n; ++i)
    for (index_t j = 0; j < k; ++j) Vt[j * n + i] = V[i * k + j];
  for (index_t i = 0; i < n; ++i)
    for (index_t j = 0; j <= i; ++j) acc[i * n + j] = full ? 0.0 : static_cast<double>(P[i * n + j]);
  for (index_t q = 0; q < k; ++q) {
    if (c[q] == 0) continue;
    const double* __restrict v = Vt + q * n;
    for (index_t i = 0; i < n; ++i) {
      const double a = c[q] * v[i];
      double* __restrict row = acc + i * n;
      for (index_t j = 0; j <= i; ++j) row[j] += a * v[j];
    }
  }
  for (index_t i = 0; i < n; ++i) {
    for (index_t j = 0; j <= i; ++j) {
      const T s = static_cast<T>(acc[i * n + j]);
      P[i * n + j] = s;
      P[j * n + i] = s;
    }
  }
}

// Vector step and reassembly for one small matrix, given its eigenvalues w (ascending, double,
// overwritten) and eigenvectors V (columns, row-major); P holds the symmetrised input.
template <class T>
void finish_sym_small(T* P, index_t n, double& t, double& v, Kind kind, double param, bool dual, double* w,
                      const double* V, SymWork<T>& wk) {
  wk.x.resize(static_cast<std::size_t>(n));
  double* x = wk.x.data();
  for (index_t i = 0; i < n; ++i) x[i] = w[i];
  apply_step(kind, param, dual, t, v, x, n, wk.scratch);
  const StepChange change = step_change(x, w, n);
  if (change.none()) return;
  const bool full = change.full();
  for (index_t i = 0; i < n; ++i) w[i] = full ? x[i] : x[i] - w[i];  // coefficients
  wk.dG.resize(static_cast<std::size_t>(n * n));
  wk.dE.resize(static_cast<std::size_t>(n * n));
  reassemble_small(P, n, V, n, w, full, wk.dG.data(), wk.dE.data());
}

// Relative off-diagonal threshold of the Jacobi sweeps: sqrt(n) eps (randnla.linalg.eigh's default).
inline double batch_jacobi_tol(index_t n) {
  return std::sqrt(static_cast<double>(std::max<index_t>(n, 1))) * std::numeric_limits<double>::epsilon();
}

// Eigenpairs of one symmetric matrix (row-major, double) by the batched Jacobi solver of
// randnla/jacobi, run on a batch of one; false if it did not converge.
inline bool jacobi_eigh_one(index_t n, const double* A, double* w, double* V) {
  jacobi::EighOptions options;
  options.n_threads = 1;
  options.tol = batch_jacobi_tol(n);
  unsigned char converged = 0;
  jacobi::EighReport report;
  report.converged = &converged;
  jacobi::eigh_batch<double>(A, 1, static_cast<int>(n), w, V, options, report);
  return converged != 0;
}

// One small matrix with the in-house tridiagonal QL solver (double precision, no BLAS): the
// eigenvalues, the vector step, then only the eigenvectors that enter the reassembly (the
// changed or the nonzero ones, whichever are fewer). Jacobi if QL does not converge.
template <class T>
void project_sym_small_core(T* P, index_t n, double& t, double& v, Kind kind, double param, bool dual,
                            SymWork<T>& wk) {
  const std::size_t sn = static_cast<std::size_t>(n);
  wk.dA.resize(sn * sn);
  wk.dV.resize(sn * sn);
  wk.dw.resize(sn);
  double* A = wk.dA.data();
  double* V = wk.dV.data();
  double* w = wk.dw.data();
  const double amax = detail::max_abs(P, n * n);
  const double inv = amax > 0 ? 1 / amax : 1.0, sc = amax > 0 ? amax : 1.0;
  for (index_t i = 0; i < n * n; ++i) A[i] = static_cast<double>(P[i]) * inv;
  thread_local SmallEigh se;
  if (!se.values(n, A)) {
    for (index_t i = 0; i < n * n; ++i) A[i] = static_cast<double>(P[i]) * inv;
    if (!jacobi_eigh_one(n, A, w, V)) throw std::runtime_error("randnla: the small symmetric eigensolver failed");
    for (index_t i = 0; i < n; ++i) w[i] *= sc;
    finish_sym_small(P, n, t, v, kind, param, dual, w, V, wk);
    return;
  }
  wk.x.resize(sn);
  double* x = wk.x.data();
  for (index_t i = 0; i < n; ++i) x[i] = w[i] = se.d[i] * sc;
  apply_step(kind, param, dual, t, v, x, n, wk.scratch);
  const StepChange change = step_change(x, w, n);
  if (change.none()) return;
  const bool full = change.full();
  wk.coef.resize(sn);
  thread_local std::vector<index_t> cols;
  cols.resize(sn);
  index_t k = 0;
  for (index_t i = 0; i < n; ++i) {
    const double c = full ? x[i] : x[i] - w[i];
    if (c != 0) {
      wk.coef[k] = c;
      cols[k++] = i;
    }
  }
  if (k == 0) {  // full form with no nonzero value
    std::fill(P, P + n * n, T(0));
    return;
  }
  se.vectors(cols.data(), k, V);
  wk.dG.resize(sn * sn);
  reassemble_small(P, n, V, k, wk.coef.data(), full, wk.dG.data(), A);
}

template <class T>
void project_sym_small(const T* X, T* P, index_t n, double& t, double& v, Kind kind, double param, bool dual,
                       SymWork<T>& wk) {
  detail::symmetrize_checked(X, P, n, "X");
  project_sym_small_core(P, n, t, v, kind, param, dual, wk);
}

// Batched symmetric cone projection. X, P: batch x n x n (row-major, P may not alias X);
// t, v: batch values updated in place (double).
template <class T>
void project_sym_batch(const T* X, T* P, double* t, double* v, index_t batch, index_t n, Kind kind, double param,
                       bool dual, int n_threads) {
  RANDNLA_REQUIRE(n >= 1, "X must have n >= 1, got n = ", n);
  const index_t nn = n * n;
  if (n <= kSymBatchJacobiMaxN) {
    // Small matrices: randnla/jacobi's batched Jacobi (SIMD across matrices, double precision;
    // a matrix gets the same result alone or in any batch), then the vector step and reassembly
    // matrix by matrix.
    const int threads = std::max(1, resolve_threads(n_threads));
    // Buffers persist across calls on this thread (page faults on fresh allocations cost as much
    // as the vector step here), released after calls above kKeepBatchDoubles; the checks run on
    // the calling thread (one pass over the data costs less than waking the team).
    thread_local std::vector<double> Dbuf, Wbuf, Vbuf;
    const std::size_t big = static_cast<std::size_t>(batch * nn), small = static_cast<std::size_t>(batch * n);
    if (Dbuf.size() < big) Dbuf.resize(big);
    if (Vbuf.size() < big) Vbuf.resize(big);
    if (Wbuf.size() < small) Wbuf.resize(small);
    struct Release {
      ~Release() {
        if (Dbuf.size() > kKeepBatchDoubles) Dbuf = std::vector<double>(), Vbuf = std::vector<double>(),
                                             Wbuf = std::vector<double>();
      }
    } release;
    double* D = Dbuf.data();
    double* W = Wbuf.data();
    double* V = Vbuf.data();
    std::vector<unsigned char> converged(static_cast<std::size_t>(batch), 0);
    for (index_t b = 0; b < batch; ++b) {
      detail::symmetrize_checked(X + b * nn, P + b * nn, n, "X");
      for (index_t i = 0; i < nn; ++i) D[b * nn + i] = static_cast<double>(P[b * nn + i]);
    }
    jacobi::EighOptions options;
    options.n_threads = n_threads;
    options.tol = batch_jacobi_tol(n);
    jacobi::EighReport report;
    report.converged = converged.data();
    jacobi::eigh_batch<double>(D, batch, static_cast<int>(n), W, V, options, report);
    parallel_for_chunks(batch, 64, threads, [&](index_t begin, index_t end, index_t) {
      SymWork<T> wk;
      for (index_t b = begin; b < end; ++b) {
        if (converged[b])
          finish_sym_small<T>(P + b * nn, n, t[b], v[b], kind, param, dual, W + b * n, V + b * nn, wk);
        else
          project_sym_small<T>(X + b * nn, P + b * nn, n, t[b], v[b], kind, param, dual, wk);
      }
    });
    return;
  }
  if (n <= kJacobiMaxN) {
    const int threads = std::max(1, resolve_threads(n_threads));
    // Fixed chunking independent of the thread count: every matrix is computed the same way.
    const index_t chunk = 64;
    parallel_for_chunks(batch, chunk, threads, [&](index_t begin, index_t end, index_t) {
      // per-thread buffers of at most a few n x n doubles, kept between calls (no allocation in
      // the inner loop of a solver)
      thread_local SymWork<T> wk;
      for (index_t b = begin; b < end; ++b)
        project_sym_small<T>(X + b * nn, P + b * nn, n, t[b], v[b], kind, param, dual, wk);
    });
    return;
  }
  if (n <= small_ql_max_n(kind)) {
    // One matrix after the other, as the LAPACK route (the shortcuts' Cholesky calls LAPACK): the
    // shortcuts, then the small QL route, which beats sytrd + stevd + ormtr up to this size.
    thread_local SymWork<T> wk;
    for (index_t b = 0; b < batch; ++b) {
      detail::symmetrize_checked(X + b * nn, P + b * nn, n, "X");
      if (!sym_shortcut<T>(P + b * nn, n, t[b], v[b], kind, param, dual, wk))
        project_sym_small_core<T>(P + b * nn, n, t[b], v[b], kind, param, dual, wk);
    }
    return;
  }
  // Workspaces persist across calls on this thread (no allocation, page faults or zeroing on the
  // hot path of an iterative solver); those of large matrices are released after the call.
  thread_local SymWork<T> wk;
  for (index_t b = 0; b < batch; ++b) project_sym_lapack<T>(X + b * nn, P + b * nn, n, t[b], v[b], kind, param, dual, wk);
  if (n > kKeepWorkspaceMaxN) wk = SymWork<T>();
}

// ---------------------------------------------------------------- unitarily invariant (singular value) cones
template <class T>
struct SvdWork {
  std::vector<T> A, s, U, VT, work, B, C;
  std::vector<lapack::fint> iwork;
  std::vector<double> x, sv, coef, dX, dA, dG, dE, dw, dM;
  std::vector<index_t> order;
  TridiagWork<T> tri;
  StepScratch scratch;
  index_t work_m = -1, work_n = -1;  // shape the gesdd workspace was queried for
};

// The singular-value cones change only the singular values above a threshold theta (mu for the
// l1 kinds: x = max(s - mu, 0); tau for the l-infinity kinds: x = min(s, tau)). With
// theta >= kGramMinRatio * s_max, P = Y g(G) with G = Y^T Y (or the rows' Gram matrix) and
// g(lambda) = f(sqrt(lambda)) / sqrt(lambda) constant (0 or 1) below theta^2. g has Lipschitz
// constant <= 1 / (2 theta^2) on G's spectrum, so G's backward error c eps s_max^2 moves P by at
// most c eps s_max (s_max / theta)^2 / 2 <= 200 c eps s_max: the eigendecomposition of the Gram
// matrix is accurate enough although its small eigenvalues are not (they only need to be below
// theta^2). The route costs one SYRK, one tridiagonal reduction of the r x r Gram matrix, the k
// changed eigenvectors and three thin GEMMs, against gesdd's bidiagonalisation and full vectors.
constexpr double kGramMinRatio = 0.05;

inline bool gram_kind(Kind kind) {
  return kind == Kind::l1 || kind == Kind::linf || kind == Kind::l1_ball || kind == Kind::linf_ball;
}

// Y: m x n column-major, copied in P. Double precision only (float32 keeps gesdd: the squared
// condition of the Gram matrix costs too much of single precision). Returns false (t untouched)
// when the route does not apply; the caller then runs gesdd.
template <class T>
bool project_svd_gram(T* P, index_t m, index_t n, double& t, Kind kind, double param, SvdWork<T>& wk) {
  if constexpr (!std::is_same<T, double>::value) {
    (void)P, (void)m, (void)n, (void)t, (void)kind, (void)param, (void)wk;
    return false;
  } else {
    if (!gram_kind(kind)) return false;
    const double amax = detail::max_abs(P, m * n);
    if (!(amax > 1e-100 && amax < 1e100)) return false;
    const index_t r = std::min(m, n);
    const bool tall = m >= n;  // G = Y^T Y (right vectors) or Y Y^T (left vectors)
    const lapack::fint lm = static_cast<lapack::fint>(m), ln = static_cast<lapack::fint>(n),
                       lr = static_cast<lapack::fint>(r);
    TridiagWork<double>& tw = wk.tri;
    tw.A.resize(static_cast<std::size_t>(r * r));
    if (tall)
      lapack::syrk<double>('L', 'T', ln, lm, 1.0, P, lm, 0.0, tw.A.data(), lr);
    else
      lapack::syrk<double>('L', 'N', lm, ln, 1.0, P, lm, 0.0, tw.A.data(), lr);
    if (!tridiag_eigen(r, tw)) return false;
    wk.x.resize(static_cast<std::size_t>(r));
    wk.sv.resize(static_cast<std::size_t>(r));
    for (index_t i = 0; i < r; ++i) wk.x[i] = wk.sv[i] = std::sqrt(std::max(tw.lam[r - 1 - i], 0.0));  // descending
    const double smax = wk.sv[0];
    double t1 = t, v1 = 0;
    if (apply_step(kind, param, false, t1, v1, wk.x.data(), r, wk.scratch) != moved) return false;
    const bool l1 = kind == Kind::l1 || kind == Kind::l1_ball;
    const double theta = l1 ? smax - wk.x[0] : wk.x[0];
    if (!(smax > 0 && theta >= kGramMinRatio * smax)) return false;
    bool full = false;
    index_t lo = 0, hi = -1;  // descending indices
    if (!reassembly_plan(wk.x.data(), wk.sv.data(), r, wk.coef, full, lo, hi)) {
      t = t1;
      return true;
    }
    if (hi < lo) {
      std::fill(P, P + m * n, 0.0);
      t = t1;
      return true;
    }
    // Descending indices [0, hi] are ascending [r - 1 - hi, r - 1]: eigenvector column j belongs
    // to descending index hi - j.
    const index_t k = hi + 1;
    const double* Z = tridiag_vectors(r, r - k, r - 1, tw);
    if (Z == nullptr) return false;
    wk.B.resize(static_cast<std::size_t>(std::max(m, n) * k));
    double* B = wk.B.data();
    const double beta = full ? 0.0 : 1.0;
    const lapack::fint lk = static_cast<lapack::fint>(k);
    if (tall) {  // B = Y Z (m x k), columns scaled by coef / s; P = beta Y + B Z^T
      lapack::gemm<double>('N', 'N', lm, lk, ln, 1.0, P, lm, Z, ln, 0.0, B, lm);
      for (index_t j = 0; j < k; ++j) {
        const index_t i = hi - j;
        const double f = wk.sv[i] > 0 ? wk.coef[i] / wk.sv[i] : 0.0;
        for (index_t q = 0; q < m; ++q) B[j * m + q] *= f;
      }
      lapack::gemm<double>('N', 'T', lm, ln, lk, 1.0, B, lm, Z, ln, beta, P, lm);
    } else {  // B = Z^T Y (k x n), rows scaled; P = beta Y + Z B
      lapack::gemm<double>('T', 'N', lk, ln, lm, 1.0, Z, lm, P, lm, 0.0, B, lk);
      for (index_t q = 0; q < n; ++q)
        for (index_t j = 0; j < k; ++j) {
          const index_t i = hi - j;
          B[q * k + j] *= wk.sv[i] > 0 ? wk.coef[i] / wk.sv[i] : 0.0;
        }
      lapack::gemm<double>('N', 'N', lm, ln, lk, 1.0, Z, lm, B, lk, beta, P, lm);
    }
    t = t1;
    return true;
  }
}

// Reassembly of the small Gram routes: with V (r x nv, row-major, eigenvectors of the Gram
// matrix as columns; nv = r when omitted) and f (per column: coefficient / singular value),
// P = [X +] X V diag(f) V^T (tall, r = cols) or [X +] V diag(f) V^T X (wide, r = rows). Xd is X
// in double. All loops are row updates (axpy) over contiguous memory, which vectorise; M
// (rows x cols), Vt (r x r) and row (max(m, n)) are scratch.
template <class T>
void gram_reassemble_small(const double* Xd, T* P, index_t rows, index_t cols, const double* V, const double* f,
                           bool full, double* M, double* Vt, double* row, index_t nv = -1) {
  const bool tall = rows >= cols;
  const index_t r = std::min(rows, cols);
  if (nv < 0) nv = r;
  // Through the nv columns rather than the r x r matrix M: tall, P = [X +] ((X V) diag(f)) V^T;
  // wide, P = [X +] V (diag(f) (V^T X)); M holds X V (rows x nv) or V^T X (nv x cols).
  if (tall) {
    for (index_t i = 0; i < r; ++i)
      for (index_t k = 0; k < nv; ++k) Vt[k * r + i] = V[i * nv + k];
    for (index_t i = 0; i < rows; ++i) {
      double* __restrict y = M + i * nv;
      std::fill(y, y + nv, 0.0);
      for (index_t k = 0; k < cols; ++k) {
        const double a = Xd[i * cols + k];
        if (a == 0) continue;
        const double* __restrict vk = V + k * nv;
        for (index_t q = 0; q < nv; ++q) y[q] += a * vk[q];
      }
      for (index_t q = 0; q < nv; ++q) y[q] *= f[q];
    }
  } else {
    std::fill(M, M + nv * cols, 0.0);
    for (index_t k = 0; k < rows; ++k) {
      const double* __restrict xk = Xd + k * cols;
      for (index_t q = 0; q < nv; ++q) {
        const double a = V[k * nv + q];
        double* __restrict z = M + q * cols;
        for (index_t j = 0; j < cols; ++j) z[j] += a * xk[j];
      }
    }
    for (index_t q = 0; q < nv; ++q)
      for (index_t j = 0; j < cols; ++j) M[q * cols + j] *= f[q];
  }
  for (index_t i = 0; i < rows; ++i) {
    double* __restrict acc = row;
    std::fill(acc, acc + cols, 0.0);
    for (index_t q = 0; q < nv; ++q) {
      const double a = tall ? M[i * nv + q] : V[i * nv + q];
      if (a == 0) continue;
      const double* __restrict src = tall ? Vt + q * r : M + q * cols;
      for (index_t j = 0; j < cols; ++j) acc[j] += a * src[j];
    }
    for (index_t j = 0; j < cols; ++j) P[i * cols + j] = static_cast<T>(full ? acc[j] : Xd[i * cols + j] + acc[j]);
  }
}

// Lower triangle and mirror of the Gram matrix G = A^T A (tall, r = cols) or A A^T (wide, r = rows)
// of the row-major rows x cols matrix A, by row updates; At (wide only, cols x rows) is scratch.
inline void gram_small(const double* A, index_t rows, index_t cols, double* G, double* At) {
  const bool tall = rows >= cols;
  const index_t r = std::min(rows, cols), len = tall ? rows : cols;
  const double* B = A;  // len x r row-major, G = B^T B
  if (!tall) {
    for (index_t i = 0; i < rows; ++i)
      for (index_t q = 0; q < cols; ++q) At[q * rows + i] = A[i * cols + q];
    B = At;
  }
  std::fill(G, G + r * r, 0.0);
  for (index_t q = 0; q < len; ++q) {
    const double* __restrict b = B + q * r;
    for (index_t i = 0; i < r; ++i) {
      const double a = b[i];
      double* __restrict gi = G + i * r;
      for (index_t j = 0; j <= i; ++j) gi[j] += a * b[j];
    }
  }
  for (index_t i = 0; i < r; ++i)
    for (index_t j = 0; j < i; ++j) G[j * r + i] = G[i * r + j];
}

// The Gram route for one small matrix (r = min(m, n) <= kGramSmallMaxR, max(m, n) <= 2 kGramSmallMaxR):
// as project_svd_gram (same accuracy bound and threshold), with the in-house tridiagonal QL solver
// on the Gram matrix and plain loops for the products, since LAPACK's per-call overheads dominate
// at these sizes. P (row-major rows x cols) holds X. Returns false (t untouched) when the route
// does not apply; the caller then takes the LAPACK routes.
template <class T>
bool project_svd_gram_small(T* P, index_t rows, index_t cols, double& t, Kind kind, double param, SvdWork<T>& wk) {
  const index_t r = std::min(rows, cols), count = rows * cols;
  if (!gram_kind(kind) || r < 2 || r > kGramSmallMaxR || std::max(rows, cols) > 2 * kGramSmallMaxR) return false;
  const double amax = detail::max_abs(P, count);
  if (!(amax > 0)) return false;
  const std::size_t sr = static_cast<std::size_t>(r);
  wk.dX.resize(static_cast<std::size_t>(count));
  wk.dA.resize(static_cast<std::size_t>(count));
  wk.dG.resize(sr * sr);
  wk.dM.resize(sr * sr);
  wk.dE.resize(sr);
  wk.dw.resize(sr);
  wk.x.resize(sr);
  wk.sv.resize(sr);
  wk.coef.resize(sr);
  wk.order.resize(sr);
  double* Xd = wk.dX.data();
  double* A = wk.dA.data();
  double* G = wk.dG.data();
  double* w = wk.dw.data();
  const double inv = 1 / amax;
  for (index_t i = 0; i < count; ++i) {
    Xd[i] = static_cast<double>(P[i]);
    A[i] = Xd[i] * inv;
  }
  wk.dM.resize(std::max(sr * sr, static_cast<std::size_t>(count)));
  gram_small(A, rows, cols, G, wk.dM.data());
  thread_local SmallEigh se;  // eigenvalues first, then only the vectors with a nonzero f
  if (!se.values(r, G)) return false;
  std::copy(se.d.begin(), se.d.begin() + r, w);
  index_t* order = wk.order.data();
  for (index_t i = 0; i < r; ++i) order[i] = i;
  std::sort(order, order + r, [&](index_t a, index_t b) { return w[a] > w[b]; });
  double* x = wk.x.data();
  double* sv = wk.sv.data();
  for (index_t i = 0; i < r; ++i) x[i] = sv[i] = amax * std::sqrt(std::max(w[order[i]], 0.0));  // descending
  double t1 = t, v1 = 0;
  if (apply_step(kind, param, false, t1, v1, x, r, wk.scratch) != moved) return false;
  const bool l1 = kind == Kind::l1 || kind == Kind::l1_ball;
  const double smax = sv[0], theta = l1 ? smax - x[0] : x[0];
  if (!(smax > 0 && theta >= kGramMinRatio * smax)) return false;
  const bool full = step_change(x, sv, r).full();
  double* f = wk.coef.data();  // per eigenvector column
  for (index_t i = 0; i < r; ++i) {
    const double c = full ? x[i] : x[i] - sv[i];
    f[order[i]] = (c == 0 || sv[i] == 0) ? 0.0 : c / sv[i];
  }
  thread_local std::vector<index_t> cols_used;
  cols_used.resize(sr);
  index_t nv = 0;
  for (index_t j = 0; j < r; ++j)
    if (f[j] != 0) {
      f[nv] = f[j];
      cols_used[nv++] = j;
    }
  if (nv == 0) {  // full form with no nonzero value (else nothing moved: P holds X)
    if (full) std::fill(P, P + count, T(0));
    t = t1;
    return true;
  }
  se.vectors(cols_used.data(), nv, G);  // G: r x nv
  wk.dE.resize(std::max(sr * sr, static_cast<std::size_t>(std::max(rows, cols))) + sr * sr);
  gram_reassemble_small(Xd, P, rows, cols, G, f, full, wk.dM.data(), wk.dE.data(), wk.dE.data() + sr * sr, nv);
  t = t1;
  return true;
}

// X is rows x cols row-major, i.e. the column-major cols x rows matrix Y = X^T; the projection of
// Y's singular values gives Y' whose column-major storage is X' row-major.
template <class T>
void project_svd_lapack(const T* X, T* P, index_t rows, index_t cols, double& t, Kind kind, double param, bool dual,
                        SvdWork<T>& wk) {
  const index_t count = rows * cols;
  RANDNLA_REQUIRE(all_finite(X, count), "X contains NaN or infinity");
  std::copy(X, X + count, P);
  const index_t m = cols, n = rows, r = std::min(m, n);
  double v = 0;
  if (!dual) {
    const int pre = detail::norm_precheck(kind, param, t, detail::frobenius(P, count), r);
    if (pre == unchanged) return;
    if (pre == zero) {
      std::fill(P, P + count, T(0));
      t = 0;
      return;
    }
  }
  if (!dual && project_svd_gram_small<T>(P, rows, cols, t, kind, param, wk)) return;
  if (!dual && project_svd_gram<T>(P, m, n, t, kind, param, wk)) return;
  const lapack::fint lm = static_cast<lapack::fint>(m), ln = static_cast<lapack::fint>(n),
                     lr = static_cast<lapack::fint>(r);
  wk.A.assign(P, P + count);
  wk.s.resize(static_cast<std::size_t>(r));
  wk.U.resize(static_cast<std::size_t>(m * r));
  wk.VT.resize(static_cast<std::size_t>(r * n));
  wk.iwork.resize(static_cast<std::size_t>(8 * r));
  if (wk.work_m != m || wk.work_n != n) {  // workspace query once per shape
    T wq;
    lapack::gesdd<T>('S', lm, ln, wk.A.data(), lm, wk.s.data(), wk.U.data(), lm, wk.VT.data(), lr, &wq, -1,
                     wk.iwork.data());
    wk.work.resize(static_cast<std::size_t>(wq) + 1);
    wk.work_m = m, wk.work_n = n;
  }
  const lapack::fint info = lapack::gesdd<T>('S', lm, ln, wk.A.data(), lm, wk.s.data(), wk.U.data(), lm, wk.VT.data(),
                                             lr, wk.work.data(), static_cast<lapack::fint>(wk.work.size()),
                                             wk.iwork.data());
  if (info != 0) throw std::runtime_error("randnla: the SVD (gesdd) failed (info " + std::to_string(info) + ")");
  wk.x.resize(static_cast<std::size_t>(r));
  for (index_t i = 0; i < r; ++i) wk.x[i] = static_cast<double>(wk.s[i]);
  apply_step(kind, param, dual, t, v, wk.x.data(), r, wk.scratch);
  const StepChange change = step_change(wk.x.data(), wk.s.data(), r);
  if (change.none()) return;
  const bool full = change.full();
  const index_t p_max = std::max<index_t>(std::max(change.nonzero, change.changed), 1);
  wk.B.resize(static_cast<std::size_t>(m * p_max));
  wk.C.resize(static_cast<std::size_t>(p_max * n));
  index_t p = 0;
  for (index_t i = 0; i < r; ++i) {
    const double c = full ? wk.x[i] : wk.x[i] - static_cast<double>(wk.s[i]);
    if (c == 0) continue;
    for (index_t k = 0; k < m; ++k) wk.B[p * m + k] = static_cast<T>(c * static_cast<double>(wk.U[i * m + k]));
    ++p;
  }
  // Rows of VT for the same indices, packed as a p x n column-major matrix.
  p = 0;
  for (index_t i = 0; i < r; ++i) {
    const double c = full ? wk.x[i] : wk.x[i] - static_cast<double>(wk.s[i]);
    if (c == 0) continue;
    for (index_t j = 0; j < n; ++j) wk.C[j * p_max + p] = wk.VT[j * r + i];
    ++p;
  }
  if (p == 0) {
    if (full) std::fill(P, P + count, T(0));
    return;
  }
  lapack::gemm<T>('N', 'N', lm, ln, static_cast<lapack::fint>(p), T(1), wk.B.data(), lm, wk.C.data(),
                  static_cast<lapack::fint>(p_max), full ? T(0) : T(1), P, lm);
}

// One small matrix through one-sided Jacobi (double precision, no BLAS). Works on Y = X or X^T
// with at least as many rows as columns; P = Y_rot diag(x / s) V^T (+ Y for the changed-only form).
template <class T>
void project_svd_small(const T* X, T* P, index_t rows, index_t cols, double& t, Kind kind, double param, bool dual,
                       SymWork<T>& wk) {
  const index_t count = rows * cols;
  RANDNLA_REQUIRE(all_finite(X, count), "X contains NaN or infinity");
  const bool trans = rows < cols;
  const index_t m = trans ? cols : rows, n = trans ? rows : cols;
  wk.dA.resize(static_cast<std::size_t>(m * n));
  wk.dV.resize(static_cast<std::size_t>(n * n));
  wk.dw.resize(static_cast<std::size_t>(n));
  wk.x.resize(static_cast<std::size_t>(n));
  double* A = wk.dA.data();
  double* V = wk.dV.data();
  double* sv = wk.dw.data();
  double* x = wk.x.data();
  double amax = 0;
  for (index_t i = 0; i < count; ++i) amax = std::max(amax, std::abs(static_cast<double>(X[i])));
  for (index_t i = 0; i < count; ++i) P[i] = X[i];
  double v = 0;
  if (!dual) {
    const int pre = detail::norm_precheck(kind, param, t, detail::frobenius(X, count), n);
    if (pre == unchanged) return;
    if (pre == zero) {
      std::fill(P, P + count, T(0));
      t = 0;
      return;
    }
  }
  const double inv = amax > 0 ? 1 / amax : 1.0;
  for (index_t i = 0; i < m; ++i)
    for (index_t j = 0; j < n; ++j)
      A[i * n + j] = static_cast<double>(trans ? X[j * cols + i] : X[i * cols + j]) * inv;
  // Precondition: V0 = eigenvectors of A^T A (tridiagonal QL), A <- A V0; then one-sided Jacobi
  // sweeps, which converge quadratically from there, give the accurate SVD.
  wk.B.resize(0);
  wk.dG.resize(static_cast<std::size_t>(n * n));
  wk.dE.resize(static_cast<std::size_t>(std::max(m, n) * n));
  double* G = wk.dG.data();
  double* E = wk.dE.data();
  for (index_t i = 0; i < n; ++i)
    for (index_t j = 0; j <= i; ++j) {
      double acc = 0;
      for (index_t k = 0; k < m; ++k) acc += A[k * n + i] * A[k * n + j];
      G[i * n + j] = G[j * n + i] = acc;
    }
  bool keep = false;
  if (n > 1 && tridiagonal_ql_eigh(n, G, sv)) {  // G now holds the eigenvectors
    for (index_t i = 0; i < m; ++i) {
      for (index_t j = 0; j < n; ++j) {
        double acc = 0;
        for (index_t k = 0; k < n; ++k) acc += A[i * n + k] * G[k * n + j];
        E[i * n + j] = acc;
      }
    }
    std::copy(E, E + m * n, A);
    std::copy(G, G + n * n, V);
    keep = true;
  }
  onesided_jacobi_svd(m, n, A, sv, V, keep);
  for (index_t j = 0; j < n; ++j) sv[j] *= amax > 0 ? amax : 1.0;
  for (index_t j = 0; j < n; ++j) x[j] = sv[j];
  apply_step(kind, param, dual, t, v, x, n, wk.scratch);
  const StepChange change = step_change(x, sv, n);
  if (change.none()) return;
  const bool full = change.full();
  // column j of A (scaled) is s_j u_j / amax: coefficient f_j multiplies it so that the sum is
  // sum_j c_j u_j v_j^T with c_j = x_j (full) or x_j - s_j (changed only).
  for (index_t j = 0; j < n; ++j) {
    const double c = full ? x[j] : x[j] - sv[j];
    sv[j] = (c == 0 || sv[j] == 0) ? 0.0 : c / sv[j] * (amax > 0 ? amax : 1.0);
  }
  for (index_t i = 0; i < m; ++i) {
    for (index_t k = 0; k < n; ++k) {
      double acc = 0;
      for (index_t j = 0; j < n; ++j)
        if (sv[j] != 0) acc += A[i * n + j] * sv[j] * V[k * n + j];
      T& out = trans ? P[k * cols + i] : P[i * cols + k];
      out = static_cast<T>(full ? acc : static_cast<double>(out) + acc);
    }
  }
}

// Batches of small matrices (max(m, n) <= kBatchJacobiMaxN) on the singular-value cones (not
// dual): the r x r Gram matrices (r = min(m, n), scaled to unit max-norm) go through
// randnla/jacobi's batched (SIMD across matrices) Jacobi solver, and each matrix then takes the
// Gram route of project_svd_gram: P = Y g(G) (or g(G) Y for wide Y), accurate when the threshold
// is at least kGramMinRatio * s_max (same bound). Matrices for which it is not (or for which the
// step says in the cone / in the polar cone, which the Gram matrix's values cannot prove, or
// whose Jacobi solve did not converge) go through project_svd_small. Returns false (nothing
// written) when the route does not apply to the call at all.
template <class T>
bool project_svd_batch_gram(const T* X, T* P, double* t, index_t batch, index_t rows, index_t cols, Kind kind,
                            double param, bool dual, int n_threads) {
  if (dual || !gram_kind(kind) || std::max(rows, cols) > kBatchJacobiMaxN || std::min(rows, cols) < 2 ||
      std::min(rows, cols) > kSymBatchJacobiMaxN)
    return false;
  const index_t count = rows * cols;
  const index_t r = std::min(rows, cols), rr = r * r;
  RANDNLA_REQUIRE(all_finite(X, batch * count), "X contains NaN or infinity");
  thread_local std::vector<double> Gbuf, Wbuf, Vbuf, Sbuf;
  const std::size_t big = static_cast<std::size_t>(batch * rr);
  if (Gbuf.size() < big) Gbuf.resize(big);
  if (Vbuf.size() < big) Vbuf.resize(big);
  if (Wbuf.size() < static_cast<std::size_t>(batch * r)) Wbuf.resize(static_cast<std::size_t>(batch * r));
  if (Sbuf.size() < static_cast<std::size_t>(batch)) Sbuf.resize(static_cast<std::size_t>(batch));
  struct Release {
    ~Release() {
      if (Gbuf.size() > kKeepBatchDoubles)
        Gbuf = std::vector<double>(), Vbuf = std::vector<double>(), Wbuf = std::vector<double>(),
        Sbuf = std::vector<double>();
    }
  } release;
  double* G = Gbuf.data();
  double* W = Wbuf.data();
  double* V = Vbuf.data();
  double* scale = Sbuf.data();  // max |x_ij|; 0: settled by the norm precheck
  const int threads = std::max(1, resolve_threads(n_threads));
  parallel_for_chunks(batch, 64, threads, [&](index_t begin, index_t end, index_t) {
    double A[kBatchJacobiMaxN * kBatchJacobiMaxN], At[kBatchJacobiMaxN * kBatchJacobiMaxN];
    for (index_t b = begin; b < end; ++b) {
      const T* x = X + b * count;
      T* p = P + b * count;
      double* g = G + b * rr;
      double amax = 0;
      for (index_t i = 0; i < count; ++i) amax = std::max(amax, std::abs(static_cast<double>(x[i])));
      const int pre = detail::norm_precheck(kind, param, t[b], detail::frobenius(x, count), r);
      if (pre == unchanged || pre == zero || amax == 0) {
        if (pre == unchanged) {
          std::copy(x, x + count, p);
        } else if (pre == zero) {
          std::fill(p, p + count, T(0));
          t[b] = 0;
        }
        scale[b] = pre == -1 ? -1.0 : 0.0;  // -1: project_svd_small below
        std::fill(g, g + rr, 0.0);
        continue;
      }
      scale[b] = amax;
      const double inv = 1 / amax;
      for (index_t i = 0; i < count; ++i) A[i] = static_cast<double>(x[i]) * inv;
      gram_small(A, rows, cols, g, At);
    }
  });
  std::vector<unsigned char> converged(static_cast<std::size_t>(batch), 0);
  jacobi::EighOptions options;
  options.n_threads = n_threads;
  options.tol = batch_jacobi_tol(r);
  jacobi::EighReport report;
  report.converged = converged.data();
  jacobi::eigh_batch<double>(G, batch, static_cast<int>(r), W, V, options, report);
  parallel_for_chunks(batch, 64, threads, [&](index_t begin, index_t end, index_t) {
    SymWork<T> wk;
    double A[kBatchJacobiMaxN * kBatchJacobiMaxN], M[kBatchJacobiMaxN * kBatchJacobiMaxN],
        Vt[kBatchJacobiMaxN * kBatchJacobiMaxN], row[kBatchJacobiMaxN];
    double sv[kBatchJacobiMaxN], x[kBatchJacobiMaxN], f[kBatchJacobiMaxN];
    for (index_t b = begin; b < end; ++b) {
      const double amax = scale[b];
      if (amax == 0) continue;
      const T* xin = X + b * count;
      T* p = P + b * count;
      bool ok = amax > 0 && converged[b] != 0;
      double t1 = t[b], v1 = 0;
      bool full = false;
      if (ok) {
        const double* w = W + b * r;
        for (index_t i = 0; i < r; ++i) x[i] = sv[i] = amax * std::sqrt(std::max(w[r - 1 - i], 0.0));  // descending
        ok = apply_step(kind, param, false, t1, v1, x, r, wk.scratch) == moved;
        if (ok) {
          const bool l1 = kind == Kind::l1 || kind == Kind::l1_ball;
          const double smax = sv[0], theta = l1 ? smax - x[0] : x[0];
          ok = smax > 0 && theta >= kGramMinRatio * smax;
        }
      }
      if (!ok) {
        project_svd_small<T>(xin, p, rows, cols, t[b], kind, param, false, wk);
        continue;
      }
      full = step_change(x, sv, r).full();
      // f, indexed by ascending eigenvector column: coefficient / s (the columns of Y V are s u).
      for (index_t i = 0; i < r; ++i) {
        const double c = full ? x[i] : x[i] - sv[i];
        f[r - 1 - i] = (c == 0 || sv[i] == 0) ? 0.0 : c / sv[i];
      }
      for (index_t i = 0; i < count; ++i) A[i] = static_cast<double>(xin[i]);
      gram_reassemble_small(A, p, rows, cols, V + b * rr, f, full, M, Vt, row);
      t[b] = t1;
    }
  });
  return true;
}

template <class T>
void project_svd_batch(const T* X, T* P, double* t, index_t batch, index_t rows, index_t cols, Kind kind, double param,
                       bool dual, int n_threads = 0) {
  RANDNLA_REQUIRE(rows >= 1 && cols >= 1, "X must have nonzero dimensions");
  if (project_svd_batch_gram<T>(X, P, t, batch, rows, cols, kind, param, dual, n_threads)) return;
  if (std::max(rows, cols) <= kSvdSmallMaxN) {
    // Matrix by matrix: the small Gram route (QL on the Gram matrix, as for single larger
    // matrices) where it applies, else one-sided Jacobi.
    const index_t count = rows * cols;
    const bool gram = !dual && gram_kind(kind) && std::min(rows, cols) >= 2;
    parallel_for_chunks(batch, 64, std::max(1, resolve_threads(n_threads)), [&](index_t begin, index_t end, index_t) {
      SymWork<T> wk;
      SvdWork<T> swk;
      for (index_t b = begin; b < end; ++b) {
        const T* x = X + b * count;
        T* p = P + b * count;
        if (gram && all_finite(x, count)) {
          const int pre = detail::norm_precheck(kind, param, t[b], detail::frobenius(x, count), std::min(rows, cols));
          if (pre == unchanged) {
            std::copy(x, x + count, p);
            continue;
          }
          if (pre == zero) {
            std::fill(p, p + count, T(0));
            t[b] = 0;
            continue;
          }
          std::copy(x, x + count, p);
          if (project_svd_gram_small<T>(p, rows, cols, t[b], kind, param, swk)) continue;
        }
        project_svd_small<T>(x, p, rows, cols, t[b], kind, param, dual, wk);
      }
    });
    return;
  }
  thread_local SvdWork<T> wk;  // persists across calls, as for the symmetric cones
  const index_t count = rows * cols;
  for (index_t b = 0; b < batch; ++b)
    project_svd_lapack<T>(X + b * count, P + b * count, rows, cols, t[b], kind, param, dual, wk);
  if (std::max(rows, cols) > kKeepWorkspaceMaxN) wk = SvdWork<T>();
}

// ---------------------------------------------------------------- batched vector cones
// x: batch x n row-major (double), t, v: batch values; all updated in place.
inline void project_vector_batch(double* t, double* v, double* x, index_t batch, index_t n, Kind kind, double param,
                                 bool dual, int n_threads) {
  RANDNLA_REQUIRE(all_finite(x, batch * n) && all_finite(t, batch) && all_finite(v, batch),
                  "the point contains NaN or infinity");
  parallel_for_chunks(batch, 256, resolve_threads(n_threads), [&](index_t begin, index_t end, index_t) {
    StepScratch scratch;
    for (index_t b = begin; b < end; ++b) apply_step(kind, param, dual, t[b], v[b], x + b * n, n, scratch);
  });
}

}  // namespace cones
}  // namespace randnla
