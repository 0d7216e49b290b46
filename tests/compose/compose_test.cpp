// The library's algorithms composed with types of the user's own (minimal.hpp): an environment, a
// task family, a policy and an adaptation strategy that know the library only through its concepts.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <numeric>

#include <ssmrl/meta/checkpoint.hpp>

#include "compose/minimal.hpp"

namespace minimal {
// What a checkpoint records of the user's policy (found by argument-dependent lookup).
inline nlohmann::ordered_json describe(const LinearGaussian&) { return {{"type", "LinearGaussian"}}; }
}  // namespace minimal

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
    const auto curve = trainer.adaptation_curve(trainer.tasks().held_out()[0], 2, 7);
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
      CHECK(a.trpo.accepted);  // the TRPO step was computed (its line search passed), not applied
      CHECK(a.trpo.kl > 0);
    }
    CHECK(nn::flatten<double>(with_trpo.policy().params()) == nn::flatten<double>(LinearGaussian{}.params()));
  }
}

namespace {
meta::MetaTrainerOptions small_meta(bool trpo, unsigned threads = 1) {
  return {.meta_batch = 5, .trajectories = 6, .horizon = 20, .inner_lr = 0.2, .outer_lr = 0.01, .trpo = trpo,
          .threads = threads, .seed = 11};
}
}  // namespace

TEST_CASE("a meta-iteration's result does not depend on the threads, and each task on its index alone") {
  for (const bool trpo : {true, false}) {
    CAPTURE(trpo);
    meta::MetaTrainer<LinearGaussian, ReachTasks> one(LinearGaussian{}, ReachTasks{}, small_meta(trpo, 1));
    meta::MetaTrainer<LinearGaussian, ReachTasks> three(LinearGaussian{}, ReachTasks{}, small_meta(trpo, 3));
    for (int i = 0; i < 2; ++i) {
      const auto a = one.iteration();
      const auto b = three.iteration();
      CHECK(a.task_post_adaptation_returns == b.task_post_adaptation_returns);
      CHECK(a.post_adaptation_return == b.post_adaptation_return);
      CHECK(a.outer_step_applied);
    }
    CHECK(nn::flatten<double>(one.policy().params()) == nn::flatten<double>(three.policy().params()));
    // A larger meta-batch keeps the first tasks' draws: task i depends on (seed, iteration, i) only.
    auto larger = small_meta(trpo);
    larger.meta_batch = 8;
    larger.zero_meta_gradient = true;
    auto smaller = larger;
    smaller.meta_batch = 5;
    meta::MetaTrainer<LinearGaussian, ReachTasks> big(LinearGaussian{}, ReachTasks{}, larger);
    meta::MetaTrainer<LinearGaussian, ReachTasks> small(LinearGaussian{}, ReachTasks{}, smaller);
    const auto b = big.iteration();
    const auto s = small.iteration();
    REQUIRE(b.task_pre_adaptation_returns.size() == 8);
    for (std::size_t i = 0; i < 5; ++i) {
      CHECK(b.task_pre_adaptation_returns[i] == s.task_pre_adaptation_returns[i]);
      CHECK(b.task_post_adaptation_returns[i] == s.task_post_adaptation_returns[i]);
    }
  }
}

TEST_CASE("MetaTrainer is built from parts: the named outer steps equal the options' choice, bit for bit") {
  for (const bool trpo : {true, false}) {
    CAPTURE(trpo);
    meta::MetaTrainer<LinearGaussian, ReachTasks> by_options(LinearGaussian{}, ReachTasks{}, small_meta(trpo));
    auto run_named = [&](auto algorithm) {
      meta::MetaTrainer<LinearGaussian, ReachTasks, decltype(algorithm)> named(LinearGaussian{}, ReachTasks{},
                                                                              small_meta(trpo), Reach{}, algorithm);
      std::vector<double> returns;
      for (int i = 0; i < 2; ++i) returns.push_back(named.iteration().post_adaptation_return);
      return std::pair{returns, nn::flatten<double>(named.policy().params())};
    };
    std::vector<double> expected;
    for (int i = 0; i < 2; ++i) expected.push_back(by_options.iteration().post_adaptation_return);
    const auto [returns, params] = trpo ? run_named(meta::Maml<meta::TrpoOuterStep>{}) : run_named(meta::Maml<meta::AdamOuterStep>{});
    CHECK(returns == expected);
    CHECK(params == nn::flatten<double>(by_options.policy().params()));
    // Other parts change the run: no baseline, and an entropy bonus in the inner loss.
    using Other = meta::Maml<meta::OuterStepFromOptions, meta::FixedInnerRate, meta::ReturnAdvantages,
                             meta::EntropyRegularizedReinforceLoss>;
    const auto [other_returns, other_params] = run_named(Other{.loss = {.entropy = 0.5}});
    CHECK(other_returns[0] != expected[0]);
    CHECK(other_params != params);
  }
}

