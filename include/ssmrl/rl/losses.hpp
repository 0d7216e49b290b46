// Policy-gradient losses on whole batches of steps (one step per column).
#pragma once

#include <span>

#include "ssmrl/autodiff.hpp"

namespace ssmrl::rl {

//! REINFORCE with a categorical policy: -mean over steps of log pi(action | logits) * advantage.
//! logits: actions x steps; actions: one index per step; advantages: 1 x steps.
template <class Scalar>
ad::Var<Scalar> reinforce_loss_categorical(const ad::Var<Scalar>& logits, std::span<const int> actions,
                                           const ad::Var<Scalar>& advantages) {
  SSMRL_REQUIRE(advantages.rows() == 1 && advantages.cols() == logits.cols(),
                "rl::reinforce_loss_categorical: advantages are ", advantages.rows(), "x", advantages.cols(),
                ", expected 1x", logits.cols(), " (one per step)");
  const auto log_prob = ad::pick(ad::log_softmax(logits), actions);
  return -ad::mean(ad::mul(log_prob, advantages));
}

//! REINFORCE with a diagonal Gaussian policy; actions: action_dim x steps.
template <class Scalar>
ad::Var<Scalar> reinforce_loss_gaussian(const ad::Var<Scalar>& mean, const ad::Var<Scalar>& log_std,
                                        const ad::Var<Scalar>& actions, const ad::Var<Scalar>& advantages) {
  SSMRL_REQUIRE(advantages.rows() == 1 && advantages.cols() == mean.cols(),
                "rl::reinforce_loss_gaussian: advantages are ", advantages.rows(), "x", advantages.cols(),
                ", expected 1x", mean.cols(), " (one per step)");
  return -ad::mean(ad::mul(ad::gaussian_log_prob(mean, log_std, actions), advantages));
}

}  // namespace ssmrl::rl
