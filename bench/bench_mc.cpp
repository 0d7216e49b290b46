// The MC policy's two-pass step against one pass of the same base policy (RecurrentPolicy::act),
// in the same binary: a GRU of 64 on Regime Switch's 2 inputs, 16 environments, every state action
// active, and the training replay (evaluate_mc, the per-step path) against the base's fused
// evaluation of the same rollout.
#include <benchmark/benchmark.h>
#include <ssmrl/ssmrl.hpp>

#include <random>

namespace {

using namespace ssmrl;
using Base = policy::RecurrentPolicy<nn::GruCell<double>, policy::CategoricalHead<double>, nn::NoNorm<double>,
                                     policy::ValueHead<double>>;
using Agent = mc::McPolicy<Base, mc::RecurrentStateActions<double>>;
constexpr ad::Index envs = 16;

Base make_base() {
  return Base(nn::GruCell<double>({.input = 2, .hidden = 64}), policy::CategoricalHead<double>(64, 2),
              nn::NoNorm<double>(), policy::ValueHead<double>(64), 1);
}
Agent make_agent() {
  return Agent(make_base(), mc::McRegistry<mc::RecurrentStateActions<double>>(mc::RecurrentStateActions<double>()), 1);
}
ad::Matrix<double> observations() { return ad::Matrix<double>::Random(2, envs * 64); }

template <class P>
void act(benchmark::State& state, P policy) {
  policy.set_num_envs(envs);
  const auto obs = observations();
  std::mt19937_64 rng(3);
  ad::Index t = 0;
  for (auto _ : state) {
    const auto step = policy.act(obs.middleCols(t * envs, envs), policy::ActMode::sample, rng);
    benchmark::DoNotOptimize(step.actions.data());
    t = (t + 1) % 64;
  }
  state.counters["env steps/s"] = benchmark::Counter(double(envs), benchmark::Counter::kIsIterationInvariantRate);
}
void BM_Act_OnePass(benchmark::State& state) { act(state, make_base()); }
void BM_Act_TwoPassMc(benchmark::State& state) { act(state, make_agent()); }
BENCHMARK(BM_Act_OnePass);
BENCHMARK(BM_Act_TwoPassMc);

// Forward and backward over a rollout of 16 environments x 64 steps.
template <bool replay>
void evaluate(benchmark::State& state) {
  auto agent = make_agent();
  env::EnvBatch<env::RegimeSwitch> batch(envs, env::RegimeSwitch{}, 2);
  std::mt19937_64 rng(4);
  const auto t = rl::collect(agent, batch, 64, policy::ActMode::sample, rng);
  const Base base = agent.base();
  ad::Tape<double> tape;
  for (auto _ : state) {
    tape.clear();
    if constexpr (replay) {
      const auto vars = nn::on_tape(tape, agent.params());
      const auto e = rl::evaluate(agent, tape, vars, t);
      tape.backward(ad::add(ad::sum(e.log_prob), ad::sum(e.mc_log_prob)));
    } else {
      const auto vars = nn::on_tape(tape, base.params());
      const auto e = rl::evaluate(base, tape, vars, t);
      tape.backward(ad::sum(e.log_prob));
    }
    benchmark::ClobberMemory();
  }
}
void BM_Train_FusedOnePass(benchmark::State& state) { evaluate<false>(state); }
void BM_Train_McReplay(benchmark::State& state) { evaluate<true>(state); }
BENCHMARK(BM_Train_FusedOnePass)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Train_McReplay)->Unit(benchmark::kMillisecond);

}  // namespace
