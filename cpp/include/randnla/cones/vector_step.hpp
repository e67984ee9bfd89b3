// randnla/cones/vector_step.hpp: one dispatcher over the vector cones, with dual cones through
// Moreau (P_{K*}(z) = z + P_K(-z)), used by the batched vector projections and by the matrix
// cones (which apply it to eigenvalues or singular values).
#pragma once

#include <vector>

#include "randnla/cones/vector_cones.hpp"

namespace randnla {
namespace cones {

enum class Kind : int {
  nonneg = 0,
  soc = 1,
  exp = 2,        // x holds (r, s, t)
  power = 3,      // x holds (x, y, z); param = alpha
  log_epi = 4,    // (t, v, x), epigraph convention
  l1 = 5,         // (t, x)
  linf = 6,       // (t, x)
  top_k = 7,      // (t, x); param = k
  l1_ball = 8,    // x; param = radius
  linf_ball = 9,  // x; param = radius
  simplex = 10,   // x; param = total
};

inline bool kind_is_valid(int kind) { return kind >= 0 && kind <= 10; }

struct StepScratch {
  Scratch inner;
  std::vector<double> keep;
};

// Projects (t, v, x[0..n)) in place onto the cone `kind` (or its dual).
inline Status apply_step(Kind kind, double param, bool dual, double& t, double& v, double* x, index_t n,
                         StepScratch& s) {
  auto primal = [&](double& tt, double& vv, double* xx) -> Status {
    switch (kind) {
      case Kind::nonneg: return project_nonneg(xx, n);
      case Kind::soc: return project_soc(tt, xx, n);
      case Kind::exp: return project_exp(xx);
      case Kind::power: return project_power(xx, param);
      case Kind::log_epi: return project_log_epi(tt, vv, xx, n, s.inner);
      case Kind::l1: return project_l1_cone(tt, xx, n, s.inner);
      case Kind::linf: return project_linf_cone(tt, xx, n, s.inner);
      case Kind::top_k: return project_top_k_sum(tt, xx, n, static_cast<index_t>(param), s.inner);
      case Kind::l1_ball: return project_l1_ball(xx, n, param, s.inner);
      case Kind::linf_ball: return project_linf_ball(xx, n, param);
      case Kind::simplex: return project_simplex(xx, n, param, s.inner);
    }
    return unchanged;
  };
  if (!dual) return primal(t, v, x);
  // P_{K*}(z) = z + P_K(-z)
  if (s.keep.size() < static_cast<std::size_t>(n)) s.keep.resize(static_cast<std::size_t>(n));
  double* z = s.keep.data();
  for (index_t i = 0; i < n; ++i) z[i] = x[i], x[i] = -x[i];
  const double t0 = t, v0 = v;
  t = -t, v = -v;
  const Status st = primal(t, v, x);
  if (st == unchanged) {  // -z in K: z is in the polar of K*, so the projection is 0
    t = v = 0;
    for (index_t i = 0; i < n; ++i) x[i] = 0;
    return zero;
  }
  if (st == zero) {  // -z in the polar of K: z in K*
    t = t0, v = v0;
    for (index_t i = 0; i < n; ++i) x[i] = z[i];
    return unchanged;
  }
  t += t0, v += v0;
  for (index_t i = 0; i < n; ++i) x[i] += z[i];
  return moved;
}

}  // namespace cones
}  // namespace randnla
