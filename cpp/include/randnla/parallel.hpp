// randnla/parallel.hpp: the one place that decides how loops run on threads.
// parallel_for(n, n_threads, fn) calls fn(i) for i in [0, n); static scheduling so that work
// assignment never changes results (each i writes its own output and draws its own random
// numbers from counters derived from i, never from the thread).
#pragma once

#include <algorithm>
#include <cstddef>
#include <exception>
#include <mutex>

#if defined(RANDNLA_HAVE_OPENMP)
#include <omp.h>
#endif

namespace randnla {

// Resolve the user's n_threads: <= 0 means "all cores".
inline int resolve_threads(int n_threads) {
#if defined(RANDNLA_HAVE_OPENMP)
  if (n_threads <= 0) return omp_get_num_procs();
  return n_threads;
#else
  (void)n_threads;
  return 1;
#endif
}

inline bool have_openmp() {
#if defined(RANDNLA_HAVE_OPENMP)
  return true;
#else
  return false;
#endif
}

namespace detail {

// The loop behind parallel_for and parallel_for_dynamic; only the OpenMP schedule differs.
template <bool Dynamic, class Fn>
void parallel_loop(std::ptrdiff_t n, int n_threads, Fn& fn) {
  const int threads = static_cast<int>(std::min<std::ptrdiff_t>(resolve_threads(n_threads), std::max<std::ptrdiff_t>(n, 1)));
  if (threads <= 1 || n <= 1) {
    for (std::ptrdiff_t i = 0; i < n; ++i) fn(i);
    return;
  }
#if defined(RANDNLA_HAVE_OPENMP)
  std::exception_ptr failure = nullptr;
  std::mutex failure_mutex;
  auto guarded = [&](std::ptrdiff_t i) {
    try {
      fn(i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(failure_mutex);
      if (!failure) failure = std::current_exception();
    }
  };
  if constexpr (Dynamic) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (std::ptrdiff_t i = 0; i < n; ++i) guarded(i);
  } else {
#pragma omp parallel for schedule(static) num_threads(threads)
    for (std::ptrdiff_t i = 0; i < n; ++i) guarded(i);
  }
  if (failure) std::rethrow_exception(failure);
#else
  for (std::ptrdiff_t i = 0; i < n; ++i) fn(i);
#endif
}

}  // namespace detail

// Runs fn(i) for i in [0, n). An exception thrown by fn is captured and rethrown on the
// calling thread after the loop (exceptions must not escape an OpenMP region).
// Never call BLAS/LAPACK inside fn: the BLAS has its own threads.
template <class Fn>
void parallel_for(std::ptrdiff_t n, int n_threads, Fn&& fn) {
  detail::parallel_loop<false>(n, n_threads, fn);
}

// Like parallel_for, but hands out work items dynamically: on a loaded machine a descheduled
// thread does not hold back a static share of the work. Only for loops whose items write only
// their own outputs and draw only from their own counters, so results never depend on the schedule.
template <class Fn>
void parallel_for_dynamic(std::ptrdiff_t n, int n_threads, Fn&& fn) {
  detail::parallel_loop<true>(n, n_threads, fn);
}

// Like parallel_for but over contiguous chunks: fn(begin, end, chunk_index). The chunking
// depends only on n and chunk_size, never on the thread count, so per-chunk reductions
// combined in chunk order give identical results for any number of threads.
template <class Fn>
void parallel_for_chunks(std::ptrdiff_t n, std::ptrdiff_t chunk_size, int n_threads, Fn&& fn) {
  chunk_size = std::max<std::ptrdiff_t>(chunk_size, 1);
  const std::ptrdiff_t n_chunks = (n + chunk_size - 1) / chunk_size;
  parallel_for(n_chunks, n_threads, [&](std::ptrdiff_t c) {
    const std::ptrdiff_t begin = c * chunk_size;
    fn(begin, std::min(n, begin + chunk_size), c);
  });
}

}  // namespace randnla
