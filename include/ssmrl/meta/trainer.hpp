// The meta-training loop of MAML for RL: per iteration, sample a meta-batch of tasks; for each, collect
// support trajectories with the meta-policy, adapt a clone with an inner step (by default REINFORCE
// with advantages from the linear feature baseline, a fixed rate), and with inner_steps > 1 collect
// fresh support trajectories with the policy adapted so far before each further step (both outer
// steps alike); collect query trajectories with the adapted policy, and differentiate the query loss
// back to the meta-parameters; then one outer step, a gradient step (Adam, AdamW or SGD) or TRPO.
// The parts are the Algorithm's (meta::Maml in meta/algorithm.hpp). Every task of an iteration draws
// its randomness from (seed, iteration, task index) alone, so the tasks are shared among threads, and
// among the ranks of a communicator (dist/communicator.hpp), without changing the result.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <limits>
#include <memory>
#include <optional>
#include <type_traits>
#include <random>
#include <vector>

#include "ssmrl/control/knobs.hpp"
#include "ssmrl/control/telemetry.hpp"
#include "ssmrl/dist/communicator.hpp"
#include "ssmrl/env/env_batch.hpp"
#include "ssmrl/env/tasks.hpp"
#include "ssmrl/meta/algorithm.hpp"
#include "ssmrl/meta/maml.hpp"
#include "ssmrl/optim/any_optimizer.hpp"
#include "ssmrl/optim/trpo.hpp"
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
  double outer_lr = 1e-3;     //!< the outer optimiser's (without TRPO)
  optim::OptimizerKind outer_optimizer = optim::OptimizerKind::adam;
  double outer_weight_decay = 0.0;
  double outer_momentum = 0.9;  //!< SGD's
  bool trpo = false;          //!< with OuterStepFromOptions: TRPO (the MAML paper's choice) instead of outer_optimizer
  double max_kl = 0.01;       //!< TRPO's limit on the mean KL of the adapted policies
  TrpoFisher fisher = TrpoFisher::at_adapted;
  //! Ablation: compute the outer step (the whole second-order backward, TRPO's search included) but
  //! do not apply it: the control run of the tests, at the same cost.
  bool zero_meta_gradient = false;
  unsigned threads = 1;       //!< threads sharing the tasks (collection, inner steps, the outer step)
  std::uint64_t seed = 1;
};

//! The adaptation curves of the held-out tasks: curves[task][run] holds the mean return before
//! adaptation and after each step; mean[k] averages step k over tasks and runs.
struct HeldOutEvaluation {
  std::vector<std::vector<std::vector<double>>> curves;
  std::vector<double> mean;
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
  //! Per task of the meta-batch, in order: its pre- and post-adaptation returns.
  std::vector<double> task_pre_adaptation_returns;
  std::vector<double> task_post_adaptation_returns;
  double post_adaptation_std = 0;  //!< spread of the post-adaptation returns over the tasks
  double entropy = 0;              //!< mean entropy of the adapted policies on their query data
  double episode_length = std::numeric_limits<double>::quiet_NaN();  //!< of the query episodes that ended
  double grad_norm = 0;            //!< of the meta-gradient (TRPO: of its surrogate's gradient)
  double kl = std::numeric_limits<double>::quiet_NaN();  //!< TRPO: mean KL of the accepted step
  double inner_lr = 0;             //!< in effect (Meta-SGD: the mean learned rate)
  double outer_lr = std::numeric_limits<double>::quiet_NaN();  //!< Adam's, where Adam steps
  double seconds = 0;

  //! The named values a controller reads (control::Telemetry), in a fixed order.
  [[nodiscard]] control::Telemetry telemetry() const {
    control::Telemetry t;
    t.add("return_mean", post_adaptation_return);
    t.add("return_std", post_adaptation_std);
    t.add("pre_adaptation_return", pre_adaptation_return);
    t.add("post_adaptation_return", post_adaptation_return);
    t.add("episode_length", episode_length);
    t.add("entropy", entropy);
    t.add("kl", kl);
    t.add("grad_norm", grad_norm);
    t.add("outer_step_applied", outer_step_applied ? 1.0 : 0.0);
    t.add("inner_lr", inner_lr);
    t.add("outer_lr", outer_lr);
    t.add("seconds", seconds);
    return t;
  }
};

//! With a communicator `Comm` of several ranks (dist::MpiCommunicator, say), every rank constructs the
//! same trainer; each collects and adapts its share of the meta-batch's tasks (dist::share), and each
//! task's contributions (meta-gradient, Fisher products, surrogate and KL, statistics) are gathered
//! and summed in task order, so every rank steps to the parameters one process would have.
template <policy::MetaPolicy PolicyT, env::TaskDistribution Tasks, class Algorithm = Maml<>,
          dist::Communicator Comm = dist::SingleProcess>
