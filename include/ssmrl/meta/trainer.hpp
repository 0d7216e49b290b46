// The meta-training loop of MAML for RL: per iteration, sample a meta-batch of tasks; for each, collect
// support trajectories with the meta-policy, adapt a clone with a policy-gradient step (advantages
// from the linear feature baseline), collect query trajectories with the adapted policy, and
// differentiate the query loss back to the meta-parameters; then one outer Adam step.
#pragma once

#include <random>
#include <vector>

#include "ssmrl/env/env_batch.hpp"
#include "ssmrl/env/tasks.hpp"
#include "ssmrl/meta/maml.hpp"
#include "ssmrl/optim/adam.hpp"
#include "ssmrl/rl/advantages.hpp"
#include "ssmrl/rl/linear_baseline.hpp"
#include "ssmrl/rl/losses.hpp"
#include "ssmrl/rl/rollout.hpp"

namespace ssmrl::meta {

struct MetaTrainerOptions {
  int meta_batch = 20;        //!< tasks per iteration
  int trajectories = 20;      //!< environments (trajectories) per task and phase
  int horizon = 100;          //!< steps per rollout
  double gamma = 0.99;
  double gae_lambda = 1.0;
  double inner_lr = 0.1;
  int inner_steps = 1;
  bool first_order = false;
  double outer_lr = 1e-3;     //!< Adam
  bool zero_meta_gradient = false;  //!< ablation: skip the outer update (the test's control run)
  std::uint64_t seed = 1;
};

//! Mean undiscounted return per trajectory before and after adaptation, over the meta-batch.
struct IterationStats {
  double pre_adaptation_return = 0;
  double post_adaptation_return = 0;
};

template <class PolicyT, env::TaskDistribution Tasks>
class MetaTrainer {
public:
  using Scalar = typename PolicyT::scalar_type;
  using Env = typename Tasks::env_type;

  MetaTrainer(PolicyT policy, Tasks tasks, MetaTrainerOptions options, Env prototype = Env{})
      : policy_(std::move(policy)),
        tasks_(std::move(tasks)),
        options_(options),
        learner_(policy_.params(), {.inner_lr = options.inner_lr, .first_order = options.first_order}),
        adam_({.lr = options.outer_lr}),
        rng_(options.seed),
        batch_(static_cast<std::size_t>(options.trajectories), prototype, options.seed + 1) {
    SSMRL_REQUIRE(options.meta_batch > 0 && options.trajectories > 0 && options.horizon > 0 && options.inner_steps >= 0,
                  "meta::MetaTrainer: meta_batch ", options.meta_batch, ", trajectories ", options.trajectories,
                  ", horizon ", options.horizon, " must be positive and inner_steps ", options.inner_steps,
                  " not negative");
  }

  [[nodiscard]] const PolicyT& policy() const { return policy_; }
  [[nodiscard]] PolicyT& policy() { return policy_; }

  IterationStats iteration() {
    IterationStats stats;
    std::vector<ad::Matrix<Scalar>> meta_gradient;
    learner_.params() = policy_.params();
    tape_.clear();
    const auto meta_vars = learner_.meta_variables(tape_);
    for (int task_index = 0; task_index < options_.meta_batch; ++task_index) {
      const auto task = tasks_.sample(rng_);
      typename ad::Tape<Scalar>::Scope scope(tape_);
      auto clone = learner_.clone(meta_vars);
      PolicyT acting = policy_;
      for (int k = 0; k < options_.inner_steps; ++k) {
        const auto support = rollout(acting, task);
        if (k == 0) stats.pre_adaptation_return += mean_return(support);
        clone.adapt(loss(clone.params(), support));
        acting.set_params(nn::values_of<Scalar>(clone.params()));
      }
      const auto query = rollout(acting, task);
      stats.post_adaptation_return += mean_return(query);
      tape_.backward(loss(clone.params(), query));
      const auto g = nn::to_list<ad::Matrix<Scalar>>(learner_.meta_gradient(meta_vars).params);
      if (meta_gradient.empty()) meta_gradient = g;
      else for (std::size_t i = 0; i < g.size(); ++i) meta_gradient[i] += g[i];
    }
    stats.pre_adaptation_return /= options_.meta_batch;
    stats.post_adaptation_return /= options_.meta_batch;
    if (!options_.zero_meta_gradient) {
      for (auto& g : meta_gradient) g /= static_cast<Scalar>(options_.meta_batch);
      auto values = nn::to_list<ad::Matrix<Scalar>>(policy_.params());
      adam_.step(std::span<ad::Matrix<Scalar>>(values), std::span<const ad::Matrix<Scalar>>(meta_gradient));
      policy_.set_params(nn::from_list(policy_.params(), values));
    }
    return stats;
  }

private:
  rl::TrajectoryBatch<Scalar> rollout(PolicyT& acting, const typename Tasks::task_type& task) {
    for (std::size_t i = 0; i < batch_.size(); ++i) Tasks::apply(batch_.env(i), task);
    batch_.reset();
    acting.set_num_envs(options_.trajectories);
    acting.reset_all();
    return rl::collect(acting, batch_, options_.horizon, policy::ActMode::sample, rng_);
  }

  static double mean_return(const rl::TrajectoryBatch<Scalar>& t) {
    return static_cast<double>(t.rewards.sum()) / static_cast<double>(t.envs);
  }

  // REINFORCE with the linear feature baseline fitted on these trajectories, advantages normalised.
  ad::Var<Scalar> loss(const typename PolicyT::VarParams& params, const rl::TrajectoryBatch<Scalar>& t) {
    rl::LinearFeatureBaseline<Scalar> baseline;
    baseline.fit(t, options_.gamma);
    const ad::Matrix<Scalar> values = baseline.predict(t);
    const ad::Matrix<Scalar> no_values = ad::Matrix<Scalar>::Zero(1, t.envs);
    auto without_bootstrap = t;
    without_bootstrap.bootstrap.setZero();
    const auto adv = rl::normalized(rl::gae(without_bootstrap, values, no_values, options_.gamma, options_.gae_lambda).advantages);
    const auto e = policy_.evaluate(params, tape_.constant(t.observations), t.envs, t.actions,
                                    {.initial_state = tape_.constant(t.initial_state), .keep = t.keep.data()});
    return rl::policy_gradient_loss(e.log_prob, tape_.constant(adv));
  }

  PolicyT policy_;
  Tasks tasks_;
  MetaTrainerOptions options_;
  MamlLearner<Scalar, typename PolicyT::Params> learner_;
  optim::Adam<Scalar> adam_;
  std::mt19937_64 rng_;
  env::EnvBatch<Env> batch_;
  ad::Tape<Scalar> tape_;
};

}  // namespace ssmrl::meta
