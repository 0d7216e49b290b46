// Gradients as values or, with create_graph, as variables on the tape that can be differentiated
// again (second-order MAML, Hessian-vector products).
#pragma once

#include <span>
#include <vector>

#include "ssmrl/autodiff/ops/basic.hpp"
#include "ssmrl/autodiff/ops/reduce.hpp"
#include "ssmrl/autodiff/ops/shape.hpp"

namespace ssmrl::ad {

struct GradOptions {
  //! Record the backward pass on the tape, so that the gradients are differentiable variables.
  bool create_graph = false;
};

namespace detail {

template <class Scalar>
void check_wrt(const char* op, const Var<Scalar>& output, std::span<const Var<Scalar>> wrt) {
  check_operand(op, "output", output);
  for (std::size_t i = 0; i < wrt.size(); ++i) {
    check_operand(op, "wrt", wrt[i]);
    SSMRL_REQUIRE(&wrt[i].tape() == &output.tape(), "ad::", op, ": wrt[", i, "] belongs to another tape");
  }
}

// Walks the tape backwards from `output`, recording each operation's backward_graph().
template <class Scalar>
std::vector<Var<Scalar>> grad_graph(const Var<Scalar>& output, const Var<Scalar>& seed,
                                    std::span<const Var<Scalar>> wrt) {
  auto& tape = output.tape();
  using Contribution = typename GraphContext<Scalar>::Contribution;
  const std::size_t last = output.node()->index();
  auto** pending = tape.template allocate_array<Contribution*>(last + 1);
  auto* total = tape.template allocate_array<Node<Scalar>*>(last + 1);
  for (std::size_t i = 0; i <= last; ++i) {
    pending[i] = nullptr;
    total[i] = nullptr;
  }
  GraphContext<Scalar> ctx(tape, pending);
  auto* seed_entry = tape.template allocate_array<Contribution>(1);
  new (seed_entry) Contribution{seed, 0, 0, false, nullptr};
  pending[last] = seed_entry;

  std::vector<Var<Scalar>> terms;
  std::vector<Var<Scalar>> blocks;
  std::vector<Index> block_rows;
  std::vector<Index> block_cols;
  for (std::size_t i = last + 1; i-- > 0;) {
    Node<Scalar>* node = tape.node_at(i);
    if (pending[i] == nullptr || !node->requires_grad()) continue;
    terms.clear();
    blocks.clear();
    block_rows.clear();
    block_cols.clear();
    for (auto* c = pending[i]; c != nullptr; c = c->next) {
      if (c->block) {
        blocks.push_back(c->grad);
        block_rows.push_back(c->row);
        block_cols.push_back(c->col);
      } else {
        terms.push_back(c->grad);
      }
    }
    if (!blocks.empty()) terms.push_back(embed_sum<Scalar>(blocks, block_rows, block_cols, node->rows(), node->cols()));
    const Var<Scalar> g = add_n<Scalar>(terms);
    total[i] = g.node();
    ctx.bind(tape.var(node), g);
    node->backward_graph(ctx);
  }

  std::vector<Var<Scalar>> out;
  out.reserve(wrt.size());
  for (const auto& w : wrt) {
    const std::size_t i = w.node()->index();
    if (i <= last && total[i] != nullptr) {
      out.push_back(tape.var(total[i]));
    } else {
      out.push_back(tape.constant(w.rows(), w.cols(), Scalar(0)));
    }
  }
  return out;
}

}  // namespace detail

//! d output / d wrt[i] for a 1x1 output. Without create_graph the results are constants holding the
//! values; with it they are variables whose own gradients are exact second derivatives.
template <class Scalar>
std::vector<Var<Scalar>> grad(const Var<Scalar>& output, std::span<const Var<Scalar>> wrt, GradOptions options = {}) {
  detail::check_wrt("grad", output, wrt);
  SSMRL_REQUIRE(output.rows() == 1 && output.cols() == 1, "ad::grad: output is ", output.rows(), "x", output.cols(),
                ", expected 1x1 (use vjp for other shapes)");
  auto& tape = output.tape();
  if (options.create_graph) return detail::grad_graph(output, tape.constant(1, 1, Scalar(1)), wrt);
  tape.backward(output);
  std::vector<Var<Scalar>> out;
  out.reserve(wrt.size());
  for (const auto& w : wrt) {
    out.push_back(w.requires_grad() ? tape.constant(w.grad()) : tape.constant(w.rows(), w.cols(), Scalar(0)));
  }
  return out;
}
template <class Scalar>
std::vector<Var<Scalar>> grad(const Var<Scalar>& output, std::initializer_list<Var<Scalar>> wrt,
                              GradOptions options = {}) {
  return grad(output, std::span<const Var<Scalar>>(wrt.begin(), wrt.size()), options);
}

//! Vector-Jacobian product: sum over entries of seed * d output / d wrt[i], as variables on the
//! tape (differentiable; `seed` may itself depend on variables).
template <class Scalar>
std::vector<Var<Scalar>> vjp(const Var<Scalar>& output, const Var<Scalar>& seed, std::span<const Var<Scalar>> wrt) {
  detail::check_wrt("vjp", output, wrt);
  detail::check_operand("vjp", "seed", seed);
  SSMRL_REQUIRE(seed.rows() == output.rows() && seed.cols() == output.cols(), "ad::vjp: seed is ", seed.rows(), "x",
                seed.cols(), ", output is ", output.rows(), "x", output.cols());
  return detail::grad_graph(output, seed, wrt);
}

//! Hessian-vector product of a 1x1 `output` with respect to `wrt`, along `direction` (one matrix
//! per variable): the values of d/dwrt <grad output, direction>.
template <class Scalar>
std::vector<Matrix<Scalar>> hessian_vector_product(const Var<Scalar>& output, std::span<const Var<Scalar>> wrt,
                                                   std::span<const Matrix<Scalar>> direction) {
  SSMRL_REQUIRE(direction.size() == wrt.size(), "ad::hessian_vector_product: ", direction.size(), " directions for ",
                wrt.size(), " variables");
  for (std::size_t i = 0; i < wrt.size(); ++i) {
    SSMRL_REQUIRE(direction[i].rows() == wrt[i].rows() && direction[i].cols() == wrt[i].cols(),
                  "ad::hessian_vector_product: direction[", i, "] is ", direction[i].rows(), "x",
                  direction[i].cols(), ", wrt[", i, "] is ", wrt[i].rows(), "x", wrt[i].cols());
  }
  auto& tape = output.tape();
  const auto g = grad(output, wrt, {.create_graph = true});
  std::vector<Var<Scalar>> terms;
  terms.reserve(wrt.size());
  for (std::size_t i = 0; i < wrt.size(); ++i) terms.push_back(sum(mul(g[i], tape.constant(direction[i]))));
  const auto inner = add_n<Scalar>(terms);
  std::vector<Matrix<Scalar>> out;
  out.reserve(wrt.size());
  if (!inner.requires_grad()) {
    for (const auto& w : wrt) out.push_back(Matrix<Scalar>::Zero(w.rows(), w.cols()));
    return out;
  }
  tape.backward(inner);
  for (const auto& w : wrt) {
    out.push_back(w.requires_grad() ? Matrix<Scalar>(w.grad()) : Matrix<Scalar>::Zero(w.rows(), w.cols()));
  }
  return out;
}

}  // namespace ssmrl::ad
