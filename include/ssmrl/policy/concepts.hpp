// What each algorithm needs of a policy, as concepts that build on each other:
//   ActingPolicy       rl::collect        acts in a batch of environments, without a tape
//   TrainablePolicy    rl::Trainer        + parameters and the log-probabilities of trajectories on a tape
//   MetaPolicy         meta::MetaTrainer  + the action distribution and its KL (the TRPO step)
//   MonitoredPolicy    adapt::Adapter     + the distribution from evaluate()'s features (monitoring)
// RecurrentPolicy models all four; a type of your own needs only what its algorithm asks for.
#pragma once

#include <concepts>
#include <random>

#include "ssmrl/autodiff/tape.hpp"
#include "ssmrl/nn/cells/cell.hpp"
#include "ssmrl/nn/parameters.hpp"

namespace ssmrl::policy {

//! Sample from the distribution, or take its most likely action (mean, argmax).
enum class ActMode { sample, greedy };

//! Acting, one recurrent state per environment, no tape: `scalar_type`, `has_value_head`,
//! `observation_size()`, `action_size()`, `set_num_envs(n)`, `num_envs()`, `reset(env)`,
//! `reset_all()`, `state()` (the recurrent state, state x num_envs, recorded with each rollout), and
//! `act(observations, mode, rng)` returning a step with `actions` (action x num_envs) and `log_prob`
//! (1 x num_envs), and `value` with `peek_values(observations)` where `has_value_head`. A step may
//! have `samples` too: what evaluate() takes where that is not the action (a squashed sample).
template <class P>
concept ActingPolicy =
    requires {
      typename P::scalar_type;
      { P::has_value_head } -> std::convertible_to<bool>;
    } &&
    requires(P& policy, const P& cpolicy, std::mt19937_64& rng, ad::Index n,
             Eigen::Ref<const ad::Matrix<typename P::scalar_type>> observations) {
      { cpolicy.observation_size() } -> std::convertible_to<ad::Index>;
      { cpolicy.action_size() } -> std::convertible_to<ad::Index>;
      policy.set_num_envs(n);
      { cpolicy.num_envs() } -> std::convertible_to<ad::Index>;
      policy.reset(n);
      policy.reset_all();
      { cpolicy.state() } -> std::convertible_to<const ad::Matrix<typename P::scalar_type>&>;
      { policy.act(observations, ActMode::sample, rng).actions } -> std::convertible_to<const ad::Matrix<typename P::scalar_type>&>;
      { policy.act(observations, ActMode::sample, rng).log_prob } -> std::convertible_to<const ad::Matrix<typename P::scalar_type>&>;
    } &&
    (!P::has_value_head ||
     requires(P& policy, std::mt19937_64& rng, Eigen::Ref<const ad::Matrix<typename P::scalar_type>> observations) {
       { policy.act(observations, ActMode::sample, rng).value } -> std::convertible_to<const ad::Matrix<typename P::scalar_type>&>;
       { policy.peek_values(observations) } -> std::convertible_to<const ad::Matrix<typename P::scalar_type>&>;
     });

//! ActingPolicy, and training on a tape: `Params` (a parameter struct of matrices: `names`,
//! `fields()`, `rebind`), `VarParams` (the same on a tape, what nn::on_tape gives), `params()`,
//! `set_params(params)`, and `evaluate(vars, observations, batch, samples, options)` returning
//! `log_prob`, `entropy` and `features` (and `value` where `has_value_head`) for every column of
//! trajectories laid out as rl::TrajectoryBatch lays them out.
template <class P>
concept TrainablePolicy =
    ActingPolicy<P> &&
    requires {
      typename P::Params;
      typename P::VarParams;
    } &&
    requires(P& policy, const P& cpolicy, typename P::Params params, ad::Tape<typename P::scalar_type>& tape,
             const typename P::VarParams& vars, const ad::Var<typename P::scalar_type>& observations, ad::Index batch,
             const ad::Matrix<typename P::scalar_type>& samples,
             const nn::SequenceOptions<typename P::scalar_type>& options) {
      { cpolicy.params() } -> std::convertible_to<const typename P::Params&>;
      policy.set_params(params);
      { nn::on_tape(tape, cpolicy.params()) } -> std::same_as<typename P::VarParams>;
      { cpolicy.evaluate(vars, observations, batch, samples, options).log_prob } -> std::convertible_to<ad::Var<typename P::scalar_type>>;
      { cpolicy.evaluate(vars, observations, batch, samples, options).entropy } -> std::convertible_to<ad::Var<typename P::scalar_type>>;
      { cpolicy.evaluate(vars, observations, batch, samples, options).features } -> std::convertible_to<ad::Var<typename P::scalar_type>>;
    } &&
    (!P::has_value_head ||
     requires(const P& cpolicy, const typename P::VarParams& vars, const ad::Var<typename P::scalar_type>& observations,
              ad::Index batch, const ad::Matrix<typename P::scalar_type>& samples,
              const nn::SequenceOptions<typename P::scalar_type>& options) {
       { cpolicy.evaluate(vars, observations, batch, samples, options).value } -> std::convertible_to<ad::Var<typename P::scalar_type>>;
     });

//! TrainablePolicy, and what a trust-region outer step needs: `distribution(vars, observations,
//! batch, options)` (the action distribution's parameters for every column) and `mean_kl(old, new)`
//! of two such distributions.
template <class P>
concept MetaPolicy =
    TrainablePolicy<P> &&
    requires(const P& cpolicy, const typename P::VarParams& vars, const ad::Var<typename P::scalar_type>& observations,
             ad::Index batch, const nn::SequenceOptions<typename P::scalar_type>& options) {
      { cpolicy.distribution(vars, observations, batch, options) } -> std::same_as<ad::Var<typename P::scalar_type>>;
      { cpolicy.mean_kl(cpolicy.distribution(vars, observations, batch, options),
                        cpolicy.distribution(vars, observations, batch, options)) } -> std::same_as<ad::Var<typename P::scalar_type>>;
    };

//! TrainablePolicy, and what monitoring needs: `categorical` (whether actions are discrete) and
//! `distribution_of(vars, features)`, the distribution from evaluate()'s features (categorical:
//! logits, actions x N; Gaussian: mean and log-std stacked, 2 actions x N).
template <class P>
concept MonitoredPolicy =
    TrainablePolicy<P> &&
    requires(const P& cpolicy, const typename P::VarParams& vars, const ad::Var<typename P::scalar_type>& features) {
      { P::categorical } -> std::convertible_to<bool>;
      { cpolicy.distribution_of(vars, features) } -> std::same_as<ad::Var<typename P::scalar_type>>;
    };

}  // namespace ssmrl::policy
