// Discounted returns, generalised advantage estimation and normalisation over trajectory batches
// (one step per column, T blocks of N environments), honouring terminations (no bootstrap) and
// truncations (bootstrap from the final observation's value).
#pragma once

#include <cmath>
#include <type_traits>

#include "ssmrl/rl/rollout.hpp"

namespace ssmrl::rl {

template <class Scalar>
struct AdvantageEstimate {
  ad::Matrix<Scalar> advantages;  //!< 1 x (T * N)
  ad::Matrix<Scalar> returns;     //!< 1 x (T * N): advantages + values, the value targets
};

//! GAE(lambda) with the given state values (1 x T*N) and values after the last step (1 x N):
//!   delta_t = r_t + gamma * V_next - V_t,  A_t = delta_t + gamma * lambda * (1 - done_t) * A_{t+1},
//! where V_next is V_{t+1} within an episode, 0 after a termination, the bootstrap value after a
//! truncation, and last_values at the end of the rollout. values and last_values may be any Eigen
//! expression of the trajectories' scalar type.
template <class Scalar>
AdvantageEstimate<Scalar> gae(const TrajectoryBatch<Scalar>& t,
                              const std::type_identity_t<Eigen::Ref<const ad::Matrix<Scalar>>>& values,
                              const std::type_identity_t<Eigen::Ref<const ad::Matrix<Scalar>>>& last_values,
                              double gamma, double lambda) {
  const ad::Index n = t.envs;
  SSMRL_REQUIRE(values.rows() == 1 && values.cols() == t.columns(), "rl::gae: values are ", values.rows(), "x",
                values.cols(), ", expected 1x", t.columns());
  SSMRL_REQUIRE(last_values.rows() == 1 && last_values.cols() == n, "rl::gae: last_values are ", last_values.rows(),
                "x", last_values.cols(), ", expected 1x", n);
  SSMRL_REQUIRE(gamma >= 0 && gamma <= 1 && lambda >= 0 && lambda <= 1, "rl::gae: gamma ", gamma, " and lambda ",
                lambda, " must lie in [0, 1]");
  AdvantageEstimate<Scalar> out{ad::Matrix<Scalar>(1, t.columns()), ad::Matrix<Scalar>(1, t.columns())};
  const auto g = static_cast<Scalar>(gamma);
  const auto gl = static_cast<Scalar>(gamma * lambda);
  for (ad::Index i = 0; i < n; ++i) {
    Scalar next_advantage = 0;
    for (ad::Index k = t.steps; k-- > 0;) {
      const ad::Index c = k * n + i;
      const bool terminated = t.terminated(0, c) != 0;
      const bool truncated = t.truncated(0, c) != 0;
      Scalar next_value;
      if (terminated) next_value = 0;
      else if (truncated) next_value = t.bootstrap(0, c);
      else if (k + 1 == t.steps) next_value = last_values(0, i);
      else next_value = values(0, c + n);
      const Scalar delta = t.rewards(0, c) + g * next_value - values(0, c);
      const Scalar advantage = delta + ((terminated || truncated) ? Scalar(0) : gl * next_advantage);
      out.advantages(0, c) = advantage;
      out.returns(0, c) = advantage + values(0, c);
      next_advantage = advantage;
    }
  }
  return out;
}

//! GAE with the values the policy's value head gave while acting.
template <class Scalar>
AdvantageEstimate<Scalar> gae(const TrajectoryBatch<Scalar>& t, double gamma, double lambda) {
  SSMRL_REQUIRE(t.values.size() == t.columns(), "rl::gae: the trajectories have no values (a policy without a value head)");
  return gae(t, t.values, t.last_values, gamma, lambda);
}

//! Discounted returns within each episode, sum_k gamma^k r_{t+k}, with no value to bootstrap from
//! (an episode cut by truncation or by the end of the rollout counts only the rewards seen).
template <class Scalar>
ad::Matrix<Scalar> discounted_returns(const TrajectoryBatch<Scalar>& t, double gamma) {
  const ad::Matrix<Scalar> zeros = ad::Matrix<Scalar>::Zero(1, t.columns());
  TrajectoryBatch<Scalar> no_bootstrap_view = t;
  no_bootstrap_view.bootstrap.setZero(1, t.columns());
  const ad::Matrix<Scalar> no_last_values = ad::Matrix<Scalar>::Zero(1, t.envs);
  return gae(no_bootstrap_view, zeros, no_last_values, gamma, 1.0).returns;
}

//! (x - mean) / (std + eps) over all entries; zero for a constant batch (whose computed mean can
//! differ from its entries by a rounding residual, which divided by itself plus eps would give +-1).
template <class Derived>
ad::Matrix<typename Derived::Scalar> normalized(const Eigen::MatrixBase<Derived>& expression, double eps = 1e-8) {
  using Scalar = typename Derived::Scalar;
  const ad::Matrix<Scalar> x = expression;
  SSMRL_REQUIRE(x.size() > 0, "rl::normalized: empty input");
  if (x.maxCoeff() == x.minCoeff()) return ad::Matrix<Scalar>::Zero(x.rows(), x.cols());
  const Scalar mean = x.mean();
  const Scalar variance = (x.array() - mean).square().mean();
  return ((x.array() - mean) / (std::sqrt(variance) + static_cast<Scalar>(eps))).matrix();
}

}  // namespace ssmrl::rl
