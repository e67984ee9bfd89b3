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

// Priority ranks h(seed, key_i) / w_i, +inf for w_i == 0: the expression of the host's
// priority_select, so the device ranks equal the host ranks bit for bit.
extern "C" __global__ void sketch_priority_ranks(u64 seed, const long long* keys, const double* w, long long n,
                                                 double* ranks) {
  const long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (i >= n) return;
  const double wi = w[i];
  ranks[i] = wi > 0.0 ? randnla::sketch::coordination_hash(seed, (u64)keys[i]) / wi : __longlong_as_double(0x7ff0000000000000LL);
}

// The water-filling constant of threshold sampling from the nonzero weights sorted in descending
// order (count > k): the host's threshold_constant step for step (suffix sums accumulated from
// the smallest weight up, in one thread so that the rounding is the host's). suffix: k + 1 doubles.
extern "C" __global__ void sketch_threshold_constant(const double* sorted, long long count, long long k,
                                                     double* suffix, double* out) {
  if (blockIdx.x != 0 || threadIdx.x != 0) return;
  double acc = 0.0;
  for (long long s = count - 1; s >= 0; --s) {
    acc = acc + sorted[s];
    if (s <= k) suffix[s] = acc;
  }
  for (long long s = 0; s < k; ++s) {
    const double c = (double)(k - s) / suffix[s];
    if (c * sorted[s] <= 1.0 && (s == 0 || c * sorted[s - 1] >= 1.0)) {
      out[0] = c;
      return;
    }
  }
  out[0] = 1.0 / sorted[k - 1];
}

// Squared row norms in float64, each row summed in column order by one thread: the host's
// row_norms_sq_dense / row_norms_sq_csr, so device and host weights (and ranks) agree bit for bit.
template <class T>
__device__ void row_norms_sq_dense(const T* a, long long n, long long d, long long rs, long long cs, double* out) {
  const long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (i >= n) return;
  const T* row = a + i * rs;
  double sum = 0.0;
  for (long long c = 0; c < d; ++c) {
    const double v = (double)row[c * cs];
    sum += v * v;
  }
  out[i] = sum;
}

extern "C" __global__ void sketch_row_norms_sq_dense_float64(const double* a, long long n, long long d, long long rs,
                                                             long long cs, double* out) {
  row_norms_sq_dense<double>(a, n, d, rs, cs, out);
}

extern "C" __global__ void sketch_row_norms_sq_dense_float32(const float* a, long long n, long long d, long long rs,
                                                             long long cs, double* out) {
  row_norms_sq_dense<float>(a, n, d, rs, cs, out);
}

template <class T>
__device__ void row_norms_sq_csr(const T* data, const long long* indptr, long long n, double* out) {
  const long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (i >= n) return;
  double sum = 0.0;
  for (long long q = indptr[i]; q < indptr[i + 1]; ++q) {
    const double v = (double)data[q];
    sum += v * v;
  }
  out[i] = sum;
}

extern "C" __global__ void sketch_row_norms_sq_csr_float64(const double* data, const long long* indptr, long long n,
                                                           double* out) {
  row_norms_sq_csr<double>(data, indptr, n, out);
}

extern "C" __global__ void sketch_row_norms_sq_csr_float32(const float* data, const long long* indptr, long long n,
                                                           double* out) {
  row_norms_sq_csr<float>(data, indptr, n, out);
}
