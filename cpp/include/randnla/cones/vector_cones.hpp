// randnla/cones/vector_cones.hpp: exact Euclidean projections onto the vector cones behind the
// spectral matrix cones (and the classic SOC, exponential and power cones).
//
// Every routine works in double, in place, on one cone, and returns a Status saying whether the
// point was already in the cone, mapped to zero (it was in the polar cone) or moved. All cones are
// positively homogeneous, so the iterative ones rescale the input to unit max-norm first: the
// results are then equally accurate from 1e-8 to 1e8. Conventions:
//   SOC          {(t, x): ||x||_2 <= t}
//   exp          cl{(r, s, t): s > 0, s exp(r / s) <= t}              (SCS / Friberg order)
//   power(a)     {(x, y, z): x^a y^(1-a) >= |z|, x, y >= 0}
//   log          cl{(t, v, x): v > 0, x > 0, t >= -v sum_i log(x_i / v)}  (epigraph; the public API
//                also offers the hypograph t <= v sum log(x_i / v) by the isometry t -> -t)
//   l1           {(t, x): ||x||_1 <= t}        linf {(t, x): ||x||_inf <= t}
//   top-k sum    {(t, x): sum of the k largest x_i <= t}
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "randnla/common.hpp"

namespace randnla {
namespace cones {

enum Status : int { unchanged = 0, zero = 1, moved = 2 };

// Scratch memory reused across calls (one per thread).
struct Scratch {
  std::vector<double> d;
  std::vector<index_t> i;
  double* doubles(std::size_t n) {
    if (d.size() < n) d.resize(n);
    return d.data();
  }
  index_t* indices(std::size_t n) {
    if (i.size() < n) i.resize(n);
    return i.data();
  }
};

namespace detail {

constexpr double kEps = std::numeric_limits<double>::epsilon();
constexpr double kInf = std::numeric_limits<double>::infinity();

inline double max_abs(const double* x, index_t n) {
  double m = 0;
  for (index_t i = 0; i < n; ++i) m = std::max(m, std::abs(x[i]));
  return m;
}

// ||x||_2 without overflow or underflow.
inline double norm2(const double* x, index_t n) {
  const double m = max_abs(x, n);
  if (m == 0 || !std::isfinite(m)) return m;
  double s = 0;
  for (index_t i = 0; i < n; ++i) {
    const double y = x[i] / m;
    s += y * y;
  }
  return m * std::sqrt(s);
}

// Order of x by decreasing value (stable), written to idx.
inline void order_descending(const double* x, index_t n, index_t* idx) {
  std::iota(idx, idx + n, index_t(0));
  std::stable_sort(idx, idx + n, [x](index_t a, index_t b) { return x[a] > x[b]; });
}

}  // namespace detail

// ---------------------------------------------------------------- nonnegative orthant
inline Status project_nonneg(double* x, index_t n) {
  bool changed = false, all_nonpos = true;
  for (index_t i = 0; i < n; ++i) {
    if (x[i] < 0) {
      x[i] = 0;
      changed = true;
    } else if (x[i] > 0) {
      all_nonpos = false;
    }
  }
  if (!changed) return unchanged;
  return all_nonpos ? zero : moved;
}

// ---------------------------------------------------------------- second-order cone
inline Status project_soc(double& t, double* x, index_t n) {
  const double nx = detail::norm2(x, n);
  if (nx <= t) return unchanged;
  if (nx <= -t) {
    t = 0;
    std::fill(x, x + n, 0.0);
    return zero;
  }
  const double alpha = 0.5 * (t + nx);  // nx > |t| >= 0 here
  const double scale = alpha / nx;
  for (index_t i = 0; i < n; ++i) x[i] *= scale;
  t = alpha;
  return moved;
}

// ---------------------------------------------------------------- exponential cone
namespace detail {

inline bool in_exp(double r, double s, double t) {
  if (s > 0) return s * std::exp(r / s) <= t;
  return s == 0 && r <= 0 && t >= 0;
}

// z in the polar cone -K* where K* = cl{(u, v, w): u < 0, -u exp(v / u) <= e w}.
inline bool in_exp_polar(double r, double s, double t) {
  if (r > 0) return r * std::exp(s / r - 1.0) <= -t;
  return r == 0 && s <= 0 && t <= 0;
}

// Root of an increasing function f on [a, b] with f(a) < 0 < f(b): Newton steps kept inside the
// bracket, with a bisection whenever a step would leave it or the steps stop shrinking fast enough
// (the rtsafe rule: |2 f| > |previous step * f'|), so it never crawls along an exponential.
// Stops at a step or bracket below tol * max(floor, |x|). fdf(x, f, df).
template <class FDF>
double safe_root(FDF&& fdf, double a, double b, double x, double tol = 4 * kEps, double floor = 1.0,
                 int max_iter = 600) {
  if (!(x > a && x < b)) x = 0.5 * (a + b);
  double step_old = b - a, step = step_old;
  for (int it = 0; it < max_iter; ++it) {
    double f, df;
    fdf(x, f, df);
    if (f == 0) return x;
    if (f < 0)
      a = x;
    else
      b = x;
    double next = x - f / df;
    const bool bad = !(std::isfinite(next) && next > a && next < b) || std::abs(2 * f) > std::abs(step_old * df);
    step_old = step;
    if (bad) next = 0.5 * (a + b);
    step = next - x;
    const double scale = std::max(floor, std::abs(x));
    if (std::abs(step) <= tol * scale || b - a <= tol * scale) return next;
    x = next;
  }
  return x;
}

// Root of an increasing function from a start x0 (e.g. a warm start): step outwards by about
// twice the Newton step, doubling, until the sign changes or a limit is reached (then the limit is
// returned), and polish with safe_root from the Newton point.
template <class FDF>
double bracketed_root(FDF&& fdf, double x0, double lo_limit, double hi_limit, double tol = 4 * kEps,
                      double floor = 1.0) {
  double f, df;
  fdf(x0, f, df);
  if (f == 0) return x0;
  const double newton = x0 - f / df;
  double step = std::abs(f / df) * 2;
  if (!(std::isfinite(step) && step > 1e-12)) step = 1e-12;
  step = std::min(step, 1.0);
  double a, b;
  if (f < 0) {
    a = x0;
    for (;;) {
      b = std::min(a + step, hi_limit);
      fdf(b, f, df);
      if (f >= 0) break;
      if (b >= hi_limit) return hi_limit;
      a = b;
      step *= 2;
    }
  } else {
    b = x0;
    for (;;) {
      a = std::max(b - step, lo_limit);
      fdf(a, f, df);
      if (f <= 0) break;
      if (a <= lo_limit) return lo_limit;
      b = a;
      step *= 2;
    }
  }
  return safe_root(fdf, a, b, newton > a && newton < b ? newton : 0.5 * (a + b), tol, floor);
}

inline double times_exp(double a, double rho) { return a == 0 ? 0.0 : a * std::exp(rho); }

// Friberg's univariate function whose root parametrises the projection onto the curved
// boundary: the projection is s (rho, 1, e^rho) with s = ((rho - 1) r0 + s0) / (rho^2 - rho + 1).
// a = (rho - 1) r0 + s0 and b = r0 - rho s0 are passed in: near the face s = 0 the caller computes
// a as r0 (rho - lo) from the shift rho - lo, and at the bracket ends a or b is exactly 0.
inline void exp_h(double r0, double s0, double t0, double rho, double a, double b, double& f, double& df) {
  f = times_exp(a, rho) - times_exp(b, -rho) - (rho * (rho - 1) + 1) * t0;
  df = times_exp(a + r0, rho) + times_exp(b + s0, -rho) - (2 * rho - 1) * t0;
}

inline double dist2_3(const double* a, double r, double s, double t) {
  return (a[0] - r) * (a[0] - r) + (a[1] - s) * (a[1] - s) + (a[2] - t) * (a[2] - t);
}

}  // namespace detail

inline Status project_exp(double* z) {
  using namespace detail;
  const double scale = max_abs(z, 3);
  if (scale == 0) return unchanged;
  const double r0 = z[0] / scale, s0 = z[1] / scale, t0 = z[2] / scale;
  if (in_exp(r0, s0, t0)) return unchanged;
  if (in_exp_polar(r0, s0, t0)) {
    z[0] = z[1] = z[2] = 0;
    return zero;
  }
  const double z0[3] = {r0, s0, t0};
  // Candidate on the face {r <= 0, s = 0, t >= 0}: exact whenever r0 <= 0 and s0 <= 0.
  double best[3] = {std::min(r0, 0.0), 0.0, std::max(t0, 0.0)};
  double best_d = dist2_3(z0, best[0], best[1], best[2]);
  if (!(r0 <= 0 && s0 <= 0)) {
    if (s0 > 0) {  // lift t: feasible, exact when the projection moves only t
      const double tt = std::max(t0, s0 * std::exp(r0 / s0));
      if (std::isfinite(tt)) {
        const double d = dist2_3(z0, r0, s0, tt);
        if (d < best_d) best_d = d, best[0] = r0, best[1] = s0, best[2] = tt;
      }
    }
    // Root bracket: s(rho) > 0 and the multiplier > 0 need (rho - 1) r0 + s0 > 0 and r0 - rho s0 > 0.
    // With r0 > 0 the unknown is the shift y = rho - lo (lo = 1 - s0 / r0) so that s stays accurate
    // on the face side; otherwise y = rho.
    // (When lo << 0 the shift would cost absolute accuracy in rho, and e^rho is tiny there anyway.)
    const bool shifted = r0 > 0 && 1 - s0 / r0 >= -1;
    const double base = shifted ? 1 - s0 / r0 : 0.0;
    double lo = shifted ? 0.0 : (r0 > 0 ? 1 - s0 / r0 : -kInf);
    double hi = s0 > 0 ? r0 / s0 - base : kInf;
    const double hi_end = hi;  // where b = r0 - rho s0 vanishes (when finite)
    auto h = [&](double y, double& f, double& df) {
      const double rho = base + y;
      const double b = (std::isfinite(hi_end) && y >= hi_end) ? 0.0 : r0 - rho * s0;
      exp_h(r0, s0, t0, rho, shifted ? r0 * y : (rho - 1) * r0 + s0, b, f, df);
    };
    bool ok = lo < hi;
    double f, df;
    if (ok && !std::isfinite(hi)) {  // expand upwards until h > 0
      double step = 1, y = lo + step;
      for (int it = 0; it < 200; ++it) {
        h(y, f, df);
        if (f > 0) break;
        lo = y;
        step *= 2;
        y = lo + step;
      }
      hi = y;
    } else if (ok && !std::isfinite(lo)) {
      double step = 1, y = hi - step;
      for (int it = 0; it < 200; ++it) {
        h(y, f, df);
        if (f < 0) break;
        hi = y;
        step *= 2;
        y = hi - step;
      }
      lo = y;
    }
    if (ok) {
      double flo, fhi;
      h(lo, flo, df);
      h(hi, fhi, df);
      ok = std::isfinite(lo) && std::isfinite(hi) && flo < 0 && fhi > 0;
    }
    if (ok) {
      const double y = safe_root(h, lo, hi, 0.5 * (lo + hi), 4 * kEps, shifted ? 0.0 : 1.0);
      const double rho = base + y;
      const double a = shifted ? r0 * y : (rho - 1) * r0 + s0;
      const double q = rho * (rho - 1) + 1;
      const double s = a / q;
      const double tt = times_exp(s, rho);
      if (s >= 0 && std::isfinite(tt)) {
        // The root is the answer when it exists; a face candidate wins only if clearly closer
        // (distances differ below rounding near the faces).
        const double d = dist2_3(z0, s * rho, s, tt);
        if (d <= best_d * (1 + 1e-9)) best_d = d, best[0] = s * rho, best[1] = s, best[2] = tt;
      }
    }
  }
  z[0] = best[0] * scale;
  z[1] = best[1] * scale;
  z[2] = best[2] * scale;
  return moved;
}

// ---------------------------------------------------------------- power cone
namespace detail {

// (a + sqrt(a^2 + c)) / 2 for c >= 0 without cancellation.
inline double plus_root(double a, double c) {
  const double sq = std::sqrt(a * a + c);
  return a >= 0 ? 0.5 * (a + sq) : (c == 0 ? 0.0 : 0.5 * c / (sq - a));
}

}  // namespace detail

inline Status project_power(double* z, double alpha) {
  using namespace detail;
  const double scale = max_abs(z, 3);
  if (scale == 0) return unchanged;
  const double x0 = z[0] / scale, y0 = z[1] / scale, z0 = z[2] / scale, az = std::abs(z0);
  const double beta = 1 - alpha;
  if (x0 >= 0 && y0 >= 0 && std::pow(x0, alpha) * std::pow(y0, beta) >= az) return unchanged;
  if (x0 <= 0 && y0 <= 0 && std::pow(-x0 / alpha, alpha) * std::pow(-y0 / beta, beta) >= az) {
    z[0] = z[1] = z[2] = 0;
    return zero;
  }
  // z0 = 0: the projection is (x0+, y0+, 0); otherwise it lies on the curved boundary.
  double best[3] = {std::max(x0, 0.0), std::max(y0, 0.0), 0.0};
  if (az > 0) {
    // Phi(r) = x(r)^a y(r)^(1-a) - r decreases from >= 0 at r = 0 to < 0 at r = |z0|. x and y
    // depend on r (|z0| - r): the unknown is r when the root is in the lower half and q = |z0| - r
    // in the upper half, so that the small factor keeps full relative accuracy at either end.
    auto eval = [&](double r, double q, double& xr, double& yr, double& f, double& df) {
      const double cx = 4 * alpha * r * q, cy = 4 * beta * r * q;
      xr = plus_root(x0, cx);
      yr = plus_root(y0, cy);
      const double g = (xr > 0 && yr > 0) ? std::exp(alpha * std::log(xr) + beta * std::log(yr)) : 0.0;
      f = g - r;
      const double dx = alpha * (q - r) / std::sqrt(x0 * x0 + cx);
      const double dy = beta * (q - r) / std::sqrt(y0 * y0 + cy);
      df = (xr > 0 && yr > 0) ? g * (alpha * dx / xr + beta * dy / yr) - 1 : -1;  // d Phi / d r
    };
    double xr, yr, f, df;
    eval(0.5 * az, 0.5 * az, xr, yr, f, df);
    double r, q;
    if (f <= 0) {  // root in (0, az / 2]: unknown r, -Phi increasing
      r = safe_root(
          [&](double rr, double& ff, double& dd) {
            eval(rr, az - rr, xr, yr, ff, dd);
            ff = -ff, dd = -dd;
          },
          0.0, 0.5 * az, 0.25 * az, 4 * kEps, 0.0);
      q = az - r;
    } else {  // root in (az / 2, az): unknown q = az - r, Phi increasing in q
      q = safe_root([&](double qq, double& ff, double& dd) { eval(az - qq, qq, xr, yr, ff, dd); dd = -dd; }, 0.0,
                    0.5 * az, 0.25 * az, 4 * kEps, 0.0);
      r = az - q;
    }
    eval(r, q, xr, yr, f, df);
    const double zz = z0 > 0 ? r : -r;
    // With z0 != 0 the projection lies on the curved boundary: the root is the answer.
    best[0] = xr, best[1] = yr, best[2] = zz;
  }
  z[0] = best[0] * scale;
  z[1] = best[1] * scale;
  z[2] = best[2] * scale;
  return moved;
}

// ---------------------------------------------------------------- log cone (perspective of -sum log)
namespace detail {

// log x_i(rho) with x_i(rho) = (x0 + sqrt(x0^2 + 4 rho)) / 2, from log(rho), without underflow.
inline double log_prox(double x0, double log_rho) {
  const double rho = std::exp(log_rho);
  if (x0 > 0) return std::log(plus_root(x0, 4 * rho));
  if (x0 == 0) return 0.5 * log_rho;
  const double sq = std::sqrt(x0 * x0 + 4 * rho);
  return std::log(2.0) + log_rho - std::log(sq - x0);
}

struct LogInner {
  double mu = 0;      // multiplier t - t0
  double L = 0;       // sum_i log(x_i / v)
  double S1 = 0;      // sum_i 1 / (x_i sqrt(x0_i^2 + 4 rho))
  bool positive = false;
};

// For fixed v > 0: project (t0, x0) onto {(t, x): t >= -v sum log(x_i / v)} (one monotone equation
// in u = log mu, safeguarded Newton), returning mu and the sums the outer Newton step needs.
inline LogInner log_inner(double t0, const double* x0, index_t n, double log_v, double u_guess) {
  const double v = std::exp(log_v);
  LogInner out;
  bool all_pos = true;
  for (index_t i = 0; i < n; ++i) all_pos = all_pos && x0[i] > 0;
  if (all_pos) {
    double L0 = 0;
    for (index_t i = 0; i < n; ++i) L0 += std::log(x0[i]) - log_v;
    if (t0 + v * L0 >= 0) {  // (t0, v, x0) is feasible for this v: no multiplier
      out.mu = 0;
      out.L = L0;
      double s1 = 0;
      for (index_t i = 0; i < n; ++i) s1 += 1 / (x0[i] * x0[i]);
      out.S1 = s1;
      return out;
    }
  }
  auto G = [&](double u, double& g, double& dg, double& L, double& S1) {
    const double log_rho = u + log_v, rho = std::exp(log_rho);
    L = 0;
    S1 = 0;
    for (index_t i = 0; i < n; ++i) {
      const double xi = x0[i], sq = std::sqrt(xi * xi + 4 * rho);
      double lx, inv_x;
      if (xi > 0) {
        const double x = 0.5 * (xi + sq);
        lx = std::log(x);
        inv_x = 1 / x;
      } else {  // x = 2 rho / (sq - xi), in log space so that it survives underflow
        lx = (xi == 0 ? 0.5 * log_rho : std::log(2.0) + log_rho - std::log(sq - xi));
        inv_x = std::exp(-lx);
      }
      L += lx - log_v;
      S1 += inv_x / sq;
    }
    const double mu = std::exp(u);
    g = t0 + mu + v * L;
    dg = mu * (1 + v * v * S1);  // d g / d u
  };
  double g, dg, L, S1;
  double u = std::isfinite(u_guess) ? u_guess : 0.0;
  u = bracketed_root([&](double x, double& f, double& df) { G(x, f, df, L, S1); }, u, -3000.0, 3000.0);
  G(u, g, dg, L, S1);
  out.mu = std::exp(u);
  out.L = L;
  out.S1 = S1;
  out.positive = true;
  return out;
}

inline double log_dist2(double t0, double v0, const double* x0, double t, double v, const double* x, index_t n) {
  double d = (t - t0) * (t - t0) + (v - v0) * (v - v0);
  for (index_t i = 0; i < n; ++i) d += (x[i] - x0[i]) * (x[i] - x0[i]);
  return d;
}

}  // namespace detail

// Projection onto cl{(t, v, x): v > 0, x > 0, t >= -v sum log(x_i / v)} (epigraph convention).
inline Status project_log_epi(double& t, double& v, double* x, index_t n, Scratch& scratch) {
  using namespace detail;
  double scale = std::max(std::max(std::abs(t), std::abs(v)), max_abs(x, n));
  if (scale == 0) return unchanged;
  const double t0 = t / scale, v0 = v / scale;
  double* x0 = scratch.doubles(3 * static_cast<std::size_t>(n));
  double* xc = x0 + n;
  double* xf = x0 + 2 * n;
  for (index_t i = 0; i < n; ++i) x0[i] = x[i] / scale;
  bool all_pos = true, all_nonneg = true, all_neg = true, all_nonpos = true;
  for (index_t i = 0; i < n; ++i) {
    all_pos = all_pos && x0[i] > 0;
    all_nonneg = all_nonneg && x0[i] >= 0;
    all_neg = all_neg && x0[i] < 0;
    all_nonpos = all_nonpos && x0[i] <= 0;
  }
  // In the cone.
  if (v0 > 0 && all_pos) {
    double s = 0;
    for (index_t i = 0; i < n; ++i) s += std::log(x0[i] / v0);
    if (-v0 * s <= t0) return unchanged;
  }
  if (v0 == 0 && all_nonneg && t0 >= 0) return unchanged;
  // In the polar cone: -(t0, v0, x0) in K* = cl{(s, u, y): s > 0, y > 0, u >= -s sum log(y_i / s) - n s}.
  if (t0 < 0 && all_neg) {
    double s = 0;
    for (index_t i = 0; i < n; ++i) s += std::log(x0[i] / t0);
    if (v0 <= t0 * (-static_cast<double>(n) - s)) {
      t = v = 0;
      std::fill(x, x + n, 0.0);
      return zero;
    }
  }
  if (t0 == 0 && all_nonpos && v0 <= 0) {
    t = v = 0;
    std::fill(x, x + n, 0.0);
    return zero;
  }
  // The v = 0 face candidate; it is the projection when v0 <= 0 <= t0.
  double tf = std::max(t0, 0.0);
  for (index_t i = 0; i < n; ++i) xf[i] = std::max(x0[i], 0.0);
  double best_d = log_dist2(t0, v0, x0, tf, 0.0, xf, n);
  double bt = tf, bv = 0;
  const double* bx = xf;
  if (!(v0 <= 0 && t0 >= 0)) {
    // Outer problem: minimise over v the convex phi(v) = (v - v0)^2 / 2 + dist^2 to the v-slice / 2;
    // phi'(v) = v - v0 - mu (L - n) is increasing. Safeguarded Newton in w = log v.
    const double nd = static_cast<double>(n);
    double u_warm = 0;
    auto F = [&](double w, double& f, double& dfdw, LogInner& in) {
      in = log_inner(t0, x0, n, w, u_warm);
      if (in.positive) u_warm = std::log(in.mu);
      const double vv = std::exp(w), mu = in.mu;
      f = vv - v0 - mu * (in.L - nd);
      // Implicit derivative of mu(v) from G(mu, v) = t0 + mu + v L(mu v, v) = 0.
      double dmu = 0;
      if (in.positive) {
        const double Gmu = 1 + vv * vv * in.S1;
        const double Gv = in.L + mu * vv * in.S1 - nd;
        dmu = -Gv / Gmu;
      }
      const double dLdv = mu * in.S1 - nd / vv + vv * in.S1 * dmu;
      dfdw = vv * (1 - dmu * (in.L - nd) - mu * dLdv);
    };
    const double w_min = std::log(1e-300);
    const double w_max = std::log(std::sqrt(nd + 2.0) * 2.0 + 1.0);
    // phi' > 0 at w_max always (there v > ||z||); if phi' >= 0 down to w_min the root converges to
    // w_min and the v = 0 face candidate below wins. No end point needs an evaluation.
    LogInner in;
    double f, dfdw;
    {
      double w = v0 > 0 ? std::log(v0) : 0.0;
      w = std::min(std::max(w, w_min), w_max);
      u_warm = 0;
      double mu = 0;
      // Fast path: Newton on both KKT equations in (u, w) = (log mu, log v) from the inner solution
      // at v0; accepted only if it converges with small residuals, else the nested solve below.
      bool newton_ok = false;
      {
        const LogInner start = log_inner(t0, x0, n, w, 0.0);
        if (start.positive && std::isfinite(std::log(start.mu))) {
          double u = std::log(start.mu), ww = w;
          for (int it = 0; it < 40; ++it) {
            const double log_rho = u + ww, rho = std::exp(log_rho), m = std::exp(u), vv = std::exp(ww);
            double Lsum = 0, S1 = 0;
            for (index_t i = 0; i < n; ++i) {
              const double xi = x0[i], sq = std::sqrt(xi * xi + 4 * rho);
              double lx, inv_x;
              if (xi > 0) {
                const double xx = 0.5 * (xi + sq);
                lx = std::log(xx);
                inv_x = 1 / xx;
              } else {
                lx = (xi == 0 ? 0.5 * log_rho : std::log(2.0) + log_rho - std::log(sq - xi));
                inv_x = std::exp(-lx);
              }
              Lsum += lx - ww;
              S1 += inv_x / sq;
            }
            const double G = t0 + m + vv * Lsum, Fv = vv - v0 - m * (Lsum - nd);
            const double Gu = m + vv * rho * S1, Gw = vv * (Lsum + rho * S1 - nd);
            const double Fu = -m * (Lsum - nd + rho * S1), Fw = vv - m * (rho * S1 - nd);
            const double det = Gu * Fw - Gw * Fu;
            if (!(std::isfinite(det) && det != 0)) break;
            double du = (-G * Fw + Fv * Gw) / det, dw = (-Fv * Gu + G * Fu) / det;
            const double big = std::max(std::abs(du), std::abs(dw));
            if (!std::isfinite(big)) break;
            if (big > 2) du *= 2 / big, dw *= 2 / big;
            u += du;
            ww += dw;
            if (ww < w_min || ww > w_max) break;
            if (std::abs(du) <= 1e-14 * std::max(1.0, std::abs(u)) && std::abs(dw) <= 1e-14 * std::max(1.0, std::abs(ww))) {
              const double scale_g = std::abs(t0) + m + vv * std::abs(Lsum);
              const double scale_f = vv + std::abs(v0) + m * std::abs(Lsum - nd);
              newton_ok = std::abs(G) <= 1e-12 * scale_g && std::abs(Fv) <= 1e-12 * scale_f;
              break;
            }
          }
          if (newton_ok) w = ww, mu = std::exp(u);
        }
      }
      if (!newton_ok) {
        w = bracketed_root([&](double x, double& ff, double& dd) { F(x, ff, dd, in); }, w, w_min, w_max);
        F(w, f, dfdw, in);
        mu = in.mu;
      }
      const double vv = std::exp(w);
      // x from log space, clamped at the smallest positive double where it underflows (near the
      // x -> 0 face): log of the clamp exceeds the true log, so t below stays feasible.
      const double log_rho = std::log(mu) + w;
      for (index_t i = 0; i < n; ++i)
        xc[i] = std::max(mu > 0 ? std::exp(log_prox(x0[i], log_rho)) : x0[i],
                         std::numeric_limits<double>::denorm_min());
      // t from the constraint itself (feasible to rounding), which equals t0 + mu at the root.
      double tc = t0 + mu;
      if (mu == 0) {
        double s = 0;
        for (index_t i = 0; i < n; ++i) s += std::log(xc[i] / vv);
        tc = std::max(t0, -vv * s);
      }
      const double d = log_dist2(t0, v0, x0, tc, vv, xc, n);
      bool feasible = vv > 0, clamped = false;
      for (index_t i = 0; i < n; ++i) {
        feasible = feasible && xc[i] > 0;
        clamped = clamped || xc[i] == std::numeric_limits<double>::denorm_min();
      }
      if (feasible && d <= best_d * (1 + 1e-9)) best_d = d, bt = tc, bv = vv, bx = xc;
      // Underflow regime (x_i ~ v exp(-t / v) below the smallest double): keep t = t0 and the clamped
      // x, and shrink v until -v sum log(x_i / v) = t0 (increasing in v here): bisection in log v.
      if (clamped && t0 > 0 && vv > 0) {
        auto g = [&](double lv) {
          double sum = 0;
          for (index_t i = 0; i < n; ++i) sum += std::log(xc[i]) - lv;
          return -std::exp(lv) * sum;
        };
        double lo_w = std::log(1e-300), hi_w = w;
        if (g(hi_w) > t0 && g(lo_w) <= t0) {
          for (int it = 0; it < 200 && hi_w - lo_w > 4 * kEps * std::max(1.0, std::abs(hi_w)); ++it) {
            const double mid = 0.5 * (lo_w + hi_w);
            if (g(mid) <= t0)
              lo_w = mid;
            else
              hi_w = mid;
          }
          const double v3 = std::exp(lo_w);
          const double d3 = log_dist2(t0, v0, x0, t0, v3, xc, n);
          if (d3 < best_d) best_d = d3, bt = t0, bv = v3, bx = xc;
        }
      }
    }
  }
  t = bt * scale;
  v = bv * scale;
  for (index_t i = 0; i < n; ++i) x[i] = bx[i] * scale;
  return moved;
}

// ---------------------------------------------------------------- l1-norm cone
// Works on u = |x| sorted; signs restored at the end.
inline Status project_l1_cone(double& t, double* x, index_t n, Scratch& scratch) {
  double s1 = 0, mx = 0;
  for (index_t i = 0; i < n; ++i) s1 += std::abs(x[i]), mx = std::max(mx, std::abs(x[i]));
  if (s1 <= t) return unchanged;
  if (mx <= -t) {
    t = 0;
    std::fill(x, x + n, 0.0);
    return zero;
  }
  double* u = scratch.doubles(static_cast<std::size_t>(n));
  for (index_t i = 0; i < n; ++i) u[i] = std::abs(x[i]);
  std::sort(u, u + n, std::greater<double>());
  // Find j with u_j > mu_j >= u_{j+1}, mu_j = (S_j - t) / (j + 1); keep the least violation.
  double S = 0, best_mu = 0, best_v = detail::kInf;
  for (index_t j = 1; j <= n; ++j) {
    S += u[j - 1];
    const double mu = (S - t) / static_cast<double>(j + 1);
    const double next = j < n ? u[j] : 0.0;
    const double viol = std::max(0.0, mu - u[j - 1]) + std::max(0.0, next - mu);
    if (viol < best_v) {
      best_v = viol;
      best_mu = mu;
      if (viol == 0) break;
    }
  }
  const double mu = std::max(best_mu, 0.0);
  t += mu;
  for (index_t i = 0; i < n; ++i) {
    const double a = std::max(std::abs(x[i]) - mu, 0.0);
    x[i] = x[i] < 0 ? -a : a;
  }
  return moved;
}

// ---------------------------------------------------------------- linf-norm cone
inline Status project_linf_cone(double& t, double* x, index_t n, Scratch& scratch) {
  double s1 = 0, mx = 0;
  for (index_t i = 0; i < n; ++i) s1 += std::abs(x[i]), mx = std::max(mx, std::abs(x[i]));
  if (mx <= t) return unchanged;
  if (s1 <= -t) {
    t = 0;
    std::fill(x, x + n, 0.0);
    return zero;
  }
  double* u = scratch.doubles(static_cast<std::size_t>(n));
  for (index_t i = 0; i < n; ++i) u[i] = std::abs(x[i]);
  std::sort(u, u + n, std::greater<double>());
  // j entries clipped: tau = (t0 + S_j) / (j + 1) with u_{j+1} <= tau <= u_j.
  double S = 0, best_tau = 0, best_v = detail::kInf;
  for (index_t j = 1; j <= n; ++j) {
    S += u[j - 1];
    const double tau = (t + S) / static_cast<double>(j + 1);
    const double next = j < n ? u[j] : 0.0;
    const double viol = std::max(0.0, tau - u[j - 1]) + std::max(0.0, next - tau) + std::max(0.0, -tau);
    if (viol < best_v) {
      best_v = viol;
      best_tau = tau;
      if (viol == 0) break;
    }
  }
  const double tau = std::max(best_tau, 0.0);
  t = tau;
  for (index_t i = 0; i < n; ++i) {
    const double a = std::min(std::abs(x[i]), tau);
    x[i] = x[i] < 0 ? -a : a;
  }
  return moved;
}

// ---------------------------------------------------------------- sum of the k largest entries
// KKT structure on u = x sorted descending, eta = t - t0 > 0: the top a entries drop by eta, a
// tied block of m entries meets at tau, the rest stay, with
//   (k - a) eta + m tau = sum_{a < i <= a+m} u_i,   (a + 1) eta - (k - a) tau = S_a - t0.
// Every (a, m) is scanned with prefix sums and the one with the least violation of the
// consistency conditions wins: exactly tied values and polar points need no special care.
inline Status project_top_k_sum(double& t, double* x, index_t n, index_t k, Scratch& scratch) {
  const double t0 = t;
  if (k >= n) {  // half space sum(x) <= t
    double s = 0;
    for (index_t i = 0; i < n; ++i) s += x[i];
    if (s <= t0) return unchanged;
    const double delta = (s - t0) / static_cast<double>(n + 1);
    for (index_t i = 0; i < n; ++i) x[i] -= delta;
    t = t0 + delta;
    return moved;
  }
  index_t* idx = scratch.indices(static_cast<std::size_t>(n));
  double* buf = scratch.doubles(2 * static_cast<std::size_t>(n) + 1);
  double* u = buf;
  double* S = buf + n;  // S[j] = u_1 + ... + u_j, j = 0..n
  detail::order_descending(x, n, idx);
  for (index_t i = 0; i < n; ++i) u[i] = x[idx[i]];
  S[0] = 0;
  for (index_t i = 0; i < n; ++i) S[i + 1] = S[i] + u[i];
  if (S[k] <= t0) return unchanged;
  // Polar cone: 0 <= x <= -t0 and sum x = -k t0 (then the projection is 0).
  if (t0 < 0 && u[n - 1] >= 0 && u[0] <= -t0 && S[n] == -static_cast<double>(k) * t0) {
    t = 0;
    std::fill(x, x + n, 0.0);
    return zero;
  }
  double best_v = detail::kInf, best_eta = 0, best_tau = 0;
  index_t best_a = k, best_m = 0;
  // Stop at a structure consistent to rounding (the KKT point is unique, so any such structure
  // gives it to rounding).
  const double stop = 4 * detail::kEps * (std::max(std::abs(u[0]), std::abs(u[n - 1])) + std::abs(t0));
  auto consider = [&](index_t a, index_t m, double eta, double tau) {
    double viol = std::max(0.0, -eta);
    if (m == 0) {
      if (a < n) viol += std::max(0.0, u[a] - (u[a - 1] - eta));
    } else {
      if (a >= 1) viol += std::max(0.0, tau + eta - u[a - 1]);
      viol += std::max(0.0, u[a] - tau - eta);
      viol += std::max(0.0, tau - u[a + m - 1]);
      if (a + m < n) viol += std::max(0.0, u[a + m] - tau);
    }
    if (viol < best_v) {
      best_v = viol, best_eta = eta, best_tau = tau, best_a = a, best_m = m;
    }
    return viol <= stop;
  };
  // For each a (downwards from k, where the answer usually is) the block size m is the first m with
  // u_{a+m+1} <= tau(m): tau(m + 1) is a weighted mean of tau(m) and u_{a+m+1}, so that predicate is
  // monotone in m and a binary search finds it. O(k log n) in all; m - 1 and m + 1 are also tried.
  bool done = consider(k, 0, (S[k] - t0) / static_cast<double>(k + 1), 0.0);
  for (index_t a = k - 1; a >= 0 && !done; --a) {
    const double ka = static_cast<double>(k - a), C = S[a] - t0, a1 = static_cast<double>(a + 1);
    auto eta_tau = [&](index_t m, double& eta, double& tau) {
      const double B = S[a + m] - S[a], md = static_cast<double>(m);
      const double D = ka * ka + md * a1;
      eta = (ka * B + md * C) / D;
      tau = (a1 * B - ka * C) / D;
    };
    index_t lo = k - a, hi = n - a;  // predicate true at hi (nothing below the block)
    while (lo < hi) {
      const index_t mid = lo + (hi - lo) / 2;
      double eta, tau;
      eta_tau(mid, eta, tau);
      if (u[a + mid] <= tau)
        hi = mid;
      else
        lo = mid + 1;
    }
    for (index_t m = std::max(k - a, lo - 1); m <= std::min(n - a, lo + 1) && !done; ++m) {
      double eta, tau;
      eta_tau(m, eta, tau);
      done = consider(a, m, eta, tau);
    }
  }
  const double eta = std::max(best_eta, 0.0);
  for (index_t i = 0; i < n; ++i) {
    double val;
    if (i < best_a)
      val = u[i] - eta;
    else if (i < best_a + best_m)
      val = best_tau;
    else
      val = u[i];
    x[idx[i]] = val;
  }
  t = t0 + eta;
  return moved;
}

// ---------------------------------------------------------------- balls and the simplex
// {x: ||x||_1 <= r}
inline Status project_l1_ball(double* x, index_t n, double r, Scratch& scratch) {
  double s1 = 0;
  for (index_t i = 0; i < n; ++i) s1 += std::abs(x[i]);
  if (s1 <= r) return unchanged;
  if (r == 0) {
    std::fill(x, x + n, 0.0);
    return zero;
  }
  double* u = scratch.doubles(static_cast<std::size_t>(n));
  for (index_t i = 0; i < n; ++i) u[i] = std::abs(x[i]);
  std::sort(u, u + n, std::greater<double>());
  double S = 0, best_theta = 0, best_v = detail::kInf;
  for (index_t j = 1; j <= n; ++j) {
    S += u[j - 1];
    const double theta = (S - r) / static_cast<double>(j);
    const double next = j < n ? u[j] : 0.0;
    const double viol = std::max(0.0, theta - u[j - 1]) + std::max(0.0, next - theta);
    if (viol < best_v) {
      best_v = viol;
      best_theta = theta;
      if (viol == 0) break;
    }
  }
  const double theta = std::max(best_theta, 0.0);
  for (index_t i = 0; i < n; ++i) {
    const double a = std::max(std::abs(x[i]) - theta, 0.0);
    x[i] = x[i] < 0 ? -a : a;
  }
  return moved;
}

// {x: ||x||_inf <= r}
inline Status project_linf_ball(double* x, index_t n, double r) {
  bool changed = false;
  for (index_t i = 0; i < n; ++i) {
    if (std::abs(x[i]) > r) {
      x[i] = x[i] < 0 ? -r : r;
      changed = true;
    }
  }
  return changed ? moved : unchanged;
}

// {x >= 0, sum x = r}
inline Status project_simplex(double* x, index_t n, double r, Scratch& scratch) {
  double* u = scratch.doubles(static_cast<std::size_t>(n));
  std::copy(x, x + n, u);
  std::sort(u, u + n, std::greater<double>());
  double S = 0, best_theta = 0, best_v = detail::kInf;
  for (index_t j = 1; j <= n; ++j) {
    S += u[j - 1];
    const double theta = (S - r) / static_cast<double>(j);
    const double viol = std::max(0.0, theta - u[j - 1]) + (j < n ? std::max(0.0, u[j] - theta) : 0.0);
    if (viol < best_v) {
      best_v = viol;
      best_theta = theta;
      if (viol == 0) break;
    }
  }
  bool changed = false;
  for (index_t i = 0; i < n; ++i) {
    const double y = std::max(x[i] - best_theta, 0.0);
    changed = changed || y != x[i];
    x[i] = y;
  }
  return changed ? moved : unchanged;
}

}  // namespace cones
}  // namespace randnla
