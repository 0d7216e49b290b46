// Helpers shared by the operations: argument checks and node creation.
#pragma once

#include <initializer_list>

#include "ssmrl/autodiff/tape.hpp"

namespace ssmrl::ad::detail {

template <class Scalar>
void check_operand(const char* op, const char* argument, const Var<Scalar>& v) {
  SSMRL_REQUIRE(v.valid(), "ad::", op, ": argument '", argument, "' is an empty variable");
  v.check_alive(op);
}

template <class Scalar>
void check_same_tape(const char* op, const Var<Scalar>& a, const Var<Scalar>& b) {
  SSMRL_REQUIRE(&a.tape() == &b.tape(), "ad::", op, ": the operands belong to different tapes");
}

template <class Scalar>
[[nodiscard]] bool any_requires_grad(std::initializer_list<const Var<Scalar>*> vars) {
  for (const auto* v : vars) {
    if (v->requires_grad()) return true;
  }
  return false;
}

// Broadcasting: each dimension of an operand equals the result's or is 1.
[[nodiscard]] inline bool broadcasts_to(Index rows, Index cols, Index out_rows, Index out_cols) {
  return (rows == out_rows || rows == 1) && (cols == out_cols || cols == 1);
}

template <class MapType>
[[nodiscard]] auto broadcast(const MapType& m, Index rows, Index cols) {
  return m.replicate(rows / m.rows(), cols / m.cols());
}

// Writes the broadcast of `src` to rows x cols into `dst`, a column at a time so that it vectorises.
template <class Scalar>
void expand_into(Scalar* dst, Index rows, Index cols, const Eigen::Map<const Matrix<Scalar>>& src) {
  Eigen::Map<Matrix<Scalar>> out(dst, rows, cols);
  if (src.rows() == rows && src.cols() == cols) {
    out = src;
  } else if (src.rows() == rows) {
    for (Index j = 0; j < cols; ++j) out.col(j) = src.col(0);
  } else if (src.cols() == cols) {
    for (Index j = 0; j < cols; ++j) out.col(j).setConstant(src(0, j));
  } else {
    out.setConstant(src(0, 0));
  }
}

// Adds factor times the broadcast of `small` to `node`'s shape to its adjoint, a column at a time
// (Eigen's replicate with run-time factors does not vectorise).
template <class Scalar, class MapType>
void accumulate_broadcast(Node<Scalar>* node, const MapType& small, Scalar factor) {
  const Index rows = node->rows();
  const Index cols = node->cols();
  if (small.rows() == rows && small.cols() == cols) {
    node->accumulate(factor * small);
    return;
  }
  const bool fresh = node->adjoint_for_update_is_fresh();
  auto out = node->adjoint();
  for (Index j = 0; j < cols; ++j) {
    auto column = out.col(j);
    if (small.rows() == rows) {
      if (fresh) column = factor * small.col(0);
      else column += factor * small.col(0);
    } else {
      const Scalar v = factor * small(0, small.cols() == cols ? j : 0);
      if (fresh) column.setConstant(v);
      else column.array() += v;
    }
  }
}

// Adds a full-shape contribution to `node`, summed over the dimensions along which it was broadcast.
template <class Scalar, class Expr>
void accumulate_reduced(Node<Scalar>* node, const Expr& full) {
  if (node->rows() == full.rows() && node->cols() == full.cols()) {
    node->accumulate(full);
  } else if (node->rows() == 1 && node->cols() == 1) {
    node->accumulate(Eigen::Matrix<Scalar, 1, 1>::Constant(full.sum()));
  } else if (node->rows() == 1) {
    node->accumulate(full.colwise().sum());
  } else {
    node->accumulate(full.rowwise().sum());
  }
}

}  // namespace ssmrl::ad::detail
