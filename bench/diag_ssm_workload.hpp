// The diagonal-SSM sequence workload of BM_DiagSsmSeqFwdBwd, shared by the model and the CUDA
// backend benchmarks: a categorical policy (W2's sizes: obs 4, state 64, hidden 64, actions 2),
// REINFORCE loss over batch x steps, forward and backward on the CPU backend.
#pragma once

#include <benchmark/benchmark.h>
#include <ssmrl/ssmrl.hpp>

#include <vector>

#include "support/workloads.hpp"

namespace ssmrl::bench {

using DiagSsmCategorical = policy::RecurrentPolicy<nn::DiagSsmCell<float>, policy::CategoricalHead<float>>;

//! `scan`: the fused associative scan, else one node per step.
inline DiagSsmCategorical diag_ssm_policy(bool scan = true) {
  using W2 = test::W2;
  return {nn::DiagSsmCell<float>({.input = W2::obs, .state = W2::state, .output = W2::hidden, .scan = scan}),
          policy::CategoricalHead<float>(W2::hidden, W2::actions), {}, {}, 1};
}

inline void diag_ssm_seq_fwd_bwd(benchmark::State& state, bool scan, ad::Index batch, ad::Index steps) {
  const auto policy = diag_ssm_policy(scan);
  const auto data = test::random_sequence_batch<float>(test::W2::obs, test::W2::actions, batch, steps, 2);
  ad::Tape<float> tape;
  std::vector<ad::Matrix<float>> grads;
  for (auto _ : state) benchmark::DoNotOptimize(test::reinforce_step(tape, policy, data, grads));
  state.counters["steps/s"] = benchmark::Counter(double(batch * steps), benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace ssmrl::bench
