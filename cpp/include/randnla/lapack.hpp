// randnla/lapack.hpp: the BLAS/LAPACK that SciPy ships, reached through typed function pointers.
//
// randnla links no BLAS of its own. At import, module.cpp fills this table from the PyCapsules
// that scipy.linalg.cython_blas / cython_lapack export (see scipy_lapack.cpp), so the C++ core
// uses exactly the library NumPy/SciPy users already have, with its threading.
//
// All routines are the Fortran ones: column-major, arguments by pointer, 32-bit integers (LP64;
// an ILP64 SciPy is refused at import). The typed wrappers below take arguments by value.
// Never call these from inside a parallel_for region: the BLAS runs its own threads.
#pragma once

#include <stdexcept>

namespace randnla {
namespace lapack {

using fint = int;

// X-macro: name, return type, Fortran argument list with T the real type.
#define RANDNLA_LAPACK_ROUTINES(X)                                                                          \
  X(gemm, (char*, char*, fint*, fint*, fint*, T*, T*, fint*, T*, fint*, T*, T*, fint*))                     \
  X(gemv, (char*, fint*, fint*, T*, T*, fint*, T*, fint*, T*, T*, fint*))                                   \
  X(syrk, (char*, char*, fint*, fint*, T*, T*, fint*, T*, T*, fint*))                                       \
  X(trsm, (char*, char*, char*, char*, fint*, fint*, T*, T*, fint*, T*, fint*))                             \
  X(trmm, (char*, char*, char*, char*, fint*, fint*, T*, T*, fint*, T*, fint*))                             \
  X(trsv, (char*, char*, char*, fint*, T*, fint*, T*, fint*))                                               \
  X(syevd, (char*, char*, fint*, T*, fint*, T*, T*, fint*, fint*, fint*, fint*))                            \
  X(syevr, (char*, char*, char*, fint*, T*, fint*, T*, T*, fint*, fint*, T*, fint*, T*, T*, fint*, fint*,    \
            T*, fint*, fint*, fint*, fint*))                                                                \
  X(gesdd, (char*, fint*, fint*, T*, fint*, T*, T*, fint*, T*, fint*, T*, fint*, fint*, fint*))            \
  X(geqrf, (fint*, fint*, T*, fint*, T*, T*, fint*, fint*))                                                 \
  X(orgqr, (fint*, fint*, fint*, T*, fint*, T*, T*, fint*, fint*))                                          \
  X(ormqr, (char*, char*, fint*, fint*, fint*, T*, fint*, T*, T*, fint*, T*, fint*, fint*))                 \
  X(potrf, (char*, fint*, T*, fint*, fint*))                                                                \
  X(potrs, (char*, fint*, fint*, T*, fint*, T*, fint*, fint*))                                              \
  X(getrf, (fint*, fint*, T*, fint*, fint*, fint*))                                                         \
  X(getrs, (char*, fint*, fint*, T*, fint*, fint*, T*, fint*, fint*))                                       \
  X(stevd, (char*, fint*, T*, T*, T*, fint*, T*, fint*, fint*, fint*, fint*))                               \
  X(sterf, (fint*, T*, T*, fint*))                                                                          \
  X(sytrd, (char*, fint*, T*, fint*, T*, T*, T*, T*, fint*, fint*))                                         \
  X(ormtr, (char*, char*, char*, fint*, fint*, T*, fint*, T*, T*, fint*, T*, fint*, fint*))                \
  X(stein, (fint*, T*, T*, fint*, T*, fint*, fint*, T*, fint*, T*, fint*, fint*, fint*))                   \
  X(laed2, (fint*, fint*, fint*, T*, T*, fint*, fint*, T*, T*, T*, T*, T*, fint*, fint*, fint*, fint*, fint*)) \
  X(laed4, (fint*, fint*, T*, T*, T*, T*, T*, fint*))

template <class T>
struct Routines {
#define RANDNLA_DECLARE_POINTER(name, args) void(*name) args = nullptr;
  RANDNLA_LAPACK_ROUTINES(RANDNLA_DECLARE_POINTER)
#undef RANDNLA_DECLARE_POINTER
};

struct Table {
  Routines<float> single_precision;
  Routines<double> double_precision;
  bool loaded = false;
};

// One table per process (an inline function's static is unique across the module's objects).
inline Table& table() {
  static Table instance;
  return instance;
}

template <class T>
inline const Routines<T>& routines() {
  const Table& t = table();
  if (!t.loaded) throw std::runtime_error("randnla: the LAPACK table was not loaded");
  if constexpr (sizeof(T) == sizeof(float)) {
    return t.single_precision;
  } else {
    return t.double_precision;
  }
}

// ---- typed wrappers (column-major, Fortran semantics) ----

template <class T>
inline void gemm(char transa, char transb, fint m, fint n, fint k, T alpha, const T* a, fint lda, const T* b,
                 fint ldb, T beta, T* c, fint ldc) {
  routines<T>().gemm(&transa, &transb, &m, &n, &k, &alpha, const_cast<T*>(a), &lda, const_cast<T*>(b), &ldb,
                     &beta, c, &ldc);
}

template <class T>
inline void gemv(char trans, fint m, fint n, T alpha, const T* a, fint lda, const T* x, fint incx, T beta, T* y,
                 fint incy) {
  routines<T>().gemv(&trans, &m, &n, &alpha, const_cast<T*>(a), &lda, const_cast<T*>(x), &incx, &beta, y, &incy);
}

template <class T>
inline void syrk(char uplo, char trans, fint n, fint k, T alpha, const T* a, fint lda, T beta, T* c, fint ldc) {
  routines<T>().syrk(&uplo, &trans, &n, &k, &alpha, const_cast<T*>(a), &lda, &beta, c, &ldc);
}

template <class T>
inline void trsm(char side, char uplo, char transa, char diag, fint m, fint n, T alpha, const T* a, fint lda, T* b,
                 fint ldb) {
  routines<T>().trsm(&side, &uplo, &transa, &diag, &m, &n, &alpha, const_cast<T*>(a), &lda, b, &ldb);
}

template <class T>
inline void trmm(char side, char uplo, char transa, char diag, fint m, fint n, T alpha, const T* a, fint lda, T* b,
                 fint ldb) {
  routines<T>().trmm(&side, &uplo, &transa, &diag, &m, &n, &alpha, const_cast<T*>(a), &lda, b, &ldb);
}

template <class T>
inline void trsv(char uplo, char trans, char diag, fint n, const T* a, fint lda, T* x, fint incx) {
  routines<T>().trsv(&uplo, &trans, &diag, &n, const_cast<T*>(a), &lda, x, &incx);
}

// Returns LAPACK's info (0 on success). lwork = -1 queries the workspace as usual.
template <class T>
inline fint syevd(char jobz, char uplo, fint n, T* a, fint lda, T* w, T* work, fint lwork, fint* iwork,
                  fint liwork) {
  fint info = 0;
  routines<T>().syevd(&jobz, &uplo, &n, a, &lda, w, work, &lwork, iwork, &liwork, &info);
  return info;
}

template <class T>
inline fint syevr(char jobz, char range, char uplo, fint n, T* a, fint lda, T vl, T vu, fint il, fint iu, T abstol,
                  fint* m, T* w, T* z, fint ldz, fint* isuppz, T* work, fint lwork, fint* iwork, fint liwork) {
  fint info = 0;
  routines<T>().syevr(&jobz, &range, &uplo, &n, a, &lda, &vl, &vu, &il, &iu, &abstol, m, w, z, &ldz, isuppz, work,
                      &lwork, iwork, &liwork, &info);
  return info;
}

template <class T>
inline fint gesdd(char jobz, fint m, fint n, T* a, fint lda, T* s, T* u, fint ldu, T* vt, fint ldvt, T* work,
                  fint lwork, fint* iwork) {
  fint info = 0;
  routines<T>().gesdd(&jobz, &m, &n, a, &lda, s, u, &ldu, vt, &ldvt, work, &lwork, iwork, &info);
  return info;
}

template <class T>
inline fint geqrf(fint m, fint n, T* a, fint lda, T* tau, T* work, fint lwork) {
  fint info = 0;
  routines<T>().geqrf(&m, &n, a, &lda, tau, work, &lwork, &info);
  return info;
}

template <class T>
inline fint orgqr(fint m, fint n, fint k, T* a, fint lda, const T* tau, T* work, fint lwork) {
  fint info = 0;
  routines<T>().orgqr(&m, &n, &k, a, &lda, const_cast<T*>(tau), work, &lwork, &info);
  return info;
}

template <class T>
inline fint ormqr(char side, char trans, fint m, fint n, fint k, const T* a, fint lda, const T* tau, T* c, fint ldc,
                  T* work, fint lwork) {
  fint info = 0;
  routines<T>().ormqr(&side, &trans, &m, &n, &k, const_cast<T*>(a), &lda, const_cast<T*>(tau), c, &ldc, work,
                      &lwork, &info);
  return info;
}

template <class T>
inline fint potrf(char uplo, fint n, T* a, fint lda) {
  fint info = 0;
  routines<T>().potrf(&uplo, &n, a, &lda, &info);
  return info;
}

template <class T>
inline fint potrs(char uplo, fint n, fint nrhs, const T* a, fint lda, T* b, fint ldb) {
  fint info = 0;
  routines<T>().potrs(&uplo, &n, &nrhs, const_cast<T*>(a), &lda, b, &ldb, &info);
  return info;
}

template <class T>
inline fint getrf(fint m, fint n, T* a, fint lda, fint* ipiv) {
  fint info = 0;
  routines<T>().getrf(&m, &n, a, &lda, ipiv, &info);
  return info;
}

template <class T>
inline fint getrs(char trans, fint n, fint nrhs, const T* a, fint lda, const fint* ipiv, T* b, fint ldb) {
  fint info = 0;
  routines<T>().getrs(&trans, &n, &nrhs, const_cast<T*>(a), &lda, const_cast<fint*>(ipiv), b, &ldb, &info);
  return info;
}

template <class T>
inline fint stevd(char jobz, fint n, T* d, T* e, T* z, fint ldz, T* work, fint lwork, fint* iwork, fint liwork) {
  fint info = 0;
  routines<T>().stevd(&jobz, &n, d, e, z, &ldz, work, &lwork, iwork, &liwork, &info);
  return info;
}

template <class T>
inline fint sterf(fint n, T* d, T* e) {
  fint info = 0;
  routines<T>().sterf(&n, d, e, &info);
  return info;
}

// Householder reduction to tridiagonal form (d, e, tau); lwork >= n * block size.
template <class T>
inline fint sytrd(char uplo, fint n, T* a, fint lda, T* d, T* e, T* tau, T* work, fint lwork) {
  fint info = 0;
  routines<T>().sytrd(&uplo, &n, a, &lda, d, e, tau, work, &lwork, &info);
  return info;
}

// Applies the orthogonal matrix of sytrd to C.
template <class T>
inline fint ormtr(char side, char uplo, char trans, fint m, fint n, const T* a, fint lda, const T* tau, T* c,
                  fint ldc, T* work, fint lwork) {
  fint info = 0;
  routines<T>().ormtr(&side, &uplo, &trans, &m, &n, const_cast<T*>(a), &lda, const_cast<T*>(tau), c, &ldc, work,
                      &lwork, &info);
  return info;
}

// Eigenvectors of a symmetric tridiagonal matrix for the m given eigenvalues w (ascending within
// each block of iblock / isplit) by inverse iteration; work >= 5n, iwork >= n, ifail >= m.
template <class T>
inline fint stein(fint n, const T* d, const T* e, fint m, const T* w, const fint* iblock, const fint* isplit, T* z,
                  fint ldz, T* work, fint* iwork, fint* ifail) {
  fint info = 0;
  routines<T>().stein(&n, const_cast<T*>(d), const_cast<T*>(e), &m, const_cast<T*>(w), const_cast<fint*>(iblock),
                      const_cast<fint*>(isplit), z, &ldz, work, iwork, ifail, &info);
  return info;
}

// Deflation step of the divide-and-conquer merge of two solved halves (sizes n1, n - n1) coupled
// by rho z z^T (LAPACK's internal laed2; see its documentation for the argument layout).
template <class T>
inline fint laed2(fint& k, fint n, fint n1, T* d, T* q, fint ldq, fint* indxq, T& rho, T* z, T* dlamda, T* w,
                  T* q2, fint* indx, fint* indxc, fint* indxp, fint* coltyp) {
  fint info = 0;
  routines<T>().laed2(&k, &n, &n1, d, q, &ldq, indxq, &rho, z, dlamda, w, q2, indx, indxc, indxp, coltyp, &info);
  return info;
}

// The i-th root (1-based) of the secular equation 1 + rho sum z_j^2 / (d_j - x) = 0 and the
// differences delta_j = d_j - root (LAPACK's internal laed4).
template <class T>
inline fint laed4(fint n, fint i, const T* d, const T* z, T* delta, T rho, T& dlam) {
  fint info = 0;
  routines<T>().laed4(&n, &i, const_cast<T*>(d), const_cast<T*>(z), delta, &rho, &dlam, &info);
  return info;
}

}  // namespace lapack
}  // namespace randnla
