// randnla/jacobi/eigh.hpp: two-sided Jacobi for symmetric eigenproblems, one matrix or a batch.
//
// Layout. A group of L matrices is stored interleaved ("structure of arrays"): entry (i, j) of
// lane l lives at a[(i * ld + j) * L + l] (ld = n + 1), so every loop over the lanes is a SIMD loop across
// matrices. Only the upper triangle of A is kept up to date. The accumulated rotations are stored
// transposed, w[(k * ld + r) * L + l] = V[r][k], so a rotation updates two contiguous rows.
//
// All lanes follow the same (deterministic) pair sequence; a lane whose pair passes the relative
// test applies the identity rotation, which changes no entry, so each matrix gets exactly the
// result it would get alone (the one-matrix path is the same template with L = 1).
// The random rule gives each matrix its own Philox stream, so it always runs with L = 1.
//
// Matrices with n >= blocked_min_n (default kBlockedMinN) go through blocked_eigh instead: pairs
// of column blocks in round-robin order, one element-wise sweep per pair (the kernel above, SIMD
// across the disjoint pairs of a step), BLAS-3 updates of A and V; same relative stopping test.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <mutex>
#include <numeric>
#include <sstream>
#include <vector>

#include "randnla/common.hpp"
#include "randnla/jacobi/rotation.hpp"
#include "randnla/lapack.hpp"
#include "randnla/parallel.hpp"
#include "randnla/philox.hpp"
#include "randnla/symmetric.hpp"

