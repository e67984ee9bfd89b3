// Batched two-sided Jacobi on the GPU for small symmetric matrices (n <= 32): one matrix per
// thread block, held in shared memory with its eigenvector matrix.
//
// Deterministic rules run in round-robin (circle-method) order: each round is n'/2 disjoint pairs
// (n' = n rounded up to even; pairs with the dummy index n are skipped). All angles of a round
// are computed from the same matrix, then the round is applied as one orthogonal transform (rows,
// then columns), then the 2x2 blocks are set from the accurate formulas (a_pp - t a_pq,
// a_qq + t a_pq, a_pq = 0). The random rule draws pair k of matrix b from the same Philox stream
// as the host (counter (0, b, purpose), draw k), one rotation at a time.
// Stopping is relative: a pair is rotated only while |a_pq| > tol sqrt(|a_pp|) sqrt(|a_qq|); a sweep
// (round-robin) or block of N draws (random) followed by a scan with no pair left ends the solve.
// Eigenvalues are sorted ascending (stable), eigenvectors permuted with them.
#include "randnla/philox.hpp"

using randnla::u64;
namespace philox = randnla::philox;

#define RANDNLA_JACOBI_MAX_N 32

// Philox purpose tag of the random pivots: equal to randnla::jacobi::kRandomPivotPurpose on the host.
#define RANDNLA_JACOBI_RANDOM_PURPOSE 0x4A41434F42490001ULL

__device__ inline double jacobi_sqrt(double x) { return sqrt(x); }
__device__ inline float jacobi_sqrt(float x) { return sqrtf(x); }
__device__ inline double jacobi_abs(double x) { return fabs(x); }
__device__ inline float jacobi_abs(float x) { return fabsf(x); }
__device__ inline double jacobi_copysign(double x, double y) { return copysign(x, y); }
__device__ inline float jacobi_copysign(float x, float y) { return copysignf(x, y); }
__device__ inline double jacobi_fma(double x, double y, double z) { return fma(x, y, z); }
__device__ inline float jacobi_fma(float x, float y, float z) { return fmaf(x, y, z); }
template <class T>
__device__ inline T jacobi_big_theta();
template <>
__device__ inline double jacobi_big_theta<double>() { return 1e150; }
template <>
__device__ inline float jacobi_big_theta<float>() { return 1e18f; }

// Rutishauser's rotation (small-angle root); identity when the relative test skips the pair.
template <class T>
__device__ inline bool jacobi_rotation(T app, T aqq, T apq, T tol, T* t_out, T* c_out, T* s_out) {
  const T threshold = tol * jacobi_sqrt(jacobi_abs(app)) * jacobi_sqrt(jacobi_abs(aqq));
  if (!(jacobi_abs(apq) > threshold)) {
    *t_out = T(0);
    *c_out = T(1);
    *s_out = T(0);
    return false;
  }
  const T theta = (aqq - app) / (T(2) * apq);
  const T abs_theta = jacobi_abs(theta);
  T t = abs_theta > jacobi_big_theta<T>() ? T(0.5) / abs_theta
                                          : T(1) / (abs_theta + jacobi_sqrt(T(1) + theta * theta));
  t = jacobi_copysign(t, theta);
  const T c = T(1) / jacobi_sqrt(T(1) + t * t);
  *t_out = t;
  *c_out = c;
  *s_out = t * c;
  return true;
}

// Player at position i of round r of the circle method with m (even) players.
__device__ inline int jacobi_player(int i, int r, int m) {
  if (i == 0) return 0;
  return 1 + ((i - 1 - r) % (m - 1) + (m - 1)) % (m - 1);
}

