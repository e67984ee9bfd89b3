// randnla/random.hpp: host fills of Philox streams, parallel over blocks of 4 values.
// Each output element depends only on (key, base counter, its index), so any thread count
// gives the same bits, and a sub-range [offset, offset + n) equals the slice of the whole.
#pragma once

#include <algorithm>
#include <cstddef>

#include "randnla/common.hpp"
#include "randnla/parallel.hpp"
#include "randnla/philox.hpp"

namespace randnla {

namespace detail {
// Splits [offset, offset + n) into fixed chunks of values (never thread dependent).
constexpr std::ptrdiff_t kFillChunk = 1 << 15;
}  // namespace detail

enum class Distribution { uniform, normal };

// Raw words of the stream for values [first_block * 4, (first_block + n_blocks) * 4).
inline void philox_words(philox::Key key, philox::Counter base, u64 first_block, int n_blocks, u64* words) {
  for (int b = 0; b < n_blocks; ++b) {
    const philox::Block block = philox::numpy_block(base, key, first_block + static_cast<u64>(b));
    for (int lane = 0; lane < 4; ++lane) words[4 * b + lane] = block.v[lane];
  }
}

// out[j] = value (offset + j) of the stream, j in [0, n).
// Works in tiles: Philox words for a tile first, then one branch-free transform loop that the
// compiler vectorises (the transform is the expensive part for normals).
template <class T>
void fill_random(Distribution distribution, philox::Key key, philox::Counter base, u64 offset, T* out,
                 std::ptrdiff_t n, int n_threads) {
  constexpr int kTileBlocks = 64;
  constexpr bool single = sizeof(T) == sizeof(float);
  // float32 uniforms use 32-bit halves: 8 values per block; everything else 4 values per block.
  const int per_block = (single && distribution == Distribution::uniform) ? 8 : 4;
  parallel_for_chunks(n, detail::kFillChunk, n_threads, [&](std::ptrdiff_t begin, std::ptrdiff_t end, std::ptrdiff_t) {
    u64 words[4 * kTileBlocks];
    double values[4 * kTileBlocks];
    std::ptrdiff_t j = begin;
    while (j < end) {
      const u64 index = offset + static_cast<u64>(j);
      const u64 first_block = index / per_block;
      const u64 skip = index % per_block;  // values of the first block before index
      const std::ptrdiff_t wanted = end - j;
      const int n_blocks = static_cast<int>(std::min<std::ptrdiff_t>(kTileBlocks, (wanted + skip + per_block - 1) / per_block));
      philox_words(key, base, first_block, n_blocks, words);
      const std::ptrdiff_t produced = std::min<std::ptrdiff_t>(wanted, static_cast<std::ptrdiff_t>(n_blocks) * per_block - skip);
      if (distribution == Distribution::normal) {
        for (int p = 0; p < 2 * n_blocks; ++p) philox::normal_pair(words[2 * p], words[2 * p + 1], &values[2 * p], &values[2 * p + 1]);
        for (std::ptrdiff_t t = 0; t < produced; ++t) out[j + t] = static_cast<T>(values[skip + t]);
      } else if constexpr (single) {
        for (std::ptrdiff_t t = 0; t < produced; ++t) {
          const std::ptrdiff_t v = skip + t;
          const u64 word = words[v >> 1];
          const u32 half = (v & 1) ? static_cast<u32>(word >> 32) : static_cast<u32>(word & 0xffffffffULL);
          out[j + t] = philox::uniform_float(half);
        }
      } else {
        for (std::ptrdiff_t t = 0; t < produced; ++t) out[j + t] = philox::uniform_double(words[skip + t]);
      }
      j += produced;
    }
  });
}

// Raw 64-bit outputs, as numpy.random.Philox(...).random_raw(n) gives them.
inline void fill_raw(philox::Key key, philox::Counter base, u64 offset, u64* out, std::ptrdiff_t n, int n_threads) {
  parallel_for_chunks(n, detail::kFillChunk, n_threads, [&](std::ptrdiff_t begin, std::ptrdiff_t end, std::ptrdiff_t) {
    std::ptrdiff_t j = begin;
    while (j < end) {
      const u64 index = offset + static_cast<u64>(j);
      const philox::Block block = philox::numpy_block(base, key, index >> 2);
      for (u64 lane = index & 3; lane < 4 && j < end; ++lane, ++j) out[j] = block.v[lane];
    }
  });
}

}  // namespace randnla