class MetaTrainer {
public:
  using Scalar = typename PolicyT::scalar_type;
  using Env = typename Tasks::env_type;
  using Task = typename Tasks::task_type;
  using Params = typename PolicyT::Params;
  using VarParams = typename PolicyT::VarParams;
  using Outer = typename Algorithm::outer_step;
  static constexpr bool learned_rates = Algorithm::inner_rule::learned;
  static_assert(std::is_same_v<Outer, AdamOuterStep> || std::is_same_v<Outer, TrpoOuterStep> ||
                    std::is_same_v<Outer, OuterStepFromOptions>,
                "meta::MetaTrainer: the outer step is AdamOuterStep, TrpoOuterStep or OuterStepFromOptions");
  static_assert(!(learned_rates && std::is_same_v<Outer, TrpoOuterStep>),
                "meta::MetaTrainer: Meta-SGD's learned rates (LearnedInnerRates) need the Adam outer step");
  static_assert(AdvantageEstimator<decltype(Algorithm::advantages), Scalar>,
                "meta::MetaTrainer: Algorithm::advantages is not an AdvantageEstimator");
  static_assert(InnerLoss<decltype(Algorithm::loss),
                          decltype(rl::evaluate(std::declval<const PolicyT&>(), std::declval<ad::Tape<Scalar>&>(),
                                                std::declval<const VarParams&>(),
                                                std::declval<const rl::TrajectoryBatch<Scalar>&>())),
                          Scalar>,
                "meta::MetaTrainer: Algorithm::loss is not an InnerLoss of this policy's evaluation");

  MetaTrainer(PolicyT policy, Tasks tasks, MetaTrainerOptions options, Env prototype = Env{}, Algorithm algorithm = {},
              Comm comm = {})
      : policy_(std::move(policy)),
        tasks_(std::move(tasks)),
        options_(options),
        algorithm_(std::move(algorithm)),
        learner_(policy_.params(),
                 {.inner_lr = options.inner_lr, .first_order = options.first_order, .learn_inner_lr = learned_rates}),
        outer_optimizer_(optim::OptimizerChoice{.kind = options.outer_optimizer,
                                                .lr = options.outer_lr,
                                                .weight_decay = options.outer_weight_decay,
                                                .momentum = options.outer_momentum}),
        tapes_(static_cast<std::size_t>(std::max(1, options.meta_batch))),
        comm_(std::move(comm)) {
    SSMRL_REQUIRE(options.outer_weight_decay >= 0 && options.outer_momentum >= 0,
                  "meta::MetaTrainer: outer_weight_decay ", options.outer_weight_decay, " and outer_momentum ",
                  options.outer_momentum, " must not be negative");
    SSMRL_REQUIRE(options.meta_batch > 0 && options.trajectories > 0 && options.horizon > 0 && options.inner_steps >= 0,
                  "meta::MetaTrainer: meta_batch ", options.meta_batch, ", trajectories ", options.trajectories,
                  ", horizon ", options.horizon, " must be positive and inner_steps ", options.inner_steps,
                  " not negative");
    SSMRL_REQUIRE(comm_.size() <= options.meta_batch, "meta::MetaTrainer: ", comm_.size(), " ranks share a ",
                  "meta-batch of ", options.meta_batch, " tasks; each rank needs one task at least");
    SSMRL_REQUIRE(!(learned_rates && uses_trpo()), "meta::MetaTrainer: options.trpo is set, but Meta-SGD's learned "
                  "rates (LearnedInnerRates) need the Adam outer step");
    for (unsigned w = 0; w < std::max(1u, options.threads); ++w) {
      batches_.push_back(std::make_unique<env::EnvBatch<Env>>(static_cast<std::size_t>(options.trajectories), prototype,
                                                             options.seed + 1));
    }
  }

  [[nodiscard]] const PolicyT& policy() const { return policy_; }
  [[nodiscard]] PolicyT& policy() { return policy_; }
  //! Meta-SGD's learned rates (LearnedInnerRates), one per parameter entry; empty otherwise.
  [[nodiscard]] const std::optional<Params>& inner_lrs() const { return learner_.inner_lrs(); }
  //! Sets the learned rates (a resumed run); each must have its parameter's shape.
  void set_inner_lrs(Params rates) {
    SSMRL_REQUIRE(learned_rates, "meta::MetaTrainer::set_inner_lrs: this trainer's inner rule has no learned rates");
    const auto have = nn::to_list<ad::Matrix<Scalar>>(policy_.params());
    const auto given = nn::to_list<ad::Matrix<Scalar>>(rates);
    for (std::size_t i = 0; i < have.size(); ++i) {
      SSMRL_REQUIRE(have[i].rows() == given[i].rows() && have[i].cols() == given[i].cols() && given[i].allFinite(),
                    "meta::MetaTrainer::set_inner_lrs: rate ", i, " is ", given[i].rows(), "x", given[i].cols(),
                    given[i].allFinite() ? "" : " (not finite)", ", its parameter ", have[i].rows(), "x",
                    have[i].cols());
    }
    learner_.inner_lrs() = std::move(rates);
  }
  [[nodiscard]] const Algorithm& algorithm() const noexcept { return algorithm_; }
  [[nodiscard]] const Comm& communicator() const noexcept { return comm_; }

