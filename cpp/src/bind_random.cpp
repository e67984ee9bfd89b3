// Bindings for the Philox streams (randnla/random.hpp).
#include "bind_common.hpp"
#include "randnla/random.hpp"

namespace py = pybind11;
using namespace randnla;
using bind::carray;

namespace {

// Fills a C-contiguous array the caller allocated (the Python layer checks dtype and layout).
template <class T>
void fill_into(Distribution distribution, carray<u64> key, carray<u64> counter, u64 offset, py::array_t<T> out,
               int n_threads) {
  if (!(out.flags() & py::array::c_style) || !out.writeable())
    throw std::invalid_argument("out must be a writeable C-contiguous array");
  const philox::Key k = bind::key_from(key);
  const philox::Counter c = bind::counter_from(counter);
  T* data = out.mutable_data();
  const py::ssize_t n = out.size();
  py::gil_scoped_release release;
  fill_random<T>(distribution, k, c, offset, data, n, n_threads);
}

}  // namespace

void register_random(py::module_& m) {
  py::enum_<Distribution>(m, "Distribution").value("uniform", Distribution::uniform).value("normal", Distribution::normal);
  m.def("philox_fill_float64", &fill_into<double>, py::arg("distribution"), py::arg("key"), py::arg("counter"),
        py::arg("offset"), py::arg("out").noconvert(), py::arg("n_threads"));
  m.def("philox_fill_float32", &fill_into<float>, py::arg("distribution"), py::arg("key"), py::arg("counter"),
        py::arg("offset"), py::arg("out").noconvert(), py::arg("n_threads"));
  m.def(
      "philox_raw",
      [](carray<u64> key, carray<u64> counter, u64 offset, py::ssize_t n, int n_threads) {
        if (n < 0) throw std::invalid_argument("n must be non-negative");
        const philox::Key k = bind::key_from(key);
        const philox::Counter c = bind::counter_from(counter);
        py::array_t<u64> out(n);
        u64* data = out.mutable_data();
        {
          py::gil_scoped_release release;
          fill_raw(k, c, offset, data, n, n_threads);
        }
        return out;
      },
      py::arg("key"), py::arg("counter"), py::arg("offset"), py::arg("n"), py::arg("n_threads"));
}
