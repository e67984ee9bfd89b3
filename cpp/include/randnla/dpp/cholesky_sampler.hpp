// randnla/dpp/cholesky_sampler.hpp: one exact sample of the L-ensemble DPP(L) from ONE Cholesky
// factorization of M = I + L, plus O(n k^2) work (k = sample size).
//
// Items are decided in the order j = n-1, ..., 0. When item j is decided, the undecided set is
// R = {0..j}, the included set S holds items > j, and the excluded items are simply dropped: the
// conditioned process on R is the L-ensemble of
//     L_cur = L_RR - W_R W_R^T,   W = L_{:,S} chol(L_SS)^{-T}
// (one column per included item s, needed on rows < s only). With M = C C^T (C lower triangular,
// C = U^T for the upper factor that potrf('U') returns) and Z = C^{-1} W, rows 0..j of Z depend
// only on rows 0..j of W, and C_{0:j,0:j} is the Cholesky factor of M_RR. Woodbury gives
//     [(I + L_cur)^{-1}]_jj = (1 + z_j^T G_j^{-1} z_j) / C_jj^2,  G_j = I - sum_{i<=j} z_i z_i^T,
// (z_i = row i of Z), so P(j in Y | past) = 1 - that. Moving to j-1, G_{j-1} = G_j + z_j z_j^T
// (a stable rank-one Cholesky update). When j is included, with piv = L_jj - |W_{j,:}|^2,
//     new W column (rows < j) = (L_{0:j-1,j} - W_{0:j-1,:} W_{j,:}^T) / sqrt(piv),
//     new Z column (rows < j) = (C_{j,0:j-1}^T - Z_{0:j-1,:} W_{j,:}^T) / sqrt(piv),
// because M_{R,j} = C_RR C_{j,R}^T (R = {0..j-1}) makes C_RR^{-1} L_{R,j} = C_{j,R}^T: no
// triangular solve with C is ever needed. G gains a row and a column (bordering of its Cholesky
// factor). Every step costs O(k^2), every inclusion O(j k).
//
// Numerics: G is ill-conditioned when L has huge eigenvalues (K close to a projection). A bordering
// pivot of G that is not clearly above its rounding error, a conditional probability outside
// [0, 1] beyond rounding, or a non-positive Schur pivot stops the sampler: the decisions made so far
// are exact chain-rule decisions, and the caller finishes the sample from the marginal kernel with
// those decisions imposed (ldl_sample's `forced` prefix), so the law stays exact.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "randnla/common.hpp"
#include "randnla/parallel.hpp"
#include "randnla/philox.hpp"

