// randnla/dpp/alpha_proposal.hpp: the array work of one alpha-DPP intermediate sample (attempt).
//
// The proposal is a Poisson process with intensity c u_i on static bounds u_i (prefix sums
// `cumulative`, total `total`), thinned draw by draw to intensity c l_i through the best known
// bound b_i >= l_i (b_i = l_i once refined). Given the attempt's t position uniforms v_d and t
// thinning uniforms w_d:
//   positions p_d = #{i : cumulative_i <= sort(v)_d * total} (clipped to n - 1),
//   x_d = w_d u_{p_d},   draw d kept iff x_d < b_{p_d},
// with the same floating-point operations as the NumPy expressions (sort, searchsorted right,
// elementwise products), so the decisions are bitwise those of the NumPy version.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "randnla/common.hpp"

namespace randnla {
namespace dpp {

// positions p (t entries, nondecreasing) and x from the 2t uniforms r (positions then thinning);
// returns true iff some draw lands on an item whose score is not refined yet (refined[p] == 0).
inline bool alpha_positions(const double* r, index_t t, const double* cumulative, const double* upper, index_t n,
                            double total, const uint8_t* refined, int64_t* p, double* x) {
  std::vector<double> v(r, r + t);
  std::sort(v.begin(), v.end());
  bool pending = false;
  index_t pos = 0;  // queries are sorted: the answer never decreases
  for (index_t d = 0; d < t; ++d) {
    const double q = v[d] * total;
    // first index with cumulative > q, from pos on (upper_bound)
    if (pos < n && !(cumulative[pos] > q)) {
      index_t lo = pos, step = 1;  // galloping: short gaps between sorted queries are common
      index_t hi = pos + 1;
      while (hi < n && !(cumulative[hi] > q)) {
        lo = hi;
        step *= 2;
        hi = std::min(n, hi + step);
      }
      pos = static_cast<index_t>(std::upper_bound(cumulative + lo, cumulative + hi, q) - cumulative);
    }
    const index_t i = std::min(pos, n - 1);
    p[d] = static_cast<int64_t>(i);
    x[d] = r[t + d] * upper[i];
    if (!refined[i]) pending = true;
  }
  return pending;
}

// The kept draws (x_d < bound[p_d]) as distinct items (increasing, p sorted) with their counts;
// returns the number of kept draws.
inline index_t alpha_keep(const int64_t* p, const double* x, index_t t, const double* bound,
                          std::vector<int64_t>& items, std::vector<int64_t>& counts) {
  items.clear();
  counts.clear();
  index_t kept = 0;
  for (index_t d = 0; d < t; ++d) {
    const int64_t i = p[d];
    if (!(x[d] < bound[i])) continue;
    ++kept;
    if (!items.empty() && items.back() == i) {
      ++counts.back();
    } else {
      items.push_back(i);
      counts.push_back(1);
    }
  }
  return kept;
}

}  // namespace dpp
}  // namespace randnla
