// randnla/dpp/samplers.hpp: exact samplers for finite determinantal point processes.
//
// - log_esp_table: elementary symmetric polynomials of the L-eigenvalues in log space (k-DPP).
// - spectral_phase1_*: the Bernoulli (DPP) and ESP-driven (k-DPP) choice of eigenvectors.
// - projection_from_rows: phase 2 of Hough-Krishnapur-Peres-Virag, sampling the projection DPP of
//   V_J by randomized Gram-Schmidt on the rows of V_J: O(n r^2), residuals clamped at 0 and the
//   pivot drawn proportionally to the actual residual sum.
// - projection_from_kernel: the same chain rule directly on a projection kernel K (pivoted
//   Cholesky with sampled pivots), forming only the chosen columns.
// - ldl_sample: the sequential sampler over items on a marginal kernel K (Poulson 2019), blocked
//   right-looking LDL^T with BLAS-3 trailing updates; no eigendecomposition.
//
// Random numbers: every sample s reads its own Philox streams, make_counter(0, s, purpose), so a
// batch of samples is identical for any thread count.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "randnla/common.hpp"
#include "randnla/lapack.hpp"
#include "randnla/parallel.hpp"
#include "randnla/philox.hpp"

namespace randnla {
namespace dpp {

// Purpose tags (word 3 of the counter) so that the streams of one key never overlap.
constexpr u64 kPurposePhase1 = 0x4450500000000001ULL;
constexpr u64 kPurposePhase2 = 0x4450500000000002ULL;
constexpr u64 kPurposeSequential = 0x4450500000000003ULL;
constexpr u64 kPurposeProjection = 0x4450500000000004ULL;

inline double log_add_exp(double a, double b) {
  const double inf = std::numeric_limits<double>::infinity();
  if (a == -inf) return b;
  if (b == -inf) return a;
  const double hi = std::max(a, b), lo = std::min(a, b);
  return hi + std::log1p(std::exp(lo - hi));
}

// table[l * (n + 1) + m] = log e_l(lambda_1..lambda_m), l = 0..k, m = 0..n (row l = 0 is 0, and
// log e_l = -inf when l > m). log_lambda may hold -inf for zero eigenvalues.
inline void log_esp_table(const double* log_lambda, index_t n, index_t k, double* table) {
  const double inf = std::numeric_limits<double>::infinity();
  const index_t width = n + 1;
  for (index_t m = 0; m <= n; ++m) table[m] = 0.0;
  for (index_t l = 1; l <= k; ++l) {
    double* row = table + l * width;
    const double* previous = table + (l - 1) * width;
    row[0] = -inf;
    for (index_t m = 1; m <= n; ++m) row[m] = log_add_exp(row[m - 1], log_lambda[m - 1] + previous[m - 1]);
  }
}

// DPP phase 1: eigenvector j is kept when U_j < lambda_K[j].
inline void phase1_bernoulli(const double* lambda_k, index_t m, philox::Key key, u64 sample, std::vector<index_t>& chosen) {
  const philox::Counter base = philox::make_counter(0, sample, kPurposePhase1);
  chosen.clear();
  for (index_t j = 0; j < m; ++j)
    if (philox::uniform_at(key, base, static_cast<u64>(j)) < lambda_k[j]) chosen.push_back(j);
}

// k-DPP phase 1 (Kulesza-Taskar Alg. 8 in log space): walk the eigenvalues from the last one down.
inline void phase1_esp(const double* log_lambda, index_t m, index_t k, const double* table, philox::Key key, u64 sample,
                       std::vector<index_t>& chosen) {
  const philox::Counter base = philox::make_counter(0, sample, kPurposePhase1);
  const index_t width = m + 1;
  chosen.clear();
  index_t remaining = k;
  for (index_t item = m; item >= 1 && remaining > 0; --item) {
    bool take = (remaining == item);
    if (!take) {
      const double u = philox::uniform_double_open0(philox::numpy_block(base, key, static_cast<u64>(item - 1) >> 2).v[(item - 1) & 3]);
      const double log_ratio = log_lambda[item - 1] + table[(remaining - 1) * width + item - 1] - table[remaining * width + item];
      take = std::log(u) < log_ratio;
    }
    if (take) {
      chosen.push_back(item - 1);
      --remaining;
    }
  }
  std::reverse(chosen.begin(), chosen.end());
}

// Index i with probability weight[i] / total (weights already clamped at 0), from u in [0, 1).
inline index_t draw_index(const double* weight, index_t n, double total, double u) {
  const double target = u * total;
  double running = 0.0;
  index_t last_positive = -1;
  for (index_t i = 0; i < n; ++i) {
    if (weight[i] <= 0.0) continue;
    running += weight[i];
    last_positive = i;
    if (target < running) return i;
  }
  return last_positive;  // round-off at the top end of the cumulative sum
}

// Phase 2: projection DPP of the columns `chosen` of V, given as the rows of Vt = V^T (m x n,
// row-major, so each eigenvector is contiguous and every inner loop runs over items i, which the
// compiler vectorizes without reassociating any sum). Appends the sorted items.
inline void projection_from_rows(const double* Vt, index_t n, index_t m, const std::vector<index_t>& chosen,
                                 philox::Key key, u64 sample, std::vector<int64_t>& items) {
  (void)m;
  const index_t r = static_cast<index_t>(chosen.size());
  items.clear();
  if (r == 0) return;
  const philox::Counter base = philox::make_counter(0, sample, kPurposePhase2);
  std::vector<const double*> columns(r);
  for (index_t c = 0; c < r; ++c) columns[c] = Vt + chosen[c] * n;
  std::vector<double> residual(n, 0.0), dots(n), basis(static_cast<size_t>(r) * r), w(r);
  for (index_t c = 0; c < r; ++c) {
    const double* col = columns[c];
    for (index_t i = 0; i < n; ++i) residual[i] += col[i] * col[i];
  }
  for (index_t t = 0; t < r; ++t) {
    double total = 0.0;
    for (index_t i = 0; i < n; ++i) total += residual[i];
    const double u = philox::uniform_at(key, base, static_cast<u64>(t));
    const index_t pick = draw_index(residual.data(), n, total, u);
    if (pick < 0 || !(total > 0.0)) break;  // numerically exhausted rank: stop early
    items.push_back(pick);
    // New direction: the chosen row minus its projection on the previous directions (twice, for
    // orthogonality to working precision).
    for (index_t c = 0; c < r; ++c) w[c] = columns[c][pick];
    for (int pass = 0; pass < 2; ++pass) {
      for (index_t s = 0; s < t; ++s) {
        const double* q = basis.data() + s * r;
        double dot = 0.0;
        for (index_t c = 0; c < r; ++c) dot += q[c] * w[c];
        for (index_t c = 0; c < r; ++c) w[c] -= dot * q[c];
      }
    }
    double norm = 0.0;
    for (index_t c = 0; c < r; ++c) norm += w[c] * w[c];
    norm = std::sqrt(norm);
    if (!(norm > 0.0)) break;
    double* q = basis.data() + t * r;
    for (index_t c = 0; c < r; ++c) q[c] = w[c] / norm;
    // dots = V_J q (a GEMV, column by column).
    std::fill(dots.begin(), dots.end(), 0.0);
    for (index_t c = 0; c < r; ++c) {
      const double* col = columns[c];
      const double qc = q[c];
      for (index_t i = 0; i < n; ++i) dots[i] += col[i] * qc;
    }
    for (index_t i = 0; i < n; ++i) {
      const double updated = residual[i] - dots[i] * dots[i];
      residual[i] = updated > 0.0 ? updated : 0.0;
    }
    residual[pick] = 0.0;
  }
  std::sort(items.begin(), items.end());
}

// Projection DPP straight from a projection kernel K (n x n, symmetric, row-major) of rank r:
// the chain rule with pivoted Cholesky whose pivot is drawn proportionally to the diagonal residual.
inline void projection_from_kernel(const double* K, index_t n, index_t r, philox::Key key, u64 sample,
                                   std::vector<int64_t>& items) {
  items.clear();
  if (r == 0) return;
  const philox::Counter base = philox::make_counter(0, sample, kPurposeProjection);
  std::vector<double> residual(n), columns(static_cast<size_t>(r) * n), pivot_row(r);
  for (index_t i = 0; i < n; ++i) residual[i] = std::max(K[i * n + i], 0.0);
  for (index_t t = 0; t < r; ++t) {
    double total = 0.0;
    for (index_t i = 0; i < n; ++i) total += residual[i];
    const double u = philox::uniform_at(key, base, static_cast<u64>(t));
    const index_t pick = draw_index(residual.data(), n, total, u);
    if (pick < 0 || !(total > 0.0)) break;
    const double pivot = residual[pick];
    items.push_back(pick);
    for (index_t s = 0; s < t; ++s) pivot_row[s] = columns[s * n + pick];
    double* column = columns.data() + t * n;
    const double* k_row = K + pick * n;  // column `pick` of the symmetric K
    const double scale = 1.0 / std::sqrt(pivot);
    for (index_t i = 0; i < n; ++i) column[i] = k_row[i];
    for (index_t s = 0; s < t; ++s) {
      const double* previous = columns.data() + s * n;
      const double factor = pivot_row[s];
      for (index_t i = 0; i < n; ++i) column[i] -= previous[i] * factor;
    }
    for (index_t i = 0; i < n; ++i) {
      const double value = column[i] * scale;
      column[i] = value;
      const double updated = residual[i] - value * value;
      residual[i] = updated > 0.0 ? updated : 0.0;
    }
    residual[pick] = 0.0;
  }
  std::sort(items.begin(), items.end());
}

struct SequentialResult {
  std::vector<int64_t> items;
  double log_probability = 0.0;
  double worst_violation = 0.0;  // how far a conditional marginal left [0, 1]
};

// Sequential (chain rule over sets) sampler on a marginal kernel. A holds K in column-major order
// (for a symmetric K a row-major array is the same), only its lower triangle is read, and it is
// overwritten. block: diagonal block size of the right-looking blocked LDL^T.
inline SequentialResult ldl_sample(double* A, index_t n, philox::Key key, u64 sample, index_t block) {
  SequentialResult result;
  const philox::Counter base = philox::make_counter(0, sample, kPurposeSequential);
  block = std::max<index_t>(block, 1);
  std::vector<double> lower_panel;
  auto at = [&](index_t i, index_t j) -> double& { return A[i + j * n]; };
  for (index_t j0 = 0; j0 < n; j0 += block) {
    const index_t j1 = std::min(n, j0 + block);
    // Decisions of the diagonal block: unblocked LDL^T with the sampled pivots.
    for (index_t j = j0; j < j1; ++j) {
      double pivot = at(j, j);
      if (pivot < 0.0) result.worst_violation = std::max(result.worst_violation, -pivot);
      if (pivot > 1.0) result.worst_violation = std::max(result.worst_violation, pivot - 1.0);
      const double u = philox::uniform_at(key, base, static_cast<u64>(j));
      if (u < pivot) {
        result.items.push_back(j);
      } else {
        pivot -= 1.0;
      }
      at(j, j) = pivot;
      result.log_probability += std::log(std::fabs(pivot));
      const double inverse = 1.0 / pivot;
      for (index_t i = j + 1; i < j1; ++i) at(i, j) *= inverse;
      for (index_t c = j + 1; c < j1; ++c) {
        const double factor = at(c, j) * pivot;
        if (factor == 0.0) continue;
        for (index_t i = c; i < j1; ++i) at(i, c) -= at(i, j) * factor;
      }
    }
    const index_t rest = n - j1;
    if (rest == 0) break;
    const lapack::fint b = static_cast<lapack::fint>(j1 - j0), m = static_cast<lapack::fint>(rest),
                       lda = static_cast<lapack::fint>(n);
    // W = A21 L11^{-T} (= L21 D11), in place.
    lapack::trsm<double>('R', 'L', 'T', 'U', m, b, 1.0, &at(j0, j0), lda, &at(j1, j0), lda);
    // L21 = W D11^{-1} in a separate panel.
    lower_panel.assign(static_cast<size_t>(rest) * b, 0.0);
    for (index_t c = 0; c < b; ++c) {
      const double inverse = 1.0 / at(j0 + c, j0 + c);
      const double* w = &at(j1, j0 + c);
      double* l = lower_panel.data() + c * rest;
      for (index_t i = 0; i < rest; ++i) l[i] = w[i] * inverse;
    }
    // A22 -= W L21^T, lower triangle only, one column panel at a time.
    const index_t panel = 256;
    for (index_t c0 = j1; c0 < n; c0 += panel) {
      const index_t c1 = std::min(n, c0 + panel);
      lapack::gemm<double>('N', 'T', static_cast<lapack::fint>(n - c0), static_cast<lapack::fint>(c1 - c0), b, -1.0,
                           &at(c0, j0), lda, lower_panel.data() + (c0 - j1), m, 1.0, &at(c0, c0), lda);
    }
  }
  return result;
}

// Many spectral samples at once (Vt: eigenvectors as rows, m x n): sample s (0 <= s < count) reads the streams of logical sample
// first + s and writes out[s]. k < 0: DPP (Bernoulli phase 1); k >= 0: k-DPP (table from
// log_esp_table with at least k + 1 rows, width m + 1).
inline void spectral_batch(const double* Vt, index_t n, index_t m, const double* lambda_k, const double* log_lambda,
                           index_t k, const double* table, philox::Key key, u64 first, index_t count, int n_threads,
                           std::vector<std::vector<int64_t>>& out) {
  out.assign(count, {});
  parallel_for(count, n_threads, [&](index_t s) {
    std::vector<index_t> chosen;
    const u64 sample = first + static_cast<u64>(s);
    if (k < 0)
      phase1_bernoulli(lambda_k, m, key, sample, chosen);
    else
      phase1_esp(log_lambda, m, k, table, key, sample, chosen);
    projection_from_rows(Vt, n, m, chosen, key, sample, out[s]);
  });
}

inline void projection_kernel_batch(const double* K, index_t n, index_t r, philox::Key key, u64 first, index_t count,
                                    int n_threads, std::vector<std::vector<int64_t>>& out) {
  out.assign(count, {});
  parallel_for(count, n_threads, [&](index_t s) { projection_from_kernel(K, n, r, key, first + static_cast<u64>(s), out[s]); });
}

}  // namespace dpp
}  // namespace randnla
