// Policy-gradient losses on whole batches of steps (one step per column).
#pragma once

#include "ssmrl/autodiff.hpp"

namespace ssmrl::rl {

//! REINFORCE / vanilla policy gradient: -mean over steps of log pi(a | s) * advantage.
//! log_prob and advantages are 1 x steps.
template <class Scalar>
ad::Var<Scalar> policy_gradient_loss(const ad::Var<Scalar>& log_prob, const ad::Var<Scalar>& advantages) {
  SSMRL_REQUIRE(log_prob.rows() == 1 && advantages.rows() == 1 && advantages.cols() == log_prob.cols(),
                "rl::policy_gradient_loss: log_prob is ", log_prob.rows(), "x", log_prob.cols(), ", advantages ",
                advantages.rows(), "x", advantages.cols(), "; expected both 1 x steps");
  return -ad::mean(ad::mul(log_prob, advantages));
}

//! Elementwise min(a, b) = a - relu(a - b), differentiable almost everywhere.
template <class Scalar>
ad::Var<Scalar> elementwise_min(const ad::Var<Scalar>& a, const ad::Var<Scalar>& b) {
  return ad::sub(a, ad::relu(ad::sub(a, b)));
}

//! PPO's clipped surrogate: -mean(min(r A, clip(r, 1 - eps, 1 + eps) A)), r = exp(log_prob - old).
template <class Scalar>
ad::Var<Scalar> ppo_clip_loss(const ad::Var<Scalar>& log_prob, const ad::Var<Scalar>& old_log_prob,
                              const ad::Var<Scalar>& advantages, double clip) {
  SSMRL_REQUIRE(clip > 0 && clip < 1, "rl::ppo_clip_loss: clip ", clip, " must lie in (0, 1)");
  const auto ratio = ad::exp(ad::sub(log_prob, old_log_prob));
  const auto clipped = ad::clamp(ratio, static_cast<Scalar>(1 - clip), static_cast<Scalar>(1 + clip));
  return -ad::mean(elementwise_min(ad::mul(ratio, advantages), ad::mul(clipped, advantages)));
}

struct ActorCriticWeights {
  double value = 0.5;
  double entropy = 0.01;
};

//! A2C: policy gradient + value * mean((V - R)^2) - entropy * mean(H).
template <class Scalar>
ad::Var<Scalar> a2c_loss(const ad::Var<Scalar>& log_prob, const ad::Var<Scalar>& advantages, const ad::Var<Scalar>& values,
                         const ad::Var<Scalar>& returns, const ad::Var<Scalar>& entropy, ActorCriticWeights w = {}) {
  const auto value_loss = ad::mean(ad::square(ad::sub(values, returns)));
  return ad::sub(ad::add(policy_gradient_loss(log_prob, advantages), value_loss * static_cast<Scalar>(w.value)),
                 ad::mean(entropy) * static_cast<Scalar>(w.entropy));
}

}  // namespace ssmrl::rl
