// First-order optimisers over a list of parameter matrices, with PyTorch's semantics (checked
// against torch.optim's traces): SGD (momentum, dampening, Nesterov, L2 weight decay), Adam (L2
// weight decay, added to the gradient) and AdamW (decoupled weight decay), each with parameter
// groups whose learning rate and weight decay may change between steps.
#pragma once

#include <cmath>
#include <span>
#include <vector>

#include "ssmrl/autodiff/tape.hpp"
#include "ssmrl/core/error.hpp"
#include "ssmrl/optim/param_groups.hpp"

namespace ssmrl::optim {

struct SgdOptions {
  double lr = 1e-2;
  double momentum = 0.0;
  double dampening = 0.0;
  bool nesterov = false;  //!< needs momentum > 0 and dampening 0, as in PyTorch
  double weight_decay = 0.0;
};

//! theta <- theta - lr * grad.
template <class Scalar>
void sgd_step(std::span<ad::Matrix<Scalar>> params, std::span<const ad::Matrix<Scalar>> grads, SgdOptions options) {
  detail::check_lists("optim::sgd_step", params, grads);
  for (std::size_t i = 0; i < params.size(); ++i) params[i] -= static_cast<Scalar>(options.lr) * grads[i];
}

//! The optimisers' common part: groups, and the learning rate and weight decay of each.
template <class Scalar>
class GroupedOptimizer {
public:
  [[nodiscard]] std::size_t group_count() const noexcept { return groups_.size(); }
  [[nodiscard]] const ParamGroup& group(std::size_t g) const { return groups_[g]; }
  //! Replaces the single default group by groups of consecutive parameters (see ParamGroup).
  void set_groups(const std::vector<ParamGroup>& groups) { groups_.set(groups); }
  //! The learning rate of group g (of every group without g), from the next step on.
  void set_lr(double lr) {
    for (std::size_t g = 0; g < groups_.size(); ++g) groups_.set_lr(g, lr);
  }
  void set_lr(std::size_t g, double lr) { groups_.set_lr(g, lr); }
  void set_weight_decay(double weight_decay) {
    for (std::size_t g = 0; g < groups_.size(); ++g) groups_.set_weight_decay(g, weight_decay);
  }
  void set_weight_decay(std::size_t g, double weight_decay) { groups_.set_weight_decay(g, weight_decay); }
  //! Group 0's learning rate and weight decay (the only ones without set_groups).
  [[nodiscard]] double lr(std::size_t g = 0) const { return groups_[g].lr; }
  [[nodiscard]] double weight_decay(std::size_t g = 0) const { return groups_[g].weight_decay; }

protected:
  GroupedOptimizer(const char* owner, double lr, double weight_decay) : groups_(owner, lr, weight_decay) {}
  detail::ParamGroups<Scalar> groups_;
};

//! SGD as torch.optim.SGD: d = grad + weight_decay * theta; with momentum, b = d at the first step
//! and b = momentum * b + (1 - dampening) * d after; d = d + momentum * b (Nesterov) or d = b;
//! theta <- theta - lr * d.
template <class Scalar>
class Sgd : public GroupedOptimizer<Scalar> {
public:
  struct State {
    std::vector<ad::Matrix<Scalar>> momentum;  //!< empty before the first step or without momentum
  };

  explicit Sgd(SgdOptions options = {})
      : GroupedOptimizer<Scalar>("optim::Sgd", options.lr, options.weight_decay), options_(options) {
    SSMRL_REQUIRE(std::isfinite(options.momentum) && options.momentum >= 0 && std::isfinite(options.dampening) &&
                      (!options.nesterov || (options.momentum > 0 && options.dampening == 0)),
                  "optim::Sgd: momentum ", options.momentum, " must be finite and not negative, dampening ",
                  options.dampening, " finite, and Nesterov needs momentum > 0 and dampening 0");
  }

