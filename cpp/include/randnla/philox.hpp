// randnla/philox.hpp: Philox4x64-10 (Salmon et al., SC'11), bit-identical to numpy.random.Philox,
// usable on the host and in CUDA kernels, plus uniform and normal transforms whose results are
// the same on every platform.
//
// Counter convention. A stream is a key (two 64-bit words drawn from the caller's rng) and a
// 256-bit counter. numpy.random.Philox(key=k, counter=c) increments the counter *before* each
// block, so its first four 64-bit outputs are philox(c + 1, k). The fills below follow the same
// rule, so fill_uniform(key, c, out) equals Generator(Philox(key=k, counter=c)).random(n).
// Element i of a fill reads block (i / values_per_block) at counter c + 1 + block: a pure
// function of (key, c, i), never of the thread that computes it.
//
// Areas address their random quantities with make_counter(block, stream, purpose): words 0-1
// hold the block index within a stream, word 2 a logical stream (sample s, row i, ...), word 3 a
// per-area purpose tag so that two uses of one key never overlap.
//
// Determinism across CPU and GPU. log, sin and cos from libm and from CUDA differ in the last
// bit, so the normal transform uses its own log and sin/cos built from +, *, / and sqrt only
// (each correctly rounded in IEEE arithmetic). The host is built with -ffp-contract=off and
// kernels with --fmad=false, so no multiply-add is fused differently on the two sides.
#pragma once

#include "randnla/config.hpp"

#if !defined(__CUDACC_RTC__)
#include <cmath>
#include <cstring>
#endif

namespace randnla {
namespace philox {

struct Counter {
  u64 v[4];
};
struct Key {
  u64 v[2];
};
struct Block {
  u64 v[4];
};

constexpr u64 kMultiplier0 = 0xD2E7470EE14C6C93ULL;
constexpr u64 kMultiplier1 = 0xCA5A826395121157ULL;
constexpr u64 kWeyl0 = 0x9E3779B97F4A7C15ULL;
constexpr u64 kWeyl1 = 0xBB67AE8584CAA73BULL;

RANDNLA_HOST_DEVICE inline void mul_hi_lo(u64 a, u64 b, u64* hi, u64* lo) {
#if defined(RANDNLA_DEVICE_CODE) && defined(__CUDA_ARCH__)
  *lo = a * b;
  *hi = __umul64hi(a, b);
#elif defined(__SIZEOF_INT128__)
  const unsigned __int128 product = static_cast<unsigned __int128>(a) * b;
  *lo = static_cast<u64>(product);
  *hi = static_cast<u64>(product >> 64);
#else
  const u64 a_lo = a & 0xffffffffULL, a_hi = a >> 32, b_lo = b & 0xffffffffULL, b_hi = b >> 32;
  const u64 ll = a_lo * b_lo, lh = a_lo * b_hi, hl = a_hi * b_lo, hh = a_hi * b_hi;
  const u64 middle = (ll >> 32) + (lh & 0xffffffffULL) + (hl & 0xffffffffULL);
  *lo = (middle << 32) | (ll & 0xffffffffULL);
  *hi = hh + (lh >> 32) + (hl >> 32) + (middle >> 32);
#endif
}

// The ten-round bijection itself.
RANDNLA_HOST_DEVICE inline Block philox4x64_10(Counter counter, Key key) {
  u64 c0 = counter.v[0], c1 = counter.v[1], c2 = counter.v[2], c3 = counter.v[3];
  u64 k0 = key.v[0], k1 = key.v[1];
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k0 += kWeyl0;
      k1 += kWeyl1;
    }
    u64 hi0, lo0, hi1, lo1;
    mul_hi_lo(kMultiplier0, c0, &hi0, &lo0);
    mul_hi_lo(kMultiplier1, c2, &hi1, &lo1);
    const u64 n0 = hi1 ^ c1 ^ k0;
    const u64 n2 = hi0 ^ c3 ^ k1;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
  }
  Block out;
  out.v[0] = c0;
  out.v[1] = c1;
  out.v[2] = c2;
  out.v[3] = c3;
  return out;
}

// counter + offset with carry through all four words (offset is a 128-bit number hi:lo).
RANDNLA_HOST_DEVICE inline Counter add(Counter counter, u64 offset_lo, u64 offset_hi = 0) {
  Counter out = counter;
  out.v[0] = counter.v[0] + offset_lo;
  u64 carry = out.v[0] < counter.v[0] ? 1 : 0;
  const u64 word1 = counter.v[1] + offset_hi;
  u64 carry1 = word1 < counter.v[1] ? 1 : 0;
  out.v[1] = word1 + carry;
  carry1 += (out.v[1] < word1) ? 1 : 0;
  out.v[2] = counter.v[2] + carry1;
  const u64 carry2 = (carry1 && out.v[2] == 0) ? 1 : 0;
  out.v[3] = counter.v[3] + carry2;
  return out;
}

