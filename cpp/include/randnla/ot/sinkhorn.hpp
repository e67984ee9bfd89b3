// randnla/ot/sinkhorn.hpp: the dense passes of entropic optimal transport.
//
// Convention (cost units): logP_ij = (f_i + g_j - C_ij) / eps, P = exp(logP). The dual objective is
//   F(f, g) = <a, f> + <b, g> - eps * sum_ij P_ij,
// Sinkhorn is exact block-coordinate ascent on F, and Newton steps solve H d = eps * grad F with the
// sparsified Hessian of newton.hpp.
//
// Every pass reads C once from memory. Work is split into blocks whose size depends only on the
// problem, never on the thread count, and partial results are combined in block order, so results are
// bitwise identical for any number of threads. Exponentials use exp_lanes, a branch-free exp that the
// compiler vectorises (about 1 ulp; inputs below -708 give 0, so subnormal plan entries never occur).
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include "randnla/common.hpp"
#include "randnla/parallel.hpp"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace randnla {
namespace ot {

#if defined(RANDNLA_HAVE_OPENMP)
#define RANDNLA_OT_PRAGMA(x) _Pragma(#x)
#define RANDNLA_OT_SIMD _Pragma("omp simd")
#define RANDNLA_OT_SIMD_SUM(v) RANDNLA_OT_PRAGMA(omp simd reduction(+ : v))
#define RANDNLA_OT_SIMD_MAX(v) RANDNLA_OT_PRAGMA(omp simd reduction(max : v))
#define RANDNLA_OT_SIMD_SUM3_MAX(s1, s2, s3, mx) RANDNLA_OT_PRAGMA(omp simd reduction(+ : s1, s2, s3) reduction(max : mx))
#else
#define RANDNLA_OT_PRAGMA(x)
#define RANDNLA_OT_SIMD
#define RANDNLA_OT_SIMD_SUM(v)
#define RANDNLA_OT_SIMD_MAX(v)
#define RANDNLA_OT_SIMD_SUM3_MAX(s1, s2, s3, mx)
#endif

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// exp(x) without branches (explicit FMAs, so the result is the same on every FMA-capable machine and
// on the GPU): Cody-Waite reduction x = k ln2 + r, |r| <= ln2/2, Taylor polynomial of
// degree 13 (truncation below 1e-17 relative), scaling by 2^k through the exponent bits.
// x < -708 gives 0 (no subnormals), x > 709 gives +inf, NaN gives NaN.
inline double exp_lanes(double x) {
  const double log2e = 1.4426950408889634074;
  const double ln2_hi = 6.93147180369123816490e-01;
  const double ln2_lo = 1.90821492927058770002e-10;
  const double shifter = 6755399441055744.0;  // 1.5 * 2^52: adding it rounds to an integer
  double xc = x < -708.0 ? -708.0 : x;
  xc = xc > 709.0 ? 709.0 : xc;
  const double t = xc * log2e + shifter;
  const double k = t - shifter;
  double r = std::fma(-k, ln2_hi, xc);
  r = std::fma(-k, ln2_lo, r);
  double p = 1.0 / 6227020800.0;  // 1/13!
  p = std::fma(p, r, 1.0 / 479001600.0);
  p = std::fma(p, r, 1.0 / 39916800.0);
  p = std::fma(p, r, 1.0 / 3628800.0);
  p = std::fma(p, r, 1.0 / 362880.0);
  p = std::fma(p, r, 1.0 / 40320.0);
  p = std::fma(p, r, 1.0 / 5040.0);
  p = std::fma(p, r, 1.0 / 720.0);
  p = std::fma(p, r, 1.0 / 120.0);
  p = std::fma(p, r, 1.0 / 24.0);
  p = std::fma(p, r, 1.0 / 6.0);
  p = std::fma(p, r, 0.5);
  p = std::fma(p, r, 1.0);
  p = std::fma(p, r, 1.0);
  std::int64_t tb, sb;
  std::memcpy(&tb, &t, sizeof tb);
  std::memcpy(&sb, &shifter, sizeof sb);
  const std::int64_t bits = (tb - sb + 1023) << 52;
  double scale;
  std::memcpy(&scale, &bits, sizeof scale);
  const double y = p * scale;
  const double big = x > 709.0 ? std::numeric_limits<double>::infinity() : y;
  return x < -708.0 ? 0.0 : big;
}

// out[j0..j1) = the column sums of rows [0, rows) of the row-major matrix M (leading dimension
// ld) over columns [j0, j1), rows added in order: the same sums for any split of the columns.
inline void column_sums(const double* M, index_t rows, index_t ld, index_t j0, index_t j1, double* out) {
  for (index_t j = j0; j < j1; ++j) out[j] = 0.0;
  for (index_t r = 0; r < rows; ++r) {
    const double* y = M + r * ld;
    RANDNLA_OT_SIMD
    for (index_t j = j0; j < j1; ++j) out[j] += y[j];
  }
}

// sum_j x_j y_j (explicit FMAs) with 16 independent partial sums (two to four vector registers): a single
// accumulator makes the loop wait on the latency of each add. The order depends on m alone.
inline double dot_lanes(const double* x, const double* y, index_t m) {
  constexpr index_t L = 16;
  double acc[L] = {};
  index_t j = 0;
  for (; j + L <= m; j += L) {
    RANDNLA_OT_SIMD
    for (index_t l = 0; l < L; ++l) acc[l] = std::fma(x[j + l], y[j + l], acc[l]);
  }
  for (index_t l = 0; j + l < m; ++l) acc[l] = std::fma(x[j + l], y[j + l], acc[l]);
  for (index_t h = L / 2; h > 0; h /= 2)
    for (index_t l = 0; l < h; ++l) acc[l] += acc[l + h];
  return acc[0];
}

// dot_lanes(x_r, y, m) for four rows x_0..x_3 in one pass over y (same lanes and summation order as
// dot_lanes, so the same results).
inline void dot_lanes4(const double* const x[4], const double* y, index_t m, double out[4]) {
  constexpr index_t L = 16;
  double a0[L] = {}, a1[L] = {}, a2[L] = {}, a3[L] = {};
  const double *x0 = x[0], *x1 = x[1], *x2 = x[2], *x3 = x[3];
  index_t j = 0;
  for (; j + L <= m; j += L) {
    RANDNLA_OT_SIMD
    for (index_t l = 0; l < L; ++l) {
      const double yl = y[j + l];
      a0[l] = std::fma(x0[j + l], yl, a0[l]);
      a1[l] = std::fma(x1[j + l], yl, a1[l]);
      a2[l] = std::fma(x2[j + l], yl, a2[l]);
      a3[l] = std::fma(x3[j + l], yl, a3[l]);
    }
  }
  for (index_t l = 0; j + l < m; ++l) {
    const double yl = y[j + l];
    a0[l] = std::fma(x0[j + l], yl, a0[l]);
    a1[l] = std::fma(x1[j + l], yl, a1[l]);
    a2[l] = std::fma(x2[j + l], yl, a2[l]);
    a3[l] = std::fma(x3[j + l], yl, a3[l]);
  }
  for (index_t h = L / 2; h > 0; h /= 2)
    for (index_t l = 0; l < h; ++l) {
      a0[l] += a0[l + h];
      a1[l] += a1[l + h];
      a2[l] += a2[l + h];
      a3[l] += a3[l + h];
    }
  out[0] = a0[0];
  out[1] = a1[0];
  out[2] = a2[0];
  out[3] = a3[0];
}

// log(x) without branches for positive normal x (explicit FMAs): x = 2^e m with m in [sqrt(1/2), sqrt(2)),
// log m = 2 atanh(s), s = (m - 1) / (m + 1), |s| <= 0.172, by its odd series to s^23 (truncation below
// 1e-17 relative).
inline double log_lanes(double x) {
  std::int64_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  std::int64_t e = ((bits >> 52) & 0x7ff) - 1023;
  std::int64_t mb = (bits & ((std::int64_t(1) << 52) - 1)) | (std::int64_t(1023) << 52);
  double mant;
  std::memcpy(&mant, &mb, sizeof mant);
  const bool high = mant > 1.4142135623730951;
  mant = high ? 0.5 * mant : mant;
  e = high ? e + 1 : e;
  const double s = (mant - 1.0) / (mant + 1.0), z = s * s;
  double p = 2.0 / 23.0;
  p = std::fma(p, z, 2.0 / 21.0);
  p = std::fma(p, z, 2.0 / 19.0);
  p = std::fma(p, z, 2.0 / 17.0);
  p = std::fma(p, z, 2.0 / 15.0);
  p = std::fma(p, z, 2.0 / 13.0);
  p = std::fma(p, z, 2.0 / 11.0);
  p = std::fma(p, z, 2.0 / 9.0);
  p = std::fma(p, z, 2.0 / 7.0);
  p = std::fma(p, z, 2.0 / 5.0);
  p = std::fma(p, z, 2.0 / 3.0);
  const double lm = std::fma(s * z, p, 2.0 * s);
  const double ed = static_cast<double>(e);
  return std::fma(ed, 6.93147180369123816490e-01, std::fma(ed, 1.90821492927058770002e-10, lm));
}

// The over-relaxed updates out_k = cur_k r_k^w of len scalings, r_k = plain_k / cur_k the plain update
// over the current scaling (plain_k where that is not a positive finite number, or w = 1). Near the
// fixed point (|r - 1| <= 1/32) r^w is the cubic Taylor polynomial in r - 1 (relative error below 3e-8
// for 1 <= w <= 2) instead of a log and an exp: it keeps r = 1 fixed and the slope w, so the fixed point
// and the local rate of the over-relaxed iteration are unchanged, at a few flops per scaling. The cubic
// for all first; only if some ratio is far from 1, the exp_lanes / log_lanes form (vectorised) for
// those. out may alias plain.
inline void sor_update(const double* plain, const double* cur, index_t len, double w, double* out) {
  if (w == 1.0) {
    if (out != plain) std::copy(plain, plain + len, out);
    return;
  }
  const double c2 = 0.5 * w * (w - 1.0), c3 = c2 * (w - 2.0) / 3.0;
  auto cubic = [&](double t) { return 1.0 + t * (w + t * (c2 + t * c3)); };
  const double inf = std::numeric_limits<double>::infinity();
  int far = 0;
  RANDNLA_OT_PRAGMA(omp simd reduction(+ : far))
  for (index_t k = 0; k < len; ++k) {
    const double p = plain[k];
    const bool ok = (p > 0.0) & (p < inf);
    far += (ok & !(std::fabs(p / cur[k] - 1.0) <= 0.03125)) ? 1 : 0;
  }
  if (far == 0) {
    RANDNLA_OT_SIMD
    for (index_t k = 0; k < len; ++k) {
      const double p = plain[k], c = cur[k];
      const double t = p / c - 1.0;
      const bool ok = (p > 0.0) & (p < inf);
      out[k] = ok ? c * cubic(t) : p;
    }
    return;
  }
  RANDNLA_OT_SIMD
  for (index_t k = 0; k < len; ++k) {
    const double p = plain[k], c = cur[k];
    const double r = p / c, t = r - 1.0;
    const bool ok = (p > 0.0) & (p < inf);
    const bool near = std::fabs(t) <= 0.03125;
    const bool logok = (r >= 1e-300) & (r <= 1e300);
    const double fac_far = exp_lanes(w * log_lanes(logok ? r : 1.0));
    const double fac = near ? cubic(t) : fac_far;
    out[k] = (ok & (near | logok)) ? c * fac : p;
  }
}

// Block sizes (fixed: they decide the order of floating-point reductions, so they must not depend on
// the thread count).
constexpr index_t kRowChunk = 16;     // rows per task in row passes
constexpr index_t kColChunk = 256;    // columns per task in the column half-step
constexpr index_t kTileRows = 32;     // rows per tile in the column half-step (tile stays in cache)
constexpr index_t kPlanBlock = 64;    // rows per block whose partial column sums are merged in order
constexpr index_t kBoundRows = 4;    // rows per group of the scaling sweep (and of a bounded tile)
constexpr index_t kBoundCols = 16;   // columns per bounded tile of the stored kernel
static_assert(kColChunk % kBoundCols == 0 && kPlanBlock % kBoundRows == 0 && kRowChunk % kBoundRows == 0,
              "bounded tiles never straddle a task");
constexpr int kHistBuckets = 1500;    // logP histogram: bucket k holds -(k+1)/2 < logP <= -k/2
constexpr double kHistScale = 2.0;

inline int hist_bucket(double x) {
  double v = -x * kHistScale;
  v = v < 0.0 ? 0.0 : v;
  v = v > double(kHistBuckets - 1) ? double(kHistBuckets - 1) : v;
  return static_cast<int>(v);
}

// Range of a sum of exponentials shifted by a predicted LSE that the half-steps accept: no term
// overflowed (each is below e^709), and terms flushed to 0 (below e^-708) are below 1e-177 of it.
constexpr double kShiftLow = 1e-130, kShiftHigh = 1e130;

// Row half-step: f_i <- eps (log a_i - LSE_j((g_j - C_ij)/eps)). Returns the L1 row error of the plan
// before the update, sum_i |P(f_old, g) 1 - a|_i (the row sums come for free from the same LSE).
template <class T>
double row_update(const MatrixView<const T>& C, const double* g, const double* log_a, const double* a, double eps,
                  double* f, int n_threads) {
  const index_t n = C.rows, m = C.cols;
  const double inv = 1.0 / eps;
  std::vector<double> row_err(static_cast<size_t>(n));
  parallel_for_chunks(n, kRowChunk, n_threads, [&](index_t begin, index_t end, index_t) {
    std::vector<double> x(static_cast<size_t>(m));
    double* xs = x.data();
    // Local copies: the vectorised loops then keep them in registers (no reloads through the closure).
    const double* gl = g;
    const double invl = inv;
    const index_t ml = m;
    for (index_t i = begin; i < end; ++i) {
      const T* Ci = C.row(i);
      // One pass, shifted by the LSE of the previous half-step (log a_i - f_i / eps); kept when the
      // scaled sum lies in [kShiftLow, kShiftHigh] (no term overflowed, none that matters underflowed),
      // else the exact two-pass form (max, then the shifted sum).
      const double shift = log_a[i] - f[i] * invl;
      double s1 = 0.0;
      if (std::isfinite(shift)) {
        RANDNLA_OT_SIMD_SUM(s1)
        for (index_t j = 0; j < ml; ++j) s1 += exp_lanes((gl[j] - static_cast<double>(Ci[j])) * invl - shift);
      }
      double lse;
      if (s1 >= kShiftLow && s1 <= kShiftHigh) {
        lse = shift + std::log(s1);
      } else {
        double mx = kNegInf;
        RANDNLA_OT_SIMD_MAX(mx)
        for (index_t j = 0; j < ml; ++j) {
          const double v = (gl[j] - static_cast<double>(Ci[j])) * invl;
          xs[j] = v;
          mx = v > mx ? v : mx;
        }
        double s = 0.0;
        RANDNLA_OT_SIMD_SUM(s)
        for (index_t j = 0; j < ml; ++j) s += exp_lanes(xs[j] - mx);
        lse = mx + std::log(s);
      }
      const double r_old = std::exp(f[i] * inv + lse);
      row_err[static_cast<size_t>(i)] = std::fabs(r_old - a[i]);
      f[i] = eps * (log_a[i] - lse);
    }
  });
  double err = 0.0;
  for (index_t i = 0; i < n; ++i) err += row_err[static_cast<size_t>(i)];
  return err;
}

// Column half-step: g_j <- eps (log b_j - LSE_i((f_i - C_ij)/eps)), streaming C by rows: each task
// owns a chunk of columns and walks cache-sized tiles of rows, keeping a running (max, scaled sum) per
// column, so C is read once from memory, row-major, with one exp per entry. Returns the L1 column
// error of the plan before the update.
template <class T>
double col_update(const MatrixView<const T>& C, const double* f, const double* log_b, const double* b, double eps,
                  double* g, int n_threads) {
  const index_t n = C.rows, m = C.cols;
  const double inv = 1.0 / eps;
  std::vector<double> col_err(static_cast<size_t>(m));
  parallel_for_chunks(m, kColChunk, n_threads, [&](index_t j0, index_t j1, index_t) {
    const index_t w = j1 - j0;
    const double* fl = f;
    const double invl = inv;
    double mx[kColChunk], s[kColChunk], bm[kColChunk];
    // One pass shifted by the LSE of the previous half-step (log b_j - g_j / eps), as in row_update;
    // if any column of the chunk falls outside [kShiftLow, kShiftHigh], the exact tiled two-pass form
    // for the whole chunk.
    bool shifted = true;
    for (index_t j = 0; j < w; ++j) {
      mx[j] = log_b[j0 + j] - g[j0 + j] * invl;
      s[j] = 0.0;
      shifted = shifted && std::isfinite(mx[j]);
    }
    if (shifted) {
      for (index_t i = 0; i < n; ++i) {
        const T* Ci = C.row(i) + j0;
        const double fi = fl[i];
        RANDNLA_OT_SIMD
        for (index_t j = 0; j < w; ++j) s[j] += exp_lanes((fi - static_cast<double>(Ci[j])) * invl - mx[j]);
      }
      for (index_t j = 0; j < w; ++j) shifted = shifted && s[j] >= kShiftLow && s[j] <= kShiftHigh;
    }
    for (index_t j = 0; j < w && !shifted; ++j) {
      mx[j] = kNegInf;
      s[j] = 0.0;
    }
    for (index_t i0 = 0; i0 < n && !shifted; i0 += kTileRows) {
      const index_t i1 = std::min(n, i0 + kTileRows);
      for (index_t j = 0; j < w; ++j) bm[j] = kNegInf;
      for (index_t i = i0; i < i1; ++i) {
        const T* Ci = C.row(i) + j0;
        const double fi = fl[i];
        RANDNLA_OT_SIMD
        for (index_t j = 0; j < w; ++j) {
          const double v = (fi - static_cast<double>(Ci[j])) * invl;
          bm[j] = v > bm[j] ? v : bm[j];
        }
      }
      RANDNLA_OT_SIMD
      for (index_t j = 0; j < w; ++j) {
        const double nm = bm[j] > mx[j] ? bm[j] : mx[j];
        s[j] = s[j] * exp_lanes(mx[j] - nm);
        mx[j] = nm;
      }
      for (index_t i = i0; i < i1; ++i) {
        const T* Ci = C.row(i) + j0;
        const double fi = fl[i];
        RANDNLA_OT_SIMD
        for (index_t j = 0; j < w; ++j) s[j] += exp_lanes((fi - static_cast<double>(Ci[j])) * invl - mx[j]);
      }
    }
    for (index_t j = 0; j < w; ++j) {
      const index_t jj = j0 + j;
      const double lse = mx[j] + std::log(s[j]);
      const double c_old = std::exp(g[jj] * inv + lse);
      col_err[static_cast<size_t>(jj)] = std::fabs(c_old - b[jj]);
      g[jj] = eps * (log_b[jj] - lse);
    }
  });
  double err = 0.0;
  for (index_t j = 0; j < m; ++j) err += col_err[static_cast<size_t>(j)];
  return err;
}

struct PlanSummary {
  std::vector<double> r, c;
  std::vector<std::int64_t> row_argmax, col_argmax;
  std::vector<std::int64_t> hist_count;
  std::vector<double> hist_mass;
  double total = 0.0, cost = 0.0, plogp = 0.0, max_logp = kNegInf;
};

struct SweepReport {
  index_t sweeps = 0;       // completed sweeps (row + column half-steps)
  bool reached_tol = false;
  bool handed_over = false; // stopped by the Handover rule
  bool plateau = false;     // stopped by the Handover plateau probe
  index_t log_sweeps = 0;   // scaling form: sweeps taken in the log domain (after an absorption)
  index_t rebuilds = 0;     // scaling form: times K was recomputed (one exp per entry each)
  index_t span_passes = 0;  // scaling form: passes over K that recomputed the truncation spans
  index_t bounded_sweeps = 0;  // scaling form: sweeps that read K only where the tile bounds required
  index_t resummed_tiles = 0;  // scaling form: column tiles summed again over all rows (bound check failed)
  bool nonfinite_cost = false;  // check_cost: C holds NaN or infinity (nothing else was done)
  std::vector<index_t> at;      // the sweep count at each error measurement
  std::vector<double> errors;   // L1 marginal error of the plan after each sweep (measured at the next row half-step)
  std::vector<double> seconds;  // elapsed time at each measurement
  // Scaling form with a plan buffer, stopped at the tolerance: the plan P = diag(u) K diag(v) whose
  // error was measured, written to the buffer, and its summary (as plan_pass: row and column sums,
  // sum P, <C, P>, sum P logP, the largest logP) at the returned potentials.
  bool has_plan = false;
  PlanSummary plan;
};

// Log-domain Sinkhorn: up to max_sweeps sweeps. The L1 error of the plan after sweep k (its columns are
// exact, its row error is measured by the next row half-step) is recorded; when it is <= tol the last
// row half-step is undone, so (f, g) is the plan that met the tolerance.
template <class T>
SweepReport sinkhorn_log_sweeps(const MatrixView<const T>& C, const double* a, const double* b, const double* log_a,
                                const double* log_b, double eps, double* f, double* g, index_t max_sweeps, double tol,
                                int n_threads) {
  SweepReport report;
  const auto start = std::chrono::steady_clock::now();
  std::vector<double> f_old(static_cast<size_t>(C.rows));
  for (index_t k = 0; k <= max_sweeps; ++k) {
    std::copy(f, f + C.rows, f_old.begin());
    const double err = row_update(C, g, log_a, a, eps, f, n_threads);
    if (k > 0) {
      report.at.push_back(k);
      report.errors.push_back(err);
      report.seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      if (err <= tol || !std::isfinite(err)) {
        std::copy(f_old.begin(), f_old.end(), f);
        report.reached_tol = err <= tol;
        return report;
      }
      if (k == max_sweeps) {
        std::copy(f_old.begin(), f_old.end(), f);
        return report;
      }
    }
    col_update(C, f, log_b, b, eps, g, n_threads);
    report.sweeps = k + 1;
  }
  return report;
}

// When to stop Sinkhorn sweeps and hand over to Newton steps (SNS warm-up). Disabled by default.
// After `min_sweeps` sweeps, once the L1 error is at most `switch_tol` or `warmup` sweeps are done,
// the linear rate of the last five sweeps predicts the sweeps still needed to reach `tol`; the
// sweeps stop when that prediction (counted from the start, `offset` sweeps having been taken before
// this call) exceeds `budget`, or when the error stopped decreasing.
struct Handover {
  bool enabled = false;
  index_t min_sweeps = 10, warmup = 20, budget = 220, offset = 0;
  double switch_tol = 0.0, tol = 0.0;
  // Plateau probe (0: off): stop after `plateau` sweeps if the error is still above
  // 0.9^((plateau - 1) / 7) times that of the first, i.e. it fell by less than 10 % per seven sweeps
  // (mass has to travel across the support: a larger regularisation first is cheaper).
  index_t plateau = 0;

