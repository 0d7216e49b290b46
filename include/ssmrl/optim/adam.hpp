// First-order optimisers over a list of parameter matrices: SGD and Adam (with decoupled weight
// decay, as AdamW, when asked).
#pragma once

#include <cmath>
#include <span>
#include <vector>

#include "ssmrl/autodiff/tape.hpp"
#include "ssmrl/core/error.hpp"

namespace ssmrl::optim {

namespace detail {
template <class Scalar>
void check_lists(const char* op, std::span<ad::Matrix<Scalar>> params, std::span<const ad::Matrix<Scalar>> grads) {
  SSMRL_REQUIRE(params.size() == grads.size(), op, ": ", params.size(), " parameters but ", grads.size(), " gradients");
  for (std::size_t i = 0; i < params.size(); ++i) {
    SSMRL_REQUIRE(params[i].rows() == grads[i].rows() && params[i].cols() == grads[i].cols(), op, ": parameter ", i,
                  " is ", params[i].rows(), "x", params[i].cols(), ", its gradient ", grads[i].rows(), "x",
                  grads[i].cols());
  }
}
}  // namespace detail

struct SgdOptions {
  double lr = 1e-2;
};

//! theta <- theta - lr * grad.
template <class Scalar>
void sgd_step(std::span<ad::Matrix<Scalar>> params, std::span<const ad::Matrix<Scalar>> grads, SgdOptions options) {
  detail::check_lists("optim::sgd_step", params, grads);
  for (std::size_t i = 0; i < params.size(); ++i) params[i] -= static_cast<Scalar>(options.lr) * grads[i];
}

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;  //!< decoupled (AdamW): theta <- theta - lr * weight_decay * theta
};

//! Adam; its moment estimates are sized on the first step and checked on every later one.
template <class Scalar>
class Adam {
public:
  explicit Adam(AdamOptions options = {}) : options_(options) {
    SSMRL_REQUIRE(options.lr > 0 && options.beta1 >= 0 && options.beta1 < 1 && options.beta2 >= 0 &&
                      options.beta2 < 1 && options.eps > 0 && options.weight_decay >= 0,
                  "optim::Adam: options out of range (lr ", options.lr, ", beta1 ", options.beta1, ", beta2 ",
                  options.beta2, ", eps ", options.eps, ", weight_decay ", options.weight_decay, ")");
  }

  void step(std::span<ad::Matrix<Scalar>> params, std::span<const ad::Matrix<Scalar>> grads) {
    detail::check_lists("optim::Adam::step", params, grads);
    if (first_moment_.empty()) {
      for (const auto& p : params) {
        first_moment_.push_back(ad::Matrix<Scalar>::Zero(p.rows(), p.cols()));
        second_moment_.push_back(ad::Matrix<Scalar>::Zero(p.rows(), p.cols()));
      }
    }
    SSMRL_REQUIRE(first_moment_.size() == params.size(), "optim::Adam::step: ", params.size(),
                  " parameters, the optimiser was started with ", first_moment_.size());
    for (std::size_t i = 0; i < params.size(); ++i) {
      SSMRL_REQUIRE(first_moment_[i].rows() == params[i].rows() && first_moment_[i].cols() == params[i].cols(),
                    "optim::Adam::step: parameter ", i, " is ", params[i].rows(), "x", params[i].cols(),
                    ", the optimiser was started with ", first_moment_[i].rows(), "x", first_moment_[i].cols());
    }
    ++steps_;
    const auto b1 = static_cast<Scalar>(options_.beta1);
    const auto b2 = static_cast<Scalar>(options_.beta2);
    const auto correction1 = static_cast<Scalar>(1 - std::pow(options_.beta1, steps_));
    const auto correction2 = static_cast<Scalar>(1 - std::pow(options_.beta2, steps_));
    const auto lr = static_cast<Scalar>(options_.lr);
    const auto eps = static_cast<Scalar>(options_.eps);
    const auto decay = static_cast<Scalar>(options_.lr * options_.weight_decay);
    for (std::size_t i = 0; i < params.size(); ++i) {
      first_moment_[i] = b1 * first_moment_[i] + (1 - b1) * grads[i];
      second_moment_[i] = b2 * second_moment_[i] + (1 - b2) * grads[i].cwiseAbs2();
      if (decay > 0) params[i] -= decay * params[i];
      params[i].array() -= lr * (first_moment_[i].array() / correction1) /
                           ((second_moment_[i].array() / correction2).sqrt() + eps);
    }
  }

  [[nodiscard]] long steps() const noexcept { return steps_; }
  //! Changes the learning rate from the next step on (schedules).
  void set_lr(double lr) {
    SSMRL_REQUIRE(lr >= 0 && std::isfinite(lr), "optim::Adam::set_lr: lr ", lr, " must be finite and not negative");
    options_.lr = lr;
  }
  [[nodiscard]] const AdamOptions& options() const noexcept { return options_; }

private:
  AdamOptions options_;
  std::vector<ad::Matrix<Scalar>> first_moment_;
  std::vector<ad::Matrix<Scalar>> second_moment_;
  long steps_ = 0;
};

}  // namespace ssmrl::optim
