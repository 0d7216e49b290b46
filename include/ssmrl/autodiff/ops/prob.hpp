// Per-sample (per-column) distributions: softmax, log_softmax, logsumexp, the log-probability of
// one chosen entry per column, a diagonal Gaussian log-density and the categorical entropy.
#pragma once

#include <algorithm>
#include <cmath>
#include <numbers>
#include <span>

#include "ssmrl/autodiff/ops/reduce.hpp"
#include "ssmrl/autodiff/ops/unary.hpp"

namespace ssmrl::ad {

template <class Scalar> Var<Scalar> softmax(const Var<Scalar>& x);
template <class Scalar> Var<Scalar> log_softmax(const Var<Scalar>& x);
template <class Scalar> Var<Scalar> pick(const Var<Scalar>& x, std::span<const int> rows);
template <class Scalar> Var<Scalar> scatter(const Var<Scalar>& x, std::span<const int> rows, Index out_rows);

//! log(sum(exp(x))) of a vector (one column of logits), without overflow: max + log(sum(exp(x - max))).
template <class Derived>
typename Derived::Scalar log_sum_exp_of(const Eigen::MatrixBase<Derived>& x) {
  const auto m = x.maxCoeff();
  return m + std::log((x.array() - m).exp().sum());
}

namespace detail {

enum class SoftmaxKind { softmax, log_softmax, logsumexp };

template <class Scalar, SoftmaxKind kind>
class SoftmaxNode final : public Node<Scalar> {
public:
  explicit SoftmaxNode(Node<Scalar>* x) : x_(x) {}
  [[nodiscard]] const char* name() const noexcept override {
    return kind == SoftmaxKind::softmax ? "softmax" : kind == SoftmaxKind::log_softmax ? "log_softmax" : "logsumexp";
  }
  void backward() override {
    const auto g = this->adjoint();
    const auto y = this->value();
    if constexpr (kind == SoftmaxKind::softmax) {
      // dx = y * (g - sum(g * y))
      x_->accumulate(y.array() *
                     (g.array().rowwise() - (g.array() * y.array()).colwise().sum()));
    } else if constexpr (kind == SoftmaxKind::log_softmax) {
      // dx = g - softmax(x) * sum(g)
      x_->accumulate(g.array() - y.array().exp().rowwise() * g.array().colwise().sum());
    } else {
      // dx = softmax(x) * g
      x_->accumulate((x_->value().array().rowwise() - y.array().row(0)).exp().rowwise() * g.array().row(0));
    }
  }
  void backward_graph(GraphContext<Scalar>& ctx) const override {
    const auto& g = ctx.grad();
    const auto& y = ctx.self();
    if constexpr (kind == SoftmaxKind::softmax) {
      ctx.accumulate(x_, mul(y, sub(g, colwise_sum(mul(g, y)))));
    } else if constexpr (kind == SoftmaxKind::log_softmax) {
      ctx.accumulate(x_, sub(g, mul(exp(y), colwise_sum(g))));
    } else {
      ctx.accumulate(x_, mul(exp(sub(ctx.input(x_), y)), g));
    }
  }

private:
  Node<Scalar>* x_;
};

template <SoftmaxKind kind, class Scalar>
Var<Scalar> make_softmax(const char* op, const Var<Scalar>& x) {
  check_operand(op, "x", x);
  SSMRL_REQUIRE(x.rows() > 0, "ad::", op, ": input has no rows");
  auto& tape = x.tape();
  const Index rows = kind == SoftmaxKind::logsumexp ? 1 : x.rows();
  auto* node = tape.template make_node<SoftmaxNode<Scalar, kind>>(rows, x.cols(), x.requires_grad(), x.node());
  const auto xv = x.value();
  auto out = node->value();
  for (Index j = 0; j < xv.cols(); ++j) {
    const Scalar lse = log_sum_exp_of(xv.col(j));
    if constexpr (kind == SoftmaxKind::softmax) out.col(j) = (xv.col(j).array() - lse).exp().matrix();
    if constexpr (kind == SoftmaxKind::log_softmax) out.col(j) = (xv.col(j).array() - lse).matrix();
    if constexpr (kind == SoftmaxKind::logsumexp) out(0, j) = lse;
  }
  return tape.var(node);
}

template <class Scalar>
const int* copy_rows(const char* op, Tape<Scalar>& tape, std::span<const int> rows, Index cols, Index limit) {
  SSMRL_REQUIRE(static_cast<Index>(rows.size()) == cols, "ad::", op, ": ", rows.size(), " row indices for ", cols,
                " columns");
  for (std::size_t j = 0; j < rows.size(); ++j) {
    SSMRL_REQUIRE(rows[j] >= 0 && rows[j] < limit, "ad::", op, ": row index ", rows[j], " in column ", j,
                  " is outside [0, ", limit, ")");
  }
  int* copy = tape.template allocate_array<int>(rows.size());
  std::copy(rows.begin(), rows.end(), copy);
  return copy;
}

// out(0, j) = x(rows[j], j)
template <class Scalar>
class PickNode final : public Node<Scalar> {
public:
  PickNode(Node<Scalar>* x, const int* rows) : x_(x), rows_(rows) {}
  [[nodiscard]] const char* name() const noexcept override { return "pick"; }
  void backward() override {
    auto gx = x_->adjoint_for_update();
    const auto g = this->adjoint();
    for (Index j = 0; j < this->cols(); ++j) gx(rows_[j], j) += g(0, j);
  }
  void backward_graph(GraphContext<Scalar>& ctx) const override {
    ctx.accumulate(x_, scatter(ctx.grad(), std::span<const int>(rows_, static_cast<std::size_t>(this->cols())),
                               x_->rows()));
  }

private:
  Node<Scalar>* x_;
  const int* rows_;
};

// out = zeros, out(rows[j], j) = x(0, j): the adjoint of pick.
template <class Scalar>
class ScatterNode final : public Node<Scalar> {
public:
  ScatterNode(Node<Scalar>* x, const int* rows) : x_(x), rows_(rows) {}
  [[nodiscard]] const char* name() const noexcept override { return "scatter"; }
  void backward() override {
    auto gx = x_->adjoint_for_update();
    const auto g = this->adjoint();
    for (Index j = 0; j < this->cols(); ++j) gx(0, j) += g(rows_[j], j);
  }
  void backward_graph(GraphContext<Scalar>& ctx) const override {
    ctx.accumulate(x_, pick(ctx.grad(), std::span<const int>(rows_, static_cast<std::size_t>(this->cols()))));
  }

private:
  Node<Scalar>* x_;
  const int* rows_;
};

template <class Scalar>
class GaussianLogProbNode final : public Node<Scalar> {
public:
  GaussianLogProbNode(Node<Scalar>* mean, Node<Scalar>* log_std, Node<Scalar>* action)
      : mean_(mean), log_std_(log_std), action_(action) {}
  [[nodiscard]] const char* name() const noexcept override { return "gaussian_log_prob"; }
  void backward() override {
    const Index r = mean_->rows();
    const Index c = mean_->cols();
    const auto inv_std = (-broadcast(log_std_->value(), r, c).array()).exp();
    const auto z = (action_->value().array() - mean_->value().array()) * inv_std;
    const auto g = this->adjoint().array().replicate(r, 1);
    // d/dmean = g z / std, d/daction = -g z / std, d/dlog_std = g (z^2 - 1)
    if (mean_->requires_grad()) mean_->accumulate(g * z * inv_std);
    if (action_->requires_grad()) action_->accumulate(-g * z * inv_std);
    if (log_std_->requires_grad()) accumulate_reduced(log_std_, g * (z.square() - 1));
  }
  void backward_graph(GraphContext<Scalar>& ctx) const override {
    const Index r = mean_->rows();
    const Index c = mean_->cols();
    const auto inv_std = exp(-broadcast_to(ctx.input(log_std_), r, c));
    const auto z = mul(sub(ctx.input(action_), ctx.input(mean_)), inv_std);
    const auto g = broadcast_to(ctx.grad(), r, c);
    if (mean_->requires_grad() || action_->requires_grad()) {
      const auto pull = mul(g, mul(z, inv_std));
      ctx.accumulate(mean_, pull);
      if (action_->requires_grad()) ctx.accumulate(action_, -pull);
    }
    if (log_std_->requires_grad()) {
      ctx.accumulate(log_std_, sum_to(mul(g, square(z) - Scalar(1)), log_std_->rows(), log_std_->cols()));
    }
  }

private:
  Node<Scalar>* mean_;
  Node<Scalar>* log_std_;
  Node<Scalar>* action_;
};

// H = -sum_i p_i log p_i per column, from logits; dH/dx = -p (log p + H).
template <class Scalar>
class CategoricalEntropyNode final : public Node<Scalar> {
public:
  CategoricalEntropyNode(Node<Scalar>* logits, Scalar* log_p) : logits_(logits), log_p_(log_p) {}
  [[nodiscard]] const char* name() const noexcept override { return "categorical_entropy"; }
  void backward() override {
    const Eigen::Map<const Matrix<Scalar>> log_p(log_p_, logits_->rows(), logits_->cols());
    const auto p_times_sum = log_p.array().exp() * (log_p.array().rowwise() + this->value().array().row(0));
    logits_->accumulate(-(p_times_sum.rowwise() * this->adjoint().array().row(0)));
  }
  void backward_graph(GraphContext<Scalar>& ctx) const override {
    const auto log_p = log_softmax(ctx.input(logits_));
    ctx.accumulate(logits_, -mul(ctx.grad(), mul(exp(log_p), add(log_p, ctx.self()))));
  }

private:
  Node<Scalar>* logits_;
  Scalar* log_p_;
};

}  // namespace detail

//! Softmax of each column (each sample's logits).
template <class Scalar>
Var<Scalar> softmax(const Var<Scalar>& x) {
  return detail::make_softmax<detail::SoftmaxKind::softmax>("softmax", x);
}
//! Log-softmax of each column, computed stably.
template <class Scalar>
Var<Scalar> log_softmax(const Var<Scalar>& x) {
  return detail::make_softmax<detail::SoftmaxKind::log_softmax>("log_softmax", x);
}
//! log(sum(exp(column))) of each column, 1 x cols.
template <class Scalar>
Var<Scalar> logsumexp(const Var<Scalar>& x) {
  return detail::make_softmax<detail::SoftmaxKind::logsumexp>("logsumexp", x);
}

//! One entry per column, out(0, j) = x(rows[j], j): the log-probability of the action taken.
template <class Scalar>
Var<Scalar> pick(const Var<Scalar>& x, std::span<const int> rows) {
  detail::check_operand("pick", "x", x);
  auto& tape = x.tape();
  const int* copy = detail::copy_rows("pick", tape, rows, x.cols(), x.rows());
  auto* node = tape.template make_node<detail::PickNode<Scalar>>(1, x.cols(), x.requires_grad(), x.node(), copy);
  const auto xv = x.value();
  auto out = node->value();
  for (Index j = 0; j < x.cols(); ++j) out(0, j) = xv(copy[j], j);
  return tape.var(node);
}

//! A out_rows x cols matrix of zeros with x(0, j) placed at row rows[j] of column j.
template <class Scalar>
Var<Scalar> scatter(const Var<Scalar>& x, std::span<const int> rows, Index out_rows) {
  detail::check_operand("scatter", "x", x);
  SSMRL_REQUIRE(x.rows() == 1, "ad::scatter: x is ", x.rows(), "x", x.cols(), ", expected one row");
  auto& tape = x.tape();
  const int* copy = detail::copy_rows("scatter", tape, rows, x.cols(), out_rows);
  auto* node =
      tape.template make_node<detail::ScatterNode<Scalar>>(out_rows, x.cols(), x.requires_grad(), x.node(), copy);
  auto out = node->value();
  out.setZero();
  const auto xv = x.value();
  for (Index j = 0; j < x.cols(); ++j) out(copy[j], j) = xv(0, j);
  return tape.var(node);
}

//! Log-density of a diagonal Gaussian per column, 1 x cols: sum over rows of
//! -0.5 z^2 - log_std - 0.5 log(2 pi), z = (action - mean) / exp(log_std). log_std is a x cols,
//! a x 1 (state-independent) or 1 x 1.
template <class Scalar>
Var<Scalar> gaussian_log_prob(const Var<Scalar>& mean, const Var<Scalar>& log_std, const Var<Scalar>& action) {
  detail::check_operand("gaussian_log_prob", "mean", mean);
  detail::check_operand("gaussian_log_prob", "log_std", log_std);
  detail::check_operand("gaussian_log_prob", "action", action);
  detail::check_same_tape("gaussian_log_prob", mean, log_std);
  detail::check_same_tape("gaussian_log_prob", mean, action);
  const Index r = mean.rows();
  const Index c = mean.cols();
  SSMRL_REQUIRE(action.rows() == r && action.cols() == c, "ad::gaussian_log_prob: action is ", action.rows(), "x",
                action.cols(), ", mean is ", r, "x", c);
  SSMRL_REQUIRE(detail::broadcasts_to(log_std.rows(), log_std.cols(), r, c), "ad::gaussian_log_prob: log_std is ",
                log_std.rows(), "x", log_std.cols(), ", which does not broadcast to the mean's ", r, "x", c);
  auto& tape = mean.tape();
  auto* node = tape.template make_node<detail::GaussianLogProbNode<Scalar>>(
      1, c, detail::any_requires_grad<Scalar>({&mean, &log_std, &action}), mean.node(), log_std.node(), action.node());
  const auto ls = detail::broadcast(log_std.value(), r, c).array();
  const auto z = (action.value().array() - mean.value().array()) * (-ls).exp();
  const Scalar half_log_two_pi = Scalar(0.5) * std::log(Scalar(2) * std::numbers::pi_v<Scalar>);
  node->value() = (Scalar(-0.5) * z.square() - ls - half_log_two_pi).colwise().sum().matrix();
  return tape.var(node);
}

//! Entropy of the categorical distribution given by each column of logits, 1 x cols.
template <class Scalar>
Var<Scalar> categorical_entropy(const Var<Scalar>& logits) {
  detail::check_operand("categorical_entropy", "logits", logits);
  SSMRL_REQUIRE(logits.rows() > 0, "ad::categorical_entropy: logits have no rows");
  auto& tape = logits.tape();
  Scalar* log_p = tape.allocate(logits.size());
  Eigen::Map<Matrix<Scalar>> lp(log_p, logits.rows(), logits.cols());
  const auto xv = logits.value();
  for (Index j = 0; j < xv.cols(); ++j) {
    const Scalar lse = log_sum_exp_of(xv.col(j));
    lp.col(j) = (xv.col(j).array() - lse).matrix();
  }
  auto* node = tape.template make_node<detail::CategoricalEntropyNode<Scalar>>(1, logits.cols(),
                                                                              logits.requires_grad(), logits.node(),
                                                                              log_p);
  node->value() = -(lp.array().exp() * lp.array()).colwise().sum().matrix();
  return tape.var(node);
}

}  // namespace ssmrl::ad
