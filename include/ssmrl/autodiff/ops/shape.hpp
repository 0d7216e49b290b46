// Slicing, zero-padding and concatenation of rows and columns.
#pragma once

#include <span>

#include "ssmrl/autodiff/ops/basic.hpp"

namespace ssmrl::ad {

template <class Scalar>
Var<Scalar> slice(const Var<Scalar>& x, Index row, Index col, Index rows, Index cols);
template <class Scalar>
Var<Scalar> embed(const Var<Scalar>& x, Index rows, Index cols, Index row, Index col);

namespace detail {

template <class Scalar>
class SliceNode final : public Node<Scalar> {
public:
  SliceNode(Node<Scalar>* x, Index row, Index col) : x_(x), row_(row), col_(col) {}
  [[nodiscard]] const char* name() const noexcept override { return "slice"; }
  void backward() override {
    x_->adjoint_for_update().block(row_, col_, this->rows(), this->cols()) += this->adjoint();
  }
  void backward_graph(GraphContext<Scalar>& ctx) const override {
    ctx.accumulate_block(x_, ctx.grad(), row_, col_);
  }

private:
  Node<Scalar>* x_;
  Index row_;
  Index col_;
};

// x placed in a zero matrix: the adjoint of slice.
template <class Scalar>
class EmbedNode final : public Node<Scalar> {
public:
  EmbedNode(Node<Scalar>* x, Index row, Index col) : x_(x), row_(row), col_(col) {}
  [[nodiscard]] const char* name() const noexcept override { return "embed"; }
  void backward() override { x_->accumulate(this->adjoint().block(row_, col_, x_->rows(), x_->cols())); }
  void backward_graph(GraphContext<Scalar>& ctx) const override {
    ctx.accumulate(x_, slice(ctx.grad(), row_, col_, x_->rows(), x_->cols()));
  }

private:
  Node<Scalar>* x_;
  Index row_;
  Index col_;
};

// Several blocks placed in one zero matrix and summed where they overlap: the adjoint of many
// slices of one variable, in one node.
template <class Scalar>
class EmbedSumNode final : public Node<Scalar> {
public:
  EmbedSumNode(Node<Scalar>** parts, const Index* rows, const Index* cols, std::size_t count)
      : parts_(parts), rows_(rows), cols_(cols), count_(count) {}
  [[nodiscard]] const char* name() const noexcept override { return "embed_sum"; }
  void backward() override {
    const auto g = this->adjoint();
    for (std::size_t i = 0; i < count_; ++i) {
      Node<Scalar>* p = parts_[i];
      if (p->requires_grad()) p->accumulate(g.block(rows_[i], cols_[i], p->rows(), p->cols()));
    }
  }
  void backward_graph(GraphContext<Scalar>& ctx) const override {
    for (std::size_t i = 0; i < count_; ++i) {
      Node<Scalar>* p = parts_[i];
      if (p->requires_grad()) ctx.accumulate(p, slice(ctx.grad(), rows_[i], cols_[i], p->rows(), p->cols()));
    }
  }

private:
  Node<Scalar>** parts_;
  const Index* rows_;
  const Index* cols_;
  std::size_t count_;
};

template <class Scalar, bool along_cols>
class ConcatNode final : public Node<Scalar> {
public:
  ConcatNode(Node<Scalar>** parts, std::size_t count) : parts_(parts), count_(count) {}
  [[nodiscard]] const char* name() const noexcept override { return along_cols ? "concat_cols" : "concat_rows"; }
  void backward() override {
    Index offset = 0;
    const auto g = this->adjoint();
    for (std::size_t i = 0; i < count_; ++i) {
      Node<Scalar>* p = parts_[i];
      if (p->requires_grad()) {
        if constexpr (along_cols) p->accumulate(g.middleCols(offset, p->cols()));
        else p->accumulate(g.middleRows(offset, p->rows()));
      }
      offset += along_cols ? p->cols() : p->rows();
    }
  }
  void backward_graph(GraphContext<Scalar>& ctx) const override {
    Index offset = 0;
    for (std::size_t i = 0; i < count_; ++i) {
      Node<Scalar>* p = parts_[i];
      if (p->requires_grad()) {
        ctx.accumulate(p, along_cols ? slice(ctx.grad(), 0, offset, p->rows(), p->cols())
                                     : slice(ctx.grad(), offset, 0, p->rows(), p->cols()));
      }
      offset += along_cols ? p->cols() : p->rows();
    }
  }

private:
  Node<Scalar>** parts_;
  std::size_t count_;
};

template <class Scalar, bool along_cols>
Var<Scalar> make_concat(const char* op, std::span<const Var<Scalar>> parts) {
  SSMRL_REQUIRE(!parts.empty(), "ad::", op, ": no parts given");
  auto& tape = parts[0].tape();
  Index total = 0;
  bool requires_grad = false;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    check_operand(op, "parts", parts[i]);
    check_same_tape(op, parts[0], parts[i]);
    if constexpr (along_cols) {
      SSMRL_REQUIRE(parts[i].rows() == parts[0].rows(), "ad::", op, ": part ", i, " has ", parts[i].rows(),
                    " rows, part 0 has ", parts[0].rows());
      total += parts[i].cols();
    } else {
      SSMRL_REQUIRE(parts[i].cols() == parts[0].cols(), "ad::", op, ": part ", i, " has ", parts[i].cols(),
                    " columns, part 0 has ", parts[0].cols());
      total += parts[i].rows();
    }
    requires_grad = requires_grad || parts[i].requires_grad();
  }
  auto** nodes = tape.template allocate_array<Node<Scalar>*>(parts.size());
  for (std::size_t i = 0; i < parts.size(); ++i) nodes[i] = parts[i].node();
  const Index rows = along_cols ? parts[0].rows() : total;
  const Index cols = along_cols ? total : parts[0].cols();
  auto* node = tape.template make_node<ConcatNode<Scalar, along_cols>>(rows, cols, requires_grad, nodes, parts.size());
  auto out = node->value();
  Index offset = 0;
  for (const auto& p : parts) {
    if constexpr (along_cols) {
      out.middleCols(offset, p.cols()) = p.value();
      offset += p.cols();
    } else {
      out.middleRows(offset, p.rows()) = p.value();
      offset += p.rows();
    }
  }
  return tape.var(node);
}

}  // namespace detail