  bool stalled(const std::vector<double>& errors) const {
    return plateau > 0 && errors.size() == static_cast<size_t>(plateau) &&
           errors.back() > std::pow(0.9, static_cast<double>(plateau - 1) / 7.0) * errors.front();
  }

  bool stop(const std::vector<double>& errors, index_t k) const {
    if (!enabled) return false;
    const index_t done = offset + k;
    const size_t q = errors.size();
    if (done < min_sweeps || q < 6) return false;
    const double err = errors[q - 1];
    if (err > switch_tol && done < warmup) return false;
    double rate = std::pow(err / errors[q - 6], 0.2);
    if (!(rate < 1.0) && q >= 11) rate = std::pow(err / errors[q - 11], 0.1);  // a transient bump
    if (!(rate < 1.0) || !(err > 0)) return !(err <= tol);
    const double predicted = std::log(tol / err) / std::log(rate);
    return static_cast<double>(done) + predicted > static_cast<double>(budget);
  }
};

// Maps the whole pages inside [p, p + bytes) before they are written, in one system call where Linux
// offers MADV_POPULATE_WRITE (a fresh n * m buffer otherwise takes one page fault per 4 KiB page on
// its first write, which costs more than a sweep on small problems). Contents are unchanged; a no-op
// elsewhere or on failure.
inline void prefault(void* p, size_t bytes) {
#if defined(__linux__) && defined(MADV_POPULATE_WRITE)
  const std::uintptr_t page = 4096;
  const std::uintptr_t lo = (reinterpret_cast<std::uintptr_t>(p) + page - 1) & ~(page - 1);
  const std::uintptr_t hi = (reinterpret_cast<std::uintptr_t>(p) + bytes) & ~(page - 1);
  if (hi > lo + 16 * page) (void)madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_POPULATE_WRITE);
#else
  (void)p;
  (void)bytes;
#endif
}

