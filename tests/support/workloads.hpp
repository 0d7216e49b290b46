// Workloads shared by tests and benchmarks, so that both measure the same thing.
#pragma once

#include <ssmrl/autodiff.hpp>
#include <ssmrl/nn/dense_ssm.hpp>
#include <ssmrl/rl/losses.hpp>

#include <array>
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
  std::vector<int> actions;
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
  out.actions.resize(static_cast<std::size_t>(batch * steps));
  for (ad::Index i = 0; i < out.obs.size(); ++i) out.obs.data()[i] = static_cast<Scalar>(normal(rng));
  for (ad::Index i = 0; i < out.advantages.size(); ++i) out.advantages.data()[i] = static_cast<Scalar>(normal(rng));
  for (auto& a : out.actions) a = action(rng);
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

//! One W2 training pass through the tape: clear, record the forward pass and the REINFORCE loss,
//! run backward, copy the gradients into `grads` (sized on the first call). Returns the loss.
template <class Scalar>
Scalar dense_ssm_reinforce_step(ad::Tape<Scalar>& tape, const nn::DenseSsmParams<ad::Matrix<Scalar>>& params,
                                const SequenceBatch<Scalar>& data, std::array<ad::Matrix<Scalar>, 7>& grads) {
  tape.clear();
  const auto p = nn::on_tape(tape, params);
  const auto logits = nn::dense_ssm_forward(p, tape.constant(data.obs), data.batch);
  const auto loss = rl::reinforce_loss_categorical(logits, data.actions, tape.constant(data.advantages));
  tape.backward(loss);
  const auto vars = p.to_array();
  for (std::size_t i = 0; i < grads.size(); ++i) grads[i] = vars[i].grad();
  return loss.item();
}

}  // namespace ssmrl::test
