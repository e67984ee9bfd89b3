// Philox fills on the GPU: value i of a stream is computed by the same functions as on the host
// (randnla/philox.hpp), so a device fill equals the host fill bit for bit.
#include "randnla/philox.hpp"

using randnla::u64;
using randnla::u32;
namespace philox = randnla::philox;

__device__ inline philox::Key make_key(u64 k0, u64 k1) {
  philox::Key key;
  key.v[0] = k0;
  key.v[1] = k1;
  return key;
}

__device__ inline philox::Counter make_base(u64 c0, u64 c1, u64 c2, u64 c3) {
  philox::Counter counter;
  counter.v[0] = c0;
  counter.v[1] = c1;
  counter.v[2] = c2;
  counter.v[3] = c3;
  return counter;
}

extern "C" __global__ void philox_uniform_float64(u64 k0, u64 k1, u64 c0, u64 c1, u64 c2, u64 c3, u64 offset,
                                                  double* out, long long n) {
  const long long j = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (j >= n) return;
  out[j] = philox::uniform_at(make_key(k0, k1), make_base(c0, c1, c2, c3), offset + (u64)j);
}

extern "C" __global__ void philox_uniform_float32(u64 k0, u64 k1, u64 c0, u64 c1, u64 c2, u64 c3, u64 offset,
                                                  float* out, long long n) {
  const long long j = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (j >= n) return;
  out[j] = philox::uniform_float_at(make_key(k0, k1), make_base(c0, c1, c2, c3), offset + (u64)j);
}

extern "C" __global__ void philox_normal_float64(u64 k0, u64 k1, u64 c0, u64 c1, u64 c2, u64 c3, u64 offset,
                                                 double* out, long long n) {
  const long long j = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (j >= n) return;
  out[j] = philox::normal_at(make_key(k0, k1), make_base(c0, c1, c2, c3), offset + (u64)j);
}

extern "C" __global__ void philox_normal_float32(u64 k0, u64 k1, u64 c0, u64 c1, u64 c2, u64 c3, u64 offset,
                                                 float* out, long long n) {
  const long long j = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (j >= n) return;
  out[j] = (float)philox::normal_at(make_key(k0, k1), make_base(c0, c1, c2, c3), offset + (u64)j);
}

extern "C" __global__ void philox_raw(u64 k0, u64 k1, u64 c0, u64 c1, u64 c2, u64 c3, u64 offset, u64* out,
                                      long long n) {
  const long long j = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (j >= n) return;
  const u64 index = offset + (u64)j;
  const philox::Block block = philox::numpy_block(make_base(c0, c1, c2, c3), make_key(k0, k1), index >> 2);
  out[j] = block.v[index & 3];
}