// Storage of the stored kernel K of the scaling form: the caller's float64 buffer of n * m entries,
// or an uninitialised buffer of its own (no zero fill: every entry is written before it is read).
template <class T>
class KernelStore {
 public:
  KernelStore(T* buffer, index_t size) {
    if constexpr (std::is_same<T, double>::value) {
      if (buffer != nullptr) {
        ptr_ = buffer;
        prefault(ptr_, static_cast<size_t>(size) * sizeof(double));
        return;
      }
    }
    own_.reset(new double[static_cast<size_t>(size)]);
    ptr_ = own_.get();
    prefault(ptr_, static_cast<size_t>(size) * sizeof(double));
  }
  double* data() { return ptr_; }

 private:
  std::unique_ptr<double[]> own_;
  double* ptr_ = nullptr;
};

// The largest ratio max_i(x_i / ref_i) / min_i(x_i / ref_i), as a log (+inf if a ratio is not a
// positive finite number).
inline double log_ratio_range(const double* x, const double* ref, index_t len) {
  double lo = std::numeric_limits<double>::infinity(), hi = 0.0;
  for (index_t i = 0; i < len; ++i) {
    const double r = x[i] / ref[i];
    lo = r < lo ? r : lo;
    hi = r > hi ? r : hi;
  }
  if (!(lo > 0.0) || !(hi < std::numeric_limits<double>::infinity())) return std::numeric_limits<double>::infinity();
  return std::log(hi / lo);
}

