// A feed-forward body as a cell without state: y = act(W_k ... act(W_1 x + b_1) ... + b_k), every
// layer activated. It lets the MAML paper's MLP policy (two hidden layers of 64 tanh units) use the
// same policies, rollouts and learners as the recurrent cells.
#pragma once

#include <vector>

#include "ssmrl/nn/cells/cell.hpp"
#include "ssmrl/nn/linear.hpp"

namespace ssmrl::nn {

struct MlpCellConfig {
  ad::Index input = 0;
  std::vector<ad::Index> hidden{64, 64};  //!< widths; the last is the output size
  Activation activation = Activation::tanh;
};

template <class Scalar, class BackendT = backend::Cpu>
class MlpCell {
  static_assert(std::is_same_v<BackendT, backend::Cpu>, "MlpCell: only the CPU backend is built");

public:
  using scalar_type = Scalar;
  using backend_type = BackendT;
  template <class T>
  using params_type = MlpParams<T>;
  using Params = params_type<ad::Matrix<Scalar>>;
  using config_type = MlpCellConfig;
  struct workspace_type {
    std::vector<ad::Matrix<Scalar>> layers;  // one buffer per hidden layer but the last
  };

  explicit MlpCell(MlpCellConfig config) : config_(std::move(config)) {
    SSMRL_REQUIRE(config_.input > 0 && !config_.hidden.empty(), "MlpCell: input ", config_.input,
                  " must be positive and there must be at least one layer");
    for (auto h : config_.hidden) SSMRL_REQUIRE(h > 0, "MlpCell: layer width ", h, " must be positive");
  }

  [[nodiscard]] ad::Index input_size() const noexcept { return config_.input; }
  [[nodiscard]] ad::Index state_size() const noexcept { return 0; }
  [[nodiscard]] ad::Index output_size() const noexcept { return config_.hidden.back(); }
  [[nodiscard]] const MlpCellConfig& config() const noexcept { return config_; }

  //! Xavier-uniform weights with the tanh gain 5/3 when the activation is tanh, zero biases.
  [[nodiscard]] Params init_params(init::Rng& rng) const {
    std::vector<ad::Index> sizes{config_.input};
    sizes.insert(sizes.end(), config_.hidden.begin(), config_.hidden.end());
    Params p;
    const double gain = config_.activation == Activation::tanh ? 5.0 / 3.0 : 1.0;
    for (std::size_t i = 0; i + 1 < sizes.size(); ++i) {
      p.layers.push_back(init_linear<Scalar>(sizes[i], sizes[i + 1], rng, LinearInit::xavier, gain));
    }
    return p;
  }
  void check_shapes(const Params& p) const {
    SSMRL_REQUIRE(p.layers.size() == config_.hidden.size(), "MlpCell: ", p.layers.size(), " layers, expected ",
                  config_.hidden.size());
    ad::Index in = config_.input;
    for (std::size_t i = 0; i < p.layers.size(); ++i) {
      const auto out = config_.hidden[i];
      SSMRL_REQUIRE(p.layers[i].W.rows() == out && p.layers[i].W.cols() == in && p.layers[i].b.rows() == out &&
                        p.layers[i].b.cols() == 1,
                    "MlpCell: layer ", i, " is ", p.layers[i].W.rows(), "x", p.layers[i].W.cols(), ", expected ", out,
                    "x", in);
      in = out;
    }
  }

  [[nodiscard]] workspace_type make_workspace(ad::Index batch) const {
    workspace_type ws;
    for (std::size_t i = 0; i + 1 < config_.hidden.size(); ++i) ws.layers.emplace_back(config_.hidden[i], batch);
    return ws;
  }

  void step(const Params& p, Eigen::Ref<ad::Matrix<Scalar>>, Eigen::Ref<const ad::Matrix<Scalar>> input,
            Eigen::Ref<ad::Matrix<Scalar>> output, workspace_type& ws) const {
    const std::size_t n = p.layers.size();
    for (std::size_t i = 0; i < n; ++i) {
      auto&& out = i + 1 == n ? output : Eigen::Ref<ad::Matrix<Scalar>>(ws.layers[i]);
      if (i == 0) linear_into(p.layers[i], input, out);
      else linear_into(p.layers[i], ws.layers[i - 1], out);
      activate_in_place(out, config_.activation);
    }
  }

  ad::Var<Scalar> forward_sequence(const params_type<ad::Var<Scalar>>& p, const ad::Var<Scalar>& inputs,
                                   ad::Index batch, const SequenceOptions<Scalar>& options = {}) const {
    detail::check_sequence("MlpCell", inputs, config_.input, batch, options, 0);
    ad::Var<Scalar> x = inputs;
    for (const auto& layer : p.layers) x = activate(linear(layer, x), config_.activation);
    if (options.final_state != nullptr) *options.final_state = inputs.tape().constant(0, batch, Scalar(0));
    return x;
  }

private:
  MlpCellConfig config_;
};

template <class Scalar, class B>
inline constexpr bool enable_cell<MlpCell<Scalar, B>> = true;

}  // namespace ssmrl::nn