  //! The options a controller or a person may change between iterations: the inner step (its rate
  //! unless Meta-SGD learns it, its count, its order), the outer step's rate (Adam) or KL limit and
  //! Fisher (TRPO), the discount and GAE's lambda. Defaults: the options given at construction.
  [[nodiscard]] control::KnobSchema knob_schema() const { return knob_schema(configured_); }
  //! The knobs of a trainer constructed with `o`.
  [[nodiscard]] static control::KnobSchema knob_schema(const MetaTrainerOptions& o) {
    std::vector<control::Knob> k;
    if constexpr (!learned_rates) {
      k.push_back(control::real_knob("inner_lr", o.inner_lr, 1e-4, 10.0, true, "the inner step size"));
    }
    k.push_back(control::integer_knob("inner_steps", o.inner_steps, 0, 10, "inner steps per task"));
    k.push_back(control::boolean_knob("first_order", o.first_order, "first-order MAML (no second derivatives)"));
    const bool trpo = std::is_same_v<Outer, TrpoOuterStep> || (std::is_same_v<Outer, OuterStepFromOptions> && o.trpo);
    if (trpo) {
      k.push_back(control::real_knob("max_kl", o.max_kl, 1e-5, 1.0, true, "TRPO's limit on the mean KL"));
      k.push_back(
          control::choice_knob("fisher", o.fisher == TrpoFisher::at_adapted ? "at_adapted" : "through_adaptation",
                               {"at_adapted", "through_adaptation"}, "what TRPO's Fisher products differentiate"));
    } else {
      k.push_back(control::real_knob("outer_lr", o.outer_lr, 1e-7, 1.0, true, "the outer optimiser's learning rate"));
      k.push_back(control::real_knob("outer_weight_decay", o.outer_weight_decay, 0.0, 1e-1, false,
                                     "the outer optimiser's weight decay"));
    }
    auto gamma = control::real_knob("gamma", o.gamma, 0.8, 0.9999, false, "discount factor");
    gamma.step = 0.005;
    k.push_back(gamma);
    k.push_back(control::real_knob("gae_lambda", o.gae_lambda, 0.0, 1.0, false, "GAE's lambda"));
    return control::KnobSchema(std::move(k));
  }
  //! The knobs' values now, in knob_schema()'s order.
  [[nodiscard]] std::vector<control::KnobValue> knob_values() const {
    std::vector<control::KnobValue> out;
    const auto schema = knob_schema();
    for (const auto& k : schema.knobs()) out.push_back(knob_value(k.name));
    return out;
  }
  //! Sets every knob (knob_schema()'s order) from the next iteration on, after checking them all.
  void set_knob_values(const std::vector<control::KnobValue>& values) {
    const auto schema = knob_schema();
    schema.check_values(values, "meta::MetaTrainer::set_knob_values");
    for (std::size_t i = 0; i < values.size(); ++i) set_knob(schema[i].name, values[i]);
  }
  //! The outer step's optimiser (unused with TRPO), whose state a population copies.
  [[nodiscard]] const optim::AnyOptimizer<Scalar>& optimizer() const noexcept { return outer_optimizer_; }
  [[nodiscard]] optim::AnyOptimizer<Scalar>& optimizer() noexcept { return outer_optimizer_; }

