// Plain (non-meta) policy-gradient training of a policy on one environment: REINFORCE with
// normalised returns, A2C, and PPO's clipped surrogate, with an Adam step and gradient clipping.
// Recurrent policies train on whole rollout sequences; PPO's minibatches are sets of environments.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "ssmrl/control/knobs.hpp"
#include "ssmrl/control/telemetry.hpp"
#include "ssmrl/env/env_batch.hpp"
#include "ssmrl/optim/any_optimizer.hpp"
#include "ssmrl/optim/clip.hpp"
#include "ssmrl/rl/advantages.hpp"
#include "ssmrl/rl/losses.hpp"
#include "ssmrl/rl/rollout.hpp"

namespace ssmrl::rl {

enum class Algorithm { reinforce, a2c, ppo };

inline const char* algorithm_name(Algorithm a) {
  switch (a) {
    case Algorithm::reinforce: return "reinforce";
    case Algorithm::a2c: return "a2c";
    case Algorithm::ppo: return "ppo";
  }
  return "?";
}

struct TrainerOptions {
  Algorithm algorithm = Algorithm::ppo;
  int envs = 8;               //!< environments stepped together
  int steps = 256;            //!< rollout length per environment and update
  double gamma = 0.99;
  double gae_lambda = 0.95;   //!< A2C and PPO
  double lr = 3e-4;
  optim::OptimizerKind optimizer = optim::OptimizerKind::adam;
  double weight_decay = 0.0;  //!< the optimiser's (L2 for SGD and Adam, decoupled for AdamW)
  double momentum = 0.9;      //!< SGD's
  double max_grad_norm = 0.5;
  int epochs = 10;            //!< PPO: passes over each rollout
  int minibatches = 4;        //!< PPO: each pass in this many sets of environments
  double clip = 0.2;          //!< PPO
  double value_coef = 0.5;    //!< A2C and PPO
  double entropy_coef = 0.0;  //!< A2C and PPO
  double mc_pg_coef = 1.0;    //!< MC policies: weight of the MC head's clipped surrogate
  double mc_entropy_coef = 0.01;  //!< MC policies: weight of the MC head's entropy bonus
  long total_updates = 0;     //!< when positive, the learning rate decays linearly to 0 over them
  std::uint64_t seed = 1;
};

inline constexpr double not_measured = std::numeric_limits<double>::quiet_NaN();

struct UpdateStats {
  long update = 0;
  long env_steps = 0;
  double mean_return = not_measured;  //!< of the last 100 finished episodes
  double return_std = not_measured;   //!< their spread (population standard deviation)
  long episodes = 0;                  //!< finished so far
  double episode_length = not_measured;  //!< mean length of the episodes that ended in this rollout
  double loss = 0;                    //!< of the last gradient step
  double grad_norm = 0;               //!< before clipping, mean over the update's gradient steps
  double entropy = not_measured;      //!< mean policy entropy over the rollout, before the update
  double kl = not_measured;           //!< mean KL(old || new) over the rollout's steps (k3 estimator)
  double clip_fraction = not_measured;  //!< PPO: share of steps whose ratio left [1 - clip, 1 + clip]
  double explained_variance = not_measured;  //!< of the value head's predictions of the returns
  double lr = 0;                      //!< the learning rate in effect
  double seconds = 0;                 //!< wall-clock time of the update
  double mc_entropy = not_measured;   //!< MC policies: mean entropy of the MC head over the rollout
  //! MC policies: the share of the rollout's steps that chose each of the registry's actions
  //! (in McRegistry::actions() order, noop first).
  std::vector<double> mc_action_share;