  void step(std::span<ad::Matrix<Scalar>> params, std::span<const ad::Matrix<Scalar>> grads) {
    detail::check_lists("optim::Sgd::step", params, grads);
    const auto group_of = this->groups_.assignment(params.size());
    const bool momentum = options_.momentum != 0;
    if (momentum && !state_.momentum.empty()) {
      SSMRL_REQUIRE(state_.momentum.size() == params.size(), "optim::Sgd::step: ", params.size(),
                    " parameters, the optimiser was started with ", state_.momentum.size());
      for (std::size_t i = 0; i < params.size(); ++i) {
        SSMRL_REQUIRE(state_.momentum[i].rows() == params[i].rows() && state_.momentum[i].cols() == params[i].cols(),
                      "optim::Sgd::step: parameter ", i, " is ", params[i].rows(), "x", params[i].cols(),
                      ", its momentum ", state_.momentum[i].rows(), "x", state_.momentum[i].cols());
      }
    }
    const bool first = state_.momentum.empty();
    const auto mu = static_cast<Scalar>(options_.momentum);
    const auto keep = static_cast<Scalar>(1 - options_.dampening);
    for (std::size_t i = 0; i < params.size(); ++i) {
      const auto& g = this->groups_[group_of[i]];
      ad::Matrix<Scalar> d = grads[i];
      if (g.weight_decay != 0) d += static_cast<Scalar>(g.weight_decay) * params[i];
      if (momentum) {
        if (first) {
          state_.momentum.push_back(d);
        } else {
          state_.momentum[i] = state_.momentum[i] * mu + keep * d;
        }
        if (options_.nesterov) {
          d += mu * state_.momentum[i];
        } else {
          d = state_.momentum[i];
        }
      }
      params[i] += static_cast<Scalar>(-g.lr) * d;
    }
    ++steps_;
  }

  [[nodiscard]] long steps() const noexcept { return steps_; }
  [[nodiscard]] const SgdOptions& options() const noexcept { return options_; }
  [[nodiscard]] const State& state() const noexcept { return state_; }
  //! Restores state() and the step count; buffers must be finite.
  void set_state(State state, long steps) {
    SSMRL_REQUIRE(steps >= 0, "optim::Sgd::set_state: steps ", steps, " must not be negative");
    detail::check_buffers("optim::Sgd::set_state", "momentum buffer", state.momentum, state.momentum);
    state_ = std::move(state);
    steps_ = steps;
  }

private:
  SgdOptions options_;
  State state_;
  long steps_ = 0;
};

//! How Adam applies weight decay.
enum class WeightDecayMode {
  l2,         //!< added to the gradient (torch.optim.Adam)
  decoupled,  //!< theta <- theta (1 - lr weight_decay) before the step (torch.optim.AdamW)
};

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
};

//! Adam and AdamW (by `Mode`): m = beta1 m + (1 - beta1) g, v = beta2 v + (1 - beta2) g^2,
//! theta <- theta - lr (m / c1) / (sqrt(v / c2) + eps), c1 = 1 - beta1^t, c2 = 1 - beta2^t.
//! Moments are sized on the first step and checked on every later one.
template <class Scalar, WeightDecayMode Mode>
class AdamOptimizer : public GroupedOptimizer<Scalar> {
public:
  struct State {
    std::vector<ad::Matrix<Scalar>> first_moment;   //!< empty before the first step
    std::vector<ad::Matrix<Scalar>> second_moment;
  };

  explicit AdamOptimizer(AdamOptions options = {})
      : GroupedOptimizer<Scalar>(Mode == WeightDecayMode::l2 ? "optim::Adam" : "optim::AdamW", options.lr,
                         options.weight_decay),
        options_(options) {
    SSMRL_REQUIRE(options.lr > 0 && options.beta1 >= 0 && options.beta1 < 1 && options.beta2 >= 0 &&
                      options.beta2 < 1 && options.eps > 0 && options.weight_decay >= 0,
                  name(), ": options out of range (lr ", options.lr, ", beta1 ", options.beta1, ", beta2 ",
                  options.beta2, ", eps ", options.eps, ", weight_decay ", options.weight_decay, ")");
  }

  [[nodiscard]] static constexpr const char* name() noexcept {
    return Mode == WeightDecayMode::l2 ? "optim::Adam" : "optim::AdamW";
  }

