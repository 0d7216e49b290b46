// Test-time adaptation strategies: what loss a deployed policy descends on the data it sees.
// Compile-time strategies satisfy AdaptationStrategy; StrategyRegistry names them at run time.
#pragma once

#include <concepts>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "ssmrl/adapt/selection.hpp"
#include "ssmrl/rl/advantages.hpp"
#include "ssmrl/rl/linear_baseline.hpp"
#include "ssmrl/rl/losses.hpp"
#include "ssmrl/rl/rollout.hpp"

namespace ssmrl::adapt {

//! What one adaptation call sees: the recent steps (of the current episode or window), and for
//! strategies that replay, a batch drawn from an ExperienceBuffer.
template <class Scalar>
struct AdaptationData {
  const rl::TrajectoryBatch<Scalar>& recent;
  const rl::TrajectoryBatch<Scalar>* replay = nullptr;
};

template <class S, class PolicyT>
concept AdaptationStrategy = policy::TrainablePolicy<PolicyT> && requires(const S& s, const PolicyT& pi, ad::Tape<typename PolicyT::scalar_type>& tape,
                                      const typename PolicyT::VarParams& vars,
                                      const AdaptationData<typename PolicyT::scalar_type>& data) {
  { s.name() } -> std::convertible_to<std::string>;
  { s.default_selection() } -> std::same_as<ParameterSelection>;
  //! The loss to descend, on `tape`; a constant (no gradient) means "no change".
  { s.loss(pi, tape, vars, data) } -> std::same_as<ad::Var<typename PolicyT::scalar_type>>;
};

namespace detail {

// REINFORCE on normalised discounted returns of `t`.
template <class PolicyT, class Scalar>
ad::Var<Scalar> reinforce(const PolicyT& pi, ad::Tape<Scalar>& tape, const typename PolicyT::VarParams& vars,
                          const rl::TrajectoryBatch<Scalar>& t, double gamma) {
  const auto returns = rl::normalized(rl::discounted_returns(t, gamma));
  return rl::policy_gradient_loss(rl::evaluate(pi, tape, vars, t).log_prob, tape.constant(returns));
}

}  // namespace detail

//! Leaves the policy as it is (the baseline of every comparison).
struct NoAdaptation {
  [[nodiscard]] std::string name() const { return "none"; }
  [[nodiscard]] ParameterSelection default_selection() const { return {{}, {}}; }
  template <class PolicyT, class Scalar>
  ad::Var<Scalar> loss(const PolicyT&, ad::Tape<Scalar>& tape, const typename PolicyT::VarParams&,
                       const AdaptationData<Scalar>&) const {
    return tape.constant(1, 1, Scalar(0));
  }
};

//! Tent: minimise the mean entropy of the action distribution on the observations seen. By default
//! only the normalisation's affine parameters ("norm.*") change, as in the Tent paper. A Gaussian
//! head with a state-independent std has an entropy that no observation changes: use
//! GaussianStd::state_dependent where this strategy is meant to act.
struct EntropyMinimization {
  [[nodiscard]] std::string name() const { return "entropy"; }
  [[nodiscard]] ParameterSelection default_selection() const { return {{"norm.*"}, {}}; }
  template <class PolicyT, class Scalar>
  ad::Var<Scalar> loss(const PolicyT& pi, ad::Tape<Scalar>& tape, const typename PolicyT::VarParams& vars,
                       const AdaptationData<Scalar>& data) const {
    return ad::mean(rl::evaluate(pi, tape, vars, data.recent).entropy);
  }
};

//! REINFORCE on the rewards of the recent steps (normalised discounted returns).
struct PolicyGradientAdaptation {
  double gamma = 0.99;
  [[nodiscard]] std::string name() const { return "policy_gradient"; }
  [[nodiscard]] ParameterSelection default_selection() const { return {}; }
  template <class PolicyT, class Scalar>
  ad::Var<Scalar> loss(const PolicyT& pi, ad::Tape<Scalar>& tape, const typename PolicyT::VarParams& vars,
                       const AdaptationData<Scalar>& data) const {
    return detail::reinforce(pi, tape, vars, data.recent, gamma);
  }
};

//! The inner step of meta-training (meta::MetaTrainer's default): REINFORCE with normalised GAE
//! advantages from the linear feature baseline fitted on the recent steps. Run it with the Adapter's
//! SGD at the meta-training inner_lr to take the very step the policy was meta-trained for.
struct MamlInnerStep {
  double gamma = 0.99;
  double gae_lambda = 1.0;
  [[nodiscard]] std::string name() const { return "maml_step"; }
  [[nodiscard]] ParameterSelection default_selection() const { return {}; }
  template <class PolicyT, class Scalar>
  ad::Var<Scalar> loss(const PolicyT& pi, ad::Tape<Scalar>& tape, const typename PolicyT::VarParams& vars,
                       const AdaptationData<Scalar>& data) const {
    const auto advantages = rl::linear_baseline_advantages(data.recent, gamma, gae_lambda);
    return rl::policy_gradient_loss(rl::evaluate(pi, tape, vars, data.recent).log_prob, tape.constant(advantages));
  }
};

//! The policy-gradient loss of the recent steps plus `replay_weight` times the same loss on a batch
//! replayed from an ExperienceBuffer (its stored rewards; no importance correction), which keeps
//! the policy close to what worked before.
struct HybridAdaptation {
  double gamma = 0.99;
  double replay_weight = 0.5;
  [[nodiscard]] std::string name() const { return "hybrid"; }
  [[nodiscard]] ParameterSelection default_selection() const { return {}; }
  template <class PolicyT, class Scalar>
  ad::Var<Scalar> loss(const PolicyT& pi, ad::Tape<Scalar>& tape, const typename PolicyT::VarParams& vars,
                       const AdaptationData<Scalar>& data) const {
    const auto current = detail::reinforce(pi, tape, vars, data.recent, gamma);
    if (data.replay == nullptr || data.replay->columns() == 0) return current;
    return ad::add(current, detail::reinforce(pi, tape, vars, *data.replay, gamma) * static_cast<Scalar>(replay_weight));
  }
};

//! A strategy chosen at run time: a name, a default selection and a loss function.
template <class PolicyT>
class DynamicStrategy {
public:
  using Scalar = typename PolicyT::scalar_type;
  using LossFunction = std::function<ad::Var<Scalar>(const PolicyT&, ad::Tape<Scalar>&,
                                                     const typename PolicyT::VarParams&, const AdaptationData<Scalar>&)>;

