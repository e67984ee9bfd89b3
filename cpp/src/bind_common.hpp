// Helpers shared by the bind_<area>.cpp files: array conversion and argument plumbing only.
// Decisions about algorithms never live here.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <array>
#include <string>

#include "randnla/philox.hpp"

namespace randnla {
namespace bind {

namespace py = pybind11;

// A C-contiguous array of T (pybind11 converts or copies as needed; the Python layer has already
// validated shapes and dtypes, so a copy here only happens for non-contiguous input).
template <class T>
using carray = py::array_t<T, py::array::c_style | py::array::forcecast>;

// A Philox key arrives from _rng.py as a uint64 array of length 2.
inline philox::Key key_from(const py::array_t<u64, py::array::c_style | py::array::forcecast>& key) {
  if (key.ndim() != 1 || key.shape(0) != 2) throw std::invalid_argument("key must be a uint64 array of length 2");
  philox::Key k;
  k.v[0] = key.at(0);
  k.v[1] = key.at(1);
  return k;
}

inline philox::Counter counter_from(const py::array_t<u64, py::array::c_style | py::array::forcecast>& counter) {
  if (counter.ndim() != 1 || counter.shape(0) != 4)
    throw std::invalid_argument("counter must be a uint64 array of length 4");
  philox::Counter c;
  for (int i = 0; i < 4; ++i) c.v[i] = counter.at(i);
  return c;
}

template <class T>
py::array_t<T> empty_array(std::initializer_list<py::ssize_t> shape) {
  return py::array_t<T>(std::vector<py::ssize_t>(shape));
}

}  // namespace bind
}  // namespace randnla
