// GRU and LSTM cells laid out exactly as torch.nn.GRUCell and torch.nn.LSTMCell (gate blocks r, z, n
// and i, f, g, o), so that weights trained in PyTorch load and give the same outputs.
#pragma once

#include <array>
#include <string_view>
#include <tuple>

#include "ssmrl/nn/cells/cell.hpp"
#include "ssmrl/nn/init.hpp"

namespace ssmrl::nn {

template <class T>
struct RnnParams {
  T weight_ih;  //!< gates*hidden x input
  T weight_hh;  //!< gates*hidden x hidden
  T bias_ih;    //!< gates*hidden x 1
  T bias_hh;    //!< gates*hidden x 1
  static constexpr std::array<std::string_view, 4> names{"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
  auto fields() { return std::tie(weight_ih, weight_hh, bias_ih, bias_hh); }
  auto fields() const { return std::tie(weight_ih, weight_hh, bias_ih, bias_hh); }
  template <class U>
  using rebind = RnnParams<U>;
};

struct RnnConfig {
  ad::Index input = 0;
  ad::Index hidden = 0;
};

namespace detail {

template <class Scalar, class Derived>
class TorchRnnCell {
public:
  using scalar_type = Scalar;
  using backend_type = backend::Cpu;
  template <class T>
  using params_type = RnnParams<T>;
  using Params = params_type<ad::Matrix<Scalar>>;
  using config_type = RnnConfig;

  explicit TorchRnnCell(const RnnConfig& config) : config_(validated(config)) {}

  //! PyTorch's initialisation: every weight and bias uniform in +-1/sqrt(hidden).
  [[nodiscard]] Params init_params(init::Rng& rng) const {
    const auto g = Derived::gates * config_.hidden;
    Params p;
    p.weight_ih = init::torch_default<Scalar>(g, config_.input, config_.hidden, rng);
    p.weight_hh = init::torch_default<Scalar>(g, config_.hidden, config_.hidden, rng);
    p.bias_ih = init::torch_default<Scalar>(g, 1, config_.hidden, rng);
    p.bias_hh = init::torch_default<Scalar>(g, 1, config_.hidden, rng);
    return p;
  }

  [[nodiscard]] ad::Index input_size() const noexcept { return config_.input; }
  [[nodiscard]] ad::Index output_size() const noexcept { return config_.hidden; }
  [[nodiscard]] const RnnConfig& config() const noexcept { return config_; }

  void check_shapes(const Params& p) const {
    const auto g = Derived::gates * config_.hidden;
    nn::detail::check_parameter_shapes<Scalar>(
        Derived::cell_name, p,
        std::array<std::pair<ad::Index, ad::Index>, 4>{{{g, config_.input}, {g, config_.hidden}, {g, 1}, {g, 1}}});
  }

protected:
  static RnnConfig validated(const RnnConfig& c) {
    SSMRL_REQUIRE(c.input > 0 && c.hidden > 0, Derived::cell_name, ": sizes must be positive (input ", c.input,
                  ", hidden ", c.hidden, ")");
    return c;
  }

  RnnConfig config_;
};

}  // namespace detail

//! r = sigmoid(W_ir x + b_ir + W_hr h + b_hr), z likewise, n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),
//! h' = (1 - z) * n + z * h. State: h (hidden x batch). Output: h.
template <class Scalar, class BackendT = backend::Cpu>
class GruCell : public detail::TorchRnnCell<Scalar, GruCell<Scalar, BackendT>> {
  static_assert(std::is_same_v<BackendT, backend::Cpu>, "GruCell: only the CPU backend is built");
  using Base = detail::TorchRnnCell<Scalar, GruCell<Scalar, BackendT>>;

public:
  static constexpr int gates = 3;
  static constexpr const char* cell_name = "GruCell";
  using Base::Base;
  using typename Base::Params;
  struct workspace_type {
    ad::Matrix<Scalar> from_input;   // 3H x batch
    ad::Matrix<Scalar> from_hidden;  // 3H x batch
  };

