// The meta-training loop of MAML for RL: per iteration, sample a meta-batch of tasks; for each, collect
// support trajectories with the meta-policy, adapt a clone with a policy-gradient step (advantages
// from the linear feature baseline), and with inner_steps > 1 collect fresh support trajectories
// with the policy adapted so far before each further step (both outer steps alike); collect query
// trajectories with the adapted policy, and differentiate the query loss back to the
// meta-parameters; then one outer step, Adam or TRPO.
#pragma once

#include <algorithm>
#include <optional>
#include <random>
#include <vector>

#include "ssmrl/env/env_batch.hpp"
#include "ssmrl/env/tasks.hpp"
#include "ssmrl/meta/maml.hpp"
#include "ssmrl/optim/adam.hpp"
#include "ssmrl/optim/trpo.hpp"
#include "ssmrl/rl/advantages.hpp"
#include "ssmrl/rl/linear_baseline.hpp"
#include "ssmrl/rl/losses.hpp"
#include "ssmrl/rl/rollout.hpp"

namespace ssmrl::meta {

//! What the TRPO outer step's Fisher products differentiate.
enum class TrpoFisher {
  //! The KL of the adapted policies as a function of the meta-parameters, through the inner
  //! adaptation (third-order derivatives; exact; as pytorch-maml-rl does).
  through_adaptation,
  //! The KL's Hessian at the adapted parameters, with the adaptation's Jacobian taken as the identity
  //! (second order; several times cheaper). The line search still checks the exact KL.
  at_adapted,
};

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
  bool trpo = false;          //!< outer step by TRPO (the MAML paper's choice) instead of Adam
  double max_kl = 0.01;       //!< TRPO's limit on the mean KL of the adapted policies
  TrpoFisher fisher = TrpoFisher::at_adapted;
  //! Ablation: compute the outer step (the whole second-order backward, TRPO's search included) but
  //! do not apply it: the control run of the tests, at the same cost.
  bool zero_meta_gradient = false;
  unsigned threads = 1;       //!< threads of the TRPO step (the tasks are shared among them)
  std::uint64_t seed = 1;
};

//! Mean undiscounted return per trajectory (its first episode) before and after adaptation, over the meta-batch.
struct IterationStats {
  long iteration = 0;
  double pre_adaptation_return = 0;
  double post_adaptation_return = 0;
  optim::TrpoResult trpo{};  //!< with the TRPO outer step
  //! The meta-parameters changed: false under zero_meta_gradient, when TRPO's line search rejected
  //! its step, and when Adam's meta-gradient was not finite (the parameters are then left as they were).
  bool outer_step_applied = false;
};

