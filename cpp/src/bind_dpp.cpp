// Bindings for the DPP samplers (randnla/dpp/samplers.hpp) and the tridiagonal eigenvalues of
// the beta-ensembles (randnla/dpp/tridiagonal.hpp). Shapes and values are validated in
// randnla/dpp.py; the checks here only keep the core from reading out of bounds.
#include <cstring>
#include <vector>

#include "bind_common.hpp"
#include "randnla/dpp/alpha_proposal.hpp"
#include "randnla/dpp/cholesky_sampler.hpp"
#include "randnla/dpp/samplers.hpp"
#include "randnla/dpp/tridiagonal.hpp"

namespace py = pybind11;
using namespace randnla;
using bind::carray;

namespace {

py::tuple pack(const std::vector<std::vector<int64_t>>& samples) {
  size_t total = 0;
  for (const auto& s : samples) total += s.size();
  py::array_t<int64_t> flat(static_cast<py::ssize_t>(total));
  py::array_t<int64_t> offsets(static_cast<py::ssize_t>(samples.size() + 1));
  int64_t* f = flat.mutable_data();
  int64_t* o = offsets.mutable_data();
  size_t position = 0;
  o[0] = 0;
  for (size_t s = 0; s < samples.size(); ++s) {
    if (!samples[s].empty()) std::memcpy(f + position, samples[s].data(), samples[s].size() * sizeof(int64_t));
    position += samples[s].size();
    o[s + 1] = static_cast<int64_t>(position);
  }
  return py::make_tuple(flat, offsets);
}

void require_square(const carray<double>& a, const char* name) {
  if (a.ndim() != 2 || a.shape(0) != a.shape(1)) throw std::invalid_argument(std::string(name) + " must be square");
}

}  // namespace

