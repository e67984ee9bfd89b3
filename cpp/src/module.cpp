// The Python extension randnla._core: loads the LAPACK table from SciPy, then lets each area
// register its bindings.
#include <pybind11/pybind11.h>

#include "randnla/parallel.hpp"

namespace py = pybind11;

void load_scipy_lapack(py::module_& m);
void register_random(py::module_& m);
void register_symmetric(py::module_& m);
void register_sketch(py::module_& m);
void register_jacobi(py::module_& m);
void register_dpp(py::module_& m);
void register_cones(py::module_& m);
void register_ot(py::module_& m);

PYBIND11_MODULE(_core, m) {
  m.doc() = "randnla C++ core (private: use the public modules)";
  load_scipy_lapack(m);
  m.attr("have_openmp") = randnla::have_openmp();
  m.def("max_threads", [] { return randnla::resolve_threads(0); }, "Threads used when n_threads=None.");
  register_random(m);
  register_symmetric(m);
  register_sketch(m);
  register_jacobi(m);
  register_dpp(m);
  register_cones(m);
  register_ot(m);
}