  //! The named values a controller reads (control::Telemetry), in a fixed order.
  [[nodiscard]] control::Telemetry telemetry() const {
    control::Telemetry t;
    t.add("return_mean", mean_return);
    t.add("return_std", return_std);
    t.add("episode_length", episode_length);
    t.add("entropy", entropy);
    t.add("kl", kl);
    t.add("grad_norm", grad_norm);
    t.add("clip_fraction", clip_fraction);
    t.add("explained_variance", explained_variance);
    t.add("loss", loss);
    t.add("lr", lr);
    t.add("seconds", seconds);
    return t;
  }
};

//! The columns of environments `envs` of a time-major matrix (T blocks of `total_envs` columns).
template <class Scalar>
ad::Matrix<Scalar> select_env_columns(const ad::Matrix<Scalar>& from, ad::Index total_envs,
                                      const std::vector<ad::Index>& envs) {
  if (from.size() == 0) return from;
  const auto m = static_cast<ad::Index>(envs.size());
  const ad::Index steps = from.cols() / total_envs;
  ad::Matrix<Scalar> to(from.rows(), m * steps);
  for (ad::Index k = 0; k < steps; ++k) {
    for (ad::Index j = 0; j < m; ++j) to.col(k * m + j) = from.col(k * total_envs + envs[static_cast<std::size_t>(j)]);
  }
  return to;
}

//! The trajectories of the environments `envs` (indices into the batch's environments).
template <class Scalar>
TrajectoryBatch<Scalar> select_envs(const TrajectoryBatch<Scalar>& t, const std::vector<ad::Index>& envs) {
  TrajectoryBatch<Scalar> out;
  out.envs = static_cast<ad::Index>(envs.size());
  out.steps = t.steps;
  auto pick = [&](const ad::Matrix<Scalar>& from) { return select_env_columns(from, t.envs, envs); };
  out.observations = pick(t.observations);
  out.actions = pick(t.actions);
  out.samples = pick(t.samples);
  out.rewards = pick(t.rewards);
  out.terminated = pick(t.terminated);
  out.truncated = pick(t.truncated);
  out.log_probs = pick(t.log_probs);
  out.values = pick(t.values);
  out.bootstrap = pick(t.bootstrap);
  out.keep = pick(t.keep);
  out.mc.choices = pick(t.mc.choices);
  out.mc.log_probs = pick(t.mc.log_probs);
  out.mc.state_keep = pick(t.mc.state_keep);
  out.mc.state_offset = pick(t.mc.state_offset);
  out.mc.state_edited = pick(t.mc.state_edited);
  out.mc.tokens = pick(t.mc.tokens);
  if (t.mc.values.size() > 0) out.mc.values = pick(t.mc.values);
  out.initial_state.resize(t.initial_state.rows(), out.envs);
  if (t.last_values.size() != 0) out.last_values.resize(1, out.envs);
  for (ad::Index j = 0; j < out.envs; ++j) {
    const auto i = envs[static_cast<std::size_t>(j)];
    out.initial_state.col(j) = t.initial_state.col(i);
    if (t.last_values.size() != 0) out.last_values(0, j) = t.last_values(0, i);
  }
  return out;
}

template <policy::TrainablePolicy PolicyT, env::Environment Env>
class Trainer {
public:
  using Scalar = typename PolicyT::scalar_type;
  //! Whether the policy has an MC head (mc::McPolicy), trained beside it with PPO.
  static constexpr bool has_mc_head = requires { typename PolicyT::registry_type; };

  Trainer(PolicyT policy, TrainerOptions options, Env prototype = Env{})
      : policy_(std::move(policy)),
        options_(options),
        optimizer_(optim::OptimizerChoice{.kind = options.optimizer,
                                          .lr = options.lr,
                                          .weight_decay = options.weight_decay,
                                          .momentum = options.momentum}),
        rng_(options.seed),
        batch_(static_cast<std::size_t>(std::max(options.envs, 1)), prototype, options.seed + 1),
        prototype_(prototype) {
    SSMRL_REQUIRE(options.weight_decay >= 0 && options.momentum >= 0, "rl::Trainer: weight_decay ",
                  options.weight_decay, " and momentum ", options.momentum, " must not be negative");
    SSMRL_REQUIRE(options.envs > 0 && options.steps > 0 && options.lr > 0 && options.max_grad_norm > 0 &&
                      options.epochs > 0 && options.minibatches > 0 && options.minibatches <= options.envs,
                  "rl::Trainer: envs ", options.envs, ", steps ", options.steps, ", lr ", options.lr,
                  ", max_grad_norm ", options.max_grad_norm, ", epochs ", options.epochs,
                  " must be positive and minibatches ", options.minibatches, " within [1, envs]");
    SSMRL_REQUIRE(options.algorithm == Algorithm::reinforce || PolicyT::has_value_head, "rl::Trainer: ",
                  algorithm_name(options.algorithm), " needs a policy with a value head");
    SSMRL_REQUIRE(!has_mc_head || options.algorithm == Algorithm::ppo, "rl::Trainer: a policy with an MC head trains ",
                  "with ppo, not ", algorithm_name(options.algorithm));
    SSMRL_REQUIRE(options.mc_pg_coef >= 0 && options.mc_entropy_coef >= 0, "rl::Trainer: mc_pg_coef ",
                  options.mc_pg_coef, " and mc_entropy_coef ", options.mc_entropy_coef, " must not be negative");
    policy_.set_num_envs(options.envs);
    policy_.reset_all();
  }