  //! One meta-iteration. Its randomness (tasks, actions, resets) is derived from the seed, the
  //! iteration's index and each task's index alone, so a run resumed at iteration n from saved
  //! parameters continues exactly as the uninterrupted run would have (with TRPO; Adam's moments are
  //! not part of a checkpoint), whatever the number of threads.
  IterationStats iteration() {
    const auto started = std::chrono::steady_clock::now();
    IterationStats stats;
    if constexpr (std::is_same_v<Outer, AdamOuterStep>) stats = adam_iteration();
    else if constexpr (std::is_same_v<Outer, TrpoOuterStep>) stats = trpo_iteration();
    else stats = options_.trpo ? trpo_iteration() : adam_iteration();
    stats.iteration = iteration_++;
    double squares = 0;
    for (const double r : stats.task_post_adaptation_returns) {
      squares += (r - stats.post_adaptation_return) * (r - stats.post_adaptation_return);
    }
    stats.post_adaptation_std = std::sqrt(squares / static_cast<double>(options_.meta_batch));
    if constexpr (learned_rates) {
      double sum = 0;
      double count = 0;
      for (const auto& m : nn::to_list<ad::Matrix<Scalar>>(*learner_.inner_lrs())) {
        sum += static_cast<double>(m.template cast<double>().sum());
        count += static_cast<double>(m.size());
      }
      stats.inner_lr = sum / count;
    } else {
      stats.inner_lr = options_.inner_lr;
    }
    if (!uses_trpo()) stats.outer_lr = options_.outer_lr;
    // The slowest rank's time: the same on every rank, as everything a controller reads must be.
    stats.seconds = dist::max_over_ranks(
        comm_, std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
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

  //! Mean return per trajectory on `task` before adaptation and after each of `steps` inner steps
  //! (the step size halved after the first, as in the MAML paper's evaluation), drawing from `seed`
  //! alone (not from training's randomness).
  std::vector<double> adaptation_curve(const Task& task, int steps, std::uint64_t seed) {
    SSMRL_REQUIRE(steps >= 0, "meta::MetaTrainer::adaptation_curve: steps ", steps, " must not be negative");
    std::mt19937_64 rng(env::derive_seed(seed, 0));
    auto& batch = *batches_[0];
    batch.reseed(env::derive_seed(seed, 1));
    std::vector<double> curve;
    PolicyT acting = policy_;
    auto data = rollout(acting, batch, task, rng);
    curve.push_back(mean_return(data));
    auto params = policy_.params();
    std::vector<ad::Matrix<Scalar>> rates;
    if constexpr (learned_rates) rates = nn::to_list<ad::Matrix<Scalar>>(*learner_.inner_lrs());
    auto& tape = tapes_[0];
    for (int k = 0; k < steps; ++k) {
      typename ad::Tape<Scalar>::Scope scope(tape);
      const auto vars = nn::on_tape(tape, params);
      tape.backward(loss(tape, vars, data));
      const auto factor = static_cast<Scalar>(k == 0 ? 1.0 : 0.5);
      auto values = nn::to_list<ad::Matrix<Scalar>>(params);
      const auto grads = nn::to_list<ad::Matrix<Scalar>>(nn::gradients_of<Scalar>(vars));
      for (std::size_t i = 0; i < values.size(); ++i) {
        if (rates.empty()) values[i] -= static_cast<Scalar>(options_.inner_lr) * factor * grads[i];
        else values[i].array() -= factor * rates[i].array() * grads[i].array();
      }
      params = nn::from_list(params, values);
      acting.set_params(params);
      data = rollout(acting, batch, task, rng);
      curve.push_back(mean_return(data));
    }
    return curve;
  }

  //! The policy's trajectories on `task` (options().trajectories of options().horizon steps,
  //! sampled actions), drawing from `seed` alone, as adaptation_curve() collects them.
  rl::TrajectoryBatch<Scalar> sample_trajectories(const Task& task, std::uint64_t seed) {
    std::mt19937_64 rng(env::derive_seed(seed, 0));
    auto& batch = *batches_[0];
    batch.reseed(env::derive_seed(seed, 1));
    PolicyT acting = policy_;
    return rollout(acting, batch, task, rng);
  }

  //! The adaptation curves of every held-out task, `runs` per task, each run drawing from its own
  //! generator derived from `seed`, the task's index and the run's.
  HeldOutEvaluation held_out_curves(int steps, std::uint64_t seed, int runs = 1) {
    SSMRL_REQUIRE(runs > 0, "meta::MetaTrainer::held_out_curves: runs ", runs, " must be positive");
    HeldOutEvaluation e;
    e.mean.assign(static_cast<std::size_t>(std::max(steps, 0)) + 1, 0.0);
    const auto& tasks = tasks_.held_out();
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      auto& per_task = e.curves.emplace_back();
      for (int r = 0; r < runs; ++r) {
        per_task.push_back(
            adaptation_curve(tasks[i], steps, env::derive_seed(seed, i * static_cast<std::size_t>(runs) + r)));
        for (std::size_t k = 0; k < e.mean.size(); ++k) e.mean[k] += per_task.back()[k];
      }
    }
    for (auto& m : e.mean) m /= static_cast<double>(tasks.size() * static_cast<std::size_t>(runs));
    return e;
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
    double pre_return = 0;
    double post_return = 0;
    double entropy = 0;
    double episode_length = 0;  //!< the sum of the query episodes' lengths
    double episodes = 0;
  };

  [[nodiscard]] bool uses_trpo() const {
    if constexpr (std::is_same_v<Outer, OuterStepFromOptions>) return options_.trpo;
    else return std::is_same_v<Outer, TrpoOuterStep>;
  }

  // What task `index` of an iteration works with: its generator (after drawing the task; then the
  // actions), the task, the worker's environments (reseeded for the task) and the task's own tape,
  // rewound when the context goes.
  struct TaskContext {
    std::mt19937_64 rng;
    Task task;
    env::EnvBatch<Env>& batch;
    ad::Tape<Scalar>& tape;
    typename ad::Tape<Scalar>::Scope scope;
  };

  TaskContext start_task(std::size_t worker, int index) {
    const auto base = env::derive_seed(options_.seed, static_cast<std::uint64_t>(iteration_));
    std::mt19937_64 rng(env::derive_seed(base, 2 * static_cast<std::uint64_t>(index)));
    batches_[worker]->reseed(env::derive_seed(base, 2 * static_cast<std::uint64_t>(index) + 1));
    auto task = tasks_.sample(rng);
    auto& tape = tapes_[static_cast<std::size_t>(index)];
    return TaskContext{std::move(rng), std::move(task), *batches_[worker], tape, typename ad::Tape<Scalar>::Scope(tape)};
  }

  // Runs fn(worker, task index) for this rank's tasks of the meta-batch, shared among the threads.
  template <class Fn>
  void for_each_task(Fn&& fn) {
    const auto mine = dist::share(static_cast<std::size_t>(options_.meta_batch), comm_);
    for_chunks(mine.size(), batches_.size(), [&](std::size_t w, std::size_t begin, std::size_t end) {
      for (std::size_t i = begin; i < end; ++i) fn(w, static_cast<int>(mine.begin + i));
    });
  }

  // After for_each_task: every rank gets every task's returns and measures.
  template <class PerTask>
  void gather_measures(std::vector<PerTask>& tasks) const {
    if (comm_.size() == 1) return;
    constexpr std::size_t fields = 5;
    std::vector<double> all(tasks.size() * fields);
    const auto mine = dist::share(tasks.size(), comm_);
    for (std::size_t i = mine.begin; i < mine.end; ++i) {
      const auto& t = tasks[i];
      std::copy_n(std::array{t.pre_return, t.post_return, t.entropy, t.episode_length, t.episodes}.begin(), fields,
                  all.begin() + static_cast<std::ptrdiff_t>(i * fields));
    }
    dist::allgather_parts(comm_, std::span<double>(all), tasks.size(), fields);
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      auto& t = tasks[i];
      const double* v = all.data() + i * fields;
      t.pre_return = v[0];
      t.post_return = v[1];
      t.entropy = v[2];
      t.episode_length = v[3];
      t.episodes = v[4];
    }
  }

