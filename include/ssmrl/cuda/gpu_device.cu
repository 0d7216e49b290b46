// GpuDevice's definitions and its kernels, compiled by nvcc into the ssmrl::cuda target. Every
// kernel is one grid-stride loop over a program of lanes.hpp, the same code HostDevice runs.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <limits>
#include <stdexcept>
#include <string>

#include "ssmrl/cuda/gpu_device.hpp"

namespace ssmrl::cuda {

namespace {

void check(cudaError_t status, const char* call) {
  if (status != cudaSuccess) {
    throw std::runtime_error(std::string("cuda::GpuDevice: ") + call + " failed: " + cudaGetErrorName(status) + ": " +
                             cudaGetErrorString(status));
  }
}

void check(cublasStatus_t status, const char* call) {
  if (status != CUBLAS_STATUS_SUCCESS) {
    throw std::runtime_error(std::string("cuda::GpuDevice: ") + call + " failed with cuBLAS status " +
                             std::to_string(static_cast<int>(status)));
  }
}

int as_int(Index v, const char* what) {
  if (v < 0 || v > std::numeric_limits<int>::max()) {
    throw std::runtime_error(std::string("cuda::GpuDevice::gemm: ") + what + " = " + std::to_string(v) +
                             " does not fit cuBLAS's int");
  }
  return static_cast<int>(v);
}

cudaStream_t stream_of(void* s) { return static_cast<cudaStream_t>(s); }
cublasHandle_t blas_of(void* h) { return static_cast<cublasHandle_t>(h); }

template <class F>
__global__ void run_program(F f, Index n) {
  const Index stride = static_cast<Index>(gridDim.x) * blockDim.x;
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) f(i);
}

}  // namespace

int device_count(std::string* why) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    if (why != nullptr) *why = std::string("cudaGetDeviceCount: ") + cudaGetErrorName(status) + ": " + cudaGetErrorString(status);
    cudaGetLastError();  // clears the error
    return 0;
  }
  if (count == 0 && why != nullptr) *why = "cudaGetDeviceCount: no device";
  return count;
}

GpuDevice::GpuDevice(int ordinal) : ordinal_(ordinal) {
  std::string why;
  const int count = device_count(&why);
  if (ordinal < 0 || ordinal >= count) {
    throw std::runtime_error("cuda::GpuDevice: device " + std::to_string(ordinal) + " does not exist (" +
                             std::to_string(count) + " device(s)" + (why.empty() ? "" : "; " + why) + ")");
  }
  check(cudaSetDevice(ordinal), "cudaSetDevice");
  cudaStream_t stream = nullptr;
  check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
  stream_ = stream;
  cublasHandle_t handle = nullptr;
  if (const auto status = cublasCreate(&handle); status != CUBLAS_STATUS_SUCCESS) {
    cudaStreamDestroy(stream);
    check(status, "cublasCreate");
  }
  blas_ = handle;
  check(cublasSetStream(handle, stream), "cublasSetStream");
  // Pedantic math: no tensor-core reduced precision in float, so that results match the CPU's.
  check(cublasSetMathMode(handle, CUBLAS_PEDANTIC_MATH), "cublasSetMathMode");
}

GpuDevice::~GpuDevice() {
  cudaSetDevice(ordinal_);
  if (blas_ != nullptr) cublasDestroy(blas_of(blas_));
  if (stream_ != nullptr) {
    cudaStreamSynchronize(stream_of(stream_));
    cudaStreamDestroy(stream_of(stream_));
  }
}

std::string GpuDevice::description() const {
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, ordinal_), "cudaGetDeviceProperties");
  return std::string(prop.name) + " (compute capability " + std::to_string(prop.major) + "." +
         std::to_string(prop.minor) + ")";
}

void* GpuDevice::allocate_bytes(std::size_t bytes) {
  void* p = nullptr;
  check(cudaMalloc(&p, bytes == 0 ? 1 : bytes), "cudaMalloc");
  return p;
}

void GpuDevice::release(void* p) noexcept {
  if (p == nullptr) return;
  cudaStreamSynchronize(stream_of(stream_));  // the memory may still be in use by queued work
  cudaFree(p);
}

