// randnla/random.hpp: host fills of Philox streams, parallel over blocks of 4 values.
// Each output element depends only on (key, base counter, its index), so any thread count
// gives the same bits, and a sub-range [offset, offset + n) equals the slice of the whole.
#pragma once

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

// out[j] = value (offset + j) of the stream, j in [0, n).
template <class T>
void fill_random(Distribution distribution, philox::Key key, philox::Counter base, u64 offset, T* out,
                 std::ptrdiff_t n, int n_threads) {
  parallel_for_chunks(n, detail::kFillChunk, n_threads, [&](std::ptrdiff_t begin, std::ptrdiff_t end, std::ptrdiff_t) {
    std::ptrdiff_t j = begin;
    if constexpr (sizeof(T) == sizeof(double)) {
      // Whole blocks of 4 values share one Philox call.
      while (j < end) {
        const u64 index = offset + static_cast<u64>(j);
        const philox::Block block = philox::numpy_block(base, key, index >> 2);
        if (distribution == Distribution::uniform) {
          for (u64 lane = index & 3; lane < 4 && j < end; ++lane, ++j) out[j] = philox::uniform_double(block.v[lane]);
        } else {
          double pair_values[4];
          philox::normal_pair(block.v[0], block.v[1], &pair_values[0], &pair_values[1]);
          philox::normal_pair(block.v[2], block.v[3], &pair_values[2], &pair_values[3]);
          for (u64 lane = index & 3; lane < 4 && j < end; ++lane, ++j) out[j] = pair_values[lane];
        }
      }
    } else {
      if (distribution == Distribution::uniform) {
        while (j < end) {
          const u64 index = offset + static_cast<u64>(j);
          const philox::Block block = philox::numpy_block(base, key, index >> 3);
          for (u64 lane = index & 7; lane < 8 && j < end; ++lane, ++j) {
            const u64 word = block.v[lane >> 1];
            const u32 half = (lane & 1) ? static_cast<u32>(word >> 32) : static_cast<u32>(word & 0xffffffffULL);
            out[j] = philox::uniform_float(half);
          }
        }
      } else {
        while (j < end) {
          const u64 index = offset + static_cast<u64>(j);
          const philox::Block block = philox::numpy_block(base, key, index >> 2);
          double pair_values[4];
          philox::normal_pair(block.v[0], block.v[1], &pair_values[0], &pair_values[1]);
          philox::normal_pair(block.v[2], block.v[3], &pair_values[2], &pair_values[3]);
          for (u64 lane = index & 3; lane < 4 && j < end; ++lane, ++j) out[j] = static_cast<T>(pair_values[lane]);
        }
      }
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
