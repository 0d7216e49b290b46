// Learning-rate control in a real training loop at equal compute: PPO on Pendulum-v1 (the
// pendulum-ppo configuration) with a fixed budget of environment steps per arm, scored by the area
// under the evaluation-return curve (the mean of evaluations every 10 updates' worth of steps, 10
// episodes with the mean action on seeds that take no part in training) and by the last
// evaluation. From each start (the default lr 1e-3, 10x and 100x it; decayed linearly): fixed; steered
// by a MetaController<GRU> (lr moved by x1.25 every 5 updates, most probable choice) trained by
// REINFORCE beforehand on runs of other seeds from the three starts; and PBT with 4 members, each
// with a quarter of the budget, on two threads (control::Population).
//
//   control_pendulum [SEEDS=5] [UPDATES=80] [CONTROLLER_TRAINING_RUNS=45]
#include <ssmrl/ssmrl.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace ssmrl;

namespace {

using Gaussian = policy::GaussianHead<float, policy::GaussianStd::state_dependent>;
using Policy = policy::RecurrentPolicy<nn::MlpCell<float>, Gaussian, nn::LayerNorm<float>, policy::ValueHead<float>>;
using Trainer = rl::Trainer<Policy, env::Pendulum>;
using Controller = control::MetaController<nn::GruCell<double>>;

constexpr int every = 5;        // updates between the controller's decisions
constexpr int eval_every = 10;  // updates' worth of environment steps between evaluations

Policy make_policy(std::uint64_t seed) {
  return {nn::MlpCell<float>({.input = 3, .hidden = {64, 64}}), Gaussian({.input = 64, .actions = 1}),
          nn::LayerNorm<float>(64), policy::ValueHead<float>(64), seed};
}

rl::TrainerOptions options(double lr, long updates, std::uint64_t seed) {
  return {.algorithm = rl::Algorithm::ppo, .envs = 16, .steps = 200, .gamma = 0.9, .gae_lambda = 0.95, .lr = lr,
          .max_grad_norm = 0.5, .epochs = 10, .minibatches = 8, .value_coef = 0.02, .total_updates = updates,
          .seed = seed};
}

const std::vector<std::string> telemetry{"return_mean", "entropy", "kl", "clip_fraction", "explained_variance",
                                         "grad_norm"};

control::KnobSchema steered() {
  auto lr = Trainer::knob_schema(options(1e-3, 1, 1)).subset({"lr"}, "control_pendulum");
  auto k = lr[0];
  k.lower = 1e-5;
  k.upper = 0.3;
  return control::KnobSchema({k});
}

double evaluation(const Trainer& t, long at) {
  const auto r = t.evaluate(10, policy::ActMode::greedy, 900000 + static_cast<std::uint64_t>(at));
  return std::accumulate(r.begin(), r.end(), 0.0) / static_cast<double>(r.size());
}

// One run; with a controller, its decisions set lr (held: no decay) every `every` updates, and
// with `learn` a REINFORCE step at the end on the improvements of the training return that followed.
std::vector<double> run(std::uint64_t seed, double lr, long updates, Controller* c, bool learn) {
  Trainer t(make_policy(seed), options(lr, updates, seed));
  control::KnobState knobs(t.knob_schema());
  const auto lr_index = *knobs.schema().find("lr");
  std::vector<double> curve;
  std::vector<double> rewards;
  double decided_at = NAN;
  double last_return = -1600.0;
  if (c) c->reset();
  for (long u = 0; u < updates; ++u) {
    t.set_knob_values(knobs.values(), knobs.source(lr_index) == control::KnobSource::controller);
    const auto s = t.update();
    if (std::isfinite(s.mean_return)) last_return = s.mean_return;
    if (c && (u + 1) % every == 0 && u + 1 < updates) {
      const double now = last_return;
      if (!std::isnan(decided_at)) rewards.push_back(now - decided_at);
      const auto d = c->decide(s.telemetry(), {{"lr", knobs.value(lr_index)}}, !learn);
      knobs.set_layer(control::KnobSource::controller, d.changes);
      decided_at = now;
    }
    if ((u + 1) % eval_every == 0) curve.push_back(evaluation(t, u + 1));
  }
  if (c && learn && !rewards.empty()) {
    rewards.push_back(last_return - decided_at);
    c->reinforce(rewards);
  }
  return curve;
}

// PBT from `lr`: control::Population of 4 members with a quarter of the updates each, stepping on
// two threads, an exploit/explore round every `every` updates (copying policy, Adam's moments and
// lr); the curve is the evaluation of the member with the best training return at the same total
// environment steps as the other arms' points.
std::vector<double> pbt(std::uint64_t seed, double lr, long updates) {
  constexpr int members = 4;
  const long each = updates / members;
  std::vector<std::unique_ptr<Trainer>> t;
  for (int m = 0; m < members; ++m) {
    const auto member_seed = seed * 10 + static_cast<std::uint64_t>(m);
    t.push_back(std::make_unique<Trainer>(make_policy(member_seed), options(lr, each, member_seed)));
  }
  control::Population<Trainer> population(
      std::move(t), steered(), {.interval = every, .threads = 2, .seed = env::derive_seed(seed, 7)});
  std::vector<double> curve;
  for (long u = 0; u < each; ++u) {
    population.step();
    const long spent = (u + 1) * members;
    if (spent % eval_every == 0) curve.push_back(evaluation(population.member(population.best()), spent));
  }
  return curve;
}

double mean(const std::vector<double>& v) {
  return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}
double stdev(const std::vector<double>& v) {
  const double m = mean(v);
  double s = 0;
  for (const double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(v.size()));
}

// Runs fn(i) for i in [0, n) on two threads; results by index.
template <class Fn>
std::vector<std::vector<double>> parallel(int n, Fn fn) {
  std::vector<std::vector<double>> out(static_cast<std::size_t>(n));
  std::vector<std::thread> pool;
  for (int w = 0; w < 2; ++w) {
    pool.emplace_back([&, w] {
      for (int i = w; i < n; i += 2) out[static_cast<std::size_t>(i)] = fn(i);
    });
  }
  for (auto& th : pool) th.join();
  return out;
}

void report(const char* arm, const std::vector<std::vector<double>>& curves) {
  std::vector<double> auc;
  std::vector<double> last;
  for (const auto& c : curves) {
    auc.push_back(mean(c));
    last.push_back(c.back());
  }
  std::printf("| %-34s | %8.1f | %6.1f | %8.1f | %6.1f |\n", arm, mean(auc), stdev(auc), mean(last), stdev(last));
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const int seeds = argc > 1 ? std::atoi(argv[1]) : 5;
  const long updates = argc > 2 ? std::atol(argv[2]) : 80;
  const int training_runs = argc > 3 ? std::atoi(argv[3]) : 45;
  if (seeds <= 0 || updates < 2 * eval_every || updates % (4 * eval_every) != 0 || training_runs < 0) {
    std::fprintf(stderr, "control_pendulum: SEEDS %d must be positive, UPDATES %ld a multiple of %d, "
                         "CONTROLLER_TRAINING_RUNS %d not negative\n", seeds, updates, 4 * eval_every, training_runs);
    return 2;
  }
  Controller controller(nn::GruCell<double>({.input = static_cast<ad::Index>(telemetry.size() + 1), .hidden = 16}),
                        steered(), telemetry, {.lr = 3e-3, .entropy_coef = 0.01, .seed = 1});
  const double starts[] = {1e-3, 1e-2, 1e-1};
  for (int r = 0; r < training_runs; ++r) {  // training seeds 1001 and up; the starts in turn
    const double lr = starts[r % 3];
    const auto curve = run(1001 + static_cast<std::uint64_t>(r), lr, updates, &controller, true);
    std::fprintf(stderr, "controller training run %d (lr %g): last evaluation %.1f\n", r + 1, lr, curve.back());
  }
  std::printf("PPO on Pendulum-v1, %ld updates of 16 x 200 steps per arm (%ld environment steps), %d seeds; "
              "evaluation every %d updates' steps, 10 episodes, mean action, seeds 900000 + steps\n\n",
              updates, updates * 3200, seeds, eval_every);
  std::printf("| %-34s | %8s | %6s | %8s | %6s |\n|---|---|---|---|---|\n", "arm", "AUC", "std", "last", "std");
  for (const double lr : starts) {
    char name[64];
    std::snprintf(name, sizeof name, "lr %g (decayed)%s", lr, lr == 1e-3 ? ", the default" : "");
    report(name,
           parallel(seeds, [&](int i) { return run(1 + static_cast<std::uint64_t>(i), lr, updates, nullptr, false); }));
    std::snprintf(name, sizeof name, "lr %g + controller", lr);
    report(name, parallel(seeds, [&](int i) {
             auto c = controller;
             return run(1 + static_cast<std::uint64_t>(i), lr, updates, &c, false);
           }));
    std::snprintf(name, sizeof name, "lr %g, PBT 4 members", lr);
    std::vector<std::vector<double>> population_curves;  // one seed at a time: the members use both threads
    for (int i = 0; i < seeds; ++i) population_curves.push_back(pbt(1 + static_cast<std::uint64_t>(i), lr, updates));
    report(name, population_curves);
  }
  return 0;
}