//! The block of x with top-left corner (row, col) and shape rows x cols.
template <class Scalar>
Var<Scalar> slice(const Var<Scalar>& x, Index row, Index col, Index rows, Index cols) {
  detail::check_operand("slice", "x", x);
  SSMRL_REQUIRE(row >= 0 && col >= 0 && rows >= 0 && cols >= 0 && row + rows <= x.rows() && col + cols <= x.cols(),
                "ad::slice: block at (", row, ", ", col, ") of shape ", rows, "x", cols, " lies outside the ", x.rows(),
                "x", x.cols(), " input");
  auto& tape = x.tape();
  auto* node = tape.template make_node<detail::SliceNode<Scalar>>(rows, cols, x.requires_grad(), x.node(), row, col);
  node->value() = x.value().block(row, col, rows, cols);
  return tape.var(node);
}
//! Columns [first, first + count) of x: with one sample per column, a slice of the batch or of time.
template <class Scalar>
Var<Scalar> slice_cols(const Var<Scalar>& x, Index first, Index count) {
  return slice(x, 0, first, x.rows(), count);
}
//! Rows [first, first + count) of x: a slice of the features.
template <class Scalar>
Var<Scalar> slice_rows(const Var<Scalar>& x, Index first, Index count) {
  return slice(x, first, 0, count, x.cols());
}

