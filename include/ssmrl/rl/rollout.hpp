// Rollouts: a policy acting in a batch of environments for a fixed number of steps, recorded in the
// library's layout (T blocks of N columns) with everything training needs, recurrent state included.
#pragma once

#include <random>

#include "ssmrl/env/env_batch.hpp"
#include "ssmrl/mc/effects.hpp"
#include "ssmrl/policy/concepts.hpp"

namespace ssmrl::rl {

template <class Scalar>
struct TrajectoryBatch {
  ad::Index envs = 0;
  ad::Index steps = 0;
  ad::Matrix<Scalar> observations;   //!< obs x (T * N): what the policy saw at each step
  ad::Matrix<Scalar> actions;        //!< action_size x (T * N), as the environment received them
  //! action_size x (T * N): what the policy's head sampled where that is not the action (a squashing
  //! head's u before tanh); empty where the actions are the samples. See sampled().
  ad::Matrix<Scalar> samples;
  ad::Matrix<Scalar> rewards;        //!< 1 x (T * N)
  ad::Matrix<Scalar> terminated;     //!< 1 x (T * N), 1 where the episode ended in failure or success
  ad::Matrix<Scalar> truncated;      //!< 1 x (T * N), 1 where the time limit ended it
  ad::Matrix<Scalar> log_probs;      //!< 1 x (T * N), of the actions when they were taken
  ad::Matrix<Scalar> values;         //!< 1 x (T * N), empty without a value head
  ad::Matrix<Scalar> bootstrap;      //!< 1 x (T * N): value of the final observation where truncated, else 0
  ad::Matrix<Scalar> last_values;    //!< 1 x N: values of the observations after the last step
  ad::Matrix<Scalar> keep;           //!< 1 x (T * N): 0 where a new episode starts (for SequenceOptions::keep)
  ad::Matrix<Scalar> initial_state;  //!< state x N: the policy's recurrent state before the first step
  mc::McRecord<Scalar> mc;           //!< what an MC policy chose and did at each step; empty otherwise
  std::vector<double> finished_returns;  //!< returns of the episodes that ended during the rollout
  std::vector<long> finished_lengths;    //!< their lengths in steps, in the same order

