// Bindings for randnla.sketch (randnla/sketch/*.hpp): array conversion, shape checks, GIL release.
#include <cstdint>
#include <string>
#include <vector>

#include "bind_common.hpp"
#include "randnla/sketch/coordinated.hpp"
#include "randnla/sketch/normal_pass.hpp"
#include "randnla/sketch/operators.hpp"

namespace py = pybind11;
using namespace randnla;
using bind::carray;

namespace {

using key_array = py::array_t<u64, py::array::c_style | py::array::forcecast>;

// A 2-D array of T, C- or Fortran-contiguous (no copy when either), with element strides.
template <class T>
struct Matrix2D {
  py::array_t<T> array;
  const T* data = nullptr;
  index_t rows = 0, cols = 0, rs = 0, cs = 0;
};

template <class T>
Matrix2D<T> as_matrix(const py::array& input, const char* name) {
  Matrix2D<T> m;
  if (input.ndim() != 2) throw std::invalid_argument(std::string(name) + " must be 2-dimensional");
  if (!py::isinstance<py::array_t<T>>(input))
    throw std::invalid_argument(std::string(name) + " has the wrong dtype for this routine");
  const bool c = input.flags() & py::array::c_style, f = input.flags() & py::array::f_style;
  if (c || f) {
    m.array = py::reinterpret_borrow<py::array_t<T>>(input);
  } else {
    m.array = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(input);
  }
  m.data = m.array.data();
  m.rows = m.array.shape(0);
  m.cols = m.array.shape(1);
  const bool c_layout = m.array.flags() & py::array::c_style;
  // Element strides; for degenerate shapes NumPy's strides may be arbitrary, so derive them.
  if (c_layout) {
    m.rs = m.cols;
    m.cs = 1;
  } else {
    m.rs = 1;
    m.cs = m.rows;
  }
  if (m.rows * m.cols >= (index_t(1) << 31) && (m.rs > INT32_MAX || m.cs > INT32_MAX))
    throw std::invalid_argument(std::string(name) + " is too large for 32-bit BLAS leading dimensions");
  return m;
}

void check_blas_dims(index_t a, index_t b, index_t c) {
  if (a > INT32_MAX || b > INT32_MAX || c > INT32_MAX)
    throw std::invalid_argument("dimensions exceed the 32-bit BLAS interface");
}

sketch::DenseKind dense_kind(int kind) {
  if (kind == 0) return sketch::DenseKind::gaussian;
  if (kind == 1) return sketch::DenseKind::rademacher;
  throw std::invalid_argument("unknown dense sketch kind");
}

sketch::SparseSpec sparse_spec(const key_array& key, index_t m, index_t n, index_t s, bool countsketch) {
  RANDNLA_REQUIRE(m >= 1, "m must be >= 1, got ", m);
  RANDNLA_REQUIRE(n >= 0, "n must be >= 0, got ", n);
  RANDNLA_REQUIRE(s >= 1 && s <= m, "nnz_per_column must be in [1, m], got ", s);
  RANDNLA_REQUIRE(!countsketch || s == 1, "countsketch has one nonzero per column");
  sketch::SparseSpec spec;
  spec.key = bind::key_from(key);
  spec.m = m;
  spec.n = n;
  spec.s = s;
  spec.countsketch = countsketch;
  return spec;
}

template <class T>
void register_typed(py::module_& m, const std::string& suffix) {
  m.def(("dense_block_" + suffix).c_str(),
        [](int kind, key_array key, index_t m, index_t row0, index_t row1, index_t col0, index_t col1, int n_threads) {
          RANDNLA_REQUIRE(0 <= row0 && row0 <= row1 && row1 <= m, "row range out of bounds");
          RANDNLA_REQUIRE(0 <= col0 && col0 <= col1, "column range out of bounds");
          const philox::Key k = bind::key_from(key);
          py::array_t<T> out(std::vector<py::ssize_t>{col1 - col0, row1 - row0});  // column-major block
          T* data = out.mutable_data();
          const auto dk = dense_kind(kind);
          py::gil_scoped_release release;
          sketch::dense_block<T>(dk, k, m, row0, row1, col0, col1, data, row1 - row0, n_threads);
          return out;
        });
  m.def(("dense_apply_left_" + suffix).c_str(), [](int kind, key_array key, index_t m, py::array a, int n_threads) {
    const Matrix2D<T> A = as_matrix<T>(a, "A");
    check_blas_dims(m, A.rows, A.cols);
    const philox::Key k = bind::key_from(key);
    const auto dk = dense_kind(kind);
    py::array_t<T> out(std::vector<py::ssize_t>{m, A.cols});
    T* data = out.mutable_data();
    py::gil_scoped_release release;
    sketch::dense_apply_left<T>(dk, k, m, A.rows, A.data, A.cols, A.rs, A.cs, data, n_threads);
    return out;
  });
  m.def(("dense_apply_transpose_" + suffix).c_str(),
        [](int kind, key_array key, index_t n, py::array y, int n_threads) {
          const Matrix2D<T> Y = as_matrix<T>(y, "Y");
          check_blas_dims(Y.rows, n, Y.cols);
          const philox::Key k = bind::key_from(key);
          const auto dk = dense_kind(kind);
          py::array_t<T> out(std::vector<py::ssize_t>{n, Y.cols});
          T* data = out.mutable_data();
          py::gil_scoped_release release;
          sketch::dense_apply_transpose<T>(dk, k, Y.rows, n, Y.data, Y.cols, Y.rs, Y.cs, data, n_threads);
          return out;
        });
  m.def(("srht_apply_left_" + suffix).c_str(), [](key_array key, index_t m, py::array a, int n_threads) {
    const Matrix2D<T> A = as_matrix<T>(a, "A");
    const index_t big_n = sketch::next_power_of_two(std::max<index_t>(A.rows, 1));
    RANDNLA_REQUIRE(m >= 1 && m <= big_n, "srht needs 1 <= m <= N = ", big_n, ", got m = ", m);
    const philox::Key k = bind::key_from(key);
    py::array_t<T> out(std::vector<py::ssize_t>{m, A.cols});
    T* data = out.mutable_data();
    py::gil_scoped_release release;
    sketch::srht_apply_left<T>(k, m, A.rows, A.data, A.cols, A.rs, A.cs, data, n_threads);
    return out;
  });
  m.def(("srht_apply_transpose_" + suffix).c_str(), [](key_array key, index_t n, py::array y, int n_threads) {
    const Matrix2D<T> Y = as_matrix<T>(y, "Y");
    const index_t big_n = sketch::next_power_of_two(std::max<index_t>(n, 1));
    RANDNLA_REQUIRE(Y.rows >= 1 && Y.rows <= big_n, "srht needs 1 <= m <= N = ", big_n);
    const philox::Key k = bind::key_from(key);
    py::array_t<T> out(std::vector<py::ssize_t>{n, Y.cols});
    T* data = out.mutable_data();
    py::gil_scoped_release release;
    sketch::srht_apply_transpose<T>(k, Y.rows, n, Y.data, Y.cols, Y.rs, Y.cs, data, n_threads);
    return out;
  });
  m.def(("sparse_apply_left_dense_" + suffix).c_str(),
        [](key_array key, index_t m, index_t s, bool countsketch, py::array a, int n_threads) {
          const Matrix2D<T> A = as_matrix<T>(a, "A");
          const sketch::SparseSpec spec = sparse_spec(key, m, A.rows, s, countsketch);
          py::array_t<T> out(std::vector<py::ssize_t>{m, A.cols});
          T* data = out.mutable_data();
          py::gil_scoped_release release;
          sketch::sparse_apply_left_dense<T>(spec, A.data, A.cols, A.rs, A.cs, data, n_threads);
          return out;
        });
  m.def(("sparse_apply_transpose_" + suffix).c_str(),
        [](key_array key, index_t n, index_t s, bool countsketch, py::array y, int n_threads) {
          const Matrix2D<T> Y = as_matrix<T>(y, "Y");
          const sketch::SparseSpec spec = sparse_spec(key, Y.rows, n, s, countsketch);
          py::array_t<T> out(std::vector<py::ssize_t>{n, Y.cols});
          T* data = out.mutable_data();
          py::gil_scoped_release release;
          sketch::sparse_apply_transpose<T>(spec, Y.data, Y.cols, Y.rs, Y.cs, data, n_threads);
          return out;
        });
  m.def(("sparse_apply_right_dense_" + suffix).c_str(),
        [](key_array key, index_t m, index_t s, bool countsketch, carray<T> a, int n_threads) {
          if (a.ndim() != 2) throw std::invalid_argument("A must be 2-dimensional");
          const sketch::SparseSpec spec = sparse_spec(key, m, a.shape(1), s, countsketch);
          const index_t p = a.shape(0);
          py::array_t<T> out(std::vector<py::ssize_t>{p, m});
          T* data = out.mutable_data();
          const T* src = a.data();
          py::gil_scoped_release release;
          sketch::sparse_apply_right_dense<T>(spec, src, p, spec.n, data, n_threads);
          return out;
        });
  m.def(("sparse_apply_left_csr_" + suffix).c_str(),
        [](key_array key, index_t m, index_t s, bool countsketch, carray<T> values, py::array indices,
           py::array indptr, index_t n, index_t d, int n_threads) {
          const sketch::SparseSpec spec = sparse_spec(key, m, n, s, countsketch);
          py::array_t<T> out(std::vector<py::ssize_t>{m, d});
          T* data = out.mutable_data();
          const T* vals = values.data();
          auto run = [&](auto tag) {
            using I = decltype(tag);
            auto ix_arr = carray<I>::ensure(indices);
            auto ip_arr = carray<I>::ensure(indptr);
            if (!ix_arr || !ip_arr) throw std::invalid_argument("CSR indices must be integers");
            RANDNLA_REQUIRE(ip_arr.ndim() == 1 && ip_arr.shape(0) == n + 1, "indptr must have n + 1 entries");
            const I* ip = ip_arr.data();
            const I* ix = ix_arr.data();
            RANDNLA_REQUIRE(ip[0] == 0 && ip[n] <= ix_arr.size() && ip[n] <= values.size(), "malformed CSR matrix");
            for (index_t i = 0; i < n; ++i) RANDNLA_REQUIRE(ip[i] <= ip[i + 1], "malformed CSR indptr");
            bool in_range = true;
            {
              py::gil_scoped_release release;
              for (I q = 0; q < ip[n]; ++q) in_range &= (ix[q] >= 0) & (ix[q] < d);
              if (in_range) sketch::sparse_apply_left_csr<T, I>(spec, vals, ix, ip, d, data, n_threads);
            }
            RANDNLA_REQUIRE(in_range, "CSR column index out of range");
          };
          if (py::isinstance<py::array_t<std::int32_t>>(indices) && py::isinstance<py::array_t<std::int32_t>>(indptr))
            run(std::int32_t{});
          else
            run(std::int64_t{});
          return out;
        });
  m.def(("sparse_apply_right_csr_" + suffix).c_str(),
        [](key_array key, index_t m, index_t s, bool countsketch, carray<T> values, carray<std::int64_t> indices,
           carray<std::int64_t> indptr, index_t p, index_t n, int n_threads) {
          RANDNLA_REQUIRE(indptr.ndim() == 1 && indptr.shape(0) == p + 1, "indptr must have p + 1 entries");
          const sketch::SparseSpec spec = sparse_spec(key, m, n, s, countsketch);
          const std::int64_t* ip = indptr.data();
          const std::int64_t* ix = indices.data();
          RANDNLA_REQUIRE(ip[0] == 0 && ip[p] <= indices.size() && ip[p] <= values.size(), "malformed CSR matrix");
          for (index_t i = 0; i < p; ++i) RANDNLA_REQUIRE(ip[i] <= ip[i + 1], "malformed CSR indptr");
          for (py::ssize_t q = 0; q < ip[p]; ++q)
            RANDNLA_REQUIRE(ix[q] >= 0 && ix[q] < n, "CSR column index out of range");
          py::array_t<T> out(std::vector<py::ssize_t>{p, m});
          T* data = out.mutable_data();
          const T* vals = values.data();
          py::gil_scoped_release release;
          sketch::sparse_apply_right_csr<T, std::int64_t>(spec, vals, ix, ip, p, data, n_threads);
          return out;
        });
  m.def(("row_norms_sq_dense_" + suffix).c_str(), [](py::array a, int n_threads) {
    const Matrix2D<T> A = as_matrix<T>(a, "A");
    py::array_t<double> out(A.rows);
    double* data = out.mutable_data();
    py::gil_scoped_release release;
    sketch::row_norms_sq_dense<T>(A.data, A.rows, A.cols, A.rs, A.cs, data, n_threads);
    return out;
  });
  m.def(("row_norms_sq_csr_" + suffix).c_str(), [](carray<T> values, carray<std::int64_t> indptr, int n_threads) {
    const index_t n = indptr.shape(0) - 1;
    RANDNLA_REQUIRE(n >= 0, "indptr must not be empty");
    const std::int64_t* ip = indptr.data();
    RANDNLA_REQUIRE(ip[0] == 0 && ip[n] <= values.size(), "malformed CSR matrix");
    for (index_t i = 0; i < n; ++i) RANDNLA_REQUIRE(ip[i] <= ip[i + 1], "malformed CSR indptr");
    py::array_t<double> out(n);
    double* data = out.mutable_data();
    const T* vals = values.data();
    py::gil_scoped_release release;
    sketch::row_norms_sq_csr<T, std::int64_t>(vals, ip, n, data, n_threads);
    return out;
  });
}

}  // namespace

