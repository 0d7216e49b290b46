// GpuDevice: the CUDA backend's device, a GPU through the CUDA runtime and cuBLAS. This header
// includes no CUDA header: the kernels are compiled once, by nvcc, into the ssmrl::cuda target
// (gpu_device.cu), so that code using the GPU is compiled by the ordinary C++ compiler and only
// links the target. backend.hpp names this backend backend::Cuda, beside backend::Cpu.
//
// A GpuDevice owns a CUDA stream and a cuBLAS handle bound to it; every operation is queued on that
// stream, in order, and downloads wait for it. Device memory is plain cudaMalloc, never managed.
#pragma once

#include <cstddef>
#include <string>

#include "ssmrl/cuda/lanes.hpp"

namespace ssmrl::cuda {

using Index = lanes::Index;

//! The number of CUDA devices; 0, with the runtime's reason in `why`, where there is none (no GPU,
//! no driver).
[[nodiscard]] int device_count(std::string* why = nullptr);

class GpuDevice {
public:
  static constexpr const char* name = "cuda";

  //! Opens device `ordinal`; throws std::runtime_error naming the CUDA call where that fails.
  explicit GpuDevice(int ordinal = 0);
  GpuDevice(const GpuDevice&) = delete;
  GpuDevice& operator=(const GpuDevice&) = delete;
  ~GpuDevice();

  //! The device's name and compute capability.
  [[nodiscard]] std::string description() const;

  [[nodiscard]] void* allocate_bytes(std::size_t bytes);
  void release(void* p) noexcept;
  template <class S>
  void upload(S* device, const S* host, std::size_t n);
  template <class S>
  void download(S* host, const S* device, std::size_t n);
  template <class S>
  void copy(S* to, const S* from, std::size_t n);
  template <class S>
  void zero(S* p, std::size_t n);
  //! cuBLAS gemm: C = alpha op(A) op(B) + beta C, column-major.
  template <class S>
  void gemm(bool transpose_a, bool transpose_b, Index m, Index n, Index k, S alpha, const S* A, Index lda,
            const S* B, Index ldb, S beta, S* C, Index ldc);
  //! Runs f(i) for i in [0, n) as one kernel on the stream. Defined for the programs listed in
  //! SSMRL_CUDA_PROGRAMS (instantiated in gpu_device.cu), in float and double.
  template <class F>
  void run(const F& f, Index n);
  void synchronize();

private:
  int ordinal_;
  void* stream_ = nullptr;  // cudaStream_t
  void* blas_ = nullptr;    // cublasHandle_t
};

// The device programs that GpuDevice::run is compiled for: X(program type) for scalar S (X takes
// __VA_ARGS__: the types hold commas).
#define SSMRL_CUDA_PROGRAMS(X, S)                                                                            \
  X(lanes::ScanFold<S>) X(lanes::ScanCarry<S>) X(lanes::ScanWrite<S>)                                       \
  X(lanes::RowSumPartial<S, lanes::MatrixTerm<S>>) X(lanes::RowSumPartial<S, lanes::ScanDecayTerm<S>>)       \
  X(lanes::RowSumPartial<S, lanes::InitialStateDecayTerm<S>>) X(lanes::InitialState<S>)                       \
  X(lanes::RowSumPartial<S, lanes::GaussianLogProbTerm<S>>)                                                  \
  X(lanes::RowSumPartial<S, lanes::GaussianLogStdTerm<S>>)                                                   \
  X(lanes::RowSumPartial<S, lanes::CategoricalLogProbTerm<S>>) X(lanes::RowSumTotal<S>)                      \
  X(lanes::AddBias<S>) X(lanes::AddInto<S>) X(lanes::Tanh<S>) X(lanes::TanhBackward<S>)                      \
  X(lanes::ZohForward<S>) X(lanes::ZohBackward<S>) X(lanes::DiagStateStep<S>)                                \
  X(lanes::GaussianMeanBackward<S>) X(lanes::CategoricalBackward<S>) X(lanes::GaussianAct<S>)                \
  X(lanes::CategoricalAct<S>)

}  // namespace ssmrl::cuda