  [[nodiscard]] ad::Index state_size() const noexcept { return this->config_.hidden; }

  [[nodiscard]] workspace_type make_workspace(ad::Index batch) const {
    const auto g = gates * this->config_.hidden;
    return {ad::Matrix<Scalar>(g, batch), ad::Matrix<Scalar>(g, batch)};
  }

  void step(const Params& p, Eigen::Ref<ad::Matrix<Scalar>> state, Eigen::Ref<const ad::Matrix<Scalar>> input,
            Eigen::Ref<ad::Matrix<Scalar>> output, workspace_type& ws) const {
    const auto h = this->config_.hidden;
    ws.from_input.noalias() = p.weight_ih * input;
    ws.from_input.colwise() += p.bias_ih.col(0);
    ws.from_hidden.noalias() = p.weight_hh * state;
    ws.from_hidden.colwise() += p.bias_hh.col(0);
    auto r = ws.from_input.topRows(h);  // r and z are overwritten by their gate values
    auto z = ws.from_input.middleRows(h, h);
    r.array() = 1 / (1 + (-(r.array() + ws.from_hidden.topRows(h).array())).exp());
    z.array() = 1 / (1 + (-(z.array() + ws.from_hidden.middleRows(h, h).array())).exp());
    auto n = ws.from_input.bottomRows(h);
    n.array() = (n.array() + r.array() * ws.from_hidden.bottomRows(h).array()).tanh();
    state.array() = n.array() + z.array() * (state.array() - n.array());
    output = state;
  }

  ad::Var<Scalar> forward_sequence(const RnnParams<ad::Var<Scalar>>& p, const ad::Var<Scalar>& inputs,
                                   ad::Index batch, const SequenceOptions<Scalar>& options = {}) const {
    const auto hid = this->config_.hidden;
    nn::detail::check_sequence(cell_name, inputs, this->config_.input, batch, options, hid);
    auto& tape = inputs.tape();
    const ad::Index steps = inputs.cols() / batch;
    const auto from_input = ad::add(ad::matmul(p.weight_ih, inputs), p.bias_ih);
    nn::detail::StepList<Scalar> outputs(tape, steps);
    ad::Var<Scalar> h = options.initial_state.valid() ? options.initial_state : tape.constant(hid, batch, Scalar(0));
    for (ad::Index t = 0; t < steps; ++t) {
      h = nn::detail::kept_state(h, options.keep, t, batch);
      const auto gi = ad::slice_cols(from_input, t * batch, batch);
      const auto gh = ad::add(ad::matmul(p.weight_hh, h), p.bias_hh);
      const auto r = ad::sigmoid(ad::add(ad::slice_rows(gi, 0, hid), ad::slice_rows(gh, 0, hid)));
      const auto z = ad::sigmoid(ad::add(ad::slice_rows(gi, hid, hid), ad::slice_rows(gh, hid, hid)));
      const auto n = ad::tanh(ad::add(ad::slice_rows(gi, 2 * hid, hid), ad::mul(r, ad::slice_rows(gh, 2 * hid, hid))));
      h = ad::add(n, ad::mul(z, ad::sub(h, n)));
      outputs.set(t, h);
    }
    if (options.final_state != nullptr) *options.final_state = h;
    return ad::concat_cols(outputs.span(steps));
  }
};

//! i, f, o = sigmoid(...), g = tanh(...), c' = f * c + i * g, h' = o * tanh(c'). State: [h; c]
//! stacked (2 hidden x batch). Output: h.
template <class Scalar, class BackendT = backend::Cpu>
class LstmCell : public detail::TorchRnnCell<Scalar, LstmCell<Scalar, BackendT>> {
  static_assert(std::is_same_v<BackendT, backend::Cpu>, "LstmCell: only the CPU backend is built");
  using Base = detail::TorchRnnCell<Scalar, LstmCell<Scalar, BackendT>>;

public:
  static constexpr int gates = 4;
  static constexpr const char* cell_name = "LstmCell";
  using Base::Base;
  using typename Base::Params;
  struct workspace_type {
    ad::Matrix<Scalar> gates_value;  // 4H x batch
  };