  //! The options a controller or a person may change between updates, for this algorithm (PPO's
  //! clip, epochs and minibatches only with PPO; the value and entropy weights and GAE's lambda not
  //! with REINFORCE; the decay switch only with a decay horizon). Defaults: the options given at
  //! construction.
  [[nodiscard]] control::KnobSchema knob_schema() const { return knob_schema(configured_); }
  //! The knobs of a trainer constructed with `o`.
  [[nodiscard]] static control::KnobSchema knob_schema(const TrainerOptions& o) {
    const bool ac = o.algorithm != Algorithm::reinforce;
    const bool ppo = o.algorithm == Algorithm::ppo;
    std::vector<control::Knob> k;
    k.push_back(
        control::real_knob("lr", o.lr, 1e-7, 1.0, true, "the optimiser's learning rate (where it decays, the start)"));
    k.push_back(control::real_knob("weight_decay", o.weight_decay, 0.0, 1e-1, false, "the optimiser's weight decay"));
    if (o.total_updates > 0) {
      k.push_back(control::boolean_knob("lr_decay", true, "decay the learning rate linearly to 0 over the run"));
    }
    if (ac) {
      auto entropy = control::real_knob("entropy_coef", o.entropy_coef, 0.0, 0.1, false, "weight of the entropy bonus");
      entropy.step = 0.002;
      k.push_back(entropy);
      k.push_back(control::real_knob("value_coef", o.value_coef, 0.0, 2.0, false, "weight of the value loss"));
    }
    if (ppo) {
      auto clip = control::real_knob("clip", o.clip, 0.01, 0.9, false, "PPO's clip range of the probability ratio");
      clip.step = 0.02;
      k.push_back(clip);
    }
    if (ppo && has_mc_head) {
      k.push_back(control::real_knob("mc_pg_coef", o.mc_pg_coef, 0.0, 10.0, false,
                                     "weight of the MC head's clipped surrogate"));
      auto mc_entropy =
          control::real_knob("mc_entropy_coef", o.mc_entropy_coef, 0.0, 0.1, false, "weight of the MC head's entropy");
      mc_entropy.step = 0.002;
      k.push_back(mc_entropy);
      if constexpr (has_mc_head) {
        for (const auto& a : PolicyT::registry_type::declared_actions()) {
          k.push_back(control::boolean_knob(mc_knob_prefix + a, true,
                                            "whether the MC head may choose " + a + " (false: it is never chosen)"));
        }
      }
    }
    k.push_back(control::real_knob("max_grad_norm", o.max_grad_norm, 1e-3, 100.0, true,
                                   "gradient clipping: the largest joint norm"));
    auto gamma = control::real_knob("gamma", o.gamma, 0.8, 0.9999, false, "discount factor");
    gamma.step = 0.005;
    k.push_back(gamma);
    if (ac) k.push_back(control::real_knob("gae_lambda", o.gae_lambda, 0.0, 1.0, false, "GAE's lambda"));
    if (ppo) {
      k.push_back(control::integer_knob("epochs", o.epochs, 1, 100, "passes over each rollout"));
      k.push_back(control::integer_knob("minibatches", o.minibatches, 1, o.envs, "sets of environments per pass"));
    }
    k.push_back(control::integer_knob("steps", o.steps, 1, 100000, "rollout length per environment and update"));
    return control::KnobSchema(std::move(k));
  }

  //! The knobs' values now, in knob_schema()'s order.
  [[nodiscard]] std::vector<control::KnobValue> knob_values() const {
    std::vector<control::KnobValue> out;
    const auto schema = knob_schema();
    for (const auto& k : schema.knobs()) out.push_back(knob_value(k.name));
    return out;
  }