  DynamicStrategy(std::string name, ParameterSelection selection, LossFunction loss)
      : name_(std::move(name)), selection_(std::move(selection)), loss_(std::move(loss)) {}
  //! Wraps a compile-time strategy.
  template <class S>
    requires AdaptationStrategy<S, PolicyT>
  static DynamicStrategy of(S s) {
    auto selection = s.default_selection();
    auto name = s.name();
    return DynamicStrategy(std::move(name), std::move(selection),
                           [s](const PolicyT& pi, ad::Tape<Scalar>& tape, const typename PolicyT::VarParams& vars,
                               const AdaptationData<Scalar>& data) { return s.loss(pi, tape, vars, data); });
  }

  [[nodiscard]] std::string name() const { return name_; }
  [[nodiscard]] ParameterSelection default_selection() const { return selection_; }
  ad::Var<Scalar> loss(const PolicyT& pi, ad::Tape<Scalar>& tape, const typename PolicyT::VarParams& vars,
                       const AdaptationData<Scalar>& data) const {
    return loss_(pi, tape, vars, data);
  }

private:
  std::string name_;
  ParameterSelection selection_;
  LossFunction loss_;
};

//! Strategies by name, for command lines and configuration files: "none", "entropy",
//! "policy_gradient", "hybrid" and "maml_step", and whatever users add. A registry is an object
//! (build one to keep additions local) with a process-wide instance() behind make_strategy().
template <class PolicyT>
class StrategyRegistry {
public:
  StrategyRegistry() {
    add("none", [] { return DynamicStrategy<PolicyT>::of(NoAdaptation{}); });
    add("entropy", [] { return DynamicStrategy<PolicyT>::of(EntropyMinimization{}); });
    add("policy_gradient", [] { return DynamicStrategy<PolicyT>::of(PolicyGradientAdaptation{}); });
    add("hybrid", [] { return DynamicStrategy<PolicyT>::of(HybridAdaptation{}); });
    add("maml_step", [] { return DynamicStrategy<PolicyT>::of(MamlInnerStep{}); });
  }
  //! The registry that make_strategy() and add_strategy() use: one per policy type, as env::make()
  //! and env::add_env() use env::Registry::instance().
  static StrategyRegistry& instance() {
    static StrategyRegistry registry;
    return registry;
  }

  //! Adds (or replaces) a strategy; `make` builds it, e.g. `[] { return DynamicStrategy<P>::of(MyStrategy{}); }`.
  void add(const std::string& name, std::function<DynamicStrategy<PolicyT>()> make) {
    SSMRL_REQUIRE(!name.empty(), "adapt::StrategyRegistry::add: empty name");
    makers_[name] = std::move(make);
  }
  [[nodiscard]] DynamicStrategy<PolicyT> make(const std::string& name) const {
    const auto it = makers_.find(name);
    if (it == makers_.end()) {
      std::string known;
      for (const auto& [n, m] : makers_) known += (known.empty() ? "" : ", ") + n;
      SSMRL_THROW(::ssmrl::InvalidArgument, ::ssmrl::detail::message("adapt::StrategyRegistry::make: unknown strategy '",
                                                                     name, "'; known: ", known));
    }
    return it->second();
  }
  [[nodiscard]] std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& [n, m] : makers_) out.push_back(n);
    return out;
  }

private:
  std::map<std::string, std::function<DynamicStrategy<PolicyT>()>> makers_;
};

//! A strategy by name from StrategyRegistry<PolicyT>::instance(); an unknown name throws, listing the known ones.
template <class PolicyT>
DynamicStrategy<PolicyT> make_strategy(const std::string& name) {
  return StrategyRegistry<PolicyT>::instance().make(name);
}
//! Registers a user strategy under `name` in StrategyRegistry<PolicyT>::instance().
template <class PolicyT, class S>
  requires AdaptationStrategy<S, PolicyT>
void add_strategy(const std::string& name, S strategy) {
  StrategyRegistry<PolicyT>::instance().add(name, [strategy] { return DynamicStrategy<PolicyT>::of(strategy); });
}

}  // namespace ssmrl::adapt
