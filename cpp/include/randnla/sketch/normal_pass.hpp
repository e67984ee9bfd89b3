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
#include <vector>

#include "randnla/common.hpp"
#include "randnla/parallel.hpp"

namespace randnla {
namespace sketch {

constexpr index_t kNormalPassChunkRows = 1024;

// Dot product in double with eight independent partial sums (vectorises without reassociation
// flags); float rows are widened to double.
template <class TA>
inline double dot_unrolled(const TA* __restrict x, const double* __restrict y, index_t d) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  index_t j = 0;
  for (; j + 8 <= d; j += 8)
    for (int k = 0; k < 8; ++k) acc[k] += static_cast<double>(x[j + k]) * y[j + k];
  double tail = 0.0;
  for (; j < d; ++j) tail += static_cast<double>(x[j]) * y[j];
  return (((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))) + tail;
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
      double q0 = dot_unrolled(r0, t, d), q1 = dot_unrolled(r1, t, d);
      double q2 = dot_unrolled(r2, t, d), q3 = dot_unrolled(r3, t, d);
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
      for (index_t j = 0; j < d; ++j)
        acc[j] += ((q0 * static_cast<double>(r0[j]) + q1 * static_cast<double>(r1[j])) +
                   (q2 * static_cast<double>(r2[j]) + q3 * static_cast<double>(r3[j])));
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
