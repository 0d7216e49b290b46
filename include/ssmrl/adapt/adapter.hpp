// Adapter<Strategy, Policy>: test-time adaptation of a deployed policy, in place, with guards that
// act: gradient-norm clipping, a bound on the step actually applied to each parameter (after the
// optimiser), an EMA anchor with a trust region around it, and rollback to the last good parameters
// when the loss or gradient is not finite or the monitored signals say adaptation diverges.
#pragma once

#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "ssmrl/adapt/meta_features.hpp"
#include "ssmrl/adapt/selection.hpp"
#include "ssmrl/adapt/strategies.hpp"
#include "ssmrl/optim/adam.hpp"
#include "ssmrl/optim/clip.hpp"

namespace ssmrl::adapt {

enum class OptimizerKind { sgd, adam };

//! Each guard is off when its limit is not positive (or infinite).
struct GuardOptions {
  double max_grad_norm = 1.0;   //!< joint norm of the adapted parameters' gradients
  double max_step = 0.05;       //!< L2 norm of the change applied to each parameter matrix in one step
  double ema_decay = 0.99;      //!< anchor <- decay * anchor + (1 - decay) * parameters, after each step
  double trust_radius = 0.5;    //!< L2 distance of the adapted parameters from the anchor
  double min_entropy = -std::numeric_limits<double>::infinity();  //!< below it after a step: roll back
  double max_feature_shift = std::numeric_limits<double>::infinity();  //!< above it after a step: roll back
};

struct AdapterOptions {
  double lr = 1e-3;
  OptimizerKind optimizer = OptimizerKind::adam;
  double weight_decay = 0.0;    //!< decoupled, towards zero
  int steps_per_call = 1;
  std::optional<ParameterSelection> parameters{};  //!< which parameters change; the strategy's default when empty
  GuardOptions guards{};
  bool episodic = false;        //!< end_episode() restores the initial parameters and optimiser state
  double monitor_decay = 0.99;  //!< of the feature statistics
};

//! What one adapt() call did (also kept in Adapter::log()).
struct AdaptationReport {
  bool applied = false;      //!< some step changed the parameters and was kept
  bool rolled_back = false;  //!< a step was undone (reason says why)
  std::string reason;
  double loss = std::numeric_limits<double>::quiet_NaN();  //!< before the last step
  double grad_norm = 0;      //!< before clipping
  double largest_step = 0;   //!< largest L2 change of one parameter matrix, as applied (after bound and trust region)
  double distance_to_anchor = 0;
  MetaFeatureValues features{};
};

template <class Strategy, policy::MonitoredPolicy PolicyT>
  requires AdaptationStrategy<Strategy, PolicyT>
class Adapter {
public:
  using Scalar = typename PolicyT::scalar_type;
  using Params = typename PolicyT::Params;

  //! Adapts `policy` in place; it must outlive the adapter.
  Adapter(PolicyT& policy, Strategy strategy = {}, AdapterOptions options = {})
      : policy_(policy), strategy_(std::move(strategy)), options_(std::move(options)), monitor_(options_.monitor_decay) {
    SSMRL_REQUIRE(options_.lr > 0 && std::isfinite(options_.lr) && options_.weight_decay >= 0 &&
                      options_.steps_per_call > 0 && options_.guards.ema_decay >= 0 && options_.guards.ema_decay < 1,
                  "adapt::Adapter: lr ", options_.lr, " must be positive and finite, weight_decay ",
                  options_.weight_decay, " not negative, steps_per_call ", options_.steps_per_call,
                  " positive and guards.ema_decay ", options_.guards.ema_decay, " in [0, 1)");
    mask_ = selected(policy_.params(), options_.parameters.value_or(strategy_.default_selection()));
    initial_ = policy_.params();
    anchor_ = initial_;
    start_optimizer();
  }

  //! Adapts on `recent` (and `replay`, for strategies that use it): steps_per_call guarded steps.
  AdaptationReport adapt(const rl::TrajectoryBatch<Scalar>& recent, const rl::TrajectoryBatch<Scalar>* replay = nullptr) {
    AdaptationReport report;
    const AdaptationData<Scalar> data{recent, replay};
    for (int k = 0; k < options_.steps_per_call; ++k) {
      if (!step(data, report)) break;
    }
    report.features = measure(recent);
    log_.push_back(report);
    return report;
  }

