// Fills randnla/lapack.hpp's table from SciPy's cython_blas / cython_lapack capsules, refusing
// an interface whose integers are not 32-bit (ILP64) instead of crashing later.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "randnla/lapack.hpp"

namespace py = pybind11;
using randnla::lapack::fint;

namespace {

// The capsule's name is the C signature Cython exported, e.g.
// "void (char *, int *, __pyx_t_..._d *, ...)". LP64 interfaces pass `int *`.
bool signature_is_lp64(const std::string& signature) {
  if (signature.find("int64") != std::string::npos) return false;
  if (signature.find("long") != std::string::npos) return false;
  return signature.find("int *") != std::string::npos;
}

void* capsule_pointer(const py::dict& capi, const char* module_name, const std::string& name) {
  if (!capi.contains(name.c_str()))
    throw py::import_error(std::string("randnla: SciPy's ") + module_name + " lacks " + name);
  py::object capsule = capi[name.c_str()];
  const char* signature = PyCapsule_GetName(capsule.ptr());
  if (signature == nullptr || !signature_is_lp64(signature))
    throw py::import_error(std::string("randnla: SciPy's ") + module_name + "." + name +
                           " does not use 32-bit integers (an ILP64 build?); randnla needs the LP64 "
                           "interface. Install a standard SciPy wheel.");
  void* pointer = PyCapsule_GetPointer(capsule.ptr(), signature);
  if (pointer == nullptr) throw py::error_already_set();
  return pointer;
}

template <class T>
void fill(randnla::lapack::Routines<T>& routines, const py::dict& blas, const py::dict& lapack, char prefix) {
  auto get = [&](const char* base) -> void* {
    const std::string name = std::string(1, prefix) + base;
    const bool is_blas = std::string("gemm gemv syrk trsm trmm trsv").find(base) != std::string::npos;
    return is_blas ? capsule_pointer(blas, "cython_blas", name) : capsule_pointer(lapack, "cython_lapack", name);
  };
#define RANDNLA_FILL_POINTER(name, args) routines.name = reinterpret_cast<decltype(routines.name)>(get(#name));
  RANDNLA_LAPACK_ROUTINES(RANDNLA_FILL_POINTER)
#undef RANDNLA_FILL_POINTER
}

// ---- private test hooks: each routine called through the table on small inputs ----

template <class T>
using farray = py::array_t<T, py::array::f_style | py::array::forcecast>;

template <class T>
void register_hooks(py::module_& hooks, const char* suffix) {
  using namespace randnla;
  const std::string s(suffix);
  hooks.def(("gemm_" + s).c_str(), [](farray<T> a, farray<T> b) {
    const fint m = a.shape(0), k = a.shape(1), n = b.shape(1);
    farray<T> c({static_cast<py::ssize_t>(m), static_cast<py::ssize_t>(n)});
    lapack::gemm<T>('N', 'N', m, n, k, T(1), a.data(), std::max<fint>(m, 1), b.data(), std::max<fint>(k, 1), T(0),
                    c.mutable_data(), std::max<fint>(m, 1));
    return c;
  });
  hooks.def(("syrk_" + s).c_str(), [](farray<T> a) {  // lower triangle of A A^T
    const fint n = a.shape(0), k = a.shape(1);
    farray<T> c({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(n)});
    std::fill(c.mutable_data(), c.mutable_data() + n * n, T(0));
    lapack::syrk<T>('L', 'N', n, k, T(1), a.data(), std::max<fint>(n, 1), T(0), c.mutable_data(), std::max<fint>(n, 1));
    return c;
  });
  hooks.def(("trsm_" + s).c_str(), [](farray<T> l, farray<T> b) {  // solve L X = B, L lower
    farray<T> x(b.request());
    farray<T> out = py::array_t<T, py::array::f_style>({b.shape(0), b.shape(1)});
    std::copy(b.data(), b.data() + b.size(), out.mutable_data());
    const fint m = b.shape(0), n = b.shape(1);
    lapack::trsm<T>('L', 'L', 'N', 'N', m, n, T(1), l.data(), std::max<fint>(m, 1), out.mutable_data(), std::max<fint>(m, 1));
    return out;
  });
  hooks.def(("syevd_" + s).c_str(), [](farray<T> a_in) {
    const fint n = a_in.shape(0);
    farray<T> a = py::array_t<T, py::array::f_style>({n, n});
    std::copy(a_in.data(), a_in.data() + a_in.size(), a.mutable_data());
    py::array_t<T> w(n);
    T work_query;
    fint iwork_query;
    fint info = lapack::syevd<T>('V', 'L', n, a.mutable_data(), std::max<fint>(n, 1), w.mutable_data(), &work_query, -1, &iwork_query, -1);
    std::vector<T> work(static_cast<size_t>(work_query));
    std::vector<fint> iwork(iwork_query);
    info = lapack::syevd<T>('V', 'L', n, a.mutable_data(), std::max<fint>(n, 1), w.mutable_data(), work.data(),
                            static_cast<fint>(work.size()), iwork.data(), static_cast<fint>(iwork.size()));
    return py::make_tuple(w, a, info);
  });
  hooks.def(("syevr_" + s).c_str(), [](farray<T> a_in) {
    const fint n = a_in.shape(0);
    std::vector<T> a(a_in.data(), a_in.data() + a_in.size());
    py::array_t<T> w(n);
    farray<T> z = py::array_t<T, py::array::f_style>({n, n});
    std::vector<fint> isuppz(2 * std::max<fint>(n, 1));
    fint found = 0;
    T work_query;
    fint iwork_query;
    const fint ld = std::max<fint>(n, 1);
    lapack::syevr<T>('V', 'A', 'L', n, a.data(), ld, T(0), T(0), 0, 0, T(0), &found, w.mutable_data(), z.mutable_data(), ld, isuppz.data(), &work_query, -1, &iwork_query, -1);
    std::vector<T> work(static_cast<size_t>(work_query));
    std::vector<fint> iwork(iwork_query);
    fint info = lapack::syevr<T>('V', 'A', 'L', n, a.data(), ld, T(0), T(0), 0, 0, T(0), &found, w.mutable_data(), z.mutable_data(), ld, isuppz.data(), work.data(), static_cast<fint>(work.size()), iwork.data(), static_cast<fint>(iwork.size()));
    return py::make_tuple(w, z, info);
  });
  hooks.def(("gesdd_" + s).c_str(), [](farray<T> a_in) {
    const fint m = a_in.shape(0), n = a_in.shape(1), k = std::min(m, n);
    std::vector<T> a(a_in.data(), a_in.data() + a_in.size());
    py::array_t<T> sv(k);
    farray<T> u = py::array_t<T, py::array::f_style>({m, k});
    farray<T> vt = py::array_t<T, py::array::f_style>({k, n});
    std::vector<fint> iwork(8 * std::max<fint>(k, 1));
    T work_query;
    lapack::gesdd<T>('S', m, n, a.data(), std::max<fint>(m, 1), sv.mutable_data(), u.mutable_data(), std::max<fint>(m, 1), vt.mutable_data(), std::max<fint>(k, 1), &work_query, -1, iwork.data());
    std::vector<T> work(static_cast<size_t>(work_query));
    fint info = lapack::gesdd<T>('S', m, n, a.data(), std::max<fint>(m, 1), sv.mutable_data(), u.mutable_data(), std::max<fint>(m, 1), vt.mutable_data(), std::max<fint>(k, 1), work.data(), static_cast<fint>(work.size()), iwork.data());
    return py::make_tuple(u, sv, vt, info);
  });
  hooks.def(("qr_" + s).c_str(), [](farray<T> a_in) {  // geqrf then orgqr: the thin Q and R
    const fint m = a_in.shape(0), n = a_in.shape(1), k = std::min(m, n);
    farray<T> a = py::array_t<T, py::array::f_style>({m, n});
    std::copy(a_in.data(), a_in.data() + a_in.size(), a.mutable_data());
    std::vector<T> tau(std::max<fint>(k, 1));
    T work_query;
    lapack::geqrf<T>(m, n, a.mutable_data(), std::max<fint>(m, 1), tau.data(), &work_query, -1);
    std::vector<T> work(std::max<size_t>(static_cast<size_t>(work_query), 1));
    fint info = lapack::geqrf<T>(m, n, a.mutable_data(), std::max<fint>(m, 1), tau.data(), work.data(), static_cast<fint>(work.size()));
    farray<T> r = py::array_t<T, py::array::f_style>({k, n});
    for (fint j = 0; j < n; ++j)
      for (fint i = 0; i < k; ++i) r.mutable_data()[i + j * k] = i <= j ? a.data()[i + j * m] : T(0);
    farray<T> q = py::array_t<T, py::array::f_style>({m, k});
    std::copy(a.data(), a.data() + m * k, q.mutable_data());
    lapack::orgqr<T>(m, k, k, q.mutable_data(), std::max<fint>(m, 1), tau.data(), &work_query, -1);
    work.resize(std::max<size_t>(static_cast<size_t>(work_query), 1));
    info |= lapack::orgqr<T>(m, k, k, q.mutable_data(), std::max<fint>(m, 1), tau.data(), work.data(), static_cast<fint>(work.size()));
    return py::make_tuple(q, r, info);
  });
  hooks.def(("potrf_" + s).c_str(), [](farray<T> a_in) {  // lower Cholesky factor
    const fint n = a_in.shape(0);
    farray<T> a = py::array_t<T, py::array::f_style>({n, n});
    std::copy(a_in.data(), a_in.data() + a_in.size(), a.mutable_data());
    fint info = lapack::potrf<T>('L', n, a.mutable_data(), std::max<fint>(n, 1));
    for (fint j = 0; j < n; ++j)
      for (fint i = 0; i < j; ++i) a.mutable_data()[i + j * n] = T(0);
    return py::make_tuple(a, info);
  });
}

}  // namespace

void load_scipy_lapack(py::module_& m) {
  py::dict blas = py::module_::import("scipy.linalg.cython_blas").attr("__pyx_capi__");
  py::dict lapack = py::module_::import("scipy.linalg.cython_lapack").attr("__pyx_capi__");
  auto& table = randnla::lapack::table();
  if (!table.loaded) {
    fill(table.single_precision, blas, lapack, 's');
    fill(table.double_precision, blas, lapack, 'd');
    table.loaded = true;
  }
  m.def("_lapack_signature_is_lp64", [](const std::string& signature) { return signature_is_lp64(signature); });
  py::module_ hooks = m.def_submodule("_lapack_hooks", "private: LAPACK table test hooks");
  register_hooks<float>(hooks, "float32");
  register_hooks<double>(hooks, "float64");
}
