// The cost of hyper-parameter control per training iteration, beside the iteration it steers: the
// override file's check (absent, unchanged, changed), one MetaController<GRU> decision, and, as the
// baseline in the same binary, one PPO update of the cartpole-ppo configuration's size.
#include <benchmark/benchmark.h>
#include <ssmrl/ssmrl.hpp>

#include <filesystem>
#include <string>

namespace {

using namespace ssmrl;
namespace fs = std::filesystem;

control::KnobSchema ppo_knobs() {
  return rl::Trainer<policy::RecurrentPolicy<nn::MlpCell<float>, policy::CategoricalHead<float>, nn::LayerNorm<float>,
                                             policy::ValueHead<float>>,
                     env::CartPole>::knob_schema({.algorithm = rl::Algorithm::ppo, .envs = 16, .total_updates = 400});
}

fs::path bench_file(const char* name) { return fs::temp_directory_path() / name; }

void BM_OverrideCheck_Absent(benchmark::State& state) {
  control::KnobState knobs(ppo_knobs());
  control::OverrideFile file(bench_file("ssmrl_bench_absent.json"));
  fs::remove(file.path());
  for (auto _ : state) benchmark::DoNotOptimize(file.apply(knobs));
}
BENCHMARK(BM_OverrideCheck_Absent);

void BM_OverrideCheck_Unchanged(benchmark::State& state) {
  control::KnobState knobs(ppo_knobs());
  control::OverrideFile file(bench_file("ssmrl_bench_override.json"));
  control::write_override_file(file.path(), {{"lr", 5e-4}, {"epochs", std::int64_t{2}}, {"clip", 0.1}});
  file.apply(knobs);
  for (auto _ : state) benchmark::DoNotOptimize(file.apply(knobs));
  fs::remove(file.path());
}
BENCHMARK(BM_OverrideCheck_Unchanged);

// A new content every iteration: read, parse and validate (the writer's time not counted).
void BM_OverrideCheck_Changed(benchmark::State& state) {
  control::KnobState knobs(ppo_knobs());
  const auto a = bench_file("ssmrl_bench_a.json");
  const auto b = bench_file("ssmrl_bench_b.json");
  control::write_override_file(a, {{"lr", 5e-4}, {"epochs", std::int64_t{2}}, {"clip", 0.1}});
  control::write_override_file(b, {{"lr", 6e-4}, {"epochs", std::int64_t{3}}, {"clip", 0.2}});
  control::OverrideFile fa(a);
  control::OverrideFile fb(b);
  for (auto _ : state) {
    benchmark::DoNotOptimize(fa.apply(knobs));
    benchmark::DoNotOptimize(fb.apply(knobs));
    state.PauseTiming();
    fa = control::OverrideFile(a);  // forget the content, so that the next read parses it again
    fb = control::OverrideFile(b);
    state.ResumeTiming();
  }
  state.SetItemsProcessed(2 * state.iterations());
  fs::remove(a);
  fs::remove(b);
}
BENCHMARK(BM_OverrideCheck_Changed);

// One decision over all knobs of a PPO run from its 11 telemetry values (GRU, 32 hidden units).
void BM_ControllerDecision(benchmark::State& state) {
  const auto schema = ppo_knobs();
  const std::vector<std::string> names{"return_mean", "return_std", "episode_length", "entropy", "kl", "grad_norm",
                                       "clip_fraction", "explained_variance", "loss", "lr", "seconds"};
  control::MetaController<nn::GruCell<double>> c(
      nn::GruCell<double>({.input = static_cast<ad::Index>(names.size() + schema.size()), .hidden = 32}), schema, names);
  control::Telemetry t;
  for (std::size_t i = 0; i < names.size(); ++i) t.add(names[i], 0.1 * static_cast<double>(i));
  control::KnobChanges knobs;
  for (const auto& k : schema.knobs()) knobs[k.name] = k.default_value;
  int n = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(c.decide(t, knobs));
    if (++n == 1000) {  // keep the pending decisions bounded, as a run's REINFORCE steps do
      state.PauseTiming();
      c.reset();
      n = 0;
      state.ResumeTiming();
    }
  }
}
BENCHMARK(BM_ControllerDecision);

// The baseline: one update of cartpole-ppo's trainer (16 envs x 128 steps, 4 epochs x 4 minibatches).
void BM_PpoUpdate_CartPole(benchmark::State& state) {
  using Policy = policy::RecurrentPolicy<nn::MlpCell<float>, policy::CategoricalHead<float>, nn::LayerNorm<float>,
                                         policy::ValueHead<float>>;
  Policy pi(nn::MlpCell<float>({.input = 4, .hidden = {64, 64}}), policy::CategoricalHead<float>(64, 2),
            nn::LayerNorm<float>(64), policy::ValueHead<float>(64), 1);
  rl::Trainer<Policy, env::CartPole> trainer(std::move(pi), {.algorithm = rl::Algorithm::ppo, .envs = 16, .steps = 128,
                                                             .lr = 1e-3, .epochs = 4, .minibatches = 4,
                                                             .value_coef = 0.02});
  for (auto _ : state) benchmark::DoNotOptimize(trainer.update());
}
BENCHMARK(BM_PpoUpdate_CartPole)->Unit(benchmark::kMillisecond);

}  // namespace