// Scaling-form Sinkhorn with absorption (Schmitzer): P = diag(u) K diag(v), K = exp((f_i + g_j - C)/eps)
// computed once (one exp per entry) from the current potentials; after that a sweep is ONE pass over K
// with no exp: for each row, s = K_i v gives the row error of the current plan (u_i s - a_i) and the
// new u_i = a_i / s, and u_i K_i is accumulated into K^T u while the row is still in cache, so the
// column update v = b / K^T u needs no second pass. Rows are processed in fixed blocks whose partial
// column sums are merged in block order (identical results for any thread count). When a scaling
// leaves [1/tau, tau] or a product underflows, the scalings are absorbed into (f, g) and the sweep
// finishes with exact log-domain half-steps; log-domain sweeps continue until the potentials settle,
// and only then is K recomputed. Requires tau <= 1e50 (see k_cut below).
template <class T>
SweepReport sinkhorn_scaling_sweeps(const MatrixView<const T>& C, const double* a, const double* b,
                                    const double* log_a, const double* log_b, double eps, double* f, double* g,
                                    index_t max_sweeps, double tol, double tau, int n_threads,
                                    const Handover& handover = Handover(), double relax = 1.0,
                                    T* plan_out = nullptr, bool write_plan = true, bool truncate = true,
                                    bool check_cost = false, bool start_rows = false) {
  SweepReport report;
  const auto start = std::chrono::steady_clock::now();
  const index_t n = C.rows, m = C.cols;
  const double inv = 1.0 / eps;
  const index_t n_blocks = (n + kPlanBlock - 1) / kPlanBlock;
  // K lives in the plan buffer when that is float64 (the final plan u_i K_ij v_j is then written in
  // place), else in a buffer of its own; rebuild() writes every entry before any read.
  KernelStore<T> K(plan_out, n * m);
  std::vector<double> u(static_cast<size_t>(n), 1.0), v(static_cast<size_t>(m), 1.0), u_new(static_cast<size_t>(n)),
      row_err(static_cast<size_t>(n)), vn_buf(static_cast<size_t>(m)), col_err(static_cast<size_t>(m)),
      partial(static_cast<size_t>(n_blocks * m));
  const double lo = 1.0 / tau, hi = tau;
  // Entries of K below tau * 1e-300 are set to 0, so that every product u_i K_ij and K_ij v_j with
  // scalings in [1/tau, tau] is 0 or a normal number (subnormal arithmetic is many times slower).
  // A dropped entry carries plan mass u_i K_ij v_j <= tau^3 1e-300 (1e-150 for tau = 1e50).
  const double k_cut = std::log(tau) + std::log(1e-300);
  bool fresh = false;  // K was just recomputed and no scaling sweep has completed on it
  // Truncated sweeps (Schmitzer's sparse scaling, in the form of one column span per row). Row i
  // reads K only on [span_lo_i, span_hi_i), the smallest range holding every entry with
  // K_ij v_j >= e^-keep max_j K_ij v_j (row criterion) or u_i K_ij >= e^-keep max_i u_i K_ij (column
  // criterion), measured at scalings (u_ref, v_ref). A dropped entry of row i then weighs less than
  // e^-keep R_v times the row's largest term, R_v = max_j(v_j / v_ref_j) / min_j(v_j / v_ref_j)
  // (gauge-free), so the truncated row sum has relative error below m e^-keep R_v; likewise for
  // columns with R_u. keep = guard + slack, where m e^-guard <= tol / (100 sum(a)), and the spans are
  // recomputed (one pass over K, products and compares only) before log R_u or log R_v exceeds slack:
  // truncation moves every marginal by at most tol / 100 in L1. Where the spans cover most of K
  // (diffuse plans) they are dropped and retried after a back-off, so dense problems pay at most a
  // pass now and then. The final plan is always the dense u_i K_ij v_j.
  double mass_a = 0.0;
  for (index_t i = 0; i < n; ++i) mass_a += a[i];
  const double tol_floor = std::max(tol, 1e-14 * mass_a);
  const double span_slack = 8.0;
  const double span_keep =
      std::log(static_cast<double>(std::max(n, m))) + std::log(100.0 * mass_a / tol_floor) + span_slack;
  const bool truncation = truncate && span_keep <= 60.0 && n >= 8 && m >= 64 && std::isfinite(span_keep);
  std::vector<index_t> span_lo(static_cast<size_t>(n), 0), span_hi(static_cast<size_t>(n), m);
  std::vector<double> u_ref, v_ref, span_cthr, row_sum(static_cast<size_t>(n)), col_sum(static_cast<size_t>(m));
  bool spans_valid = false;
  index_t span_wait = 0, span_backoff = 16, span_last = -100;
  // Bounded sweeps (any cost, from the first sweep on): K is cut into tiles of kBoundRows rows (one
  // group of the sweep) by kBoundCols columns, and the rebuild records the largest entry of each,
  // kmax_gt. In a sweep, tile t of group g adds at most B_gt = kmax_gt * sum_{j in t} v_j to each row
  // sum of the group. The group first reads its tile of largest bound (row sums s_r >= its partial
  // sums p_r), then the smallest range of tiles holding every tile with B_gt >= rel * min_r p_r / T
  // (T tiles per row): the tiles left out add less than rel * s_r to every row sum. For the columns,
  // each tile left out adds at most kmax_gt * sum_{i in g} u_i to each of its columns; where these
  // bounds exceed rel times a column sum, the tile's columns are summed again over all rows. With
  // rel = tol / (100 sum(a)), truncation moves the measured L1 error by at most tol / 50 (far from
  // the tolerance a looser rel, see the sweep). Unlike the spans, nothing depends on earlier
  // scalings, so they apply from the first sweep on. A kernel on which the bounds would read most of
  // K (diffuse plans, costs with no order in the indices) skips them until the next rebuild, and
  // ranges that cover most of K turn them off for a while (back-off): such problems pay only the
  // tile maxima of the rebuild.
  const index_t n_groups = (n + kBoundRows - 1) / kBoundRows;
  const index_t n_tiles = (m + kBoundCols - 1) / kBoundCols;
  const double bound_rel = tol_floor / (100.0 * mass_a);
  const bool bounding = truncate && n >= 8 && m >= 64 && bound_rel > 0.0 && std::isfinite(bound_rel);
  std::vector<double> kmax(bounding ? static_cast<size_t>(n_groups * n_tiles) : 0), vsum(static_cast<size_t>(n_tiles)),
      drop_bound(bounding ? static_cast<size_t>(n_blocks * n_tiles) : 0), drop_total(static_cast<size_t>(n_tiles)),
      tile_bound(bounding ? static_cast<size_t>(n_blocks * n_tiles) : 0);  // per block: the group's tile bounds
  std::vector<double> block_kept(static_cast<size_t>(n_blocks));
  index_t bound_wait = 0, bound_backoff = 8;
  std::vector<double> col_guide(static_cast<size_t>(n_tiles));
  std::vector<index_t> failing;
  bool col_sums_known = false;  // col_sum holds the column sums of the last sweep on the current K
  // Largest entry of each tile of row i's group, once its last row i is written (the group's rows
  // are still in cache).
  auto group_maxima = [&](index_t i) {
    if (!(i % kBoundRows == kBoundRows - 1 || i + 1 == n)) return;
    const index_t i0 = i - i % kBoundRows, rows = i + 1 - i0;
    double* km = kmax.data() + (i0 / kBoundRows) * n_tiles;
    const double* K0 = K.data() + i0 * m;
    const double* K1 = K.data() + (i0 + std::min<index_t>(1, rows - 1)) * m;
    const double* K2 = K.data() + (i0 + std::min<index_t>(2, rows - 1)) * m;
    const double* K3 = K.data() + (i0 + std::min<index_t>(3, rows - 1)) * m;
    const index_t full = m / kBoundCols;
    for (index_t t = 0; t < full; ++t) {
      const index_t j0 = t * kBoundCols;
      double best = 0.0;
      RANDNLA_OT_SIMD_MAX(best)
      for (index_t j = j0; j < j0 + kBoundCols; ++j) {
        const double x01 = K0[j] > K1[j] ? K0[j] : K1[j];
        const double x23 = K2[j] > K3[j] ? K2[j] : K3[j];
        const double x = x01 > x23 ? x01 : x23;
        best = x > best ? x : best;
      }
      km[t] = best;
    }
    if (full < n_tiles) {
      double best = 0.0;
      for (index_t j = full * kBoundCols; j < m; ++j)
        best = std::max(best, std::max(std::max(K0[j], K1[j]), std::max(K2[j], K3[j])));
      km[full] = best;
    }
  };
  // After a rebuild: the fraction of K that the bounds would read in a sweep at u = v = 1 with the
  // loose truncation (tiles within 1e-5 / T of their group's largest entry, a lower bound of a row
  // sum up to the group's spread). Kernels that are dense in this sense (diffuse plans, costs with
  // no order in the indices) skip the bounds until the next rebuild.
  auto bounds_pay = [&]() {
    double covered = 0.0;
    for (index_t grp = 0; grp < n_groups; ++grp) {
      const double* km = kmax.data() + grp * n_tiles;
      double top = 0.0;
      for (index_t t = 0; t < n_tiles; ++t) top = std::max(top, km[t]);
      const double thr = 1e-5 * top / static_cast<double>(n_tiles);
      index_t tl = 0, th = n_tiles - 1;
      while (tl < th && !(km[tl] >= thr)) ++tl;
      while (th > tl && !(km[th] >= thr)) --th;
      covered += static_cast<double>(th - tl + 1);
    }
    return covered <= 0.6 * static_cast<double>(n_groups * n_tiles);
  };
  bool normalised = false;  // the current K came from rebuild_rows() and no sweep has completed on it
  auto rebuild = [&]() {
    ++report.rebuilds;
    fresh = true;
    normalised = false;
    spans_valid = false;
    col_sums_known = false;
    parallel_for_chunks(n, kRowChunk, n_threads, [&](index_t begin, index_t end, index_t) {
      const double* gl = g;
      const double invl = inv, cut = k_cut;
      const index_t ml = m;
      const bool probe_cost = check_cost;
      for (index_t i = begin; i < end; ++i) {
        const T* Ci = C.row(i);
        double* Ki = K.data() + i * ml;
        const double fi = f[i];
        // With check_cost, sum of 0 * C_ij: NaN exactly when the row holds NaN or infinity.
        double probe = 0.0;
        if (probe_cost) {
          RANDNLA_OT_SIMD_SUM(probe)
          for (index_t j = 0; j < ml; ++j) {
            const double c = static_cast<double>(Ci[j]);
            const double x = (fi + gl[j] - c) * invl;
            Ki[j] = x < cut ? 0.0 : exp_lanes(x);
            probe += 0.0 * c;
          }
          row_err[static_cast<size_t>(i)] = probe;
        } else {
          RANDNLA_OT_SIMD
          for (index_t j = 0; j < ml; ++j) {
            const double x = (fi + gl[j] - static_cast<double>(Ci[j])) * invl;
            Ki[j] = x < cut ? 0.0 : exp_lanes(x);
          }
        }
        if (bounding) group_maxima(i);
      }
    });
    bound_wait = (bounding && !bounds_pay()) ? std::numeric_limits<index_t>::max() / 2 : 0;
    bound_backoff = 8;
  };
  // K with its rows rescaled in the log domain: f_i <- f_i + eps (log a_i - max_j x_ij), x_ij =
  // (f_i + g_j - C_ij) / eps, fused with the recomputation of K at the new f (the largest entry of
  // row i is then a_i and its sum lies in [a_i, m a_i], so no row underflows as a whole; the next
  // row update divides by the sum). One exp per entry, as rebuild().
  auto rebuild_rows = [&]() {
    ++report.rebuilds;
    fresh = true;
    normalised = true;
    spans_valid = false;
    // Row blocks as in the sweeps: with the bounds, the column sums of the new K (the first sweep's
    // column guide) are accumulated per block and merged in block order.
    parallel_for(n_blocks, n_threads, [&](index_t blk) {
      const index_t i0 = blk * kPlanBlock, i1 = std::min(n, i0 + kPlanBlock);
      double* y = partial.data() + blk * m;
      if (bounding) std::fill(y, y + m, 0.0);
      const double* gl = g;
      const double invl = inv, cut = k_cut;
      const index_t ml = m;
      for (index_t i = i0; i < i1; ++i) {
        const T* Ci = C.row(i);
        double* Ki = K.data() + i * ml;
        const double fi = f[i];
        double mx = kNegInf;
        RANDNLA_OT_SIMD_MAX(mx)
        for (index_t j = 0; j < ml; ++j) {
          const double x = (fi + gl[j] - static_cast<double>(Ci[j])) * invl;
          Ki[j] = x;
          mx = x > mx ? x : mx;
        }
        // f_i moves by eps (log a_i - max_j x_ij): the row's largest entry becomes a_i.
        const double shift = log_a[i] - mx;
        if (bounding) {
          RANDNLA_OT_SIMD
          for (index_t j = 0; j < ml; ++j) {
            const double x = Ki[j] + shift;
            const double e = x < cut ? 0.0 : exp_lanes(x);
            Ki[j] = e;
            y[j] += e;
          }
          group_maxima(i);
        } else {
          RANDNLA_OT_SIMD
          for (index_t j = 0; j < ml; ++j) {
            const double x = Ki[j] + shift;
            Ki[j] = x < cut ? 0.0 : exp_lanes(x);
          }
        }
        f[i] = fi + eps * shift;
      }
    });
    col_sums_known = false;
    if (bounding) {
      parallel_for_chunks(m, kColChunk, n_threads, [&](index_t j0, index_t j1, index_t) {
        column_sums(partial.data(), n_blocks, m, j0, j1, col_sum.data());
      });
      col_sums_known = true;
    }
    bound_wait = (bounding && !bounds_pay()) ? std::numeric_limits<index_t>::max() / 2 : 0;
    bound_backoff = 8;
  };
  auto absorb = [&]() {
    for (index_t i = 0; i < n; ++i) f[i] += eps * std::log(u[static_cast<size_t>(i)]);
    for (index_t j = 0; j < m; ++j) g[j] += eps * std::log(v[static_cast<size_t>(j)]);
    std::fill(u.begin(), u.end(), 1.0);
    std::fill(v.begin(), v.end(), 1.0);
  };
  // Log mode (no K) while the potentials move by more than eps * log(tau) / 2 per sweep (after an
  // absorption): rebuilding K then would be wasted. Scaling mode otherwise.
  const double settle = 0.5 * eps * std::log(tau);
  std::vector<double> f_old(static_cast<size_t>(n)), g_old(static_cast<size_t>(m));
  auto record = [&](double err) {
    report.at.push_back(report.sweeps);
    report.errors.push_back(err);
    report.seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  };
  bool have_k = false;
  // Spans at scalings (uu, vv) whose row sums sum_j K_ij vv_j are s_row and column sums
  // sum_i uu_i K_ij are t_col (the sums of the sweep just taken; the sums bound the largest terms, so
  // a dropped entry is below e^-keep times the row's, and the column's, sum). One pass over K, no
  // exp. Returns the fraction of K the spans cover.
  auto compute_spans = [&](const double* uu, const double* vv, const double* s_row, const double* t_col) {
    const double cut = std::exp(-span_keep);
    const double inf = std::numeric_limits<double>::infinity();
    span_cthr.resize(static_cast<size_t>(m));
    for (index_t j = 0; j < m; ++j) {
      const double t = t_col[j];
      span_cthr[static_cast<size_t>(j)] = (t > 0.0 && t < inf) ? t * cut : inf;
    }
    const double* ct = span_cthr.data();
    // Spans of the rows i0, i0 + stride, ... (rows stay independent: any thread count).
    auto rows_pass = [&](index_t stride) {
      const index_t count = (n + stride - 1) / stride;
      parallel_for_chunks(count, kRowChunk, n_threads, [&](index_t begin, index_t end, index_t) {
        for (index_t q = begin; q < end; ++q) {
          const index_t i = q * stride;
          const double* Ki = K.data() + i * m;
          const double* vl = vv;
          const double* cl = ct;
          const index_t ml = m;
          const double ui = uu[i], si = s_row[i];
          const double thr = si * cut;
          index_t jl = 0, jh = m;
          if (si > 0.0 && si < inf) {
            // First and last kept column as index reductions (vectorised, no early exit).
            index_t first = ml, last = -1;
            RANDNLA_OT_PRAGMA(omp simd reduction(min : first) reduction(max : last))
            for (index_t j = 0; j < ml; ++j) {
              const double kij = Ki[j];
              const bool kept = (kij * vl[j] >= thr) | (ui * kij >= cl[j]);
              first = kept && j < first ? j : first;
              last = kept && j > last ? j : last;
            }
            jl = first;
            jh = last + 1;
            if (jl >= jh) {
              jl = 0;
              jh = m;
            }
          }
          span_lo[static_cast<size_t>(i)] = jl;
          span_hi[static_cast<size_t>(i)] = jh;
        }
      });
      double width = 0.0;
      for (index_t q = 0; q < count; ++q)
        width += static_cast<double>(span_hi[static_cast<size_t>(q * stride)] - span_lo[static_cast<size_t>(q * stride)]);
      return width / (static_cast<double>(count) * static_cast<double>(m));
    };
    // A sample of rows first (1 in 16): spans that would cover most of K cost no full pass.
    if (n >= 64 && rows_pass(16) > 0.6) return 1.0;
    ++report.span_passes;
    rows_pass(1);
    double covered = 0.0;
    for (index_t i = 0; i < n; ++i)
      covered += static_cast<double>(span_hi[static_cast<size_t>(i)] - span_lo[static_cast<size_t>(i)]);
    u_ref.assign(uu, uu + n);
    v_ref.assign(vv, vv + m);
    return covered / (static_cast<double>(n) * static_cast<double>(m));
  };
  // After a scaling sweep that took the sums s_row (at v_old) and t_col (at u_new) and before v
  // moves to v_new: keep the spans if they stay valid for the next sweep, else recompute them at
  // (u_new, v_old), or back off (spans that lasted under three sweeps, or cover most of K).
  auto refresh_spans = [&](const double* v_old, const double* v_new, const double* s_row, const double* t_col) {
    if (!truncation) return;
    if (span_wait > 0) {
      --span_wait;
      spans_valid = false;
      return;
    }
    if (spans_valid && log_ratio_range(v_new, v_ref.data(), m) <= span_slack &&
        log_ratio_range(u.data(), u_ref.data(), n) <= span_slack)
      return;
    spans_valid = false;
    // Not while the scalings still move fast (the spans would not last): the last v-step above
    // slack / 4.
    if (!(log_ratio_range(v_new, v_old, m) <= 0.25 * span_slack)) return;
    // Nor when the linear rate of the last two sweeps predicts the tolerance within four sweeps.
    const size_t q = report.errors.size();
    if (q >= 2 && report.errors[q - 1] > 0 && report.errors[q - 1] < report.errors[q - 2]) {
      const double rate = report.errors[q - 1] / report.errors[q - 2];
      if (std::log(tol / report.errors[q - 1]) / std::log(rate) < 4.0) return;
    }
    if (report.sweeps - span_last < 3) {
      span_wait = span_backoff;
      span_backoff *= 2;
      return;
    }
    const double density = compute_spans(u.data(), v_old, s_row, t_col);
    span_last = report.sweeps;
    if (density > 0.6) {
      span_wait = span_backoff;
      span_backoff *= 2;
      return;
    }
    spans_valid = true;
  };
  // Over-relaxation (successive over-relaxation of the two-block Gauss-Seidel that Sinkhorn is):
  // u <- u^(1 - w) (a / K v)^w, likewise v. relax >= 1 fixes w; relax == 0 adapts it: plain sweeps
  // until the linear rate kappa of the last five is measured (two consecutive five-sweep rates within
  // 10 %, the error below half the total mass), then w = 2 / (1 + sqrt(1 - kappa)), the optimal SOR
  // factor for a 2-cyclic iteration (asymptotic rate w - 1 instead of kappa). Every ten sweeps the
  // observed rate lambda refines kappa through the SOR eigenvalue relation
  // (lambda + w - 1)^2 = lambda w^2 kappa (w only grows: a rate above w - 1 means w is below the
  // optimum). Back to w = 1 (and a longer plain stretch) if the error diverges or stops improving.
  double omega = relax >= 1.0 ? relax : 1.0;
  const bool adaptive = !(relax >= 1.0);
  index_t plain_needed = 12, since_switch = 0, plain_count = 0, since_estimate = 0;
  index_t hold_until = 0;  // no handover right after w changes (the error has a transient bump)
  double switch_err = 0.0;  // the error when w left 1: no handover before the error is below it again
  double best_err = std::numeric_limits<double>::infinity();
  std::vector<double> recent;
  double mass = 0.0;
  for (index_t i = 0; i < n; ++i) mass += a[i];
  const double w_max = 1.9;
  auto adapt_omega = [&](double err) {
    if (!adaptive) return;
    recent.push_back(err);
    const size_t q = recent.size();
    if (omega == 1.0) {
      ++plain_count;
      // Only in the linear regime: the error below half the total mass (while mass still travels
      // across the support, 1-D costs at small reg, the error plateaus near 2 sum(a)) and a steady
      // rate.
      if (plain_count >= plain_needed && q >= 11 && err <= 0.5 * mass) {
        const double kappa = std::pow(recent[q - 1] / recent[q - 6], 0.2);
        const double kappa_prev = std::pow(recent[q - 6] / recent[q - 11], 0.2);
        if (kappa > 0.5 && kappa < 1.0 && std::fabs(kappa - kappa_prev) <= 0.1 * kappa) {
          omega = std::min(w_max, 2.0 / (1.0 + std::sqrt(1.0 - kappa)));
          since_switch = 0;
          since_estimate = 0;
          best_err = err;
          switch_err = err;
          hold_until = report.sweeps + 6;
        }
      }
    } else {
      ++since_switch;
      ++since_estimate;
      if (err < best_err) {
        best_err = err;
        since_switch = 0;
      } else if (err > 100.0 * best_err || (since_switch >= 20 && !(err < recent[q >= 11 ? q - 11 : 0]))) {
        // Diverging, or no new best for 20 sweeps and no decrease over the last ten (switching w
        // starts a transient: the error may rise several-fold before the faster rate shows).
        hold_until = report.sweeps + 6;
        omega = 1.0;
        plain_count = 0;
        plain_needed *= 2;
        recent.clear();
        return;
      }
      if (since_estimate >= 10 && q >= 7 && omega < w_max) {
        const double lambda = std::pow(recent[q - 1] / recent[q - 6], 0.2);
        const double lambda_prev = std::pow(recent[q - 2] / recent[q - 7], 0.2);
        if (lambda < 1.0 && lambda > omega - 1.0 + 0.02 && std::fabs(lambda - lambda_prev) <= 0.05 * lambda) {
          const double kappa = (lambda + omega - 1.0) * (lambda + omega - 1.0) / (lambda * omega * omega);
          if (kappa < 1.0) {
            const double w_new = std::min(w_max, 2.0 / (1.0 + std::sqrt(1.0 - kappa)));
            if (w_new > omega + 0.02) {
              omega = w_new;
              since_estimate = 0;
              hold_until = report.sweeps + 10;
            }
          }
        }
      }
    }
  };
  auto log_sweep_rest = [&]() {
    // Column half-step in the log domain; switch to scaling mode once the potentials settle.
    std::copy(g, g + m, g_old.begin());
    col_update(C, f, log_b, b, eps, g, n_threads);
    double change = 0.0;
    for (index_t i = 0; i < n; ++i) change = std::max(change, std::fabs(f[i] - f_old[static_cast<size_t>(i)]));
    for (index_t j = 0; j < m; ++j) change = std::max(change, std::fabs(g[j] - g_old[static_cast<size_t>(j)]));
    if (change <= settle) {
      rebuild();
      have_k = true;
    }
  };
  // Start in scaling mode from the given potentials: K at (f, g), u = v = 1. Each scaling sweep
  // measures the full L1 error of the plan (u_new, v) between its two half-steps. The first
  // rebuild also checks that C is finite when asked (one read of C instead of two). With start_rows
  // (potentials from a solve at a larger eps, whose kernel at this eps typically underflows on whole
  // rows) K starts row-normalised: the same iterate as a plain K whose first sweep leaves the range,
  // without computing that K first (one exp pass instead of two).
  if (start_rows && !check_cost)
    rebuild_rows();
  else
    rebuild();
  if (check_cost) {
    for (index_t i = 0; i < n; ++i)
      if (!(row_err[static_cast<size_t>(i)] == 0.0)) report.nonfinite_cost = true;
    if (report.nonfinite_cost) return report;
  }
  check_cost = false;
  have_k = true;
  for (index_t k = 0; k <= max_sweeps; ++k) {
    if (!have_k) {
      std::copy(f, f + n, f_old.begin());
      const double err = row_update(C, g, log_a, a, eps, f, n_threads);
      if (k > 0) {
        record(err);
        const bool plateau = err > tol && handover.stalled(report.errors);
        const bool hand = err > tol && !plateau && handover.stop(report.errors, k);
        if (err <= tol || k == max_sweeps || !std::isfinite(err) || hand || plateau) {
          std::copy(f_old.begin(), f_old.end(), f);
          report.reached_tol = err <= tol;
          report.handed_over = hand;
          report.plateau = plateau;
          return report;
        }
      }
      log_sweep_rest();
      report.sweeps = k + 1;
      ++report.log_sweeps;
      continue;
    }
    // Fused pass: s = K v, the (over-relaxed) u-update, the row sums of the plan (u_new, v), and
    // K^T u_new per row block.
    const double w = omega;
    if (spans_valid && !(log_ratio_range(v.data(), v_ref.data(), m) <= span_slack)) spans_valid = false;
    const bool spanned = spans_valid;
    const bool bounded = !spanned && bounding && bound_wait == 0;
    if (bound_wait > 0) --bound_wait;
    // Far from the tolerance (the last error above 1e3 tol), a looser truncation: every sum within
    // 1e-5 times the error (relative), which leaves the sweeps' progress untouched; near it rel.
    double rel = bound_rel;
    if (!report.errors.empty() && report.errors.back() > 1e3 * tol)
      rel = std::max(bound_rel, std::min(1e-5, 1e-5 * report.errors.back() / mass_a));
    if (bounded) {
      for (index_t t = 0; t < n_tiles; ++t) {
        const index_t j0 = t * kBoundCols, j1 = std::min(m, j0 + kBoundCols);
        double sv = 0.0, ymin = std::numeric_limits<double>::infinity();
        for (index_t j = j0; j < j1; ++j) {
          sv += v[static_cast<size_t>(j)];
          ymin = std::min(ymin, col_sum[static_cast<size_t>(j)]);
        }
        vsum[static_cast<size_t>(t)] = sv;
        // Column criterion of the selection, from the column sums of the last sweep (halved: they
        // move with u): a group keeps a tile whose bound on its columns reaches rel times them
        // over the number of groups. Only a guide: the bounds are checked after the pass.
        col_guide[static_cast<size_t>(t)] =
            col_sums_known ? 0.5 * rel * ymin / static_cast<double>(n_groups) : std::numeric_limits<double>::infinity();
      }
    }
    parallel_for(n_blocks, n_threads, [&](index_t blk) {
      const index_t i0 = blk * kPlanBlock, i1 = std::min(n, i0 + kPlanBlock);
      double* y = partial.data() + blk * m;
      std::fill(y, y + m, 0.0);
      const double* vs = v.data();
      double* dropped = bounded ? drop_bound.data() + blk * n_tiles : nullptr;
      if (bounded) std::fill(dropped, dropped + n_tiles, 0.0);
      double* bt = bounded ? tile_bound.data() + blk * n_tiles : nullptr;
      double kept = 0.0;
      // Rows in groups of four (they stay in L1): four dot products in one pass over v, then one update of y with
      // explicit FMAs, so y is loaded and stored once per group instead of once per row. A row
      // whose scaling leaves [lo, hi] adds nothing (the sweep is then redone after an absorption).
      // With spans, the group reads the union of its rows' spans (more entries only add accuracy);
      // with bounds, the range of tiles tl..th chosen from them.
      for (index_t i = i0; i < i1; i += 4) {
        const index_t rows = std::min<index_t>(4, i1 - i);
        index_t jl = 0, jh = m;
        if (spanned) {
          jl = m;
          jh = 0;
          for (index_t r = 0; r < rows; ++r) {
            jl = std::min(jl, span_lo[static_cast<size_t>(i + r)]);
            jh = std::max(jh, span_hi[static_cast<size_t>(i + r)]);
          }
        }
        const double* Kb[4];
        for (index_t r = 0; r < 4; ++r) Kb[r] = K.data() + (i + std::min<index_t>(r, rows - 1)) * m;
        const double* Kr[4];
        double dots[4];
        bool summed = false;
        index_t tl = 0, th = n_tiles - 1;
        const double* km = bounded ? kmax.data() + (i / kBoundRows) * n_tiles : nullptr;
        if (bounded) {
          const double* vsm = vsum.data();
          const index_t nt = n_tiles;
          double bmax = 0.0;
          RANDNLA_OT_SIMD_MAX(bmax)
          for (index_t t = 0; t < nt; ++t) {
            const double bnd = km[t] * vsm[t];
            bt[t] = bnd;
            bmax = bnd > bmax ? bnd : bmax;
          }
          index_t ts = 0;
          while (ts + 1 < nt && !(bt[ts] == bmax)) ++ts;
          if (bmax > 0.0 && bmax < std::numeric_limits<double>::infinity()) {
            // The tile of largest bound first: its partial sums bound the row sums from below.
            const index_t c0 = ts * kBoundCols, c1 = std::min(m, c0 + kBoundCols);
            double pc[4], pl[4] = {0.0, 0.0, 0.0, 0.0}, pr[4] = {0.0, 0.0, 0.0, 0.0};
            for (index_t r = 0; r < 4; ++r) Kr[r] = Kb[r] + c0;
            dot_lanes4(Kr, vs + c0, c1 - c0, pc);
            double low = pc[0];
            for (index_t r = 1; r < rows; ++r) low = std::min(low, pc[r]);
            if (low > 0.0) {
              const double thr = rel * low / static_cast<double>(n_tiles);
              double us = 0.0;
              for (index_t r = 0; r < rows; ++r) {
                const double ur = u[static_cast<size_t>(i + r)];
                us += (ur >= lo && ur <= hi) ? ur : 0.0;
              }
              const double* cg = col_guide.data();
              tl = ts;
              th = ts;
              for (index_t t = 0; t < ts; ++t)
                if (bt[t] >= thr || km[t] * us >= cg[t]) {
                  tl = t;
                  break;
                }
              for (index_t t = n_tiles - 1; t > ts; --t)
                if (bt[t] >= thr || km[t] * us >= cg[t]) {
                  th = t;
                  break;
                }
              jl = tl * kBoundCols;
              jh = std::min(m, (th + 1) * kBoundCols);
              if (jl < c0) {
                for (index_t r = 0; r < 4; ++r) Kr[r] = Kb[r] + jl;
                dot_lanes4(Kr, vs + jl, c0 - jl, pl);
              }
              if (c1 < jh) {
                for (index_t r = 0; r < 4; ++r) Kr[r] = Kb[r] + c1;
                dot_lanes4(Kr, vs + c1, jh - c1, pr);
              }
              for (index_t r = 0; r < 4; ++r) dots[r] = (pl[r] + pc[r]) + pr[r];
              summed = true;
            } else {
              tl = 0;
              th = n_tiles - 1;
            }
          }
        }
        for (index_t r = 0; r < 4; ++r) Kr[r] = Kb[r] + jl;
        if (!summed) dot_lanes4(Kr, vs + jl, jh - jl, dots);
        kept += static_cast<double>(rows * (jh - jl));
        double plain[4] = {1.0, 1.0, 1.0, 1.0}, cur[4] = {1.0, 1.0, 1.0, 1.0}, un4[4], coef[4] = {0.0, 0.0, 0.0, 0.0};
        for (index_t r = 0; r < rows; ++r) {
          plain[r] = a[i + r] / dots[r];
          cur[r] = u[static_cast<size_t>(i + r)];
        }
        sor_update(plain, cur, 4, w, un4);
        for (index_t r = 0; r < rows; ++r) {
          const index_t ir = i + r;
          const double s = dots[r], un = un4[r];
          row_sum[static_cast<size_t>(ir)] = s;
          u_new[static_cast<size_t>(ir)] = un;
          row_err[static_cast<size_t>(ir)] = std::fabs(un * s - a[ir]);
          if (un >= lo && un <= hi) coef[r] = un;
        }
        const double c0 = coef[0], c1 = coef[1], c2 = coef[2], c3 = coef[3];
        if (bounded) {
          // Bounds of the tiles left out on each of their columns.
          const double us = (c0 + c1) + (c2 + c3);
          for (index_t t = 0; t < tl; ++t) dropped[t] += km[t] * us;
          for (index_t t = th + 1; t < n_tiles; ++t) dropped[t] += km[t] * us;
        }
        const double *K0 = Kr[0], *K1 = Kr[1], *K2 = Kr[2], *K3 = Kr[3];
        double* yl = y + jl;
        const index_t width = jh - jl;
        RANDNLA_OT_SIMD
        for (index_t j = 0; j < width; ++j) {
          double t = c0 * K0[j];
          t = std::fma(c1, K1[j], t);
          t = std::fma(c2, K2[j], t);
          t = std::fma(c3, K3[j], t);
          yl[j] += t;
        }
      }
      block_kept[static_cast<size_t>(blk)] = kept;
    });
    if (bounded) {
      ++report.bounded_sweeps;
      double kept = 0.0;
      for (index_t blk = 0; blk < n_blocks; ++blk) kept += block_kept[static_cast<size_t>(blk)];
      if (kept > 0.6 * static_cast<double>(n) * static_cast<double>(m)) {
        bound_wait = bound_backoff;
        bound_backoff *= 2;
      }
    }
    // Column sums of every row block over all of K (rows whose scaling left the range add nothing).
    auto dense_columns = [&]() {
      parallel_for(n_blocks, n_threads, [&](index_t blk) {
        const index_t i0 = blk * kPlanBlock, i1 = std::min(n, i0 + kPlanBlock);
        double* y = partial.data() + blk * m;
        std::fill(y, y + m, 0.0);
        for (index_t i = i0; i < i1; ++i) {
          const double un = u_new[static_cast<size_t>(i)];
          if (!(un >= lo && un <= hi)) continue;
          const double* Ki = K.data() + i * m;
          RANDNLA_OT_SIMD
          for (index_t j = 0; j < m; ++j) y[j] = std::fma(un, Ki[j], y[j]);
        }
      });
    };
    if (spanned && !(log_ratio_range(u_new.data(), u_ref.data(), n) <= span_slack)) {
      // u moved too far for the column criterion: the column sums again over all of K, and new
      // spans before the next sweep.
      spans_valid = false;
      dense_columns();
    }
    bool bad = false;
    for (index_t i = 0; i < n; ++i) {
      const double un = u_new[static_cast<size_t>(i)];
      if (!(un >= lo && un <= hi)) bad = true;
    }
    if (bad && !fresh) {
      // Absorb the scalings into the potentials, recompute K there and redo this sweep (the same
      // iterate: u, v = 1 on the new K reproduce diag(u) K diag(v)).
      absorb();
      rebuild();
      --k;
      continue;
    }
    if (bad && !normalised) {
      // Even a fresh K leaves the range (K underflows on a whole row): take the row half-step in
      // the log domain, fused with K at the new potentials, and redo the sweep on it.
      absorb();
      rebuild_rows();
      --k;
      continue;
    }
    if (bad) {
      // Even a row-normalised K leaves the range: take this sweep in the log domain, which is
      // exact there.
      absorb();
      have_k = false;
      std::copy(f, f + n, f_old.begin());
      row_update(C, g, log_a, a, eps, f, n_threads);
      log_sweep_rest();
      report.sweeps = k + 1;
      ++report.log_sweeps;
      continue;
    }
    // Column sums of the plan (u_new, v) from the block partials merged in block order.
    auto merge_columns = [&]() {
      parallel_for_chunks(m, kColChunk, n_threads, [&](index_t j0, index_t j1, index_t) {
        column_sums(partial.data(), n_blocks, m, j0, j1, col_sum.data());
      });
    };
    merge_columns();
    if (bounded) {
      // The tiles left out add at most drop_total[t] to each column of tile t: where that exceeds
      // rel times a column sum, the tile's columns are summed again over all rows (all of K when
      // that is a quarter of the tiles or more).
      std::fill(drop_total.begin(), drop_total.end(), 0.0);
      for (index_t blk = 0; blk < n_blocks; ++blk) {
        const double* d = drop_bound.data() + blk * n_tiles;
        for (index_t t = 0; t < n_tiles; ++t) drop_total[static_cast<size_t>(t)] += d[t];
      }
      failing.clear();
      for (index_t t = 0; t < n_tiles; ++t) {
        const index_t j0 = t * kBoundCols, j1 = std::min(m, j0 + kBoundCols);
        double ymin = std::numeric_limits<double>::infinity();
        for (index_t j = j0; j < j1; ++j) ymin = std::min(ymin, col_sum[static_cast<size_t>(j)]);
        if (!(drop_total[static_cast<size_t>(t)] <= rel * ymin)) failing.push_back(t);
      }
      report.resummed_tiles += static_cast<index_t>(failing.size());
      if (4 * static_cast<index_t>(failing.size()) >= n_tiles) {
        dense_columns();
        merge_columns();
      } else {
        parallel_for(static_cast<index_t>(failing.size()), n_threads, [&](index_t q) {
          const index_t j0 = failing[static_cast<size_t>(q)] * kBoundCols, j1 = std::min(m, j0 + kBoundCols);
          double acc[kBoundCols] = {};
          const index_t wt = j1 - j0;
          for (index_t i = 0; i < n; ++i) {
            const double un = u_new[static_cast<size_t>(i)];
            if (!(un >= lo && un <= hi)) continue;
            const double* Ki = K.data() + i * m + j0;
            for (index_t j = 0; j < wt; ++j) acc[j] = std::fma(un, Ki[j], acc[j]);
          }
          for (index_t j = 0; j < wt; ++j) col_sum[static_cast<size_t>(j0 + j)] = acc[j];
        });
      }
    }
    col_sums_known = true;
    // Its L1 error (rows and columns) decides the stop; then the (over-relaxed) v-update.
    parallel_for_chunks(m, kColChunk, n_threads, [&](index_t j0, index_t j1, index_t) {
      for (index_t j = j0; j < j1; ++j) {
        const double t = col_sum[static_cast<size_t>(j)];
        col_err[static_cast<size_t>(j)] = std::fabs(v[static_cast<size_t>(j)] * t - b[j]);
        vn_buf[static_cast<size_t>(j)] = b[j] / t;
      }
      sor_update(vn_buf.data() + j0, v.data() + j0, j1 - j0, w, vn_buf.data() + j0);
    });
    double err = 0.0;
    for (index_t i = 0; i < n; ++i) err += row_err[static_cast<size_t>(i)];
    for (index_t j = 0; j < m; ++j) err += col_err[static_cast<size_t>(j)];
    std::copy(u_new.begin(), u_new.end(), u.begin());
    report.sweeps = k + 1;
    record(err);
    {
      // An error measured under the loose truncation is not trusted at the tolerance (one more
      // sweep, measured at rel, decides).
      const bool met = err <= tol && !(bounded && rel > bound_rel);
      const bool transient = omega != 1.0 && !(err < switch_err);
      const bool plateau = err > tol && handover.stalled(report.errors);
      const bool hand =
          err > tol && !plateau && report.sweeps >= hold_until && !transient && handover.stop(report.errors, k + 1);
      if (met || k + 1 >= max_sweeps || !std::isfinite(err) || hand || plateau) {
        report.reached_tol = met;
        report.handed_over = hand;
        report.plateau = plateau;
        if (plan_out != nullptr && write_plan && report.reached_tol) {
          // The plan from K (a product per entry instead of an exp): P_ij = u_i K_ij v_j, logP_ij =
          // (f_i + g_j - C_ij) / eps at the absorbed potentials. Row blocks as in the sweeps, column
          // sums merged in block order.
          std::vector<double> uu(u), vv(v);
          absorb();
          report.has_plan = true;
          report.plan.r.assign(static_cast<size_t>(n), 0.0);
          std::vector<double> b_cost(static_cast<size_t>(n_blocks), 0.0), b_plogp(static_cast<size_t>(n_blocks), 0.0),
              b_max(static_cast<size_t>(n_blocks), kNegInf);
          parallel_for(n_blocks, n_threads, [&](index_t blk) {
            const index_t i0 = blk * kPlanBlock, i1 = std::min(n, i0 + kPlanBlock);
            double* y = partial.data() + blk * m;
            std::fill(y, y + m, 0.0);
            double cost = 0.0, plogp = 0.0, bmax = kNegInf;
            // Local copies: the vectorised loop keeps them in registers.
            const double* vl = vv.data();
            const double* gl = g;
            const double invl = inv;
            const index_t ml = m;
            for (index_t i = i0; i < i1; ++i) {
              const double* Ki = K.data() + i * ml;
              const T* Ci = C.row(i);
              T* Pi = plan_out + i * ml;
              const double ui = uu[static_cast<size_t>(i)], fi = f[i];
              double rs = 0.0, rc = 0.0, rl = 0.0, best = kNegInf;
              RANDNLA_OT_SIMD_SUM3_MAX(rs, rc, rl, best)
              for (index_t j = 0; j < ml; ++j) {
                const double pij = ui * Ki[j] * vl[j];
                const double cij = static_cast<double>(Ci[j]);
                const double x = (fi + gl[j] - cij) * invl;
                Pi[j] = static_cast<T>(pij);
                y[j] += pij;
                rs += pij;
                rc += pij * cij;
                rl += pij * x;
                best = x > best ? x : best;
              }
              report.plan.r[static_cast<size_t>(i)] = rs;
              cost += rc;
              plogp += rl;
              bmax = std::max(bmax, best);
            }
            b_cost[static_cast<size_t>(blk)] = cost;
            b_plogp[static_cast<size_t>(blk)] = plogp;
            b_max[static_cast<size_t>(blk)] = bmax;
          });
          report.plan.c.assign(static_cast<size_t>(m), 0.0);
          for (index_t blk = 0; blk < n_blocks; ++blk) {
            const double* y = partial.data() + blk * m;
            for (index_t j = 0; j < m; ++j) report.plan.c[static_cast<size_t>(j)] += y[j];
            report.plan.cost += b_cost[static_cast<size_t>(blk)];
            report.plan.plogp += b_plogp[static_cast<size_t>(blk)];
            report.plan.max_logp = std::max(report.plan.max_logp, b_max[static_cast<size_t>(blk)]);
          }
          for (index_t i = 0; i < n; ++i) report.plan.total += report.plan.r[static_cast<size_t>(i)];
          return report;
        }
        absorb();  // the plan (u_new, v) whose error was measured
        return report;
      }
    }
    adapt_omega(err);
    bool bad_v = false;
    for (index_t j = 0; j < m; ++j) {
      const double vn = vn_buf[static_cast<size_t>(j)];
      if (!(vn >= lo && vn <= hi)) bad_v = true;
    }
    if (bad_v) {
      // Absorb u (v unchanged), recompute K and take the column half-step on it (v = 1 before:
      // v <- (b / K^T 1)^w); if that leaves the range too, take it in the log domain.
      std::copy(f, f + n, f_old.begin());  // f moves by eps log u in the absorption
      absorb();
      rebuild();
      parallel_for_chunks(m, kColChunk, n_threads, [&](index_t j0, index_t j1, index_t) {
        column_sums(K.data(), n, m, j0, j1, vn_buf.data());
        for (index_t j = j0; j < j1; ++j) {
          double vn = b[j] / vn_buf[static_cast<size_t>(j)];
          if (w != 1.0 && vn > 0 && std::isfinite(vn)) vn = std::exp(w * std::log(vn));
          vn_buf[static_cast<size_t>(j)] = vn;
        }
      });
      bool ok = true;
      for (index_t j = 0; j < m; ++j) {
        const double vn = vn_buf[static_cast<size_t>(j)];
        if (!(vn >= lo && vn <= hi)) ok = false;
      }
      if (ok) {
        std::copy(vn_buf.begin(), vn_buf.end(), v.begin());
      } else {
        have_k = false;
        log_sweep_rest();
      }
    } else {
      refresh_spans(v.data(), vn_buf.data(), row_sum.data(), col_sum.data());
      std::copy(vn_buf.begin(), vn_buf.end(), v.begin());
    }
    fresh = false;
    normalised = false;
    report.sweeps = k + 1;
  }
  absorb();
  return report;
}