  //! The initial parameters, optimiser state and anchor again.
  void reset() {
    policy_.set_params(initial_);
    anchor_ = initial_;
    start_optimizer();
  }
  //! Episodic mode resets at each episode's end; otherwise nothing happens.
  void end_episode() {
    if (options_.episodic) reset();
  }

  [[nodiscard]] const std::vector<AdaptationReport>& log() const noexcept { return log_; }
  [[nodiscard]] const MetaFeatures<Scalar>& monitor() const noexcept { return monitor_; }
  [[nodiscard]] const Params& anchor() const noexcept { return anchor_; }
  [[nodiscard]] const Strategy& strategy() const noexcept { return strategy_; }
  [[nodiscard]] const AdapterOptions& options() const noexcept { return options_; }
  //! Names of the parameters this adapter changes.
  [[nodiscard]] std::vector<std::string> adapted_parameters() const {
    std::vector<std::string> out;
    const auto names = nn::parameter_names(initial_);
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (mask_[i]) out.push_back(names[i]);
    }
    return out;
  }

private:
  void start_optimizer() {
    adam_ = optim::AdamW<Scalar>({.lr = options_.lr, .weight_decay = options_.weight_decay});
  }

  // One guarded step; false when no further step should follow.
  bool step(const AdaptationData<Scalar>& data, AdaptationReport& report) {
    const Params before = policy_.params();
    const optim::AdamW<Scalar> adam_before = adam_;
    tape_.clear();
    const auto vars = nn::on_tape(tape_, before);
    const auto loss = strategy_.loss(policy_, tape_, vars, data);
    report.loss = static_cast<double>(loss.item());
    if (!loss.requires_grad()) {
      report.reason = "the strategy changes nothing";
      return false;
    }
    if (!std::isfinite(report.loss)) return refuse(report, "non-finite loss");
    tape_.backward(loss);
    auto grads = nn::to_list<ad::Matrix<Scalar>>(nn::gradients_of<Scalar>(vars));
    auto values = nn::to_list<ad::Matrix<Scalar>>(before);
    std::vector<ad::Matrix<Scalar>> chosen_grads;
    std::vector<ad::Matrix<Scalar>> chosen_values;
    for (std::size_t i = 0; i < grads.size(); ++i) {
      if (!mask_[i]) continue;
      chosen_grads.push_back(grads[i]);
      chosen_values.push_back(values[i]);
    }
    if (chosen_values.empty()) {
      report.reason = "no parameter is selected";
      return false;
    }
    const auto& g = options_.guards;
    double norm = 0;
    for (const auto& m : chosen_grads) norm += static_cast<double>(m.squaredNorm());
    report.grad_norm = std::sqrt(norm);
    if (!std::isfinite(report.grad_norm)) return refuse(report, "non-finite gradient");
    if (g.max_grad_norm > 0) optim::clip_grad_norm(std::span<ad::Matrix<Scalar>>(chosen_grads), g.max_grad_norm);
    const std::vector<ad::Matrix<Scalar>> old_values = chosen_values;
    if (options_.optimizer == OptimizerKind::adam) {
      adam_.step(std::span<ad::Matrix<Scalar>>(chosen_values), std::span<const ad::Matrix<Scalar>>(chosen_grads));
    } else {
      const auto lr = static_cast<Scalar>(options_.lr);
      const auto decay = static_cast<Scalar>(options_.lr * options_.weight_decay);
      for (std::size_t i = 0; i < chosen_values.size(); ++i) chosen_values[i] -= lr * chosen_grads[i] + decay * chosen_values[i];
    }
    // The step bound acts on the change the optimiser made, so that no optimiser can exceed it.
    for (std::size_t i = 0; i < chosen_values.size(); ++i) {
      const ad::Matrix<Scalar> delta = chosen_values[i] - old_values[i];
      const double size = static_cast<double>(delta.norm());
      if (g.max_step > 0 && size > g.max_step) chosen_values[i] = old_values[i] + static_cast<Scalar>(g.max_step / size) * delta;
    }
    // The trust region: back within trust_radius of the anchor.
    auto anchors = nn::to_list<ad::Matrix<Scalar>>(anchor_);
    std::vector<ad::Matrix<Scalar>*> chosen_anchors;
    for (std::size_t i = 0; i < anchors.size(); ++i) {
      if (mask_[i]) chosen_anchors.push_back(&anchors[i]);
    }
    double distance = 0;
    for (std::size_t i = 0; i < chosen_values.size(); ++i) {
      distance += static_cast<double>((chosen_values[i] - *chosen_anchors[i]).squaredNorm());
    }
    distance = std::sqrt(distance);
    if (g.trust_radius > 0 && distance > g.trust_radius) {
      const auto shrink = static_cast<Scalar>(g.trust_radius / distance);
      for (std::size_t i = 0; i < chosen_values.size(); ++i) {
        chosen_values[i] = *chosen_anchors[i] + shrink * (chosen_values[i] - *chosen_anchors[i]);
      }
      distance = g.trust_radius;
      // The projection can lengthen a matrix's step beyond the bound: then the whole step shrinks by
      // one factor, which keeps it within the trust region (both of its ends are).
      double longest = 0;
      for (std::size_t i = 0; i < chosen_values.size(); ++i) {
        longest = std::max(longest, static_cast<double>((chosen_values[i] - old_values[i]).norm()));
      }
      if (g.max_step > 0 && longest > g.max_step) {
        const auto factor = static_cast<Scalar>(g.max_step / longest);
        for (std::size_t i = 0; i < chosen_values.size(); ++i) {
          chosen_values[i] = old_values[i] + factor * (chosen_values[i] - old_values[i]);
        }
      }
    }
    // What the report says is what is applied.
    report.largest_step = 0;
    for (std::size_t i = 0; i < chosen_values.size(); ++i) {
      report.largest_step = std::max(report.largest_step, static_cast<double>((chosen_values[i] - old_values[i]).norm()));
    }
    bool finite = true;
    for (const auto& v : chosen_values) finite = finite && v.allFinite();
    if (!finite) {
      adam_ = adam_before;
      return refuse(report, "non-finite parameters after the step");
    }
    for (std::size_t i = 0, c = 0; i < values.size(); ++i) {
      if (mask_[i]) values[i] = chosen_values[c++];
    }
    policy_.set_params(nn::from_list(before, values));
    // Divergence: the monitored signals after the step, against their limits.
    if (g.min_entropy > -std::numeric_limits<double>::infinity() || g.max_feature_shift < std::numeric_limits<double>::infinity()) {
      MetaFeatures<Scalar> probe = monitor_;
      const auto after = measure(data.recent, &probe);
      if (!(after.entropy >= g.min_entropy) || !(after.feature_shift <= g.max_feature_shift)) {
        policy_.set_params(before);
        adam_ = adam_before;
        return refuse(report, "monitored signals out of bounds (entropy " + std::to_string(after.entropy) +
                                  ", feature shift " + std::to_string(after.feature_shift) + ")");
      }
    }
    const auto decay = static_cast<Scalar>(g.ema_decay);
    for (std::size_t i = 0; i < chosen_values.size(); ++i) {
      *chosen_anchors[i] = decay * *chosen_anchors[i] + (1 - decay) * chosen_values[i];
    }
    anchor_ = nn::from_list(anchor_, anchors);
    distance = 0;
    for (std::size_t i = 0; i < chosen_values.size(); ++i) {
      distance += static_cast<double>((chosen_values[i] - *chosen_anchors[i]).squaredNorm());
    }
    report.distance_to_anchor = std::sqrt(distance);
    report.applied = true;
    return true;
  }

  // The parameters stay the last good ones; the call ends.
  bool refuse(AdaptationReport& report, std::string reason) {
    report.rolled_back = true;
    report.reason = std::move(reason);
    return false;
  }

  // The monitored figures of the current policy on `t` (into `monitor`, the adapter's own by default).
  MetaFeatureValues measure(const rl::TrajectoryBatch<Scalar>& t, MetaFeatures<Scalar>* monitor = nullptr) {
    tape_.clear();
    const auto vars = nn::on_tape(tape_, policy_.params());
    const auto features = rl::evaluate(policy_, tape_, vars, t).features;
    const auto dist = policy_.distribution_of(vars, features);  // from the same forward pass
    return (monitor != nullptr ? *monitor : monitor_).measure(dist.value(), PolicyT::categorical, features.value());
  }

  PolicyT& policy_;
  Strategy strategy_;
  AdapterOptions options_;
  std::vector<bool> mask_;
  Params initial_;
  Params anchor_;
  optim::AdamW<Scalar> adam_;
  MetaFeatures<Scalar> monitor_;
  ad::Tape<Scalar> tape_;
  std::vector<AdaptationReport> log_;
};

}  // namespace ssmrl::adapt