namespace randnla {
namespace dpp {

constexpr u64 kPurposeCholeskyL = 0x4450500000000005ULL;

struct CholeskySampleResult {
  std::vector<int64_t> items;  // sorted
  // -1 when the sample is complete; otherwise items 0..undecided-1 are still undecided (items >=
  // undecided are decided: included iff listed in `items`), and the caller finishes the sample.
  index_t undecided = -1;
};

// U: column-major n x n with the upper Cholesky factor of M = I + L in its upper triangle
// (C_{j,i} = U[i + j n] for i <= j). Lrows: L with row j holding L_{j,0..j-1} contiguously at
// Lrows[j n + i] (the row-major symmetric L; the same triangle potrf read). Ldiag: diag(L).
// tolerance: relative accuracy demanded of the bordering pivots of G (see above).
inline void cholesky_l_sample(const double* U, const double* Lrows, const double* Ldiag, index_t n, philox::Key key,
                              u64 sample, double tolerance, CholeskySampleResult& result) {
  result.items.clear();
  result.undecided = -1;
  const philox::Counter base = philox::make_counter(0, sample, kPurposeCholeskyL);
  const double eps = std::numeric_limits<double>::epsilon();
  std::vector<std::vector<double>> Wc, Zc;  // columns of W and Z (column c has rows 0..item_c - 1)
  index_t k = 0, cap = 0;
  std::vector<double> R;  // lower Cholesky factor of G, column-major with leading dimension cap
  std::vector<double> solve, update, wj, gx;
  auto grow = [&]() {
    const index_t next = std::max<index_t>(16, 2 * cap);
    std::vector<double> bigger(static_cast<size_t>(next) * next, 0.0);
    for (index_t c = 0; c < k; ++c)
      for (index_t r = c; r < k; ++r) bigger[r + c * next] = R[r + c * cap];
    R.swap(bigger);
    cap = next;
    solve.resize(cap);
    update.resize(cap);
    wj.resize(cap);
    gx.resize(cap);
  };
  grow();
  for (index_t j = n - 1; j >= 0; --j) {
    // y = R^{-1} z_j (for z^T G^{-1} z) and R <- chol(R R^T + z z^T), one fused pass over R.
    for (index_t c = 0; c < k; ++c) solve[c] = update[c] = Zc[c][j];
    double quad = 0.0;
    const bool last = (j == 0);
    for (index_t i = 0; i < k; ++i) {
      double* col = R.data() + i * cap;
      const double rii = col[i];
      const double y = solve[i] / rii;
      quad += y * y;
      if (last) {
        for (index_t r = i + 1; r < k; ++r) solve[r] -= y * col[r];
        continue;
      }
      const double x = update[i];
      const double rnew = std::sqrt(rii * rii + x * x);
      const double cs = rnew / rii, sn = x / rii, inv_cs = rii / rnew;
      col[i] = rnew;
      for (index_t r = i + 1; r < k; ++r) {
        const double old = col[r];
        solve[r] -= y * old;
        const double updated = (old + sn * update[r]) * inv_cs;
        col[r] = updated;
        update[r] = cs * update[r] - sn * updated;
      }
    }
    const double cjj = U[j + j * n];
    const double q = (1.0 + quad) / (cjj * cjj);
    double p = 1.0 - q;
    if (!(p >= -1e-9 && p <= 1.0 + 1e-9)) {
      result.undecided = j + 1;
      break;
    }
    const double u = philox::uniform_at(key, base, static_cast<u64>(j));
    if (!(u < p)) continue;
    result.items.push_back(j);
    if (last) break;
    // W_{j,:}, the Schur pivot and the new columns of W and Z on rows 0..j-1.
    double w2 = 0.0;
    for (index_t c = 0; c < k; ++c) {
      wj[c] = Wc[c][j];
      w2 += wj[c] * wj[c];
    }
    const double piv = Ldiag[j] - w2;
    if (!(piv > 0.0)) {
      result.undecided = j;
      break;
    }
    const double scale = 1.0 / std::sqrt(piv);
    std::vector<double> wnew(Lrows + j * n, Lrows + j * n + j), znew(j);
    for (index_t i = 0; i < j; ++i) znew[i] = U[i + j * n];
    for (index_t c = 0; c < k; ++c) {
      const double f = wj[c];
      if (f == 0.0) continue;
      const double* wc = Wc[c].data();
      const double* zc = Zc[c].data();
      for (index_t i = 0; i < j; ++i) {
        wnew[i] -= wc[i] * f;
        znew[i] -= zc[i] * f;
      }
    }
    double z2 = 0.0;
    for (index_t i = 0; i < j; ++i) {
      wnew[i] *= scale;
      znew[i] *= scale;
      z2 += znew[i] * znew[i];
    }
    // Bordering: G_new = [[G, g], [g^T, 1 - |z_new|^2]], g_c = -sum_{i<j} z_new_i Z_{i,c}.
    for (index_t c = 0; c < k; ++c) {
      const double* zc = Zc[c].data();
      double dot = 0.0;
      for (index_t i = 0; i < j; ++i) dot += zc[i] * znew[i];
      gx[c] = -dot;
    }
    double x2 = 0.0;
    for (index_t i = 0; i < k; ++i) {  // forward substitution R x = g
      const double* col = R.data() + i * cap;
      const double xi = gx[i] / col[i];
      gx[i] = xi;
      x2 += xi * xi;
      for (index_t r = i + 1; r < k; ++r) gx[r] -= xi * col[r];
    }
    const double d = (1.0 - z2) - x2;
    if (!(d > tolerance * (1.0 + z2 + x2)) || !(d > 64.0 * eps * (1.0 + z2 + x2))) {
      result.undecided = j;
      break;
    }
    if (k == cap) grow();
    for (index_t c = 0; c < k; ++c) R[k + c * cap] = gx[c];
    R[k + k * cap] = std::sqrt(d);
    Wc.push_back(std::move(wnew));
    Zc.push_back(std::move(znew));
    ++k;
  }
  std::reverse(result.items.begin(), result.items.end());
}

inline void cholesky_l_batch(const double* U, const double* Lrows, const double* Ldiag, index_t n, philox::Key key,
                             u64 first, index_t count, int n_threads, double tolerance,
                             std::vector<CholeskySampleResult>& out) {
  out.assign(count, {});
  parallel_for(count, n_threads, [&](index_t s) {
    cholesky_l_sample(U, Lrows, Ldiag, n, key, first + static_cast<u64>(s), tolerance, out[s]);
  });
}

// Lt_ij = (B_ij + B_ji) * (s_i * s_j), the exactly symmetric scaled sum of a square block B and
// its transpose (row-major, n x n, written to lt; the same roundings as the elementwise NumPy
// expression), and m = I + Lt (n x n, either order: it is symmetric), ready for potrf.
inline void scaled_symmetric_sum(const double* B, const double* s, index_t n, double* lt, double* m) {
  for (index_t i = 0; i < n; ++i) {
    const double si = s[i];
    for (index_t j = 0; j <= i; ++j) {
      const double v = (B[i * n + j] + B[j * n + i]) * (si * s[j]);
      lt[i * n + j] = v;
      lt[j * n + i] = v;
      m[i * n + j] = v;
      m[j * n + i] = v;
    }
    m[i * n + i] += 1.0;
  }
}

}  // namespace dpp
}  // namespace randnla
