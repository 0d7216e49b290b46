// The tape: nodes that each hold a whole matrix (value and adjoint), recorded in order of creation.
//
// Layout convention, for the whole library: Eigen is column-major, so one sample is one column
// (features x batch), and a sequence of T steps is T such blocks side by side, in time order.
#pragma once

#include <Eigen/Core>

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#include "ssmrl/autodiff/arena.hpp"
#include "ssmrl/core/error.hpp"

namespace ssmrl::ad {

using Index = Eigen::Index;

template <class Scalar>
using Matrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;

template <class T>
struct double_for {
  using type = double;
};
//! double, as a type that depends on T. Inside a template over T, Eigen code on Double<T> is
//! compiled only where the template is used; on plain double, by every file that includes it.
template <class T>
using Double = typename double_for<T>::type;

template <class Scalar>
class Tape;
template <class Scalar>
class Var;
template <class Scalar>
class GraphContext;

//! One recorded operation and its output. Subclasses hold their inputs and implement backward().
//! Nodes live in the tape's arena and are never destroyed, so they must be trivially destructible.
template <class Scalar>
class Node {
public:
  using MatrixMap = Eigen::Map<Matrix<Scalar>>;
  using ConstMatrixMap = Eigen::Map<const Matrix<Scalar>>;

  Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  //! Short name of the operation, for error messages.
  [[nodiscard]] virtual const char* name() const noexcept = 0;
  //! Adds this node's adjoint, pulled back through the operation, to each input's adjoint.
  virtual void backward() = 0;
  //! The same pull-back built from tape operations, so that it can be differentiated again.
  virtual void backward_graph(GraphContext<Scalar>& ctx) const;

  [[nodiscard]] Index rows() const noexcept { return rows_; }
  [[nodiscard]] Index cols() const noexcept { return cols_; }
  [[nodiscard]] Index size() const noexcept { return rows_ * cols_; }
  [[nodiscard]] bool requires_grad() const noexcept { return requires_grad_; }
  [[nodiscard]] std::uint32_t index() const noexcept { return index_; }
  [[nodiscard]] bool has_adjoint() const noexcept { return adjoint_ != nullptr; }

  [[nodiscard]] MatrixMap value() noexcept { return {value_, rows_, cols_}; }
  [[nodiscard]] ConstMatrixMap value() const noexcept { return {value_, rows_, cols_}; }
  //! The adjoint; only meaningful once a backward pass has reached this node.
  [[nodiscard]] MatrixMap adjoint() noexcept { return {adjoint_, rows_, cols_}; }
  [[nodiscard]] ConstMatrixMap adjoint() const noexcept { return {adjoint_, rows_, cols_}; }

  //! Adds `contribution` (an Eigen matrix or array expression of this node's shape) to the adjoint.
  //! The first contribution of a backward pass assigns, so adjoints need no zeroing pass.
  template <class Expr>
  void accumulate(const Expr& contribution) {
    if constexpr (std::is_base_of_v<Eigen::ArrayBase<Expr>, Expr>) {
      accumulate(contribution.matrix());
    } else if (touched_) {
      adjoint().noalias() += contribution;
    } else {
      adjoint().noalias() = contribution;
      touched_ = true;
    }
  }

  //! True, and marks the adjoint as written, when this is the first contribution of a pass:
  //! the caller then assigns instead of adding.
  [[nodiscard]] bool adjoint_for_update_is_fresh() noexcept {
    const bool fresh = !touched_;
    touched_ = true;
    return fresh;
  }

  //! The adjoint for in-place updates of parts of it: zeroed first if nothing was accumulated yet.
  [[nodiscard]] MatrixMap adjoint_for_update() {
    if (!touched_) {
      adjoint().setZero();
      touched_ = true;
    }
    return adjoint();
  }

private:
  friend class Tape<Scalar>;

  Scalar* value_ = nullptr;
  Scalar* adjoint_ = nullptr;
  Index rows_ = 0;
  Index cols_ = 0;
  std::uint32_t index_ = 0;
  std::uint32_t epoch_ = 0;
  bool requires_grad_ = false;
  bool touched_ = false;
};

//! A handle to a node of a tape: cheap to copy, valid until the tape is cleared or rewound past it.
template <class Scalar>
class Var {
public:
  using scalar_type = Scalar;

  Var() = default;

  [[nodiscard]] Index rows() const noexcept { return node_->rows(); }
  [[nodiscard]] Index cols() const noexcept { return node_->cols(); }
  [[nodiscard]] Index size() const noexcept { return node_->size(); }
  [[nodiscard]] bool requires_grad() const noexcept { return node_->requires_grad(); }
  [[nodiscard]] bool valid() const noexcept { return node_ != nullptr; }

