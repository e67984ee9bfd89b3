// Bindings for the Jacobi eigen/singular value solvers (randnla/jacobi/*.hpp).
#include "bind_common.hpp"
#include "randnla/jacobi/eigh.hpp"
#include "randnla/jacobi/svd.hpp"

namespace py = pybind11;
using namespace randnla;
using bind::carray;

namespace {

using KeyArray = py::array_t<u64, py::array::c_style | py::array::forcecast>;

jacobi::Pivot pivot_from(int pivot) {
  if (pivot < 0 || pivot > 2) throw std::invalid_argument("pivot must be 0 (cyclic), 1 (round_robin) or 2 (random)");
  return static_cast<jacobi::Pivot>(pivot);
}

struct ReportArrays {
  py::array_t<int> sweeps;
  py::array_t<i64> rotations;
  py::array_t<bool> converged;
  py::array_t<double> off;
  explicit ReportArrays(py::ssize_t batch) : sweeps(batch), rotations(batch), converged(batch), off(batch) {}
  jacobi::EighReport report() {
    jacobi::EighReport r;
    r.sweeps = sweeps.mutable_data();
    r.rotations = rotations.mutable_data();
    r.converged = reinterpret_cast<unsigned char*>(converged.mutable_data());
    r.off = off.mutable_data();
    return r;
  }
  py::tuple info() const { return py::make_tuple(converged, sweeps, rotations, off); }
};

// a: (batch, n, n). Returns (w, v or None, (converged, sweeps, rotations, off)).
template <class T>
py::tuple eigh(carray<T> a, int pivot, double tol, int max_sweeps, bool want_vectors, KeyArray key, int n_threads,
               bool spd, double symmetry_rtol, int blocked_min_n, int block) {
  if (a.ndim() != 3 || a.shape(1) != a.shape(2)) throw std::invalid_argument("A must have shape (batch, n, n)");
  const py::ssize_t batch = a.shape(0), n = a.shape(1);
  jacobi::EighOptions options;
  options.pivot = pivot_from(pivot);
  options.tol = tol;
  options.max_sweeps = max_sweeps;
  options.want_vectors = want_vectors;
  options.key = bind::key_from(key);
  options.n_threads = n_threads;
  options.symmetry_rtol = symmetry_rtol;
  options.blocked_min_n = blocked_min_n;
  options.block = block;
  py::array_t<T> w(std::vector<py::ssize_t>{batch, n});
  py::object v = py::none();
  T* v_data = nullptr;
  if (want_vectors) {
    py::array_t<T> vectors(std::vector<py::ssize_t>{batch, n, n});
    v_data = vectors.mutable_data();
    v = vectors;
  }
  ReportArrays report(batch);
  jacobi::EighReport r = report.report();
  const T* in = a.data();
  T* w_data = w.mutable_data();
  {
    py::gil_scoped_release release;
    if (spd) {
      jacobi::eigh_spd_batch<T>(in, batch, static_cast<int>(n), w_data, v_data, options, r);
    } else {
      jacobi::eigh_batch<T>(in, batch, static_cast<int>(n), w_data, v_data, options, r);
    }
  }
  return py::make_tuple(w, v, report.info());
}

// a: (batch, m, n). Returns (s, u or None, vh or None, info).
template <class T>
py::tuple svd(carray<T> a, int pivot, double tol, int max_sweeps, bool compute_uv, bool full_matrices, KeyArray key,
              int n_threads) {
  if (a.ndim() != 3) throw std::invalid_argument("A must have shape (batch, m, n)");
  const py::ssize_t batch = a.shape(0), m = a.shape(1), n = a.shape(2);
  const py::ssize_t k = std::min(m, n);
  jacobi::SvdOptions options;
  options.pivot = pivot_from(pivot);
  options.tol = tol;
  options.max_sweeps = max_sweeps;
  options.compute_uv = compute_uv;
  options.full_matrices = full_matrices;
  options.key = bind::key_from(key);
  options.n_threads = n_threads;
  py::array_t<T> s(std::vector<py::ssize_t>{batch, k});
  py::object u = py::none(), vh = py::none();
  T* u_data = nullptr;
  T* vh_data = nullptr;
  if (compute_uv) {
    py::array_t<T> u_array(std::vector<py::ssize_t>{batch, m, full_matrices ? m : k});
    py::array_t<T> vh_array(std::vector<py::ssize_t>{batch, full_matrices ? n : k, n});
    u_data = u_array.mutable_data();
    vh_data = vh_array.mutable_data();
    u = u_array;
    vh = vh_array;
  }
  ReportArrays report(batch);
  jacobi::EighReport r = report.report();
  const T* in = a.data();
  T* s_data = s.mutable_data();
  {
    py::gil_scoped_release release;
    jacobi::svd_batch<T>(in, batch, static_cast<int>(m), static_cast<int>(n), s_data, u_data, vh_data, options, r);
  }
  return py::make_tuple(s, u, vh, report.info());
}

}  // namespace

void register_jacobi(py::module_& m) {
  m.def("jacobi_eigh_float64", &eigh<double>, py::arg("a"), py::arg("pivot"), py::arg("tol"), py::arg("max_sweeps"),
        py::arg("want_vectors"), py::arg("key"), py::arg("n_threads"), py::arg("spd") = false, py::arg("symmetry_rtol") = -1.0,
        py::arg("blocked_min_n") = -1, py::arg("block") = 0);
  m.def("jacobi_eigh_float32", &eigh<float>, py::arg("a"), py::arg("pivot"), py::arg("tol"), py::arg("max_sweeps"),
        py::arg("want_vectors"), py::arg("key"), py::arg("n_threads"), py::arg("spd") = false, py::arg("symmetry_rtol") = -1.0,
        py::arg("blocked_min_n") = -1, py::arg("block") = 0);
  m.def("jacobi_svd_float64", &svd<double>, py::arg("a"), py::arg("pivot"), py::arg("tol"), py::arg("max_sweeps"),
        py::arg("compute_uv"), py::arg("full_matrices"), py::arg("key"), py::arg("n_threads"));
  m.def("jacobi_svd_float32", &svd<float>, py::arg("a"), py::arg("pivot"), py::arg("tol"), py::arg("max_sweeps"),
        py::arg("compute_uv"), py::arg("full_matrices"), py::arg("key"), py::arg("n_threads"));
}