  //! Sets every knob (knob_schema()'s order) from the next update on, after checking them all.
  //! With `hold_lr` the learning rate is used as given, the schedule's decay set aside (an override
  //! or a controller's value wins over the schedule).
  void set_knob_values(const std::vector<control::KnobValue>& values, bool hold_lr = false) {
    const auto schema = knob_schema();
    schema.check_values(values, "rl::Trainer::set_knob_values");
    for (std::size_t i = 0; i < values.size(); ++i) set_knob(schema[i].name, values[i]);
    if constexpr (has_mc_head) {
      // The MC action knobs give the active set, in declaration order (noop is always in it).
      std::vector<std::string> active;
      for (std::size_t i = 0; i < values.size(); ++i) {
        if (is_mc_action_knob(schema[i].name) && std::get<bool>(values[i]))
          active.push_back(schema[i].name.substr(mc_knob_prefix.size()));
      }
      policy_.registry().set_active(active);
    }
    hold_lr_ = hold_lr;
  }
  //! Whether the learning rate is used as set, without the schedule's decay.
  [[nodiscard]] bool learning_rate_held() const noexcept { return hold_lr_; }
  //! The learning rate of the next update.
  [[nodiscard]] double learning_rate_in_effect() const {
    if (options_.total_updates <= 0 || hold_lr_ || !decay_) return options_.lr;
    const double left = 1.0 - static_cast<double>(updates_) / static_cast<double>(options_.total_updates);
    return options_.lr * std::max(left, 0.0);
  }

  //! The whole training state besides the policy, for copying one member of a population into
  //! another (Population Based Training's exploit): the optimiser's state, the generator, the counts.
  [[nodiscard]] const optim::AnyOptimizer<Scalar>& optimizer() const noexcept { return optimizer_; }
  [[nodiscard]] optim::AnyOptimizer<Scalar>& optimizer() noexcept { return optimizer_; }

  [[nodiscard]] const PolicyT& policy() const { return policy_; }
  [[nodiscard]] PolicyT& policy() { return policy_; }
  [[nodiscard]] const TrainerOptions& options() const { return options_; }
  //! Updates done so far (the learning-rate schedule's clock); set when resuming.
  [[nodiscard]] long updates_done() const noexcept { return updates_; }
  void set_updates_done(long n) {
    SSMRL_REQUIRE(n >= 0, "rl::Trainer::set_updates_done: n ", n, " must not be negative");
    updates_ = n;
  }

  //! The counts a resumed run continues: updates, environment steps, finished episodes and the
  //! returns behind mean_return (the last 100 finished episodes, oldest first).
  struct Progress {
    long updates = 0;
    long env_steps = 0;
    long episodes = 0;
    std::vector<double> recent_returns;
  };
  [[nodiscard]] Progress progress() const {
    return {updates_, env_steps_, episodes_, std::vector<double>(recent_.begin(), recent_.end())};
  }
  //! Restores progress() of an earlier run; nothing changes unless every count is consistent.
  void restore_progress(const Progress& p) {
    SSMRL_REQUIRE(p.updates >= 0 && p.env_steps >= 0 && p.episodes >= 0 && p.recent_returns.size() <= 100 &&
                      static_cast<long>(p.recent_returns.size()) <= p.episodes,
                  "rl::Trainer::restore_progress: updates ", p.updates, ", env_steps ", p.env_steps, ", episodes ",
                  p.episodes, " must not be negative and the ", p.recent_returns.size(),
                  " recent returns at most 100 and at most the episodes");
    for (const double r : p.recent_returns) {
      SSMRL_REQUIRE(std::isfinite(r), "rl::Trainer::restore_progress: a recent return is ", r);
    }
    updates_ = p.updates;
    env_steps_ = p.env_steps;
    episodes_ = p.episodes;
    recent_.assign(p.recent_returns.begin(), p.recent_returns.end());
  }

