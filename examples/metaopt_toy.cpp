// Learning-rate schedules on the synthetic objective of Ray Tune's PBT examples (control::PbtToy),
// whose best schedule rises from 0.001 to 0.01 and falls back: accuracy after 400 steps on 50
// evaluation seeds (the seeds of control_toy) for each fixed rate of a grid, the oracle, PyTorch's
// ReduceLROnPlateau (decrease-only), and the plateau meta-optimizers through OptimizerWrapper, each
// from the rates named in its row, within the toy's range [0.001, 0.01].
//
//   metaopt_toy [EVAL_SEEDS=50] [PRETRAIN_RUNS=1000] [FIRST_EVAL_SEED=1]
#include <ssmrl/control/pbt_toy.hpp>
#include <ssmrl/env/env_batch.hpp>
#include <ssmrl/metaopt/plateau.hpp>
#include <ssmrl/metaopt/rl.hpp>
#include <ssmrl/optim/plateau.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

using namespace ssmrl;
using control::PbtToy;

namespace {

constexpr int steps = 400;
int pretrain_runs = 1000;
std::uint64_t first_seed = 1;

std::mt19937_64 run_rng(std::uint64_t seed) { return std::mt19937_64(env::derive_seed(seed, 17)); }

// The toy seen as an optimiser with one group: its step is a step of the toy at the rate set.
struct ToyOptimizer {
  PbtToy toy;
  std::mt19937_64 rng;
  double rate = 0.01;
  double decay = 0.0;
  long count = 0;

  void step(int /*unused*/, int /*unused*/) {
    toy.step(rate, rng);
    ++count;
  }
  [[nodiscard]] double lr(std::size_t = 0) const { return rate; }
  void set_lr(double lr) { rate = lr; }
  void set_lr(std::size_t, double lr) { rate = lr; }
  [[nodiscard]] double weight_decay(std::size_t = 0) const { return decay; }
  void set_weight_decay(double wd) { decay = wd; }
  [[nodiscard]] std::size_t group_count() const { return 1; }
  [[nodiscard]] long steps() const { return count; }
};

double fixed(double lr, std::uint64_t seed) {
  ToyOptimizer t{{}, run_rng(seed), lr};
  for (int s = 0; s < steps; ++s) t.step(0, 0);
  return t.toy.accuracy;
}

double oracle(std::uint64_t seed) {
  ToyOptimizer t{{}, run_rng(seed)};
  for (int s = 0; s < steps; ++s) {
    t.set_lr(PbtToy::optimal_lr(t.toy.accuracy));
    t.step(0, 0);
  }
  return t.toy.accuracy;
}

// ReduceLROnPlateau on the accuracy (mode max, absolute threshold, as for returns).
double plateau(double lr, std::uint64_t seed, long patience) {
  ToyOptimizer t{{}, run_rng(seed), lr};
  optim::ReduceLROnPlateau p({.mode = optim::PlateauMode::max, .factor = 0.5, .patience = patience, .threshold = 1.0,
                              .threshold_mode = optim::ThresholdMode::abs, .min_lr = {0.001}});
  for (int s = 0; s < steps; ++s) {
    t.step(0, 0);
    p.step(t.toy.accuracy, t);
  }
  return t.toy.accuracy;
}

// A meta-optimizer through OptimizerWrapper, its loss the negated accuracy; `meta` is left as the
// run left it (an RL meta-optimizer keeps what it learnt).
template <class Meta>
double steered(double lr, std::uint64_t seed, Meta& meta) {
  metaopt::OptimizerWrapper<ToyOptimizer, Meta> w(ToyOptimizer{{}, run_rng(seed), lr}, meta,
                                                  {.min_lr = 0.001, .max_lr = 0.01, .max_weight_decay = 0.0});
  for (int s = 0; s < steps; ++s) {
    w.step(0, 0);
    control::Telemetry m;
    m.add("loss", -w.optimizer().toy.accuracy);
    w.observe(m);
  }
  meta = w.meta();
  return w.optimizer().toy.accuracy;
}

template <class Meta>
double steered_fresh(double lr, std::uint64_t seed, Meta meta) {
  return steered(lr, seed, meta);
}

metaopt::RLMetaOptions rl_options(std::uint64_t seed) {
  return {.bounds = {.min_lr = 0.001, .max_lr = 0.01, .max_weight_decay = 0.0}, .total_steps = steps, .seed = seed};
}

void row(const std::string& arm, const std::vector<double>& v) {
  double mean = 0;
  double var = 0;
  for (const double x : v) mean += x / static_cast<double>(v.size());
  for (const double x : v) var += (x - mean) * (x - mean) / static_cast<double>(v.size());
  std::printf("| %-60s | %7.1f | %6.1f |\n", arm.c_str(), mean, std::sqrt(var));
}

template <class Fn>
void arm(const std::string& name, int seeds, Fn fn) {
  std::vector<double> v;
  for (int s = 0; s < seeds; ++s) v.push_back(fn(first_seed + static_cast<std::uint64_t>(s)));
  row(name, v);
}

}  // namespace

