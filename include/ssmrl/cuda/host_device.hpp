// HostDevice: the CUDA backend's device interface in host memory. It runs the device programs
// (lanes.hpp) one index after another and its matrix products with Eigen, so that the device tape,
// the scan and the policy programs are tested on every machine, against the CPU backend and the
// PyTorch references; GpuDevice (gpu_device.hpp) is the same interface on a GPU.
//
// A device has: allocate_bytes / release, upload / download / copy / zero, gemm (column-major, as
// cuBLAS), run(functor, n) and synchronize().
#pragma once

#include <Eigen/Core>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>

#include "ssmrl/cuda/lanes.hpp"

namespace ssmrl::cuda {

using Index = lanes::Index;

struct HostDevice {
  static constexpr const char* name = "host";

  [[nodiscard]] void* allocate_bytes(std::size_t bytes) {
    void* p = std::aligned_alloc(256, (bytes + 255) / 256 * 256);
    if (p == nullptr) throw std::bad_alloc();
    return p;
  }
  void release(void* p) noexcept { std::free(p); }

  template <class S>
  void upload(S* device, const S* host, std::size_t n) {
    if (n != 0) std::memcpy(device, host, n * sizeof(S));
  }
  template <class S>
  void download(S* host, const S* device, std::size_t n) {
    if (n != 0) std::memcpy(host, device, n * sizeof(S));
  }
  template <class S>
  void copy(S* to, const S* from, std::size_t n) {
    if (n != 0) std::memcpy(to, from, n * sizeof(S));
  }
  template <class S>
  void zero(S* p, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) p[i] = S(0);
  }

  //! C = alpha op(A) op(B) + beta C; op(A) is m x k, op(B) k x n, all column-major.
  template <class S>
  void gemm(bool transpose_a, bool transpose_b, Index m, Index n, Index k, S alpha, const S* A, Index lda,
            const S* B, Index ldb, S beta, S* C, Index ldc) {
    using Mat = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>;
    using Stride = Eigen::OuterStride<>;
    Eigen::Map<Mat, 0, Stride> c(C, m, n, Stride(ldc));
    const Eigen::Map<const Mat, 0, Stride> a(A, transpose_a ? k : m, transpose_a ? m : k, Stride(lda));
    const Eigen::Map<const Mat, 0, Stride> b(B, transpose_b ? n : k, transpose_b ? k : n, Stride(ldb));
    if (beta == S(0)) {
      c.setZero();
    } else if (beta != S(1)) {
      c *= beta;
    }
    if (transpose_a && transpose_b) {
      c.noalias() += alpha * a.transpose() * b.transpose();
    } else if (transpose_a) {
      c.noalias() += alpha * a.transpose() * b;
    } else if (transpose_b) {
      c.noalias() += alpha * a * b.transpose();
    } else {
      c.noalias() += alpha * a * b;
    }
  }

  template <class F>
  void run(const F& f, Index n) {
    for (Index i = 0; i < n; ++i) f(i);
  }
  void synchronize() {}
};

}  // namespace ssmrl::cuda