  TaskData trpo_task(std::size_t worker, int index) {
    auto context = start_task(worker, index);
    auto& [rng, task, batch, tape, scope] = context;
    TaskData d;
    PolicyT acting = policy_;
    d.supports.push_back(rollout(acting, batch, task, rng));
    d.pre_return = mean_return(d.supports[0]);
    d.support_advantages.push_back(advantages(d.supports[0]));
    const auto meta_vars = learner_.meta_variables(tape);
    auto clone = learner_.clone({meta_vars.params, std::nullopt});
    for (int k = 0; k < options_.inner_steps; ++k) {
      if (k > 0) {  // fresh support trajectories of the policy adapted so far
        acting.set_params(nn::values_of<Scalar>(clone.params()));
        d.supports.push_back(rollout(acting, batch, task, rng));
        d.support_advantages.push_back(advantages(d.supports.back()));
      }
      inner_step(tape, clone, d, k);
    }
    const auto adapted = nn::values_of<Scalar>(clone.params());
    d.adaptation_shift = nn::to_list<ad::Matrix<Scalar>>(adapted);
    const auto meta_values = nn::to_list<ad::Matrix<Scalar>>(learner_.params());
    for (std::size_t i = 0; i < meta_values.size(); ++i) d.adaptation_shift[i] -= meta_values[i];
    acting.set_params(adapted);
    d.query = rollout(acting, batch, task, rng);
    d.post_return = mean_return(d.query);
    d.query_advantages = advantages(d.query);
    d.old_distribution = policy_.distribution(clone.params(), tape.constant(d.query.observations), d.query.envs,
                                              {.initial_state = tape.constant(d.query.initial_state),
                                               .keep = d.query.keep.data()})
                             .value();
    d.entropy = mean_entropy(tape, clone.params(), d.query);
    add_lengths(d.episode_length, d.episodes, d.query);
    return d;
  }

