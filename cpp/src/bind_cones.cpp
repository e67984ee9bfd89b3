// Bindings for the cone projections (randnla/cones/*.hpp): array conversion, shape checks,
// GIL release. The Python layer validates and broadcasts; this is the last line of defence.
#include <cmath>

#include "bind_common.hpp"
#include "randnla/cones/matrix_cones.hpp"

namespace py = pybind11;
using namespace randnla;
using bind::carray;

namespace {

cones::Kind kind_from(int kind) {
  if (!cones::kind_is_valid(kind)) throw std::invalid_argument("unknown cone kind " + std::to_string(kind));
  return static_cast<cones::Kind>(kind);
}

// t, v: (batch,), x: (batch, n) float64; returns new arrays (t, v, x).
py::tuple vector_cone(int kind, carray<double> t, carray<double> v, carray<double> x, double param, bool dual,
                      int n_threads) {
  if (x.ndim() != 2) throw std::invalid_argument("x must be 2-dimensional (batch, n)");
  const index_t batch = x.shape(0), n = x.shape(1);
  if (t.ndim() != 1 || t.shape(0) != batch || v.ndim() != 1 || v.shape(0) != batch)
    throw std::invalid_argument("t and v must have shape (batch,)");
  const cones::Kind k = kind_from(kind);
  if ((k == cones::Kind::exp || k == cones::Kind::power) && n != 3)
    throw std::invalid_argument("the exponential and power cones need points of length 3");
  if (k == cones::Kind::power && !(param > 0 && param < 1)) throw std::invalid_argument("alpha must be in (0, 1)");
  if (k == cones::Kind::top_k && !(param >= 1 && param <= static_cast<double>(std::max<index_t>(n, 1))))
    throw std::invalid_argument("k must be in [1, n]");
  py::array_t<double> to(batch), vo(batch), xo(std::vector<py::ssize_t>{batch, n});
  std::copy(t.data(), t.data() + batch, to.mutable_data());
  std::copy(v.data(), v.data() + batch, vo.mutable_data());
  std::copy(x.data(), x.data() + batch * n, xo.mutable_data());
  double* tp = to.mutable_data();
  double* vp = vo.mutable_data();
  double* xp = xo.mutable_data();
  {
    py::gil_scoped_release release;
    cones::project_vector_batch(tp, vp, xp, batch, n, k, param, dual, n_threads);
  }
  return py::make_tuple(to, vo, xo);
}

template <class T>
py::tuple sym_cone(int kind, carray<T> X, carray<double> t, carray<double> v, double param, bool dual, int n_threads) {
  if (X.ndim() != 3 || X.shape(1) != X.shape(2)) throw std::invalid_argument("X must have shape (batch, n, n)");
  const index_t batch = X.shape(0), n = X.shape(1);
  if (t.ndim() != 1 || t.shape(0) != batch || v.ndim() != 1 || v.shape(0) != batch)
    throw std::invalid_argument("t and v must have shape (batch,)");
  if (!all_finite(t.data(), batch) || !all_finite(v.data(), batch))
    throw std::invalid_argument("t and v must be finite");
  const cones::Kind k = kind_from(kind);
  if (k == cones::Kind::top_k && !(param >= 1 && param <= static_cast<double>(n)))
    throw std::invalid_argument("k must be in [1, n]");
  py::array_t<T> P(std::vector<py::ssize_t>{batch, n, n});
  py::array_t<double> to(batch), vo(batch);
  std::copy(t.data(), t.data() + batch, to.mutable_data());
  std::copy(v.data(), v.data() + batch, vo.mutable_data());
  const T* xp = X.data();
  T* pp = P.mutable_data();
  double* tp = to.mutable_data();
  double* vp = vo.mutable_data();
  {
    py::gil_scoped_release release;
    cones::project_sym_batch<T>(xp, pp, tp, vp, batch, n, k, param, dual, n_threads);
  }
  return py::make_tuple(P, to, vo);
}

template <class T>
py::tuple svd_cone(int kind, carray<T> X, carray<double> t, double param, bool dual, int n_threads) {
  if (X.ndim() != 3) throw std::invalid_argument("X must have shape (batch, m, n)");
  const index_t batch = X.shape(0), rows = X.shape(1), cols = X.shape(2);
  if (t.ndim() != 1 || t.shape(0) != batch) throw std::invalid_argument("t must have shape (batch,)");
  if (!all_finite(t.data(), batch)) throw std::invalid_argument("t must be finite");
  const cones::Kind k = kind_from(kind);
  py::array_t<T> P(std::vector<py::ssize_t>{batch, rows, cols});
  py::array_t<double> to(batch);
  std::copy(t.data(), t.data() + batch, to.mutable_data());
  const T* xp = X.data();
  T* pp = P.mutable_data();
  double* tp = to.mutable_data();
  {
    py::gil_scoped_release release;
    cones::project_svd_batch<T>(xp, pp, tp, batch, rows, cols, k, param, dual, n_threads);
  }
  return py::make_tuple(P, to);
}

// One matrix (the inner loop of a solver): X of shape (n, n) or (m, n), scalars in and 0-d arrays
// of X's dtype out, so the Python side adds no array handling of its own.
template <class T>
py::array_t<T> scalar_array(double x) {
  py::array_t<T> out(std::vector<py::ssize_t>{});
  *out.mutable_data() = static_cast<T>(x);
  return out;
}

template <class T>
py::tuple sym_cone_one(int kind, carray<T> X, double t, double v, double param, bool dual, int n_threads) {
  if (X.ndim() != 2 || X.shape(0) != X.shape(1)) throw std::invalid_argument("X must be square (shape (n, n))");
  if (!std::isfinite(t) || !std::isfinite(v)) throw std::invalid_argument("t and v must be finite");
  const index_t n = X.shape(0);
  const cones::Kind k = kind_from(kind);
  if (k == cones::Kind::top_k && !(param >= 1 && param <= static_cast<double>(n)))
    throw std::invalid_argument("k must be in [1, n]");
  py::array_t<T> P(std::vector<py::ssize_t>{n, n});
  const T* xp = X.data();
  T* pp = P.mutable_data();
  {
    py::gil_scoped_release release;
    cones::project_sym_batch<T>(xp, pp, &t, &v, 1, n, k, param, dual, n_threads);
  }
  return py::make_tuple(P, scalar_array<T>(t), scalar_array<T>(v));
}

template <class T>
py::tuple svd_cone_one(int kind, carray<T> X, double t, double param, int n_threads) {
  if (X.ndim() != 2) throw std::invalid_argument("X must have shape (m, n)");
  if (!std::isfinite(t)) throw std::invalid_argument("t must be finite");
  const index_t rows = X.shape(0), cols = X.shape(1);
  const cones::Kind k = kind_from(kind);
  py::array_t<T> P(std::vector<py::ssize_t>{rows, cols});
  const T* xp = X.data();
  T* pp = P.mutable_data();
  {
    py::gil_scoped_release release;
    cones::project_svd_batch<T>(xp, pp, &t, 1, rows, cols, k, param, false, n_threads);
  }
  return py::make_tuple(P, scalar_array<T>(t));
}

}  // namespace