template <class T>
__device__ void jacobi_eigh_block(const T* __restrict__ a_in, int n, T tol, int max_sweeps, int want_vectors,
                                  int random, u64 k0, u64 k1, T* __restrict__ w_out, T* __restrict__ v_out,
                                  int* __restrict__ sweeps_out, long long* __restrict__ rotations_out,
                                  unsigned char* __restrict__ converged_out) {
  __shared__ T a[RANDNLA_JACOBI_MAX_N][RANDNLA_JACOBI_MAX_N + 1];
  __shared__ T v[RANDNLA_JACOBI_MAX_N][RANDNLA_JACOBI_MAX_N + 1];
  __shared__ T cs[RANDNLA_JACOBI_MAX_N / 2][4];  // c, s, new a_pp, new a_qq of each pair of the round
  __shared__ int pair_p[RANDNLA_JACOBI_MAX_N / 2], pair_q[RANDNLA_JACOBI_MAX_N / 2];
  __shared__ int rotate[RANDNLA_JACOBI_MAX_N / 2];
  __shared__ int rotated_count;
  __shared__ int pending;
  __shared__ T diag[RANDNLA_JACOBI_MAX_N];
  __shared__ int rank[RANDNLA_JACOBI_MAX_N];

  const int b = blockIdx.x;
  const int tid = threadIdx.x;
  const int nthreads = blockDim.x;
  const T* src = a_in + (long long)b * n * n;
  for (int e = tid; e < n * n; e += nthreads) {
    const int i = e / n, j = e % n;
    a[i][j] = src[e];
    v[i][j] = (i == j) ? T(1) : T(0);
  }
  __syncthreads();

  const int m = n + (n & 1);
  const int pairs_per_round = m / 2;
  const long long n_pairs = (long long)n * (n - 1) / 2;
  long long rotations = 0;
  int sweeps = 0;
  int converged = 0;
  philox::Key key;
  key.v[0] = k0;
  key.v[1] = k1;
  const philox::Counter base = philox::make_counter(0, (u64)b, RANDNLA_JACOBI_RANDOM_PURPOSE);
  u64 draw = 0;

  for (int sweep = 0; sweep < max_sweeps && n_pairs > 0; ++sweep) {
    if (tid == 0) rotated_count = 0;
    __syncthreads();
    const int steps = random ? (int)n_pairs : m - 1;
    for (int step = 0; step < steps; ++step) {
      const int count = random ? 1 : pairs_per_round;
      if (tid < count) {
        int p, q;
        if (random) {
          const philox::Block block = philox::numpy_block(base, key, draw >> 2);
          u64 hi, lo;
          philox::mul_hi_lo(block.v[draw & 3], (u64)n_pairs, &hi, &lo);
          // Pair number hi in row-cyclic order -> (p, q).
          long long k = (long long)hi;
          p = 0;
          while (k >= n - 1 - p) {
            k -= n - 1 - p;
            ++p;
          }
          q = p + 1 + (int)k;
        } else {
          p = jacobi_player(tid, step, m);
          q = jacobi_player(m - 1 - tid, step, m);
          if (p > q) {
            const int x = p;
            p = q;
            q = x;
          }
        }
        pair_p[tid] = p;
        pair_q[tid] = q;
        int r = 0;
        T t = T(0), c = T(1), s = T(0);
        if (q < n) r = jacobi_rotation<T>(a[p][p], a[q][q], a[p][q], tol, &t, &c, &s) ? 1 : 0;
        rotate[tid] = r;
        cs[tid][0] = c;
        cs[tid][1] = s;
        if (r) {
          const T t_apq = t * a[p][q];
          cs[tid][2] = a[p][p] - t_apq;
          cs[tid][3] = a[q][q] + t_apq;
        }
        if (r) atomicAdd(&rotated_count, 1);
      }
      if (random) ++draw;
      __syncthreads();
      // Rows: new row p = c row_p - s row_q, new row q = s row_p + c row_q.
      for (int e = tid; e < count * n; e += nthreads) {
        const int k = e / n, col = e % n;
        if (!rotate[k]) continue;
        const int p = pair_p[k], q = pair_q[k];
        const T c = cs[k][0], s = cs[k][1];
        const T x = a[p][col], y = a[q][col];
        a[p][col] = jacobi_fma(c, x, -(s * y));
        a[q][col] = jacobi_fma(s, x, c * y);
      }
      __syncthreads();
      // Columns of A and of V.
      for (int e = tid; e < count * n; e += nthreads) {
        const int k = e / n, row = e % n;
        if (!rotate[k]) continue;
        const int p = pair_p[k], q = pair_q[k];
        const T c = cs[k][0], s = cs[k][1];
        T x = a[row][p], y = a[row][q];
        a[row][p] = jacobi_fma(c, x, -(s * y));
        a[row][q] = jacobi_fma(s, x, c * y);
        if (want_vectors) {
          x = v[row][p];
          y = v[row][q];
          v[row][p] = jacobi_fma(c, x, -(s * y));
          v[row][q] = jacobi_fma(s, x, c * y);
        }
      }
      __syncthreads();
      // The 2x2 blocks from the accurate formulas (computed from the pre-round values).
      if (tid < count && rotate[tid]) {
        const int p = pair_p[tid], q = pair_q[tid];
        a[p][p] = cs[tid][2];
        a[q][q] = cs[tid][3];
        a[p][q] = T(0);
        a[q][p] = T(0);
      }
      __syncthreads();
    }
    __syncthreads();
    if (tid == 0) {
      rotations += rotated_count;
      if (rotated_count > 0) ++sweeps;
    }
    // Convergence: no rotation in a whole deterministic sweep; for the random rule, a scan.
    if (tid == 0) pending = 0;
    __syncthreads();
    for (int e = tid; e < n * n; e += nthreads) {
      const int i = e / n, j = e % n;
      if (i < j && jacobi_abs(a[i][j]) > tol * jacobi_sqrt(jacobi_abs(a[i][i])) * jacobi_sqrt(jacobi_abs(a[j][j])))
        atomicAdd(&pending, 1);
    }
    __syncthreads();
    const bool finished = random ? (pending == 0) : (rotated_count == 0 || pending == 0);
    if (finished) {
      converged = (pending == 0) ? 1 : 0;
      break;
    }
    __syncthreads();
  }
  if (n_pairs == 0) converged = 1;
  if (!converged) {
    if (tid == 0) pending = 0;
    __syncthreads();
    for (int e = tid; e < n * n; e += nthreads) {
      const int i = e / n, j = e % n;
      if (i < j && jacobi_abs(a[i][j]) > tol * jacobi_sqrt(jacobi_abs(a[i][i])) * jacobi_sqrt(jacobi_abs(a[j][j])))
        atomicAdd(&pending, 1);
    }
    __syncthreads();
    converged = pending == 0 ? 1 : 0;
  }

  // Stable ascending order of the diagonal.
  for (int i = tid; i < n; i += nthreads) diag[i] = a[i][i];
  __syncthreads();
  for (int i = tid; i < n; i += nthreads) {
    int r = 0;
    for (int j = 0; j < n; ++j)
      if (diag[j] < diag[i] || (diag[j] == diag[i] && j < i)) ++r;
    rank[i] = r;
  }
  __syncthreads();
  for (int i = tid; i < n; i += nthreads) w_out[(long long)b * n + rank[i]] = diag[i];
  if (want_vectors)
    for (int e = tid; e < n * n; e += nthreads) {
      const int row = e / n, col = e % n;
      v_out[(long long)b * n * n + (long long)row * n + rank[col]] = v[row][col];
    }
  if (tid == 0) {
    sweeps_out[b] = sweeps;
    rotations_out[b] = rotations;
    converged_out[b] = (unsigned char)converged;
  }
}

extern "C" __global__ void jacobi_eigh_batched_float64(const double* a, int n, double tol, int max_sweeps,
                                                       int want_vectors, int random, u64 k0, u64 k1, double* w,
                                                       double* v, int* sweeps, long long* rotations,
                                                       unsigned char* converged) {
  jacobi_eigh_block<double>(a, n, tol, max_sweeps, want_vectors, random, k0, k1, w, v, sweeps, rotations, converged);
}

extern "C" __global__ void jacobi_eigh_batched_float32(const float* a, int n, float tol, int max_sweeps,
                                                       int want_vectors, int random, u64 k0, u64 k1, float* w,
                                                       float* v, int* sweeps, long long* rotations,
                                                       unsigned char* converged) {
  jacobi_eigh_block<float>(a, n, tol, max_sweeps, want_vectors, random, k0, k1, w, v, sweeps, rotations, converged);
}