namespace randnla {
namespace jacobi {

struct EighOptions {
  Pivot pivot = Pivot::cyclic;
  double tol = 0.0;        // relative threshold (>= 0; 0 rotates every nonzero pair)
  int max_sweeps = 30;     // sweeps (random rule: blocks of N = n(n-1)/2 draws)
  bool want_vectors = true;
  philox::Key key{{0, 0}};
  int n_threads = 0;
  double symmetry_rtol = -1.0;  // >= 0: reject matrices with max|a_ij - a_ji| > rtol max|a_ij|
  // Single matrices with n >= blocked_min_n run the blocked (BLAS-3) solver of blocked_eigh;
  // block = columns per block (0: automatic). See kBlockedMinN.
  int blocked_min_n = -1;  // < 0: kBlockedMinN
  int block = 0;
};

// Default size from which eigh_batch solves each matrix with the blocked solver (on one matrix
// the blocked solver wins from n ~ 64, on stacks the lane-group kernel wins up to n ~ 100).
constexpr int kBlockedMinN = 128;

// Per-matrix outcome.
struct EighReport {
  int* sweeps = nullptr;         // sweeps that performed at least one rotation
  i64* rotations = nullptr;      // rotations performed (identity skips not counted)
  unsigned char* converged = nullptr;
  double* off = nullptr;         // max_{p<q} |a_pq| / sqrt(|a_pp a_qq|) at exit (0 when a_pq = 0)
};

namespace detail {

// Row stride of the group layout (in lanes): n + 1, so that walking down a column does not hit
// the same cache sets over and over (a power-of-two stride would).
constexpr int leading_dimension(int n) { return n + 1; }

// Input check of one matrix: 0 if finite (and, for rtol >= 0, max |a_ij - a_ji| <= rtol max |a_ij|),
// 1 if it holds NaN/Inf, 2 if it is not symmetric (asymmetry returns the relative value).
template <class T>
inline int check_matrix(const T* m, int n, double rtol, double* asymmetry) {
  const index_t nn = static_cast<index_t>(n) * n;
  if (!all_finite(m, nn)) return 1;
  if (rtol < 0) return 0;
  double max_diff = 0, max_abs = 0;
  randnla::asymmetry(m, static_cast<index_t>(n), static_cast<index_t>(n), max_diff, max_abs);
  *asymmetry = max_diff / (max_abs > 0 ? max_abs : 1.0);
  return *asymmetry > rtol ? 2 : 0;
}

// Throws std::invalid_argument for the first matrix whose status is not 0.
inline void report_bad_input(const std::vector<unsigned char>& status, const std::vector<double>& asymmetry,
                             double rtol) {
  for (std::size_t b = 0; b < status.size(); ++b) {
    RANDNLA_REQUIRE(status[b] != 1, "A contains NaN or infinity (matrix ", b, ")");
    if (status[b] == 2) {
      std::ostringstream message;
      message.precision(2);
      message << std::scientific << "A must be symmetric: relative asymmetry " << asymmetry[b] << " exceeds " << rtol
              << " (matrix " << b << ")";
      throw std::invalid_argument(message.str());
    }
  }
}

// Checks every matrix of a batch (one parallel pass) and throws for the first bad one.
template <class T>
inline void check_symmetric_batch(const T* in, index_t batch, int n, double rtol, int n_threads) {
  std::vector<unsigned char> status(static_cast<std::size_t>(batch), 0);
  std::vector<double> asymmetry(static_cast<std::size_t>(batch), 0.0);
  parallel_for_chunks(batch, 256, n_threads, [&](index_t begin, index_t end, index_t) {
    for (index_t b = begin; b < end; ++b)
      status[static_cast<std::size_t>(b)] = static_cast<unsigned char>(
          check_matrix(in + b * static_cast<index_t>(n) * n, n, rtol, &asymmetry[static_cast<std::size_t>(b)]));
  });
  report_bad_input(status, asymmetry, rtol);
}

// Angles of the rotation on pair (p, q) for the L lanes of a group: updates a_pp, a_qq, a_pq and
// fills c, s (identity where the relative test skips the pair). Returns whether any lane rotates.
template <class T, int L, int N = 0>
inline bool angles_lanes(int n_runtime, T* __restrict a, int p, int q, T tol, T* __restrict c, T* __restrict s,
                         i64* __restrict rotations) {
  const int n = N > 0 ? N : n_runtime;
  const int ld = leading_dimension(n);
  T* __restrict a_pp = a + (static_cast<index_t>(p) * ld + p) * L;
  T* __restrict a_qq = a + (static_cast<index_t>(q) * ld + q) * L;
  T* __restrict a_pq = a + (static_cast<index_t>(p) * ld + q) * L;
  // Cheap pass first (one square root per lane): near convergence most pairs pass the relative
  // test in every lane, and then the rotation formulas are not evaluated at all.
  int needed = 0;
#if defined(RANDNLA_HAVE_OPENMP)
#pragma omp simd reduction(| : needed)
#endif
  for (int l = 0; l < L; ++l) needed |= std::abs(a_pq[l]) > tol * std::sqrt(std::abs(a_pp[l] * a_qq[l])) ? 1 : 0;
  if (!needed) return false;
  int any = 0;
#if defined(RANDNLA_HAVE_OPENMP)
#pragma omp simd reduction(| : any)
#endif
  for (int l = 0; l < L; ++l) {
    T t, cl, sl;
    const bool rotate = rotation_scaled<T>(a_pp[l], a_qq[l], a_pq[l], tol, t, cl, sl);
    const T t_apq = t * a_pq[l];
    a_pp[l] = a_pp[l] - t_apq;
    a_qq[l] = a_qq[l] + t_apq;
    a_pq[l] = rotate ? T(0) : a_pq[l];
    c[l] = cl;
    s[l] = sl;
    rotations[l] += rotate ? 1 : 0;
    any |= rotate ? 1 : 0;
  }
  return any != 0;
}

// Applies the rotation (c, s) on pair (p, q) to the off-diagonal entries of rows/columns p and q
// (upper triangle) and to rows p and q of w (when not null).
template <class T, int L, int N = 0>
inline void apply_lanes(int n_runtime, T* __restrict a, T* __restrict w, int p, int q, const T* __restrict c,
                        const T* __restrict s) {
  const int n = N > 0 ? N : n_runtime;
  const int ld = leading_dimension(n);
  // (x, y) <- (c x - s y, s x + c y)
  auto apply = [&](T* __restrict x, T* __restrict y) {
#if defined(RANDNLA_HAVE_OPENMP)
#pragma omp simd
#endif
    for (int l = 0; l < L; ++l) {
      const T xv = x[l], yv = y[l];
      x[l] = std::fma(c[l], xv, -(s[l] * yv));
      y[l] = std::fma(s[l], xv, c[l] * yv);
    }
  };
  for (int r = 0; r < p; ++r) apply(a + (static_cast<index_t>(r) * ld + p) * L, a + (static_cast<index_t>(r) * ld + q) * L);
  for (int r = p + 1; r < q; ++r)
    apply(a + (static_cast<index_t>(p) * ld + r) * L, a + (static_cast<index_t>(r) * ld + q) * L);
  for (int r = q + 1; r < n; ++r)
    apply(a + (static_cast<index_t>(p) * ld + r) * L, a + (static_cast<index_t>(q) * ld + r) * L);
  if (w != nullptr) {
    T* __restrict wp = w + static_cast<index_t>(p) * ld * L;
    T* __restrict wq = w + static_cast<index_t>(q) * ld * L;
    for (int r = 0; r < n; ++r) apply(wp + static_cast<index_t>(r) * L, wq + static_cast<index_t>(r) * L);
  }
}

// One rotation on pair (p, q). Returns whether any lane rotated.
template <class T, int L, int N = 0>
inline bool rotate_lanes(int n, T* a, T* w, int p, int q, T tol, i64* rotations) {
  alignas(64) T c[L];
  alignas(64) T s[L];
  if (!angles_lanes<T, L, N>(n, a, p, q, tol, c, s, rotations)) return false;
  apply_lanes<T, L, N>(n, a, w, p, q, c, s);
  return true;
}

// A run of `count` pairs that share no index (a round of the round-robin ordering, at most
// kMaxBatchedPairs of them): the angles are computed first, then the rotations are applied in
// order. Since no angle reads an entry that another pair's update writes, this gives exactly
// the bits of rotating the pairs one after another, with more independent work in flight.
constexpr int kMaxBatchedPairs = 16;

template <class T, int L, int N = 0>
inline bool rotate_disjoint(int n, T* a, T* w, const std::pair<int, int>* pairs, int count, T tol, i64* rotations) {
  alignas(64) T c[kMaxBatchedPairs][L];
  alignas(64) T s[kMaxBatchedPairs][L];
  bool rotated[kMaxBatchedPairs];
  bool any = false;
  for (int k = 0; k < count; ++k) {
    rotated[k] = angles_lanes<T, L, N>(n, a, pairs[k].first, pairs[k].second, tol, c[k], s[k], rotations);
    any |= rotated[k];
  }
  for (int k = 0; k < count; ++k)
    if (rotated[k]) apply_lanes<T, L, N>(n, a, w, pairs[k].first, pairs[k].second, c[k], s[k]);
  return any;
}

// Max scaled off-diagonal entry max_{p<q} |a_pq| / sqrt(|a_pp a_qq|) of every lane (0 where a_pq = 0),
// computed for the whole group at once.
template <class T, int L>
inline void scaled_off_lanes(int n, const T* a, double* out) {
  const int ld = leading_dimension(n);
  T worst[L];
  for (int l = 0; l < L; ++l) worst[l] = T(0);
  for (int p = 0; p < n; ++p)
    for (int q = p + 1; q < n; ++q) {
      const T* a_pq = a + (static_cast<index_t>(p) * ld + q) * L;
      const T* a_pp = a + (static_cast<index_t>(p) * ld + p) * L;
      const T* a_qq = a + (static_cast<index_t>(q) * ld + q) * L;
#if defined(RANDNLA_HAVE_OPENMP)
#pragma omp simd
#endif
      for (int l = 0; l < L; ++l) {
        const T apq = std::abs(a_pq[l]);
        const T scale = std::sqrt(std::abs(a_pp[l])) * std::sqrt(std::abs(a_qq[l]));
        const T ratio = apq == T(0) ? T(0) : (scale > T(0) ? apq / scale : std::numeric_limits<T>::infinity());
        worst[l] = ratio > worst[l] ? ratio : worst[l];
      }
    }
  for (int l = 0; l < L; ++l) out[l] = static_cast<double>(worst[l]);
}

template <class T, int L>
inline bool lane_passes(int n, const T* a, int l, T tol) {
  const int ld = leading_dimension(n);
  for (int p = 0; p < n; ++p)
    for (int q = p + 1; q < n; ++q) {
      const T apq = a[(static_cast<index_t>(p) * ld + q) * L + l];
      const T threshold = tol * std::sqrt(std::abs(a[(static_cast<index_t>(p) * ld + p) * L + l] *
                                                   a[(static_cast<index_t>(q) * ld + q) * L + l]));
      if (std::abs(apq) > threshold) return false;
    }
  return true;
}

// Runs the deterministic orderings on one group. sweeps/converged are per lane.
template <class T, int L, int N = 0>
inline void solve_group(int n, T* a, T* w, const std::vector<std::pair<int, int>>& pairs, int round_size, T tol,
                        int max_sweeps, int* sweeps, i64* rotations, unsigned char* converged) {
  const int total = static_cast<int>(pairs.size());
  round_size = std::max(1, std::min(round_size, kMaxBatchedPairs));
  bool done[L];
  for (int l = 0; l < L; ++l) {
    done[l] = false;
    sweeps[l] = 0;
    rotations[l] = 0;
    converged[l] = 0;
  }
  i64 before[L];
  for (int sweep = 0; sweep < max_sweeps; ++sweep) {
    for (int l = 0; l < L; ++l) before[l] = rotations[l];
    bool any = false;
    if (round_size == 1) {
      for (const auto& pq : pairs) any |= rotate_lanes<T, L, N>(n, a, w, pq.first, pq.second, tol, rotations);
    } else {
      // Rounds are consecutive runs of round_size disjoint pairs; a round longer than
      // kMaxBatchedPairs is split, which changes nothing (its pairs are disjoint).
      for (int start = 0; start < total; start += round_size)
        any |= rotate_disjoint<T, L, N>(n, a, w, pairs.data() + start, std::min(round_size, total - start), tol,
                                        rotations);
    }
    for (int l = 0; l < L; ++l) {
      if (done[l]) continue;
      if (rotations[l] == before[l]) {
        done[l] = true;
        converged[l] = 1;
      } else {
        ++sweeps[l];
      }
    }
    if (!any) break;
  }
  for (int l = 0; l < L; ++l)
    if (!done[l]) converged[l] = lane_passes<T, L>(n, a, l, tol) ? 1 : 0;
}

// The random rule on one matrix (L = 1): draw k picks pair pairs[floor(u_k N)].
template <class T>
inline void solve_random(int n, T* a, T* w, const std::vector<std::pair<int, int>>& pairs, T tol, int max_sweeps,
                         const philox::Key& key, u64 matrix, int* sweeps, i64* rotations, unsigned char* converged) {
  const i64 n_pairs = static_cast<i64>(pairs.size());
  *sweeps = 0;
  *rotations = 0;
  *converged = 0;
  if (n_pairs == 0) {
    *converged = 1;
    return;
  }
  u64 k = 0;
  if (lane_passes<T, 1>(n, a, 0, tol)) {
    *converged = 1;
    return;
  }
  for (int sweep = 0; sweep < max_sweeps; ++sweep) {
    for (i64 i = 0; i < n_pairs; ++i, ++k) {
      const auto& pq = pairs[static_cast<std::size_t>(random_pair_index(random_pivot_bits(key, matrix, k), n_pairs))];
      rotate_lanes<T, 1>(n, a, w, pq.first, pq.second, tol, rotations);
    }
    ++*sweeps;
    if (lane_passes<T, 1>(n, a, 0, tol)) {
      *converged = 1;
      return;
    }
  }
}

template <class T>
inline T default_tol(int n) {
  return static_cast<T>(std::sqrt(static_cast<double>(std::max(n, 1))) * epsilon_of<T>());
}

// Packs lanes [first, first + count) of the C-contiguous batch `in` (batch, n, n) into a group
// (upper triangle), scaling each by a power of two; missing lanes are zero matrices.
template <class T, int L>
inline void pack_group(const T* in, index_t first, int count, int n, T* a, T* w, T* scale) {
  const int ld = leading_dimension(n);
  const index_t nn = static_cast<index_t>(n) * n;
  std::fill(a, a + static_cast<index_t>(n) * ld * L, T(0));
  if (w != nullptr) {
    std::fill(w, w + static_cast<index_t>(n) * ld * L, T(0));
    for (int k = 0; k < n; ++k)
      for (int l = 0; l < L; ++l) w[(static_cast<index_t>(k) * ld + k) * L + l] = T(1);
  }
  const int target = 0;  // max |a_ij| in [1/2, 1): see rotation_scaled
  for (int l = 0; l < L; ++l) {
    scale[l] = T(1);
    if (l >= count) continue;
    const T* m = in + (first + l) * nn;
    T max_abs = 0;
    for (int i = 0; i < n; ++i)
      for (int j = i; j < n; ++j) max_abs = std::max(max_abs, std::abs(m[static_cast<index_t>(i) * n + j]));
    const T factor = power_of_two_scale<T>(max_abs, target);
    scale[l] = factor;
    for (int i = 0; i < n; ++i)
      for (int j = i; j < n; ++j) a[(static_cast<index_t>(i) * ld + j) * L + l] = m[static_cast<index_t>(i) * n + j] * factor;
  }
}

// Sorts lane l ascending (stable: ties keep the Jacobi order) and writes eigenvalues / vectors.
template <class T, int L>
inline void unpack_lane(int n, const T* a, const T* w, int l, T scale, T* values, T* vectors, std::vector<int>& order,
                        std::vector<T>& diagonal) {
  const int ld = leading_dimension(n);
  for (int k = 0; k < n; ++k) diagonal[k] = a[(static_cast<index_t>(k) * ld + k) * L + l];
  std::iota(order.begin(), order.end(), 0);
  // Stable insertion sort: n is small here, and ties keep the Jacobi order.
  for (int i = 1; i < n; ++i) {
    const int key = order[i];
    int j = i - 1;
    while (j >= 0 && diagonal[key] < diagonal[order[j]]) {
      order[j + 1] = order[j];
      --j;
    }
    order[j + 1] = key;
  }
  const T unscale = T(1) / scale;
  for (int k = 0; k < n; ++k) values[k] = diagonal[order[k]] * unscale;
  if (vectors != nullptr && w != nullptr) {
    for (int k = 0; k < n; ++k) {
      const T* row = w + static_cast<index_t>(order[k]) * ld * L;
      for (int r = 0; r < n; ++r) vectors[static_cast<index_t>(r) * n + k] = row[static_cast<index_t>(r) * L + l];
    }
  }
}

// A 64-byte aligned scratch buffer (one per thread, reused across groups).
template <class T>
struct AlignedScratch {
  std::vector<T> storage;
  T* get(std::size_t count) {
    const std::size_t pad = 64 / sizeof(T);
    if (storage.size() < count + pad) storage.resize(count + pad);
    auto address = reinterpret_cast<std::uintptr_t>(storage.data());
    const std::size_t misalignment = (64 - address % 64) % 64;
    return storage.data() + misalignment / sizeof(T);
  }
};

template <class T, int L, int N = 0>
inline void eigh_groups(const T* in, index_t batch, int n, T* values, T* vectors, const EighOptions& options,
                        const EighReport& report) {
  const auto pairs = sweep_pairs(n, options.pivot);
  const T tol = static_cast<T>(options.tol);
  const index_t nn = static_cast<index_t>(n) * n;
  const index_t n_groups = (batch + L - 1) / L;
  const int ld = leading_dimension(n);
  const bool random = options.pivot == Pivot::random;
  std::vector<unsigned char> status(static_cast<std::size_t>(batch), 0);
  std::vector<double> asymmetry(static_cast<std::size_t>(batch), 0.0);
  // Waking threads costs more than a small batch takes on one core (and much more on a loaded
  // machine): use about one thread per 2^18 units of n^3 work (a second thread from about 4000
  // matrices of 4 x 4 or 500 of 8 x 8; it takes 10^4 matrices of 4 x 4 from 3.4 to 2.7 ms on
  // two busy cores). Results do not depend on it.
  const double work = static_cast<double>(batch) * n * n * n;
  const int wanted = resolve_threads(options.n_threads);
  const int threads = static_cast<int>(std::max(1.0, std::min<double>(wanted, 1.0 + work / 262144.0)));
  parallel_for_dynamic(n_groups, threads, [&](index_t g) {
    thread_local AlignedScratch<T> a_buffer, w_buffer;
    T* a = a_buffer.get(static_cast<std::size_t>(static_cast<index_t>(n) * ld * L));
    T* w = options.want_vectors ? w_buffer.get(static_cast<std::size_t>(static_cast<index_t>(n) * ld * L)) : nullptr;
    const index_t first = g * L;
    const int count = static_cast<int>(std::min<index_t>(L, batch - first));
    // Input checks inside the solving pass (one parallel region for the whole call).
    bool bad = false;
    for (int l = 0; l < count; ++l) {
      const std::size_t b = static_cast<std::size_t>(first + l);
      status[b] = static_cast<unsigned char>(check_matrix(in + (first + l) * nn, n, options.symmetry_rtol, &asymmetry[b]));
      bad |= status[b] != 0;
    }
    if (bad) return;
    T scale[L];
    pack_group<T, L>(in, first, count, n, a, w, scale);
    int sweeps[L];
    i64 rotations[L];
    unsigned char converged[L];
    if (random) {
      solve_random<T>(n, a, w, pairs, tol, options.max_sweeps, options.key, static_cast<u64>(first), sweeps, rotations,
                      converged);
    } else {
      solve_group<T, L, N>(n, a, w, pairs, options.pivot == Pivot::round_robin ? n / 2 : 1, tol, options.max_sweeps, sweeps, rotations, converged);
    }
    std::vector<int> order(static_cast<std::size_t>(n));
    std::vector<T> diagonal(static_cast<std::size_t>(n));
    double off[L];
    if (report.off) scaled_off_lanes<T, L>(n, a, off);
    for (int l = 0; l < count; ++l) {
      const index_t b = first + l;
      unpack_lane<T, L>(n, a, w, l, scale[l], values + b * n, vectors ? vectors + b * nn : nullptr, order, diagonal);
      if (report.sweeps) report.sweeps[b] = sweeps[l];
      if (report.rotations) report.rotations[b] = rotations[l];
      if (report.converged) report.converged[b] = converged[l];
      if (report.off) report.off[b] = off[l];
    }
  });
  report_bad_input(status, asymmetry, options.symmetry_rtol);
}


// ---------------------------------------------------------------- blocked solver (large n)
//
// The matrix (padded with zero rows and columns to N = 2 p b) is split into 2p blocks of b
// columns. A sweep is 2p - 1 steps of the round-robin (circle) ordering on the blocks; a step
// pairs the blocks into p disjoint chunks (I, J) of m = 2b indices, moves them next to each
// other (chunk k holds positions [k m, (k + 1) m)), and
//   1. skips every chunk whose m x m diagonal block already passes the relative test
//      |a_ij| <= tol sqrt(|a_ii a_jj|) entry by entry;
//   2. runs one sweep of the element-wise kernel above on the other chunks' m x m blocks (all
//      pairs on even steps, only the pairs between the two blocks on odd steps; row-cyclic; one
//      SIMD lane per chunk, on the calling thread), accumulating each chunk's
//      orthogonal W_k, and keeps the rotated block as the new diagonal block (relative accuracy
//      as for one matrix: the diagonal block is never recomputed from W_k);
//   3. applies Q = diag(W_0, ..., W_{p-1}) to A (A <- Q^T A Q, upper block triangle only) and to
//      V (V <- V Q) with GEMM, outside the threaded region.
// A sweep in which no chunk rotates leaves A unchanged and has met every pair of blocks, so
// every entry then passes the relative test: the stopping rule is the element-wise one.
// Padding indices have zero rows and columns: no rotation ever involves them, W_k is the
// identity on them, and they stay exactly zero through the GEMMs.
// The random rule relabels the blocks by a Philox permutation at the start of every sweep
// (random block pairs; every pair of blocks still meets once per sweep).
//
// Cost: each step applies 4 N^2 m GEMM flops (2 N^2 m on A's upper block triangle, 2 N^2 m on V),
// 8 N^3 per sweep; GOE matrices take 9 / 10 / 11 sweeps at n = 256 / 512 / 1024 (52 / 67 n^3
// GEMM flops measured at 256 / 512, 1 thread: GEMMs ~65% of the time, element-wise solves
// ~22%, gathers ~7%). Measured alternatives that did not cut the count enough to pay:
// - dynamic block ordering (greedy disjoint block pairs by the largest scaled off-diagonal
//   block weights, each 2b x 2b subproblem solved to convergence): block-pair solves
//   (proportional to GEMM flops) 223 vs 222 at n = 256 (b = 32), 1085 vs 1176 at 512, 1173
//   vs 1307 at 1024 (b = 64) against round-robin with the same full solves; with one inner
//   sweep per visit 62 steps vs 59 at n = 256, and the block weights alone miss the pairs
//   inside a block (a stall at 512). Full solves cost several inner sweeps per visit where
//   one is used now: more than the <= 10% of GEMM flops they save;
// - full subproblem solves in round-robin order: 222 vs 239 block-pair solves at n = 256,
//   1176 vs 1138 at 512 (the one-sweep solves of this solver);
// - only the cross pairs on every step after a sweep's first (about 28% fewer rotations):
//   one more outer sweep at n = 512 (no time saved), 5% faster at n = 1024.

constexpr u64 kRandomBlockPurpose = 0x4A41434F42490002ULL;  // "JACOBI" + 2

inline int blocked_block_size(int n, int requested) {
  if (requested > 0) return requested;
  return n >= 1024 ? 64 : (n >= 256 ? 32 : 16);
}

template <class T>
inline void copy_columns(const T* src, index_t lds, T* dst, index_t ldd, int rows, int cols) {
  for (int j = 0; j < cols; ++j) std::memcpy(dst + j * ldd, src + j * lds, static_cast<std::size_t>(rows) * sizeof(T));
}

// Solves the chunks listed in `active` (L lanes per group, in parallel): W (m x m, column-major,
// one per chunk) and the rotated diagonal blocks d (m x m per chunk, symmetric). g holds the gathered matrix (ld N).
template <class T, int L, int M>
inline void blocked_solve_chunks(const T* g, index_t N, int m, const std::vector<int>& active,
                                 const std::vector<std::pair<int, int>>& pairs, int round_size, T tol, T* W, T* d,
                                 i64* chunk_rotations, int n_threads) {
  const int ld = leading_dimension(m);
  // One inner sweep per visit: more inner sweeps do not save outer sweeps (measured), they only
  // cost more rotations.
  constexpr int inner_sweeps = 1;
  const index_t n_groups = (static_cast<index_t>(active.size()) + L - 1) / L;
  parallel_for_dynamic(n_groups, n_threads, [&](index_t group) {
    thread_local AlignedScratch<T> a_buffer, w_buffer;
    T* a = a_buffer.get(static_cast<std::size_t>(m) * ld * L);
    T* w = w_buffer.get(static_cast<std::size_t>(m) * ld * L);
    std::fill(a, a + static_cast<index_t>(m) * ld * L, T(0));
    std::fill(w, w + static_cast<index_t>(m) * ld * L, T(0));
    for (int k = 0; k < m; ++k)
      for (int l = 0; l < L; ++l) w[(static_cast<index_t>(k) * ld + k) * L + l] = T(1);
    const index_t first = group * L;
    const int count = static_cast<int>(std::min<index_t>(L, static_cast<index_t>(active.size()) - first));
    for (int l = 0; l < count; ++l) {
      const index_t r0 = static_cast<index_t>(active[static_cast<std::size_t>(first + l)]) * m;
      for (int j = 0; j < m; ++j)
        for (int i = 0; i <= j; ++i) a[(static_cast<index_t>(i) * ld + j) * L + l] = g[(r0 + i) + (r0 + j) * N];
    }
    int sweeps[L];
    i64 rotations[L];
    unsigned char converged[L];
    solve_group<T, L, M>(m, a, w, pairs, round_size, tol, inner_sweeps, sweeps, rotations, converged);
    for (int l = 0; l < count; ++l) {
      const int k = active[static_cast<std::size_t>(first + l)];
      T* wk = W + static_cast<index_t>(k) * m * m;
      T* dk = d + static_cast<index_t>(k) * m * m;
      for (int c = 0; c < m; ++c) {
        for (int r = 0; r <= c; ++r) {
          const T x = a[(static_cast<index_t>(r) * ld + c) * L + l];
          dk[r + static_cast<index_t>(c) * m] = x;
          dk[c + static_cast<index_t>(r) * m] = x;
        }
        for (int r = 0; r < m; ++r) wk[r + static_cast<index_t>(c) * m] = w[(static_cast<index_t>(c) * ld + r) * L + l];
      }
      chunk_rotations[k] = rotations[l];
    }
  });
}

template <class T, int L>
inline void blocked_solve_dispatch(const T* g, index_t N, int m, const std::vector<int>& active,
                                   const std::vector<std::pair<int, int>>& pairs, int round_size, T tol, T* W, T* d,
                                   i64* chunk_rotations, int n_threads) {
  switch (m) {
    case 16:
      blocked_solve_chunks<T, L, 16>(g, N, m, active, pairs, round_size, tol, W, d, chunk_rotations, n_threads);
      return;
    case 32:
      blocked_solve_chunks<T, L, 32>(g, N, m, active, pairs, round_size, tol, W, d, chunk_rotations, n_threads);
      return;
    case 64:
      blocked_solve_chunks<T, L, 64>(g, N, m, active, pairs, round_size, tol, W, d, chunk_rotations, n_threads);
      return;
    case 128:
      blocked_solve_chunks<T, L, 128>(g, N, m, active, pairs, round_size, tol, W, d, chunk_rotations, n_threads);
      return;
    default:
      blocked_solve_chunks<T, L, 0>(g, N, m, active, pairs, round_size, tol, W, d, chunk_rotations, n_threads);
  }
}

// One symmetric matrix `in` (n x n, C order, upper triangle read) by the blocked solver.
template <class T>
inline void blocked_eigh(const T* in, int n, T* values, T* vectors, const EighOptions& options, int* sweeps_out,
                         i64* rotations_out, unsigned char* converged_out, double* off_out, u64 matrix_index) {
  const int b = std::max(1, blocked_block_size(n, options.block));
  const int m = 2 * b;
  const int p = (n + m - 1) / m;
  const int nb = 2 * p;
  const index_t N = static_cast<index_t>(nb) * b;
  const bool want_vectors = vectors != nullptr;
  const T tol = static_cast<T>(options.tol);
  // The chunk solves run on the calling thread and the cores are left to the BLAS of the GEMMs:
  // OpenMP workers spinning next to the BLAS threads made a default call 3-4x slower than one
  // thread (n = 512: 1.17 s with both, 0.31 s with neither, 0.28 s with BLAS threads only;
  // n = 1024: 3.1 s, 2.5 s, 1.8 s). options.n_threads does not apply here.
  const int threads = 1;
  std::vector<T> a(static_cast<std::size_t>(N * N), T(0)), g(static_cast<std::size_t>(N * N), T(0)),
      h(static_cast<std::size_t>(N * N), T(0));
  std::vector<T> v, v2;
  if (want_vectors) {
    v.assign(static_cast<std::size_t>(n) * N, T(0));
    v2.assign(static_cast<std::size_t>(n) * N, T(0));
    for (int i = 0; i < n; ++i) v[static_cast<std::size_t>(i) * n + i] = T(1);  // column i, row i (ld n)
  }
  // Column-major A (ld N), scaled by a power of two so that max |a_ij| lies in [1/2, 1).
  T max_abs = 0;
  for (int i = 0; i < n; ++i)
    for (int j = i; j < n; ++j) max_abs = std::max(max_abs, std::abs(in[static_cast<index_t>(i) * n + j]));
  const T scale = power_of_two_scale<T>(max_abs, 0);
  for (int j = 0; j < n; ++j)
    for (int i = 0; i <= j; ++i) {
      const T x = in[static_cast<index_t>(i) * n + j] * scale;
      a[i + j * N] = x;
      a[j + i * N] = x;
    }
  // Row-cyclic order inside every chunk, whatever the pivot rule: consecutive rotations share
  // row p, which keeps the lane-interleaved block in cache (measured 1.3-1.6x faster solves than
  // the round-robin order at m = 64 and 128, same outer sweep counts).
  const auto inner_pairs = sweep_pairs(m, Pivot::cyclic);
  const int round_size = 1;
  // On odd steps only the b x b pairs between the chunk's two blocks are rotated (the pairs
  // inside a block were just rotated at the previous step, where that block sat in another
  // chunk): about a quarter fewer rotations for the same outer sweep counts (measured at
  // n = 256 to 1024). Step 0 of every sweep is a full one, so every pair, the ones inside a
  // block included, is tested once per sweep and a sweep without rotations still proves the
  // element-wise relative test.
  std::vector<std::pair<int, int>> cross_pairs;
  for (int i = 0; i < b; ++i)
    for (int j = b; j < m; ++j) cross_pairs.emplace_back(i, j);
  // Layout: slot s (positions [s b, (s + 1) b)) holds block blk[s]; slot_of[block] inverts it.
  std::vector<int> blk(nb), slot_of(nb), blk_new(nb), players(nb);
  std::iota(blk.begin(), blk.end(), 0);
  std::iota(slot_of.begin(), slot_of.end(), 0);
  std::iota(players.begin(), players.end(), 0);
  std::vector<T> W(static_cast<std::size_t>(p) * m * m), d(static_cast<std::size_t>(p) * m * m);
  std::vector<i64> chunk_rotations(static_cast<std::size_t>(p), 0);
  std::vector<unsigned char> rotated(static_cast<std::size_t>(p), 0);
  std::vector<int> active;
  int sweeps = 0;
  i64 rotations = 0;
  bool converged = false;
  u64 draw = 0;
  // One SIMD register of lanes (8 doubles / 16 floats) when every thread still gets a group, else
  // half of one. The lane count never changes a lane's bits.
  const int lanes = (p >= 8 * threads ? 8 : 4) * static_cast<int>(sizeof(double) / sizeof(T));
  for (int sweep = 0; sweep < options.max_sweeps && !converged; ++sweep) {
    if (options.pivot == Pivot::random) {
      const philox::Counter base = philox::make_counter(0, matrix_index, kRandomBlockPurpose);
      for (int i = nb - 1; i > 0; --i) {
        const u64 bits = philox::numpy_block(base, options.key, draw >> 2).v[draw & 3];
        ++draw;
        std::swap(players[static_cast<std::size_t>(i)], players[static_cast<std::size_t>(random_pair_index(bits, i + 1))]);
      }
    }
    bool any = false;
    for (int step = 0; step + 1 < nb; ++step) {
      for (int i = 0; i < p; ++i) {
        blk_new[2 * i] = players[i];
        blk_new[2 * i + 1] = players[nb - 1 - i];
      }
      // Gather: G = A in the new layout (upper block triangle, full diagonal blocks).
      for (int c = 0; c < nb; ++c) {
        const int sc = slot_of[blk_new[c]];
        for (int r = 0; r <= c; ++r) {
          const int sr = slot_of[blk_new[r]];
          T* dst = g.data() + static_cast<index_t>(r) * b + static_cast<index_t>(c) * b * N;
          if (sr <= sc) {
            copy_columns(a.data() + static_cast<index_t>(sr) * b + static_cast<index_t>(sc) * b * N, N, dst, N, b, b);
          } else {
            const T* src = a.data() + static_cast<index_t>(sc) * b + static_cast<index_t>(sr) * b * N;
            for (int j = 0; j < b; ++j)
              for (int i = 0; i < b; ++i) dst[i + j * N] = src[j + i * N];
          }
        }
      }
      // Which chunks need rotating.
      active.clear();
      for (int k = 0; k < p; ++k) {
        const index_t r0 = static_cast<index_t>(k) * m;
        bool need = false;
        for (int j = 1; j < m && !need; ++j) {
          const T ajj = g[(r0 + j) + (r0 + j) * N];
          for (int i = 0; i < j; ++i) {
            const T aij = g[(r0 + i) + (r0 + j) * N];
            if (std::abs(aij) > tol * std::sqrt(std::abs(g[(r0 + i) + (r0 + i) * N] * ajj))) {
              need = true;
              break;
            }
          }
        }
        rotated[static_cast<std::size_t>(k)] = need ? 1 : 0;
        if (need) active.push_back(k);
      }
      if (!active.empty()) {
        any = true;  // some pair fails the test (even if this step's pair list leaves it alone)
        if (lanes == 4)
          blocked_solve_dispatch<T, 4>(g.data(), N, m, active, step % 2 ? cross_pairs : inner_pairs, round_size, tol, W.data(), d.data(),
                                       chunk_rotations.data(), threads);
        else if (lanes == 8)
          blocked_solve_dispatch<T, 8>(g.data(), N, m, active, step % 2 ? cross_pairs : inner_pairs, round_size, tol, W.data(), d.data(),
                                       chunk_rotations.data(), threads);
        else
          blocked_solve_dispatch<T, 16>(g.data(), N, m, active, step % 2 ? cross_pairs : inner_pairs, round_size, tol, W.data(), d.data(),
                                        chunk_rotations.data(), threads);
        for (int k : active) {
          rotations += chunk_rotations[static_cast<std::size_t>(k)];
          // No rotation: W_k = I and the block is unchanged, the GEMMs would copy bit for bit.
          if (chunk_rotations[static_cast<std::size_t>(k)] == 0) rotated[static_cast<std::size_t>(k)] = 0;
        }
      }
      // A <- Q^T G Q on the upper chunk triangle: H = G Q above the diagonal chunks, then
      // A = Q^T H to the right of them; the diagonal chunks are the solved diagonals.
      for (int c = 1; c < p; ++c) {
        const index_t col = static_cast<index_t>(c) * m;
        if (rotated[c])
          lapack::gemm<T>('N', 'N', static_cast<int>(col), m, m, T(1), g.data() + col * N, static_cast<int>(N),
                          W.data() + static_cast<index_t>(c) * m * m, m, T(0), h.data() + col * N, static_cast<int>(N));
        else
          copy_columns(g.data() + col * N, N, h.data() + col * N, N, static_cast<int>(col), m);
      }
      for (int k = 0; k < p; ++k) {
        const index_t r0 = static_cast<index_t>(k) * m, c0 = r0 + m;
        const int cols = static_cast<int>(N - c0);
        if (cols > 0) {
          if (rotated[k])
            lapack::gemm<T>('T', 'N', m, cols, m, T(1), W.data() + static_cast<index_t>(k) * m * m, m,
                            h.data() + r0 + c0 * N, static_cast<int>(N), T(0), a.data() + r0 + c0 * N,
                            static_cast<int>(N));
          else
            copy_columns(h.data() + r0 + c0 * N, N, a.data() + r0 + c0 * N, N, m, cols);
        }
        if (rotated[k]) {
          copy_columns(d.data() + static_cast<index_t>(k) * m * m, m, a.data() + r0 + r0 * N, N, m, m);
        } else {
          copy_columns(g.data() + r0 + r0 * N, N, a.data() + r0 + r0 * N, N, m, m);
        }
      }
      if (want_vectors) {
        // V <- V[:, new layout] Q, rows 0..n-1 (ld n): the chunk's two blocks are copied next to
        // each other (h serves as scratch), then one GEMM.
        for (int k = 0; k < p; ++k) {
          const T* vi = v.data() + static_cast<index_t>(slot_of[blk_new[2 * k]]) * b * n;
          const T* vj = v.data() + static_cast<index_t>(slot_of[blk_new[2 * k + 1]]) * b * n;
          T* out = v2.data() + static_cast<index_t>(k) * m * n;
          if (rotated[k]) {
            T* scratch = h.data();
            copy_columns(vi, n, scratch, n, n, b);
            copy_columns(vj, n, scratch + static_cast<index_t>(b) * n, n, n, b);
            lapack::gemm<T>('N', 'N', n, m, m, T(1), scratch, n, W.data() + static_cast<index_t>(k) * m * m, m, T(0),
                            out, n);
          } else {
            copy_columns(vi, n, out, n, n, b);
            copy_columns(vj, n, out + static_cast<index_t>(b) * n, n, n, b);
          }
        }
        v.swap(v2);
      }
      blk = blk_new;
      for (int s = 0; s < nb; ++s) slot_of[blk[s]] = s;
      // Circle method: fix players[0], rotate the others by one place.
      const int last = players[nb - 1];
      for (int i = nb - 1; i > 1; --i) players[i] = players[i - 1];
      players[1] = last;
    }
    if (any)
      ++sweeps;
    else
      converged = true;
  }
  // Real positions (padding removed), the largest scaled off-diagonal entry, the final test.
  // position[k]: where column k of the initial layout (block k / b, offset k % b) ended up, so
  // that ties sort in index order (a diagonal matrix gives V = I up to the sort permutation).
  std::vector<index_t> position(static_cast<std::size_t>(n));
  for (int s = 0; s < nb; ++s)
    for (int o = 0; o < b; ++o) {
      const index_t label = static_cast<index_t>(blk[s]) * b + o;
      if (label < n) position[static_cast<std::size_t>(label)] = static_cast<index_t>(s) * b + o;
    }
  T worst = 0;
  for (std::size_t jj = 0; jj < position.size(); ++jj)
    for (std::size_t ii = 0; ii < jj; ++ii) {
      const index_t i = position[ii], j = position[jj];
      const index_t bi = i / b, bj = j / b;
      const T aij = bi <= bj ? a[i + j * N] : a[j + i * N];
      const T apq = std::abs(aij);
      const T s = std::sqrt(std::abs(a[i + i * N])) * std::sqrt(std::abs(a[j + j * N]));
      const T ratio = apq == T(0) ? T(0) : (s > T(0) ? apq / s : std::numeric_limits<T>::infinity());
      worst = std::max(worst, ratio);
    }
  if (!converged) {
    bool pass = true;
    for (std::size_t jj = 0; jj < position.size() && pass; ++jj)
      for (std::size_t ii = 0; ii < jj; ++ii) {
        const index_t i = position[ii], j = position[jj];
        const T aij = (i / b) <= (j / b) ? a[i + j * N] : a[j + i * N];
        if (std::abs(aij) > tol * std::sqrt(std::abs(a[i + i * N] * a[j + j * N]))) {
          pass = false;
          break;
        }
      }
    converged = pass;
  }
  // Ascending eigenvalues (stable: ties keep the index order), vectors permuted alike.
  std::vector<T> diagonal(static_cast<std::size_t>(n));
  for (int k = 0; k < n; ++k) diagonal[k] = a[position[k] + position[k] * N];
  std::vector<int> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int x, int y) { return diagonal[x] < diagonal[y]; });
  const T unscale = T(1) / scale;
  for (int k = 0; k < n; ++k) values[k] = diagonal[order[k]] * unscale;
  if (want_vectors) {
    for (int k = 0; k < n; ++k) {
      const T* column = v.data() + position[order[k]] * n;
      for (int r = 0; r < n; ++r) vectors[static_cast<index_t>(r) * n + k] = column[r];
    }
  }
  *sweeps_out = sweeps;
  *rotations_out = rotations;
  *converged_out = converged ? 1 : 0;
  *off_out = static_cast<double>(worst);
}

}  // namespace detail