  //! The value; with SSMRL_DEBUG_CHECKS a handle from a cleared tape is caught here.
  [[nodiscard]] typename Node<Scalar>::ConstMatrixMap value() const {
    check_alive("Var::value");
    return std::as_const(*node_).value();
  }
  //! The adjoint written by the last Tape::backward() that reached this variable.
  [[nodiscard]] typename Node<Scalar>::ConstMatrixMap grad() const;
  //! The first entry of a 1x1 variable, such as a loss.
  [[nodiscard]] Scalar item() const;

  [[nodiscard]] Tape<Scalar>& tape() const noexcept { return *tape_; }
  [[nodiscard]] Node<Scalar>* node() const {
    check_alive("Var::node");
    return node_;
  }

  //! Under SSMRL_DEBUG_CHECKS, throws ssmrl::UsageError if the tape was cleared or rewound past
  //! this variable; without it, does nothing.
  void check_alive([[maybe_unused]] const char* where) const;

private:
  friend class Tape<Scalar>;
  Var(Node<Scalar>* node, Tape<Scalar>* tape, std::uint32_t epoch) noexcept
      : node_(node), tape_(tape), epoch_(epoch) {}

  Node<Scalar>* node_ = nullptr;
  Tape<Scalar>* tape_ = nullptr;
  std::uint32_t epoch_ = 0;
};

//! The record of a computation. Passed explicitly; nothing in ssmrl keeps a global tape.
template <class Scalar>
class Tape {
  static_assert(std::is_floating_point_v<Scalar>, "ssmrl::ad::Tape: Scalar must be float or double");

public:
  using scalar_type = Scalar;

  //! A position on the tape: rewind(mark) drops every node recorded after it.
  struct Mark {
    std::size_t nodes = 0;
    Arena::Mark arena;
  };

  //! Records nodes inside a nested scope and drops them when it ends (inner loops, line searches).
  class Scope {
  public:
    explicit Scope(Tape& tape) : tape_(tape), mark_(tape.mark()) {}
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;
    ~Scope() { tape_.rewind(mark_); }

  private:
    Tape& tape_;
    Mark mark_;
  };

  explicit Tape(std::size_t first_block_bytes = std::size_t{1} << 16) : arena_(first_block_bytes) {}
  Tape(const Tape&) = delete;
  Tape& operator=(const Tape&) = delete;

  //! A leaf that gradients are taken with respect to; the value is copied onto the tape.
  template <class Derived>
  [[nodiscard]] Var<Scalar> variable(const Eigen::MatrixBase<Derived>& value) {
    return leaf(value, true);
  }
  //! A leaf that no gradient flows into; the value is copied onto the tape.
  template <class Derived>
  [[nodiscard]] Var<Scalar> constant(const Eigen::MatrixBase<Derived>& value) {
    return leaf(value, false);
  }
  [[nodiscard]] Var<Scalar> constant(Index rows, Index cols, Scalar fill) {
    return constant(Matrix<Scalar>::Constant(rows, cols, fill));
  }
  //! The same value as `x`, cut off from the gradient (a stop-gradient).
  [[nodiscard]] Var<Scalar> detach(const Var<Scalar>& x) { return constant(x.value()); }

  //! Allocates a node of type NodeT on the tape with an uninitialised value of the given shape.
  //! NodeT derives from Node<Scalar>; this is how operations, the library's and users', are made.
  template <class NodeT, class... Args>
  [[nodiscard]] NodeT* make_node(Index rows, Index cols, bool requires_grad, Args&&... args) {
    static_assert(std::is_base_of_v<Node<Scalar>, NodeT>, "make_node: NodeT must derive from Node<Scalar>");
    static_assert(std::is_trivially_destructible_v<NodeT>,
                  "make_node: nodes live in an arena and are never destroyed; keep them trivially destructible");
    void* memory = arena_.allocate(sizeof(NodeT));
    auto* node = new (memory) NodeT(std::forward<Args>(args)...);
    Node<Scalar>* base = node;  // the subclass may hide the base's member names
    base->value_ = allocate(rows * cols);
    base->rows_ = rows;
    base->cols_ = cols;
    base->requires_grad_ = requires_grad;
    base->index_ = static_cast<std::uint32_t>(nodes_.size());
    base->epoch_ = epoch_;
    nodes_.push_back(base);
    return node;
  }
  //! The handle of a node made by make_node().
  [[nodiscard]] Var<Scalar> var(Node<Scalar>* node) noexcept { return Var<Scalar>(node, this, node->epoch_); }

  //! Uninitialised scratch storage that lives as long as the nodes recorded after this call.
  [[nodiscard]] Scalar* allocate(Index count) {
    return static_cast<Scalar*>(arena_.allocate(static_cast<std::size_t>(count) * sizeof(Scalar)));
  }
  template <class T>
  [[nodiscard]] T* allocate_array(std::size_t count) {
    static_assert(std::is_trivially_destructible_v<T>);
    return static_cast<T*>(arena_.allocate(count * sizeof(T)));
  }