void register_dpp(py::module_& m) {
  m.def(
      "dpp_eigh",
      [](carray<double> a) {
        require_square(a, "L");
        const lapack::fint n = static_cast<lapack::fint>(a.shape(0));
        // Column-major n x n result: for the symmetric input the row-major copy is the same matrix.
        py::array_t<double, py::array::f_style> vectors({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(n)});
        py::array_t<double> values(n);
        double* z = vectors.mutable_data();
        double* w = values.mutable_data();
        std::memcpy(z, a.data(), sizeof(double) * static_cast<size_t>(n) * n);
        lapack::fint info = 0;
        {
          py::gil_scoped_release release;
          if (n > 0) {
            double work_query = 0.0;
            lapack::fint iwork_query = 0;
            info = lapack::syevd<double>('V', 'L', n, z, n, w, &work_query, -1, &iwork_query, -1);
            if (info == 0) {
              std::vector<double> work(static_cast<size_t>(work_query) + 1);
              std::vector<lapack::fint> iwork(static_cast<size_t>(iwork_query) + 1);
              info = lapack::syevd<double>('V', 'L', n, z, n, w, work.data(), static_cast<lapack::fint>(work.size()),
                                           iwork.data(), static_cast<lapack::fint>(iwork.size()));
            }
          }
        }
        return py::make_tuple(values, vectors, info);
      },
      py::arg("a"));

  m.def(
      "dpp_log_esp_table",
      [](carray<double> log_lambda, py::ssize_t k) {
        if (log_lambda.ndim() != 1) throw std::invalid_argument("log_lambda must be 1-D");
        const py::ssize_t n = log_lambda.shape(0);
        if (k < 0 || k > n) throw std::invalid_argument("k must be in [0, n]");
        py::array_t<double> table({k + 1, n + 1});
        const double* l = log_lambda.data();
        double* t = table.mutable_data();
        {
          py::gil_scoped_release release;
          dpp::log_esp_table(l, n, k, t);
        }
        return table;
      },
      py::arg("log_lambda"), py::arg("k"));

  m.def(
      "dpp_spectral_sample",
      [](carray<double> Vt, carray<double> lambda_l, carray<double> lambda_k, carray<double> log_lambda, py::ssize_t k,
         carray<double> table, carray<double> B, carray<double> Mt, carray<double> weight, carray<double> cumulative,
         carray<u64> key, u64 first, py::ssize_t count, int n_threads, int route) {
        dpp::SpectralInput in;
        const py::ssize_t r = lambda_k.size();
        if (lambda_l.size() != r || log_lambda.size() != r) throw std::invalid_argument("eigenvalues do not match");
        const bool have_rows = Vt.size() > 0 || (Vt.ndim() == 2 && Vt.shape(0) == 0 && r == 0);
        const bool have_dual = B.size() > 0;
        if (!have_rows && !have_dual) {
          if (r != 0) throw std::invalid_argument("eigenvectors missing");
        }
        py::ssize_t n = -1;
        if (have_rows) {
          if (Vt.ndim() != 2 || Vt.shape(0) != r) throw std::invalid_argument("Vt must be (m, n)");
          n = Vt.shape(1);
          in.Vt = Vt.data();
        }
        if (have_dual) {
          if (B.ndim() != 2 || Mt.ndim() != 2 || Mt.shape(0) != r || Mt.shape(1) != B.shape(1))
            throw std::invalid_argument("B (n, d) and Mt (m, d) expected");
          if (n >= 0 && B.shape(0) != n) throw std::invalid_argument("B and Vt disagree on n");
          n = B.shape(0);
          if (weight.size() != n || cumulative.size() != n) throw std::invalid_argument("weights must have n entries");
          in.B = B.data();
          in.d = B.shape(1);
          in.Mt = Mt.data();
          in.weight = weight.data();
          in.cumulative = cumulative.data();
        }
        if (n < 0) n = 0;
        if (k > r) throw std::invalid_argument("k exceeds the number of eigenvectors");
        if (k >= 0 && (table.ndim() != 2 || table.shape(0) < k + 1 || table.shape(1) != r + 1))
          throw std::invalid_argument("ESP table too small");
        if (count < 0) throw std::invalid_argument("count must be non-negative");
        in.n = n;
        in.m = r;
        in.k = k;
        in.lambda_l = lambda_l.data();
        in.lambda_k = lambda_k.data();
        in.log_lambda = log_lambda.data();
        in.table = table.data();
        in.route = route;
        const philox::Key kk = bind::key_from(key);
        std::vector<std::vector<int64_t>> out;
        index_t formed = 0;
        {
          py::gil_scoped_release release;
          formed = dpp::spectral_batch(in, kk, first, count, n_threads, out);
        }
        py::tuple packed = pack(out);
        return py::make_tuple(packed[0], packed[1], formed);
      },
      py::arg("Vt"), py::arg("lambda_l"), py::arg("lambda_k"), py::arg("log_lambda"), py::arg("k"), py::arg("table"),
      py::arg("B"), py::arg("Mt"), py::arg("weight"), py::arg("cumulative"), py::arg("key"), py::arg("first"),
      py::arg("count"), py::arg("n_threads"), py::arg("route"));

  m.def(
      "dpp_row_norms",
      [](carray<double> B, int n_threads) {
        if (B.ndim() != 2) throw std::invalid_argument("B must be 2-D");
        const py::ssize_t n = B.shape(0), d = B.shape(1);
        py::array_t<double> norms(n), cumulative(n);
        double* w = norms.mutable_data();
        double* c = cumulative.mutable_data();
        const double* b = B.data();
        bool finite = true;
        {
          py::gil_scoped_release release;
          std::vector<char> ok((n + 4095) / 4096, 1);
          parallel_for_chunks(n, 4096, n_threads, [&](index_t begin, index_t end, index_t chunk) {
            bool chunk_ok = true;
            for (index_t i = begin; i < end; ++i) {
              const double* row = b + i * d;
              double s = 0.0, check = 0.0;
              for (index_t l = 0; l < d; ++l) {
                s += row[l] * row[l];
                check += row[l] * 0.0;  // NaN or infinity anywhere makes this NaN
              }
              w[i] = s;
              if (check != 0.0) chunk_ok = false;
            }
            ok[chunk] = chunk_ok;
          });
          for (const char f : ok) finite = finite && f;
          double running = 0.0;
          for (py::ssize_t i = 0; i < n; ++i) {
            running += w[i];
            c[i] = running;
          }
        }
        return py::make_tuple(norms, cumulative, finite);
      },
      py::arg("B"), py::arg("n_threads"));

  m.def(
      "dpp_projection_sample",
      [](carray<double> K, py::ssize_t rank, carray<u64> key, u64 first, py::ssize_t count, int n_threads) {
        require_square(K, "K");
        const py::ssize_t n = K.shape(0);
        if (rank < 0 || rank > n) throw std::invalid_argument("rank must be in [0, n]");
        if (count < 0) throw std::invalid_argument("count must be non-negative");
        const philox::Key kk = bind::key_from(key);
        std::vector<std::vector<int64_t>> out;
        {
          py::gil_scoped_release release;
          dpp::projection_kernel_batch(K.data(), n, rank, kk, first, count, n_threads, out);
        }
        return pack(out);
      },
      py::arg("K"), py::arg("rank"), py::arg("key"), py::arg("first"), py::arg("count"), py::arg("n_threads"));

  m.def(
      "dpp_ldl_sample",
      [](carray<double> K, carray<u64> key, u64 sample, py::ssize_t block, carray<int8_t> forced) {
        require_square(K, "K");
        const py::ssize_t n = K.shape(0);
        if (forced.ndim() != 1 || forced.size() > n) throw std::invalid_argument("forced must be 1-D with at most n entries");
        const philox::Key kk = bind::key_from(key);
        std::vector<double> work(K.data(), K.data() + static_cast<size_t>(n) * n);
        std::vector<signed char> imposed(forced.data(), forced.data() + forced.size());
        dpp::SequentialResult result;
        {
          py::gil_scoped_release release;
          result = dpp::ldl_sample(work.data(), n, kk, sample, block, imposed.data(), static_cast<index_t>(imposed.size()));
        }
        py::array_t<int64_t> items(static_cast<py::ssize_t>(result.items.size()));
        if (!result.items.empty())
          std::memcpy(items.mutable_data(), result.items.data(), result.items.size() * sizeof(int64_t));
        return py::make_tuple(items, result.log_probability, result.worst_violation);
      },
      py::arg("K"), py::arg("key"), py::arg("sample"), py::arg("block"), py::arg("forced"));

  m.def(
      "dpp_cholesky_factor",
      [](carray<double> L) {
        require_square(L, "L");
        const py::ssize_t n = L.shape(0);
        // The row-major L read in column-major order is L^T: its upper triangle is the lower
        // triangle of L, which is the triangle dpp_cholesky_sample reads (row j, columns < j).
        py::array_t<double, py::array::f_style> U({n, n});
        double* u = U.mutable_data();
        const double* l = L.data();
        lapack::fint info = 0;
        {
          py::gil_scoped_release release;
          std::memcpy(u, l, sizeof(double) * static_cast<size_t>(n) * static_cast<size_t>(n));
          for (py::ssize_t j = 0; j < n; ++j) u[j + j * n] += 1.0;
          if (n > 0) info = lapack::potrf<double>('U', static_cast<lapack::fint>(n), u, static_cast<lapack::fint>(n));
        }
        return py::make_tuple(U, info);
      },
      py::arg("L"));

  m.def(
      "dpp_alpha_positions",
      [](carray<double> r, py::ssize_t t, carray<double> cumulative, carray<double> upper, double total,
         py::array_t<bool, py::array::c_style | py::array::forcecast> refined) {
        const py::ssize_t n = upper.size();
        if (t < 0 || r.size() < 2 * t) throw std::invalid_argument("r must hold 2 t uniforms");
        if (n < 1 || cumulative.size() != n || refined.size() != n)
          throw std::invalid_argument("cumulative, upper and refined must have the same n >= 1 entries");
        py::array_t<int64_t> p(t);
        py::array_t<double> x(t);
        bool pending = false;
        {
          const double* rr = r.data();
          const double* c = cumulative.data();
          const double* u = upper.data();
          const uint8_t* f = reinterpret_cast<const uint8_t*>(refined.data());
          int64_t* pp = p.mutable_data();
          double* xx = x.mutable_data();
          py::gil_scoped_release release;
          pending = dpp::alpha_positions(rr, static_cast<index_t>(t), c, u, static_cast<index_t>(n), total, f, pp, xx);
        }
        return py::make_tuple(p, x, pending);
      },
      py::arg("r"), py::arg("t"), py::arg("cumulative"), py::arg("upper"), py::arg("total"), py::arg("refined"));

  m.def(
      "dpp_alpha_keep",
      [](py::array_t<int64_t, py::array::c_style | py::array::forcecast> p, carray<double> x, carray<double> bound) {
        const py::ssize_t t = p.size();
        const py::ssize_t n = bound.size();
        if (x.size() != t) throw std::invalid_argument("p and x must have the same size");
        const int64_t* pp = p.data();
        for (py::ssize_t d = 0; d < t; ++d)
          if (pp[d] < 0 || pp[d] >= n) throw std::invalid_argument("p out of range");
        if (t > 1)
          for (py::ssize_t d = 1; d < t; ++d)
            if (pp[d] < pp[d - 1]) throw std::invalid_argument("p must be nondecreasing");
        std::vector<int64_t> items, counts;
        index_t kept = 0;
        {
          const double* xx = x.data();
          const double* b = bound.data();
          py::gil_scoped_release release;
          kept = dpp::alpha_keep(pp, xx, static_cast<index_t>(t), b, items, counts);
        }
        py::array_t<int64_t> it(static_cast<py::ssize_t>(items.size()));
        py::array_t<int64_t> ct(static_cast<py::ssize_t>(counts.size()));
        if (!items.empty()) {
          std::memcpy(it.mutable_data(), items.data(), items.size() * sizeof(int64_t));
          std::memcpy(ct.mutable_data(), counts.data(), counts.size() * sizeof(int64_t));
        }
        return py::make_tuple(it, ct, static_cast<int64_t>(kept));
      },
      py::arg("p"), py::arg("x"), py::arg("bound"));

  m.def(
      "dpp_scaled_cholesky_factor",
      [](carray<double> B, carray<double> scale) {
        require_square(B, "B");
        const py::ssize_t n = B.shape(0);
        if (scale.ndim() != 1 || scale.shape(0) != n) throw std::invalid_argument("scale must have n entries");
        // Lt = (B + B^T) * outer(scale, scale) and the upper Cholesky factor U of I + Lt, as
        // dpp_cholesky_factor(Lt) returns it
        py::array_t<double> Lt({n, n});
        py::array_t<double, py::array::f_style> U({n, n});
        double* lt = Lt.mutable_data();
        double* u = U.mutable_data();
        const double* b = B.data();
        const double* sc = scale.data();
        lapack::fint info = 0;
        {
          py::gil_scoped_release release;
          dpp::scaled_symmetric_sum(b, sc, static_cast<index_t>(n), lt, u);
          if (n > 0) info = lapack::potrf<double>('U', static_cast<lapack::fint>(n), u, static_cast<lapack::fint>(n));
        }
        return py::make_tuple(Lt, U, info);
      },
      py::arg("B"), py::arg("scale"));

  m.def(
      "dpp_cholesky_sample",
      [](carray<double> L, py::array_t<double, py::array::f_style | py::array::forcecast> U, carray<u64> key, u64 first,
         py::ssize_t count, int n_threads, double tolerance) {
        require_square(L, "L");
        const py::ssize_t n = L.shape(0);
        if (U.ndim() != 2 || U.shape(0) != n || U.shape(1) != n) throw std::invalid_argument("U must be n x n");
        if (count < 0) throw std::invalid_argument("count must be non-negative");
        const philox::Key kk = bind::key_from(key);
        const double* l = L.data();
        const double* u = U.data();
        std::vector<dpp::CholeskySampleResult> results;
        {
          py::gil_scoped_release release;
          std::vector<double> diag(n);
          for (py::ssize_t j = 0; j < n; ++j) diag[j] = l[j * n + j];
          dpp::cholesky_l_batch(u, l, diag.data(), n, kk, first, count, n_threads, tolerance, results);
        }
        std::vector<std::vector<int64_t>> samples(results.size());
        py::array_t<int64_t> undecided(static_cast<py::ssize_t>(results.size()));
        int64_t* und = undecided.mutable_data();
        for (size_t s = 0; s < results.size(); ++s) {
          samples[s].swap(results[s].items);
          und[s] = results[s].undecided;
        }
        py::tuple packed = pack(samples);
        return py::make_tuple(packed[0], packed[1], undecided);
      },
      py::arg("L"), py::arg("U"), py::arg("key"), py::arg("first"), py::arg("count"), py::arg("n_threads"),
      py::arg("tolerance"));

  m.def(
      "dpp_tridiagonal_eigenvalues",
      [](carray<double> diagonal, carray<double> off_diagonal, int n_threads) {
        const py::ssize_t n = diagonal.size();
        if (diagonal.ndim() != 1 || off_diagonal.ndim() != 1 || (n > 0 && off_diagonal.size() != n - 1))
          throw std::invalid_argument("diagonal (n,) and off_diagonal (n - 1,) expected");
        py::array_t<double> values(n);
        double* out = values.mutable_data();
        const double* d = diagonal.data();
        const double* e = off_diagonal.data();
        bool ok = true;
        {
          py::gil_scoped_release release;
          ok = dpp::tridiagonal_eigenvalues(d, e, n, n_threads, out);
        }
        if (!ok) throw std::invalid_argument("the tridiagonal matrix must be finite");
        return values;
      },
      py::arg("diagonal"), py::arg("off_diagonal"), py::arg("n_threads"));
}
