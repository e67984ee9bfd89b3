// randnla/jacobi/svd.hpp: one-sided (Hestenes) Jacobi for the SVD, and the accurate SPD
// eigensolver (Cholesky H = L L^T, then one-sided Jacobi on the columns of G = L^T).
//
// The working matrix holds k columns g_0..g_{k-1} of length len, stored as the rows of gt
// (k x len, C order). A rotation on (p, q) diagonalizes the 2x2 Gram block
// [[g_p.g_p, g_p.g_q], [g_p.g_q, g_q.g_q]] with the same rotation as the two-sided kernel; the
// pair is skipped when |g_p.g_q| <= tol ||g_p|| ||g_q|| (relative test), and a sweep without a
// rotation ends the iteration. At the end sigma_j = ||g_j||, u_j = g_j / sigma_j and V collects
// the rotations. The dot products are recomputed for every pair (no carried norms), which keeps
// the relative accuracy of column-graded matrices (Demmel-Veselic).
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "randnla/common.hpp"
#include "randnla/jacobi/eigh.hpp"
#include "randnla/jacobi/rotation.hpp"
#include "randnla/lapack.hpp"
#include "randnla/parallel.hpp"

namespace randnla {
namespace jacobi {

namespace detail {

// Squared column norms below this are in (or next to) the subnormal range, where their dot
// products carry no relative precision: such a column is left alone (it is below 2^-990 times
// the largest column after the scaling of svd_batch, far below anything a rotation could resolve).
template <class T>
constexpr T negligible_square() {
  return std::numeric_limits<T>::min() / std::numeric_limits<T>::epsilon();
}

// Dot product with eight fixed partial sums (same order for every thread and every call).
template <class T>
inline T dot(const T* __restrict x, const T* __restrict y, int len) {
  T acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int i = 0;
  for (; i + 8 <= len; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] = std::fma(x[i + k], y[i + k], acc[k]);
  for (int k = 0; i < len; ++i, ++k) acc[k] = std::fma(x[i], y[i], acc[k]);
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

template <class T>
inline void rotate_rows(T* __restrict x, T* __restrict y, int len, T c, T s) {
  for (int i = 0; i < len; ++i) {
    const T xv = x[i], yv = y[i];
    x[i] = std::fma(c, xv, -(s * yv));
    y[i] = std::fma(s, xv, c * yv);
  }
}

template <class T>
inline bool one_sided_pair(int len, int k, T* gt, T* vt, int p, int q, T tol) {
  T* gp = gt + static_cast<index_t>(p) * len;
  T* gq = gt + static_cast<index_t>(q) * len;
  const T alpha = dot(gp, gp, len), beta = dot(gq, gq, len);
  if (alpha < negligible_square<T>() || beta < negligible_square<T>()) return false;
  const T gamma = dot(gp, gq, len);
  T t, c, s;
  if (!rotation<T>(alpha, beta, gamma, tol, t, c, s)) return false;
  rotate_rows(gp, gq, len, c, s);
  // Numerically parallel columns: the rotation may cancel one of them down to rounding noise
  // (norm about eps times the old norms), still parallel to the other column, which later
  // rotations would only shrink by a factor eps per sweep. Such a column carries no information
  // and is set to zero. The updated squared norm (alpha - t gamma or beta + t gamma) only flags a
  // candidate: it cancels catastrophically, so the decision recomputes the column's norm, because
  // a column of norm sqrt(eps) times the old one still holds a singular value to full accuracy.
  // A small column of a graded matrix is not affected (it is compared with the old norms).
  const T eps = static_cast<T>(epsilon_of<T>());
  const T level = T(4) * eps * std::min(alpha, beta);
  const T noise = T(64) * eps * eps * std::min(alpha, beta);
  if (alpha - t * gamma <= level) {
    if (dot(gp, gp, len) <= noise) std::fill(gp, gp + len, T(0));
  } else if (beta + t * gamma <= level) {
    if (dot(gq, gq, len) <= noise) std::fill(gq, gq + len, T(0));
  }
  if (vt != nullptr) rotate_rows(vt + static_cast<index_t>(p) * k, vt + static_cast<index_t>(q) * k, k, c, s);
  return true;
}

template <class T>
inline double one_sided_off(int len, int k, const T* gt, bool* passes, T tol) {
  double worst = 0.0;
  bool ok = true;
  std::vector<T> norms(static_cast<std::size_t>(k));
  for (int j = 0; j < k; ++j) norms[j] = dot(gt + static_cast<index_t>(j) * len, gt + static_cast<index_t>(j) * len, len);
  for (int p = 0; p < k; ++p)
    for (int q = p + 1; q < k; ++q) {
      if (norms[p] < negligible_square<T>() || norms[q] < negligible_square<T>()) continue;
      const T gamma = dot(gt + static_cast<index_t>(p) * len, gt + static_cast<index_t>(q) * len, len);
      const T threshold = tol * std::sqrt(norms[p]) * std::sqrt(norms[q]);
      if (std::abs(gamma) > threshold) ok = false;
      if (gamma == T(0)) continue;
      const double scale = std::sqrt(static_cast<double>(norms[p])) * std::sqrt(static_cast<double>(norms[q]));
      worst = std::max(worst, scale > 0 ? std::abs(static_cast<double>(gamma)) / scale
                                        : std::numeric_limits<double>::infinity());
    }
  *passes = ok;
  return worst;
}

// Runs one-sided Jacobi on one working matrix. vt (k x k) starts as the identity or is nullptr.
template <class T>
inline void one_sided_solve(int len, int k, T* gt, T* vt, const std::vector<std::pair<int, int>>& pairs, Pivot pivot,
                            T tol, int max_sweeps, const philox::Key& key, u64 matrix, int* sweeps, i64* rotations,
                            unsigned char* converged, double* off) {
  *sweeps = 0;
  *rotations = 0;
  bool passes = false;
  const i64 n_pairs = static_cast<i64>(pairs.size());
  if (pivot == Pivot::random) {
    u64 draw = 0;
    one_sided_off(len, k, gt, &passes, tol);
    for (int sweep = 0; sweep < max_sweeps && !passes && n_pairs > 0; ++sweep) {
      for (i64 i = 0; i < n_pairs; ++i, ++draw) {
        const auto& pq = pairs[static_cast<std::size_t>(random_pair_index(random_pivot_bits(key, matrix, draw), n_pairs))];
        *rotations += one_sided_pair(len, k, gt, vt, pq.first, pq.second, tol) ? 1 : 0;
      }
      ++*sweeps;
      one_sided_off(len, k, gt, &passes, tol);
    }
  } else {
    for (int sweep = 0; sweep < max_sweeps; ++sweep) {
      i64 count = 0;
      for (const auto& pq : pairs) count += one_sided_pair(len, k, gt, vt, pq.first, pq.second, tol) ? 1 : 0;
      if (count == 0) {
        passes = true;
        break;
      }
      *rotations += count;
      ++*sweeps;
    }
  }
  *off = one_sided_off(len, k, gt, &passes, tol);
  if (n_pairs == 0) passes = true;
  *converged = passes ? 1 : 0;
}

// Replaces columns [r, kk) of the len x kk column-major matrix u (first r columns orthonormal) by an
// orthonormal basis of the complement: QR of the first r columns through LAPACK.
template <class T>
inline void complete_orthonormal(int len, int r, int kk, T* u) {
  if (r >= kk) return;
  std::vector<T> q(static_cast<std::size_t>(len) * len, T(0));
  std::copy(u, u + static_cast<index_t>(len) * r, q.begin());
  std::vector<T> tau(static_cast<std::size_t>(std::max(r, 1)));
  T query = 0;
  int info = 0;
  if (r > 0) {
    info = lapack::geqrf<T>(len, r, q.data(), len, tau.data(), &query, -1);
    std::vector<T> work(static_cast<std::size_t>(std::max<T>(query, T(1))));
    info = lapack::geqrf<T>(len, r, q.data(), len, tau.data(), work.data(), static_cast<int>(work.size()));
    if (info != 0) throw std::runtime_error("geqrf failed while completing the singular vectors");
  }
  info = lapack::orgqr<T>(len, kk, r, q.data(), len, tau.data(), &query, -1);
  std::vector<T> work(static_cast<std::size_t>(std::max<T>(query, T(1))));
  info = lapack::orgqr<T>(len, kk, r, q.data(), len, tau.data(), work.data(), static_cast<int>(work.size()));
  if (info != 0) throw std::runtime_error("orgqr failed while completing the singular vectors");
  std::copy(q.begin() + static_cast<index_t>(len) * r, q.begin() + static_cast<index_t>(len) * kk,
            u + static_cast<index_t>(len) * r);
}

}  // namespace detail

struct SvdOptions {
  Pivot pivot = Pivot::cyclic;
  double tol = 0.0;
  int max_sweeps = 30;
  bool compute_uv = true;
  bool full_matrices = false;
  philox::Key key{{0, 0}};
  int n_threads = 0;
};

// SVD of a batch (batch, m, n), C-contiguous. s: (batch, k) descending, k = min(m, n).
// u: (batch, m, ku), vh: (batch, kv, n) with ku = kv = k, or ku = m, kv = n when full_matrices.
template <class T>
inline void svd_batch(const T* in, index_t batch, int m, int n, T* s, T* u, T* vh, const SvdOptions& options,
                      const EighReport& report) {
  RANDNLA_REQUIRE(m >= 0 && n >= 0 && batch >= 0, "shapes must be non-negative");
  RANDNLA_REQUIRE(options.tol >= 0.0, "tol must be non-negative");
  RANDNLA_REQUIRE(options.max_sweeps >= 0, "max_sweeps must be non-negative");
  RANDNLA_REQUIRE(all_finite(in, batch * static_cast<index_t>(m) * n), "A contains NaN or infinity");
  const bool tall = m >= n;
  const int k = std::min(m, n);   // working columns
  const int len = std::max(m, n);  // their length
  const bool uv = options.compute_uv;
  const int kk = options.full_matrices ? len : k;  // columns of the completed "left" factor
  const auto pairs = sweep_pairs(k, options.pivot);
  const T tol = static_cast<T>(options.tol);
  const index_t mn = static_cast<index_t>(m) * n;
  // Per matrix: normalized columns (len x kk column-major) and the rank found, for completion.
  std::vector<T> left_all;
  std::vector<int> rank_all(static_cast<std::size_t>(batch), 0);
  if (uv) left_all.assign(static_cast<std::size_t>(batch) * len * kk, T(0));
  const int target = safe_exponent<T>(std::max(len, 2), true);

  parallel_for(batch, options.n_threads, [&](index_t b) {
    const T* a = in + b * mn;
    std::vector<T> gt(static_cast<std::size_t>(k) * len);
    T max_abs = 0;
    for (index_t i = 0; i < mn; ++i) max_abs = std::max(max_abs, std::abs(a[i]));
    const T factor = power_of_two_scale<T>(max_abs, target);
    if (tall) {
      for (int i = 0; i < m; ++i)
        for (int j = 0; j < n; ++j) gt[static_cast<index_t>(j) * len + i] = a[static_cast<index_t>(i) * n + j] * factor;
    } else {
      for (index_t i = 0; i < mn; ++i) gt[i] = a[i] * factor;
    }
    std::vector<T> vt;
    if (uv) {
      vt.assign(static_cast<std::size_t>(k) * k, T(0));
      for (int j = 0; j < k; ++j) vt[static_cast<index_t>(j) * k + j] = T(1);
    }
    int sweeps;
    i64 rotations;
    unsigned char converged;
    double off;
    detail::one_sided_solve<T>(len, k, gt.data(), uv ? vt.data() : nullptr, pairs, options.pivot, tol,
                               options.max_sweeps, options.key, static_cast<u64>(b), &sweeps, &rotations, &converged,
                               &off);
    std::vector<T> sigma(static_cast<std::size_t>(k));
    for (int j = 0; j < k; ++j) {
      const T* g = gt.data() + static_cast<index_t>(j) * len;
      sigma[j] = std::sqrt(detail::dot(g, g, len));
    }
    std::vector<int> order(static_cast<std::size_t>(k));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int x, int y) { return sigma[x] > sigma[y]; });
    const T unscale = T(1) / factor;
    T* s_b = s + b * k;
    for (int j = 0; j < k; ++j) s_b[j] = sigma[order[j]] * unscale;
    if (report.sweeps) report.sweeps[b] = sweeps;
    if (report.rotations) report.rotations[b] = rotations;
    if (report.converged) report.converged[b] = converged;
    if (report.off) report.off[b] = off;
    if (!uv) return;
    // Left factor (normalized columns) in column-major len x kk; right factor from vt.
    T* left = left_all.data() + b * static_cast<index_t>(len) * kk;
    int rank = 0;
    for (int j = 0; j < k; ++j) {
      const int src = order[j];
      if (!(sigma[src] > T(0))) break;
      const T* g = gt.data() + static_cast<index_t>(src) * len;
      const T inv = T(1) / sigma[src];
      for (int i = 0; i < len; ++i) left[static_cast<index_t>(j) * len + i] = g[i] * inv;
      ++rank;
    }
    rank_all[static_cast<std::size_t>(b)] = rank;
    // Right factor: column j of V is row order[j] of vt.
    if (tall) {
      T* vh_b = vh + b * static_cast<index_t>(options.full_matrices ? n : k) * n;  // (k x n), k = n
      for (int j = 0; j < k; ++j)
        for (int i = 0; i < k; ++i) vh_b[static_cast<index_t>(j) * n + i] = vt[static_cast<index_t>(order[j]) * k + i];
    } else {
      T* u_b = u + b * static_cast<index_t>(m) * (options.full_matrices ? m : k);  // (m x m), k = m
      for (int j = 0; j < k; ++j)
        for (int i = 0; i < k; ++i) u_b[static_cast<index_t>(i) * k + j] = vt[static_cast<index_t>(order[j]) * k + i];
    }
  });
  if (!uv) return;
  // Completion through LAPACK, outside any parallel region.
  for (index_t b = 0; b < batch; ++b) {
    T* left = left_all.data() + b * static_cast<index_t>(len) * kk;
    detail::complete_orthonormal<T>(len, rank_all[static_cast<std::size_t>(b)], kk, left);
    if (tall) {
      T* u_b = u + b * static_cast<index_t>(m) * kk;  // (m x kk)
      for (int j = 0; j < kk; ++j)
        for (int i = 0; i < m; ++i) u_b[static_cast<index_t>(i) * kk + j] = left[static_cast<index_t>(j) * len + i];
    } else {
      T* vh_b = vh + b * static_cast<index_t>(kk) * n;  // (kk x n): rows are the columns of left
      std::copy(left, left + static_cast<index_t>(kk) * n, vh_b);
    }
  }
}

// Accurate eigen-decomposition of symmetric positive definite matrices: H = L L^T (LAPACK potrf),
// then one-sided Jacobi on the columns of G = L^T (column-graded when H = D A D), eigenvalues
// lambda_j = ||g_j||^2 ascending, eigenvectors the accumulated rotations.
template <class T>
inline void eigh_spd_batch(const T* in, index_t batch, int n, T* values, T* vectors, const EighOptions& options,
                           const EighReport& report) {
  RANDNLA_REQUIRE(n >= 0 && batch >= 0, "shapes must be non-negative");
  RANDNLA_REQUIRE(options.tol >= 0.0, "tol must be non-negative");
  detail::check_symmetric_batch(in, batch, n, options.symmetry_rtol, options.n_threads);
  const index_t nn = static_cast<index_t>(n) * n;
  std::vector<T> factors(static_cast<std::size_t>(batch * nn));
  std::vector<T> scales(static_cast<std::size_t>(batch), T(1));
  // Scaling keeps ||g_j||^2 = h_jj representable; H's entries are the squares of G's.
  const int target = 2 * safe_exponent<T>(std::max(n, 2), true);
  for (index_t b = 0; b < batch; ++b) {
    const T* h = in + b * nn;
    T* f = factors.data() + b * nn;
    T max_abs = 0;
    for (index_t i = 0; i < nn; ++i) max_abs = std::max(max_abs, std::abs(h[i]));
    // An even power of two, so that G scales by its square root exactly.
    T factor = power_of_two_scale<T>(max_abs, target);
    int e = 0;
    std::frexp(factor, &e);
    if (((e - 1) & 1) != 0) factor *= T(0.5);
    scales[static_cast<std::size_t>(b)] = factor;
    for (index_t i = 0; i < nn; ++i) f[i] = h[i] * factor;
    if (n == 0) continue;
    // Column-major view of a symmetric C array is the same matrix; 'U' gives H = U^T U, whose
    // C-order view is the lower-triangular L with H = L L^T.
    const int info = lapack::potrf<T>('U', n, f, n);
    RANDNLA_REQUIRE(info == 0, "A must be positive definite: the Cholesky factorization of matrix ", b,
                    " failed at column ", info);
    for (int i = 0; i < n; ++i)
      for (int j = i + 1; j < n; ++j) f[static_cast<index_t>(i) * n + j] = T(0);
  }
  const auto pairs = sweep_pairs(n, options.pivot);
  const T tol = static_cast<T>(options.tol);
  const bool want = options.want_vectors && vectors != nullptr;
  parallel_for(batch, options.n_threads, [&](index_t b) {
    T* gt = factors.data() + b * nn;  // row j = column j of G = L^T
    std::vector<T> vt;
    if (want) {
      vt.assign(static_cast<std::size_t>(nn), T(0));
      for (int j = 0; j < n; ++j) vt[static_cast<index_t>(j) * n + j] = T(1);
    }
    int sweeps;
    i64 rotations;
    unsigned char converged;
    double off;
    detail::one_sided_solve<T>(n, n, gt, want ? vt.data() : nullptr, pairs, options.pivot, tol, options.max_sweeps,
                               options.key, static_cast<u64>(b), &sweeps, &rotations, &converged, &off);
    std::vector<T> lambda(static_cast<std::size_t>(n));
    for (int j = 0; j < n; ++j) {
      const T* g = gt + static_cast<index_t>(j) * n;
      lambda[j] = detail::dot(g, g, n);
    }
    std::vector<int> order(static_cast<std::size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int x, int y) { return lambda[x] < lambda[y]; });
    const T unscale = T(1) / scales[static_cast<std::size_t>(b)];
    for (int j = 0; j < n; ++j) values[b * n + j] = lambda[order[j]] * unscale;
    if (want) {
      T* v = vectors + b * nn;
      for (int j = 0; j < n; ++j)
        for (int i = 0; i < n; ++i) v[static_cast<index_t>(i) * n + j] = vt[static_cast<index_t>(order[j]) * n + i];
    }
    if (report.sweeps) report.sweeps[b] = sweeps;
    if (report.rotations) report.rotations[b] = rotations;
    if (report.converged) report.converged[b] = converged;
    if (report.off) report.off[b] = off;
  });
}

}  // namespace jacobi
}  // namespace randnla
