// Bindings for entropic optimal transport (randnla/ot/*.hpp): array conversion and the GIL only.
#include <pybind11/stl.h>

#include "bind_common.hpp"
#include "randnla/ot/newton.hpp"
#include "randnla/ot/sinkhorn.hpp"

namespace py = pybind11;
using namespace randnla;
using bind::carray;

namespace {

template <class T>
MatrixView<const T> view_of(const carray<T>& C) {
  if (C.ndim() != 2) throw std::invalid_argument("C must be 2-dimensional");
  return c_contiguous_view<const T>(C.data(), C.shape(0), C.shape(1));
}

void check_vec(const py::array& x, py::ssize_t size, const char* name) {
  if (x.ndim() != 1 || x.shape(0) != size)
    throw std::invalid_argument(std::string(name) + " has the wrong length");
}

py::array_t<double> writable_vec(py::array_t<double> x, py::ssize_t size, const char* name) {
  if (!(x.flags() & py::array::c_style) || !x.writeable() || x.ndim() != 1 || x.shape(0) != size)
    throw std::invalid_argument(std::string(name) + " must be a writeable contiguous float64 vector of the right length");
  return x;
}

// The optional output array for the plan (None: the caller gets no plan written); `keep` holds the
// cast array alive for as long as the returned pointer is used.
template <class T>
T* optional_plan_out(const py::object& plan_out, py::ssize_t rows, py::ssize_t cols, py::array_t<T>& keep) {
  if (plan_out.is_none()) return nullptr;
  keep = plan_out.cast<py::array_t<T>>();
  if (!(keep.flags() & py::array::c_style) || !keep.writeable() || keep.ndim() != 2 || keep.shape(0) != rows ||
      keep.shape(1) != cols)
    throw std::invalid_argument("plan_out must be a writeable C-contiguous array shaped like C");
  return keep.mutable_data();
}

// The summary of a plan pass (row and column sums, sum P, <C, P>, sum P logP, the largest logP;
// with `histogram` also the argmax and histogram arrays of the Newton stage).
py::dict summary_dict(const ot::PlanSummary& s, bool histogram) {
  py::dict d;
  d["r"] = py::array_t<double>(s.r.size(), s.r.data());
  d["c"] = py::array_t<double>(s.c.size(), s.c.data());
  d["total"] = s.total;
  d["cost"] = s.cost;
  d["plogp"] = s.plogp;
  d["max_logp"] = s.max_logp;
  if (histogram) {
    d["row_argmax"] = py::array_t<std::int64_t>(s.row_argmax.size(), s.row_argmax.data());
    d["col_argmax"] = py::array_t<std::int64_t>(s.col_argmax.size(), s.col_argmax.data());
    d["hist_count"] = py::array_t<std::int64_t>(s.hist_count.size(), s.hist_count.data());
    d["hist_mass"] = py::array_t<double>(s.hist_mass.size(), s.hist_mass.data());
  }
  return d;
}

py::dict report_dict(const ot::SweepReport& rep) {
  py::dict d;
  d["sweeps"] = rep.sweeps;
  d["reached_tol"] = rep.reached_tol;
  d["handed_over"] = rep.handed_over;
  d["plateau"] = rep.plateau;
  d["log_sweeps"] = rep.log_sweeps;
  d["rebuilds"] = rep.rebuilds;
  d["span_passes"] = rep.span_passes;
  d["bounded_sweeps"] = rep.bounded_sweeps;
  d["resummed_tiles"] = rep.resummed_tiles;
  d["nonfinite_cost"] = rep.nonfinite_cost;
  d["errors"] = py::array_t<double>(rep.errors.size(), rep.errors.data());
  d["at"] = py::array_t<index_t>(rep.at.size(), rep.at.data());
  d["seconds"] = py::array_t<double>(rep.seconds.size(), rep.seconds.data());
  if (rep.has_plan) d["plan_summary"] = summary_dict(rep.plan, false);
  return d;
}

template <class T>
py::dict sweeps(const std::string& method, carray<T> C, carray<double> a, carray<double> b, carray<double> log_a,
                carray<double> log_b, double eps, py::array_t<double> f, py::array_t<double> g, py::ssize_t max_sweeps,
                double tol, double tau, int n_threads, py::object handover, double relax, py::object plan_out,
                bool write_plan, bool truncate, bool check_cost, bool start_rows) {
  const auto Cv = view_of(C);
  ot::Handover hand;
  if (!handover.is_none()) {
    auto t = handover.cast<py::tuple>();
    if (t.size() != 6 && t.size() != 7)
      throw std::invalid_argument("handover must be (min_sweeps, warmup, budget, offset, switch_tol, tol[, plateau])");
    hand.enabled = true;
    hand.min_sweeps = t[0].cast<index_t>();
    hand.warmup = t[1].cast<index_t>();
    hand.budget = t[2].cast<index_t>();
    hand.offset = t[3].cast<index_t>();
    hand.switch_tol = t[4].cast<double>();
    hand.tol = t[5].cast<double>();
    if (t.size() == 7) hand.plateau = t[6].cast<index_t>();
  }
  check_vec(a, Cv.rows, "a");
  check_vec(log_a, Cv.rows, "log_a");
  check_vec(b, Cv.cols, "b");
  check_vec(log_b, Cv.cols, "log_b");
  writable_vec(f, Cv.rows, "f");
  writable_vec(g, Cv.cols, "g");
  if (!(eps > 0)) throw std::invalid_argument("reg must be positive");
  double* fp = f.mutable_data();
  double* gp = g.mutable_data();
  py::array_t<T> plan_arr;
  T* plan = optional_plan_out<T>(plan_out, Cv.rows, Cv.cols, plan_arr);
  ot::SweepReport rep;
  {
    py::gil_scoped_release release;
    if (method == "log")
      rep = ot::sinkhorn_log_sweeps<T>(Cv, a.data(), b.data(), log_a.data(), log_b.data(), eps, fp, gp, max_sweeps, tol,
                                       n_threads);
    else
      rep = ot::sinkhorn_scaling_sweeps<T>(Cv, a.data(), b.data(), log_a.data(), log_b.data(), eps, fp, gp, max_sweeps,
                                           tol, tau, n_threads, hand, relax, plan, write_plan, truncate,
                                           check_cost, start_rows);
  }
  return report_dict(rep);
}

template <class T>
py::dict plan_pass(carray<T> C, carray<double> f, carray<double> g, double eps, bool histogram, py::object plan_out,
                   int n_threads) {
  const auto Cv = view_of(C);
  check_vec(f, Cv.rows, "f");
  check_vec(g, Cv.cols, "g");
  ot::PlanSummary s;
  py::array_t<T> plan_arr;
  T* plan = optional_plan_out<T>(plan_out, Cv.rows, Cv.cols, plan_arr);
  {
    py::gil_scoped_release release;
    s = ot::plan_pass<T, T>(Cv, f.data(), g.data(), eps, histogram, plan, n_threads);
  }
  return summary_dict(s, histogram);
}

// Shapes of the potentials and the per-column argmax shared by every route to the sparsified plan.
template <class View>
void check_plan_inputs(const View& Cv, const carray<double>& f, const carray<double>& g,
                       const carray<std::int64_t>& col_argmax) {
  check_vec(f, Cv.rows, "f");
  check_vec(g, Cv.cols, "g");
  check_vec(col_argmax, Cv.cols, "col_argmax");
  for (py::ssize_t j = 0; j < Cv.cols; ++j)
    if (col_argmax.at(j) < 0 || col_argmax.at(j) >= Cv.rows) throw std::invalid_argument("col_argmax out of range");
}

// The sparsified plan of a Newton step: the cut chosen from the histogram, then the gather. Call
// with the GIL released (inputs already checked).
template <class T, class View>
ot::Csr sparsified_plan(const View& Cv, const double* f, const double* g, double eps, const std::vector<std::int64_t>& hc,
                        const std::vector<double>& hm, double drop_mass, std::int64_t k_min, std::int64_t k_max,
                        const std::int64_t* col_argmax, int n_threads, int& cut) {
  cut = ot::choose_cut(hc, hm, drop_mass, k_min, k_max);
  return ot::gather_plan<T>(Cv, f, g, eps, cut, col_argmax, n_threads);
}

template <class T>
py::dict newton_direction(carray<T> C, carray<double> f, carray<double> g, double eps, carray<std::int64_t> hist_count,
                          carray<double> hist_mass, double drop_mass, std::int64_t k_min, std::int64_t k_max,
                          carray<std::int64_t> col_argmax, carray<double> r, carray<double> c, carray<double> rhs_f,
                          carray<double> rhs_g, py::ssize_t fixed, double rtol, py::ssize_t max_cg, int n_threads) {
  const auto Cv = view_of(C);
  check_plan_inputs(Cv, f, g, col_argmax);
  check_vec(r, Cv.rows, "r");
  check_vec(rhs_f, Cv.rows, "rhs_f");
  check_vec(c, Cv.cols, "c");
  check_vec(rhs_g, Cv.cols, "rhs_g");
  check_vec(hist_count, ot::kHistBuckets, "hist_count");
  check_vec(hist_mass, ot::kHistBuckets, "hist_mass");
  std::vector<std::int64_t> hc(hist_count.data(), hist_count.data() + ot::kHistBuckets);
  std::vector<double> hm(hist_mass.data(), hist_mass.data() + ot::kHistBuckets);
  ot::NewtonSolve sol;
  std::int64_t nnz = 0;
  int cut = 0;
  {
    py::gil_scoped_release release;
    const ot::Csr P = sparsified_plan<T>(Cv, f.data(), g.data(), eps, hc, hm, drop_mass, k_min, k_max,
                                         col_argmax.data(), n_threads, cut);
    nnz = P.indptr.back();
    sol = ot::solve_newton_schur(P, r.data(), c.data(), rhs_f.data(), rhs_g.data(), fixed, rtol, max_cg, n_threads);
  }
  py::dict d;
  d["df"] = py::array_t<double>(sol.df.size(), sol.df.data());
  d["dg"] = py::array_t<double>(sol.dg.size(), sol.dg.data());
  d["cg_iterations"] = sol.cg_iterations;
  d["relative_residual"] = sol.relative_residual;
  d["nnz"] = nnz;
  d["cut"] = cut;
  return d;
}

// The sparsified plan of a Newton step, for a direct solver outside the core: (indptr, indices,
// data, cut).
template <class T>
py::tuple newton_pattern(carray<T> C, carray<double> f, carray<double> g, double eps, carray<std::int64_t> hist_count,
                         carray<double> hist_mass, double drop_mass, std::int64_t k_min, std::int64_t k_max,
                         carray<std::int64_t> col_argmax, int n_threads) {
  const auto Cv = view_of(C);
  check_plan_inputs(Cv, f, g, col_argmax);
  check_vec(hist_count, ot::kHistBuckets, "hist_count");
  check_vec(hist_mass, ot::kHistBuckets, "hist_mass");
  std::vector<std::int64_t> hc(hist_count.data(), hist_count.data() + ot::kHistBuckets);
  std::vector<double> hm(hist_mass.data(), hist_mass.data() + ot::kHistBuckets);
  ot::Csr P;
  int cut = 0;
  {
    py::gil_scoped_release release;
    P = sparsified_plan<T>(Cv, f.data(), g.data(), eps, hc, hm, drop_mass, k_min, k_max, col_argmax.data(), n_threads,
                           cut);
  }
  return py::make_tuple(py::array_t<std::int64_t>(P.indptr.size(), P.indptr.data()),
                        py::array_t<std::int64_t>(P.indices.size(), P.indices.data()),
                        py::array_t<double>(P.data.size(), P.data.data()), cut);
}

// For tests: the kept pattern alone, and the Newton solve on a given CSR.
template <class T>
py::tuple gather(carray<T> C, carray<double> f, carray<double> g, double eps, int cut, carray<std::int64_t> col_argmax,
                 int n_threads) {
  const auto Cv = view_of(C);
  check_plan_inputs(Cv, f, g, col_argmax);
  ot::Csr P;
  {
    py::gil_scoped_release release;
    P = ot::gather_plan<T>(Cv, f.data(), g.data(), eps, cut, col_argmax.data(), n_threads);
  }
  return py::make_tuple(py::array_t<std::int64_t>(P.indptr.size(), P.indptr.data()),
                        py::array_t<std::int64_t>(P.indices.size(), P.indices.data()),
                        py::array_t<double>(P.data.size(), P.data.data()));
}

py::tuple solve_csr(carray<std::int64_t> indptr, carray<std::int64_t> indices, carray<double> data, py::ssize_t n,
                    py::ssize_t m, carray<double> r, carray<double> c, carray<double> rhs_f, carray<double> rhs_g,
                    py::ssize_t fixed, double rtol, py::ssize_t max_cg, int n_threads) {
  check_vec(indptr, n + 1, "indptr");
  check_vec(r, n, "r");
  check_vec(rhs_f, n, "rhs_f");
  check_vec(c, m, "c");
  check_vec(rhs_g, m, "rhs_g");
  ot::Csr P;
  P.rows = n;
  P.cols = m;
  P.indptr.assign(indptr.data(), indptr.data() + n + 1);
  if (P.indptr[0] != 0 || indices.size() != P.indptr.back() || data.size() != P.indptr.back())
    throw std::invalid_argument("inconsistent CSR arrays");
  for (py::ssize_t i = 0; i < n; ++i)
    if (P.indptr[i + 1] < P.indptr[i]) throw std::invalid_argument("indptr must be non-decreasing");
  P.indices.assign(indices.data(), indices.data() + indices.size());
  for (auto j : P.indices)
    if (j < 0 || j >= m) throw std::invalid_argument("column index out of range");
  P.data.assign(data.data(), data.data() + data.size());
  ot::NewtonSolve sol;
  {
    py::gil_scoped_release release;
    sol = ot::solve_newton_schur(P, r.data(), c.data(), rhs_f.data(), rhs_g.data(), fixed, rtol, max_cg, n_threads);
  }
  return py::make_tuple(py::array_t<double>(sol.df.size(), sol.df.data()),
                        py::array_t<double>(sol.dg.size(), sol.dg.data()), sol.cg_iterations);
}

py::array_t<double> exp_lanes_array(carray<double> x) {
  py::array_t<double> out(x.size());
  const double* xs = x.data();
  double* o = out.mutable_data();
  for (py::ssize_t k = 0; k < x.size(); ++k) o[k] = ot::exp_lanes(xs[k]);
  return out;
}

template <class T>
void register_dtype(py::module_& m, const std::string& suffix) {
  m.def(("ot_sweeps_" + suffix).c_str(), &sweeps<T>, py::arg("method"), py::arg("C"), py::arg("a"), py::arg("b"),
        py::arg("log_a"), py::arg("log_b"), py::arg("eps"), py::arg("f").noconvert(), py::arg("g").noconvert(),
        py::arg("max_sweeps"), py::arg("tol"), py::arg("tau"), py::arg("n_threads"), py::arg("handover") = py::none(),
        py::arg("relax") = 1.0, py::arg("plan_out") = py::none(), py::arg("write_plan") = true,
        py::arg("truncate") = true, py::arg("check_cost") = false, py::arg("start_rows") = false);
  m.def(("ot_plan_pass_" + suffix).c_str(), &plan_pass<T>, py::arg("C"), py::arg("f"), py::arg("g"), py::arg("eps"),
        py::arg("histogram"), py::arg("plan_out"), py::arg("n_threads"));
  m.def(("ot_newton_direction_" + suffix).c_str(), &newton_direction<T>, py::arg("C"), py::arg("f"), py::arg("g"),
        py::arg("eps"), py::arg("hist_count"), py::arg("hist_mass"), py::arg("drop_mass"), py::arg("k_min"),
        py::arg("k_max"), py::arg("col_argmax"), py::arg("r"), py::arg("c"), py::arg("rhs_f"), py::arg("rhs_g"),
        py::arg("fixed"), py::arg("rtol"), py::arg("max_cg"), py::arg("n_threads"));
  m.def(("ot_newton_pattern_" + suffix).c_str(), &newton_pattern<T>, py::arg("C"), py::arg("f"), py::arg("g"),
        py::arg("eps"), py::arg("hist_count"), py::arg("hist_mass"), py::arg("drop_mass"), py::arg("k_min"),
        py::arg("k_max"), py::arg("col_argmax"), py::arg("n_threads"));
  m.def(("ot_gather_" + suffix).c_str(), &gather<T>, py::arg("C"), py::arg("f"), py::arg("g"), py::arg("eps"),
        py::arg("cut"), py::arg("col_argmax"), py::arg("n_threads"));
}

}  // namespace

void register_ot(py::module_& m) {
  register_dtype<double>(m, "float64");
  register_dtype<float>(m, "float32");
  m.def("ot_solve_csr", &solve_csr, py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("n"), py::arg("m"),
        py::arg("r"), py::arg("c"), py::arg("rhs_f"), py::arg("rhs_g"), py::arg("fixed"), py::arg("rtol"),
        py::arg("max_cg"), py::arg("n_threads"));
  m.def("ot_exp_lanes", &exp_lanes_array, py::arg("x"));
  m.attr("ot_hist_buckets") = ot::kHistBuckets;
  m.attr("ot_hist_scale") = ot::kHistScale;
}