  IterationStats trpo_iteration() {
    if constexpr (learned_rates) {
      SSMRL_THROW(::ssmrl::InvalidArgument, "meta::MetaTrainer: Meta-SGD's learned rates need the Adam outer step");
    } else {
      IterationStats stats;
      learner_.params() = policy_.params();
      std::vector<TaskData> data(static_cast<std::size_t>(options_.meta_batch));
      for_each_task([&](std::size_t w, int i) { data[static_cast<std::size_t>(i)] = trpo_task(w, i); });
      gather_measures(data);
      for (const auto& d : data) add_task_returns(stats, d.pre_return, d.post_return);
      add_measures(stats, data);
      stats.pre_adaptation_return /= options_.meta_batch;
      stats.post_adaptation_return /= options_.meta_batch;
      const auto scale = static_cast<Scalar>(1.0 / options_.meta_batch);
      // Task i's term of the surrogate: importance-weighted query advantages of the policy adapted from `vars`.
      auto surrogate = [&](ad::Tape<Scalar>& tape, const VarParams& vars, std::size_t i) {
        const auto& d = data[i];
        auto clone = adapted_clone(tape, vars, d);
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
        return kl_of(tape, data[i], adapted_clone(tape, vars, data[i]).params());
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
      const std::span<ad::Tape<Scalar>> tapes(tapes_);
      const unsigned threads = static_cast<unsigned>(batches_.size());
      stats.trpo = options_.fisher == TrpoFisher::through_adaptation
                       ? optim::trpo_step_parts<Scalar>(params, data.size(), surrogate, kl, kl, trpo_options, tapes,
                                                        threads, comm_)
                       : optim::trpo_step_parts<Scalar>(params, data.size(), surrogate, kl, kl_at_adapted, trpo_options,
                                                        tapes, threads, comm_);
      stats.outer_step_applied = stats.trpo.accepted && !options_.zero_meta_gradient;
      stats.grad_norm = stats.trpo.gradient_norm;
      if (stats.trpo.accepted) stats.kl = stats.trpo.kl;
      if (stats.outer_step_applied) policy_.set_params(std::move(params));
      return stats;
    }
  }

  // A clone of `vars` adapted on the task's support data (recorded on `tape`, the tape of `vars`).
  typename MamlLearner<Scalar, Params>::Clone adapted_clone(ad::Tape<Scalar>& tape, const VarParams& vars,
                                                            const TaskData& d) {
    auto clone = learner_.clone({vars, std::nullopt});
    for (int k = 0; k < options_.inner_steps; ++k) inner_step(tape, clone, d, k);
    return clone;
  }

  // Inner step k of a clone, on the task's k-th support batch.
  template <class Clone>
  void inner_step(ad::Tape<Scalar>& tape, Clone& clone, const TaskData& d, int k) {
    const auto i = static_cast<std::size_t>(k);
    clone.adapt(algorithm_.loss(evaluate(tape, clone.params(), d.supports[i]), tape.constant(d.support_advantages[i])));
  }

  auto evaluate(ad::Tape<Scalar>& tape, const VarParams& params, const rl::TrajectoryBatch<Scalar>& t) const {
    return rl::evaluate(policy_, tape, params, t);
  }

  ad::Matrix<Scalar> advantages(const rl::TrajectoryBatch<Scalar>& t) const {
    return algorithm_.advantages(t, options_.gamma, options_.gae_lambda);
  }

  // The inner loss of `t` at `params`, its advantages from `t` itself.
  ad::Var<Scalar> loss(ad::Tape<Scalar>& tape, const VarParams& params, const rl::TrajectoryBatch<Scalar>& t) const {
    return algorithm_.loss(evaluate(tape, params, t), tape.constant(advantages(t)));
  }

  // One task of the Adam path: its returns and its meta-gradient (the parameters', then the rates').
  struct AdamTask {
    double pre_return = 0;
    double post_return = 0;
    std::vector<ad::Matrix<Scalar>> gradient;
    double entropy = 0;
    double episode_length = 0;  //!< the sum of the query episodes' lengths
    double episodes = 0;
  };

  AdamTask adam_task(std::size_t worker, int index) {
    auto context = start_task(worker, index);
    auto& [rng, task, batch, tape, scope] = context;
    const auto meta_vars = learner_.meta_variables(tape);
    auto clone = learner_.clone(meta_vars);
    PolicyT acting = policy_;
    AdamTask out;
    // The same draws as the TRPO path: a first support batch always (the pre-adaptation return),
    // a fresh one before each further inner step.
    for (int k = 0; k < std::max(1, options_.inner_steps); ++k) {
      const auto support = rollout(acting, batch, task, rng);
      if (k == 0) out.pre_return = mean_return(support);
      if (k == options_.inner_steps) break;  // inner_steps == 0
      clone.adapt(loss(tape, clone.params(), support));
      acting.set_params(nn::values_of<Scalar>(clone.params()));
    }
    const auto query = rollout(acting, batch, task, rng);
    out.post_return = mean_return(query);
    tape.backward(loss(tape, clone.params(), query));
    const auto g = learner_.meta_gradient(meta_vars);
    out.entropy = mean_entropy(tape, clone.params(), query);
    add_lengths(out.episode_length, out.episodes, query);
    out.gradient = nn::to_list<ad::Matrix<Scalar>>(g.params);
    if (g.inner_lrs) {
      for (auto& m : nn::to_list<ad::Matrix<Scalar>>(*g.inner_lrs)) out.gradient.push_back(std::move(m));
    }
    return out;
  }

  // After for_each_task: every rank gets every task's meta-gradient, shaped as this rank's first task's.
  void gather_gradients(std::vector<AdamTask>& tasks) const {
    if (comm_.size() == 1) return;
    const auto mine = dist::share(tasks.size(), comm_);
    const auto& shapes = tasks[mine.begin].gradient;
    std::size_t stride = 0;
    for (const auto& m : shapes) stride += static_cast<std::size_t>(m.size());
    std::vector<Scalar> all(tasks.size() * stride);
    for (std::size_t i = mine.begin; i < mine.end; ++i) {
      Scalar* at = all.data() + i * stride;
      for (const auto& m : tasks[i].gradient) at = std::copy_n(m.data(), m.size(), at);
    }
    dist::allgather_parts(comm_, std::span<Scalar>(all), tasks.size(), stride);
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      if (mine.contains(i)) continue;
      const Scalar* at = all.data() + i * stride;
      tasks[i].gradient.clear();
      for (const auto& m : shapes) {
        tasks[i].gradient.emplace_back(Eigen::Map<const ad::Matrix<Scalar>>(at, m.rows(), m.cols()));
        at += m.size();
      }
    }
  }

