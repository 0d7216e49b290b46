// Learning-rate control on the synthetic objective of Ray Tune's PBT examples (control::PbtToy):
// accuracy after 400 steps on evaluation seeds that took no part in training, for each fixed
// learning rate of a grid, the oracle schedule, a MetaController<GRU> trained by REINFORCE on other
// seeds (one run per seed, no population), and PBT with 4 members (best member and mean).
//
//   control_toy [EVAL_SEEDS=50] [TRAINING_RUNS=40000] [CONTROLLER_SEED=1]
#include <ssmrl/control.hpp>
#include <ssmrl/control/meta_controller.hpp>
#include <ssmrl/control/pbt.hpp>
#include <ssmrl/control/pbt_toy.hpp>
#include <ssmrl/env/env_batch.hpp>
#include <ssmrl/nn/cells/gru.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "support/spread.hpp"

using namespace ssmrl;
using control::PbtToy;

namespace {

constexpr int steps = 400;
constexpr int window = 5;  // steps between the controller's decisions
constexpr std::uint64_t eval_base = 1;
constexpr std::uint64_t training_base = 1'000'000;

const control::Knob lr_knob = [] {
  auto k = control::real_knob("lr", 0.001, 0.001, 0.01, true, "the toy's learning rate");
  k.move = control::KnobMove::multiplicative;  // down, keep or up by a factor 1.25 per decision
  k.step = 1.25;
  return k;
}();

std::mt19937_64 run_rng(std::uint64_t seed) { return std::mt19937_64(env::derive_seed(seed, 17)); }

double fixed(double lr, std::uint64_t seed) {
  auto rng = run_rng(seed);
  PbtToy toy;
  for (int t = 0; t < steps; ++t) toy.step(lr, rng);
  return toy.accuracy;
}

double oracle(std::uint64_t seed) {
  auto rng = run_rng(seed);
  PbtToy toy;
  for (int t = 0; t < steps; ++t) toy.step(PbtToy::optimal_lr(toy.accuracy), rng);
  return toy.accuracy;
}

using Controller = control::MetaController<nn::GruCell<double>>;

Controller make_controller(std::uint64_t seed) {
  return Controller(nn::GruCell<double>({.input = 3, .hidden = 16}), control::KnobSchema({lr_knob}),
                    {"accuracy", "improvement"}, {.lr = 3e-3, .entropy_coef = 0.01, .seed = seed});
}

// One run steered by the controller; with `learn`, a REINFORCE step on its decisions at the end
// (reward of a decision: the accuracy gained over the window it chose for).
double controlled(Controller& c, std::uint64_t seed, bool learn, bool greedy) {
  auto rng = run_rng(seed);
  PbtToy toy;
  c.reset();
  control::KnobChanges knobs{{"lr", 0.001}};
  std::vector<double> rewards;
  double gained = 0;
  for (int t = 0; t < steps; t += window) {
    control::Telemetry telemetry;
    telemetry.add("accuracy", toy.accuracy);
    telemetry.add("improvement", gained);
    knobs = c.decide(telemetry, knobs, greedy).changes;
    const double before = toy.accuracy;
    for (int s = 0; s < window; ++s) toy.step(std::get<double>(knobs.at("lr")), rng);
    gained = toy.accuracy - before;
    rewards.push_back(gained);
  }
  if (learn) c.reinforce(rewards);
  return toy.accuracy;
}

// PBT with `members` members, an exploit/explore round every `interval` steps; returns the best
// member's accuracy and the members' mean.
std::pair<double, double> pbt(std::uint64_t seed, int members, int interval) {
  const control::KnobSchema schema({lr_knob});
  std::mt19937_64 decisions(env::derive_seed(seed, 99));
  std::vector<PbtToy> toys(static_cast<std::size_t>(members));
  std::vector<control::KnobChanges> knobs;
  std::vector<std::mt19937_64> rngs;
  for (int m = 0; m < members; ++m) {
    knobs.push_back({{"lr", control::resample(lr_knob, decisions)}});
    rngs.push_back(std::mt19937_64(env::derive_seed(seed, 100 + static_cast<std::uint64_t>(m))));
  }
  const control::PbtOptions options{};
  for (int t = 0; t < steps; ++t) {
    for (int m = 0; m < members; ++m)
      toys[static_cast<std::size_t>(m)].step(std::get<double>(knobs[static_cast<std::size_t>(m)].at("lr")),
                                             rngs[static_cast<std::size_t>(m)]);
    if ((t + 1) % interval == 0 && t + 1 < steps) {
      std::vector<double> scores;
      for (const auto& toy : toys) scores.push_back(toy.accuracy);
      for (const auto& copy : control::pbt_exploits(scores, options, decisions)) {
        toys[copy.to] = toys[copy.from];
        knobs[copy.to] = control::pbt_explore(schema, knobs[copy.from], options, decisions);
      }
    }
  }
  double best = 0;
  double mean = 0;
  for (const auto& toy : toys) {
    best = std::max(best, toy.accuracy);
    mean += toy.accuracy / members;
  }
  return {best, mean};
}

using examples::spread;

void row(const std::string& arm, const std::vector<double>& v) {
  const auto s = spread(v);
  std::printf("| %-34s | %7.1f | %6.1f |\n", arm.c_str(), s.mean, s.std);
}

}  // namespace