void register_sketch(py::module_& m) {
  register_typed<float>(m, "float32");
  register_typed<double>(m, "float64");
  m.attr("coordination_hash_version") = sketch::kCoordinationHashVersion;
  m.def("srht_rows", [](key_array key, index_t m, index_t big_n) {
    const philox::Key k = bind::key_from(key);
    RANDNLA_REQUIRE(big_n >= 1 && m >= 0 && m <= big_n, "srht needs 0 <= m <= N");
    std::vector<i64> rows;
    {
      py::gil_scoped_release release;
      rows = sketch::srht_rows(k, m, big_n);
    }
    py::array_t<std::int64_t> out(m);
    std::copy(rows.begin(), rows.end(), out.mutable_data());
    return out;
  });
  m.def("srht_signs", [](key_array key, index_t col0, index_t col1) {
    const philox::Key k = bind::key_from(key);
    RANDNLA_REQUIRE(0 <= col0 && col0 <= col1, "bad column range");
    py::array_t<std::int8_t> out(col1 - col0);
    std::int8_t* data = out.mutable_data();
    for (index_t j = col0; j < col1; ++j) data[j - col0] = static_cast<std::int8_t>(sketch::srht_sign(k, j));
    return out;
  });
  m.def("sparse_columns", [](key_array key, index_t m, index_t s, bool countsketch, index_t col0, index_t col1,
                             int n_threads) {
    RANDNLA_REQUIRE(0 <= col0 && col0 <= col1, "bad column range");
    const sketch::SparseSpec spec = sparse_spec(key, m, col1, s, countsketch);
    py::array_t<std::int64_t> rows(std::vector<py::ssize_t>{col1 - col0, s});
    py::array_t<std::int8_t> signs(std::vector<py::ssize_t>{col1 - col0, s});
    auto* r = rows.mutable_data();
    auto* g = reinterpret_cast<signed char*>(signs.mutable_data());
    {
      py::gil_scoped_release release;
      sketch::sparse_columns(spec, col0, col1, r, g, n_threads);
    }
    return py::make_tuple(rows, signs);
  });
  m.def("coordination_hash", [](std::uint64_t seed, carray<std::int64_t> keys, int n_threads) {
    const index_t n = keys.size();
    py::array_t<double> out(n);
    double* data = out.mutable_data();
    const std::int64_t* k = keys.data();
    py::gil_scoped_release release;
    sketch::coordination_hash_many(seed, k, n, data, n_threads);
    return out;
  });
  m.def("priority_select", [](std::uint64_t seed, carray<std::int64_t> keys, carray<double> w, index_t count,
                              int n_threads) {
    const index_t n = keys.size();
    RANDNLA_REQUIRE(w.size() == n, "keys and weights differ in length");
    RANDNLA_REQUIRE(count >= 0, "count must be non-negative");
    std::vector<double> ranks(static_cast<size_t>(n));
    std::vector<i64> selected(static_cast<size_t>(std::min(count, n)));
    index_t taken = 0;
    {
      py::gil_scoped_release release;
      taken = sketch::priority_select(seed, keys.data(), w.data(), n, count, ranks.data(), selected.data(), n_threads);
    }
    py::array_t<std::int64_t> positions(taken);
    py::array_t<double> chosen_ranks(taken);
    for (index_t t = 0; t < taken; ++t) {
      positions.mutable_data()[t] = selected[t];
      chosen_ranks.mutable_data()[t] = ranks[selected[t]];
    }
    return py::make_tuple(positions, chosen_ranks);
  });
  m.def(
      "normal_pass",
      [](py::array a, carray<double> t, py::object b, int n_threads, py::object copy) {
        // u = A^T q and ||q||^2 for q = A t (b None) or q = b - A t; A float64 or float32,
        // C-contiguous; copy (float32, A's shape, C order) receives A rounded to float32.
        const bool is64 = py::isinstance<py::array_t<double>>(a), is32 = py::isinstance<py::array_t<float>>(a);
        if (a.ndim() != 2 || !(is64 || is32) || !(a.flags() & py::array::c_style))
          throw std::invalid_argument("A must be a C-contiguous 2-D float64 or float32 array");
        const index_t n = a.shape(0), d = a.shape(1);
        RANDNLA_REQUIRE(t.ndim() == 1 && t.shape(0) == d, "t must have length ", d);
        carray<double> bv;
        const double* bp = nullptr;
        if (!b.is_none()) {
          bv = carray<double>::ensure(b);
          RANDNLA_REQUIRE(bv && bv.ndim() == 1 && bv.shape(0) == n, "b must have length ", n);
          bp = bv.data();
        }
        float* cp = nullptr;
        py::array_t<float> cv;
        if (!copy.is_none()) {
          RANDNLA_REQUIRE(is64, "copy is for float64 A");
          if (!py::isinstance<py::array_t<float>>(copy)) throw std::invalid_argument("copy must be a float32 array");
          cv = py::reinterpret_borrow<py::array_t<float>>(copy);
          RANDNLA_REQUIRE(cv.ndim() == 2 && cv.shape(0) == n && cv.shape(1) == d && (cv.flags() & py::array::c_style) &&
                              cv.writeable(),
                          "copy must be a writeable C-contiguous float32 array of A's shape");
          cp = cv.mutable_data();
        }
        py::array_t<double> u(d);
        double* up = u.mutable_data();
        double qq = 0.0;
        const void* data = a.data();
        {
          py::gil_scoped_release release;
          if (is64)
            qq = sketch::normal_pass<double>(static_cast<const double*>(data), n, d, d, t.data(), bp, up, cp, n_threads);
          else
            qq = sketch::normal_pass<float>(static_cast<const float*>(data), n, d, d, t.data(), bp, up, nullptr,
                                            n_threads);
        }
        return py::make_tuple(u, qq);
      },
      py::arg("a"), py::arg("t"), py::arg("b"), py::arg("n_threads"), py::arg("copy") = py::none());
  m.def(
      "sparse_sketch_stacked",
      [](key_array key, index_t m, index_t s, py::array a, carray<double> b, int n_threads) {
        // S [A, b] (m x (d + 1)) for C-contiguous float64 A (n x d) and b (n): the sparse sign
        // pattern generated once for both.
        if (a.ndim() != 2 || !py::isinstance<py::array_t<double>>(a) || !(a.flags() & py::array::c_style))
          throw std::invalid_argument("A must be a C-contiguous 2-D float64 array");
        const index_t n = a.shape(0), d = a.shape(1);
        RANDNLA_REQUIRE(b.ndim() == 1 && b.shape(0) == n, "b must have length ", n);
        const sketch::SparseSpec spec = sparse_spec(key, m, n, s, false);
        py::array_t<double> out(std::vector<py::ssize_t>{m, d + 1});
        double* data = out.mutable_data();
        const double* ap = static_cast<const double*>(a.data());
        const double* bp = b.data();
        {
          py::gil_scoped_release release;
          sketch::sparse_apply_left_stacked<double>(spec, ap, d, d, bp, data, n_threads);
        }
        return out;
      },
      py::arg("key"), py::arg("m"), py::arg("s"), py::arg("a"), py::arg("b"), py::arg("n_threads"));
  m.def("threshold_constant", [](carray<double> w, index_t k) {
    RANDNLA_REQUIRE(k >= 1, "k must be >= 1");
    py::gil_scoped_release release;
    return sketch::threshold_constant(w.data(), w.size(), k);
  });
}