template <class S>
void GpuDevice::upload(S* device, const S* host, std::size_t n) {
  if (n == 0) return;
  check(cudaMemcpyAsync(device, host, n * sizeof(S), cudaMemcpyHostToDevice, stream_of(stream_)), "cudaMemcpyAsync (upload)");
  // The host buffer may be pageable or change right after: wait, as a plain copy would.
  check(cudaStreamSynchronize(stream_of(stream_)), "cudaStreamSynchronize (upload)");
}

template <class S>
void GpuDevice::download(S* host, const S* device, std::size_t n) {
  if (n == 0) return;
  check(cudaMemcpyAsync(host, device, n * sizeof(S), cudaMemcpyDeviceToHost, stream_of(stream_)),
        "cudaMemcpyAsync (download)");
  check(cudaStreamSynchronize(stream_of(stream_)), "cudaStreamSynchronize (download)");
}

template <class S>
void GpuDevice::copy(S* to, const S* from, std::size_t n) {
  if (n == 0) return;
  check(cudaMemcpyAsync(to, from, n * sizeof(S), cudaMemcpyDeviceToDevice, stream_of(stream_)), "cudaMemcpyAsync (copy)");
}

template <class S>
void GpuDevice::zero(S* p, std::size_t n) {
  if (n == 0) return;
  check(cudaMemsetAsync(p, 0, n * sizeof(S), stream_of(stream_)), "cudaMemsetAsync");
}

template <>
void GpuDevice::gemm<float>(bool ta, bool tb, Index m, Index n, Index k, float alpha, const float* A, Index lda,
                            const float* B, Index ldb, float beta, float* C, Index ldc) {
  check(cublasSgemm(blas_of(blas_), ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N, as_int(m, "m"),
                    as_int(n, "n"), as_int(k, "k"), &alpha, A, as_int(lda, "lda"), B, as_int(ldb, "ldb"), &beta, C,
                    as_int(ldc, "ldc")),
        "cublasSgemm");
}

template <>
void GpuDevice::gemm<double>(bool ta, bool tb, Index m, Index n, Index k, double alpha, const double* A, Index lda,
                             const double* B, Index ldb, double beta, double* C, Index ldc) {
  check(cublasDgemm(blas_of(blas_), ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N, as_int(m, "m"),
                    as_int(n, "n"), as_int(k, "k"), &alpha, A, as_int(lda, "lda"), B, as_int(ldb, "ldb"), &beta, C,
                    as_int(ldc, "ldc")),
        "cublasDgemm");
}

template <class F>
void GpuDevice::run(const F& f, Index n) {
  if (n <= 0) return;
  constexpr int threads = 256;
  const Index wanted = (n + threads - 1) / threads;
  const unsigned blocks = static_cast<unsigned>(wanted < 65535 ? wanted : 65535);
  run_program<F><<<blocks, threads, 0, stream_of(stream_)>>>(f, n);
  check(cudaGetLastError(), "kernel launch");
}

void GpuDevice::synchronize() { check(cudaStreamSynchronize(stream_of(stream_)), "cudaStreamSynchronize"); }

#define SSMRL_CUDA_INSTANTIATE_RUN(...) template void GpuDevice::run<__VA_ARGS__>(const __VA_ARGS__&, Index);
SSMRL_CUDA_PROGRAMS(SSMRL_CUDA_INSTANTIATE_RUN, float)
SSMRL_CUDA_PROGRAMS(SSMRL_CUDA_INSTANTIATE_RUN, double)
#undef SSMRL_CUDA_INSTANTIATE_RUN

#define SSMRL_CUDA_INSTANTIATE_MEMORY(S)                                    \
  template void GpuDevice::upload<S>(S*, const S*, std::size_t);         \
  template void GpuDevice::download<S>(S*, const S*, std::size_t);       \
  template void GpuDevice::copy<S>(S*, const S*, std::size_t);           \
  template void GpuDevice::zero<S>(S*, std::size_t);
SSMRL_CUDA_INSTANTIATE_MEMORY(float)
SSMRL_CUDA_INSTANTIATE_MEMORY(double)
SSMRL_CUDA_INSTANTIATE_MEMORY(lanes::Link<float>)
SSMRL_CUDA_INSTANTIATE_MEMORY(lanes::Link<double>)
#undef SSMRL_CUDA_INSTANTIATE_MEMORY

}  // namespace ssmrl::cuda