// Eigenvalues (ascending) and, when options.want_vectors, eigenvectors (columns) of a batch of
// symmetric matrices `in` (batch, n, n), C-contiguous; only the upper triangle is read.
// values: (batch, n); vectors: (batch, n, n) or nullptr.
template <class T>
inline void eigh_batch(const T* in, index_t batch, int n, T* values, T* vectors, const EighOptions& options,
                       const EighReport& report) {
  RANDNLA_REQUIRE(n >= 0, "n must be non-negative");
  RANDNLA_REQUIRE(batch >= 0, "batch must be non-negative");
  RANDNLA_REQUIRE(options.tol >= 0.0, "tol must be non-negative");
  RANDNLA_REQUIRE(options.max_sweeps >= 0, "max_sweeps must be non-negative");
  if (batch == 0) return;
  if (n == 0) {
    for (index_t b = 0; b < batch; ++b) {
      if (report.sweeps) report.sweeps[b] = 0;
      if (report.rotations) report.rotations[b] = 0;
      if (report.converged) report.converged[b] = 1;
      if (report.off) report.off[b] = 0.0;
    }
    return;
  }
  EighOptions opts = options;
  if (!opts.want_vectors) vectors = nullptr;
  if (vectors == nullptr) opts.want_vectors = false;
  const int blocked_min_n = opts.blocked_min_n < 0 ? kBlockedMinN : opts.blocked_min_n;
  if (n >= std::max(blocked_min_n, 2)) {
    // Large matrices, one at a time, each with all threads (blocked solver).
    detail::check_symmetric_batch(in, batch, n, opts.symmetry_rtol, opts.n_threads);
    const index_t nn = static_cast<index_t>(n) * n;
    for (index_t b = 0; b < batch; ++b) {
      int sweeps = 0;
      i64 rotations = 0;
      unsigned char converged = 0;
      double off = 0.0;
      detail::blocked_eigh<T>(in + b * nn, n, values + b * n, vectors ? vectors + b * nn : nullptr, opts, &sweeps,
                              &rotations, &converged, &off, static_cast<u64>(b));
      if (report.sweeps) report.sweeps[b] = sweeps;
      if (report.rotations) report.rotations[b] = rotations;
      if (report.converged) report.converged[b] = converged;
      if (report.off) report.off[b] = off;
    }
    return;
  }
  if (opts.pivot == Pivot::random || batch == 1) {
    detail::eigh_groups<T, 1>(in, batch, n, values, vectors, opts, report);
    return;
  }
  // Two AVX-512 registers per lane group: two independent dependency chains in the angle
  // computation (cyclic pairs depend on each other) and still an L1/L2-resident working set.
  constexpr int wide = 2 * 64 / static_cast<int>(sizeof(T));
  switch (n) {
#define RANDNLA_JACOBI_FIXED(N_, L_) \
  case N_:                           \
    detail::eigh_groups<T, L_, N_>(in, batch, n, values, vectors, opts, report); \
    return;
    RANDNLA_JACOBI_FIXED(2, wide)
    RANDNLA_JACOBI_FIXED(3, wide)
    RANDNLA_JACOBI_FIXED(4, wide)
    RANDNLA_JACOBI_FIXED(5, wide)
    RANDNLA_JACOBI_FIXED(6, wide)
    RANDNLA_JACOBI_FIXED(7, wide)
    RANDNLA_JACOBI_FIXED(8, wide)
    RANDNLA_JACOBI_FIXED(16, wide)
    RANDNLA_JACOBI_FIXED(32, wide)
#undef RANDNLA_JACOBI_FIXED
    default:
      break;
  }
  if (n <= 64) {
    detail::eigh_groups<T, wide>(in, batch, n, values, vectors, opts, report);
  } else {
    detail::eigh_groups<T, wide / 4>(in, batch, n, values, vectors, opts, report);
  }
}

}  // namespace jacobi
}  // namespace randnla
