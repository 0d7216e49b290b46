// Matrix product with optional transposes, and transpose.
#pragma once

#include "ssmrl/autodiff/ops/basic.hpp"

namespace ssmrl::ad {

//! Whether an operand of matmul() enters as it is or transposed.
enum class Trans : bool { no = false, yes = true };

template <class Scalar>
Var<Scalar> matmul(const Var<Scalar>& a, const Var<Scalar>& b, Trans ta = Trans::no, Trans tb = Trans::no);
template <class Scalar>
Var<Scalar> transpose(const Var<Scalar>& x);

namespace detail {

// out = op(a) * op(b), written with .noalias() into `out` (assign or accumulate).
template <bool accumulate, class Out, class A, class B>
void gemm(Out&& out, const A& a, bool ta, const B& b, bool tb) {
  auto apply = [&](const auto& lhs, const auto& rhs) {
    if constexpr (accumulate) {
      out.noalias() += lhs * rhs;
    } else {
      out.noalias() = lhs * rhs;
    }
  };
  if (!ta && !tb) apply(a, b);
  else if (ta && !tb) apply(a.transpose(), b);
  else if (!ta && tb) apply(a, b.transpose());
  else apply(a.transpose(), b.transpose());
}

// Adds op(x) * op(y) into `node`'s adjoint; assigns on the first contribution of a pass.
template <class Scalar, class X, class Y>
void accumulate_product(Node<Scalar>* node, const X& x, bool tx, const Y& y, bool ty) {
  // Node::accumulate cannot take a product of transposes chosen at run time, so branch here.
  if (node->adjoint_for_update_is_fresh()) {
    gemm<false>(node->adjoint(), x, tx, y, ty);
  } else {
    gemm<true>(node->adjoint(), x, tx, y, ty);
  }
}

template <class Scalar>
class MatmulNode final : public Node<Scalar> {
public:
  MatmulNode(Node<Scalar>* a, Node<Scalar>* b, bool ta, bool tb) : a_(a), b_(b), ta_(ta), tb_(tb) {}
  [[nodiscard]] const char* name() const noexcept override { return "matmul"; }

  // C = op(A) op(B). dA: G op(B)^T, or op(B) G^T when A enters transposed; dB: op(A)^T G, or
  // G^T op(A) when B enters transposed.
  void backward() override {
    const auto g = this->adjoint();
    const auto a = a_->value();
    const auto b = b_->value();
    if (a_->requires_grad()) {
      if (!ta_) accumulate_product(a_, g, false, b, !tb_);
      else accumulate_product(a_, b, tb_, g, true);
    }
    if (b_->requires_grad()) {
      if (!tb_) accumulate_product(b_, a, !ta_, g, false);
      else accumulate_product(b_, g, true, a, ta_);
    }
  }

  void backward_graph(GraphContext<Scalar>& ctx) const override {
    const auto& g = ctx.grad();
    const auto a = ctx.input(a_);
    const auto b = ctx.input(b_);
    auto t = [](bool flag) { return flag ? Trans::yes : Trans::no; };
    if (a_->requires_grad()) {
      ctx.accumulate(a_, !ta_ ? matmul(g, b, Trans::no, t(!tb_)) : matmul(b, g, t(tb_), Trans::yes));
    }
    if (b_->requires_grad()) {
      ctx.accumulate(b_, !tb_ ? matmul(a, g, t(!ta_), Trans::no) : matmul(g, a, Trans::yes, t(ta_)));
    }
  }

private:
  Node<Scalar>* a_;
  Node<Scalar>* b_;
  bool ta_;
  bool tb_;
};

template <class Scalar>
class TransposeNode final : public Node<Scalar> {
public:
  explicit TransposeNode(Node<Scalar>* x) : x_(x) {}
  [[nodiscard]] const char* name() const noexcept override { return "transpose"; }
  void backward() override { x_->accumulate(this->adjoint().transpose()); }
  void backward_graph(GraphContext<Scalar>& ctx) const override { ctx.accumulate(x_, transpose(ctx.grad())); }

private:
  Node<Scalar>* x_;
};

}  // namespace detail

//! op(a) * op(b), where op transposes an operand given Trans::yes.
template <class Scalar>
Var<Scalar> matmul(const Var<Scalar>& a, const Var<Scalar>& b, Trans ta, Trans tb) {
  detail::check_operand("matmul", "a", a);
  detail::check_operand("matmul", "b", b);
  detail::check_same_tape("matmul", a, b);
  const bool transpose_a = ta == Trans::yes;
  const bool transpose_b = tb == Trans::yes;
  const Index m = transpose_a ? a.cols() : a.rows();
  const Index k = transpose_a ? a.rows() : a.cols();
  const Index kb = transpose_b ? b.cols() : b.rows();
  const Index n = transpose_b ? b.rows() : b.cols();
  SSMRL_REQUIRE(k == kb, "ad::matmul: op(a) is ", m, "x", k, " (a is ", a.rows(), "x", a.cols(),
                transpose_a ? ", transposed" : "", "), op(b) is ", kb, "x", n, " (b is ", b.rows(), "x", b.cols(),
                transpose_b ? ", transposed" : "", "): inner dimensions differ");
  auto& tape = a.tape();
  auto* node = tape.template make_node<detail::MatmulNode<Scalar>>(
      m, n, detail::any_requires_grad<Scalar>({&a, &b}), a.node(), b.node(), transpose_a, transpose_b);
  detail::gemm<false>(node->value(), a.value(), transpose_a, b.value(), transpose_b);
  return tape.var(node);
}

//! The transpose of x.
template <class Scalar>
Var<Scalar> transpose(const Var<Scalar>& x) {
  detail::check_operand("transpose", "x", x);
  auto& tape = x.tape();
  auto* node = tape.template make_node<detail::TransposeNode<Scalar>>(x.cols(), x.rows(), x.requires_grad(), x.node());
  node->value() = x.value().transpose();
  return tape.var(node);
}

}  // namespace ssmrl::ad
