// Environment benchmarks: CartPole alone and in batches, 2D navigation in batches; random actions
// and automatic resets, as in training.
#include <benchmark/benchmark.h>
#include <ssmrl/env.hpp>

#include <cstdint>

namespace {

using namespace ssmrl;

// A cheap generator for the random actions, so that the environment dominates the measurement.
struct XorShift {
  std::uint64_t s = 0x9E3779B97F4A7C15ULL;
  std::uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
};

void BM_CartPoleStep(benchmark::State& state) {
  env::CartPole cartpole;
  std::mt19937_64 rng(1);
  cartpole.reset(rng);
  XorShift actions;
  float obs[4];
  for (auto _ : state) {
    const auto r = cartpole.step(static_cast<int>(actions.next() & 1U));
    if (r.done()) cartpole.reset(rng);
    cartpole.observe(obs);
    benchmark::DoNotOptimize(obs);
  }
  state.counters["steps/s"] = benchmark::Counter(1, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_CartPoleStep);

template <class Env>
void batch_step(benchmark::State& state, const Env& prototype, bool discrete) {
  const auto n = static_cast<std::size_t>(state.range(0));
  env::EnvBatch<Env> batch(n, prototype, 1);
  Eigen::MatrixXf actions(Env::action_size, static_cast<Eigen::Index>(n));
  XorShift random;
  for (auto _ : state) {
    state.PauseTiming();
    for (Eigen::Index i = 0; i < actions.size(); ++i) {
      actions.data()[i] = discrete ? static_cast<float>(random.next() & 1U)
                                   : static_cast<float>(random.next() % 2001) * 1e-4f - 0.1f;
    }
    state.ResumeTiming();
    batch.step(actions);
    benchmark::DoNotOptimize(batch.observations().data());
  }
  state.counters["steps/s"] = benchmark::Counter(double(n), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_CartPoleBatchStep(benchmark::State& state) { batch_step(state, env::CartPole(), true); }
BENCHMARK(BM_CartPoleBatchStep)->Arg(1024);

void BM_Navigation2DBatchStep(benchmark::State& state) {
  batch_step(state, env::Navigation2D({.goal = {0.3, -0.2}}), false);
}
BENCHMARK(BM_Navigation2DBatchStep)->Arg(1024);

}  // namespace