  //! Reverse-mode pass from a 1x1 `loss`: afterwards every variable recorded before it that
  //! requires a gradient holds d loss / d variable in grad().
  void backward(const Var<Scalar>& loss) {
    loss.check_alive("Tape::backward");
    SSMRL_REQUIRE(loss.rows() == 1 && loss.cols() == 1, "Tape::backward: loss is ", loss.rows(), "x",
                  loss.cols(), ", expected a 1x1 variable (use backward(output, seed) otherwise)");
    backward_impl(loss.node_, nullptr);
  }
  //! Reverse-mode pass that seeds `output`'s adjoint with `seed` (a vector-Jacobian product).
  template <class Derived>
  void backward(const Var<Scalar>& output, const Eigen::MatrixBase<Derived>& seed) {
    output.check_alive("Tape::backward");
    SSMRL_REQUIRE(seed.rows() == output.rows() && seed.cols() == output.cols(), "Tape::backward: seed is ",
                  seed.rows(), "x", seed.cols(), ", output is ", output.rows(), "x", output.cols());
    const Matrix<Scalar> seed_copy = seed;  // outside the hot path: seeded passes are rare
    backward_impl(output.node_, &seed_copy);
  }

  [[nodiscard]] Mark mark() const noexcept { return {nodes_.size(), arena_.mark()}; }
  void rewind(const Mark& m) {
    SSMRL_REQUIRE(m.nodes <= nodes_.size(), "Tape::rewind: mark at node ", m.nodes, " lies past the tape's end (",
                  nodes_.size(), " nodes)");
    nodes_.resize(m.nodes);
    arena_.rewind(m.arena);
    ++epoch_;
  }
  //! Drops every node; the memory is kept, so the next round with the same shapes allocates nothing.
  void clear() noexcept {
    nodes_.clear();
    arena_.clear();
    ++epoch_;
  }

  [[nodiscard]] std::size_t size() const noexcept { return nodes_.size(); }
  [[nodiscard]] Node<Scalar>* node_at(std::size_t i) const noexcept { return nodes_[i]; }
  [[nodiscard]] std::size_t bytes_reserved() const noexcept { return arena_.bytes_reserved(); }
  [[nodiscard]] std::uint32_t epoch() const noexcept { return epoch_; }

  //! True while `v` refers to a node that this tape still holds.
  [[nodiscard]] bool holds(const Var<Scalar>& v) const noexcept {
    return v.tape_ == this && v.node_ != nullptr && v.node_->index_ < nodes_.size() &&
           nodes_[v.node_->index_] == v.node_ && v.node_->epoch_ == v.epoch_;
  }

  //! Makes sure a node has adjoint storage; its content is unspecified until written.
  void ensure_adjoint(Node<Scalar>* node) {
    if (node->adjoint_ == nullptr) node->adjoint_ = allocate(node->size());
  }

private:
  template <class Derived>
  Var<Scalar> leaf(const Eigen::MatrixBase<Derived>& value, bool requires_grad);

  void backward_impl(Node<Scalar>* root, const Matrix<Scalar>* seed) {
    const std::size_t last = root->index_;
    for (std::size_t i = 0; i <= last; ++i) {
      Node<Scalar>* n = nodes_[i];
      n->touched_ = false;
      if (n->requires_grad_) ensure_adjoint(n);
    }
    if (!root->requires_grad_) ensure_adjoint(root);
    if (seed != nullptr) {
      root->adjoint() = *seed;
    } else {
      root->adjoint().setOnes();
    }
    root->touched_ = true;
    for (std::size_t i = last + 1; i-- > 0;) {
      Node<Scalar>* n = nodes_[i];
      if (n->touched_ && n->requires_grad_) n->backward();
    }
    for (std::size_t i = 0; i <= last; ++i) {
      Node<Scalar>* n = nodes_[i];
      if (n->requires_grad_ && !n->touched_) {
        n->adjoint().setZero();
        n->touched_ = true;
      }
    }
  }

