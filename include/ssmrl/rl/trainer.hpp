// Plain (non-meta) policy-gradient training of a policy on one environment: REINFORCE with
// normalised returns, A2C, and PPO's clipped surrogate, with an Adam step and gradient clipping.
// Recurrent policies train on whole rollout sequences; PPO's minibatches are sets of environments.
#pragma once

#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "ssmrl/env/env_batch.hpp"
#include "ssmrl/optim/adam.hpp"
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
  double lr = 3e-4;           //!< Adam
  double max_grad_norm = 0.5;
  int epochs = 10;            //!< PPO: passes over each rollout
  int minibatches = 4;        //!< PPO: each pass in this many sets of environments
  double clip = 0.2;          //!< PPO
  double value_coef = 0.5;    //!< A2C and PPO
  double entropy_coef = 0.0;  //!< A2C and PPO
  long total_updates = 0;     //!< when positive, the learning rate decays linearly to 0 over them
  std::uint64_t seed = 1;
};

struct UpdateStats {
  long update = 0;
  long env_steps = 0;
  double mean_return = std::numeric_limits<double>::quiet_NaN();  //!< of the last 100 finished episodes
  long episodes = 0;                                               //!< finished so far
  double loss = 0;
  double grad_norm = 0;
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

  Trainer(PolicyT policy, TrainerOptions options, Env prototype = Env{})
      : policy_(std::move(policy)),
        options_(options),
        adam_({.lr = options.lr}),
        rng_(options.seed),
        batch_(static_cast<std::size_t>(std::max(options.envs, 1)), prototype, options.seed + 1),
        prototype_(prototype) {
    SSMRL_REQUIRE(options.envs > 0 && options.steps > 0 && options.lr > 0 && options.max_grad_norm > 0 &&
                      options.epochs > 0 && options.minibatches > 0 && options.minibatches <= options.envs,
                  "rl::Trainer: envs ", options.envs, ", steps ", options.steps, ", lr ", options.lr,
                  ", max_grad_norm ", options.max_grad_norm, ", epochs ", options.epochs,
                  " must be positive and minibatches ", options.minibatches, " within [1, envs]");
    SSMRL_REQUIRE(options.algorithm == Algorithm::reinforce || PolicyT::has_value_head, "rl::Trainer: ",
                  algorithm_name(options.algorithm), " needs a policy with a value head");
    policy_.set_num_envs(options.envs);
    policy_.reset_all();
  }

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
    if (options_.total_updates > 0) {
      const double left = 1.0 - static_cast<double>(updates_) / static_cast<double>(options_.total_updates);
      adam_.set_lr(options_.lr * std::max(left, 0.0));
    }
    const auto t = collect(policy_, batch_, options_.steps, policy::ActMode::sample, rng_);
    for (const double r : t.finished_returns) {
      recent_.push_back(r);
      if (recent_.size() > 100) recent_.pop_front();
    }
    episodes_ += static_cast<long>(t.finished_returns.size());
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
    if (!recent_.empty()) stats.mean_return = std::accumulate(recent_.begin(), recent_.end(), 0.0) / static_cast<double>(recent_.size());
    return stats;
  }

  //! Returns of `episodes` whole episodes of a copy of the policy, in new environments seeded with `seed`.
  std::vector<double> evaluate(int episodes, policy::ActMode mode, std::uint64_t seed) const {
    SSMRL_REQUIRE(episodes > 0, "rl::Trainer::evaluate: episodes ", episodes, " must be positive");
    PolicyT acting = policy_;
    acting.set_num_envs(episodes);
    acting.reset_all();
    env::EnvBatch<Env> batch(static_cast<std::size_t>(episodes), prototype_, seed);
    std::mt19937_64 rng(seed);
    return first_episode_returns(collect(acting, batch, prototype_.max_episode_steps(), mode, rng));
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
    if (!std::isfinite(stats.grad_norm) || !std::isfinite(stats.loss)) return stats;  // skip a broken step
    auto values = nn::to_list<ad::Matrix<Scalar>>(policy_.params());
    adam_.step(std::span<ad::Matrix<Scalar>>(values), std::span<const ad::Matrix<Scalar>>(grads));
    policy_.set_params(nn::from_list(policy_.params(), values));
    return stats;
  }

  auto evaluate_on_tape(const typename PolicyT::VarParams& vars, const TrajectoryBatch<Scalar>& t) {
    return rl::evaluate(policy_, tape_, vars, t);
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
            const auto value_loss = ad::mean(ad::square(ad::sub(e.value, tape_.constant(returns))));
            return ad::sub(ad::add(policy_loss, value_loss * static_cast<Scalar>(options_.value_coef)),
                           ad::mean(e.entropy) * static_cast<Scalar>(options_.entropy_coef));
          });
        }
      }
    }
    return last;
  }

  PolicyT policy_;
  TrainerOptions options_;
  optim::Adam<Scalar> adam_;
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