// One fused pass over C at potentials (f, g): row sums r, column sums c, sum P, <C, P>, sum P logP,
// the largest logP, optionally the dense plan, and with `histogram` (the Newton stage) a histogram of
// logP (count and mass per bucket, for the sparsification rule) and the row and column argmax of logP
// (left at 0 without it).
template <class T, class PlanT>
PlanSummary plan_pass(const MatrixView<const T>& C, const double* f, const double* g, double eps, bool histogram,
                      PlanT* plan, int n_threads) {
  const index_t n = C.rows, m = C.cols;
  const double inv = 1.0 / eps;
  const index_t n_blocks = (n + kPlanBlock - 1) / kPlanBlock;
  PlanSummary out;
  if (plan != nullptr) prefault(plan, static_cast<size_t>(n * m) * sizeof(PlanT));
  out.r.assign(static_cast<size_t>(n), 0.0);
  out.row_argmax.assign(static_cast<size_t>(n), 0);
  std::vector<double> block_c(static_cast<size_t>(n_blocks * m), 0.0), block_cmax(static_cast<size_t>(n_blocks * m));
  std::vector<std::int64_t> block_carg(static_cast<size_t>(n_blocks * m), 0);
  std::vector<double> block_cost(static_cast<size_t>(n_blocks), 0.0), block_plogp(static_cast<size_t>(n_blocks), 0.0),
      block_max(static_cast<size_t>(n_blocks), kNegInf);
  const int nb = histogram ? kHistBuckets : 0;
  std::vector<std::int64_t> block_hc(static_cast<size_t>(n_blocks * nb), 0);
  std::vector<double> block_hm(static_cast<size_t>(n_blocks * nb), 0.0);
  parallel_for(n_blocks, n_threads, [&](index_t blk) {
    const index_t i0 = blk * kPlanBlock, i1 = std::min(n, i0 + kPlanBlock);
    double* cs = block_c.data() + blk * m;
    double* cmax = block_cmax.data() + blk * m;
    std::int64_t* carg = block_carg.data() + blk * m;
    std::int64_t* hc = block_hc.data() + blk * nb;
    double* hm = block_hm.data() + blk * nb;
    std::fill(cmax, cmax + m, kNegInf);
    std::vector<double> x(static_cast<size_t>(m)), p(static_cast<size_t>(m));
    std::vector<int> buckets(histogram ? static_cast<size_t>(m) : 0);
    std::vector<std::int64_t> hc4(histogram ? 4 * kHistBuckets : 0, 0);
    std::vector<double> hm4(histogram ? 4 * kHistBuckets : 0, 0.0);
    double cost = 0.0, plogp = 0.0, bmax = kNegInf;
    for (index_t i = i0; i < i1; ++i) {
      const T* Ci = C.row(i);
      const double fi = f[i];
      double* xs = x.data();
      // A float64 plan is written in place (no copy from a scratch row).
      double* ps = p.data();
      if constexpr (std::is_same<PlanT, double>::value)
        if (plan != nullptr) ps = plan + i * m;
      double best = kNegInf;
      RANDNLA_OT_SIMD_MAX(best)
      for (index_t j = 0; j < m; ++j) {
        const double v = (fi + g[j] - static_cast<double>(Ci[j])) * inv;
        xs[j] = v;
        ps[j] = exp_lanes(v);
        best = v > best ? v : best;
      }
      double rs = 0.0, rc = 0.0, rl = 0.0;
      RANDNLA_OT_SIMD_SUM(rs)
      for (index_t j = 0; j < m; ++j) rs += ps[j];
      RANDNLA_OT_SIMD_SUM(rc)
      for (index_t j = 0; j < m; ++j) rc += ps[j] * static_cast<double>(Ci[j]);
      RANDNLA_OT_SIMD_SUM(rl)
      for (index_t j = 0; j < m; ++j) rl += ps[j] * xs[j];
      out.r[static_cast<size_t>(i)] = rs;
      cost += rc;
      plogp += rl;
      RANDNLA_OT_SIMD
      for (index_t j = 0; j < m; ++j) cs[j] += ps[j];
      bmax = std::max(bmax, best);
      if (histogram) {
        // Row argmax: the first index attaining the maximum.
        index_t arg = 0;
        while (arg + 1 < m && !(xs[arg] == best)) ++arg;
        out.row_argmax[static_cast<size_t>(i)] = arg;
        // Column argmax, branch-free (strictly greater keeps the first row on ties).
        RANDNLA_OT_SIMD
        for (index_t j = 0; j < m; ++j) {
          const bool greater = xs[j] > cmax[j];
          cmax[j] = greater ? xs[j] : cmax[j];
          carg[j] = greater ? static_cast<std::int64_t>(i) : carg[j];
        }
        int* bk = buckets.data();
        RANDNLA_OT_SIMD
        for (index_t j = 0; j < m; ++j) bk[j] = hist_bucket(xs[j]);
        // Four interleaved sub-histograms break the store-to-load chains on popular buckets.
        index_t j = 0;
        for (; j + 4 <= m; j += 4)
          for (int l = 0; l < 4; ++l) {
            const int k = bk[j + l] + l * kHistBuckets;
            hc4[static_cast<size_t>(k)] += 1;
            hm4[static_cast<size_t>(k)] += ps[j + l];
          }
        for (; j < m; ++j) {
          hc4[static_cast<size_t>(bk[j])] += 1;
          hm4[static_cast<size_t>(bk[j])] += ps[j];
        }
      }
      if (plan != nullptr && !std::is_same<PlanT, double>::value) {
        PlanT* Pi = plan + i * m;
        for (index_t j = 0; j < m; ++j) Pi[j] = static_cast<PlanT>(ps[j]);
      }
    }
    if (histogram)
      for (int k = 0; k < nb; ++k)
        for (int l = 0; l < 4; ++l) {
          hc[k] += hc4[static_cast<size_t>(k + l * kHistBuckets)];
          hm[k] += hm4[static_cast<size_t>(k + l * kHistBuckets)];
        }
    block_cost[static_cast<size_t>(blk)] = cost;
    block_plogp[static_cast<size_t>(blk)] = plogp;
    block_max[static_cast<size_t>(blk)] = bmax;
  });
  out.c.assign(static_cast<size_t>(m), 0.0);
  out.col_argmax.assign(static_cast<size_t>(m), 0);
  std::vector<double> cmax(static_cast<size_t>(m), kNegInf);
  if (histogram) {
    out.hist_count.assign(kHistBuckets, 0);
    out.hist_mass.assign(kHistBuckets, 0.0);
  }
  for (index_t blk = 0; blk < n_blocks; ++blk) {
    const double* cs = block_c.data() + blk * m;
    const double* bm = block_cmax.data() + blk * m;
    const std::int64_t* ba = block_carg.data() + blk * m;
    for (index_t j = 0; j < m; ++j) {
      out.c[static_cast<size_t>(j)] += cs[j];
      if (bm[j] > cmax[static_cast<size_t>(j)]) {
        cmax[static_cast<size_t>(j)] = bm[j];
        out.col_argmax[static_cast<size_t>(j)] = ba[j];
      }
    }
    out.cost += block_cost[static_cast<size_t>(blk)];
    out.plogp += block_plogp[static_cast<size_t>(blk)];
    out.max_logp = std::max(out.max_logp, block_max[static_cast<size_t>(blk)]);
    for (int k = 0; k < nb; ++k) {
      out.hist_count[static_cast<size_t>(k)] += block_hc[static_cast<size_t>(blk * nb + k)];
      out.hist_mass[static_cast<size_t>(k)] += block_hm[static_cast<size_t>(blk * nb + k)];
    }
  }
  for (index_t i = 0; i < n; ++i) out.total += out.r[static_cast<size_t>(i)];
  return out;
}

