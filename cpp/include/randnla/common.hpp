// randnla/common.hpp: host-side helpers shared by every area: argument checks that throw
// (pybind11 turns std::invalid_argument into ValueError), strided views, dtype helpers.
#pragma once

#include <cmath>
#include <cstddef>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "randnla/config.hpp"

namespace randnla {

using index_t = std::ptrdiff_t;

namespace detail {
template <class... Parts>
[[noreturn]] inline void throw_invalid(const char* file, int line, const Parts&... parts) {
  std::ostringstream message;
  (message << ... << parts);
  (void)file;
  (void)line;
  throw std::invalid_argument(message.str());
}
}  // namespace detail

// RANDNLA_REQUIRE(cond, "k must be positive, got ", k): throws std::invalid_argument.
// Python-facing validation lives in _validate.py; this is the last line of defence so that no
// input can crash the interpreter even when the core is called directly.
#define RANDNLA_REQUIRE(cond, ...)                                             \
  do {                                                                         \
    if (!(cond)) ::randnla::detail::throw_invalid(__FILE__, __LINE__, __VA_ARGS__); \
  } while (0)

// A non-owning view of a 2-D array with element strides (not byte strides).
template <class T>
struct MatrixView {
  T* data = nullptr;
  index_t rows = 0;
  index_t cols = 0;
  index_t row_stride = 0;  // elements between (i, j) and (i + 1, j)
  index_t col_stride = 1;  // elements between (i, j) and (i, j + 1)

  T& operator()(index_t i, index_t j) const { return data[i * row_stride + j * col_stride]; }
  T* row(index_t i) const { return data + i * row_stride; }
  bool is_c_contiguous() const { return col_stride == 1 && row_stride == cols; }
};

template <class T>
MatrixView<T> c_contiguous_view(T* data, index_t rows, index_t cols) {
  return MatrixView<T>{data, rows, cols, cols, 1};
}

template <class T>
struct VectorView {
  T* data = nullptr;
  index_t size = 0;
  index_t stride = 1;
  T& operator()(index_t i) const { return data[i * stride]; }
};

// Machine epsilon of the working type, as a double.
template <class T>
constexpr double epsilon_of() {
  return static_cast<double>(std::numeric_limits<T>::epsilon());
}

template <class T>
constexpr const char* dtype_name() {
  if constexpr (std::is_same_v<T, float>) return "float32";
  if constexpr (std::is_same_v<T, double>) return "float64";
  return "unknown";
}

template <class T>
inline bool all_finite(const T* data, index_t n) {
  for (index_t i = 0; i < n; ++i)
    if (!std::isfinite(data[i])) return false;
  return true;
}

}  // namespace randnla
