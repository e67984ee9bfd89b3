// randnla/dpp/samplers.hpp: exact samplers for finite determinantal point processes.
//
// - log_esp_table: elementary symmetric polynomials of the L-eigenvalues in log space (k-DPP).
// - spectral_phase1_*: the Bernoulli (DPP) and ESP-driven (k-DPP) choice of eigenvectors.
// - projection_from_rows: phase 2 of Hough-Krishnapur-Peres-Virag, sampling the projection DPP of
//   V_J, either by rejection (proposals from the squared row norms, acceptance = residual / norm:
//   O(n r) + O(r^3 log r)) or by randomized Gram-Schmidt on the rows of V_J (O(n r^2), residuals
//   clamped at 0, pivot drawn proportionally to the actual residual sum), whichever costs less.
// - projection_dual: the same for a factor L = B B^T in the d-dimensional dual space, with
//   proposals |b_i|^2 and no n x d eigenvector block.
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

// Uniform variates of one Philox stream read in order, one block per four draws (the values
// are those of uniform_at(key, base, 0), uniform_at(key, base, 1), ...).
struct UniformStream {
  philox::Key key;
  philox::Counter base;
  u64 next = 0;
  philox::Block block{};
  UniformStream(philox::Key k, philox::Counter b) : key(k), base(b) {}
  u64 bits() {
    if ((next & 3) == 0) block = philox::numpy_block(base, key, next >> 2);
    const u64 value = block.v[next & 3];
    ++next;
    return value;
  }
  double uniform() { return philox::uniform_double(bits()); }
};

// DPP phase 1: eigenvector j is kept when U_j < lambda_K[j].
inline void phase1_bernoulli(const double* lambda_k, index_t m, philox::Key key, u64 sample, std::vector<index_t>& chosen) {
  UniformStream stream(key, philox::make_counter(0, sample, kPurposePhase1));
  chosen.clear();
  for (index_t j = 0; j < m; ++j)
    if (stream.uniform() < lambda_k[j]) chosen.push_back(j);
}

