// Elementwise functions: tanh, sigmoid, relu, exp, expm1, log, softplus, square, sqrt, clamp.
#pragma once

#include <cmath>

#include "ssmrl/autodiff/ops/basic.hpp"

namespace ssmrl::ad {

template <class Scalar> Var<Scalar> tanh(const Var<Scalar>& x);
template <class Scalar> Var<Scalar> sigmoid(const Var<Scalar>& x);
template <class Scalar> Var<Scalar> exp(const Var<Scalar>& x);
template <class Scalar> Var<Scalar> square(const Var<Scalar>& x);

namespace detail {

// A unary function is a small trivially copyable type with:
//   name; forward(x) -> array expression; derivative(x, y) -> array expression (dy/dx elementwise);
//   derivative_graph(ctx, x, y) -> Var (dy/dx as a variable, for create_graph).
template <class Scalar, class Fn>
class UnaryNode final : public Node<Scalar> {
public:
  UnaryNode(Node<Scalar>* x, Fn fn) : x_(x), fn_(fn) {}
  [[nodiscard]] const char* name() const noexcept override { return Fn::name; }
  void backward() override {
    x_->accumulate(this->adjoint().array() * fn_.derivative(x_->value().array(), this->value().array()));
  }
  void backward_graph(GraphContext<Scalar>& ctx) const override {
    ctx.accumulate(x_, mul(ctx.grad(), fn_.derivative_graph(ctx, ctx.input(x_), ctx.self())));
  }

private:
  Node<Scalar>* x_;
  Fn fn_;
};

template <class Scalar, class Fn>
Var<Scalar> make_unary(const Var<Scalar>& x, Fn fn) {
  check_operand(Fn::name, "x", x);
  auto& tape = x.tape();
  auto* node = tape.template make_node<UnaryNode<Scalar, Fn>>(x.rows(), x.cols(), x.requires_grad(), x.node(), fn);
  node->value().array() = fn.forward(x.value().array());
  return tape.var(node);
}

// A 0/1 mask of where `x` satisfies `pred`, as a constant: piecewise-linear functions have zero
// second derivative almost everywhere.
template <class Scalar, class Pred>
Var<Scalar> mask_constant(const Var<Scalar>& x, Pred pred) {
  Var<Scalar> m = x.tape().constant(x.rows(), x.cols(), Scalar(0));
  auto out = m.node()->value();
  const auto xv = x.value();
  for (Index i = 0; i < xv.size(); ++i) out.data()[i] = pred(xv.data()[i]) ? Scalar(1) : Scalar(0);
  return m;
}

struct TanhFn {
  static constexpr const char* name = "tanh";
  template <class X> static auto forward(const X& x) { return x.tanh(); }
  template <class X, class Y> static auto derivative(const X&, const Y& y) { return 1 - y.square(); }
  template <class Ctx, class V> static V derivative_graph(Ctx&, const V&, const V& y) {
    using S = typename V::scalar_type;
    return affine(square(y), S(-1), S(1));
  }
};
struct SigmoidFn {
  static constexpr const char* name = "sigmoid";
  template <class X> static auto forward(const X& x) { return 1 / (1 + (-x).exp()); }
  template <class X, class Y> static auto derivative(const X&, const Y& y) { return y * (1 - y); }
  template <class Ctx, class V> static V derivative_graph(Ctx&, const V&, const V& y) {
    using S = typename V::scalar_type;
    return mul(y, affine(y, S(-1), S(1)));
  }
};
struct ReluFn {
  static constexpr const char* name = "relu";
  template <class X> static auto forward(const X& x) { return x.cwiseMax(typename X::Scalar(0)); }
  template <class X, class Y> static auto derivative(const X& x, const Y&) {
    using S = typename X::Scalar;
    return (x > S(0)).template cast<S>();
  }
  template <class Ctx, class V> static V derivative_graph(Ctx&, const V& x, const V&) {
    using S = typename V::scalar_type;
    return mask_constant(x, [](S v) { return v > S(0); });
  }
};
struct ExpFn {
  static constexpr const char* name = "exp";
  template <class X> static auto forward(const X& x) { return x.exp(); }
  template <class X, class Y> static auto derivative(const X&, const Y& y) { return y; }
  template <class Ctx, class V> static V derivative_graph(Ctx&, const V&, const V& y) { return y; }
};
// exp(x) - 1 without the cancellation of small x; its derivative is exp(x) = y + 1.
struct Expm1Fn {
  static constexpr const char* name = "expm1";
  template <class X> static auto forward(const X& x) {
    return x.unaryExpr([](typename X::Scalar v) { return std::expm1(v); });
  }
  template <class X, class Y> static auto derivative(const X&, const Y& y) { return y + typename Y::Scalar(1); }
  template <class Ctx, class V> static V derivative_graph(Ctx&, const V&, const V& y) {
    return y + typename V::scalar_type(1);
  }
};
struct LogFn {
  static constexpr const char* name = "log";
  template <class X> static auto forward(const X& x) { return x.log(); }
  template <class X, class Y> static auto derivative(const X& x, const Y&) { return x.inverse(); }
  template <class Ctx, class V> static V derivative_graph(Ctx&, const V& x, const V&) {
    return reciprocal(x, typename V::scalar_type(1));
  }
};
struct SoftplusFn {
  static constexpr const char* name = "softplus";
  // log(1 + e^x) without overflow: max(x, 0) + log1p(e^-|x|).
  template <class X> static auto forward(const X& x) {
    using S = typename X::Scalar;
    return x.cwiseMax(S(0)) + (-x.abs()).exp().log1p();
  }
  template <class X, class Y> static auto derivative(const X& x, const Y&) { return 1 / (1 + (-x).exp()); }
  template <class Ctx, class V> static V derivative_graph(Ctx&, const V& x, const V&) { return sigmoid(x); }
};
struct SquareFn {
  static constexpr const char* name = "square";
  template <class X> static auto forward(const X& x) { return x.square(); }
  template <class X, class Y> static auto derivative(const X& x, const Y&) { return 2 * x; }
  template <class Ctx, class V> static V derivative_graph(Ctx&, const V& x, const V&) {
    using S = typename V::scalar_type;
    return affine(x, S(2), S(0));
  }
};
struct SqrtFn {
  static constexpr const char* name = "sqrt";
  template <class X> static auto forward(const X& x) { return x.sqrt(); }
  template <class X, class Y> static auto derivative(const X&, const Y& y) {
    using S = typename Y::Scalar;
    return S(0.5) / y;
  }
  template <class Ctx, class V> static V derivative_graph(Ctx&, const V&, const V& y) {
    return reciprocal(y, typename V::scalar_type(0.5));
  }
};
template <class Scalar>
struct ClampFn {
  static constexpr const char* name = "clamp";
  Scalar lo;
  Scalar hi;
  template <class X> auto forward(const X& x) const { return x.cwiseMax(lo).cwiseMin(hi); }
  // Inside the closed interval the gradient passes, as in PyTorch's clamp.
  template <class X, class Y> auto derivative(const X& x, const Y&) const {
    return ((x >= lo) && (x <= hi)).template cast<Scalar>();
  }
  template <class Ctx, class V> V derivative_graph(Ctx&, const V& x, const V&) const {
    const Scalar l = lo;
    const Scalar h = hi;
    return mask_constant(x, [l, h](Scalar v) { return v >= l && v <= h; });
  }
};

}  // namespace detail

template <class Scalar> Var<Scalar> tanh(const Var<Scalar>& x) { return detail::make_unary(x, detail::TanhFn{}); }
template <class Scalar> Var<Scalar> sigmoid(const Var<Scalar>& x) { return detail::make_unary(x, detail::SigmoidFn{}); }
template <class Scalar> Var<Scalar> relu(const Var<Scalar>& x) { return detail::make_unary(x, detail::ReluFn{}); }
template <class Scalar> Var<Scalar> exp(const Var<Scalar>& x) { return detail::make_unary(x, detail::ExpFn{}); }
template <class Scalar> Var<Scalar> expm1(const Var<Scalar>& x) { return detail::make_unary(x, detail::Expm1Fn{}); }
template <class Scalar> Var<Scalar> log(const Var<Scalar>& x) { return detail::make_unary(x, detail::LogFn{}); }
template <class Scalar> Var<Scalar> softplus(const Var<Scalar>& x) { return detail::make_unary(x, detail::SoftplusFn{}); }
template <class Scalar> Var<Scalar> square(const Var<Scalar>& x) { return detail::make_unary(x, detail::SquareFn{}); }
template <class Scalar> Var<Scalar> sqrt(const Var<Scalar>& x) { return detail::make_unary(x, detail::SqrtFn{}); }
//! Elementwise min(max(x, lo), hi); the gradient passes where lo <= x <= hi.
template <class Scalar>
Var<Scalar> clamp(const Var<Scalar>& x, std::type_identity_t<Scalar> lo, std::type_identity_t<Scalar> hi) {
  SSMRL_REQUIRE(lo <= hi, "ad::clamp: lo = ", lo, " is greater than hi = ", hi);
  return detail::make_unary(x, detail::ClampFn<Scalar>{lo, hi});
}

}  // namespace ssmrl::ad