//! A rows x cols matrix of zeros with x placed at (row, col): the adjoint of slice().
template <class Scalar>
Var<Scalar> embed(const Var<Scalar>& x, Index rows, Index cols, Index row, Index col) {
  detail::check_operand("embed", "x", x);
  SSMRL_REQUIRE(row >= 0 && col >= 0 && row + x.rows() <= rows && col + x.cols() <= cols, "ad::embed: a ", x.rows(),
                "x", x.cols(), " input at (", row, ", ", col, ") does not fit in ", rows, "x", cols);
  auto& tape = x.tape();
  auto* node = tape.template make_node<detail::EmbedNode<Scalar>>(rows, cols, x.requires_grad(), x.node(), row, col);
  node->value().setZero();
  node->value().block(row, col, x.rows(), x.cols()) = x.value();
  return tape.var(node);
}

//! A rows x cols matrix of zeros plus each part placed at (part_rows[i], part_cols[i]); overlapping
//! parts add up. The sum of several embed() calls in one node.
template <class Scalar>
Var<Scalar> embed_sum(std::span<const Var<Scalar>> parts, std::span<const Index> part_rows,
                      std::span<const Index> part_cols, Index rows, Index cols) {
  SSMRL_REQUIRE(!parts.empty() && part_rows.size() == parts.size() && part_cols.size() == parts.size(),
                "ad::embed_sum: ", parts.size(), " parts with ", part_rows.size(), " row and ", part_cols.size(),
                " column offsets");
  auto& tape = parts[0].tape();
  bool requires_grad = false;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    detail::check_operand("embed_sum", "parts", parts[i]);
    detail::check_same_tape("embed_sum", parts[0], parts[i]);
    SSMRL_REQUIRE(part_rows[i] >= 0 && part_cols[i] >= 0 && part_rows[i] + parts[i].rows() <= rows &&
                      part_cols[i] + parts[i].cols() <= cols,
                  "ad::embed_sum: part ", i, " (", parts[i].rows(), "x", parts[i].cols(), " at (", part_rows[i], ", ",
                  part_cols[i], ")) does not fit in ", rows, "x", cols);
    requires_grad = requires_grad || parts[i].requires_grad();
  }
  auto** nodes = tape.template allocate_array<Node<Scalar>*>(parts.size());
  auto* r = tape.template allocate_array<Index>(parts.size());
  auto* c = tape.template allocate_array<Index>(parts.size());
  for (std::size_t i = 0; i < parts.size(); ++i) {
    nodes[i] = parts[i].node();
    r[i] = part_rows[i];
    c[i] = part_cols[i];
  }
  auto* node =
      tape.template make_node<detail::EmbedSumNode<Scalar>>(rows, cols, requires_grad, nodes, r, c, parts.size());
  auto out = node->value();
  out.setZero();
  for (std::size_t i = 0; i < parts.size(); ++i) {
    out.block(r[i], c[i], parts[i].rows(), parts[i].cols()) += parts[i].value();
  }
  return tape.var(node);
}

//! Parts side by side (equal row counts): for instance the T steps of a sequence.
template <class Scalar>
Var<Scalar> concat_cols(std::span<const Var<Scalar>> parts) {
  return detail::make_concat<Scalar, true>("concat_cols", parts);
}
//! Parts stacked (equal column counts): for instance features of several sources.
template <class Scalar>
Var<Scalar> concat_rows(std::span<const Var<Scalar>> parts) {
  return detail::make_concat<Scalar, false>("concat_rows", parts);
}
template <class Scalar>
Var<Scalar> concat_cols(std::initializer_list<Var<Scalar>> parts) {
  return concat_cols(std::span<const Var<Scalar>>(parts.begin(), parts.size()));
}
template <class Scalar>
Var<Scalar> concat_rows(std::initializer_list<Var<Scalar>> parts) {
  return concat_rows(std::span<const Var<Scalar>>(parts.begin(), parts.size()));
}

}  // namespace ssmrl::ad