// k-DPP phase 1 (Kulesza-Taskar Alg. 8 in log space): walk the eigenvalues from the last one down.
inline void phase1_esp(const double* log_lambda, index_t m, index_t k, const double* table, philox::Key key, u64 sample,
                       std::vector<index_t>& chosen) {
  const philox::Counter base = philox::make_counter(0, sample, kPurposePhase1);
  const index_t width = m + 1;
  chosen.clear();
  index_t remaining = k;
  u64 cached_index = ~u64(0);
  philox::Block cached{};
  for (index_t item = m; item >= 1 && remaining > 0; --item) {
    bool take = (remaining == item);
    if (!take) {
      const u64 position = static_cast<u64>(item - 1);
      if ((position >> 2) != cached_index) {
        cached_index = position >> 2;
        cached = philox::numpy_block(base, key, cached_index);
      }
      const double u = philox::uniform_double_open0(cached.v[position & 3]);
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

// ---- phase 2: the projection DPP of the r chosen eigenvectors ----
//
// Step t draws item i with probability residual_i(t) / (r - t), where residual_i(t) is the
// squared distance of row v_i of V_J (n x r) to the span of the rows already chosen. Two exact
// ways to make that draw:
// - direct: keep all n residuals up to date, one GEMV (n x r) per step: O(n r^2) per sample;
// - rejection: propose i with probability w_i / sum(w) for weights with sigma w_i >= |v_i|^2
//   (hence >= residual_i(t) for every t), accept with residual_i(t) / (sigma w_i). Each proposal
//   costs O(r t) (plus forming v_i); the expected number at step t is sigma sum(w) / (r - t).
//   With w_i = |v_i|^2 (sigma = 1) a sample costs one O(n r) pass plus O(r^3 log r); for a
//   low-rank factor L = B B^T, w_i = |b_i|^2 and sigma = 1 / min theta_J need no pass over n
//   at all. A step whose proposals exceed a cap continues with the direct method (the draw of
//   that step is then made afresh from the same conditional law, so the sample stays exact).

// out = sum_c cols[c] * q[c] over items [0, n): fixed summation order, four columns at a time.
inline void combine_columns(const std::vector<const double*>& cols, const double* q, index_t n, double* out) {
  const index_t r = static_cast<index_t>(cols.size());
  constexpr index_t chunk = 512;
  for (index_t i0 = 0; i0 < n; i0 += chunk) {
    const index_t len = std::min(chunk, n - i0);
    double* o = out + i0;
    for (index_t i = 0; i < len; ++i) o[i] = 0.0;
    index_t c = 0;
    for (; c + 4 <= r; c += 4) {
      const double *a0 = cols[c] + i0, *a1 = cols[c + 1] + i0, *a2 = cols[c + 2] + i0, *a3 = cols[c + 3] + i0;
      const double q0 = q[c], q1 = q[c + 1], q2 = q[c + 2], q3 = q[c + 3];
      for (index_t i = 0; i < len; ++i) o[i] += ((a0[i] * q0 + a1[i] * q1) + (a2[i] * q2 + a3[i] * q3));
    }
    for (; c < r; ++c) {
      const double* a = cols[c] + i0;
      const double qc = q[c];
      for (index_t i = 0; i < len; ++i) o[i] += a[i] * qc;
    }
  }
}

// Squared row norms of the n x r matrix with columns cols.
inline void row_norms_of_columns(const std::vector<const double*>& cols, index_t n, double* out) {
  const index_t r = static_cast<index_t>(cols.size());
  for (index_t i = 0; i < n; ++i) out[i] = 0.0;
  index_t c = 0;
  for (; c + 2 <= r; c += 2) {
    const double *a0 = cols[c], *a1 = cols[c + 1];
    for (index_t i = 0; i < n; ++i) out[i] += (a0[i] * a0[i] + a1[i] * a1[i]);
  }
  for (; c < r; ++c) {
    const double* a = cols[c];
    for (index_t i = 0; i < n; ++i) out[i] += a[i] * a[i];
  }
}

// Orthogonalise w (length r) against the first t rows of basis (r x r, row-major), one
// modified Gram-Schmidt pass; returns |w|^2 afterwards.
inline double orthogonalise(const double* basis, index_t t, index_t r, double* w) {
  for (index_t s = 0; s < t; ++s) {
    const double* q = basis + s * r;
    double dot = 0.0;
    for (index_t c = 0; c < r; ++c) dot += q[c] * w[c];
    for (index_t c = 0; c < r; ++c) w[c] -= dot * q[c];
  }
  double norm = 0.0;
  for (index_t c = 0; c < r; ++c) norm += w[c] * w[c];
  return norm;
}

// Appends w / |w| (after a second orthogonalisation pass) as basis row t; false if w vanished.
inline bool append_direction(double* basis, index_t t, index_t r, double* w) {
  const double norm2 = orthogonalise(basis, t, r, w);
  if (!(norm2 > 0.0)) return false;
  const double inverse = 1.0 / std::sqrt(norm2);
  double* q = basis + t * r;
  for (index_t c = 0; c < r; ++c) q[c] = w[c] * inverse;
  return true;
}

// Direct phase 2 from step t on (steps < t already chose items[0..t) with basis rows [0, t)).
inline void direct_steps(const std::vector<const double*>& cols, index_t n, const double* residual0, double* basis,
                         index_t t, UniformStream& stream, std::vector<int64_t>& items) {
  const index_t r = static_cast<index_t>(cols.size());
  std::vector<double> residual(n), dots(n), w(r);
  if (residual0 != nullptr)
    std::copy(residual0, residual0 + n, residual.begin());
  else
    row_norms_of_columns(cols, n, residual.data());
  for (index_t s = 0; s < t; ++s) {
    combine_columns(cols, basis + s * r, n, dots.data());
    for (index_t i = 0; i < n; ++i) {
      const double updated = residual[i] - dots[i] * dots[i];
      residual[i] = updated > 0.0 ? updated : 0.0;
    }
  }
  for (const int64_t item : items) residual[item] = 0.0;
  for (index_t i = 0; i < n; ++i)
    if (!(residual[i] > 0.0)) residual[i] = 0.0;
  double total = 0.0;
  for (index_t i = 0; i < n; ++i) total += residual[i];
  for (; t < r; ++t) {
    const double u = stream.uniform();
    const index_t pick = draw_index(residual.data(), n, total, u);
    if (pick < 0 || !(total > 0.0)) break;  // numerically exhausted rank: stop early
    for (index_t c = 0; c < r; ++c) w[c] = cols[c][pick];
    orthogonalise(basis, t, r, w.data());
    if (!append_direction(basis, t, r, w.data())) break;
    items.push_back(pick);
    combine_columns(cols, basis + t * r, n, dots.data());
    total = 0.0;
    for (index_t i = 0; i < n; ++i) {
      const double updated = residual[i] - dots[i] * dots[i];
      const double kept = updated > 0.0 ? updated : 0.0;
      residual[i] = kept;
      total += kept;
    }
    total -= residual[pick];
    residual[pick] = 0.0;
  }
}

// Rejection phase 2 from step t on. row(i, v) writes v_i (length r); weight/cumulative: the
// proposal weights and their prefix sums; sigma: the bound sigma w_i >= |v_i|^2. Returns false
// (with t the first unfinished step) when a step exceeds its proposal cap.
template <class RowFn>
bool rejection_steps(RowFn&& row, index_t n, index_t r, const double* weight, const double* cumulative, double sigma,
                     double* basis, index_t& t, UniformStream& stream, std::vector<int64_t>& items,
                     index_t stop = -1) {
  const double total = cumulative[n - 1];
  if (!(total > 0.0)) return false;
  std::vector<double> w(r);
  if (stop < 0) stop = r;
  for (; t < r; ++t) {
    if (t >= stop) return false;
    const double expected = sigma * total / static_cast<double>(r - t);
    const double cap = 1000.0 + 64.0 * expected;
    bool accepted = false;
    for (double proposals = 0.0; proposals < cap; proposals += 1.0) {
      const double target = stream.uniform() * total;
      const double u = stream.uniform();
      index_t i = static_cast<index_t>(std::upper_bound(cumulative, cumulative + n, target) - cumulative);
      if (i >= n) i = n - 1;
      const double bound = sigma * weight[i];
      if (!(bound > 0.0)) continue;
      if (std::find(items.begin(), items.end(), static_cast<int64_t>(i)) != items.end()) continue;
      row(i, w.data());
      const double residual = orthogonalise(basis, t, r, w.data());
      if (u * bound < residual) {
        if (!append_direction(basis, t, r, w.data())) continue;
        items.push_back(i);
        accepted = true;
        break;
      }
    }
    if (!accepted) return false;
  }
  return true;
}

// Proposal cost model: expected floating-point work of the two phase-2 routes.
inline double harmonic(index_t r) {
  double h = 0.0;
  for (index_t s = 1; s <= r; ++s) h += 1.0 / static_cast<double>(s);
  return h;
}

// Phase 2 from the rows of Vt = V^T (m x n, each eigenvector contiguous). route: 0 chooses by
// cost, 1 rejection, 2 direct. Appends the sorted items.
inline void projection_from_rows(const double* Vt, index_t n, const std::vector<index_t>& chosen, UniformStream& stream,
                                 std::vector<int64_t>& items, int route = 0) {
  const index_t r = static_cast<index_t>(chosen.size());
  items.clear();
  if (r == 0) return;
  std::vector<const double*> cols(r);
  for (index_t c = 0; c < r; ++c) cols[c] = Vt + chosen[c] * n;
  std::vector<double> basis(static_cast<size_t>(r) * r, 0.0);
  std::vector<double> weight(n);
  row_norms_of_columns(cols, n, weight.data());
  const double rejection_cost = harmonic(r) * static_cast<double>(r) * static_cast<double>(r + 16);
  const bool use_rejection =
      route == 1 || route == 3 || (route == 0 && rejection_cost < static_cast<double>(n) * static_cast<double>(r));
  index_t t = 0;
  if (use_rejection) {
    std::vector<double> cumulative(n);
    double running = 0.0;
    for (index_t i = 0; i < n; ++i) {
      running += weight[i];
      cumulative[i] = running;
    }
    auto row = [&](index_t i, double* v) {
      for (index_t c = 0; c < r; ++c) v[c] = cols[c][i];
    };
    if (rejection_steps(row, n, r, weight.data(), cumulative.data(), 1.0, basis.data(), t, stream, items,
                        route == 3 ? r / 2 : -1)) {
      std::sort(items.begin(), items.end());
      return;
    }
  }
  direct_steps(cols, n, t == 0 ? weight.data() : nullptr, basis.data(), t, stream, items);
  std::sort(items.begin(), items.end());
}

// Phase 2 in the dual space of a factor L = B B^T (B: n x d, row-major): Mt (m x d) holds
// w_j / sqrt(theta_j) for the eigenpairs (theta_j, w_j) of B^T B, so v_i = (Mt_J b_i). Proposals
// use weight_i = |b_i|^2 (prefix sums `cumulative`) and sigma = 1 / min theta_J; the direct route
// forms the n x r block V_J. Returns true when it formed V_J (the costly route).
inline bool projection_dual(const double* B, index_t n, index_t d, const double* Mt, const double* theta,
                            const double* weight, const double* cumulative, const std::vector<index_t>& chosen,
                            UniformStream& stream, std::vector<int64_t>& items, int route = 0) {
  const index_t r = static_cast<index_t>(chosen.size());
  items.clear();
  if (r == 0) return false;
  std::vector<double> MJ(static_cast<size_t>(r) * d);
  double theta_min = std::numeric_limits<double>::infinity();
  for (index_t c = 0; c < r; ++c) {
    std::copy(Mt + chosen[c] * d, Mt + (chosen[c] + 1) * d, MJ.begin() + c * d);
    theta_min = std::min(theta_min, theta[chosen[c]]);
  }
  const double sigma = 1.0 / theta_min;
  const double total = cumulative[n - 1];
  const double h = harmonic(r);
  const double rejection_cost = sigma * total * h * static_cast<double>(d * r + r * r + 32);
  const double direct_cost = static_cast<double>(n) * static_cast<double>(d * r + r * r);
  std::vector<double> basis(static_cast<size_t>(r) * r, 0.0);
  index_t t = 0;
  const bool use_rejection = route == 1 || route == 3 || (route == 0 && rejection_cost < direct_cost);
  if (use_rejection && std::isfinite(sigma)) {
    auto row = [&](index_t i, double* v) {
      const double* b = B + i * d;
      for (index_t c = 0; c < r; ++c) {
        const double* mc = MJ.data() + c * d;
        double dot = 0.0;
        for (index_t l = 0; l < d; ++l) dot += mc[l] * b[l];
        v[c] = dot;
      }
    };
    if (rejection_steps(row, n, r, weight, cumulative, sigma, basis.data(), t, stream, items, route == 3 ? r / 2 : -1)) {
      std::sort(items.begin(), items.end());
      return false;
    }
  }
  // V_J column by column: VJ[c][i] = MJ_c . b_i.
  std::vector<double> VJ(static_cast<size_t>(r) * n);
  for (index_t i = 0; i < n; ++i) {
    const double* b = B + i * d;
    for (index_t c = 0; c < r; ++c) {
      const double* mc = MJ.data() + c * d;
      double dot = 0.0;
      for (index_t l = 0; l < d; ++l) dot += mc[l] * b[l];
      VJ[c * n + i] = dot;
    }
  }
  std::vector<const double*> cols(r);
  for (index_t c = 0; c < r; ++c) cols[c] = VJ.data() + c * n;
  direct_steps(cols, n, nullptr, basis.data(), t, stream, items);
  std::sort(items.begin(), items.end());
  return true;
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
// overwritten. block: diagonal block size of the right-looking blocked LDL^T. forced: decisions
// already made for items 0..n_forced-1 (1 included, 0 excluded), imposed instead of drawn (the
// sample is then the conditional DPP given them).
inline SequentialResult ldl_sample(double* A, index_t n, philox::Key key, u64 sample, index_t block,
                                   const signed char* forced = nullptr, index_t n_forced = 0) {
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
      const bool include =
          j < n_forced ? forced[j] != 0 : philox::uniform_at(key, base, static_cast<u64>(j)) < pivot;
      if (include) {
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

// Inputs of the spectral sampler: eigenvalues of L (lambda_l, may be inf for K with unit
// eigenvalues), of K (lambda_k) and log lambda_l, m of them; the ESP table for k-DPPs (k >= 0);
// and the eigenvectors either as rows Vt (m x n) or in dual form (B, Mt, weight, cumulative) for
// a factor L = B B^T (both may be given: each sample takes the cheaper route).
struct SpectralInput {
  index_t n = 0, m = 0, k = -1;
  const double* lambda_l = nullptr;
  const double* lambda_k = nullptr;
  const double* log_lambda = nullptr;
  const double* table = nullptr;
  const double* Vt = nullptr;
  const double* B = nullptr;
  index_t d = 0;
  const double* Mt = nullptr;
  const double* weight = nullptr;
  const double* cumulative = nullptr;
  int route = 0;  // 0: by cost, 1: rejection, 2: direct, 3: rejection for half the steps then direct (tests)
};

// Many spectral samples at once: sample s (0 <= s < count) reads the streams of logical sample
// first + s and writes out[s]. Returns how many samples formed V_J from the factor (a hint to
// form V once when that happens).
inline index_t spectral_batch(const SpectralInput& in, philox::Key key, u64 first, index_t count, int n_threads,
                              std::vector<std::vector<int64_t>>& out) {
  out.assign(count, {});
  std::vector<char> formed(count, 0);
  parallel_for(count, n_threads, [&](index_t s) {
    std::vector<index_t> chosen;
    const u64 sample = first + static_cast<u64>(s);
    if (in.k < 0)
      phase1_bernoulli(in.lambda_k, in.m, key, sample, chosen);
    else
      phase1_esp(in.log_lambda, in.m, in.k, in.table, key, sample, chosen);
    UniformStream stream(key, philox::make_counter(0, sample, kPurposePhase2));
    const index_t r = static_cast<index_t>(chosen.size());
    bool dual = in.B != nullptr;
    if (dual && in.Vt != nullptr && r > 0) {
      double theta_min = std::numeric_limits<double>::infinity();
      for (const index_t j : chosen) theta_min = std::min(theta_min, in.lambda_l[j]);
      const double h = harmonic(r);
      const double dual_cost = in.cumulative[in.n - 1] / theta_min * h * static_cast<double>(in.d * r + r * r + 32);
      const double rows_cost = static_cast<double>(in.n) * static_cast<double>(r) * 2.0 + h * r * (r * r + r);
      dual = in.route != 0 || dual_cost < rows_cost;
    }
    if (dual)
      formed[s] = projection_dual(in.B, in.n, in.d, in.Mt, in.lambda_l, in.weight, in.cumulative, chosen, stream, out[s],
                                  in.route);
    else
      projection_from_rows(in.Vt, in.n, chosen, stream, out[s], in.route);
  });
  index_t total = 0;
  for (const char f : formed) total += f;
  return total;
}

inline void projection_kernel_batch(const double* K, index_t n, index_t r, philox::Key key, u64 first, index_t count,
                                    int n_threads, std::vector<std::vector<int64_t>>& out) {
  out.assign(count, {});
  parallel_for(count, n_threads, [&](index_t s) { projection_from_kernel(K, n, r, key, first + static_cast<u64>(s), out[s]); });
}

}  // namespace dpp
}  // namespace randnla