// The sparsification rule: keep the buckets above a cut so that the dropped mass is <= drop_mass, with
// the kept count clamped to [k_min, k_max] (at bucket resolution). Returns the number of kept buckets:
// an entry is kept when hist_bucket(logP) < cut.
inline int choose_cut(const std::vector<std::int64_t>& count, const std::vector<double>& mass, double drop_mass,
                      std::int64_t k_min, std::int64_t k_max) {
  const int nb = static_cast<int>(count.size());
  // Smallest cut whose tail mass (buckets >= cut) is <= drop_mass.
  int cut = nb;
  double tail = 0.0;
  for (int k = nb - 1; k >= 0; --k) {
    if (tail + mass[static_cast<size_t>(k)] > drop_mass) break;
    tail += mass[static_cast<size_t>(k)];
    cut = k;
  }
  cut = std::max(cut, 1);
  std::int64_t kept = 0;
  for (int k = 0; k < cut; ++k) kept += count[static_cast<size_t>(k)];
  while (kept < k_min && cut < nb) {
    kept += count[static_cast<size_t>(cut)];
    ++cut;
  }
  while (kept > k_max && cut > 1 && kept - count[static_cast<size_t>(cut - 1)] >= k_min) {
    kept -= count[static_cast<size_t>(cut - 1)];
    --cut;
  }
  return cut;
}