  [[nodiscard]] ad::Index state_size() const noexcept { return 2 * this->config_.hidden; }

  [[nodiscard]] workspace_type make_workspace(ad::Index batch) const {
    return {ad::Matrix<Scalar>(gates * this->config_.hidden, batch)};
  }

  void step(const Params& p, Eigen::Ref<ad::Matrix<Scalar>> state, Eigen::Ref<const ad::Matrix<Scalar>> input,
            Eigen::Ref<ad::Matrix<Scalar>> output, workspace_type& ws) const {
    const auto h = this->config_.hidden;
    auto& g = ws.gates_value;
    g.noalias() = p.weight_ih * input;
    g.noalias() += p.weight_hh * state.topRows(h);
    g.colwise() += (p.bias_ih + p.bias_hh).col(0);
    auto sigmoid = [](auto block) { block.array() = 1 / (1 + (-block.array()).exp()); };
    sigmoid(g.topRows(2 * h));
    sigmoid(g.bottomRows(h));
    g.middleRows(2 * h, h).array() = g.middleRows(2 * h, h).array().tanh();
    auto c = state.bottomRows(h);
    c.array() = g.middleRows(h, h).array() * c.array() + g.topRows(h).array() * g.middleRows(2 * h, h).array();
    state.topRows(h).array() = g.bottomRows(h).array() * c.array().tanh();
    output = state.topRows(h);
  }

  ad::Var<Scalar> forward_sequence(const RnnParams<ad::Var<Scalar>>& p, const ad::Var<Scalar>& inputs,
                                   ad::Index batch, const SequenceOptions<Scalar>& options = {}) const {
    const auto hid = this->config_.hidden;
    nn::detail::check_sequence(cell_name, inputs, this->config_.input, batch, options, 2 * hid);
    auto& tape = inputs.tape();
    const ad::Index steps = inputs.cols() / batch;
    const auto from_input = ad::add(ad::matmul(p.weight_ih, inputs), ad::add(p.bias_ih, p.bias_hh));
    nn::detail::StepList<Scalar> outputs(tape, steps);
    ad::Var<Scalar> h;
    ad::Var<Scalar> c;
    if (options.initial_state.valid()) {
      h = ad::slice_rows(options.initial_state, 0, hid);
      c = ad::slice_rows(options.initial_state, hid, hid);
    } else {
      h = c = tape.constant(hid, batch, Scalar(0));
    }
    for (ad::Index t = 0; t < steps; ++t) {
      h = nn::detail::kept_state(h, options.keep, t, batch);
      c = nn::detail::kept_state(c, options.keep, t, batch);
      const auto g = ad::add(ad::slice_cols(from_input, t * batch, batch), ad::matmul(p.weight_hh, h));
      const auto i = ad::sigmoid(ad::slice_rows(g, 0, hid));
      const auto f = ad::sigmoid(ad::slice_rows(g, hid, hid));
      const auto cand = ad::tanh(ad::slice_rows(g, 2 * hid, hid));
      const auto o = ad::sigmoid(ad::slice_rows(g, 3 * hid, hid));
      c = ad::add(ad::mul(f, c), ad::mul(i, cand));
      h = ad::mul(o, ad::tanh(c));
      outputs.set(t, h);
    }
    if (options.final_state != nullptr) *options.final_state = ad::concat_rows({h, c});
    return ad::concat_cols(outputs.span(steps));
  }
};

template <class Scalar, class B>
inline constexpr bool enable_cell<GruCell<Scalar, B>> = true;
template <class Scalar, class B>
inline constexpr bool enable_cell<LstmCell<Scalar, B>> = true;

}  // namespace ssmrl::nn