  IterationStats adam_iteration() {
    IterationStats stats;
    learner_.params() = policy_.params();
    std::vector<AdamTask> tasks(static_cast<std::size_t>(options_.meta_batch));
    for_each_task([&](std::size_t w, int i) { tasks[static_cast<std::size_t>(i)] = adam_task(w, i); });
    gather_measures(tasks);
    gather_gradients(tasks);
    std::vector<ad::Matrix<Scalar>> meta_gradient = tasks[0].gradient;
    for (std::size_t t = 1; t < tasks.size(); ++t) {
      for (std::size_t i = 0; i < meta_gradient.size(); ++i) meta_gradient[i] += tasks[t].gradient[i];
    }
    for (const auto& t : tasks) add_task_returns(stats, t.pre_return, t.post_return);
    add_measures(stats, tasks);
    stats.pre_adaptation_return /= options_.meta_batch;
    stats.post_adaptation_return /= options_.meta_batch;
    bool finite = true;
    double squares = 0;
    for (auto& g : meta_gradient) {
      g /= static_cast<Scalar>(options_.meta_batch);
      finite = finite && g.allFinite();
      squares += static_cast<double>(g.template cast<double>().squaredNorm());
    }
    stats.grad_norm = std::sqrt(squares);
    outer_optimizer_.set_lr(options_.outer_lr);
    outer_optimizer_.set_weight_decay(options_.outer_weight_decay);
    // A non-finite meta-gradient (a diverged task) leaves the parameters and Adam's moments as they were.
    stats.outer_step_applied = finite && !options_.zero_meta_gradient;
    if (stats.outer_step_applied) {
      auto values = nn::to_list<ad::Matrix<Scalar>>(policy_.params());
      const std::size_t model = values.size();
      if (learner_.inner_lrs()) {
        for (auto& m : nn::to_list<ad::Matrix<Scalar>>(*learner_.inner_lrs())) values.push_back(std::move(m));
      }
      outer_optimizer_.step(std::span<ad::Matrix<Scalar>>(values), std::span<const ad::Matrix<Scalar>>(meta_gradient));
      if (learner_.inner_lrs()) {
        learner_.inner_lrs() = nn::from_list(
            *learner_.inner_lrs(),
            std::vector<ad::Matrix<Scalar>>(values.begin() + static_cast<std::ptrdiff_t>(model), values.end()));
      }
      values.resize(model);
      policy_.set_params(nn::from_list(policy_.params(), values));
    }
    return stats;
  }

  rl::TrajectoryBatch<Scalar> rollout(PolicyT& acting, env::EnvBatch<Env>& batch, const Task& task,
                                      std::mt19937_64& rng) const {
    for (std::size_t i = 0; i < batch.size(); ++i) Tasks::apply(batch.env(i), task);
    batch.reset();
    acting.set_num_envs(options_.trajectories);
    acting.reset_all();
    return rl::collect(acting, batch, options_.horizon, policy::ActMode::sample, rng);
  }

