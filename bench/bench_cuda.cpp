// The CUDA backend against the CPU backend, in one binary: the diagonal-SSM sequence workload of
// BM_DiagSsmSeqFwdBwd (diag_ssm_workload.hpp; batch 8 x 1000 steps) and a longer one (batch 64 x
// 4096 steps), and one greedy policy step of 4096 environments. _Cpu is ad::Tape and
// RecurrentPolicy::act; _HostDevice the device programs run on the host (HostDevice); _Gpu the GPU
// (skipped without one). Each GPU iteration ends with the loss downloaded, so it times finished work.
#include <benchmark/benchmark.h>
#include <ssmrl/cuda/bridge.hpp>
#include <ssmrl/cuda/host_device.hpp>
#include <ssmrl/ssmrl.hpp>

#include <memory>
#include <random>
#include <string>

#include "diag_ssm_workload.hpp"
#include "support/workloads.hpp"

#if defined(SSMRL_BENCH_GPU)
#include <ssmrl/cuda/backend.hpp>
#endif

namespace {

using namespace ssmrl;
using Scalar = float;
using Mat = ad::Matrix<Scalar>;

template <class Device>
void seq_device(benchmark::State& state, Device& device, ad::Index batch, ad::Index steps) {
  const auto policy = bench::diag_ssm_policy();
  const auto data = test::random_sequence_batch<Scalar>(4, 2, batch, steps, 2);
  auto dp = cuda::to_device<Scalar>(device, policy);
  cuda::Buffer<Scalar, Device> obs(device, data.obs.size()), actions(device, data.actions.size()),
      weights(device, data.advantages.size());
  obs.upload(data.obs.data(), data.obs.size());
  actions.upload(data.actions.data(), data.actions.size());
  weights.upload(data.advantages.data(), data.advantages.size());
  const cuda::DeviceSequences<Scalar> seq{
      .obs = obs.data(), .actions = actions.data(), .weights = weights.data(), .batch = batch, .steps = steps};
  cuda::Tape<Scalar, Device> tape(device);
  for (auto _ : state) {
    tape.clear();
    dp.zero_gradients();
    const auto loss = dp.policy_gradient_loss(tape, seq);
    tape.backward(loss);
    benchmark::DoNotOptimize(tape.item(loss));
  }
  state.counters["steps/s"] = benchmark::Counter(double(batch * steps), benchmark::Counter::kIsIterationInvariantRate);
}

void step_cpu(benchmark::State& state, ad::Index envs) {
  auto policy = bench::diag_ssm_policy();
  policy.set_num_envs(envs);
  const auto data = test::random_sequence_batch<Scalar>(4, 2, envs, 8, 2);
  std::mt19937_64 rng(3);
  ad::Index t = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(policy.act(data.obs.middleCols(t * envs, envs), policy::ActMode::greedy, rng).actions.data());
    t = (t + 1) % 8;
  }
  state.counters["steps/s"] = benchmark::Counter(double(envs), benchmark::Counter::kIsIterationInvariantRate);
}

//! Observations uploaded and actions downloaded each step, as a rollout on host environments does.
template <class Device>
void step_device(benchmark::State& state, Device& device, ad::Index envs) {
  auto dp = cuda::to_device<Scalar>(device, bench::diag_ssm_policy());
  const auto data = test::random_sequence_batch<Scalar>(4, 2, envs, 8, 2);
  cuda::Buffer<Scalar, Device> h(device, 64 * envs), obs(device, 4 * envs), logits(device, 2 * envs), actions(device, envs);
  Mat chosen(1, envs);
  ad::Index t = 0;
  for (auto _ : state) {
    obs.upload(data.obs.middleCols(t * envs, envs).eval().data(), 4 * envs);
    dp.act(h.data(), obs.data(), nullptr, envs, nullptr, logits.data(), actions.data());
    actions.download(chosen.data(), envs);
    benchmark::DoNotOptimize(chosen.data());
    t = (t + 1) % 8;
  }
  state.counters["steps/s"] = benchmark::Counter(double(envs), benchmark::Counter::kIsIterationInvariantRate);
}

cuda::HostDevice host_device;

#if defined(SSMRL_BENCH_GPU)
// Opened on first use; without a device each GPU benchmark reports why it was skipped.
cuda::GpuDevice* gpu(benchmark::State& state) {
  static std::string why;
  static std::unique_ptr<cuda::GpuDevice> device = [] {
    return cuda::device_count(&why) > 0 ? std::make_unique<cuda::GpuDevice>() : nullptr;
  }();
  if (device == nullptr) state.SkipWithError(("no CUDA device: " + why).c_str());
  return device.get();
}
void BM_DiagSsmSeqFwdBwd_Gpu(benchmark::State& state) {
  if (auto* d = gpu(state)) seq_device(state, *d, 8, 1000);
}
void BM_DiagSsmSeqFwdBwd_Long_Gpu(benchmark::State& state) {
  if (auto* d = gpu(state)) seq_device(state, *d, 64, 4096);
}
void BM_PolicyStep_B4096_Gpu(benchmark::State& state) {
  if (auto* d = gpu(state)) step_device(state, *d, 4096);
}
BENCHMARK(BM_DiagSsmSeqFwdBwd_Gpu)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DiagSsmSeqFwdBwd_Long_Gpu)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PolicyStep_B4096_Gpu)->Unit(benchmark::kMicrosecond);
#endif

void BM_DiagSsmSeqFwdBwd_Cpu(benchmark::State& state) { bench::diag_ssm_seq_fwd_bwd(state, true, 8, 1000); }
void BM_DiagSsmSeqFwdBwd_HostDevice(benchmark::State& state) { seq_device(state, host_device, 8, 1000); }
void BM_DiagSsmSeqFwdBwd_Long_Cpu(benchmark::State& state) { bench::diag_ssm_seq_fwd_bwd(state, true, 64, 4096); }
void BM_DiagSsmSeqFwdBwd_Long_HostDevice(benchmark::State& state) { seq_device(state, host_device, 64, 4096); }
void BM_PolicyStep_B4096_Cpu(benchmark::State& state) { step_cpu(state, 4096); }
void BM_PolicyStep_B4096_HostDevice(benchmark::State& state) { step_device(state, host_device, 4096); }
BENCHMARK(BM_DiagSsmSeqFwdBwd_Cpu)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DiagSsmSeqFwdBwd_HostDevice)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DiagSsmSeqFwdBwd_Long_Cpu)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DiagSsmSeqFwdBwd_Long_HostDevice)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PolicyStep_B4096_Cpu)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_PolicyStep_B4096_HostDevice)->Unit(benchmark::kMicrosecond);

}  // namespace