void register_cones(py::module_& m) {
  py::module_ c = m.def_submodule("cones", "private: cone projection kernels");
  c.def("vector_cone", &vector_cone, py::arg("kind"), py::arg("t"), py::arg("v"), py::arg("x"), py::arg("param"),
        py::arg("dual"), py::arg("n_threads"));
  c.def("sym_cone_float64", &sym_cone<double>);
  c.def("sym_cone_float32", &sym_cone<float>);
  c.def("svd_cone_float64", &svd_cone<double>);
  c.def("svd_cone_float32", &svd_cone<float>);
  c.def("sym_cone_one_float64", &sym_cone_one<double>);
  c.def("sym_cone_one_float32", &sym_cone_one<float>);
  c.def("svd_cone_one_float64", &svd_cone_one<double>);
  c.def("svd_cone_one_float32", &svd_cone_one<float>);
  c.def("tridiagonal_ql_eigh", [](carray<double> A) {
    if (A.ndim() != 2 || A.shape(0) != A.shape(1)) throw std::invalid_argument("A must be square");
    const index_t n = A.shape(0);
    py::array_t<double> w(n), V(std::vector<py::ssize_t>{n, n});
    std::copy(A.data(), A.data() + n * n, V.mutable_data());
    const bool ok = cones::tridiagonal_ql_eigh(n, V.mutable_data(), w.mutable_data());
    return py::make_tuple(w, V, ok);
  });
  c.def("onesided_jacobi_svd", [](carray<double> A) {
    if (A.ndim() != 2 || A.shape(0) < A.shape(1)) throw std::invalid_argument("A must be m x n with m >= n");
    const index_t m = A.shape(0), n = A.shape(1);
    py::array_t<double> W(std::vector<py::ssize_t>{m, n}), s(n), V(std::vector<py::ssize_t>{n, n});
    std::copy(A.data(), A.data() + m * n, W.mutable_data());
    const bool ok = cones::onesided_jacobi_svd(m, n, W.mutable_data(), s.mutable_data(), V.mutable_data());
    return py::make_tuple(W, s, V, ok);
  });
  c.def("jacobi_max_n", [] { return cones::kJacobiMaxN; });
}