  // Mean entropy of the policy with `params` on `t` (recorded on the task's tape, after its backward pass).
  double mean_entropy(ad::Tape<Scalar>& tape, const VarParams& params, const rl::TrajectoryBatch<Scalar>& t) const {
    return static_cast<double>(evaluate(tape, params, t).entropy.value().template cast<double>().mean());
  }
  static void add_lengths(double& sum, double& count, const rl::TrajectoryBatch<Scalar>& t) {
    for (const long n : t.finished_lengths) sum += static_cast<double>(n);
    count += static_cast<double>(t.finished_lengths.size());
  }
  // Means over the meta-batch of the tasks' entropies, and over all query episodes of their lengths.
  template <class PerTask>
  void add_measures(IterationStats& stats, const std::vector<PerTask>& tasks) const {
    double lengths = 0;
    double episodes = 0;
    for (const auto& t : tasks) {
      stats.entropy += t.entropy;
      lengths += t.episode_length;
      episodes += t.episodes;
    }
    stats.entropy /= options_.meta_batch;
    if (episodes > 0) stats.episode_length = lengths / episodes;
  }

  // Sets one knob by name (checked by the caller).
  void set_knob(const std::string& name, const control::KnobValue& v) {
    if (name == "inner_lr") {
      options_.inner_lr = std::get<double>(v);
      learner_.set_inner_lr(options_.inner_lr);
    } else if (name == "inner_steps") {
      options_.inner_steps = static_cast<int>(std::get<std::int64_t>(v));
    } else if (name == "first_order") {
      options_.first_order = std::get<bool>(v);
      learner_.set_first_order(options_.first_order);
    } else if (name == "max_kl") {
      options_.max_kl = std::get<double>(v);
    } else if (name == "fisher") {
      options_.fisher =
          std::get<std::string>(v) == "at_adapted" ? TrpoFisher::at_adapted : TrpoFisher::through_adaptation;
    } else if (name == "outer_lr") {
      options_.outer_lr = std::get<double>(v);
    } else if (name == "outer_weight_decay") {
      options_.outer_weight_decay = std::get<double>(v);
    } else if (name == "gamma") {
      options_.gamma = std::get<double>(v);
    } else if (name == "gae_lambda") {
      options_.gae_lambda = std::get<double>(v);
    }
  }
  [[nodiscard]] control::KnobValue knob_value(const std::string& name) const {
    if (name == "inner_lr") return options_.inner_lr;
    if (name == "inner_steps") return std::int64_t{options_.inner_steps};
    if (name == "first_order") return options_.first_order;
    if (name == "max_kl") return options_.max_kl;
    if (name == "fisher")
      return std::string(options_.fisher == TrpoFisher::at_adapted ? "at_adapted" : "through_adaptation");
    if (name == "outer_lr") return options_.outer_lr;
    if (name == "outer_weight_decay") return options_.outer_weight_decay;
    if (name == "gamma") return options_.gamma;
    return options_.gae_lambda;
  }

  static void add_task_returns(IterationStats& stats, double pre, double post) {
    stats.pre_adaptation_return += pre;
    stats.post_adaptation_return += post;
    stats.task_pre_adaptation_returns.push_back(pre);
    stats.task_post_adaptation_returns.push_back(post);
  }

  // Mean over the trajectories of their first episode's return.
  static double mean_return(const rl::TrajectoryBatch<Scalar>& t) {
    const auto returns = rl::first_episode_returns(t);
    double sum = 0;
    for (const double r : returns) sum += r;
    return sum / static_cast<double>(returns.size());
  }

  PolicyT policy_;
  Tasks tasks_;
  MetaTrainerOptions options_;
  MetaTrainerOptions configured_ = options_;
  Algorithm algorithm_;
  MamlLearner<Scalar, Params> learner_;
  optim::AnyOptimizer<Scalar> outer_optimizer_;
  std::vector<std::unique_ptr<env::EnvBatch<Env>>> batches_;  //!< one per thread
  std::vector<ad::Tape<Scalar>> tapes_;                       //!< one per task of the meta-batch
  Comm comm_;
  long iteration_ = 0;
};

//! The adaptation curves of `policy` on the held-out tasks of `tasks` (see
//! MetaTrainer::held_out_curves): `steps` inner steps with the options' rate, `runs` per task, all
//! drawn from `seed`.
template <policy::MetaPolicy PolicyT, env::TaskDistribution Tasks>
HeldOutEvaluation evaluate_held_out(PolicyT policy, Tasks tasks, MetaTrainerOptions options, int steps,
                                    std::uint64_t seed, int runs = 1) {
  MetaTrainer<PolicyT, Tasks, Maml<AdamOuterStep>> trainer(std::move(policy), std::move(tasks), options);
  return trainer.held_out_curves(steps, seed, runs);
}

}  // namespace ssmrl::meta
