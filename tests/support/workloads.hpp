// Workloads shared by tests and benchmarks, so that both measure the same thing.
#pragma once

#include <ssmrl/ssmrl.hpp>

#include <string_view>
#include <cstdint>
#include <random>
#include <vector>

namespace ssmrl::test {

//! A batch of sequences in the library's layout (T blocks of `batch` columns), with random
//! observations, discrete actions and advantages.
template <class Scalar>
struct SequenceBatch {
  ad::Index batch = 0;
  ad::Index steps = 0;
  ad::Matrix<Scalar> obs;
  ad::Matrix<Scalar> actions;  //!< 1 x (T * batch) action indices
  ad::Matrix<Scalar> advantages;
};

template <class Scalar>
SequenceBatch<Scalar> random_sequence_batch(ad::Index obs_dim, int num_actions, ad::Index batch, ad::Index steps,
                                            std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_int_distribution<int> action(0, num_actions - 1);
  SequenceBatch<Scalar> out;
  out.batch = batch;
  out.steps = steps;
  out.obs.resize(obs_dim, batch * steps);
  out.advantages.resize(1, batch * steps);
  out.actions.resize(1, batch * steps);
  for (ad::Index i = 0; i < out.obs.size(); ++i) out.obs.data()[i] = static_cast<Scalar>(normal(rng));
  for (ad::Index i = 0; i < out.advantages.size(); ++i) out.advantages.data()[i] = static_cast<Scalar>(normal(rng));
  for (ad::Index i = 0; i < out.actions.size(); ++i) out.actions.data()[i] = static_cast<Scalar>(action(rng));
  return out;
}

//! Workload W2: dense SSM categorical policy, obs 4, state 64, hidden 64, actions 2; batch 8
//! sequences of 200 steps.
struct W2 {
  static constexpr ad::Index obs = 4;
  static constexpr ad::Index state = 64;
  static constexpr ad::Index hidden = 64;
  static constexpr int actions = 2;
  static constexpr ad::Index batch = 8;
  static constexpr ad::Index steps = 200;
};

//! The dense SSM categorical policy of the reference cases and of W2.
template <class Scalar>
using DenseSsmCategorical = policy::RecurrentPolicy<nn::DenseSsmCell<Scalar>, policy::CategoricalHead<Scalar>>;

template <class Scalar>
DenseSsmCategorical<Scalar> make_w2_policy(std::uint64_t seed) {
  return {nn::DenseSsmCell<Scalar>({.input = W2::obs, .state = W2::state, .output = W2::hidden}),
          policy::CategoricalHead<Scalar>(W2::hidden, W2::actions), {}, {}, seed};
}

//! One REINFORCE pass through the tape: clear, record the policy's log-probabilities of the batch
//! and the loss, run backward, copy the gradients into `grads` (sized on the first call).
template <class PolicyT, class Scalar>
Scalar reinforce_step(ad::Tape<Scalar>& tape, const PolicyT& policy, const SequenceBatch<Scalar>& data,
                      std::vector<ad::Matrix<Scalar>>& grads) {
  tape.clear();
  const auto p = nn::on_tape(tape, policy.params());
  const auto e = policy.evaluate(p, tape.constant(data.obs), data.batch, data.actions);
  const auto loss = rl::policy_gradient_loss(e.log_prob, tape.constant(data.advantages));
  tape.backward(loss);
  std::size_t i = 0;
  nn::for_each_parameter(p, [&](std::string_view, const ad::Var<Scalar>& v) {
    if (i == grads.size()) grads.emplace_back(v.rows(), v.cols());
    grads[i++] = v.grad();
  });
  return loss.item();
}

}  // namespace ssmrl::test