  [[nodiscard]] ad::Index columns() const { return envs * steps; }
  //! What the policy's evaluate() takes to reproduce log_probs: `samples` where recorded, else `actions`.
  [[nodiscard]] const ad::Matrix<Scalar>& sampled() const { return samples.size() > 0 ? samples : actions; }
};

//! A batch of `envs` x `steps` columns with its matrices sized (contents unset), no bootstrap
//! values and no episode starts; `values` and `initial_state` are left to the caller.
template <class Scalar>
TrajectoryBatch<Scalar> sized_trajectory_batch(ad::Index observation_size, ad::Index action_size, ad::Index envs,
                                               ad::Index steps) {
  TrajectoryBatch<Scalar> t;
  t.envs = envs;
  t.steps = steps;
  const ad::Index cols = envs * steps;
  t.observations.resize(observation_size, cols);
  t.actions.resize(action_size, cols);
  t.rewards.resize(1, cols);
  t.terminated.resize(1, cols);
  t.truncated.resize(1, cols);
  t.log_probs.resize(1, cols);
  t.bootstrap.setZero(1, cols);
  t.keep.setOnes(1, cols);
  return t;
}

//! Copies an MC policy's step k (choices, log-probabilities, effects) into the record.
template <class Scalar, class Step>
void record_mc(mc::McRecord<Scalar>& r, const Step& step, ad::Index k, ad::Index n, ad::Index steps) {
  const auto& e = step.mc_effects;
  if (k == 0) {
    r.choices.resize(1, n * steps);
    r.log_probs.resize(1, n * steps);
    r.state_keep.resize(1, n * steps);
    r.state_offset.resize(e.state_size(), n * steps);
    r.state_edited.resize(1, n * steps);
    r.tokens.resize(1, n * steps);
    r.values.resize(1, step.mc_value.size() > 0 ? n * steps : 0);
  }
  r.choices.middleCols(k * n, n) = step.mc_choices;
  r.log_probs.middleCols(k * n, n) = step.mc_log_prob;
  r.state_keep.middleCols(k * n, n) = e.state_keep();
  r.state_offset.middleCols(k * n, n) = e.state_offset();
  r.state_edited.middleCols(k * n, n) = e.state_edited();
  r.tokens.middleCols(k * n, n) = e.tokens();
  if (step.mc_value.size() > 0) r.values.middleCols(k * n, n) = step.mc_value;
}

//! Runs `policy` (whose state continues from earlier calls) for `steps` steps of `batch`.
template <policy::ActingPolicy PolicyT, class Env, class EnvRng, class Rng>
TrajectoryBatch<typename PolicyT::scalar_type> collect(PolicyT& policy, env::EnvBatch<Env, EnvRng>& batch,
                                                       ad::Index steps, policy::ActMode mode, Rng& rng) {
  using Scalar = typename PolicyT::scalar_type;
  const auto n = static_cast<ad::Index>(batch.size());
  SSMRL_REQUIRE(steps > 0, "rl::collect: steps ", steps, " must be positive");
  SSMRL_REQUIRE(policy.observation_size() == static_cast<ad::Index>(Env::observation_size) &&
                    policy.action_size() == static_cast<ad::Index>(Env::action_size),
                "rl::collect: the policy takes ", policy.observation_size(), " observations and gives ",
                policy.action_size(), " actions; the environment has ", Env::observation_size, " and ",
                Env::action_size);
  if (policy.num_envs() != n) policy.set_num_envs(n);
  constexpr bool with_values = PolicyT::has_value_head;
  auto t = sized_trajectory_batch<Scalar>(Env::observation_size, Env::action_size, n, steps);
  const ad::Index cols = n * steps;
  t.initial_state = policy.state();
  if constexpr (with_values) t.values.resize(1, cols);
  Eigen::MatrixXf env_actions(Env::action_size, n);
  for (ad::Index k = 0; k < steps; ++k) {
    const auto block = t.observations.middleCols(k * n, n);
    t.observations.middleCols(k * n, n) = batch.observations().template cast<Scalar>();
    const auto step = policy.act(block, mode, rng);
    t.actions.middleCols(k * n, n) = step.actions;
    if constexpr (requires { step.samples; }) {
      if (step.samples.size() > 0) {
        if (k == 0) t.samples.resize(Env::action_size, cols);
        t.samples.middleCols(k * n, n) = step.samples;
      }
    }
    t.log_probs.middleCols(k * n, n) = step.log_prob;
    if constexpr (requires { step.mc_effects; }) record_mc(t.mc, step, k, n, steps);
    if constexpr (with_values) t.values.middleCols(k * n, n) = step.value;
    env_actions = step.actions.template cast<float>();
    batch.step(env_actions);
    bool any_truncated = false;
    for (ad::Index i = 0; i < n; ++i) {
      const auto c = k * n + i;
      t.rewards(0, c) = static_cast<Scalar>(batch.rewards()[i]);
      t.terminated(0, c) = batch.terminated()[static_cast<std::size_t>(i)];
      t.truncated(0, c) = batch.truncated()[static_cast<std::size_t>(i)] && !batch.terminated()[static_cast<std::size_t>(i)];
      any_truncated = any_truncated || t.truncated(0, c) != 0;
    }
    if constexpr (with_values) {
      if (any_truncated) {
        const auto& v = policy.peek_values(batch.final_observations().template cast<Scalar>());
        for (ad::Index i = 0; i < n; ++i) {
          if (t.truncated(0, k * n + i) != 0) t.bootstrap(0, k * n + i) = v(0, i);
        }
      }
    }
    for (ad::Index i = 0; i < n; ++i) {
      if (batch.terminated()[static_cast<std::size_t>(i)] || batch.truncated()[static_cast<std::size_t>(i)]) {
        policy.reset(i);
        t.finished_returns.push_back(batch.finished_returns()[static_cast<std::size_t>(i)]);
        t.finished_lengths.push_back(batch.finished_lengths()[static_cast<std::size_t>(i)]);
        if (k + 1 < steps) t.keep(0, (k + 1) * n + i) = 0;
      }
    }
  }
  if constexpr (with_values) t.last_values = policy.peek_values(batch.observations().template cast<Scalar>());
  return t;
}

//! The policy's evaluation of `t` with the parameters `vars` on `tape`: every column, from the
//! recurrent state the rollout started in, with the episode starts of the rollout; for an MC policy
//! with the rollout's MC record, the same MC choices and effects at the same steps.
template <policy::TrainablePolicy PolicyT, class Scalar>
auto evaluate(const PolicyT& policy, ad::Tape<Scalar>& tape, const typename PolicyT::VarParams& vars,
              const TrajectoryBatch<Scalar>& t) {
  const nn::SequenceOptions<Scalar> options{.initial_state = tape.constant(t.initial_state), .keep = t.keep.data()};
  if constexpr (requires { policy.evaluate_mc(vars, tape.constant(t.observations), t.envs, t.sampled(), options, t.mc); }) {
    if (!t.mc.empty()) return policy.evaluate_mc(vars, tape.constant(t.observations), t.envs, t.sampled(), options, t.mc);
  }
  return policy.evaluate(vars, tape.constant(t.observations), t.envs, t.sampled(), options);
}

//! Per environment, the return of its first episode in the rollout (cut at the rollout's end when
//! the episode had not ended): with automatic resets, the sum of all rewards would count the
//! episodes that follow too.
template <class Scalar>
std::vector<double> first_episode_returns(const TrajectoryBatch<Scalar>& t) {
  std::vector<double> out(static_cast<std::size_t>(t.envs), 0.0);
  for (ad::Index i = 0; i < t.envs; ++i) {
    for (ad::Index k = 0; k < t.steps; ++k) {
      const auto c = k * t.envs + i;
      out[static_cast<std::size_t>(i)] += static_cast<double>(t.rewards(0, c));
      if (t.terminated(0, c) != 0 || t.truncated(0, c) != 0) break;
    }
  }
  return out;
}

}  // namespace ssmrl::rl