int main(int argc, char** argv) {
  const int seeds = argc > 1 ? std::atoi(argv[1]) : 50;
  pretrain_runs = argc > 2 ? std::atoi(argv[2]) : 1000;
  first_seed = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 1;
  if (seeds <= 0 || pretrain_runs <= 0) {
    std::fprintf(stderr, "metaopt_toy: EVAL_SEEDS %d and PRETRAIN_RUNS %d must be positive\n", seeds, pretrain_runs);
    return 2;
  }
  std::printf("accuracy after %d steps on %d evaluation seeds from %llu (mean and standard deviation over seeds)\n\n",
              steps, seeds, static_cast<unsigned long long>(first_seed));
  std::printf("| %-60s | %7s | %6s |\n|---|---|---|\n", "arm", "mean", "std");
  for (int i = 0; i <= 16; i += 2) {
    const double lr = 0.001 * std::pow(10.0, i / 16.0);
    char name[64];
    std::snprintf(name, sizeof name, "fixed lr %.5f", lr);
    arm(name, seeds, [&](std::uint64_t s) { return fixed(lr, s); });
  }
  arm("oracle schedule", seeds, oracle);
  for (const double lr : {0.01, 0.003}) {
    for (const long patience : {10L, 30L}) {
      char name[96];
      std::snprintf(name, sizeof name, "ReduceLROnPlateau from %g, patience %ld, x0.5", lr, patience);
      arm(name, seeds, [&](std::uint64_t s) { return plateau(lr, s, patience); });
    }
  }
  for (const double lr : {0.01, 0.003}) {
    char name[96];
    std::snprintf(name, sizeof name, "PlateauMetaOptimizer from %g, defaults", lr);
    arm(name, seeds, [&](std::uint64_t s) { return steered_fresh(lr, s, metaopt::PlateauMetaOptimizer()); });
    std::snprintf(name, sizeof name, "AdvancedPlateauMetaOptimizer from %g, defaults", lr);
    arm(name, seeds, [&](std::uint64_t s) { return steered_fresh(lr, s, metaopt::AdvancedPlateauMetaOptimizer()); });
  }
  arm("RLMetaOptimizer online from scratch, from 0.003", seeds,
      [&](std::uint64_t s) { return steered_fresh(0.003, s, metaopt::RLMetaOptimizer(rl_options(s))); });
  // Pretraining: 5 policies (policy seeds 1 to 5), each on its own runs of other seeds than the
  // evaluation's (10001 on, 100001 on, ...), each run from a random rate of the range.
  std::vector<metaopt::RLMetaOptimizer> policies;
  for (std::uint64_t p = 1; p <= 5; ++p) {
    metaopt::RLMetaOptimizer pretrained(rl_options(p));
    std::mt19937_64 starts(p);
    std::uniform_real_distribution<double> log_rate(std::log(0.001), std::log(0.01));
    double late = 0;
    for (int run = 0; run < pretrain_runs; ++run) {
      pretrained.reset();
      const auto run_seed = 10001 * p * p + static_cast<std::uint64_t>(run);
      const double a = steered(std::exp(log_rate(starts)), run_seed, pretrained);
      if (run >= pretrain_runs - 50) late += a / std::min(50, pretrain_runs);
    }
    std::fprintf(stderr, "pretraining policy %d: %d runs, mean accuracy of its last 50 %.1f, %ld REINFORCE steps\n",
                 static_cast<int>(p), pretrain_runs, late, pretrained.reinforce_steps());
    policies.push_back(std::move(pretrained));
  }
  for (const bool learning : {false, true}) {
    for (const bool explore : {true, false}) {
      if (learning && !explore) continue;
      std::vector<double> all;
      std::vector<double> means;
      for (const auto& pretrained : policies) {
        double mean = 0;
        for (int s = 0; s < seeds; ++s) {
          auto deployed = pretrained;
          deployed.reset();
          deployed.set_learning(learning);
          deployed.set_explore(explore);
          all.push_back(steered(0.003, first_seed + static_cast<std::uint64_t>(s), deployed));
          mean += all.back() / seeds;
        }
        means.push_back(mean);
      }
      char name[96];
      std::snprintf(name, sizeof name, "RLMetaOptimizer pretrained, %s, %s, from 0.003",
                    learning ? "learning" : "frozen", explore ? "sampled" : "greedy");
      row(name, all);
      std::printf("|   per pretrained policy (5): %-31s |         |        |\n", [&] {
        static char text[64];
        int at = 0;
        for (const double m : means) at += std::snprintf(text + at, sizeof text - at, "%s%.1f", at ? " " : "", m);
        return text;
      }());
    }
  }
  return 0;
}