template <policy::MetaPolicy PolicyT, env::TaskDistribution Tasks>
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
        batch_(static_cast<std::size_t>(options.trajectories), prototype, options.seed + 1),
        workspaces_(std::max(1u, options.threads)) {
    SSMRL_REQUIRE(options.meta_batch > 0 && options.trajectories > 0 && options.horizon > 0 && options.inner_steps >= 0,
                  "meta::MetaTrainer: meta_batch ", options.meta_batch, ", trajectories ", options.trajectories,
                  ", horizon ", options.horizon, " must be positive and inner_steps ", options.inner_steps,
                  " not negative");
  }

  [[nodiscard]] const PolicyT& policy() const { return policy_; }
  [[nodiscard]] PolicyT& policy() { return policy_; }

  //! One meta-iteration. Its randomness (tasks, actions, resets) is derived from the seed and the
  //! iteration's index alone, so a run resumed at iteration n from saved parameters continues exactly
  //! as the uninterrupted run would have (with TRPO; Adam's moments are not part of a checkpoint).
  IterationStats iteration() {
    rng_.seed(env::derive_seed(options_.seed, static_cast<std::uint64_t>(2 * iteration_)));
    batch_.reseed(env::derive_seed(options_.seed, static_cast<std::uint64_t>(2 * iteration_ + 1)));
    auto stats = options_.trpo ? trpo_iteration() : adam_iteration();
    stats.iteration = iteration_++;
    return stats;
  }
  //! The index of the next iteration.
  [[nodiscard]] long iterations_done() const noexcept { return iteration_; }
  void set_iterations_done(long n) {
    SSMRL_REQUIRE(n >= 0, "meta::MetaTrainer::set_iterations_done: n ", n, " must not be negative");
    iteration_ = n;
  }
  [[nodiscard]] const MetaTrainerOptions& options() const noexcept { return options_; }
  [[nodiscard]] const Tasks& tasks() const noexcept { return tasks_; }

  //! Mean return per trajectory on `task` before adaptation and after each of `steps` policy-gradient
  //! steps (the step size halved after the first, as in the MAML paper's evaluation).
  std::vector<double> adaptation_curve(const typename Tasks::task_type& task, int steps) {
    std::vector<double> curve;
    PolicyT acting = policy_;
    auto data = rollout(acting, task);
    curve.push_back(mean_return(data));
    auto params = policy_.params();
    for (int k = 0; k < steps; ++k) {
      tape_.clear();
      const auto vars = nn::on_tape(tape_, params);
      tape_.backward(loss(vars, data));
      const auto lr = static_cast<Scalar>(k == 0 ? options_.inner_lr : options_.inner_lr / 2);
      auto values = nn::to_list<ad::Matrix<Scalar>>(params);
      const auto grads = nn::to_list<ad::Matrix<Scalar>>(nn::gradients_of<Scalar>(vars));
      for (std::size_t i = 0; i < values.size(); ++i) values[i] -= lr * grads[i];
      params = nn::from_list(params, values);
      acting.set_params(params);
      data = rollout(acting, task);
      curve.push_back(mean_return(data));
    }
    return curve;
  }