TEST_CASE("Meta-SGD through MetaTrainer: rates start at inner_lr, train with the parameters, save and load") {
  using MetaSgd = meta::Maml<meta::AdamOuterStep, meta::LearnedInnerRates>;
  auto options = small_meta(false);
  options.zero_meta_gradient = true;
  // Rates equal to inner_lr take the fixed-rate step: the same returns.
  meta::MetaTrainer<LinearGaussian, ReachTasks, MetaSgd> learned(LinearGaussian{}, ReachTasks{}, options);
  meta::MetaTrainer<LinearGaussian, ReachTasks> fixed(LinearGaussian{}, ReachTasks{}, options);
  REQUIRE(learned.inner_lrs().has_value());
  CHECK_FALSE(fixed.inner_lrs().has_value());
  CHECK(learned.iteration().task_post_adaptation_returns == fixed.iteration().task_post_adaptation_returns);
  // Trained, the rates move, stay finite and are what the adaptation curve steps with.
  options.zero_meta_gradient = false;
  options.outer_lr = 0.05;
  meta::MetaTrainer<LinearGaussian, ReachTasks, MetaSgd> trainer(LinearGaussian{}, ReachTasks{}, options);
  for (int i = 0; i < 3; ++i) CHECK(trainer.iteration().outer_step_applied);
  const auto rates = nn::flatten<double>(*trainer.inner_lrs());
  CHECK(rates.allFinite());
  CHECK((rates.array() - 0.2).abs().maxCoeff() > 1e-3);
  const auto task = trainer.tasks().held_out()[0];
  const auto curve = trainer.adaptation_curve(task, 1, 3);
  // The same policy at the fixed rate: the same draws before adapting, another step after.
  meta::MetaTrainer<LinearGaussian, ReachTasks> at_fixed_rate(trainer.policy(), ReachTasks{}, options);
  const auto fixed_curve = at_fixed_rate.adaptation_curve(task, 1, 3);
  CHECK(fixed_curve[0] == curve[0]);
  CHECK(fixed_curve[1] != curve[1]);
  // Learned rates set back to inner_lr step as the fixed rate does.
  auto initial = *trainer.inner_lrs();
  nn::for_each_parameter(initial, [](std::string_view, Matrix& m) { m.setConstant(0.2); });
  meta::MetaTrainer<LinearGaussian, ReachTasks, MetaSgd> reset(trainer.policy(), ReachTasks{}, options);
  reset.set_inner_lrs(initial);
  CHECK(reset.adaptation_curve(task, 1, 3) == fixed_curve);
  // One checkpoint holds both; a file without rates is refused for a Meta-SGD policy, and the reverse.
  const auto dir = std::filesystem::temp_directory_path() / "ssmrl_compose_metasgd";
  std::filesystem::create_directories(dir);
  meta::save_checkpoint(dir / "metasgd.safetensors", trainer.policy(), trainer.inner_lrs());
  meta::save_checkpoint(dir / "plain.safetensors", trainer.policy(), std::nullopt);
  LinearGaussian loaded;
  std::optional<LinearGaussian::Params> loaded_rates = LinearGaussian{}.params();
  meta::load_checkpoint(dir / "metasgd.safetensors", loaded, loaded_rates);
  CHECK(nn::flatten<double>(*loaded_rates) == rates);
  CHECK(nn::flatten<double>(loaded.params()) == nn::flatten<double>(trainer.policy().params()));
  // One call evaluates a checkpoint on the held-out tasks, with its rates where it has them.
  const auto from_file = meta::evaluate_checkpoint(dir / "metasgd.safetensors", LinearGaussian{}, ReachTasks{}, options, 1, 3);
  CHECK(from_file.curves == trainer.held_out_curves(1, 3).curves);
  const auto plain_file = meta::evaluate_checkpoint(dir / "plain.safetensors", LinearGaussian{}, ReachTasks{}, options, 1, 3);
  CHECK(plain_file.curves == at_fixed_rate.held_out_curves(1, 3).curves);
  CHECK(plain_file.curves != from_file.curves);
  LinearGaussian untouched;
  std::optional<LinearGaussian::Params> want = LinearGaussian{}.params();
  CHECK_THROWS_WITH_AS(meta::load_checkpoint(dir / "plain.safetensors", untouched, want),
                       doctest::Contains("has no tensor"), InvalidArgument);
  CHECK(nn::flatten<double>(untouched.params()) == nn::flatten<double>(LinearGaussian{}.params()));
  std::optional<LinearGaussian::Params> none;
  CHECK_THROWS_WITH_AS(meta::load_checkpoint(dir / "metasgd.safetensors", untouched, none),
                       doctest::Contains("inner_lr."), InvalidArgument);
  std::filesystem::remove_all(dir);
  // With the options' outer step set to TRPO, Meta-SGD is refused at construction.
  using FromOptions = meta::Maml<meta::OuterStepFromOptions, meta::LearnedInnerRates>;
  CHECK_THROWS_WITH_AS((meta::MetaTrainer<LinearGaussian, ReachTasks, FromOptions>(LinearGaussian{}, ReachTasks{},
                                                                                    small_meta(true))),
                       doctest::Contains("Adam outer step"), InvalidArgument);
}

TEST_CASE("the held-out evaluation draws from its own seed, not from training's") {
  auto options = small_meta(true);
  options.zero_meta_gradient = true;  // the policy stays: only the generators could differ
  meta::MetaTrainer<LinearGaussian, ReachTasks> trainer(LinearGaussian{}, ReachTasks{}, options);
  const auto before = trainer.held_out_curves(2, 21, 2);
  (void)trainer.iteration();
  const auto after = trainer.held_out_curves(2, 21, 2);
  CHECK(before.curves == after.curves);
  CHECK(before.curves.size() == trainer.tasks().held_out().size());
  CHECK(before.curves[0].size() == 2);
  CHECK(before.curves[0][0] != before.curves[0][1]);  // two runs, two draws
  CHECK(trainer.held_out_curves(2, 22, 2).mean != before.mean);
  const auto free_call = meta::evaluate_held_out(trainer.policy(), ReachTasks{}, options, 2, 21, 2);
  CHECK(free_call.mean == before.mean);
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
