// What a MetaTrainer is built from: how advantages are estimated, which loss the inner step descends,
// the inner step's rule (a fixed rate, or Meta-SGD's learned ones) and the outer step (Adam or TRPO).
// meta::Maml<> bundles today's choices; each part is a small type a user may replace.
#pragma once

#include <concepts>

#include "ssmrl/rl/linear_baseline.hpp"
#include "ssmrl/rl/losses.hpp"
#include "ssmrl/rl/rollout.hpp"

namespace ssmrl::meta {

//! Advantages for the inner (and Adam's query) loss: `estimate(trajectories, gamma, lambda)`, one
//! entry per column.
template <class A, class Scalar>
concept AdvantageEstimator = requires(const A& a, const rl::TrajectoryBatch<Scalar>& t, double gamma, double lambda) {
  { a(t, gamma, lambda) } -> std::convertible_to<ad::Matrix<Scalar>>;
};

//! The loss an inner step descends: `loss(evaluation, advantages)` from rl::evaluate()'s result
//! (log_prob, entropy, ...) and the advantages as a constant of the same tape.
template <class L, class Evaluation, class Scalar>
concept InnerLoss = requires(const L& loss, const Evaluation& e, const ad::Var<Scalar>& advantages) {
  { loss(e, advantages) } -> std::same_as<ad::Var<Scalar>>;
};

//! Normalised GAE advantages with the linear feature baseline fitted on the same trajectories (the
//! MAML paper's, after rllab; the default).
struct LinearBaselineAdvantages {
  template <class Scalar>
  ad::Matrix<Scalar> operator()(const rl::TrajectoryBatch<Scalar>& t, double gamma, double lambda) const {
    return rl::linear_baseline_advantages(t, gamma, lambda);
  }
};

//! Normalised discounted returns: REINFORCE without a baseline.
struct ReturnAdvantages {
  template <class Scalar>
  ad::Matrix<Scalar> operator()(const rl::TrajectoryBatch<Scalar>& t, double gamma, double) const {
    return rl::normalized(rl::discounted_returns(t, gamma));
  }
};

//! REINFORCE: -mean(log pi(a | s) A) (the default).
struct ReinforceLoss {
  template <class Evaluation, class Scalar>
  ad::Var<Scalar> operator()(const Evaluation& e, const ad::Var<Scalar>& advantages) const {
    return rl::policy_gradient_loss(e.log_prob, advantages);
  }
};

//! REINFORCE minus `entropy` times the mean entropy of the action distribution.
struct EntropyRegularizedReinforceLoss {
  double entropy = 0.01;
  template <class Evaluation, class Scalar>
  ad::Var<Scalar> operator()(const Evaluation& e, const ad::Var<Scalar>& advantages) const {
    return ad::sub(rl::policy_gradient_loss(e.log_prob, advantages), ad::mean(e.entropy) * static_cast<Scalar>(entropy));
  }
};

//! Inner rule: SGD with MetaTrainerOptions::inner_lr (the default).
struct FixedInnerRate {
  static constexpr bool learned = false;
};
//! Inner rule: Meta-SGD, one learned rate per parameter entry (initialised to inner_lr) that the outer
//! step trains with the parameters. Needs the Adam outer step.
struct LearnedInnerRates {
  static constexpr bool learned = true;
};

//! Outer step: Adam on the meta-gradient of the query loss (MetaTrainerOptions::outer_lr).
struct AdamOuterStep {};
//! Outer step: TRPO on the query surrogate within the KL limit of MetaTrainerOptions::max_kl.
struct TrpoOuterStep {};
//! Outer step: TRPO where MetaTrainerOptions::trpo is set, Adam otherwise (the default; both are
//! compiled; name one of the two above to compile only it).
struct OuterStepFromOptions {};

//! One MAML algorithm: its outer step, inner rule, advantage estimator and inner loss. The defaults
//! are the MAML paper's for RL (the outer step chosen by the options).
template <class Outer = OuterStepFromOptions, class Rule = FixedInnerRate, class Advantages = LinearBaselineAdvantages,
          class Loss = ReinforceLoss>
struct Maml {
  using outer_step = Outer;
  using inner_rule = Rule;
  Advantages advantages{};
  Loss loss{};
};

}  // namespace ssmrl::meta
