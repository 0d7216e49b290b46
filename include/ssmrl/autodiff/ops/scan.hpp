// A fused diagonal linear scan over a whole sequence: one node instead of one per step.
//   forward: h_0 = u_0,  h_t = a * keep_t * h_{t-1} + u_t
//   reverse: y_{T-1} = x_{T-1},  y_t = a * keep_{t+1} * y_{t+1} + x_t
// a is n x 1 (per row), u is n x (T * batch) in time-major blocks, keep is an optional 1 x (T * batch)
// mask (0 where a sequence restarts). Each direction is the other's adjoint.
#pragma once

#include "ssmrl/autodiff/ops/reduce.hpp"
#include "ssmrl/autodiff/ops/shape.hpp"

namespace ssmrl::ad {

template <class Scalar>
Var<Scalar> diag_scan(const Var<Scalar>& a, const Var<Scalar>& u, Index batch, const Scalar* keep = nullptr,
                      bool reverse = false);

namespace detail {

// out = scan of in with decay a, in the given direction; `in` and `out` may not alias.
template <class Scalar, class A, class In, class Out>
void run_scan(const A& a, const In& in, Out& out, Index batch, const Scalar* keep, bool reverse) {
  const Index steps = in.cols() / batch;
  auto link = [&](Index to, Index from, Index later) {
    for (Index b = 0; b < batch; ++b) {
      const Scalar k = keep != nullptr ? keep[later * batch + b] : Scalar(1);
      out.col(to * batch + b).array() = a.array() * (k * out.col(from * batch + b).array()) + in.col(to * batch + b).array();
    }
  };
  if (!reverse) {
    out.leftCols(batch) = in.leftCols(batch);
    for (Index t = 1; t < steps; ++t) link(t, t - 1, t);
  } else {
    out.rightCols(batch) = in.rightCols(batch);
    for (Index t = steps - 1; t-- > 0;) link(t, t + 1, t + 1);
  }
}

template <class Scalar>
class DiagScanNode final : public Node<Scalar> {
public:
  DiagScanNode(Node<Scalar>* a, Node<Scalar>* u, Index batch, const Scalar* keep, bool reverse, Scalar* scratch)
      : a_(a), u_(u), batch_(batch), keep_(keep), reverse_(reverse), scratch_(scratch) {}
  [[nodiscard]] const char* name() const noexcept override { return "diag_scan"; }

  void backward() override {
    const Index rows = this->rows();
    const Index steps = this->cols() / batch_;
    Eigen::Map<Matrix<Scalar>> d_in(scratch_, rows, this->cols());
    run_scan<Scalar>(a_->value(), this->adjoint(), d_in, batch_, keep_, !reverse_);
    if (u_->requires_grad()) u_->accumulate(d_in);
    if (a_->requires_grad()) {
      // d a = sum over linked pairs of d_in[to] * keep * out[from]
      Eigen::Map<Eigen::Matrix<Scalar, Eigen::Dynamic, 1>> da(scratch_ + this->size(), rows);
      da.setZero();
      const auto out = this->value();
      for (Index t = 1; t < steps; ++t) {
        const Index to = reverse_ ? t - 1 : t;
        const Index from = reverse_ ? t : t - 1;
        for (Index b = 0; b < batch_; ++b) {
          const Scalar k = keep_ != nullptr ? keep_[t * batch_ + b] : Scalar(1);
          da.array() += k * d_in.col(to * batch_ + b).array() * out.col(from * batch_ + b).array();
        }
      }
      a_->accumulate(da);
    }
  }

  void backward_graph(GraphContext<Scalar>& ctx) const override {
    const auto a = ctx.input(a_);
    const auto d_in = diag_scan(a, ctx.grad(), batch_, keep_, !reverse_);
    if (u_->requires_grad()) ctx.accumulate(u_, d_in);
    if (a_->requires_grad() && this->cols() > batch_) {
      const Index linked = this->cols() - batch_;
      const auto out = ctx.self();
      auto earlier = reverse_ ? slice_cols(d_in, 0, linked) : slice_cols(d_in, batch_, linked);
      auto later = reverse_ ? slice_cols(out, batch_, linked) : slice_cols(out, 0, linked);
      if (keep_ != nullptr) {
        later = mul(later, ctx.tape().constant(Eigen::Map<const Matrix<Scalar>>(keep_ + batch_, 1, linked)));
      }
      ctx.accumulate(a_, rowwise_sum(mul(earlier, later)));
    }
  }

private:
  Node<Scalar>* a_;
  Node<Scalar>* u_;
  Index batch_;
  const Scalar* keep_;
  bool reverse_;
  Scalar* scratch_;
};

}  // namespace detail

//! The scan described at the top of this file, as one node with its own backward.
template <class Scalar>
Var<Scalar> diag_scan(const Var<Scalar>& a, const Var<Scalar>& u, Index batch, const Scalar* keep, bool reverse) {
  detail::check_operand("diag_scan", "a", a);
  detail::check_operand("diag_scan", "u", u);
  detail::check_same_tape("diag_scan", a, u);
  SSMRL_REQUIRE(a.cols() == 1 && a.rows() == u.rows(), "ad::diag_scan: a is ", a.rows(), "x", a.cols(),
                ", expected ", u.rows(), "x1 for u of ", u.rows(), "x", u.cols());
  SSMRL_REQUIRE(batch > 0 && u.cols() > 0 && u.cols() % batch == 0, "ad::diag_scan: u has ", u.cols(),
                " columns, not a whole number of steps of batch ", batch);
  auto& tape = a.tape();
  const bool requires_grad = detail::any_requires_grad<Scalar>({&a, &u});
  const Scalar* keep_copy = nullptr;
  if (keep != nullptr) {
    Scalar* k = tape.allocate(u.cols());
    std::copy(keep, keep + u.cols(), k);
    keep_copy = k;
  }
  // Room for the adjoint of the input and of a, so that backward allocates nothing.
  Scalar* scratch = requires_grad ? tape.allocate(u.size() + u.rows()) : nullptr;
  auto* node = tape.template make_node<detail::DiagScanNode<Scalar>>(u.rows(), u.cols(), requires_grad, a.node(),
                                                                     u.node(), batch, keep_copy, reverse, scratch);
  auto out = node->value();
  detail::run_scan<Scalar>(a.value(), u.value(), out, batch, keep_copy, reverse);
  return tape.var(node);
}

}  // namespace ssmrl::ad
