// GPU kernels of randnla.sketch: dense sketch blocks and the coordination hash, computed by the
// same functions as the host (randnla/philox.hpp, randnla/sketch/coordinated.hpp), so a block
// generated on the device equals the host block bit for bit.
#include "randnla/philox.hpp"
#include "randnla/sketch/coordinated.hpp"

using randnla::u64;
namespace philox = randnla::philox;

// Tags of randnla/sketch/operators.hpp (kept in sync; that header is host-only).
#define RANDNLA_TAG_GAUSSIAN 0x534b4741555353ULL
#define RANDNLA_TAG_RADEMACHER 0x534b52414445ULL
#define RANDNLA_TAG_SRHT_SIGN 0x534b5352485453ULL

__device__ inline philox::Key make_key(u64 k0, u64 k1) {
  philox::Key key;
  key.v[0] = k0;
  key.v[1] = k1;
  return key;
}

// out[(i - row0) * ld + (c - col0)] = S[i, c] for a dense operator (kind 0: Gaussian, 1: Rademacher),
// row-major block; scale = 1/sqrt(m) computed on the host.
template <class T>
__device__ void dense_block(u64 k0, u64 k1, int kind, long long row0, long long row1, long long col0, long long col1,
                            double scale, T* out) {
  const long long width = col1 - col0;
  const long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (idx >= (row1 - row0) * width) return;
  const long long i = row0 + idx / width, c = col0 + idx % width;
  const philox::Key key = make_key(k0, k1);
  double value;
  if (kind == 0) {
    value = philox::normal_at(key, philox::make_counter(0, (u64)c, RANDNLA_TAG_GAUSSIAN), (u64)i);
  } else {
    value = (double)philox::sign_at(key, philox::make_counter(0, (u64)c, RANDNLA_TAG_RADEMACHER), (u64)i);
  }
  out[idx] = (T)(value * scale);
}

extern "C" __global__ void sketch_dense_block_float64(u64 k0, u64 k1, int kind, long long row0, long long row1,
                                                      long long col0, long long col1, double scale, double* out) {
  dense_block<double>(k0, k1, kind, row0, row1, col0, col1, scale, out);
}

extern "C" __global__ void sketch_dense_block_float32(u64 k0, u64 k1, int kind, long long row0, long long row1,
                                                      long long col0, long long col1, double scale, float* out) {
  dense_block<float>(k0, k1, kind, row0, row1, col0, col1, scale, out);
}

extern "C" __global__ void sketch_srht_signs(u64 k0, u64 k1, long long n, signed char* out) {
  const long long j = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (j >= n) return;
  out[j] = (signed char)philox::sign_at(make_key(k0, k1), philox::make_counter(0, 0, RANDNLA_TAG_SRHT_SIGN), (u64)j);
}

extern "C" __global__ void sketch_coordination_hash(u64 seed, const long long* keys, long long n, double* out) {
  const long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (i >= n) return;
  out[i] = randnla::sketch::coordination_hash(seed, (u64)keys[i]);
}
