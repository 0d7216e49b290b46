// The diagonal state space cell with zero-order-hold discretisation and a stable parameterisation:
//   a = -exp(log_a), dt = exp(log_dt), abar = exp(dt * a), bbar = expm1(dt * a) / a (per state),
//   h_t = abar * h_{t-1} + (bbar * B) x_t,  y_t = act(C h_t + D x_t + c).
// Training runs the recurrence as one fused scan node (ad::diag_scan) instead of a node per step.
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
struct DiagSsmParams {
  T log_a;   //!< state x 1; the continuous-time decay is -exp(log_a)
  T log_dt;  //!< state x 1; the step size is exp(log_dt)
  T B;       //!< state x input
  T C;       //!< output x state
  T D;       //!< output x input
  T c;       //!< output x 1
  static constexpr std::array<std::string_view, 6> names{"log_a", "log_dt", "B", "C", "D", "c"};
  auto fields() { return std::tie(log_a, log_dt, B, C, D, c); }
  auto fields() const { return std::tie(log_a, log_dt, B, C, D, c); }
  template <class U>
  using rebind = DiagSsmParams<U>;
};

//! Initialisations for the real diagonal, after S4D and S5 (whose complex eigenvalues have real
//! parts -(n + 1) or -1/2; only the real part is kept here).
enum class DiagSsmInit {
  s4d_real,  //!< a_n = n + 1; B all ones / sqrt(input); C normal(0, 1/state)
  s4d_lin,   //!< a_n = 1/2 for every state; B as s4d_real
  s5,        //!< a_n = 1/2; B LeCun-normal (std 1/sqrt(input)); C normal(0, 1/state)
};

struct DiagSsmConfig {
  ad::Index input = 0;
  ad::Index state = 0;
  ad::Index output = 0;
  Activation activation = Activation::tanh;
  bool readout_bias = true;
  DiagSsmInit init = DiagSsmInit::s4d_real;
  double dt_min = 1e-3;  //!< log_dt is drawn log-uniformly in [dt_min, dt_max]
  double dt_max = 1e-1;
  bool scan = true;  //!< train with the fused scan; false records one node per step (for checks)
};

template <class Scalar, class BackendT = backend::Cpu>
class DiagSsmCell : public detail::SsmCellBase<Scalar, BackendT, DiagSsmParams, DiagSsmConfig> {
  static_assert(std::is_same_v<BackendT, backend::Cpu>, "DiagSsmCell: only the CPU backend is built");
  using Base = detail::SsmCellBase<Scalar, BackendT, DiagSsmParams, DiagSsmConfig>;
  using Base::config_;

public:
  template <class T>
  using params_type = DiagSsmParams<T>;
  using typename Base::Params;
  struct workspace_type {
    ad::Matrix<Scalar> a_bar;  // state x 1
    ad::Matrix<Scalar> b_bar;  // state x input
    ad::Matrix<Scalar> driven;  // state x batch
  };

  explicit DiagSsmCell(const DiagSsmConfig& config) : Base(validated(config)) {}

  [[nodiscard]] Params init_params(init::Rng& rng) const {
    const auto& c = config_;
    const auto n = c.state;
    Params p;
    p.log_a.resize(n, 1);
    for (ad::Index i = 0; i < n; ++i) {
      p.log_a(i, 0) = static_cast<Scalar>(c.init == DiagSsmInit::s4d_real ? std::log(double(i + 1)) : std::log(0.5));
    }
    p.log_dt = init::uniform<Scalar>(n, 1, std::log(c.dt_min), std::log(c.dt_max), rng);
    if (c.init == DiagSsmInit::s5) {
      p.B = init::normal<Scalar>(n, c.input, 1.0 / std::sqrt(double(c.input)), rng);
    } else {
      p.B = ad::Matrix<Scalar>::Constant(n, c.input, Scalar(1.0 / std::sqrt(double(c.input))));
    }
    p.C = init::normal<Scalar>(c.output, n, 1.0 / std::sqrt(double(n)), rng);
    p.D = init::xavier_uniform<Scalar>(c.output, c.input, rng);
    p.c = ad::Matrix<Scalar>::Zero(c.output, 1);
    return p;
  }

  void check_shapes(const Params& p) const {
    const auto& c = config_;
    detail::check_parameter_shapes<Scalar>(
        "DiagSsmCell", p,
        std::array<std::pair<ad::Index, ad::Index>, 6>{
            {{c.state, 1}, {c.state, 1}, {c.state, c.input}, {c.output, c.state}, {c.output, c.input}, {c.output, 1}}});
  }