// Sparse matrix in CSR form (row pointers, column indices, values).
struct Csr {
  index_t rows = 0, cols = 0;
  std::vector<std::int64_t> indptr;
  std::vector<std::int64_t> indices;
  std::vector<double> data;
};

// Gathers the kept plan entries: logP in a bucket below `cut`, plus each row's argmax and each
// column's argmax (so the kept bipartite graph touches every row and column).
template <class T>
Csr gather_plan(const MatrixView<const T>& C, const double* f, const double* g, double eps, int cut,
                const std::int64_t* col_argmax, int n_threads) {
  const index_t n = C.rows, m = C.cols;
  const double inv = 1.0 / eps;
  // For each row, the columns whose argmax it is (counting sort, deterministic).
  std::vector<std::int64_t> start(static_cast<size_t>(n + 1), 0), owned(static_cast<size_t>(m));
  for (index_t j = 0; j < m; ++j) start[static_cast<size_t>(col_argmax[j] + 1)] += 1;
  for (index_t i = 0; i < n; ++i) start[static_cast<size_t>(i + 1)] += start[static_cast<size_t>(i)];
  {
    std::vector<std::int64_t> fill(start.begin(), start.end() - 1);
    for (index_t j = 0; j < m; ++j) owned[static_cast<size_t>(fill[static_cast<size_t>(col_argmax[j])]++)] = j;
  }
  const index_t n_blocks = (n + kPlanBlock - 1) / kPlanBlock;
  std::vector<std::vector<std::int64_t>> b_idx(static_cast<size_t>(n_blocks));
  std::vector<std::vector<double>> b_val(static_cast<size_t>(n_blocks));
  std::vector<std::int64_t> row_count(static_cast<size_t>(n), 0);
  parallel_for(n_blocks, n_threads, [&](index_t blk) {
    const index_t i0 = blk * kPlanBlock, i1 = std::min(n, i0 + kPlanBlock);
    std::vector<double> x(static_cast<size_t>(m));
    std::vector<unsigned char> keep(static_cast<size_t>(m));
    auto& idx = b_idx[static_cast<size_t>(blk)];
    auto& val = b_val[static_cast<size_t>(blk)];
    for (index_t i = i0; i < i1; ++i) {
      const T* Ci = C.row(i);
      const double fi = f[i];
      index_t arg = 0;
      double best = kNegInf;
      for (index_t j = 0; j < m; ++j) {
        const double v = (fi + g[j] - static_cast<double>(Ci[j])) * inv;
        x[static_cast<size_t>(j)] = v;
        keep[static_cast<size_t>(j)] = hist_bucket(v) < cut;
        if (v > best) {
          best = v;
          arg = j;
        }
      }
      keep[static_cast<size_t>(arg)] = 1;
      for (std::int64_t q = start[static_cast<size_t>(i)]; q < start[static_cast<size_t>(i + 1)]; ++q)
        keep[static_cast<size_t>(owned[static_cast<size_t>(q)])] = 1;
      std::int64_t cnt = 0;
      for (index_t j = 0; j < m; ++j)
        if (keep[static_cast<size_t>(j)]) {
          idx.push_back(j);
          val.push_back(exp_lanes(x[static_cast<size_t>(j)]));
          ++cnt;
        }
      row_count[static_cast<size_t>(i)] = cnt;
    }
  });
  Csr out;
  out.rows = n;
  out.cols = m;
  out.indptr.assign(static_cast<size_t>(n + 1), 0);
  for (index_t i = 0; i < n; ++i) out.indptr[static_cast<size_t>(i + 1)] = out.indptr[static_cast<size_t>(i)] + row_count[static_cast<size_t>(i)];
  out.indices.reserve(static_cast<size_t>(out.indptr.back()));
  out.data.reserve(static_cast<size_t>(out.indptr.back()));
  for (index_t blk = 0; blk < n_blocks; ++blk) {
    out.indices.insert(out.indices.end(), b_idx[static_cast<size_t>(blk)].begin(), b_idx[static_cast<size_t>(blk)].end());
    out.data.insert(out.data.end(), b_val[static_cast<size_t>(blk)].begin(), b_val[static_cast<size_t>(blk)].end());
  }
  return out;
}

}  // namespace ot
}  // namespace randnla
