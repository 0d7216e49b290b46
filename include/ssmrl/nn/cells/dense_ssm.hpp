// The dense linear state space cell: h_t = A h_{t-1} + B x_t, y_t = act(C h_t + D x_t + c).
#pragma once

#include <array>
#include <cmath>
#include <string_view>
#include <tuple>

#include "ssmrl/nn/cells/cell.hpp"
#include "ssmrl/nn/init.hpp"
#include "ssmrl/nn/linear.hpp"

namespace ssmrl::nn {

template <class T>
struct DenseSsmParams {
  T A;  //!< state x state
  T B;  //!< state x input
  T C;  //!< output x state
  T D;  //!< output x input
  T c;  //!< output x 1
  static constexpr std::array<std::string_view, 5> names{"A", "B", "C", "D", "c"};
  auto fields() { return std::tie(A, B, C, D, c); }
  auto fields() const { return std::tie(A, B, C, D, c); }
  template <class U>
  using rebind = DenseSsmParams<U>;
};

struct DenseSsmConfig {
  ad::Index input = 0;
  ad::Index state = 0;
  ad::Index output = 0;
  Activation activation = Activation::tanh;
  bool readout_bias = true;  //!< add c; without it c stays zero and unused
};

template <class Scalar, class BackendT = backend::Cpu>
class DenseSsmCell : public detail::SsmCellBase<Scalar, BackendT, DenseSsmParams, DenseSsmConfig> {
  static_assert(std::is_same_v<BackendT, backend::Cpu>, "DenseSsmCell: only the CPU backend is built");
  using Base = detail::SsmCellBase<Scalar, BackendT, DenseSsmParams, DenseSsmConfig>;
  using Base::config_;

public:
  template <class T>
  using params_type = DenseSsmParams<T>;
  using typename Base::Params;
  struct workspace_type {
    ad::Matrix<Scalar> next_state;
  };

  //! init_params(): A with entries of +-0.9/sqrt(state) (spectral radius about 0.9 or less
  //! in expectation), B, C, D Xavier-uniform, c zero.
  explicit DenseSsmCell(const DenseSsmConfig& config) : Base(validated(config)) {}

  [[nodiscard]] Params init_params(init::Rng& rng) const {
    const auto& c = config_;
    const double a_bound = 0.9 / std::sqrt(static_cast<double>(c.state));
    Params p;
    p.A = init::uniform<Scalar>(c.state, c.state, -a_bound, a_bound, rng);
    p.B = init::xavier_uniform<Scalar>(c.state, c.input, rng);
    p.C = init::xavier_uniform<Scalar>(c.output, c.state, rng);
    p.D = init::xavier_uniform<Scalar>(c.output, c.input, rng);
    p.c = ad::Matrix<Scalar>::Zero(c.output, 1);
    return p;
  }

  //! Throws ssmrl::InvalidArgument unless every parameter has its configured shape.
  void check_shapes(const Params& p) const {
    const auto& c = config_;
    detail::check_parameter_shapes<Scalar>(
        "DenseSsmCell", p,
        std::array<std::pair<ad::Index, ad::Index>, 5>{
            {{c.state, c.state}, {c.state, c.input}, {c.output, c.state}, {c.output, c.input}, {c.output, 1}}});
  }

  [[nodiscard]] workspace_type make_workspace(ad::Index batch) const {
    return {ad::Matrix<Scalar>(config_.state, batch)};
  }

  //! One step of a batch without a tape: state (state x batch) advances in place, output gets y.
  void step(const Params& p, Eigen::Ref<ad::Matrix<Scalar>> state, Eigen::Ref<const ad::Matrix<Scalar>> input,
            Eigen::Ref<ad::Matrix<Scalar>> output, workspace_type& ws) const {
    ws.next_state.noalias() = p.A * state;
    ws.next_state.noalias() += p.B * input;
    state = ws.next_state;
    output.noalias() = p.C * state;
    output.noalias() += p.D * input;
    if (config_.readout_bias) output.colwise() += p.c.col(0);
    activate_in_place(output, config_.activation);
  }

  //! Outputs of whole sequences on the tape. The input and readout products are taken over the
  //! whole sequence at once; only the recurrence walks the steps.
  ad::Var<Scalar> forward_sequence(const params_type<ad::Var<Scalar>>& p, const ad::Var<Scalar>& inputs,
                                   ad::Index batch, const SequenceOptions<Scalar>& options = {}) const {
    detail::check_sequence("DenseSsmCell", inputs, config_.input, batch, options, config_.state);
    auto& tape = inputs.tape();
    const ad::Index steps = inputs.cols() / batch;
    const auto driven = ad::matmul(p.B, inputs);
    detail::StepList<Scalar> states(tape, steps);
    ad::Var<Scalar> h = ad::slice_cols(driven, 0, batch);
    if (options.initial_state.valid()) {
      h = ad::add(ad::matmul(p.A, detail::kept_state(options.initial_state, options.keep, 0, batch)), h);
    }
    states.set(0, h);
    for (ad::Index t = 1; t < steps; ++t) {
      h = ad::add(ad::matmul(p.A, detail::kept_state(h, options.keep, t, batch)), ad::slice_cols(driven, t * batch, batch));
      states.set(t, h);
    }
    if (options.final_state != nullptr) *options.final_state = h;
    const auto hidden = ad::concat_cols(states.span(steps));
    auto pre = ad::add(ad::matmul(p.C, hidden), ad::matmul(p.D, inputs));
    if (config_.readout_bias) pre = ad::add(pre, p.c);
    return activate(pre, config_.activation);
  }

private:
  static DenseSsmConfig validated(const DenseSsmConfig& c) {
    SSMRL_REQUIRE(c.input > 0 && c.state > 0 && c.output > 0, "DenseSsmCell: sizes must be positive (input ",
                  c.input, ", state ", c.state, ", output ", c.output, ")");
    return c;
  }

};

template <class Scalar, class B>
inline constexpr bool enable_cell<DenseSsmCell<Scalar, B>> = true;

}  // namespace ssmrl::nn
