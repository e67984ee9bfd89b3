// randnla/jacobi/rotation.hpp: the plane rotation shared by the two-sided and one-sided Jacobi
// kernels, pivot orderings, and per-matrix power-of-two scaling.
//
// Rotation (Rutishauser's form with the small-angle root, |angle| <= pi/4): for the 2x2 symmetric
// block [[x_pp, x_pq], [x_pq, x_qq]],
//     theta = (x_qq - x_pp) / (2 x_pq),   t = sign(theta) / (|theta| + sqrt(1 + theta^2)),
//     c = 1 / sqrt(1 + t^2),  s = t c,
// and J = [[c, s], [-s, c]] diagonalizes it: x_pp' = x_pp - t x_pq, x_qq' = x_qq + t x_pq.
// The diagonal is updated by -+ t x_pq and never recomputed from c and s (that is what keeps the
// relative accuracy of small eigenvalues).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "randnla/common.hpp"
#include "randnla/philox.hpp"

namespace randnla {
namespace jacobi {

enum class Pivot : int { cyclic = 0, round_robin = 1, random = 2 };

// Philox purpose tag of the random pivot stream: word 3 of the counter.
constexpr u64 kRandomPivotPurpose = 0x4A41434F42490001ULL;  // "JACOBI" + 1

template <class T>
struct RotationLimits;
template <>
struct RotationLimits<double> {
  // Above this |theta|, theta^2 may overflow and t = 1/(2 theta) is exact to working precision.
  static constexpr double big_theta = 1e150;
};
template <>
struct RotationLimits<float> {
  static constexpr float big_theta = 1e18f;
};

// Computes (t, c, s) for the block; `rotate` says whether the relative test asks for a rotation:
// |x_pq| > tol * sqrt(|x_pp|) * sqrt(|x_qq|). When it does not, (t, c, s) = (0, 1, 0), the
// identity, which leaves every entry unchanged. Written without branches so that the
// across-the-batch loops vectorize; the same code runs for one matrix, so both paths give the
// same bits.
template <class T>
inline bool rotation(T x_pp, T x_qq, T x_pq, T tol, T& t_out, T& c_out, T& s_out) {
  const T threshold = tol * std::sqrt(std::abs(x_pp)) * std::sqrt(std::abs(x_qq));
  const bool rotate = std::abs(x_pq) > threshold;
  const T denominator = rotate ? T(2) * x_pq : T(1);
  const T theta = (x_qq - x_pp) / denominator;
  const T abs_theta = std::abs(theta);
  const T t_small = T(1) / (abs_theta + std::sqrt(T(1) + theta * theta));
  const T t_large = T(0.5) / abs_theta;
  T t = abs_theta > RotationLimits<T>::big_theta ? t_large : t_small;
  t = std::copysign(t, theta);
  const T c = T(1) / std::sqrt(T(1) + t * t);
  const T s = t * c;
  t_out = rotate ? t : T(0);
  c_out = rotate ? c : T(1);
  s_out = rotate ? s : T(0);
  return rotate;
}

// The same rotation with fewer square roots and divisions (3 + 3 instead of 4 + 4), for the
// two-sided kernel. With d = x_qq - x_pp, e = 2 x_pq, m = max(|d|, |e|), q = min(|d|, |e|) / m
// (so that one of |d|/m, |e|/m is exactly 1 and the other is q) and rho = sqrt(1 + q^2) = r / m,
// r = sqrt(d^2 + e^2):
//     |t| = (|e|/m) / (|d|/m + rho),   c = sqrt((|d|/m + rho) / (2 rho)),   s = t c,
// since 1 + t^2 = 2 r / (|d| + r), and sign(t) = sign(d) sign(e). Every quantity lies in [0, 2],
// so nothing overflows or underflows whatever the magnitudes of the entries, and c, s stay a
// rotation to working precision. The relative test is |x_pq| > tol sqrt(|x_pp x_qq|) (the kernel
// scales each matrix so that max |a_ij| is about 1, which keeps that product representable).
template <class T>
inline bool rotation_scaled(T x_pp, T x_qq, T x_pq, T tol, T& t_out, T& c_out, T& s_out) {
  const bool rotate = std::abs(x_pq) > tol * std::sqrt(std::abs(x_pp * x_qq));
  const T d = x_qq - x_pp;
  const T e = rotate ? T(2) * x_pq : T(1);
  const T abs_d = std::abs(d), abs_e = std::abs(e);
  const bool d_larger = abs_d >= abs_e;
  const T big = d_larger ? abs_d : abs_e;
  const T small = d_larger ? abs_e : abs_d;
  const T q = small / big;
  const T rho = std::sqrt(T(1) + q * q);
  const T d_scaled = d_larger ? T(1) : q;
  const T e_scaled = d_larger ? q : T(1);
  const T denominator = d_scaled + rho;
  const T t_abs = e_scaled / denominator;
  const T c = std::sqrt(denominator / (T(2) * rho));
  const T t = std::copysign(t_abs, d * e);  // the sign of d e, also when the product underflows
  t_out = rotate ? t : T(0);
  c_out = rotate ? c : T(1);
  s_out = rotate ? t * c : T(0);
  return rotate;
}

// Number of unordered pairs.
inline i64 pair_count(int n) { return static_cast<i64>(n) * (n - 1) / 2; }

// The pairs of one sweep, in order. cyclic: (0,1), (0,2), ..., (n-2,n-1). round_robin: the circle
// method, n' - 1 rounds of n'/2 disjoint pairs (n' = n rounded up to even; pairs with the dummy
// index n are dropped), so consecutive rotations within a round commute.
inline std::vector<std::pair<int, int>> sweep_pairs(int n, Pivot pivot) {
  std::vector<std::pair<int, int>> pairs;
  pairs.reserve(static_cast<std::size_t>(pair_count(n)));
  if (pivot == Pivot::round_robin) {
    const int m = n + (n & 1);
    std::vector<int> players(m);
    for (int i = 0; i < m; ++i) players[i] = i;
    for (int round = 0; round + 1 < m; ++round) {
      for (int i = 0; i < m / 2; ++i) {
        int p = players[i], q = players[m - 1 - i];
        if (p > q) std::swap(p, q);
        if (q < n) pairs.emplace_back(p, q);
      }
      // Fix players[0], rotate the others by one place.
      const int last = players[m - 1];
      for (int i = m - 1; i > 1; --i) players[i] = players[i - 1];
      if (m > 1) players[1] = last;
    }
  } else {
    for (int p = 0; p + 1 < n; ++p)
      for (int q = p + 1; q < n; ++q) pairs.emplace_back(p, q);
  }
  return pairs;
}

// Uniformly random pair number in [0, N) from 64 random bits (multiply-high; bias below N / 2^64).
inline i64 random_pair_index(u64 bits, i64 n_pairs) {
  u64 hi, lo;
  philox::mul_hi_lo(bits, static_cast<u64>(n_pairs), &hi, &lo);
  return static_cast<i64>(hi);
}

// The 64 random bits of rotation `k` of matrix `matrix`: a pure function of (key, matrix, k).
inline u64 random_pivot_bits(const philox::Key& key, u64 matrix, u64 k) {
  const philox::Counter base = philox::make_counter(0, matrix, kRandomPivotPurpose);
  return philox::numpy_block(base, key, k >> 2).v[k & 3];
}

// A power of two 2^e such that max_abs * 2^e lies in [2^(target-1), 2^target): exact rescaling
// that keeps the working range away from overflow (and from underflow as far as possible).
// Returns 1 for a zero maximum.
template <class T>
inline T power_of_two_scale(T max_abs, int target_exponent) {
  if (!(max_abs > T(0)) || !std::isfinite(max_abs)) return T(1);
  int e = 0;
  std::frexp(max_abs, &e);  // max_abs in [2^(e-1), 2^e)
  // Keep the factor and its inverse representable (normal numbers).
  const int limit = std::numeric_limits<T>::max_exponent - std::numeric_limits<T>::digits - 2;
  const int shift = std::max(-limit, std::min(limit, target_exponent - e));
  return std::ldexp(T(1), shift);
}

// Target exponent for a working array whose entries may grow to `growth` times the largest one,
// and (one-sided) whose squares are summed `growth` times.
template <class T>
inline int safe_exponent(int growth, bool squared) {
  const int max_exponent = std::numeric_limits<T>::max_exponent;  // 1024 for double
  int log_growth = 1;
  while ((1 << log_growth) < growth && log_growth < 30) ++log_growth;
  if (squared) return (max_exponent - log_growth) / 2 - 3;
  return max_exponent - log_growth - 4;
}

}  // namespace jacobi
}  // namespace randnla
