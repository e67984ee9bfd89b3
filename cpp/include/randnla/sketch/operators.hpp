// randnla/sketch/operators.hpp: the sketching operators S (m x n) of randnla.sketch, applied
// without ever storing S.
//
// Every entry is a pure function of (key, i, j):
//   gaussian    S[i, j] = N_ij / sqrt(m),  N_ij = normal_at(key, (0, j, 0, kTagGaussian), i)
//   rademacher  S[i, j] = s_ij / sqrt(m),  s_ij = sign_at(key, (0, j, 0, kTagRademacher), i)
//   srht        S[i, j] = sigma_j * (-1)^popcount(r_i & j) / sqrt(m), sigma_j = sign_at(key, (0, 0, 0,
//               kTagSrhtSign), j); r_0 < ... < r_{m-1} are m distinct rows of [0, N), N = 2^ceil(log2 n),
//               drawn by Floyd's algorithm from the raw stream (0, 0, 0, kTagSrhtRows)
//   countsketch column j holds one +-1 at row h(j): raw values 2(j mod 2), 2(j mod 2)+1 of block
//               floor(j / 2) of the stream (0, 0, 0, kTagCountSketch)
//   sparse sign column j holds s entries +-1/sqrt(s) at s distinct rows (Floyd's algorithm on the
//               raw stream (0, j, 0, kTagSparseSign); sign bits follow the s row draws)
// Columns are the long axis (j < n), so operators with the same key and m but different n are
// nested: the first n columns of a wider operator are the narrower one (SRHT excepted, whose
// padding N depends on n).
//
// Dense operators are applied blockwise: a block of columns of S is generated (in parallel over
// columns) into a buffer and multiplied with one GEMM outside the parallel region; the block size
// depends only on m, never on the thread count, so results are identical for any n_threads.
// Sparse operators are applied with each thread owning a range of output rows and summing each
// of its rows in column order: no atomics, thread-count independent.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "randnla/common.hpp"
#include "randnla/lapack.hpp"
#include "randnla/parallel.hpp"
#include "randnla/philox.hpp"

