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

}  // namespace ssmrl::rl
