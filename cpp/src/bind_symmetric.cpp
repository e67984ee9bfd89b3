// Bindings of randnla/symmetric.hpp (used by _validate.check_symmetric and the dpp area).
#include "bind_common.hpp"
#include "randnla/symmetric.hpp"

namespace py = pybind11;
using namespace randnla;

namespace {

template <class T>
void register_for(py::module_& m, const std::string& suffix) {
  // a: C-contiguous (..., n, n) given as (count, n, n); returns (max |a - a^T|, max |a|) per matrix.
  m.def(("asymmetry_" + suffix).c_str(), [](py::array_t<T, py::array::c_style> a, int n_threads) {
    if (a.ndim() != 3 || a.shape(1) != a.shape(2)) throw std::invalid_argument("a must have shape (count, n, n)");
    const index_t count = a.shape(0), n = a.shape(1);
    py::array_t<double> diff(count), big(count);
    double* dp = diff.mutable_data();
    double* bp = big.mutable_data();
    const T* data = a.data();
    {
      py::gil_scoped_release release;
      asymmetry_batch(data, count, n, dp, bp, n_threads);
    }
    return py::make_tuple(diff, big);
  });
  // a: Fortran-ordered n x n with a valid lower triangle; the upper triangle is overwritten in place.
  m.def(("fill_upper_from_lower_" + suffix).c_str(), [](py::array a) {
    if (!py::isinstance<py::array_t<T>>(a) || a.ndim() != 2 || a.shape(0) != a.shape(1) ||
        !(a.flags() & py::array::f_style) || !a.writeable())
      throw std::invalid_argument("a must be a writeable Fortran-ordered square matrix of " +
                                  std::string(dtype_name<T>()));
    const index_t n = a.shape(0);
    T* data = static_cast<T*>(a.mutable_data());
    py::gil_scoped_release release;
    fill_upper_from_lower(data, n, n);
  });
}

}  // namespace

void register_symmetric(py::module_& m) {
  register_for<double>(m, "float64");
  register_for<float>(m, "float32");
}