RANDNLA_HOST_DEVICE inline Counter make_counter(u64 block, u64 stream = 0, u64 purpose = 0) {
  Counter c;
  c.v[0] = block;
  c.v[1] = 0;
  c.v[2] = stream;
  c.v[3] = purpose;
  return c;
}

// The block numpy.random.Philox(key, counter=base) produces as its block number `index`
// (0-based): philox(base + 1 + index).
RANDNLA_HOST_DEVICE inline Block numpy_block(Counter base, Key key, u64 index) {
  return philox4x64_10(add(add(base, 1, 0), index, 0), key);
}

// ---- uniform transforms (NumPy's) ----

// [0, 1) with 53 random bits: NumPy's random() for float64.
RANDNLA_HOST_DEVICE inline double uniform_double(u64 bits) {
  return static_cast<double>(bits >> 11) * (1.0 / 9007199254740992.0);
}
// (0, 1]: for logarithms.
RANDNLA_HOST_DEVICE inline double uniform_double_open0(u64 bits) {
  return static_cast<double>((bits >> 11) + 1) * (1.0 / 9007199254740992.0);
}
// [0, 1) with 24 random bits: NumPy's random(dtype=float32) from one 32-bit draw.
RANDNLA_HOST_DEVICE inline float uniform_float(u32 bits) {
  return static_cast<float>(bits >> 8) * (1.0f / 16777216.0f);
}

// ---- deterministic elementary functions for the normal transform ----

RANDNLA_HOST_DEVICE inline u64 double_bits(double x) {
#if defined(__CUDA_ARCH__)
  return static_cast<u64>(__double_as_longlong(x));
#else
  u64 bits;
  std::memcpy(&bits, &x, sizeof bits);
  return bits;
#endif
}
RANDNLA_HOST_DEVICE inline double bits_double(u64 bits) {
#if defined(__CUDA_ARCH__)
  return __longlong_as_double(static_cast<long long>(bits));
#else
  double x;
  std::memcpy(&x, &bits, sizeof x);
  return x;
#endif
}