  //! Collects one rollout of every environment and updates the policy on it.
  UpdateStats update() {
    const auto started = std::chrono::steady_clock::now();
    const double lr = learning_rate_in_effect();
    optimizer_.set_lr(lr);
    optimizer_.set_weight_decay(options_.weight_decay);
    const auto t = collect(policy_, batch_, options_.steps, policy::ActMode::sample, rng_);
    for (const double r : t.finished_returns) {
      recent_.push_back(r);
      if (recent_.size() > 100) recent_.pop_front();
    }
    episodes_ += static_cast<long>(t.finished_returns.size());
    measures_ = {};
    UpdateStats stats;
    if (options_.algorithm == Algorithm::ppo) {
      stats = ppo_update(t);
    } else {
      stats = gradient_step([&](const typename PolicyT::VarParams& vars) { return loss(vars, t); });
    }
    ++updates_;
    env_steps_ += static_cast<long>(options_.envs) * options_.steps;
    stats.update = updates_;
    stats.env_steps = env_steps_;
    stats.episodes = episodes_;
    if (!recent_.empty()) {
      const double n = static_cast<double>(recent_.size());
      stats.mean_return = std::accumulate(recent_.begin(), recent_.end(), 0.0) / n;
      double squares = 0;
      for (const double r : recent_) squares += (r - stats.mean_return) * (r - stats.mean_return);
      stats.return_std = std::sqrt(squares / n);
    }
    if (!t.finished_lengths.empty()) {
      stats.episode_length =
          static_cast<double>(std::accumulate(t.finished_lengths.begin(), t.finished_lengths.end(), 0L)) /
          static_cast<double>(t.finished_lengths.size());
    }
    if (measures_.steps > 0) {
      stats.grad_norm = measures_.grad_norm / measures_.steps;
      stats.entropy = measures_.entropy / measures_.steps;
    }
    if (measures_.clip_columns > 0) stats.clip_fraction = measures_.clipped / measures_.clip_columns;
    if constexpr (has_mc_head) {
      if (measures_.steps > 0) stats.mc_entropy = measures_.mc_entropy / measures_.steps;
      stats.mc_action_share.assign(policy_.registry().actions().size(), 0.0);
      for (ad::Index c = 0; c < t.mc.choices.cols(); ++c) {
        stats.mc_action_share[static_cast<std::size_t>(t.mc.choices(0, c))] += 1.0;
      }
      for (auto& s : stats.mc_action_share) s /= static_cast<double>(std::max<ad::Index>(t.mc.choices.cols(), 1));
    }
    stats.kl = update_kl(t);
    if constexpr (PolicyT::has_value_head) stats.explained_variance = explained_variance(t);
    stats.lr = lr;
    stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return stats;
  }

  //! Returns of `episodes` whole episodes of a copy of the policy, in new environments seeded with `seed`.
  std::vector<double> evaluate(int episodes, policy::ActMode mode, std::uint64_t seed) const {
    SSMRL_REQUIRE(episodes > 0, "rl::Trainer::evaluate: episodes ", episodes, " must be positive");
    return first_episode_returns(evaluation_trajectories(episodes, mode, seed));
  }
  //! The rollout evaluate() takes its returns from: one environment per episode, each for the time
  //! limit (its first episode is the one that counts; see first_episode_returns).
  TrajectoryBatch<Scalar> evaluation_trajectories(int episodes, policy::ActMode mode, std::uint64_t seed) const {
    SSMRL_REQUIRE(episodes > 0, "rl::Trainer::evaluation_trajectories: episodes ", episodes, " must be positive");
    PolicyT acting = policy_;
    acting.set_num_envs(episodes);
    acting.reset_all();
    env::EnvBatch<Env> batch(static_cast<std::size_t>(episodes), prototype_, seed);
    std::mt19937_64 rng(seed);
    return collect(acting, batch, prototype_.max_episode_steps(), mode, rng);
  }

private:
  template <class LossFn>
  UpdateStats gradient_step(LossFn&& loss_of) {
    tape_.clear();
    const auto vars = nn::on_tape(tape_, policy_.params());
    const auto l = loss_of(vars);
    UpdateStats stats;
    stats.loss = static_cast<double>(l.item());
    tape_.backward(l);
    auto grads = nn::to_list<ad::Matrix<Scalar>>(nn::gradients_of<Scalar>(vars));
    stats.grad_norm = optim::clip_grad_norm(std::span<ad::Matrix<Scalar>>(grads), options_.max_grad_norm);
    measures_.grad_norm += stats.grad_norm;
    measures_.steps += 1;
    if (!std::isfinite(stats.grad_norm) || !std::isfinite(stats.loss)) return stats;  // skip a broken step
    auto values = nn::to_list<ad::Matrix<Scalar>>(policy_.params());
    optimizer_.step(std::span<ad::Matrix<Scalar>>(values), std::span<const ad::Matrix<Scalar>>(grads));
    policy_.set_params(nn::from_list(policy_.params(), values));
    return stats;
  }

  // The policy's evaluation of `t` on the tape; its mean entropy is recorded for the telemetry.
  auto evaluate_on_tape(const typename PolicyT::VarParams& vars, const TrajectoryBatch<Scalar>& t) {
    auto e = rl::evaluate(policy_, tape_, vars, t);
    measures_.entropy += static_cast<double>(e.entropy.value().template cast<double>().mean());
    return e;
  }

