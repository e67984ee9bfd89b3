// randnla/sketch/coordinated.hpp: the coordination hash and the one-pass selection behind
// priority and threshold sampling (randnla.sketch.priority_sample / threshold_sample).
//
// Coordination hash, version 1 (a pure function of (seed, key), identical on every platform):
//   w = first 64-bit word of Philox4x64-10(counter = (key mod 2^64, 0, 0, kCoordinationTag),
//                                          key     = (seed mod 2^64, kCoordinationKeyWord))
//   h = (floor(w / 2^11) + 0.5) / 2^53            in (0, 1), never 0 or 1
// Usable from CUDA (RANDNLA_HOST_DEVICE) so that GPU sketches hash to the same bits.
#pragma once

#include "randnla/config.hpp"
#include "randnla/philox.hpp"

#if !defined(__CUDACC_RTC__)
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "randnla/common.hpp"
#include "randnla/parallel.hpp"
#endif

namespace randnla {
namespace sketch {

constexpr int kCoordinationHashVersion = 1;
constexpr u64 kCoordinationTag = 0x436f6f7264486173ULL;      // "CoordHas"
constexpr u64 kCoordinationKeyWord = 0x72616e646e6c6131ULL;  // "randnla1"

RANDNLA_HOST_DEVICE inline double coordination_hash(u64 seed, u64 key) {
  philox::Counter counter;
  counter.v[0] = key;
  counter.v[1] = 0;
  counter.v[2] = 0;
  counter.v[3] = kCoordinationTag;
  philox::Key k;
  k.v[0] = seed;
  k.v[1] = kCoordinationKeyWord;
  const philox::Block block = philox::philox4x64_10(counter, k);
  return (static_cast<double>(block.v[0] >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

#if !defined(__CUDACC_RTC__) && !defined(__CUDACC__)

inline void coordination_hash_many(u64 seed, const i64* keys, index_t n, double* out, int n_threads) {
  parallel_for_chunks(n, 1 << 14, n_threads, [&](index_t begin, index_t end, index_t) {
    for (index_t i = begin; i < end; ++i) out[i] = coordination_hash(seed, static_cast<u64>(keys[i]));
  });
}

// Squared row norms in double (float data is accumulated in double too).
template <class T>
void row_norms_sq_dense(const T* a, index_t n, index_t d, index_t rs, index_t cs, double* out, int n_threads) {
  parallel_for_chunks(n, 1024, n_threads, [&](index_t begin, index_t end, index_t) {
    for (index_t i = begin; i < end; ++i) {
      const T* row = a + i * rs;
      double sum = 0.0;
      for (index_t c = 0; c < d; ++c) {
        const double v = static_cast<double>(row[c * cs]);
        sum += v * v;
      }
      out[i] = sum;
    }
  });
}

template <class T, class I>
void row_norms_sq_csr(const T* data, const I* indptr, index_t n, double* out, int n_threads) {
  parallel_for_chunks(n, 4096, n_threads, [&](index_t begin, index_t end, index_t) {
    for (index_t i = begin; i < end; ++i) {
      double sum = 0.0;
      for (I q = indptr[i]; q < indptr[i + 1]; ++q) {
        const double v = static_cast<double>(data[q]);
        sum += v * v;
      }
      out[i] = sum;
    }
  });
}

// Priority ranks h(seed, key_i) / w_i (+inf for w_i == 0), then the positions of the (up to)
// `count` smallest ranks, ordered by (rank, key). Returns how many were selected.
inline index_t priority_select(u64 seed, const i64* keys, const double* w, index_t n, index_t count, double* ranks,
                               i64* selected, int n_threads) {
  const double infinity = std::numeric_limits<double>::infinity();
  parallel_for_chunks(n, 1 << 14, n_threads, [&](index_t begin, index_t end, index_t) {
    for (index_t i = begin; i < end; ++i)
      ranks[i] = w[i] > 0.0 ? coordination_hash(seed, static_cast<u64>(keys[i])) / w[i] : infinity;
  });
  std::vector<i64> candidates;
  candidates.reserve(static_cast<size_t>(n));
  for (index_t i = 0; i < n; ++i)
    if (w[i] > 0.0) candidates.push_back(i);
  auto less = [&](i64 x, i64 y) { return ranks[x] < ranks[y] || (ranks[x] == ranks[y] && keys[x] < keys[y]); };
  const index_t take = std::min<index_t>(count, static_cast<index_t>(candidates.size()));
  if (take < static_cast<index_t>(candidates.size()))
    std::nth_element(candidates.begin(), candidates.begin() + take, candidates.end(), less);
  std::sort(candidates.begin(), candidates.begin() + take, less);
  for (index_t t = 0; t < take; ++t) selected[t] = candidates[t];
  return take;
}

// The water-filling constant c with sum_i min(1, c w_i) = k over the rows with w_i > 0
// (+inf when at most k rows are nonzero).
inline double threshold_constant(const double* w, index_t n, index_t k) {
  std::vector<double> sorted;
  sorted.reserve(static_cast<size_t>(n));
  for (index_t i = 0; i < n; ++i)
    if (w[i] > 0.0) sorted.push_back(w[i]);
  const index_t count = static_cast<index_t>(sorted.size());
  if (count <= k) return std::numeric_limits<double>::infinity();
  std::sort(sorted.begin(), sorted.end(), [](double a, double b) { return a > b; });
  // suffix[s] = sum of sorted[s:], summed from the smallest up for accuracy
  std::vector<double> suffix(static_cast<size_t>(count + 1), 0.0);
  for (index_t s = count - 1; s >= 0; --s) suffix[s] = suffix[s + 1] + sorted[s];
  for (index_t s = 0; s < k; ++s) {
    const double c = static_cast<double>(k - s) / suffix[s];
    if (c * sorted[s] <= 1.0 && (s == 0 || c * sorted[s - 1] >= 1.0)) return c;
  }
  // Numerically unreachable for count > k; the largest saturated solution is the safe answer.
  return static_cast<double>(1) / sorted[k - 1];
}

#endif

}  // namespace sketch
}  // namespace randnla
