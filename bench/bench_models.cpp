// Model benchmarks: one inference step of a policy (no tape) against a hand-written Eigen step, and
// training passes of the diagonal SSM through its fused scan and through a node per step.
#include <benchmark/benchmark.h>
#include <ssmrl/ssmrl.hpp>

#include <random>

#include "diag_ssm_workload.hpp"
#include "support/workloads.hpp"

namespace {

using namespace ssmrl;
using Scalar = float;
using Mat = ad::Matrix<Scalar>;
using W2 = test::W2;

void ssm_step(benchmark::State& state, ad::Index batch) {
  auto policy = test::make_w2_policy<Scalar>(1);
  policy.set_num_envs(batch);
  const auto data = test::random_sequence_batch<Scalar>(W2::obs, W2::actions, batch, 64, 2);
  std::mt19937_64 rng(3);
  ad::Index t = 0;
  for (auto _ : state) {
    const auto step = policy.act(data.obs.middleCols(t * batch, batch), policy::ActMode::sample, rng);
    benchmark::DoNotOptimize(step.actions.data());
    t = (t + 1) % 64;
  }
  state.counters["steps/s"] = benchmark::Counter(double(batch), benchmark::Counter::kIsIterationInvariantRate);
}
void BM_SsmStep_B1(benchmark::State& state) { ssm_step(state, 1); }
void BM_SsmStep_B64(benchmark::State& state) { ssm_step(state, 64); }
BENCHMARK(BM_SsmStep_B1);
BENCHMARK(BM_SsmStep_B64);

// The same step by hand: h = A h + B x, y = tanh(C h + D x + c), logits = W y + b, then the softmax
// and one categorical sample.
void BM_SsmStep_B1_Manual(benchmark::State& state) {
  const auto policy = test::make_w2_policy<Scalar>(1);
  const auto& p = policy.params();
  const auto data = test::random_sequence_batch<Scalar>(W2::obs, W2::actions, 1, 64, 2);
  Mat h = Mat::Zero(W2::state, 1), next(W2::state, 1), y(W2::hidden, 1), logits(W2::actions, 1);
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  ad::Index t = 0;
  for (auto _ : state) {
    const auto x = data.obs.col(t);
    next.noalias() = p.cell.A * h;
    next.noalias() += p.cell.B * x;
    h = next;
    y.noalias() = p.cell.C * h;
    y.noalias() += p.cell.D * x;
    y = (y + p.cell.c).array().tanh().matrix();
    logits.noalias() = p.head.W * y;
    logits += p.head.b;
    const Scalar m = logits.maxCoeff();
    const auto probs = (logits.array() - m).exp();
    const Scalar total = probs.sum();
    double u = uniform(rng) * total;
    int chosen = W2::actions - 1;
    for (int a = 0; a < W2::actions; ++a) {
      u -= probs(a);
      if (u < 0) {
        chosen = a;
        break;
      }
    }
    benchmark::DoNotOptimize(chosen);
    t = (t + 1) % 64;
  }
}
BENCHMARK(BM_SsmStep_B1_Manual);

void BM_GruStep_B1(benchmark::State& state) {
  policy::RecurrentPolicy<nn::GruCell<Scalar>, policy::CategoricalHead<Scalar>> policy(
      nn::GruCell<Scalar>({.input = W2::obs, .hidden = W2::hidden}), policy::CategoricalHead<Scalar>(W2::hidden, W2::actions),
      {}, {}, 1);
  const auto data = test::random_sequence_batch<Scalar>(W2::obs, W2::actions, 1, 64, 2);
  std::mt19937_64 rng(3);
  ad::Index t = 0;
  for (auto _ : state) {
    const auto step = policy.act(data.obs.col(t), policy::ActMode::sample, rng);
    benchmark::DoNotOptimize(step.actions.data());
    t = (t + 1) % 64;
  }
}
BENCHMARK(BM_GruStep_B1);

// The diagonal-SSM sequence workload (diag_ssm_workload.hpp), batch 8 x 1000 steps, through the
// fused scan or one node per step.
void BM_DiagSsmSeqFwdBwd(benchmark::State& state) { bench::diag_ssm_seq_fwd_bwd(state, true, 8, 1000); }
void BM_DiagSsmSeqFwdBwd_Steps(benchmark::State& state) { bench::diag_ssm_seq_fwd_bwd(state, false, 8, 1000); }
BENCHMARK(BM_DiagSsmSeqFwdBwd)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DiagSsmSeqFwdBwd_Steps)->Unit(benchmark::kMillisecond);

}  // namespace
