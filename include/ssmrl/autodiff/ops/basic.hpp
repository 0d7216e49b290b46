// Elementwise arithmetic with broadcasting, reductions to and broadcasts from a shape, scalar
// arithmetic, and the operators of Var.
#pragma once

#include <span>

#include "ssmrl/autodiff/ops/common.hpp"

namespace ssmrl::ad {

template <class Scalar>
Var<Scalar> sum_to(const Var<Scalar>& x, Index rows, Index cols);
template <class Scalar>
Var<Scalar> broadcast_to(const Var<Scalar>& x, Index rows, Index cols);
template <class Scalar>
Var<Scalar> add(const Var<Scalar>& a, const Var<Scalar>& b);
template <class Scalar>
Var<Scalar> sub(const Var<Scalar>& a, const Var<Scalar>& b);
template <class Scalar>
Var<Scalar> mul(const Var<Scalar>& a, const Var<Scalar>& b);
template <class Scalar>
Var<Scalar> div(const Var<Scalar>& a, const Var<Scalar>& b);
template <class Scalar>
Var<Scalar> affine(const Var<Scalar>& x, Scalar alpha, Scalar beta);
template <class Scalar>
Var<Scalar> reciprocal(const Var<Scalar>& x, Scalar numerator = Scalar(1));

namespace detail {

// Sum over broadcast dimensions down to a target shape (rows and cols each equal to x's or 1).
template <class Scalar>
class SumToNode final : public Node<Scalar> {
public:
  SumToNode(Node<Scalar>* x, Scalar factor) : x_(x), factor_(factor) {}
  [[nodiscard]] const char* name() const noexcept override { return "sum_to"; }
  void backward() override { accumulate_broadcast(x_, this->adjoint(), factor_); }
  void backward_graph(GraphContext<Scalar>& ctx) const override {
    auto g = broadcast_to(ctx.grad(), x_->rows(), x_->cols());
    ctx.accumulate(x_, factor_ == Scalar(1) ? g : affine(g, factor_, Scalar(0)));
  }

private:
  Node<Scalar>* x_;
  Scalar factor_;
};

template <class Scalar>
class BroadcastToNode final : public Node<Scalar> {
public:
  explicit BroadcastToNode(Node<Scalar>* x) : x_(x) {}
  [[nodiscard]] const char* name() const noexcept override { return "broadcast_to"; }
  void backward() override { accumulate_reduced(x_, this->adjoint()); }
  void backward_graph(GraphContext<Scalar>& ctx) const override {
    ctx.accumulate(x_, sum_to(ctx.grad(), x_->rows(), x_->cols()));
  }

private:
  Node<Scalar>* x_;
};

template <class Scalar>
Var<Scalar> make_sum_to(const char* op, const Var<Scalar>& x, Index rows, Index cols, Scalar factor) {
  check_operand(op, "x", x);
  SSMRL_REQUIRE((rows == x.rows() || rows == 1) && (cols == x.cols() || cols == 1), "ad::", op, ": cannot reduce ",
                x.rows(), "x", x.cols(), " to ", rows, "x", cols);
  auto& tape = x.tape();
  auto* node = tape.template make_node<SumToNode<Scalar>>(rows, cols, x.requires_grad(), x.node(), factor);
  const auto xv = x.value();
  if (rows == x.rows() && cols == x.cols()) {
    node->value() = factor * xv;
  } else if (rows == 1 && cols == 1) {
    node->value()(0, 0) = factor * xv.sum();
  } else if (rows == 1) {
    node->value() = factor * xv.colwise().sum();
  } else {
    node->value() = factor * xv.rowwise().sum();
  }
  return tape.var(node);
}

enum class BinaryKind { add, sub, mul, div };

// A broadcast operand is expanded to the result's shape once, on the tape, so that forward and
// backward run on plain same-shape arrays; a_full / b_full are null for operands already in shape.
template <class Scalar, BinaryKind kind>
class BinaryNode final : public Node<Scalar> {
public:
  BinaryNode(Node<Scalar>* a, Node<Scalar>* b, const Scalar* a_full, const Scalar* b_full)
      : a_(a), b_(b), a_full_(a_full), b_full_(b_full) {}
  [[nodiscard]] const char* name() const noexcept override {
    switch (kind) {
      case BinaryKind::add: return "add";
      case BinaryKind::sub: return "sub";
      case BinaryKind::mul: return "mul";
      case BinaryKind::div: return "div";
    }
    return "binary";
  }