  Arena arena_;
  std::vector<Node<Scalar>*> nodes_;
  std::uint32_t epoch_ = 1;
};

// A leaf has nothing to pull back to.
template <class Scalar>
class LeafNode final : public Node<Scalar> {
public:
  [[nodiscard]] const char* name() const noexcept override { return "leaf"; }
  void backward() override {}
  void backward_graph(GraphContext<Scalar>&) const override {}
};

template <class Scalar>
template <class Derived>
Var<Scalar> Tape<Scalar>::leaf(const Eigen::MatrixBase<Derived>& value, bool requires_grad) {
  auto* node = make_node<LeafNode<Scalar>>(value.rows(), value.cols(), requires_grad);
  node->value() = value.template cast<Scalar>();
  return var(node);
}

template <class Scalar>
void Var<Scalar>::check_alive([[maybe_unused]] const char* where) const {
#ifdef SSMRL_DEBUG_CHECKS
  if (node_ == nullptr) SSMRL_THROW(::ssmrl::UsageError, ::ssmrl::detail::message(where, ": the variable is empty"));
  if (!tape_->holds(*this)) {
    SSMRL_THROW(::ssmrl::UsageError,
                ::ssmrl::detail::message(where, ": the variable belongs to a tape that was cleared or rewound since it was made"));
  }
#endif
}

template <class Scalar>
typename Node<Scalar>::ConstMatrixMap Var<Scalar>::grad() const {
  check_alive("Var::grad");
  SSMRL_REQUIRE(node_->has_adjoint(), "Var::grad: no backward pass has reached this ", node_->rows(), "x",
                node_->cols(), " variable");
  return std::as_const(*node_).adjoint();
}

template <class Scalar>
Scalar Var<Scalar>::item() const {
  check_alive("Var::item");
  SSMRL_REQUIRE(rows() == 1 && cols() == 1, "Var::item: the variable is ", rows(), "x", cols(), ", not 1x1");
  return std::as_const(*node_).value()(0, 0);
}


//! What an operation's backward_graph() sees: its own output and the gradient flowing into it, both
//! as variables, and where to send the gradient of each input (again a variable).
template <class Scalar>
class GraphContext {
public:
  //! One gradient contribution waiting to be summed; kept in the tape's arena.
  struct Contribution {
    Var<Scalar> grad;
    Index row;    //!< where a block contribution sits in the input; 0 for whole ones
    Index col;
    bool block;   //!< grad covers only a block of the input (the adjoint of a slice)
    Contribution* next;
  };

  GraphContext(Tape<Scalar>& tape, Contribution** pending) : tape_(&tape), pending_(pending) {}

  [[nodiscard]] Tape<Scalar>& tape() const noexcept { return *tape_; }
  //! The node's output, as a variable.
  [[nodiscard]] const Var<Scalar>& self() const noexcept { return self_; }
  //! d loss / d output, as a variable of the output's shape.
  [[nodiscard]] const Var<Scalar>& grad() const noexcept { return grad_; }
  //! The variable of one of the node's inputs.
  [[nodiscard]] Var<Scalar> input(Node<Scalar>* node) const noexcept { return tape_->var(node); }

  //! Sends d loss / d input = `contribution` to `input`; ignored when the input needs no gradient.
  void accumulate(Node<Scalar>* input, const Var<Scalar>& contribution) {
    if (!input->requires_grad()) return;
    SSMRL_ASSERT(contribution.rows() == input->rows() && contribution.cols() == input->cols(),
                 ::ssmrl::detail::message("backward_graph of ", self_.node()->name(), ": gradient of an input is ",
                                 contribution.rows(), "x", contribution.cols(), ", the input is ", input->rows(), "x",
                                 input->cols()));
    push(input, contribution, 0, 0, false);
  }

  //! Sends a gradient that is zero outside the block at (row, col) of `input`. Blocks sent to one
  //! input are summed in one pass, so that slicing a sequence step by step costs no more than
  //! its length.
  void accumulate_block(Node<Scalar>* input, const Var<Scalar>& contribution, Index row, Index col) {
    if (!input->requires_grad()) return;
    SSMRL_ASSERT(row >= 0 && col >= 0 && row + contribution.rows() <= input->rows() &&
                     col + contribution.cols() <= input->cols(),
                 ::ssmrl::detail::message("backward_graph of ", self_.node()->name(), ": a block gradient of shape ",
                                          contribution.rows(), "x", contribution.cols(), " at (", row, ", ", col,
                                          ") does not fit the ", input->rows(), "x", input->cols(), " input"));
    push(input, contribution, row, col, true);
  }

  void bind(const Var<Scalar>& self, const Var<Scalar>& grad) noexcept {
    self_ = self;
    grad_ = grad;
  }

private:
  void push(Node<Scalar>* input, const Var<Scalar>& grad, Index row, Index col, bool block) {
    auto* c = tape_->template allocate_array<Contribution>(1);
    new (c) Contribution{grad, row, col, block, pending_[input->index()]};
    pending_[input->index()] = c;
  }

  Tape<Scalar>* tape_;
  Contribution** pending_;
  Var<Scalar> self_;
  Var<Scalar> grad_;
};

template <class Scalar>
void Node<Scalar>::backward_graph(GraphContext<Scalar>&) const {
  SSMRL_THROW(::ssmrl::UsageError,
              ::ssmrl::detail::message(name(), ": this operation has no backward_graph(), so gradients through it cannot "
                                      "be differentiated again (create_graph)"));
}

}  // namespace ssmrl::ad