namespace randnla {
namespace sketch {

constexpr u64 kTagGaussian = 0x534b4741555353ULL;     // "SKGAUSS"
constexpr u64 kTagRademacher = 0x534b52414445ULL;     // "SKRADE"
constexpr u64 kTagSrhtSign = 0x534b5352485453ULL;     // "SKSRHTS"
constexpr u64 kTagSrhtRows = 0x534b5352485452ULL;     // "SKSRHTR"
constexpr u64 kTagCountSketch = 0x534b434f554e54ULL;  // "SKCOUNT"
constexpr u64 kTagSparseSign = 0x534b5350415253ULL;   // "SKSPARS"

enum class DenseKind { gaussian = 0, rademacher = 1 };

// Raw 64-bit value t of the stream (key, base), NumPy's numbering.
inline u64 raw_at(philox::Key key, philox::Counter base, u64 t) {
  return philox::numpy_block(base, key, t >> 2).v[t & 3];
}

// An integer in [0, bound) from 64 random bits (multiply-high; bias below bound / 2^64).
inline u64 bounded(u64 bits, u64 bound) {
#if defined(__SIZEOF_INT128__)
  return static_cast<u64>((static_cast<unsigned __int128>(bits) * bound) >> 64);
#else
  u64 hi, lo;
  philox::mul_hi_lo(bits, bound, &hi, &lo);
  return hi;
#endif
}

inline index_t next_power_of_two(index_t n) {
  index_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

// ---------------------------------------------------------------------------------------------
// Dense operators (Gaussian, Rademacher)
// ---------------------------------------------------------------------------------------------

// Standard normals from pairs of raw draws: out[2p], out[2p+1] = philox::normal_pair(raw[2p], raw[2p+1]).
// normal_pair is branch-free, so this loop vectorises (the same bits as randnla.random's normals).
inline void normal_pairs(const u64* raw, index_t pairs, double* out) {
  for (index_t p = 0; p < pairs; ++p) philox::normal_pair(raw[2 * p], raw[2 * p + 1], &out[2 * p], &out[2 * p + 1]);
}

// Writes S[row0:row1, col] (already scaled by 1/sqrt(m)) to out[0 : row1 - row0].
template <class T>
void dense_column(DenseKind kind, philox::Key key, index_t m, index_t col, index_t row0, index_t row1, T* out) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(m));
  if (kind == DenseKind::gaussian) {
    const philox::Counter base = philox::make_counter(0, static_cast<u64>(col), kTagGaussian);
    constexpr index_t kBatchBlocks = 64;
    u64 raw[4 * kBatchBlocks];
    double normals[4 * kBatchBlocks];
    const index_t first_block = row0 >> 2, last_block = (row1 + 3) >> 2;  // blocks [first, last)
    for (index_t b0 = first_block; b0 < last_block; b0 += kBatchBlocks) {
      const index_t nb = std::min(kBatchBlocks, last_block - b0);
      for (index_t b = 0; b < nb; ++b) {
        const philox::Block block = philox::numpy_block(base, key, static_cast<u64>(b0 + b));
        raw[4 * b] = block.v[0];
        raw[4 * b + 1] = block.v[1];
        raw[4 * b + 2] = block.v[2];
        raw[4 * b + 3] = block.v[3];
      }
      normal_pairs(raw, 2 * nb, normals);
      const index_t lo = std::max(row0, 4 * b0), hi = std::min(row1, 4 * (b0 + nb));
      for (index_t i = lo; i < hi; ++i) out[i - row0] = static_cast<T>(normals[i - 4 * b0] * scale);
    }
  } else {
    const philox::Counter base = philox::make_counter(0, static_cast<u64>(col), kTagRademacher);
    const T plus = static_cast<T>(scale), minus = static_cast<T>(-scale);
    index_t i = row0;
    while (i < row1) {
      const philox::Block block = philox::numpy_block(base, key, static_cast<u64>(i) >> 8);
      for (u64 bit = static_cast<u64>(i) & 255; bit < 256 && i < row1; ++bit, ++i) {
        const u64 word = block.v[bit >> 6];
        out[i - row0] = ((word >> (bit & 63)) & 1) ? minus : plus;
      }
    }
  }
}

// G (column-major, leading dimension ld >= row1 - row0) = S[row0:row1, col0:col1].
template <class T>
void dense_block(DenseKind kind, philox::Key key, index_t m, index_t row0, index_t row1, index_t col0, index_t col1,
                 T* g, index_t ld, int n_threads) {
  parallel_for(col1 - col0, n_threads,
               [&](index_t c) { dense_column<T>(kind, key, m, col0 + c, row0, row1, g + c * ld); });
}

// Columns of S generated per GEMM: a buffer of about 16 MiB (few switches between our threads and
// the BLAS threads), never dependent on the thread count.
inline index_t dense_block_columns(index_t m, index_t n) {
  const index_t target = std::max<index_t>(256, (index_t(1) << 21) / std::max<index_t>(m, 1));
  return std::max<index_t>(1, std::min(n, target));
}

// out (m x d, C-contiguous) = S A, A n x d with element strides (rs, cs); either cs == 1
// (C order, rs >= d) or rs == 1 (Fortran order, cs >= n).
template <class T>
void dense_apply_left(DenseKind kind, philox::Key key, index_t m, index_t n, const T* a, index_t d, index_t rs,
                      index_t cs, T* out, int n_threads) {
  RANDNLA_REQUIRE(cs == 1 || rs == 1, "A must be C- or Fortran-contiguous");
  if (m == 0 || d == 0) return;
  if (n == 0) {
    std::fill(out, out + m * d, T(0));
    return;
  }
  const index_t nb = dense_block_columns(m, n);
  std::vector<T> g(static_cast<size_t>(m * nb));
  const bool c_order = (cs == 1 && (rs != 1 || d == 1 || n == 1)) ? true : false;
  for (index_t o = 0; o < n; o += nb) {
    const index_t w = std::min(nb, n - o);
    dense_block<T>(kind, key, m, 0, m, o, o + w, g.data(), m, n_threads);
    const T beta = o == 0 ? T(0) : T(1);
    if (c_order) {
      // out^T (d x m) += A_o^T (d x w, col-major at a + o rs, ld rs) G^T
      lapack::gemm<T>('N', 'T', d, m, w, T(1), a + o * rs, std::max<index_t>(rs, d), g.data(), m, beta, out, d);
    } else {
      lapack::gemm<T>('T', 'T', d, m, w, T(1), a + o, std::max<index_t>(cs, n), g.data(), m, beta, out, d);
    }
  }
}

// out (n x k, C-contiguous) = S^T Y, Y m x k with strides (rs, cs) as above.
template <class T>
void dense_apply_transpose(DenseKind kind, philox::Key key, index_t m, index_t n, const T* y, index_t k, index_t rs,
                           index_t cs, T* out, int n_threads) {
  RANDNLA_REQUIRE(cs == 1 || rs == 1, "Y must be C- or Fortran-contiguous");
  if (n == 0 || k == 0) return;
  if (m == 0) {
    std::fill(out, out + n * k, T(0));
    return;
  }
  const index_t nb = dense_block_columns(m, n);
  std::vector<T> g(static_cast<size_t>(m * nb));
  const bool c_order = (cs == 1 && (rs != 1 || k == 1 || m == 1));
  for (index_t o = 0; o < n; o += nb) {
    const index_t w = std::min(nb, n - o);
    dense_block<T>(kind, key, m, 0, m, o, o + w, g.data(), m, n_threads);
    // out_o^T (k x w) = Y^T (k x m) G (m x w)
    if (c_order) {
      lapack::gemm<T>('N', 'N', k, w, m, T(1), y, std::max<index_t>(rs, k), g.data(), m, T(0), out + o * k, k);
    } else {
      lapack::gemm<T>('T', 'N', k, w, m, T(1), y, std::max<index_t>(cs, m), g.data(), m, T(0), out + o * k, k);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// SRHT
// ---------------------------------------------------------------------------------------------

// m distinct rows of [0, N), ascending (Floyd's algorithm on the key's row stream).
inline std::vector<i64> srht_rows(philox::Key key, index_t m, index_t big_n) {
  RANDNLA_REQUIRE(m >= 0 && m <= big_n, "srht needs m <= N, got m = ", m, " and N = ", big_n);
  const philox::Counter base = philox::make_counter(0, 0, kTagSrhtRows);
  std::vector<i64> rows;
  rows.reserve(static_cast<size_t>(m));
  std::vector<unsigned char> taken(static_cast<size_t>(big_n), 0);
  for (index_t q = 0; q < m; ++q) {
    const index_t t = big_n - m + q;
    index_t r = static_cast<index_t>(bounded(raw_at(key, base, static_cast<u64>(q)), static_cast<u64>(t + 1)));
    if (taken[static_cast<size_t>(r)]) r = t;
    taken[static_cast<size_t>(r)] = 1;
    rows.push_back(r);
  }
  std::sort(rows.begin(), rows.end());
  return rows;
}

inline int srht_sign(philox::Key key, index_t j) {
  return philox::sign_at(key, philox::make_counter(0, 0, kTagSrhtSign), static_cast<u64>(j));
}

// sigma[j] = srht_sign(key, j) for j < n, one Philox block per 256 signs (the bits of sign_at).
template <class T>
std::vector<T> srht_signs(philox::Key key, index_t n, int n_threads) {
  std::vector<T> sigma(static_cast<size_t>(n));
  const philox::Counter base = philox::make_counter(0, 0, kTagSrhtSign);
  parallel_for_chunks(n, 1 << 14, n_threads, [&](index_t begin, index_t end, index_t) {
    for (index_t j0 = begin; j0 < end; j0 += 256) {
      const philox::Block block = philox::numpy_block(base, key, static_cast<u64>(j0) >> 8);
      const index_t stop = std::min(end, j0 + 256);
      for (index_t j = j0; j < stop; ++j) {
        const u64 bit = static_cast<u64>(j) & 255;
        sigma[static_cast<size_t>(j)] = ((block.v[bit >> 6] >> (bit & 63)) & 1) ? T(-1) : T(1);
      }
    }
  });
  return sigma;
}

// In-place unnormalised Walsh-Hadamard transform along the rows of X (N x W, row-major, W
// contiguous values per row). Stages that fit in about 1 MiB run blockwise in cache.
template <class T, int W>
void fwht_rows(T* x, index_t big_n) {
  auto butterflies = [](T* base, index_t begin, index_t end, index_t h) {
    for (index_t i = begin; i < end; i += 2 * h) {
      for (index_t j = i; j < i + h; ++j) {
        T* __restrict p = base + j * W;
        T* __restrict q = base + (j + h) * W;
        for (int w = 0; w < W; ++w) {
          const T a = p[w], b = q[w];
          p[w] = a + b;
          q[w] = a - b;
        }
      }
    }
  };
  index_t block = 1;
  while (block < big_n && block * 2 * W * static_cast<index_t>(sizeof(T)) <= (index_t(1) << 20)) block *= 2;
  for (index_t b = 0; b < big_n; b += block)
    for (index_t h = 1; h < block; h *= 2) butterflies(x, b, b + block, h);
  for (index_t h = block; h < big_n; h *= 2) butterflies(x, 0, big_n, h);
}

constexpr int kSrhtPanel = 8;

// Rows of the in-cache blocks of the fused SRHT: a block of W values per row fills about 128 KiB.
template <class T, int W>
index_t srht_block_rows(index_t big_n) {
  index_t block = 1;
  while (block < big_n && block * 2 * W * static_cast<index_t>(sizeof(T)) <= (index_t(1) << 17)) block *= 2;
  return block;
}

// One panel of W columns of S A, fused: sign flip, FWHT and row sampling without the N x W buffer.
// Write N = B * H with B = 2^b the block rows. Row r = h_r B + l_r of H_N x is
//   (H_N x)[r] = sum_h (-1)^popcount(h & h_r) (H_B x_h)[l_r],   x_h = x[h B : (h + 1) B],
// so each block is loaded with its signs, transformed in cache (b stages) and added, with the
// sign (-1)^popcount(h & h_r), into the m sampled rows; blocks beyond n (padding) add nothing.
// acc (m x W) is summed in block order: the result does not depend on the thread count.
template <class T, int W>
void srht_panel_left(const T* a, index_t n, index_t big_n, index_t rs, index_t cs, index_t c0, index_t width,
                     const T* sigma, const i64* rows, index_t m, T scale, T* out, index_t d) {
  const index_t block = srht_block_rows<T, W>(big_n);
  int shift = 0;
  while ((index_t(1) << shift) < block) ++shift;
  std::vector<T> x(static_cast<size_t>(block * W));
  std::vector<T> acc(static_cast<size_t>(m * W), T(0));
  for (index_t h0 = 0; h0 < n; h0 += block) {
    const index_t stop = std::min(n, h0 + block);
    T* __restrict xb = x.data();
    if (W == 1) {
      for (index_t t = h0; t < stop; ++t) xb[t - h0] = a[t * rs + c0 * cs] * sigma[t];
    } else if (cs == 1 && width == W) {
      for (index_t t = h0; t < stop; ++t) {
        const T* __restrict src = a + t * rs + c0;
        const T sg = sigma[t];
        T* __restrict dst = xb + (t - h0) * W;
        for (int w = 0; w < W; ++w) dst[w] = src[w] * sg;
      }
    } else {
      for (index_t t = h0; t < stop; ++t) {
        const T* src = a + t * rs + c0 * cs;
        T* dst = xb + (t - h0) * W;
        for (index_t w = 0; w < width; ++w) dst[w] = src[w * cs] * sigma[t];
        for (index_t w = width; w < W; ++w) dst[w] = T(0);
      }
    }
    std::fill(xb + (stop - h0) * W, xb + block * W, T(0));
    fwht_rows<T, W>(xb, block);
    const u64 h = static_cast<u64>(h0 >> shift);
    for (index_t i = 0; i < m; ++i) {
      const u64 r = static_cast<u64>(rows[i]);
      const T* __restrict src = xb + static_cast<index_t>(r & static_cast<u64>(block - 1)) * W;
      T* __restrict dst = acc.data() + i * W;
      if (__builtin_popcountll(h & (r >> shift)) & 1) {
        for (int w = 0; w < W; ++w) dst[w] -= src[w];
      } else {
        for (int w = 0; w < W; ++w) dst[w] += src[w];
      }
    }
  }
  for (index_t i = 0; i < m; ++i)
    for (index_t w = 0; w < width; ++w) out[i * d + c0 + w] = acc[static_cast<size_t>(i * W + w)] * scale;
}

// out (m x d, C-contiguous) = S A for A n x d (strides rs, cs).
template <class T>
void srht_apply_left(philox::Key key, index_t m, index_t n, const T* a, index_t d, index_t rs, index_t cs, T* out,
                     int n_threads) {
  const index_t big_n = next_power_of_two(std::max<index_t>(n, 1));
  const std::vector<i64> rows = srht_rows(key, m, big_n);
  const std::vector<T> sigma = srht_signs<T>(key, n, n_threads);
  const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(m)));
  if (m == 0 || d == 0) return;
  if (d < kSrhtPanel) {
    parallel_for(d, n_threads, [&](index_t c) {
      srht_panel_left<T, 1>(a, n, big_n, rs, cs, c, 1, sigma.data(), rows.data(), m, scale, out, d);
    });
    return;
  }
  const index_t panels = (d + kSrhtPanel - 1) / kSrhtPanel;
  parallel_for(panels, n_threads, [&](index_t p) {
    const index_t c0 = p * kSrhtPanel, width = std::min<index_t>(kSrhtPanel, d - c0);
    srht_panel_left<T, kSrhtPanel>(a, n, big_n, rs, cs, c0, width, sigma.data(), rows.data(), m, scale, out, d);
  });
}

// out (n x k, C-contiguous) = S^T Y for Y m x k (strides rs, cs).
template <class T>
void srht_apply_transpose(philox::Key key, index_t m, index_t n, const T* y, index_t k, index_t rs, index_t cs,
                          T* out, int n_threads) {
  const index_t big_n = next_power_of_two(std::max<index_t>(n, 1));
  const std::vector<i64> rows = srht_rows(key, m, big_n);
  const std::vector<T> sigma = srht_signs<T>(key, n, n_threads);
  const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(m)));
  if (n == 0 || k == 0) return;
  if (k < kSrhtPanel) {
    parallel_for(k, n_threads, [&](index_t c) {
      std::vector<T> x(static_cast<size_t>(big_n), T(0));
      for (index_t i = 0; i < m; ++i) x[rows[i]] = y[i * rs + c * cs];
      fwht_rows<T, 1>(x.data(), big_n);
      for (index_t t = 0; t < n; ++t) out[t * k + c] = x[t] * sigma[t] * scale;
    });
    return;
  }
  const index_t panels = (k + kSrhtPanel - 1) / kSrhtPanel;
  parallel_for(panels, n_threads, [&](index_t p) {
    const index_t c0 = p * kSrhtPanel, width = std::min<index_t>(kSrhtPanel, k - c0);
    std::vector<T> x(static_cast<size_t>(big_n * kSrhtPanel), T(0));
    for (index_t i = 0; i < m; ++i) {
      const T* src = y + i * rs + c0 * cs;
      T* dst = x.data() + rows[i] * kSrhtPanel;
      for (index_t w = 0; w < width; ++w) dst[w] = src[w * cs];
    }
    fwht_rows<T, kSrhtPanel>(x.data(), big_n);
    for (index_t t = 0; t < n; ++t) {
      const T* src = x.data() + t * kSrhtPanel;
      for (index_t w = 0; w < width; ++w) out[t * k + c0 + w] = src[w] * sigma[t] * scale;
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Sparse operators (CountSketch, sparse sign)
// ---------------------------------------------------------------------------------------------

struct SparseSpec {
  philox::Key key;
  index_t m = 0;
  index_t n = 0;
  index_t s = 1;                // nonzeros per column
  bool countsketch = false;     // CountSketch's own stream (s == 1)
};

// Rows and signs of columns [col0, col1): rows[(j - col0) * s + t], signs in {+1, -1}.
inline void sparse_columns(const SparseSpec& spec, index_t col0, index_t col1, i64* rows, signed char* signs,
                           int n_threads) {
  const index_t s = spec.s;
  parallel_for_chunks(col1 - col0, 4096, n_threads, [&](index_t begin, index_t end, index_t) {
    if (spec.countsketch) {
      const philox::Counter base = philox::make_counter(0, 0, kTagCountSketch);
      for (index_t c = begin; c < end; ++c) {
        const u64 j = static_cast<u64>(col0 + c);
        const philox::Block block = philox::numpy_block(base, spec.key, j >> 1);
        const int lane = static_cast<int>(j & 1) * 2;
        rows[c] = static_cast<i64>(bounded(block.v[lane], static_cast<u64>(spec.m)));
        signs[c] = (block.v[lane + 1] >> 63) ? -1 : 1;
      }
      return;
    }
    for (index_t c = begin; c < end; ++c) {
      const index_t j = col0 + c;
      const philox::Counter base = philox::make_counter(0, static_cast<u64>(j), kTagSparseSign);
      i64* r = rows + c * s;
      philox::Block block{};
      u64 loaded = ~u64(0);
      auto value = [&](u64 t) {
        if ((t >> 2) != loaded) {
          loaded = t >> 2;
          block = philox::numpy_block(base, spec.key, loaded);
        }
        return block.v[t & 3];
      };
      for (index_t q = 0; q < s; ++q) {
        const index_t t = spec.m - s + q;
        i64 candidate = static_cast<i64>(bounded(value(static_cast<u64>(q)), static_cast<u64>(t + 1)));
        for (index_t p = 0; p < q; ++p)
          if (r[p] == candidate) {
            candidate = t;
            break;
          }
        r[q] = candidate;
      }
      for (index_t q = 0; q < s; ++q) {
        const u64 word = value(static_cast<u64>(s + q / 64));
        signs[c * s + q] = ((word >> (q & 63)) & 1) ? -1 : 1;
      }
    }
  });
}

inline double sparse_scale(const SparseSpec& spec) { return 1.0 / std::sqrt(static_cast<double>(spec.s)); }

// Shared driver of S A: every thread owns a contiguous range of output rows and streams the
// columns of S (rows of A) in order, adding row j of A into output row h(j) when it owns it. Each
// output row is therefore summed in column order whatever the number of threads (bitwise
// identical results), A is read front to back, and no atomics are needed.
template <class T, class AddRow>
void sparse_apply_left(const SparseSpec& spec, index_t d, T* out, int n_threads, AddRow&& add_row) {
  const index_t total = spec.n * spec.s;
  std::vector<i64> rows(static_cast<size_t>(total));
  std::vector<signed char> signs(static_cast<size_t>(total));
  sparse_columns(spec, 0, spec.n, rows.data(), signs.data(), n_threads);
  const index_t m = spec.m, s = spec.s;
  const index_t parts = std::max<index_t>(1, std::min<index_t>(resolve_threads(n_threads), m));
  const T scale = static_cast<T>(sparse_scale(spec));
  parallel_for(parts, n_threads, [&](index_t part) {
    const i64 lo = static_cast<i64>(part * m / parts), hi = static_cast<i64>((part + 1) * m / parts);
    std::fill(out + lo * d, out + hi * d, T(0));
    for (index_t e = 0; e < total; ++e) {
      const i64 r = rows[e];
      if (r < lo || r >= hi) continue;
      add_row(e / s, signs[e] > 0, out + r * d);
    }
    if (s != 1)
      for (index_t q = lo * d; q < hi * d; ++q) out[q] *= scale;
  });
}

// out (m x (d + 1), C-contiguous) = S [A, b] for dense C-order A (n x d, row stride rs) and b (n):
// the pattern of S is generated once for both, and each output element is summed in the order
// of sparse_apply_left_dense (the same bits as S A and S b computed apart).
template <class T>
void sparse_apply_left_stacked(const SparseSpec& spec, const T* a, index_t d, index_t rs, const T* b, T* out,
                               int n_threads) {
  sparse_apply_left<T>(spec, d + 1, out, n_threads, [&](index_t j, bool plus, T* __restrict dst) {
    const T* __restrict src = a + j * rs;
    if (plus) {
      for (index_t c = 0; c < d; ++c) dst[c] += src[c];
      dst[d] += b[j];
    } else {
      for (index_t c = 0; c < d; ++c) dst[c] -= src[c];
      dst[d] -= b[j];
    }
  });
}

// out (m x d, C-contiguous) = S A for dense A (n x d, strides rs, cs).
template <class T>
void sparse_apply_left_dense(const SparseSpec& spec, const T* a, index_t d, index_t rs, index_t cs, T* out,
                             int n_threads) {
  sparse_apply_left<T>(spec, d, out, n_threads, [&](index_t j, bool plus, T* __restrict dst) {
    const T* src = a + j * rs;
    if (cs == 1) {
      if (plus)
        for (index_t c = 0; c < d; ++c) dst[c] += src[c];
      else
        for (index_t c = 0; c < d; ++c) dst[c] -= src[c];
    } else {
      const T sign = plus ? T(1) : T(-1);
      for (index_t c = 0; c < d; ++c) dst[c] += sign * src[c * cs];
    }
  });
}

// out (m x d, C-contiguous) = S A for CSR A (n x d).
template <class T, class I>
void sparse_apply_left_csr(const SparseSpec& spec, const T* data, const I* indices, const I* indptr, index_t d,
                           T* out, int n_threads) {
  sparse_apply_left<T>(spec, d, out, n_threads, [&](index_t j, bool plus, T* __restrict dst) {
    if (plus)
      for (I q = indptr[j]; q < indptr[j + 1]; ++q) dst[indices[q]] += data[q];
    else
      for (I q = indptr[j]; q < indptr[j + 1]; ++q) dst[indices[q]] -= data[q];
  });
}

// out (p x m, C-contiguous) = A S^T for dense C-contiguous A (p x n, row stride rs).
template <class T>
void sparse_apply_right_dense(const SparseSpec& spec, const T* a, index_t p, index_t rs, T* out, int n_threads) {
  const index_t total = spec.n * spec.s;
  std::vector<i64> rows(static_cast<size_t>(total));
  std::vector<signed char> signs(static_cast<size_t>(total));
  sparse_columns(spec, 0, spec.n, rows.data(), signs.data(), n_threads);
  const T scale = static_cast<T>(sparse_scale(spec));
  const index_t s = spec.s, m = spec.m;
  parallel_for_chunks(p, 4, n_threads, [&](index_t begin, index_t end, index_t) {
    for (index_t r = begin; r < end; ++r) {
      T* __restrict dst = out + r * m;
      std::fill(dst, dst + m, T(0));
      const T* src = a + r * rs;
      for (index_t e = 0; e < total; ++e) {
        const T v = src[e / s];
        if (signs[e] > 0)
          dst[rows[e]] += v;
        else
          dst[rows[e]] -= v;
      }
      if (s != 1)
        for (index_t c = 0; c < m; ++c) dst[c] *= scale;
    }
  });
}

// out (p x m, C-contiguous) = A S^T for CSR A (p x n).
template <class T, class I>
void sparse_apply_right_csr(const SparseSpec& spec, const T* data, const I* indices, const I* indptr, index_t p,
                            T* out, int n_threads) {
  const index_t total = spec.n * spec.s;
  std::vector<i64> rows(static_cast<size_t>(total));
  std::vector<signed char> signs(static_cast<size_t>(total));
  sparse_columns(spec, 0, spec.n, rows.data(), signs.data(), n_threads);
  const T scale = static_cast<T>(sparse_scale(spec));
  const index_t s = spec.s, m = spec.m;
  parallel_for_chunks(p, 4, n_threads, [&](index_t begin, index_t end, index_t) {
    for (index_t r = begin; r < end; ++r) {
      T* __restrict dst = out + r * m;
      std::fill(dst, dst + m, T(0));
      for (I q = indptr[r]; q < indptr[r + 1]; ++q) {
        const i64 j = indices[q];
        const T v = data[q];
        for (index_t t = 0; t < s; ++t) {
          const i64 e = j * s + t;
          if (signs[e] > 0)
            dst[rows[e]] += v;
          else
            dst[rows[e]] -= v;
        }
      }
      if (s != 1)
        for (index_t c = 0; c < m; ++c) dst[c] *= scale;
    }
  });
}

// out (n x k, C-contiguous) = S^T Y for dense Y (m x k, strides rs, cs).
template <class T>
void sparse_apply_transpose(const SparseSpec& spec, const T* y, index_t k, index_t rs, index_t cs, T* out,
                            int n_threads) {
  const index_t s = spec.s;
  const T scale = static_cast<T>(sparse_scale(spec));
  parallel_for_chunks(spec.n, 4096, n_threads, [&](index_t begin, index_t end, index_t) {
    std::vector<i64> rows(static_cast<size_t>((end - begin) * s));
    std::vector<signed char> signs(static_cast<size_t>((end - begin) * s));
    sparse_columns(spec, begin, end, rows.data(), signs.data(), 1);
    for (index_t j = begin; j < end; ++j) {
      T* __restrict dst = out + j * k;
      std::fill(dst, dst + k, T(0));
      for (index_t t = 0; t < s; ++t) {
        const index_t e = (j - begin) * s + t;
        const T* src = y + rows[e] * rs;
        const T sign = static_cast<T>(signs[e]);
        for (index_t c = 0; c < k; ++c) dst[c] += sign * src[c * cs];
      }
      if (s != 1)
        for (index_t c = 0; c < k; ++c) dst[c] *= scale;
    }
  });
}

}  // namespace sketch
}  // namespace randnla