  void step(std::span<ad::Matrix<Scalar>> params, std::span<const ad::Matrix<Scalar>> grads) {
    detail::check_lists(name(), params, grads);
    const auto group_of = this->groups_.assignment(params.size());
    auto& m1 = state_.first_moment;
    auto& m2 = state_.second_moment;
    if (m1.empty()) {
      for (const auto& p : params) {
        m1.push_back(ad::Matrix<Scalar>::Zero(p.rows(), p.cols()));
        m2.push_back(ad::Matrix<Scalar>::Zero(p.rows(), p.cols()));
      }
    }
    SSMRL_REQUIRE(m1.size() == params.size(), name(), "::step: ", params.size(),
                  " parameters, the optimiser was started with ", m1.size());
    for (std::size_t i = 0; i < params.size(); ++i) {
      SSMRL_REQUIRE(m1[i].rows() == params[i].rows() && m1[i].cols() == params[i].cols(), name(), "::step: parameter ",
                    i, " is ", params[i].rows(), "x", params[i].cols(), ", the optimiser was started with ",
                    m1[i].rows(), "x", m1[i].cols());
    }
    ++steps_;
    const auto b1 = static_cast<Scalar>(options_.beta1);
    const auto b2 = static_cast<Scalar>(options_.beta2);
    const auto correction1 = static_cast<Scalar>(1 - std::pow(options_.beta1, steps_));
    const auto correction2 = static_cast<Scalar>(1 - std::pow(options_.beta2, steps_));
    const auto eps = static_cast<Scalar>(options_.eps);
    ad::Matrix<Scalar> decayed;
    for (std::size_t i = 0; i < params.size(); ++i) {
      const auto& g = this->groups_[group_of[i]];
      const auto lr = static_cast<Scalar>(g.lr);
      const ad::Matrix<Scalar>* grad = &grads[i];
      if (Mode == WeightDecayMode::l2 && g.weight_decay != 0) {
        decayed = grads[i] + static_cast<Scalar>(g.weight_decay) * params[i];
        grad = &decayed;
      }
      m1[i] = b1 * m1[i] + (1 - b1) * *grad;
      m2[i] = b2 * m2[i] + (1 - b2) * grad->cwiseAbs2();
      if (Mode == WeightDecayMode::decoupled && g.weight_decay != 0) {
        params[i] -= static_cast<Scalar>(g.lr * g.weight_decay) * params[i];
      }
      params[i].array() -= lr * (m1[i].array() / correction1) / ((m2[i].array() / correction2).sqrt() + eps);
    }
  }

  [[nodiscard]] long steps() const noexcept { return steps_; }
  [[nodiscard]] const AdamOptions& options() const noexcept { return options_; }
  [[nodiscard]] const State& state() const noexcept { return state_; }
  //! Restores state() and the step count (Adam's bias correction); both moment lists of the same
  //! shapes, finite, the second not negative, and empty exactly when `steps` is 0.
  void set_state(State state, long steps) {
    const char* fn = Mode == WeightDecayMode::l2 ? "optim::Adam::set_state" : "optim::AdamW::set_state";
    SSMRL_REQUIRE(steps >= 0 && (steps == 0) == state.first_moment.empty(), fn, ": steps ", steps, " with ",
                  state.first_moment.size(), " moments (no moments exactly before the first step)");
    detail::check_buffers(fn, "second moment", state.second_moment, state.first_moment);
    for (std::size_t i = 0; i < state.second_moment.size(); ++i) {
      SSMRL_REQUIRE((state.second_moment[i].array() >= 0).all(), fn, ": second moment ", i, " has negative entries");
    }
    state_ = std::move(state);
    steps_ = steps;
  }

private:
  AdamOptions options_;
  State state_;
  long steps_ = 0;
};

//! torch.optim.Adam: weight decay added to the gradient (0 by default, as in PyTorch).
template <class Scalar>
using Adam = AdamOptimizer<Scalar, WeightDecayMode::l2>;
//! torch.optim.AdamW: decoupled weight decay (note: 0 by default here, 1e-2 in PyTorch).
template <class Scalar>
using AdamW = AdamOptimizer<Scalar, WeightDecayMode::decoupled>;

}  // namespace ssmrl::optim