// Natural logarithm of a normal, positive double: x = 2^e m, m in [sqrt(1/2), sqrt(2)),
// log m = 2 atanh(s), s = (m - 1)/(m + 1), |s| < 0.172, series to 2e-18 relative.
RANDNLA_HOST_DEVICE inline double det_log(double x) {
  const u64 bits = double_bits(x);
  long long exponent = static_cast<long long>((bits >> 52) & 0x7ff) - 1023;
  double mantissa = bits_double((bits & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL);
  if (mantissa > 1.4142135623730951) {
    mantissa *= 0.5;
    exponent += 1;
  }
  const double s = (mantissa - 1.0) / (mantissa + 1.0);
  const double z = s * s;
  double series = 1.0 / 23.0;
  series = series * z + 1.0 / 21.0;
  series = series * z + 1.0 / 19.0;
  series = series * z + 1.0 / 17.0;
  series = series * z + 1.0 / 15.0;
  series = series * z + 1.0 / 13.0;
  series = series * z + 1.0 / 11.0;
  series = series * z + 1.0 / 9.0;
  series = series * z + 1.0 / 7.0;
  series = series * z + 1.0 / 5.0;
  series = series * z + 1.0 / 3.0;
  const double log_mantissa = 2.0 * s + 2.0 * s * (z * series);
  const double ln2_hi = 6.93147180369123816490e-01;  // trailing zero bits: e * ln2_hi is exact
  const double ln2_lo = 1.90821492927058770002e-10;
  const double e = static_cast<double>(exponent);
  return e * ln2_hi + (log_mantissa + e * ln2_lo);
}

// sin and cos of 2*pi*u for u in [0, 1): the quadrant reduction u*4 = q + x is exact, then
// Taylor series of sin and cos on [0, pi/2) to below 1e-17.
RANDNLA_HOST_DEVICE inline void det_sincos_2pi(double u, double* sin_out, double* cos_out) {
  const double t = u * 4.0;
  const int quadrant = static_cast<int>(t);
  const double x = t - static_cast<double>(quadrant);
  const double theta = x * 1.57079632679489661923;
  const double z = theta * theta;
  double sin_series = -1.0 / 51090942171709440000.0;               // -1/21!
  sin_series = sin_series * z + 1.0 / 121645100408832000.0;        // 1/19!
  sin_series = sin_series * z - 1.0 / 355687428096000.0;           // -1/17!
  sin_series = sin_series * z + 1.0 / 1307674368000.0;             // 1/15!
  sin_series = sin_series * z - 1.0 / 6227020800.0;                // -1/13!
  sin_series = sin_series * z + 1.0 / 39916800.0;                  // 1/11!
  sin_series = sin_series * z - 1.0 / 362880.0;                    // -1/9!
  sin_series = sin_series * z + 1.0 / 5040.0;                      // 1/7!
  sin_series = sin_series * z - 1.0 / 120.0;                       // -1/5!
  sin_series = sin_series * z + 1.0 / 6.0;                         // 1/3!
  const double s = theta - theta * (z * sin_series);
  double cos_series = 1.0 / 2432902008176640000.0;                 // 1/20!
  cos_series = cos_series * z - 1.0 / 6402373705728000.0;          // -1/18!
  cos_series = cos_series * z + 1.0 / 20922789888000.0;            // 1/16!
  cos_series = cos_series * z - 1.0 / 87178291200.0;               // -1/14!
  cos_series = cos_series * z + 1.0 / 479001600.0;                 // 1/12!
  cos_series = cos_series * z - 1.0 / 3628800.0;                   // -1/10!
  cos_series = cos_series * z + 1.0 / 40320.0;                     // 1/8!
  cos_series = cos_series * z - 1.0 / 720.0;                       // -1/6!
  cos_series = cos_series * z + 1.0 / 24.0;                        // 1/4!
  cos_series = cos_series * z - 1.0 / 2.0;                         // -1/2!
  const double c = 1.0 + z * cos_series;
  // Rotate by quadrant * pi/2 with selects rather than a switch, so loops over many values vectorise.
  const bool odd = (quadrant & 1) != 0;
  const double sin_base = odd ? c : s;
  const double cos_base = odd ? s : c;
  *sin_out = (quadrant & 2) ? -sin_base : sin_base;
  *cos_out = ((quadrant + 1) & 2) ? -cos_base : cos_base;
}

RANDNLA_HOST_DEVICE inline double sqrt_correctly_rounded(double x) {
#if defined(__CUDA_ARCH__)
  return __dsqrt_rn(x);
#else
  return std::sqrt(x);
#endif
}

// Two independent standard normals from two 64-bit draws (Box-Muller).
RANDNLA_HOST_DEVICE inline void normal_pair(u64 bits_radius, u64 bits_angle, double* first, double* second) {
  const double radius = sqrt_correctly_rounded(-2.0 * det_log(uniform_double_open0(bits_radius)));
  double s, c;
  det_sincos_2pi(uniform_double(bits_angle), &s, &c);
  *first = radius * c;
  *second = radius * s;
}

// ---- element-addressed draws: value i of a stream (key, base) ----

RANDNLA_HOST_DEVICE inline double uniform_at(Key key, Counter base, u64 i) {
  const Block b = numpy_block(base, key, i >> 2);
  return uniform_double(b.v[i & 3]);
}

RANDNLA_HOST_DEVICE inline float uniform_float_at(Key key, Counter base, u64 i) {
  // NumPy draws float32 from 32-bit halves of each 64-bit output, low half first.
  const Block b = numpy_block(base, key, i >> 3);
  const u64 word = b.v[(i >> 1) & 3];
  const u32 half = (i & 1) ? static_cast<u32>(word >> 32) : static_cast<u32>(word & 0xffffffffULL);
  return uniform_float(half);
}

RANDNLA_HOST_DEVICE inline double normal_at(Key key, Counter base, u64 i) {
  const Block b = numpy_block(base, key, i >> 2);
  const int pair = static_cast<int>((i >> 1) & 1);
  double first, second;
  normal_pair(b.v[2 * pair], b.v[2 * pair + 1], &first, &second);
  return (i & 1) ? second : first;
}

// Rademacher sign (+1 or -1) of element i: one bit per element, 256 per block.
RANDNLA_HOST_DEVICE inline int sign_at(Key key, Counter base, u64 i) {
  const Block b = numpy_block(base, key, i >> 8);
  const u64 word = b.v[(i >> 6) & 3];
  return ((word >> (i & 63)) & 1) ? -1 : 1;
}

}  // namespace philox
}  // namespace randnla