  void backward() override {
    using ConstMap = Eigen::Map<const Matrix<Scalar>>;
    const Index r = this->rows();
    const Index c = this->cols();
    const auto g = this->adjoint().array();
    const ConstMap a = a_full_ != nullptr ? ConstMap(a_full_, r, c) : ConstMap(a_->value().data(), r, c);
    const ConstMap b = b_full_ != nullptr ? ConstMap(b_full_, r, c) : ConstMap(b_->value().data(), r, c);
    if (a_full_ == nullptr && b_full_ == nullptr) {
      pull_back(g, a.array(), b.array(), accumulate_same{});
    } else {
      pull_back(g, a.array(), b.array(), accumulate_broadcast{});
    }
  }

  void backward_graph(GraphContext<Scalar>& ctx) const override {
    const auto& g = ctx.grad();
    const auto a = ctx.input(a_);
    const auto b = ctx.input(b_);
    auto to_a = [&](const Var<Scalar>& v) { ctx.accumulate(a_, sum_to(v, a_->rows(), a_->cols())); };
    auto to_b = [&](const Var<Scalar>& v) { ctx.accumulate(b_, sum_to(v, b_->rows(), b_->cols())); };
    if constexpr (kind == BinaryKind::add) {
      if (a_->requires_grad()) to_a(g);
      if (b_->requires_grad()) to_b(g);
    } else if constexpr (kind == BinaryKind::sub) {
      if (a_->requires_grad()) to_a(g);
      if (b_->requires_grad()) to_b(affine(g, Scalar(-1), Scalar(0)));
    } else if constexpr (kind == BinaryKind::mul) {
      if (a_->requires_grad()) to_a(mul(g, b));
      if (b_->requires_grad()) to_b(mul(g, a));
    } else {
      if (a_->requires_grad()) to_a(div(g, b));
      if (b_->requires_grad()) to_b(affine(div(mul(g, ctx.self()), b), Scalar(-1), Scalar(0)));
    }
  }

private:
  struct accumulate_same {
    template <class Expr>
    void operator()(Node<Scalar>* n, const Expr& e) const { n->accumulate(e); }
  };
  struct accumulate_broadcast {
    template <class Expr>
    void operator()(Node<Scalar>* n, const Expr& e) const { accumulate_reduced(n, e); }
  };

  template <class G, class A, class B, class Acc>
  void pull_back(const G& g, const A& a, const B& b, Acc acc) {
    if constexpr (kind == BinaryKind::add) {
      if (a_->requires_grad()) acc(a_, g);
      if (b_->requires_grad()) acc(b_, g);
    } else if constexpr (kind == BinaryKind::sub) {
      if (a_->requires_grad()) acc(a_, g);
      if (b_->requires_grad()) acc(b_, -g);
    } else if constexpr (kind == BinaryKind::mul) {
      if (a_->requires_grad()) acc(a_, g * b);
      if (b_->requires_grad()) acc(b_, g * a);
    } else {
      if (a_->requires_grad()) acc(a_, g / b);
      if (b_->requires_grad()) acc(b_, -g * a / (b * b));
    }
  }