  [[nodiscard]] workspace_type make_workspace(ad::Index batch) const {
    return {ad::Matrix<Scalar>(config_.state, 1), ad::Matrix<Scalar>(config_.state, config_.input),
            ad::Matrix<Scalar>(config_.state, batch)};
  }

  void step(const Params& p, Eigen::Ref<ad::Matrix<Scalar>> state, Eigen::Ref<const ad::Matrix<Scalar>> input,
            Eigen::Ref<ad::Matrix<Scalar>> output, workspace_type& ws) const {
    // The discretisation is recomputed each step (state exponentials), so that parameters changed
    // in place by an optimiser are always seen.
    const auto a = -p.log_a.array().exp();
    const auto dt_a = p.log_dt.array().exp() * a;
    ws.a_bar.array() = dt_a.exp();
    ws.b_bar = (dt_a.unaryExpr([](Scalar v) { return std::expm1(v); }) / a).matrix().asDiagonal() * p.B;
    ws.driven.noalias() = ws.b_bar * input;
    state = (state.array().colwise() * ws.a_bar.col(0).array()).matrix() + ws.driven;
    output.noalias() = p.C * state;
    output.noalias() += p.D * input;
    if (config_.readout_bias) output.colwise() += p.c.col(0);
    activate_in_place(output, config_.activation);
  }

  ad::Var<Scalar> forward_sequence(const params_type<ad::Var<Scalar>>& p, const ad::Var<Scalar>& inputs,
                                   ad::Index batch, const SequenceOptions<Scalar>& options = {}) const {
    detail::check_sequence("DiagSsmCell", inputs, config_.input, batch, options, config_.state);
    auto& tape = inputs.tape();
    const ad::Index steps = inputs.cols() / batch;
    const auto a = -ad::exp(p.log_a);
    const auto dt_a = ad::mul(ad::exp(p.log_dt), a);
    const auto a_bar = ad::exp(dt_a);
    const auto b_bar = ad::mul(ad::div(ad::expm1(dt_a), a), p.B);  // (abar - 1) / a without cancellation
    auto driven = ad::matmul(b_bar, inputs);
    ad::Var<Scalar> hidden;
    if (config_.scan) {
      if (options.initial_state.valid()) {
        const auto first = ad::add(ad::mul(a_bar, detail::kept_state(options.initial_state, options.keep, 0, batch)),
                                   ad::slice_cols(driven, 0, batch));
        driven = steps == 1 ? first : ad::concat_cols({first, ad::slice_cols(driven, batch, (steps - 1) * batch)});
      }
      hidden = ad::diag_scan(a_bar, driven, batch, options.keep);
    } else {
      detail::StepList<Scalar> states(tape, steps);
      ad::Var<Scalar> h = ad::slice_cols(driven, 0, batch);
      if (options.initial_state.valid()) {
        h = ad::add(ad::mul(a_bar, detail::kept_state(options.initial_state, options.keep, 0, batch)), h);
      }
      states.set(0, h);
      for (ad::Index t = 1; t < steps; ++t) {
        h = ad::add(ad::mul(a_bar, detail::kept_state(h, options.keep, t, batch)), ad::slice_cols(driven, t * batch, batch));
        states.set(t, h);
      }
      hidden = ad::concat_cols(states.span(steps));
    }
    if (options.final_state != nullptr) *options.final_state = ad::slice_cols(hidden, (steps - 1) * batch, batch);
    auto pre = ad::add(ad::matmul(p.C, hidden), ad::matmul(p.D, inputs));
    if (config_.readout_bias) pre = ad::add(pre, p.c);
    return activate(pre, config_.activation);
  }

private:
  static DiagSsmConfig validated(const DiagSsmConfig& c) {
    SSMRL_REQUIRE(c.input > 0 && c.state > 0 && c.output > 0, "DiagSsmCell: sizes must be positive (input ", c.input,
                  ", state ", c.state, ", output ", c.output, ")");
    SSMRL_REQUIRE(c.dt_min > 0 && c.dt_min <= c.dt_max, "DiagSsmCell: dt range [", c.dt_min, ", ", c.dt_max,
                  "] must be positive and ordered");
    return c;
  }

};

template <class Scalar, class B>
inline constexpr bool enable_cell<DiagSsmCell<Scalar, B>> = true;

}  // namespace ssmrl::nn
