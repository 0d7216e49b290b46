// backend::Cuda, beside backend::Cpu: parameters and buffers in a GpuDevice's memory.
#pragma once

#include "ssmrl/core/backend.hpp"
#include "ssmrl/cuda/gpu_device.hpp"
#include "ssmrl/cuda/tape.hpp"

namespace ssmrl {
namespace backend {
//! The CUDA backend: device buffers of a GpuDevice; the device tape and policy programs run there.
struct Cuda {
  static constexpr const char* name = "cuda";
  using device_type = cuda::GpuDevice;
  template <class Scalar>
  using matrix = cuda::Buffer<Scalar, cuda::GpuDevice>;
};
}  // namespace backend

template <>
inline constexpr bool enable_backend<backend::Cuda> = true;
}  // namespace ssmrl
