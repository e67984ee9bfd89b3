// randnla/dpp/tridiagonal.hpp: all eigenvalues of a real symmetric tridiagonal matrix, for the
// tridiagonal beta-ensemble models.
//
// Method: Sturm-count bisection isolates every eigenvalue in an interval holding no other one,
// then Laguerre's iteration on the characteristic polynomial (all roots real: it moves
// monotonically to the adjacent root, cubically) converges inside that interval, with bisection
// whenever a step would leave it. Both use the continuant p_i(x) = det(T_{0..i-1} - x I):
//   p_{i+1} = (a_i - x) p_i - b_{i-1}^2 p_{i-1}
// (and its first two derivatives, by differentiating the recurrence), whose number of sign
// changes is the number of eigenvalues below x (Sturm). It is evaluated without divisions for W
// shifts at once (W independent eigenvalues in SIMD lanes), rescaling by powers of two (exact).
// Every eigenvalue is computed independently of the others and of the thread that computes it,
// so the result does not depend on the number of threads. Accuracy: absolute error of order
// eps ||T|| per eigenvalue, like LAPACK's dsterf.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "randnla/common.hpp"
#include "randnla/parallel.hpp"

namespace randnla {
namespace dpp {

constexpr int kTridiagonalLanes = 16;

// GCC/Clang vector extensions: 8 lanes per vector (elementwise IEEE operations, so lanes never
// interact and a lane's result does not depend on what the other lanes hold).
typedef double tri_vd __attribute__((vector_size(64)));
typedef long long tri_vl __attribute__((vector_size(64)));
constexpr int kTridiagonalVector = 8;

// Rescales lanes whose largest magnitude left [2^-400, 2^400] by a power of two (exact); the
// range check is vectorised, the (rare) rescaling is not.
template <int G, int K>
inline void tridiagonal_rescale(tri_vd (&values)[K][G]) {
  constexpr int V = kTridiagonalVector;
  const double big = std::ldexp(1.0, 400), small = std::ldexp(1.0, -400);
  const long long magnitude = 0x7fffffffffffffffLL;
  tri_vl out_of_range = tri_vl{};
  for (int g = 0; g < G; ++g) {
    tri_vl any_big = tri_vl{}, all_small = tri_vl{} - 1;
    for (int k = 0; k < K; ++k) {
      const tri_vd absolute = (tri_vd)((tri_vl)values[k][g] & magnitude);
      any_big |= absolute > big;
      all_small &= absolute < small;
    }
    out_of_range |= any_big | all_small;
  }
  long long flag = 0;
  for (int l = 0; l < V; ++l) flag |= out_of_range[l];
  if (!flag) return;
  for (int g = 0; g < G; ++g)
    for (int l = 0; l < V; ++l) {
      double m = 0.0;
      for (int k = 0; k < K; ++k) m = std::max(m, std::fabs(values[k][g][l]));
      if (m > big || (m < small && m > 0.0)) {
        const int e = std::ilogb(m);
        for (int k = 0; k < K; ++k) values[k][g][l] = std::ldexp(values[k][g][l], -e);
      }
    }
}

// Sturm counts: count[l] = number of eigenvalues < x[l] of the tridiagonal matrix with diagonal
// a (n) and squared off-diagonal b2 (n - 1), for W shifts at once.
inline void tridiagonal_count(const double* a, const double* b2, index_t n, const double* x, int* count) {
  constexpr int W = kTridiagonalLanes, V = kTridiagonalVector, G = W / V;
  static_assert(W % V == 0, "lanes");
  tri_vd values[2][G], xs[G];  // values[0] = p_i, values[1] = p_{i-1}
  tri_vl neg[G], cnt[G];
  for (int g = 0; g < G; ++g) {
    for (int l = 0; l < V; ++l) xs[g][l] = x[g * V + l];
    values[1][g] = tri_vd{} + 1.0;  // p_0
    values[0][g] = a[0] - xs[g];     // p_1
    neg[g] = values[0][g] <= 0.0;   // -1 where negative; a zero p_1 counts as a sign change
    cnt[g] = tri_vl{} - neg[g];
  }
  index_t i = 1;
  while (i < n) {
    const index_t stop = std::min(n, i + 8);
    for (; i < stop; ++i) {
      const double ai = a[i], bi = b2[i - 1];
      for (int g = 0; g < G; ++g) {
        const tri_vd pn = (ai - xs[g]) * values[0][g] - bi * values[1][g];
        values[1][g] = values[0][g];
        values[0][g] = pn;
        // sign of p_{i+1}; a zero takes the sign opposite to p_i (one change, none at the next step)
        const tri_vl negative = pn < 0.0, positive = pn > 0.0;
        const tri_vl nn = negative | (~(negative | positive) & ~neg[g]);
        cnt[g] -= nn ^ neg[g];
        neg[g] = nn;
      }
    }
    tridiagonal_rescale<G, 2>(values);
  }
  for (int g = 0; g < G; ++g)
    for (int l = 0; l < V; ++l) count[g * V + l] = static_cast<int>(cnt[g][l]);
}

// Laguerre terms at W shifts: first[l] = p'/p = sum 1/(x - lambda), second[l] = first^2 - p''/p
// = sum 1/(x - lambda)^2, negative[l] = whether p_n(x) < 0 (the parity of the Sturm count) and
// zero[l] = whether p_n(x) = 0.
inline void tridiagonal_laguerre(const double* a, const double* b2, index_t n, const double* x, double* first,
                                 double* second, int* negative, int* zero) {
  constexpr int W = kTridiagonalLanes, V = kTridiagonalVector, G = W / V;
  // values: p_i, p_{i-1}, p'_i, p'_{i-1}, p''_i, p''_{i-1}
  tri_vd values[6][G], xs[G];
  for (int g = 0; g < G; ++g) {
    for (int l = 0; l < V; ++l) xs[g][l] = x[g * V + l];
    values[1][g] = tri_vd{} + 1.0;
    values[0][g] = a[0] - xs[g];
    values[3][g] = tri_vd{};
    values[2][g] = tri_vd{} - 1.0;
    values[5][g] = tri_vd{};
    values[4][g] = tri_vd{};
  }
  index_t i = 1;
  while (i < n) {
    const index_t stop = std::min(n, i + 8);
    for (; i < stop; ++i) {
      const double ai = a[i], bi = b2[i - 1];
      for (int g = 0; g < G; ++g) {
        const tri_vd shift = ai - xs[g];
        const tri_vd p = values[0][g], q = values[2][g], r = values[4][g];
        const tri_vd pn = shift * p - bi * values[1][g];
        const tri_vd qn = (shift * q - p) - bi * values[3][g];
        const tri_vd rn = (shift * r - (q + q)) - bi * values[5][g];
        values[1][g] = p;
        values[3][g] = q;
        values[5][g] = r;
        values[0][g] = pn;
        values[2][g] = qn;
        values[4][g] = rn;
      }
    }
    tridiagonal_rescale<G, 6>(values);
  }
  for (int g = 0; g < G; ++g)
    for (int l = 0; l < V; ++l) {
      const double p = values[0][g][l];
      const double gq = values[2][g][l] / p;
      first[g * V + l] = gq;
      second[g * V + l] = gq * gq - values[4][g][l] / p;
      negative[g * V + l] = p < 0.0 ? 1 : 0;
      zero[g * V + l] = p == 0.0 ? 1 : 0;
    }
}

namespace detail {

struct Bracket {
  double lo, hi;
  int count_lo, count_hi;
};

// Eigenvalues of one unreduced block (a, b2 scaled so that |T| <= about 1), ascending, into out.
inline void tridiagonal_block(const double* a, const double* b2, index_t n, double tnorm, int n_threads, double* out) {
  constexpr int W = kTridiagonalLanes;
  const double eps = std::numeric_limits<double>::epsilon();
  if (n == 1) {
    out[0] = a[0];
    return;
  }
  double gl = std::numeric_limits<double>::infinity(), gu = -gl;
  for (index_t i = 0; i < n; ++i) {
    double radius = 0.0;
    if (i > 0) radius += std::sqrt(b2[i - 1]);
    if (i + 1 < n) radius += std::sqrt(b2[i]);
    gl = std::min(gl, a[i] - radius);
    gu = std::max(gu, a[i] + radius);
  }
  const double pad = 4.0 * eps * tnorm * static_cast<double>(n) + std::numeric_limits<double>::min();
  gl -= pad;
  gu += pad;
  const double floor = eps * tnorm;
  auto tolerance = [&](double x) { return 2.0 * eps * std::fabs(x) + floor; };

  // 1. isolation: level-synchronous bisection of the intervals holding two or more eigenvalues
  std::vector<Bracket> pending{{gl, gu, 0, static_cast<int>(n)}}, next, isolated;
  isolated.reserve(n);
  std::vector<double> mids;
  std::vector<int> counts;
  while (!pending.empty()) {
    const index_t m = static_cast<index_t>(pending.size());
    const index_t batches = (m + W - 1) / W;
    mids.assign(batches * W, 0.0);
    counts.assign(batches * W, 0);
    for (index_t j = 0; j < m; ++j) mids[j] = 0.5 * (pending[j].lo + pending[j].hi);
    for (index_t j = m; j < batches * W; ++j) mids[j] = mids[0];
    // serial: one parallel region per level costs more than it saves (few evaluations per level)
    for (index_t batch = 0; batch < batches; ++batch)
      tridiagonal_count(a, b2, n, mids.data() + batch * W, counts.data() + batch * W);
    next.clear();
    for (index_t j = 0; j < m; ++j) {
      const Bracket& br = pending[j];
      const double mid = mids[j];
      const int c = std::min(std::max(counts[j], br.count_lo), br.count_hi);
      const Bracket left{br.lo, mid, br.count_lo, c}, right{mid, br.hi, c, br.count_hi};
      for (const Bracket& part : {left, right}) {
        const int inside = part.count_hi - part.count_lo;
        if (inside == 0) continue;
        if (inside == 1) {
          isolated.push_back(part);
        } else if (part.hi - part.lo <= tolerance(0.5 * (part.lo + part.hi)) || !(part.lo < 0.5 * (part.lo + part.hi) &&
                                                                                 0.5 * (part.lo + part.hi) < part.hi)) {
          // a cluster within working accuracy: every eigenvalue in it is the midpoint
          const double value = 0.5 * (part.lo + part.hi);
          for (int e = part.count_lo; e < part.count_hi; ++e) out[e] = value;
        } else {
          next.push_back(part);
        }
      }
    }
    pending.swap(next);
  }

  // 2. safeguarded Newton inside each isolating interval, W intervals per evaluation
  const index_t m = static_cast<index_t>(isolated.size());
  constexpr index_t chunk = 4 * W;
  // threads only for large blocks: below that a parallel region costs more than it saves
  const int threads = n >= 3000 ? n_threads : 1;
  parallel_for_chunks(m, chunk, threads, [&](index_t begin, index_t end, index_t) {
    double x[W], first[W], second[W], lo[W], hi[W];
    int negative[W], zero[W], target[W], iterations[W];
    index_t slot[W];
    index_t next_item = begin;
    int active = 0;
    const double order = static_cast<double>(n);
    auto load = [&](int l) {
      if (next_item < end) {
        const Bracket& br = isolated[next_item];
        slot[l] = next_item++;
        lo[l] = br.lo;
        hi[l] = br.hi;
        target[l] = br.count_lo;  // the eigenvalue with index count_lo lies in [lo, hi)
        x[l] = 0.5 * (br.lo + br.hi);
        iterations[l] = 0;
        ++active;
      } else {
        slot[l] = -1;
        x[l] = lo[l] = hi[l] = 0.5 * (gl + gu);
      }
    };
    for (int l = 0; l < W; ++l) load(l);
    while (active > 0) {
      tridiagonal_laguerre(a, b2, n, x, first, second, negative, zero);
      for (int l = 0; l < W; ++l) {
        if (slot[l] < 0) continue;
        const double xl = x[l];
        ++iterations[l];
        bool done = false;
        double result = 0.0;
        bool above = false;
        if (zero[l]) {
          done = true;  // p_n(x) = 0: x is the eigenvalue
          result = xl;
        } else {
          // inside the isolating interval the count below x is target or target + 1; the sign of
          // p_n(x) = prod (lambda - x) gives its parity, hence the side of the eigenvalue
          above = (negative[l] & 1) == (target[l] & 1);
          if (above)
            lo[l] = xl;
          else
            hi[l] = xl;
        }
        double candidate = std::numeric_limits<double>::quiet_NaN();
        if (!done) {
          // Laguerre's iteration: between two consecutive roots its two branches move
          // monotonically to the root below and to the root above (cubic convergence)
          const double g1 = first[l], h = second[l];
          double disc = (order - 1.0) * (order * h - g1 * g1);
          disc = disc > 0.0 ? std::sqrt(disc) : 0.0;
          const double up = xl - order / (g1 - disc), down = xl - order / (g1 + disc);
          candidate = above ? up : down;
          const double move = std::fabs(candidate - xl);
          if (std::isfinite(candidate) && move <= tolerance(xl)) {
            done = true;
            result = std::min(std::max(candidate, lo[l]), hi[l]);
          } else if (hi[l] - lo[l] <= tolerance(0.5 * (lo[l] + hi[l])) || iterations[l] >= 200) {
            done = true;
            result = 0.5 * (lo[l] + hi[l]);
          }
        }
        if (done) {
          out[isolated[slot[l]].count_lo] = result;
          --active;
          load(l);
          continue;
        }
        // the Laguerre step when it stays strictly inside the bracket, else bisection
        if (std::isfinite(candidate) && candidate > lo[l] && candidate < hi[l] && iterations[l] < 60)
          x[l] = candidate;
        else
          x[l] = 0.5 * (lo[l] + hi[l]);
      }
    }
  });
}

}  // namespace detail

// All eigenvalues, ascending, of the symmetric tridiagonal matrix with diagonal d (n) and
// off-diagonal e (n - 1). Returns false if the input is not finite.
inline bool tridiagonal_eigenvalues(const double* d, const double* e, index_t n, int n_threads, double* out) {
  if (n <= 0) return true;
  const double eps = std::numeric_limits<double>::epsilon();
  double tnorm = 0.0;
  for (index_t i = 0; i < n; ++i) {
    double row = std::fabs(d[i]);
    if (i > 0) row += std::fabs(e[i - 1]);
    if (i + 1 < n) row += std::fabs(e[i]);
    if (!std::isfinite(row)) return false;
    tnorm = std::max(tnorm, row);
  }
  if (tnorm == 0.0) {
    std::fill(out, out + n, 0.0);
    return true;
  }
  // scale by a power of two (exact) so that |T| is about 1
  const int exponent = std::ilogb(tnorm);
  std::vector<double> a(n), b2(n > 1 ? n - 1 : 1);
  for (index_t i = 0; i < n; ++i) a[i] = std::ldexp(d[i], -exponent);
  const double scaled_norm = std::ldexp(tnorm, -exponent);
  // split where an off-diagonal is negligible (as LAPACK does), then solve each block
  index_t start = 0;
  for (index_t i = 0; i < n; ++i) {
    bool split = i == n - 1;
    if (!split) {
      const double b = std::ldexp(std::fabs(e[i]), -exponent);
      split = b <= eps * std::sqrt(std::fabs(a[i])) * std::sqrt(std::fabs(a[i + 1])) || b <= eps * eps * scaled_norm;
      b2[i] = b * b;
    }
    if (split) {
      detail::tridiagonal_block(a.data() + start, b2.data() + start, i + 1 - start, scaled_norm, n_threads, out + start);
      start = i + 1;
    }
  }
  for (index_t i = 0; i < n; ++i) out[i] = std::ldexp(out[i], exponent);
  std::sort(out, out + n);
  return true;
}

}  // namespace dpp
}  // namespace randnla
