// The library's algorithms composed with types of the user's own (minimal.hpp): an environment, a
// task family, a policy and an adaptation strategy that know the library only through its concepts.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <numeric>

#include "compose/minimal.hpp"

using namespace ssmrl;
using minimal::LinearGaussian;
using minimal::Matrix;
using minimal::Reach;
using minimal::ReachTasks;

static_assert(env::Environment<Reach>);
static_assert(env::TaskDistribution<ReachTasks>);
static_assert(policy::ActingPolicy<LinearGaussian>);
static_assert(policy::TrainablePolicy<LinearGaussian>);
static_assert(policy::MetaPolicy<LinearGaussian>);
static_assert(policy::MonitoredPolicy<LinearGaussian>);
static_assert(adapt::AdaptationStrategy<minimal::QuietActions, LinearGaussian>);

namespace {
double mean(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size()); }
}  // namespace

TEST_CASE("rl::collect runs a user's policy in a user's environment; evaluation reproduces the log-probabilities") {
  LinearGaussian pi;
  env::EnvBatch<Reach> batch(4, Reach{}, 1);
  std::mt19937_64 rng(2);
  const auto t = rl::collect(pi, batch, 30, policy::ActMode::sample, rng);
  CHECK(t.columns() == 120);
  CHECK(t.truncated.sum() == 4);  // each environment's 20-step episode ended once
  CHECK(t.finished_returns.size() == 4);
  ad::Tape<double> tape;
  const auto e = rl::evaluate(pi, tape, nn::on_tape(tape, pi.params()), t);
  CHECK((e.log_prob.value() - t.log_probs).cwiseAbs().maxCoeff() < 1e-12);
}

TEST_CASE("rl::Trainer trains a user's policy with REINFORCE") {
  rl::Trainer<LinearGaussian, Reach> trainer(LinearGaussian{},
                                             {.algorithm = rl::Algorithm::reinforce, .envs = 16, .steps = 20, .lr = 0.05, .seed = 3});
  const double before = mean(trainer.evaluate(64, policy::ActMode::greedy, 4));
  for (int u = 0; u < 60; ++u) CHECK(std::isfinite(trainer.update().loss));
  const double after = mean(trainer.evaluate(64, policy::ActMode::greedy, 4));
  MESSAGE("greedy return " << before << " -> " << after << ", W " << trainer.policy().params().W(0, 0));
  CHECK(after > before);
  CHECK(trainer.policy().params().W(0, 0) < 0);  // it learned to move towards the target
}

TEST_CASE("meta::MetaTrainer meta-trains a user's policy on a user's task family, with either outer step") {
  for (const bool trpo : {true, false}) {
    meta::MetaTrainer<LinearGaussian, ReachTasks> trainer(
        LinearGaussian{}, ReachTasks{},
        {.meta_batch = 4, .trajectories = 8, .horizon = 20, .inner_lr = 0.1, .outer_lr = 0.01, .trpo = trpo, .seed = 5});
    CAPTURE(trpo);
    const auto start = trainer.policy().params();
    for (int i = 0; i < 3; ++i) {
      const auto stats = trainer.iteration();
      CHECK(std::isfinite(stats.pre_adaptation_return));
      CHECK(std::isfinite(stats.post_adaptation_return));
    }
    CHECK(nn::flatten<double>(trainer.policy().params()) != nn::flatten<double>(start));
    const auto curve = trainer.adaptation_curve(trainer.tasks().held_out()[0], 2);
    CHECK(curve.size() == 3);
  }
}

TEST_CASE("both outer steps draw the same support and query data for any number of inner steps") {
  for (const int inner_steps : {0, 1, 2, 3}) {
    auto make = [&](bool trpo) {
      return meta::MetaTrainer<LinearGaussian, ReachTasks>(
          LinearGaussian{}, ReachTasks{},
          {.meta_batch = 3, .trajectories = 6, .horizon = 20, .inner_lr = 0.2, .inner_steps = inner_steps, .trpo = trpo,
           .zero_meta_gradient = true, .seed = 9});
    };
    auto with_trpo = make(true);
    auto with_adam = make(false);
    for (int i = 0; i < 2; ++i) {
      const auto a = with_trpo.iteration();
      const auto b = with_adam.iteration();
      CAPTURE(inner_steps);
      CHECK(a.pre_adaptation_return == b.pre_adaptation_return);
      CHECK(a.post_adaptation_return == b.post_adaptation_return);
      if (inner_steps == 0) CHECK(a.pre_adaptation_return != 0);
      if (inner_steps > 0) CHECK(a.post_adaptation_return != a.pre_adaptation_return);
      CHECK_FALSE(a.outer_step_applied);
      CHECK_FALSE(b.outer_step_applied);
      CHECK(a.trpo.loss_before != 0);  // the TRPO step was computed, not applied
    }
    CHECK(nn::flatten<double>(with_trpo.policy().params()) == nn::flatten<double>(LinearGaussian{}.params()));
  }
}

namespace {
// Tasks so far away that the float observations are infinite: the policy's log-probabilities, and
// so every meta-gradient, are NaN, while rewards and the baseline's (clipped) features stay finite.
// No inner step (an adapted policy would act NaN, which the environments refuse).
struct BrokenTasks : ReachTasks {
  static void apply(Reach& env, double) { env.target = 1e300; }
};
}  // namespace

TEST_CASE("a non-finite meta-gradient leaves the meta-parameters as they were, with either outer step") {
  for (const bool trpo : {true, false}) {
    meta::MetaTrainer<LinearGaussian, BrokenTasks> trainer(
        LinearGaussian{}, BrokenTasks{},
        {.meta_batch = 2, .trajectories = 4, .horizon = 20, .inner_steps = 0, .trpo = trpo, .seed = 10});
    const auto stats = trainer.iteration();
    CAPTURE(trpo);
    CHECK_FALSE(stats.outer_step_applied);
    CHECK(nn::flatten<double>(trainer.policy().params()) == nn::flatten<double>(LinearGaussian{}.params()));
  }
}

TEST_CASE("adapt::Adapter adapts a user's policy with a user's strategy, only the selected parameters") {
  LinearGaussian pi;
  env::EnvBatch<Reach> batch(4, Reach{}, 6);
  std::mt19937_64 rng(7);
  LinearGaussian acting = pi;
  const auto t = rl::collect(acting, batch, 20, policy::ActMode::sample, rng);
  Matrix b = pi.params().b;
  b(0, 0) = 0.5;  // actions far from zero: the strategy pulls the bias back
  auto p = pi.params();
  p.b = b;
  pi.set_params(p);
  adapt::Adapter adapter(pi, minimal::QuietActions{}, {.lr = 0.05, .optimizer = adapt::OptimizerKind::sgd});
  const auto report = adapter.adapt(t);
  CHECK(report.applied);
  CHECK(pi.params().b(0, 0) < 0.5);
  CHECK(pi.params().W == LinearGaussian{}.params().W);
  CHECK(adapter.adapted_parameters() == std::vector<std::string>{"b"});
}