private:
  // What TRPO replays: the data of one task, and what the adapted policy did on its query data.
  struct TaskData {
    std::vector<rl::TrajectoryBatch<Scalar>> supports;  //!< one per inner step (at least one)
    std::vector<ad::Matrix<Scalar>> support_advantages;
    rl::TrajectoryBatch<Scalar> query;
    ad::Matrix<Scalar> query_advantages;
    ad::Matrix<Scalar> old_distribution;
    std::vector<ad::Matrix<Scalar>> adaptation_shift;  //!< adapted minus meta-parameters
  };

  IterationStats trpo_iteration() {
    IterationStats stats;
    std::vector<TaskData> data;
    learner_.params() = policy_.params();
    for (int task_index = 0; task_index < options_.meta_batch; ++task_index) {
      const auto task = tasks_.sample(rng_);
      TaskData d;
      PolicyT acting = policy_;
      d.supports.push_back(rollout(acting, task));
      stats.pre_adaptation_return += mean_return(d.supports[0]);
      d.support_advantages.push_back(advantages(d.supports[0]));
      tape_.clear();
      const auto meta_vars = learner_.meta_variables(tape_);
      auto clone = learner_.clone({meta_vars.params, std::nullopt});
      for (int k = 0; k < options_.inner_steps; ++k) {
        if (k > 0) {  // fresh support trajectories of the policy adapted so far
          acting.set_params(nn::values_of<Scalar>(clone.params()));
          d.supports.push_back(rollout(acting, task));
          d.support_advantages.push_back(advantages(d.supports.back()));
        }
        inner_step(tape_, clone, d, k);
      }
      const auto adapted = nn::values_of<Scalar>(clone.params());
      d.adaptation_shift = nn::to_list<ad::Matrix<Scalar>>(adapted);
      const auto meta_values = nn::to_list<ad::Matrix<Scalar>>(learner_.params());
      for (std::size_t i = 0; i < meta_values.size(); ++i) d.adaptation_shift[i] -= meta_values[i];
      acting.set_params(adapted);
      d.query = rollout(acting, task);
      stats.post_adaptation_return += mean_return(d.query);
      d.query_advantages = advantages(d.query);
      d.old_distribution = policy_.distribution(clone.params(), tape_.constant(d.query.observations), d.query.envs,
                                                {.initial_state = tape_.constant(d.query.initial_state),
                                                 .keep = d.query.keep.data()})
                               .value();
      data.push_back(std::move(d));
    }
    stats.pre_adaptation_return /= options_.meta_batch;
    stats.post_adaptation_return /= options_.meta_batch;
    const auto scale = static_cast<Scalar>(1.0 / options_.meta_batch);
    using VarParams = typename PolicyT::VarParams;
    // Task i's term of the surrogate: importance-weighted query advantages of the policy adapted from `vars`.
    auto surrogate = [&](ad::Tape<Scalar>& tape, const VarParams& vars, std::size_t i) {
      const auto& d = data[i];
      auto clone = adapted_clone(vars, d, options_.inner_steps, &tape);
      const auto lp = evaluate(tape, clone.params(), d.query).log_prob;
      const auto ratio = ad::exp(ad::sub(lp, tape.constant(d.query.log_probs)));
      return -ad::mean(ad::mul(ratio, tape.constant(d.query_advantages))) * scale;
    };
    auto kl_of = [&](ad::Tape<Scalar>& tape, const TaskData& d, const VarParams& adapted) {
      const auto dist = policy_.distribution(adapted, tape.constant(d.query.observations), d.query.envs,
                                             {.initial_state = tape.constant(d.query.initial_state),
                                              .keep = d.query.keep.data()});
      return policy_.mean_kl(tape.constant(d.old_distribution), dist) * scale;
    };
    auto kl = [&](ad::Tape<Scalar>& tape, const VarParams& vars, std::size_t i) {
      return kl_of(tape, data[i], adapted_clone(vars, data[i], options_.inner_steps, &tape).params());
    };
    // The adapted parameters as the meta-parameters plus a constant shift: the exact adapted values,
    // with the adaptation's Jacobian replaced by the identity.
    auto kl_at_adapted = [&](ad::Tape<Scalar>& tape, const VarParams& vars, std::size_t i) {
      const auto list = nn::to_list<ad::Var<Scalar>>(vars);
      std::vector<ad::Var<Scalar>> shifted;
      for (std::size_t k = 0; k < list.size(); ++k) {
        shifted.push_back(ad::add(list[k], tape.constant(data[i].adaptation_shift[k])));
      }
      return kl_of(tape, data[i], nn::from_list(vars, shifted));
    };
    auto params = policy_.params();
    const optim::TrpoOptions trpo_options{.max_kl = options_.max_kl};
    const std::span<ad::Tape<Scalar>> tapes(workspaces_);
    stats.trpo = options_.fisher == TrpoFisher::through_adaptation
                     ? optim::trpo_step_parts<Scalar>(params, data.size(), surrogate, kl, kl, trpo_options, tapes)
                     : optim::trpo_step_parts<Scalar>(params, data.size(), surrogate, kl, kl_at_adapted, trpo_options, tapes);
    stats.outer_step_applied = stats.trpo.accepted && !options_.zero_meta_gradient;
    if (stats.outer_step_applied) policy_.set_params(std::move(params));
    return stats;
  }

  // A clone of `vars` adapted on the task's support data (recorded on the tape of `vars`).
  typename MamlLearner<Scalar, typename PolicyT::Params>::Clone adapted_clone(const typename PolicyT::VarParams& vars,
                                                                               const TaskData& d, int steps,
                                                                               ad::Tape<Scalar>* tape = nullptr) {
    auto& t = tape != nullptr ? *tape : tape_;
    auto clone = learner_.clone({vars, std::nullopt});
    for (int k = 0; k < steps; ++k) inner_step(t, clone, d, k);
    return clone;
  }

  // Inner step k of a clone, on the task's k-th support batch.
  template <class Clone>
  void inner_step(ad::Tape<Scalar>& tape, Clone& clone, const TaskData& d, int k) {
    const auto i = static_cast<std::size_t>(k);
    const auto lp = evaluate(tape, clone.params(), d.supports[i]).log_prob;
    clone.adapt(rl::policy_gradient_loss(lp, tape.constant(d.support_advantages[i])));
  }

  auto evaluate(ad::Tape<Scalar>& tape, const typename PolicyT::VarParams& params,
                const rl::TrajectoryBatch<Scalar>& t) const {
    return rl::evaluate(policy_, tape, params, t);
  }

  // Normalised GAE advantages with the linear feature baseline fitted on these trajectories.
  ad::Matrix<Scalar> advantages(const rl::TrajectoryBatch<Scalar>& t) const {
    rl::LinearFeatureBaseline<Scalar> baseline;
    baseline.fit(t, options_.gamma);
    const ad::Matrix<Scalar> values = baseline.predict(t);
    const ad::Matrix<Scalar> no_values = ad::Matrix<Scalar>::Zero(1, t.envs);
    auto without_bootstrap = t;
    without_bootstrap.bootstrap.setZero();
    return rl::normalized(rl::gae(without_bootstrap, values, no_values, options_.gamma, options_.gae_lambda).advantages);
  }

  IterationStats adam_iteration() {
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
      // The same draws as the TRPO path: a first support batch always (the pre-adaptation return),
      // a fresh one before each further inner step.
      for (int k = 0; k < std::max(1, options_.inner_steps); ++k) {
        const auto support = rollout(acting, task);
        if (k == 0) stats.pre_adaptation_return += mean_return(support);
        if (k == options_.inner_steps) break;  // inner_steps == 0
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
    bool finite = true;
    for (auto& g : meta_gradient) {
      g /= static_cast<Scalar>(options_.meta_batch);
      finite = finite && g.allFinite();
    }
    // A non-finite meta-gradient (a diverged task) leaves the parameters and Adam's moments as they were.
    stats.outer_step_applied = finite && !options_.zero_meta_gradient;
    if (stats.outer_step_applied) {
      auto values = nn::to_list<ad::Matrix<Scalar>>(policy_.params());
      adam_.step(std::span<ad::Matrix<Scalar>>(values), std::span<const ad::Matrix<Scalar>>(meta_gradient));
      policy_.set_params(nn::from_list(policy_.params(), values));
    }
    return stats;
  }

  rl::TrajectoryBatch<Scalar> rollout(PolicyT& acting, const typename Tasks::task_type& task) {
    for (std::size_t i = 0; i < batch_.size(); ++i) Tasks::apply(batch_.env(i), task);
    batch_.reset();
    acting.set_num_envs(options_.trajectories);
    acting.reset_all();
    return rl::collect(acting, batch_, options_.horizon, policy::ActMode::sample, rng_);
  }

  // Mean over the trajectories of their first episode's return.
  static double mean_return(const rl::TrajectoryBatch<Scalar>& t) {
    const auto returns = rl::first_episode_returns(t);
    double sum = 0;
    for (const double r : returns) sum += r;
    return sum / static_cast<double>(returns.size());
  }

  // REINFORCE with the linear feature baseline's advantages.
  ad::Var<Scalar> loss(const typename PolicyT::VarParams& params, const rl::TrajectoryBatch<Scalar>& t) {
    return rl::policy_gradient_loss(evaluate(tape_, params, t).log_prob, tape_.constant(advantages(t)));
  }

  PolicyT policy_;
  Tasks tasks_;
  MetaTrainerOptions options_;
  MamlLearner<Scalar, typename PolicyT::Params> learner_;
  optim::Adam<Scalar> adam_;
  std::mt19937_64 rng_;
  env::EnvBatch<Env> batch_;
  ad::Tape<Scalar> tape_;
  std::vector<ad::Tape<Scalar>> workspaces_;  //!< one per thread of the TRPO step
  long iteration_ = 0;
};

}  // namespace ssmrl::meta
