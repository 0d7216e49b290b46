// The Python prototypes' state space cell, kept so that their results can be reproduced:
//   h_t = A(h_{t-1}) + B x_t,  y_t = C(h_t) + D x_t,
// with A = Linear(state, hidden) -> ReLU -> Linear(hidden, state), C = Linear(state, hidden) -> ReLU ->
// Linear(hidden, output), and B, D linear layers with bias.
#pragma once

#include <array>
#include <string_view>
#include <tuple>

#include "ssmrl/nn/cells/cell.hpp"
#include "ssmrl/nn/linear.hpp"

namespace ssmrl::nn {

template <class T>
struct MlpSsmParams {
  MlpParams<T> A;
  LinearParams<T> B;
  MlpParams<T> C;
  LinearParams<T> D;
  static constexpr std::array<std::string_view, 4> names{"A", "B", "C", "D"};
  auto fields() { return std::tie(A, B, C, D); }
  auto fields() const { return std::tie(A, B, C, D); }
  template <class U>
  using rebind = MlpSsmParams<U>;
};

struct MlpSsmConfig {
  ad::Index input = 0;
  ad::Index state = 0;
  ad::Index output = 0;
  ad::Index hidden = 128;  //!< width of the A and C networks, as in the prototypes
};

template <class Scalar, class BackendT = backend::Cpu>
class MlpSsmCell : public detail::SsmCellBase<Scalar, BackendT, MlpSsmParams, MlpSsmConfig> {
  static_assert(std::is_same_v<BackendT, backend::Cpu>, "MlpSsmCell: only the CPU backend is built");
  using Base = detail::SsmCellBase<Scalar, BackendT, MlpSsmParams, MlpSsmConfig>;
  using Base::config_;

public:
  template <class T>
  using params_type = MlpSsmParams<T>;
  using typename Base::Params;
  struct workspace_type {
    ad::Matrix<Scalar> hidden;      // hidden x batch
    ad::Matrix<Scalar> next_state;  // state x batch
  };

  explicit MlpSsmCell(const MlpSsmConfig& config) : Base(validated(config)) {}

  //! PyTorch's nn.Linear initialisation, as the prototypes used.
  [[nodiscard]] Params init_params(init::Rng& rng) const {
    const auto& c = config_;
    Params p;
    p.A = init_mlp<Scalar>({c.state, c.hidden, c.state}, rng, LinearInit::torch_default);
    p.B = init_linear<Scalar>(c.input, c.state, rng, LinearInit::torch_default);
    p.C = init_mlp<Scalar>({c.state, c.hidden, c.output}, rng, LinearInit::torch_default);
    p.D = init_linear<Scalar>(c.input, c.output, rng, LinearInit::torch_default);
    return p;
  }

  void check_shapes(const Params& p) const {
    const auto& c = config_;
    auto expect = [](std::string_view name, const ad::Matrix<Scalar>& m, ad::Index rows, ad::Index cols) {
      SSMRL_REQUIRE(m.rows() == rows && m.cols() == cols, "MlpSsmCell: parameter ", name, " is ", m.rows(), "x",
                    m.cols(), ", expected ", rows, "x", cols);
    };
    SSMRL_REQUIRE(p.A.layers.size() == 2 && p.C.layers.size() == 2, "MlpSsmCell: A and C need 2 layers, have ",
                  p.A.layers.size(), " and ", p.C.layers.size());
    expect("A.layers.0.W", p.A.layers[0].W, c.hidden, c.state);
    expect("A.layers.0.b", p.A.layers[0].b, c.hidden, 1);
    expect("A.layers.1.W", p.A.layers[1].W, c.state, c.hidden);
    expect("A.layers.1.b", p.A.layers[1].b, c.state, 1);
    expect("B.W", p.B.W, c.state, c.input);
    expect("B.b", p.B.b, c.state, 1);
    expect("C.layers.0.W", p.C.layers[0].W, c.hidden, c.state);
    expect("C.layers.0.b", p.C.layers[0].b, c.hidden, 1);
    expect("C.layers.1.W", p.C.layers[1].W, c.output, c.hidden);
    expect("C.layers.1.b", p.C.layers[1].b, c.output, 1);
    expect("D.W", p.D.W, c.output, c.input);
    expect("D.b", p.D.b, c.output, 1);
  }

  [[nodiscard]] workspace_type make_workspace(ad::Index batch) const {
    return {ad::Matrix<Scalar>(config_.hidden, batch), ad::Matrix<Scalar>(config_.state, batch)};
  }

  void step(const Params& p, Eigen::Ref<ad::Matrix<Scalar>> state, Eigen::Ref<const ad::Matrix<Scalar>> input,
            Eigen::Ref<ad::Matrix<Scalar>> output, workspace_type& ws) const {
    linear_into(p.A.layers[0], state, ws.hidden);
    ws.hidden = ws.hidden.cwiseMax(Scalar(0));
    linear_into(p.A.layers[1], ws.hidden, ws.next_state);
    ws.next_state.noalias() += p.B.W * input;
    ws.next_state.colwise() += p.B.b.col(0);
    state = ws.next_state;
    linear_into(p.C.layers[0], state, ws.hidden);
    ws.hidden = ws.hidden.cwiseMax(Scalar(0));
    linear_into(p.C.layers[1], ws.hidden, output);
    output.noalias() += p.D.W * input;
    output.colwise() += p.D.b.col(0);
  }

  ad::Var<Scalar> forward_sequence(const params_type<ad::Var<Scalar>>& p, const ad::Var<Scalar>& inputs,
                                   ad::Index batch, const SequenceOptions<Scalar>& options = {}) const {
    detail::check_sequence("MlpSsmCell", inputs, config_.input, batch, options, config_.state);
    auto& tape = inputs.tape();
    const ad::Index steps = inputs.cols() / batch;
    const auto driven = linear(p.B, inputs);
    detail::StepList<Scalar> states(tape, steps);
    ad::Var<Scalar> h =
        options.initial_state.valid() ? options.initial_state : tape.constant(config_.state, batch, Scalar(0));
    for (ad::Index t = 0; t < steps; ++t) {
      h = ad::add(mlp(p.A, detail::kept_state(h, options.keep, t, batch), Activation::relu),
                  ad::slice_cols(driven, t * batch, batch));
      states.set(t, h);
    }
    if (options.final_state != nullptr) *options.final_state = h;
    const auto hidden = ad::concat_cols(states.span(steps));
    return ad::add(mlp(p.C, hidden, Activation::relu), linear(p.D, inputs));
  }

private:
  static MlpSsmConfig validated(const MlpSsmConfig& c) {
    SSMRL_REQUIRE(c.input > 0 && c.state > 0 && c.output > 0 && c.hidden > 0,
                  "MlpSsmCell: sizes must be positive (input ", c.input, ", state ", c.state, ", output ", c.output,
                  ", hidden ", c.hidden, ")");
    return c;
  }

};

template <class Scalar, class B>
inline constexpr bool enable_cell<MlpSsmCell<Scalar, B>> = true;

}  // namespace ssmrl::nn
