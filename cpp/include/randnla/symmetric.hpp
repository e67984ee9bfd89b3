// randnla/symmetric.hpp: one-pass helpers for square matrices shared by the areas that take a
// symmetric input (linalg, dpp, cones): the asymmetry test behind every symmetric-input check,
// and filling one triangle from the other after a LAPACK routine that writes only half.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>

#include "randnla/common.hpp"
#include "randnla/parallel.hpp"

namespace randnla {

// Tile edge: a tile and its mirror stay in L1 while both are read.
constexpr index_t kSymmetricTile = 32;

// For the row-major n x n matrix a (row stride rs): max |a_ij - a_ji| and max |a_ij|, read in one
// pass over mirrored tile pairs. A NaN entry makes both results NaN (like NumPy's max), so the
// caller's comparison fails open and its finiteness check reports the NaN instead.
template <class T>
void asymmetry(const T* a, index_t n, index_t rs, double& max_diff, double& max_abs) {
  double diff = 0.0, big = 0.0;
  bool nan = false;
  for (index_t ib = 0; ib < n; ib += kSymmetricTile) {
    const index_t ie = std::min(n, ib + kSymmetricTile);
    for (index_t jb = 0; jb <= ib; jb += kSymmetricTile) {
      const index_t je = std::min(n, jb + kSymmetricTile);
      for (index_t i = ib; i < ie; ++i) {
        const index_t jend = (jb == ib) ? i + 1 : je;
        const T* row = a + i * rs;
        for (index_t j = jb; j < jend; ++j) {
          const double x = row[j], y = a[j * rs + i];
          const double d = std::abs(x - y);
          nan |= (x != x) | (y != y);
          diff = d > diff ? d : diff;
          const double m = std::max(std::abs(x), std::abs(y));
          big = m > big ? m : big;
        }
      }
    }
  }
  const double qnan = std::numeric_limits<double>::quiet_NaN();
  max_diff = nan ? qnan : diff;
  max_abs = nan ? qnan : big;
}

// Batched: count matrices of n x n, consecutive (matrix stride n * n, row stride n), in parallel.
template <class T>
void asymmetry_batch(const T* a, index_t count, index_t n, double* max_diff, double* max_abs, int n_threads) {
  parallel_for(count, n_threads, [&](index_t b) { asymmetry(a + b * n * n, n, n, max_diff[b], max_abs[b]); });
}

// Column-major n x n a (leading dimension lda) with its lower triangle valid: copy it into the
// upper triangle (tile by tile, so both sides stay in cache).
template <class T>
void fill_upper_from_lower(T* a, index_t n, index_t lda) {
  for (index_t jb = 0; jb < n; jb += kSymmetricTile) {
    const index_t je = std::min(n, jb + kSymmetricTile);
    for (index_t ib = jb; ib < n; ib += kSymmetricTile) {
      const index_t ie = std::min(n, ib + kSymmetricTile);
      for (index_t j = jb; j < je; ++j)
        for (index_t i = std::max(ib, j + 1); i < ie; ++i) a[i * lda + j] = a[j * lda + i];
    }
  }
}

}  // namespace randnla