  // KL(old || new) over the rollout's steps after the update, by the k3 estimator (r - 1) - log r
  // of r = new / old: unbiased and never negative.
  double update_kl(const TrajectoryBatch<Scalar>& t) {
    tape_.clear();
    const auto vars = nn::on_tape(tape_, policy_.params());
    const auto e = rl::evaluate(policy_, tape_, vars, t);
    const Eigen::ArrayXd log_ratio =
        (e.log_prob.value().template cast<double>() - t.log_probs.template cast<double>()).array().transpose();
    return ((log_ratio.exp() - 1.0) - log_ratio).mean();
  }

  // 1 - Var(returns - values) / Var(returns) of the rollout's value predictions against the
  // returns they regress to (GAE's); NaN when the returns do not vary.
  double explained_variance(const TrajectoryBatch<Scalar>& t) const {
    const auto estimate = gae(t, options_.gamma, options_.gae_lambda);
    const Eigen::ArrayXd returns = estimate.returns.template cast<double>().array().transpose();
    const Eigen::ArrayXd errors = returns - t.values.template cast<double>().array().transpose();
    const auto variance = [](const Eigen::ArrayXd& x) { return (x - x.mean()).square().mean(); };
    const double v = variance(returns);
    return v > 0 ? 1.0 - variance(errors) / v : not_measured;
  }

  // REINFORCE (normalised discounted returns) or A2C (GAE advantages, value regression, entropy).
  ad::Var<Scalar> loss(const typename PolicyT::VarParams& vars, const TrajectoryBatch<Scalar>& t) {
    const auto e = evaluate_on_tape(vars, t);
    if (options_.algorithm == Algorithm::reinforce) {
      return policy_gradient_loss(e.log_prob, tape_.constant(normalized(discounted_returns(t, options_.gamma))));
    }
    if constexpr (PolicyT::has_value_head) {
      const auto estimate = gae(t, options_.gamma, options_.gae_lambda);
      return a2c_loss(e.log_prob, tape_.constant(normalized(estimate.advantages)), e.value,
                      tape_.constant(estimate.returns), e.entropy,
                      {.value = options_.value_coef, .entropy = options_.entropy_coef});
    }
    SSMRL_THROW(::ssmrl::UsageError, "rl::Trainer: a2c needs a value head");
  }

  UpdateStats ppo_update(const TrajectoryBatch<Scalar>& t) {
    UpdateStats last;
    if constexpr (PolicyT::has_value_head) {
      const auto estimate = gae(t, options_.gamma, options_.gae_lambda);
      std::vector<ad::Index> order(static_cast<std::size_t>(t.envs));
      std::iota(order.begin(), order.end(), ad::Index{0});
      const ad::Index per_batch = t.envs / options_.minibatches;
      for (int epoch = 0; epoch < options_.epochs; ++epoch) {
        std::shuffle(order.begin(), order.end(), rng_);
        for (int b = 0; b < options_.minibatches; ++b) {
          std::vector<ad::Index> envs(order.begin() + b * per_batch,
                                      b + 1 == options_.minibatches ? order.end() : order.begin() + (b + 1) * per_batch);
          const auto part = select_envs(t, envs);
          const auto advantages = normalized(select_env_columns(estimate.advantages, t.envs, envs));
          const auto returns = select_env_columns(estimate.returns, t.envs, envs);
          last = gradient_step([&](const typename PolicyT::VarParams& vars) {
            const auto e = evaluate_on_tape(vars, part);
            const auto policy_loss = ppo_clip_loss(e.log_prob, tape_.constant(part.log_probs),
                                                   tape_.constant(advantages), options_.clip);
            const Eigen::ArrayXd ratio =
                (e.log_prob.value().template cast<double>() - part.log_probs.template cast<double>())
                    .array()
                    .exp()
                    .transpose();
            measures_.clipped += static_cast<double>(((ratio - 1.0).abs() > options_.clip).count());
            measures_.clip_columns += static_cast<double>(ratio.size());
            const auto value_loss = ad::mean(ad::square(ad::sub(e.value, tape_.constant(returns))));
            auto total = ad::sub(ad::add(policy_loss, value_loss * static_cast<Scalar>(options_.value_coef)),
                                 ad::mean(e.entropy) * static_cast<Scalar>(options_.entropy_coef));
            if constexpr (has_mc_head) {
              // The main advantage is measured from the value after the MC action (pass 2); the MC
              // action's own is measured from the value before it: A + V(after) - V(before).
              const auto mc_advantages = normalized(
                  (select_env_columns(estimate.advantages, t.envs, envs) + part.values - part.mc.values).eval());
              const auto mc_loss = ppo_clip_loss(e.mc_log_prob, tape_.constant(part.mc.log_probs),
                                                 tape_.constant(mc_advantages), options_.clip);
              measures_.mc_entropy += static_cast<double>(e.mc_entropy.value().template cast<double>().mean());
              total = ad::sub(ad::add(total, mc_loss * static_cast<Scalar>(options_.mc_pg_coef)),
                              ad::mean(e.mc_entropy) * static_cast<Scalar>(options_.mc_entropy_coef));
            }
            return total;
          });
        }
      }
    }
    return last;
  }

