// randnla/sketch/normal_pass.hpp: one pass over a dense tall A for the normal-equations iterations
// of randnla.sketch.lstsq.
//
//   q = A t            (or q = b - A t when b is given)
//   u = A^T q,   returns ||q||^2
//
// Each row of A is read from memory once: its dot product with t and its contribution q_i a_i to
// u are computed while the row is in L1. Rows are split into chunks of a fixed size (independent
// of the thread count); each chunk accumulates its own partial u and ||q||^2 in row order, and the
// partials are added in chunk order, so the result is bitwise identical for any n_threads.
#pragma once

#include <algorithm>
#include <cstring>
#if defined(__AVX__)
#include <immintrin.h>
#endif
#include <vector>

#include "randnla/common.hpp"
#include "randnla/parallel.hpp"

namespace randnla {
namespace sketch {

constexpr index_t kNormalPassChunkRows = 1024;
// Row groups of four ahead whose cache lines are prefetched during the current group's update of
// A^T q (the hardware prefetcher alone leaves one core well below the memory bandwidth).
constexpr index_t kAhead = 1;

// Four consecutive elements widened to double (GCC/Clang vector extensions: one SIMD load, and
// one conversion for float, on any target with 256-bit vectors; emulated elsewhere).
typedef double np_v4d __attribute__((vector_size(32)));
typedef float np_v4f __attribute__((vector_size(16)));

inline np_v4d load4(const double* p) {
  np_v4d v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline np_v4d load4(const float* p) {
#if defined(__AVX__)
  return reinterpret_cast<np_v4d>(_mm256_cvtps_pd(_mm_loadu_ps(p)));  // GCC splits convertvector
#else
  np_v4f v;
  std::memcpy(&v, p, sizeof v);
  return __builtin_convertvector(v, np_v4d);
#endif
}

inline void store4(double* p, np_v4d v) { std::memcpy(p, &v, sizeof v); }

inline np_v4d splat4(double x) { return np_v4d{x, x, x, x}; }

// Sum of eight partial sums held as lo (lanes 0-3) and hi (lanes 4-7), in a fixed tree.
inline double hsum8(np_v4d lo, np_v4d hi) {
  return ((lo[0] + hi[0]) + (lo[1] + hi[1])) + ((lo[2] + hi[2]) + (lo[3] + hi[3]));
}

// Dot products of four rows with y in double: each row keeps eight partial sums (element j goes
// to partial sum j mod 8), the four rows interleaved so that no add waits on another; then the
// fixed tree of hsum8 and the tail.
template <class TA>
inline void dot4(const TA* __restrict r0, const TA* __restrict r1, const TA* __restrict r2, const TA* __restrict r3,
                 const double* __restrict y, index_t d, double* q) {
  np_v4d l0 = splat4(0.0), h0 = l0, l1 = l0, h1 = l0, l2 = l0, h2 = l0, l3 = l0, h3 = l0;
  index_t j = 0;
  for (; j + 8 <= d; j += 8) {
    const np_v4d ylo = load4(y + j), yhi = load4(y + j + 4);
    l0 += load4(r0 + j) * ylo;
    h0 += load4(r0 + j + 4) * yhi;
    l1 += load4(r1 + j) * ylo;
    h1 += load4(r1 + j + 4) * yhi;
    l2 += load4(r2 + j) * ylo;
    h2 += load4(r2 + j + 4) * yhi;
    l3 += load4(r3 + j) * ylo;
    h3 += load4(r3 + j + 4) * yhi;
  }
  double t0 = 0.0, t1 = 0.0, t2 = 0.0, t3 = 0.0;
  for (; j < d; ++j) {
    t0 += static_cast<double>(r0[j]) * y[j];
    t1 += static_cast<double>(r1[j]) * y[j];
    t2 += static_cast<double>(r2[j]) * y[j];
    t3 += static_cast<double>(r3[j]) * y[j];
  }
  q[0] = hsum8(l0, h0) + t0;
  q[1] = hsum8(l1, h1) + t1;
  q[2] = hsum8(l2, h2) + t2;
  q[3] = hsum8(l3, h3) + t3;
}

// The same for one row.
template <class TA>
inline double dot_unrolled(const TA* __restrict x, const double* __restrict y, index_t d) {
  np_v4d lo = splat4(0.0), hi = lo;
  index_t j = 0;
  for (; j + 8 <= d; j += 8) {
    lo += load4(x + j) * load4(y + j);
    hi += load4(x + j + 4) * load4(y + j + 4);
  }
  double tail = 0.0;
  for (; j < d; ++j) tail += static_cast<double>(x[j]) * y[j];
  return hsum8(lo, hi) + tail;
}

// a: n x d (TA = double or float), row stride rs >= d (C order); t: d; b: n or nullptr; u: d
// (output, double). copy (n x d float, C order) or nullptr: receives A rounded to float during the
// same pass (for the float32 inner iterations of lstsq).
template <class TA>
double normal_pass(const TA* a, index_t n, index_t d, index_t rs, const double* t, const double* b, double* u,
                   float* copy, int n_threads) {
  std::fill(u, u + d, 0.0);
  if (n == 0 || d == 0) {
    double qq = 0.0;
    if (b != nullptr && d == 0)
      for (index_t i = 0; i < n; ++i) qq += b[i] * b[i];
    return qq;
  }
  const index_t chunks = (n + kNormalPassChunkRows - 1) / kNormalPassChunkRows;
  std::vector<double> partial(static_cast<size_t>(chunks * d));
  std::vector<double> partial_qq(static_cast<size_t>(chunks));
  parallel_for(chunks, n_threads, [&](index_t c) {
    const index_t begin = c * kNormalPassChunkRows, end = std::min(n, begin + kNormalPassChunkRows);
    double* __restrict acc = partial.data() + c * d;
    std::fill(acc, acc + d, 0.0);
    double qq = 0.0;
    // Four rows at a time: t and acc are loaded once per four rows.
    index_t i = begin;
    for (; i + 4 <= end; i += 4) {
      const TA* __restrict r0 = a + i * rs;
      const TA* __restrict r1 = r0 + rs;
      const TA* __restrict r2 = r1 + rs;
      const TA* __restrict r3 = r2 + rs;
      constexpr index_t kLine = 64 / static_cast<index_t>(sizeof(TA));  // elements per cache line
      const TA* pf = (i + 4 * kAhead + 4 <= end) ? r0 + 4 * kAhead * rs : nullptr;
      double q[4];
      dot4(r0, r1, r2, r3, t, d, q);
      double q0 = q[0], q1 = q[1], q2 = q[2], q3 = q[3];
      if (b != nullptr) {
        q0 = b[i] - q0;
        q1 = b[i + 1] - q1;
        q2 = b[i + 2] - q2;
        q3 = b[i + 3] - q3;
      }
      qq += q0 * q0;
      qq += q1 * q1;
      qq += q2 * q2;
      qq += q3 * q3;
      {
        const np_v4d v0 = splat4(q0), v1 = splat4(q1), v2 = splat4(q2), v3 = splat4(q3);
        index_t j = 0;
        for (; j + 4 <= d; j += 4) {
          if (pf != nullptr && j % kLine == 0) {
            __builtin_prefetch(pf + j);
            __builtin_prefetch(pf + rs + j);
            __builtin_prefetch(pf + 2 * rs + j);
            __builtin_prefetch(pf + 3 * rs + j);
          }
          store4(acc + j, load4(acc + j) + ((v0 * load4(r0 + j) + v1 * load4(r1 + j)) +
                                            (v2 * load4(r2 + j) + v3 * load4(r3 + j))));
        }
        for (; j < d; ++j)
          acc[j] += ((q0 * static_cast<double>(r0[j]) + q1 * static_cast<double>(r1[j])) +
                     (q2 * static_cast<double>(r2[j]) + q3 * static_cast<double>(r3[j])));
      }
      if (copy != nullptr) {
        float* __restrict dst = copy + i * d;
        for (index_t j = 0; j < d; ++j) {
          dst[j] = static_cast<float>(r0[j]);
          dst[d + j] = static_cast<float>(r1[j]);
          dst[2 * d + j] = static_cast<float>(r2[j]);
          dst[3 * d + j] = static_cast<float>(r3[j]);
        }
      }
    }
    for (; i < end; ++i) {
      const TA* __restrict r0 = a + i * rs;
      double q0 = dot_unrolled(r0, t, d);
      if (b != nullptr) q0 = b[i] - q0;
      qq += q0 * q0;
      for (index_t j = 0; j < d; ++j) acc[j] += q0 * static_cast<double>(r0[j]);
      if (copy != nullptr)
        for (index_t j = 0; j < d; ++j) copy[i * d + j] = static_cast<float>(r0[j]);
    }
    partial_qq[static_cast<size_t>(c)] = qq;
  });
  double qq = 0.0;
  for (index_t c = 0; c < chunks; ++c) {
    qq += partial_qq[static_cast<size_t>(c)];
    const double* src = partial.data() + c * d;
    for (index_t j = 0; j < d; ++j) u[j] += src[j];
  }
  return qq;
}

}  // namespace sketch
}  // namespace randnla
