// randnla/config.hpp: the few macros and integer types shared by host code and CUDA kernels.
// Safe to include from NVRTC (no standard headers when compiled at run time by CuPy).
#pragma once

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define RANDNLA_HOST_DEVICE __host__ __device__
#define RANDNLA_DEVICE_CODE 1
#else
#define RANDNLA_HOST_DEVICE
#endif

#if defined(__CUDACC_RTC__)
namespace randnla {
typedef unsigned long long u64;
typedef unsigned int u32;
typedef long long i64;
}  // namespace randnla
#else
#include <cstdint>
namespace randnla {
typedef std::uint64_t u64;
typedef std::uint32_t u32;
typedef std::int64_t i64;
}  // namespace randnla
#endif