  // Sets one knob by name (checked by the caller).
  void set_knob(const std::string& name, const control::KnobValue& v) {
    const auto real = [&] { return std::get<double>(v); };
    const auto whole = [&] { return static_cast<int>(std::get<std::int64_t>(v)); };
    if (name == "lr") options_.lr = real();
    else if (name == "weight_decay") options_.weight_decay = real();
    else if (name == "lr_decay") decay_ = std::get<bool>(v);
    else if (name == "entropy_coef") options_.entropy_coef = real();
    else if (name == "value_coef") options_.value_coef = real();
    else if (name == "clip") options_.clip = real();
    else if (name == "mc_pg_coef") options_.mc_pg_coef = real();
    else if (name == "mc_entropy_coef") options_.mc_entropy_coef = real();
    else if (name == "max_grad_norm") options_.max_grad_norm = real();
    else if (name == "gamma") options_.gamma = real();
    else if (name == "gae_lambda") options_.gae_lambda = real();
    else if (name == "epochs") options_.epochs = whole();
    else if (name == "minibatches") options_.minibatches = whole();
    else if (name == "steps") options_.steps = whole();
  }
  //! The MC action knobs: mc_ and an action's name.
  static inline const std::string mc_knob_prefix = "mc_";
  [[nodiscard]] bool is_mc_action_knob(const std::string& name) const {
    return name.starts_with(mc_knob_prefix) && policy_.registry().find(name.substr(mc_knob_prefix.size())).has_value();
  }
  [[nodiscard]] control::KnobValue knob_value(const std::string& name) const {
    if constexpr (has_mc_head) {
      if (is_mc_action_knob(name)) {
        const auto active = policy_.registry().active_names();
        return std::find(active.begin(), active.end(), name.substr(mc_knob_prefix.size())) != active.end();
      }
    }
    if (name == "lr") return options_.lr;
    if (name == "weight_decay") return options_.weight_decay;
    if (name == "lr_decay") return decay_;
    if (name == "entropy_coef") return options_.entropy_coef;
    if (name == "value_coef") return options_.value_coef;
    if (name == "clip") return options_.clip;
    if (name == "mc_pg_coef") return options_.mc_pg_coef;
    if (name == "mc_entropy_coef") return options_.mc_entropy_coef;
    if (name == "max_grad_norm") return options_.max_grad_norm;
    if (name == "gamma") return options_.gamma;
    if (name == "gae_lambda") return options_.gae_lambda;
    if (name == "epochs") return std::int64_t{options_.epochs};
    if (name == "minibatches") return std::int64_t{options_.minibatches};
    return std::int64_t{options_.steps};
  }

  // What one update measures along the way, for its telemetry.
  struct Measures {
    double grad_norm = 0;
    double entropy = 0;
    double steps = 0;
    double clipped = 0;
    double clip_columns = 0;
    double mc_entropy = 0;
  };

  PolicyT policy_;
  TrainerOptions options_;
  TrainerOptions configured_ = options_;
  bool decay_ = true;
  bool hold_lr_ = false;
  Measures measures_;
  optim::AnyOptimizer<Scalar> optimizer_;
  std::mt19937_64 rng_;
  env::EnvBatch<Env> batch_;
  Env prototype_;
  ad::Tape<Scalar> tape_;
  std::deque<double> recent_;
  long updates_ = 0;
  long env_steps_ = 0;
  long episodes_ = 0;
};

}  // namespace ssmrl::rl
