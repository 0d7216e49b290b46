// Plain policy-gradient training: environment selection, first-episode returns, gradient clipping,
// and REINFORCE, A2C and PPO each raising CartPole's return.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <ssmrl/ssmrl.hpp>

#include <numeric>

#include "support/errors.hpp"

using namespace ssmrl;
using ad::Matrix;

namespace {

using Actor = policy::RecurrentPolicy<nn::MlpCell<float>, policy::CategoricalHead<float>>;
using ActorCritic = policy::RecurrentPolicy<nn::MlpCell<float>, policy::CategoricalHead<float>, nn::NoNorm<float>,
                                            policy::ValueHead<float>>;

Actor actor(std::uint64_t seed) {
  return {nn::MlpCell<float>({.input = 4, .hidden = {32, 32}}), policy::CategoricalHead<float>(32, 2), {}, {}, seed};
}
ActorCritic actor_critic(std::uint64_t seed) {
  return {nn::MlpCell<float>({.input = 4, .hidden = {32, 32}}), policy::CategoricalHead<float>(32, 2), {},
          policy::ValueHead<float>(32), seed};
}

double mean(const std::vector<double>& v) {
  return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

// Mean return of 50 fresh episodes before and after `updates` updates.
template <class PolicyT>
std::pair<double, double> improvement(PolicyT pi, rl::TrainerOptions options, int updates) {
  rl::Trainer<PolicyT, env::CartPole> trainer(std::move(pi), options);
  const double before = mean(trainer.evaluate(50, policy::ActMode::sample, 77));
  for (int i = 0; i < updates; ++i) trainer.update();
  return {before, mean(trainer.evaluate(50, policy::ActMode::sample, 77))};
}

}  // namespace

TEST_CASE("select_envs keeps the chosen environments' columns in time-major order") {
  rl::TrajectoryBatch<double> t;
  t.envs = 3;
  t.steps = 2;
  t.observations = (Matrix<double>(1, 6) << 0, 1, 2, 10, 11, 12).finished();
  t.actions = t.observations;
  t.rewards = t.observations;
  t.terminated = Matrix<double>::Zero(1, 6);
  t.truncated = Matrix<double>::Zero(1, 6);
  t.log_probs = t.observations;
  t.bootstrap = Matrix<double>::Zero(1, 6);
  t.keep = Matrix<double>::Ones(1, 6);
  t.initial_state = (Matrix<double>(2, 3) << 1, 2, 3, 4, 5, 6).finished();
  const auto part = rl::select_envs(t, {2, 0});
  CHECK(part.envs == 2);
  CHECK(part.observations == (Matrix<double>(1, 4) << 2, 0, 12, 10).finished());
  CHECK(part.initial_state == (Matrix<double>(2, 2) << 3, 1, 6, 4).finished());
}

TEST_CASE("first-episode returns stop at the first episode's end despite automatic resets") {
  auto pi = actor(3);
  env::EnvBatch<env::CartPole> batch(4, env::CartPole{}, 5);
  pi.set_num_envs(4);
  std::mt19937_64 rng(6);
  const auto t = rl::collect(pi, batch, 300, policy::ActMode::sample, rng);
  const auto firsts = rl::first_episode_returns(t);
  REQUIRE(firsts.size() == 4);
  // An untrained policy drops the pole within 300 steps: each first episode ended, and its return is
  // the number of its steps, less than the 300 rewards of the rollout.
  for (const double r : firsts) {
    CHECK(r >= 8);
    CHECK(r < 300);
  }
  double total = 0;
  for (const double r : t.finished_returns) total += r;
  CHECK(t.finished_returns.size() > 4);
  CHECK(total <= static_cast<double>(t.rewards.sum()));
}

TEST_CASE("clip_grad_norm scales to the limit and reports the norm before") {
  std::vector<Matrix<float>> g{Matrix<float>::Constant(1, 1, 3.0f), Matrix<float>::Constant(1, 1, 4.0f)};
  CHECK(optim::clip_grad_norm(std::span<Matrix<float>>(g), 1.0) == doctest::Approx(5.0));
  CHECK(g[0](0, 0) == doctest::Approx(0.6));
  CHECK(g[1](0, 0) == doctest::Approx(0.8));
  CHECK(optim::clip_grad_norm(std::span<Matrix<float>>(g), 2.0) == doctest::Approx(1.0));
  CHECK(g[1](0, 0) == doctest::Approx(0.8));  // under the limit: unchanged
}

TEST_CASE("REINFORCE raises CartPole's return") {
  const auto [before, after] = improvement(
      actor(1), {.algorithm = rl::Algorithm::reinforce, .envs = 8, .steps = 500, .lr = 1e-3, .max_grad_norm = 1.0}, 60);
  MESSAGE("REINFORCE: " << before << " -> " << after);
  CHECK(after > before + 50);  // from about 23 (random) to over 73
}

TEST_CASE("A2C raises CartPole's return") {
  const auto [before, after] = improvement(
      actor_critic(1),
      {.algorithm = rl::Algorithm::a2c, .envs = 8, .steps = 8, .lr = 7e-4, .max_grad_norm = 0.5, .value_coef = 0.02},
      1500);
  MESSAGE("A2C: " << before << " -> " << after);
  CHECK(after > before + 50);  // from about 23 (random) to over 73
}

TEST_CASE("PPO raises CartPole's return") {
  const auto [before, after] = improvement(actor_critic(1),
                                           {.algorithm = rl::Algorithm::ppo, .envs = 16, .steps = 128, .lr = 1e-3,
                                            .max_grad_norm = 0.5, .epochs = 4, .minibatches = 4, .value_coef = 0.02},
                                           60);
  MESSAGE("PPO: " << before << " -> " << after);
  CHECK(after > before + 50);  // from about 23 (random) to over 73
}

TEST_CASE("the trainer rejects bad options with a message") {
  const auto a2c_without_value = test::message_of<InvalidArgument>(
      [] { rl::Trainer<Actor, env::CartPole>(actor(1), {.algorithm = rl::Algorithm::a2c}); });
  CHECK(a2c_without_value.find("a2c needs a policy with a value head") != std::string::npos);
  const auto minibatches = test::message_of<InvalidArgument>(
      [] { rl::Trainer<ActorCritic, env::CartPole>(actor_critic(1), {.envs = 2, .minibatches = 4}); });
  CHECK(minibatches.find("minibatches 4") != std::string::npos);
}

TEST_CASE("the trainer's knobs: its options by type and range, set whole or not at all, an override beats the decay") {
  rl::Trainer<ActorCritic, env::CartPole> trainer(
      actor_critic(5), {.algorithm = rl::Algorithm::ppo, .envs = 4, .steps = 32, .lr = 1e-3, .epochs = 2,
                        .minibatches = 2, .total_updates = 10});
  const auto schema = trainer.knob_schema();
  for (const char* name : {"lr", "lr_decay", "entropy_coef", "clip", "value_coef", "max_grad_norm", "epochs",
                           "minibatches", "steps"}) {
    CHECK_MESSAGE(schema.find(name).has_value(), name);
  }
  CHECK(schema.at("epochs", "test").type == control::KnobType::integer);
  CHECK(schema.at("minibatches", "test").upper == 4);
  CHECK_FALSE(rl::Trainer<Actor, env::CartPole>::knob_schema({.algorithm = rl::Algorithm::reinforce}).find("clip"));
  auto values = trainer.knob_values();
  CHECK(values == schema.defaults());
  // A refused set (one value out of range) changes nothing.
  auto bad = values;
  bad[*schema.find("minibatches")] = std::int64_t{5};
  bad[*schema.find("clip")] = 0.3;
  CHECK_THROWS_AS(trainer.set_knob_values(bad), InvalidArgument);
  CHECK(trainer.knob_values() == values);
  values[*schema.find("clip")] = 0.3;
  values[*schema.find("epochs")] = std::int64_t{3};
  trainer.set_knob_values(values);
  CHECK(trainer.options().clip == 0.3);
  CHECK(trainer.options().epochs == 3);
  // The schedule decays the configured rate; a held rate (an override's) is used as given.
  trainer.set_updates_done(5);
  CHECK(trainer.learning_rate_in_effect() == doctest::Approx(5e-4));
  trainer.set_knob_values(values, true);
  CHECK(trainer.learning_rate_in_effect() == 1e-3);
  const auto stats = trainer.update();
  CHECK(stats.lr == 1e-3);
  CHECK(trainer.optimizer().lr() == 1e-3);
}

namespace {
// A meta-optimizer that proposes what it is told, to see the steering clamp and apply it.
struct Proposing {
  metaopt::Changes next;
  metaopt::Changes update(const control::Telemetry& metrics, long) {
    seen_lr = metrics["lr"];
    seen_weight_decay = metrics["weight_decay"];
    return next;
  }
  [[nodiscard]] long every() const { return 2; }
  void reset() {}
  [[nodiscard]] std::vector<double> state() const { return {}; }
  void set_state(const std::vector<double>&) {}
  double seen_lr = 0, seen_weight_decay = 0;
};
}  // namespace

TEST_CASE("the trainer takes SGD, Adam or AdamW with weight decay, and a meta-optimizer steers lr and weight decay") {
  for (const auto kind : {optim::OptimizerKind::sgd, optim::OptimizerKind::adam, optim::OptimizerKind::adamw}) {
    const std::string name = optim::optimizer_name(kind);
    CAPTURE(name);
    const rl::TrainerOptions options{.algorithm = rl::Algorithm::ppo, .envs = 2, .steps = 16, .lr = 1e-3,
                                     .optimizer = kind, .weight_decay = 1e-4, .epochs = 1, .minibatches = 1};
    rl::Trainer<ActorCritic, env::CartPole> trainer(actor_critic(3), options);
    CHECK(trainer.optimizer().kind() == kind);
    CHECK(trainer.optimizer().weight_decay() == 1e-4);
    trainer.update();
    CHECK(trainer.optimizer().steps() == 1);
    metaopt::TrainerSteering<Proposing> steering(Proposing{{.lr = 50.0, .weight_decay = 2e-3}});
    control::Telemetry metrics;
    metrics.add("loss", 1.0);
    CHECK(steering.after_update(trainer, metrics, 1) == metaopt::Changes{});  // not its turn
    const auto applied = steering.after_update(trainer, metrics, 2);
    CHECK(steering.meta().seen_lr == 1e-3);
    CHECK(steering.meta().seen_weight_decay == 1e-4);
    CHECK(applied.lr == 1.0);  // clamped to the bounds [1e-7, 1]
    CHECK(applied.weight_decay == 2e-3);
    CHECK(std::get<double>(trainer.knob_values()[*trainer.knob_schema().find("weight_decay")]) == 2e-3);
    steering.meta().next = {.lr = 3e-4, .weight_decay = 1.0};
    CHECK(steering.after_update(trainer, metrics, 4).weight_decay == 1e-2);
    trainer.update();
    CHECK(trainer.optimizer().lr() == 3e-4);  // as set: the configured decay steps aside
    CHECK(trainer.optimizer().weight_decay() == 1e-2);
  }
  const auto negative = test::message_of<InvalidArgument>(
      [] { rl::Trainer<ActorCritic, env::CartPole>(actor_critic(1), {.weight_decay = -1.0}); });
  CHECK(negative.find("weight_decay -1") != std::string::npos);
}

TEST_CASE("each update reports its telemetry: entropy, KL of the update, clip fraction, explained variance") {
  rl::Trainer<ActorCritic, env::CartPole> trainer(
      actor_critic(6),
      {.algorithm = rl::Algorithm::ppo, .envs = 4, .steps = 64, .lr = 3e-3, .epochs = 4, .minibatches = 2});
  const auto first = trainer.update().telemetry();
  CHECK(first["entropy"] > 0.6);  // two actions: at most log 2 = 0.693
  CHECK(first["entropy"] <= std::log(2.0) + 1e-6);
  CHECK(first["kl"] > 0);
  CHECK(first["clip_fraction"] >= 0);
  CHECK(first["clip_fraction"] <= 1);
  CHECK(std::isfinite(first["explained_variance"]));
  CHECK(first["episode_length"] >= 8);
  CHECK(first["seconds"] > 0);
  CHECK(first["lr"] == 3e-3);
  // A learning rate a thousand times smaller hardly moves the policy: the KL measures the update.
  rl::Trainer<ActorCritic, env::CartPole> timid(
      actor_critic(6),
      {.algorithm = rl::Algorithm::ppo, .envs = 4, .steps = 64, .lr = 3e-6, .epochs = 4, .minibatches = 2});
  const auto still = timid.update();
  CHECK(still.kl < first["kl"] / 100);
  CHECK(still.clip_fraction <= first["clip_fraction"]);
  rl::Trainer<Actor, env::CartPole> plain(actor(6), {.algorithm = rl::Algorithm::reinforce, .envs = 4, .steps = 64});
  const auto r = plain.update();
  CHECK(std::isnan(r.explained_variance));
  CHECK(std::isnan(r.clip_fraction));
  CHECK(r.kl >= 0);
}

TEST_CASE("a PBT population of PPO trainers gives the same members on one thread as on three") {
  using Trainer = rl::Trainer<ActorCritic, env::CartPole>;
  const auto run = [](unsigned threads) {
    std::vector<std::unique_ptr<Trainer>> members;
    for (std::uint64_t m = 0; m < 4; ++m) {
      members.push_back(std::make_unique<Trainer>(
          actor_critic(20 + m), rl::TrainerOptions{.algorithm = rl::Algorithm::ppo, .envs = 2, .steps = 32,
                                                   .lr = 1e-3 * static_cast<double>(m + 1), .epochs = 2,
                                                   .minibatches = 2, .seed = 30 + m}));
    }
    const auto steered = members[0]->knob_schema().subset({"lr", "clip"}, "test");
    control::Population<Trainer> population(std::move(members), steered,
                                            {.interval = 2, .threads = threads, .seed = 4});
    std::vector<control::PbtCopy> copies;
    for (int s = 0; s < 5; ++s) {
      const auto step = population.step();
      CHECK(step.scores.size() == 4);
      CHECK(step.copies.empty() == (s % 2 == 0));
      for (const auto& c : step.copies) {
        // The exploit copied the policy and Adam's state; explore moved the knobs from the source's.
        const auto to = nn::to_list<Matrix<float>>(population.member(c.to).policy().params());
        const auto from = nn::to_list<Matrix<float>>(population.member(c.from).policy().params());
        for (std::size_t i = 0; i < to.size(); ++i) CHECK(to[i] == from[i]);
        CHECK(population.member(c.to).optimizer().steps() == population.member(c.from).optimizer().steps());
        CHECK(population.knobs(c.to) != population.knobs(c.from));
        copies.push_back(c);
      }
    }
    std::vector<std::vector<Matrix<float>>> params;
    std::vector<control::KnobChanges> knobs;
    for (std::size_t m = 0; m < population.size(); ++m) {
      params.push_back(nn::to_list<Matrix<float>>(population.member(m).policy().params()));
      knobs.push_back(population.knobs(m));
      // The last step followed no round: each member trained with the population's learning rate,
      // held (no decay).
      CHECK(population.member(m).optimizer().lr() == std::get<double>(population.knobs(m).at("lr")));
    }
    return std::make_tuple(params, knobs, copies.size());
  };
  const auto [one_params, one_knobs, one_copies] = run(1);
  const auto [three_params, three_knobs, three_copies] = run(3);
  CHECK(one_copies == 2);
  CHECK(three_copies == one_copies);
  CHECK(one_knobs == three_knobs);
  REQUIRE(one_params.size() == three_params.size());
  for (std::size_t m = 0; m < one_params.size(); ++m) {
    for (std::size_t i = 0; i < one_params[m].size(); ++i) CHECK(one_params[m][i] == three_params[m][i]);
  }
}
