// One of the optimisers chosen at run time (a configuration's or a command line's choice), with the
// groups' interface they share and their state as one list of buffers for checkpoints.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "ssmrl/optim/adam.hpp"

namespace ssmrl::optim {

enum class OptimizerKind { sgd, adam, adamw };

template <class = void>
const char* optimizer_name(OptimizerKind k) {
  switch (k) {
    case OptimizerKind::sgd: return "sgd";
    case OptimizerKind::adam: return "adam";
    case OptimizerKind::adamw: return "adamw";
  }
  return "?";
}

//! "sgd", "adam" or "adamw"; anything else is refused with the choices.
template <class = void>
OptimizerKind parse_optimizer_kind(std::string_view name, std::string_view caller) {
  for (const auto k : {OptimizerKind::sgd, OptimizerKind::adam, OptimizerKind::adamw}) {
    if (name == optimizer_name(k)) return k;
  }
  SSMRL_THROW(::ssmrl::InvalidArgument,
              ::ssmrl::detail::message(caller, ": optimizer '", name, "' is not one of sgd, adam, adamw"));
}

//! What AnyOptimizer is built from: the kind and the hyper-parameters the kinds take (momentum only
//! for SGD; Adam's betas and eps at PyTorch's defaults).
struct OptimizerChoice {
  OptimizerKind kind = OptimizerKind::adam;
  double lr = 1e-3;
  double weight_decay = 0.0;
  double momentum = 0.9;  //!< SGD
  bool operator==(const OptimizerChoice&) const = default;
};

//! Sgd, Adam or AdamW behind one interface: step, the learning rate and weight decay (of every group
//! or of one), the step count, and the state as buffers (SGD: the momentum buffers; Adam and AdamW:
//! the first moments, then the second).
template <class Scalar>
class AnyOptimizer {
public:
  AnyOptimizer() : AnyOptimizer(OptimizerChoice{}) {}
  explicit AnyOptimizer(const OptimizerChoice& c) : kind_(c.kind) {
    switch (c.kind) {
      case OptimizerKind::sgd:
        v_ = Sgd<Scalar>({.lr = c.lr, .momentum = c.momentum, .weight_decay = c.weight_decay});
        break;
      case OptimizerKind::adam: v_ = Adam<Scalar>({.lr = c.lr, .weight_decay = c.weight_decay}); break;
      case OptimizerKind::adamw: v_ = AdamW<Scalar>({.lr = c.lr, .weight_decay = c.weight_decay}); break;
    }
  }

  [[nodiscard]] OptimizerKind kind() const noexcept { return kind_; }
  void step(std::span<ad::Matrix<Scalar>> params, std::span<const ad::Matrix<Scalar>> grads) {
    std::visit([&](auto& o) { o.step(params, grads); }, v_);
  }
  [[nodiscard]] double lr(std::size_t g = 0) const {
    return std::visit([&](const auto& o) { return o.lr(g); }, v_);
  }
  [[nodiscard]] double weight_decay(std::size_t g = 0) const {
    return std::visit([&](const auto& o) { return o.weight_decay(g); }, v_);
  }
  void set_lr(double lr) {
    std::visit([&](auto& o) { o.set_lr(lr); }, v_);
  }
  void set_lr(std::size_t g, double lr) {
    std::visit([&](auto& o) { o.set_lr(g, lr); }, v_);
  }
  void set_weight_decay(double w) {
    std::visit([&](auto& o) { o.set_weight_decay(w); }, v_);
  }
  void set_weight_decay(std::size_t g, double w) {
    std::visit([&](auto& o) { o.set_weight_decay(g, w); }, v_);
  }
  void set_groups(const std::vector<ParamGroup>& groups) {
    std::visit([&](auto& o) { o.set_groups(groups); }, v_);
  }
  [[nodiscard]] std::size_t group_count() const {
    return std::visit([](const auto& o) { return o.group_count(); }, v_);
  }
  [[nodiscard]] long steps() const {
    return std::visit([](const auto& o) { return o.steps(); }, v_);
  }

  //! The state as buffers (see the class comment); empty before the first step.
  [[nodiscard]] std::vector<ad::Matrix<Scalar>> buffers() const {
    if (const auto* sgd = std::get_if<Sgd<Scalar>>(&v_)) return sgd->state().momentum;
    return std::visit(
        [](const auto& o) {
          std::vector<ad::Matrix<Scalar>> out;
          if constexpr (!std::is_same_v<std::decay_t<decltype(o)>, Sgd<Scalar>>) {
            out = o.state().first_moment;
            out.insert(out.end(), o.state().second_moment.begin(), o.state().second_moment.end());
          }
          return out;
        },
        v_);
  }
  //! Restores buffers() and the step count, checked by the optimiser and, where `params` are given,
  //! against their shapes (one buffer per parameter for SGD, two for Adam); nothing changes on error.
  void set_buffers(std::vector<ad::Matrix<Scalar>> buffers, long steps,
                   std::span<const ad::Matrix<Scalar>> params = {}) {
    if (!params.empty() && !buffers.empty()) {
      const std::size_t per = kind_ == OptimizerKind::sgd ? 1 : 2;
      SSMRL_REQUIRE(buffers.size() == per * params.size(), "optim::AnyOptimizer::set_buffers: ", buffers.size(),
                    " buffers for ", params.size(), " parameters; ", optimizer_name(kind_), " keeps ", per,
                    " per parameter");
      for (std::size_t i = 0; i < buffers.size(); ++i) {
        const auto& p = params[i % params.size()];
        SSMRL_REQUIRE(buffers[i].rows() == p.rows() && buffers[i].cols() == p.cols(),
                      "optim::AnyOptimizer::set_buffers: buffer ", i, " is ", buffers[i].rows(), "x",
                      buffers[i].cols(), ", its parameter ", i % params.size(), " is ", p.rows(), "x", p.cols());
      }
    }
    if (auto* sgd = std::get_if<Sgd<Scalar>>(&v_)) {
      sgd->set_state({std::move(buffers)}, steps);
      return;
    }
    SSMRL_REQUIRE(buffers.size() % 2 == 0, "optim::AnyOptimizer::set_buffers: ", buffers.size(),
                  " buffers; Adam's state is first and second moments, as many of each");
    const auto half = static_cast<std::ptrdiff_t>(buffers.size() / 2);
    std::visit(
        [&](auto& o) {
          if constexpr (!std::is_same_v<std::decay_t<decltype(o)>, Sgd<Scalar>>) {
            typename std::decay_t<decltype(o)>::State s;
            s.first_moment.assign(std::make_move_iterator(buffers.begin()),
                                  std::make_move_iterator(buffers.begin() + half));
            s.second_moment.assign(std::make_move_iterator(buffers.begin() + half),
                                   std::make_move_iterator(buffers.end()));
            o.set_state(std::move(s), steps);
          }
        },
        v_);
  }

  //! The optimiser itself, where a caller needs its own interface.
  template <class O>
  [[nodiscard]] const O* get() const noexcept {
    return std::get_if<O>(&v_);
  }

private:
  OptimizerKind kind_;
  std::variant<Sgd<Scalar>, Adam<Scalar>, AdamW<Scalar>> v_;
};

}  // namespace ssmrl::optim