int main(int argc, char** argv) {
  const int eval_seeds = argc > 1 ? std::atoi(argv[1]) : 50;
  const int training_runs = argc > 2 ? std::atoi(argv[2]) : 40000;
  const auto controller_seed = static_cast<std::uint64_t>(argc > 3 ? std::atoll(argv[3]) : 1);
  if (eval_seeds <= 0 || training_runs < 0) {
    std::fprintf(stderr, "control_toy: EVAL_SEEDS %d must be positive and TRAINING_RUNS %d not negative\n", eval_seeds,
                 training_runs);
    return 2;
  }
  auto controller = make_controller(controller_seed);
  double recent = 0;
  for (int r = 0; r < training_runs; ++r) {
    recent +=
        controlled(controller, training_base + controller_seed * 100000 + static_cast<std::uint64_t>(r), true, false);
    if ((r + 1) % 5000 == 0) {
      std::fprintf(stderr, "training run %d: mean accuracy of the last 5000 %.1f\n", r + 1, recent / 5000);
      recent = 0;
    }
  }
  std::printf("accuracy after %d steps on %d evaluation seeds (mean and standard deviation over seeds)\n\n", steps,
              eval_seeds);
  std::printf("| %-34s | %7s | %6s |\n|---|---|---|\n", "arm", "mean", "std");
  double best_fixed = -1;
  for (int i = 0; i <= 16; ++i) {  // 17 rates, log-spaced over the toy's range
    const double lr = 0.001 * std::pow(10.0, i / 16.0);
    std::vector<double> v;
    for (int s = 0; s < eval_seeds; ++s) v.push_back(fixed(lr, eval_base + static_cast<std::uint64_t>(s)));
    char name[64];
    std::snprintf(name, sizeof name, "fixed lr %.5f", lr);
    row(name, v);
    best_fixed = std::max(best_fixed, spread(v).mean);
  }
  std::vector<double> o;
  std::vector<double> c;
  std::vector<double> c_greedy;
  std::vector<double> best;
  std::vector<double> mean;
  for (int s = 0; s < eval_seeds; ++s) {
    const auto seed = eval_base + static_cast<std::uint64_t>(s);
    o.push_back(oracle(seed));
    auto copy = controller;  // evaluation does not learn
    c.push_back(controlled(copy, seed, false, false));
    c_greedy.push_back(controlled(copy, seed, false, true));
    const auto [b, m] = pbt(seed, 4, 20);
    best.push_back(b);
    mean.push_back(m);
  }
  row("oracle schedule", o);
  row("MetaController<GRU>, sampled", c);
  row("MetaController<GRU>, most probable", c_greedy);
  row("PBT, 4 members: best member", best);
  row("PBT, 4 members: mean of members", mean);
  std::printf("\nbest fixed %.1f; controller (most probable) %.1f = %.1f%% of the oracle's %.1f\n", best_fixed,
              spread(c_greedy).mean, 100 * spread(c_greedy).mean / spread(o).mean, spread(o).mean);
  return 0;
}