  Node<Scalar>* a_;
  Node<Scalar>* b_;
  const Scalar* a_full_;
  const Scalar* b_full_;
};

template <BinaryKind kind, class Scalar>
Var<Scalar> make_binary(const char* op, const Var<Scalar>& a, const Var<Scalar>& b) {
  check_operand(op, "a", a);
  check_operand(op, "b", b);
  check_same_tape(op, a, b);
  const Index r = std::max(a.rows(), b.rows());
  const Index c = std::max(a.cols(), b.cols());
  SSMRL_REQUIRE(broadcasts_to(a.rows(), a.cols(), r, c) && broadcasts_to(b.rows(), b.cols(), r, c), "ad::", op,
                ": shapes ", a.rows(), "x", a.cols(), " and ", b.rows(), "x", b.cols(), " do not broadcast");
  auto& tape = a.tape();
  auto expanded = [&](const Var<Scalar>& v) -> const Scalar* {
    if (v.rows() == r && v.cols() == c) return nullptr;
    Scalar* full = tape.allocate(r * c);
    expand_into(full, r, c, v.value());
    return full;
  };
  const Scalar* a_full = expanded(a);
  const Scalar* b_full = expanded(b);
  auto* node = tape.template make_node<BinaryNode<Scalar, kind>>(r, c, any_requires_grad<Scalar>({&a, &b}),
                                                                 a.node(), b.node(), a_full, b_full);
  using ConstMap = Eigen::Map<const Matrix<Scalar>>;
  const auto x = (a_full != nullptr ? ConstMap(a_full, r, c) : ConstMap(a.value().data(), r, c)).array();
  const auto y = (b_full != nullptr ? ConstMap(b_full, r, c) : ConstMap(b.value().data(), r, c)).array();
  auto out = node->value().array();
  if constexpr (kind == BinaryKind::add) out = x + y;
  if constexpr (kind == BinaryKind::sub) out = x - y;
  if constexpr (kind == BinaryKind::mul) out = x * y;
  if constexpr (kind == BinaryKind::div) out = x / y;
  return tape.var(node);
}

// alpha * x + beta: scaling, shifting and negation share one node.
template <class Scalar>
class AffineNode final : public Node<Scalar> {
public:
  AffineNode(Node<Scalar>* x, Scalar alpha) : x_(x), alpha_(alpha) {}
  [[nodiscard]] const char* name() const noexcept override { return "affine"; }
  void backward() override { x_->accumulate(alpha_ * this->adjoint()); }
  void backward_graph(GraphContext<Scalar>& ctx) const override {
    ctx.accumulate(x_, affine(ctx.grad(), alpha_, Scalar(0)));
  }

private:
  Node<Scalar>* x_;
  Scalar alpha_;
};

// numerator / x
template <class Scalar>
class ReciprocalNode final : public Node<Scalar> {
public:
  explicit ReciprocalNode(Node<Scalar>* x) : x_(x) {}
  [[nodiscard]] const char* name() const noexcept override { return "reciprocal"; }
  void backward() override {
    x_->accumulate(-this->adjoint().array() * this->value().array() / x_->value().array());
  }
  void backward_graph(GraphContext<Scalar>& ctx) const override {
    ctx.accumulate(x_, affine(div(mul(ctx.grad(), ctx.self()), ctx.input(x_)), Scalar(-1), Scalar(0)));
  }

private:
  Node<Scalar>* x_;
};

// Sum of several variables of one shape: how gradient contributions are combined.
template <class Scalar>
class AddNNode final : public Node<Scalar> {
public:
  AddNNode(Node<Scalar>** inputs, std::size_t count) : inputs_(inputs), count_(count) {}
  [[nodiscard]] const char* name() const noexcept override { return "add_n"; }
  void backward() override {
    for (std::size_t i = 0; i < count_; ++i) {
      if (inputs_[i]->requires_grad()) inputs_[i]->accumulate(this->adjoint());
    }
  }
  void backward_graph(GraphContext<Scalar>& ctx) const override {
    for (std::size_t i = 0; i < count_; ++i) ctx.accumulate(inputs_[i], ctx.grad());
  }

private:
  Node<Scalar>** inputs_;
  std::size_t count_;
};

}  // namespace detail

//! Elementwise a + b, a - b, a * b, a / b. Shapes broadcast: each dimension of an operand equals
//! the result's or is 1 (a column vector is repeated across columns, a row vector across rows).
template <class Scalar>
Var<Scalar> add(const Var<Scalar>& a, const Var<Scalar>& b) {
  return detail::make_binary<detail::BinaryKind::add>("add", a, b);
}
template <class Scalar>
Var<Scalar> sub(const Var<Scalar>& a, const Var<Scalar>& b) {
  return detail::make_binary<detail::BinaryKind::sub>("sub", a, b);
}
template <class Scalar>
Var<Scalar> mul(const Var<Scalar>& a, const Var<Scalar>& b) {
  return detail::make_binary<detail::BinaryKind::mul>("mul", a, b);
}
template <class Scalar>
Var<Scalar> div(const Var<Scalar>& a, const Var<Scalar>& b) {
  return detail::make_binary<detail::BinaryKind::div>("div", a, b);
}

//! Sums `x` over the dimensions where the target shape has 1 (the adjoint of a broadcast).
template <class Scalar>
Var<Scalar> sum_to(const Var<Scalar>& x, Index rows, Index cols) {
  if (x.rows() == rows && x.cols() == cols) return x;
  return detail::make_sum_to("sum_to", x, rows, cols, Scalar(1));
}

//! Repeats `x` to the shape rows x cols; each dimension of x must equal the target's or be 1.
template <class Scalar>
Var<Scalar> broadcast_to(const Var<Scalar>& x, Index rows, Index cols) {
  detail::check_operand("broadcast_to", "x", x);
  if (x.rows() == rows && x.cols() == cols) return x;
  SSMRL_REQUIRE(detail::broadcasts_to(x.rows(), x.cols(), rows, cols), "ad::broadcast_to: cannot broadcast ",
                x.rows(), "x", x.cols(), " to ", rows, "x", cols);
  auto& tape = x.tape();
  auto* node = tape.template make_node<detail::BroadcastToNode<Scalar>>(rows, cols, x.requires_grad(), x.node());
  const auto xv = x.value();
  detail::expand_into(node->value().data(), rows, cols, Eigen::Map<const Matrix<Scalar>>(xv.data(), xv.rows(), xv.cols()));
  return tape.var(node);
}

//! alpha * x + beta, elementwise.
template <class Scalar>
Var<Scalar> affine(const Var<Scalar>& x, Scalar alpha, Scalar beta) {
  detail::check_operand("affine", "x", x);
  auto& tape = x.tape();
  auto* node = tape.template make_node<detail::AffineNode<Scalar>>(x.rows(), x.cols(), x.requires_grad(), x.node(),
                                                                   alpha);
  node->value().array() = alpha * x.value().array() + beta;
  return tape.var(node);
}

//! numerator / x, elementwise.
template <class Scalar>
Var<Scalar> reciprocal(const Var<Scalar>& x, Scalar numerator) {
  detail::check_operand("reciprocal", "x", x);
  auto& tape = x.tape();
  auto* node = tape.template make_node<detail::ReciprocalNode<Scalar>>(x.rows(), x.cols(), x.requires_grad(), x.node());
  node->value().array() = numerator / x.value().array();
  return tape.var(node);
}

//! Sum of variables of one shape.
template <class Scalar>
Var<Scalar> add_n(std::span<const Var<Scalar>> terms) {
  SSMRL_REQUIRE(!terms.empty(), "ad::add_n: no terms given");
  if (terms.size() == 1) return terms[0];
  auto& tape = terms[0].tape();
  bool requires_grad = false;
  for (std::size_t i = 0; i < terms.size(); ++i) {
    detail::check_operand("add_n", "terms", terms[i]);
    detail::check_same_tape("add_n", terms[0], terms[i]);
    SSMRL_REQUIRE(terms[i].rows() == terms[0].rows() && terms[i].cols() == terms[0].cols(), "ad::add_n: term ", i,
                  " is ", terms[i].rows(), "x", terms[i].cols(), ", term 0 is ", terms[0].rows(), "x", terms[0].cols());
    requires_grad = requires_grad || terms[i].requires_grad();
  }
  auto** inputs = tape.template allocate_array<Node<Scalar>*>(terms.size());
  for (std::size_t i = 0; i < terms.size(); ++i) inputs[i] = terms[i].node();
  auto* node = tape.template make_node<detail::AddNNode<Scalar>>(terms[0].rows(), terms[0].cols(), requires_grad,
                                                                  inputs, terms.size());
  auto out = node->value();
  out = terms[0].value();
  for (std::size_t i = 1; i < terms.size(); ++i) out += terms[i].value();
  return tape.var(node);
}

template <class Scalar>
Var<Scalar> operator+(const Var<Scalar>& a, const Var<Scalar>& b) { return add(a, b); }
template <class Scalar>
Var<Scalar> operator-(const Var<Scalar>& a, const Var<Scalar>& b) { return sub(a, b); }
template <class Scalar>
Var<Scalar> operator-(const Var<Scalar>& x) { return affine(x, Scalar(-1), Scalar(0)); }
// Var * Var is deliberately absent: use mul() (elementwise) or matmul() (matrix product).
template <class Scalar>
Var<Scalar> operator+(const Var<Scalar>& x, std::type_identity_t<Scalar> s) { return affine(x, Scalar(1), s); }
template <class Scalar>
Var<Scalar> operator+(std::type_identity_t<Scalar> s, const Var<Scalar>& x) { return affine(x, Scalar(1), s); }
template <class Scalar>
Var<Scalar> operator-(const Var<Scalar>& x, std::type_identity_t<Scalar> s) { return affine(x, Scalar(1), -s); }
template <class Scalar>
Var<Scalar> operator-(std::type_identity_t<Scalar> s, const Var<Scalar>& x) { return affine(x, Scalar(-1), s); }
template <class Scalar>
Var<Scalar> operator*(const Var<Scalar>& x, std::type_identity_t<Scalar> s) { return affine(x, s, Scalar(0)); }
template <class Scalar>
Var<Scalar> operator*(std::type_identity_t<Scalar> s, const Var<Scalar>& x) { return affine(x, s, Scalar(0)); }
template <class Scalar>
Var<Scalar> operator/(const Var<Scalar>& x, std::type_identity_t<Scalar> s) { return affine(x, Scalar(1) / s, Scalar(0)); }
template <class Scalar>
Var<Scalar> operator/(std::type_identity_t<Scalar> s, const Var<Scalar>& x) { return reciprocal(x, s); }
template <class Scalar>
Var<Scalar> operator/(const Var<Scalar>& a, const Var<Scalar>& b) { return div(a, b); }

}  // namespace ssmrl::ad
