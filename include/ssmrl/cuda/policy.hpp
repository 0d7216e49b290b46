// A diagonal-SSM policy held on a device: the parameters and their gradients in two device buffers,
// its policy-gradient loss over whole sequences recorded on a device tape (the state recurrence as
// the reset-aware parallel scan), and a batched step for thousands of environments per call.
//
// The model is that of RecurrentPolicy<nn::DiagSsmCell<S>, Head> with a tanh readout with bias and
// no normalisation: h_t = abar * keep_t * h_{t-1} + (bbar B) x_t, y_t = tanh(C h_t + D x_t + c), then
// a categorical head (logits = W y + b) or a Gaussian one with a learned, clamped log_std
// (mean = W y + b). Parameters are laid out flat, column-major, in the order of `names()`, which is
// the order of the CPU policy's for_each_parameter (bridge.hpp copies between the two).
#pragma once

#include <array>
#include <span>
#include <string_view>
#include <vector>

#include "ssmrl/cuda/tape.hpp"

namespace ssmrl::cuda {

enum class Head { categorical, gaussian };

struct DiagSsmPolicyShape {
  Index obs = 0;
  Index state = 0;
  Index hidden = 0;
  Index actions = 0;
  Head head = Head::categorical;
  double log_std_min = -20.0;  //!< Gaussian: the clamp of log_std, as GaussianHead's
  double log_std_max = 2.0;
};

//! Sequences on the device: column t * batch + b is sample b at step t.
template <class S>
struct DeviceSequences {
  const S* obs = nullptr;      //!< obs x (steps * batch)
  const S* actions = nullptr;  //!< actions x (steps * batch), or 1 x ... of class indices
  const S* weights = nullptr;  //!< 1 x (steps * batch): the advantages
  const S* keep = nullptr;     //!< 1 x (steps * batch), 0 where a sequence restarts; null: none does
  Index batch = 0;
  Index steps = 0;
  const S* initial_state = nullptr;  //!< state x batch: the state before step 0; null: zero
};

template <class S, class Device>
class DiagSsmPolicy {
public:
  static constexpr std::array<std::string_view, 9> all_names{
      "cell.log_a", "cell.log_dt", "cell.B", "cell.C", "cell.D", "cell.c", "head.W", "head.b", "head.log_std"};

  DiagSsmPolicy(Device& device, const DiagSsmPolicyShape& shape)
      : device_(&device),
        shape_(validated(shape)),
        layout_(layout_of(shape_)),
        parameters_(device, layout_.back().offset + layout_.back().size),
        gradients_(device, parameters_.size()),
        work_(device, std::size_t(16) << 20) {}

  [[nodiscard]] const DiagSsmPolicyShape& shape() const noexcept { return shape_; }
  [[nodiscard]] Index parameter_count() const noexcept { return parameters_.size(); }
  //! The parameters' names in their flat order (the Gaussian head has log_std last).
  [[nodiscard]] std::span<const std::string_view> names() const noexcept { return {all_names.data(), layout_.size()}; }
  //! rows and cols of parameter i.
  [[nodiscard]] std::pair<Index, Index> parameter_shape(std::size_t i) const {
    return {layout_[i].rows, layout_[i].cols};
  }

  [[nodiscard]] S* parameters() noexcept { return parameters_.data(); }
  [[nodiscard]] S* gradients() noexcept { return gradients_.data(); }
  void set_parameters(std::span<const S> host) { parameters_.upload(host.data(), static_cast<Index>(host.size())); }
  [[nodiscard]] std::vector<S> parameters_on_host() const { return on_host(parameters_); }
  [[nodiscard]] std::vector<S> gradients_on_host() const { return on_host(gradients_); }
  void zero_gradients() { device_->zero(gradients_.data(), static_cast<std::size_t>(gradients_.size())); }

  //! -(1/N) sum w log pi(action | history), recorded on the tape; backward() adds to gradients().
  [[nodiscard]] Tensor<S> policy_gradient_loss(Tape<S, Device>& tape, const DeviceSequences<S>& data) {
    SSMRL_REQUIRE(
        data.batch > 0 && data.steps > 0 && data.obs != nullptr && data.actions != nullptr && data.weights != nullptr,
        "cuda::DiagSsmPolicy::policy_gradient_loss: batch ", data.batch, " and steps ", data.steps,
        " must be positive, with observations, actions and weights");
    const Index columns = data.batch * data.steps;
    const auto p = [&](std::size_t i) {
      return tape.parameter(parameters_.data() + layout_[i].offset, gradients_.data() + layout_[i].offset,
                            layout_[i].rows, layout_[i].cols);
    };
    const auto leaf = [&](const S* values, Index rows) {
      return tape.parameter(const_cast<S*>(values), nullptr, rows, columns);
    };
    const auto obs = leaf(data.obs, shape_.obs);
    const auto [a_bar, b_bar] = tape.zoh(p(0), p(1), p(2));
    const auto initial = data.initial_state == nullptr
                             ? Tensor<S>{}
                             : tape.parameter(const_cast<S*>(data.initial_state), nullptr, shape_.state, data.batch);
    const auto hidden = tape.diag_scan(a_bar, tape.matmul(b_bar, obs), data.batch, data.keep, initial);
    const auto y = tape.tanh(tape.add_bias(tape.add(tape.matmul(p(3), hidden), tape.matmul(p(4), obs)), p(5)));
    const auto out = tape.add_bias(tape.matmul(p(6), y), p(7));
    if (shape_.head == Head::categorical) {
      return tape.categorical_policy_gradient_loss(out, leaf(data.actions, 1), leaf(data.weights, 1));
    }
    return tape.gaussian_policy_gradient_loss(out, p(8), leaf(data.actions, shape_.actions), leaf(data.weights, 1),
                                              static_cast<S>(shape_.log_std_min), static_cast<S>(shape_.log_std_max));
  }

  //! One step of `envs` environments, all on the device. state (state x envs) is advanced in place,
  //! after keep (envs, or null) zeroes the environments that start an episode; obs is obs x envs.
  //! head_out receives the logits or the means (actions x envs); actions the chosen actions
  //! (1 x envs of class indices, or actions x envs): with noise null the greedy action or the mean,
  //! else argmax(logits + noise) (Gumbel noise samples) or mean + std * noise.
  void act(S* state, const S* obs, const S* keep, Index envs, const S* noise, S* head_out, S* actions) {
    SSMRL_REQUIRE(envs > 0, "cuda::DiagSsmPolicy::act: envs ", envs, " must be positive");
    work_.reset();
    const auto n = shape_.state;
    auto* a_bar = static_cast<S*>(work_.allocate(sizeof(S) * n));
    auto* b_bar = static_cast<S*>(work_.allocate(sizeof(S) * n * shape_.obs));
    auto* driven = static_cast<S*>(work_.allocate(sizeof(S) * n * envs));
    auto* y = static_cast<S*>(work_.allocate(sizeof(S) * shape_.hidden * envs));
    const auto at = [&](std::size_t i) { return parameters_.data() + layout_[i].offset; };
    device_->run(lanes::ZohForward<S>{at(0), at(1), at(2), a_bar, b_bar, n, shape_.obs}, n);
    device_->gemm(false, false, n, envs, shape_.obs, S(1), b_bar, n, obs, shape_.obs, S(0), driven, n);
    device_->run(lanes::DiagStateStep<S>{a_bar, keep, driven, state, n}, n * envs);
    device_->gemm(false, false, shape_.hidden, envs, n, S(1), at(3), shape_.hidden, state, n, S(0), y, shape_.hidden);
    device_->gemm(false, false, shape_.hidden, envs, shape_.obs, S(1), at(4), shape_.hidden, obs, shape_.obs, S(1), y,
                  shape_.hidden);
    device_->run(lanes::AddBias<S>{y, at(5), y, shape_.hidden}, shape_.hidden * envs);
    device_->run(lanes::Tanh<S>{y, y}, shape_.hidden * envs);
    device_->gemm(false, false, shape_.actions, envs, shape_.hidden, S(1), at(6), shape_.actions, y, shape_.hidden,
                  S(0), head_out, shape_.actions);
    device_->run(lanes::AddBias<S>{head_out, at(7), head_out, shape_.actions}, shape_.actions * envs);
    if (shape_.head == Head::categorical) {
      device_->run(lanes::CategoricalAct<S>{head_out, noise, actions, shape_.actions}, envs);
    } else {
      device_->run(lanes::GaussianAct<S>{head_out, at(8), noise, actions, shape_.actions,
                                         static_cast<S>(shape_.log_std_min), static_cast<S>(shape_.log_std_max)},
                   shape_.actions * envs);
    }
  }

private:
  struct Slot {
    Index rows, cols, offset, size;
  };

  static DiagSsmPolicyShape validated(const DiagSsmPolicyShape& s) {
    SSMRL_REQUIRE(s.obs > 0 && s.state > 0 && s.hidden > 0 && s.actions > 0, "cuda::DiagSsmPolicy: sizes obs ", s.obs,
                  ", state ", s.state, ", hidden ", s.hidden, ", actions ", s.actions, " must be positive");
    SSMRL_REQUIRE(s.head == Head::gaussian || s.actions > 1,
                  "cuda::DiagSsmPolicy: a categorical head needs 2 or more "
                  "actions, not ",
                  s.actions);
    SSMRL_REQUIRE(s.log_std_min < s.log_std_max, "cuda::DiagSsmPolicy: log_std range [", s.log_std_min, ", ",
                  s.log_std_max, "] is empty");
    return s;
  }
  static std::vector<Slot> layout_of(const DiagSsmPolicyShape& s) {
    const std::array<std::pair<Index, Index>, 9> shapes{{{s.state, 1},
                                                         {s.state, 1},
                                                         {s.state, s.obs},
                                                         {s.hidden, s.state},
                                                         {s.hidden, s.obs},
                                                         {s.hidden, 1},
                                                         {s.actions, s.hidden},
                                                         {s.actions, 1},
                                                         {s.actions, 1}}};
    std::vector<Slot> slots;
    Index offset = 0;
    for (std::size_t i = 0; i < (s.head == Head::gaussian ? 9u : 8u); ++i) {
      const auto [rows, cols] = shapes[i];
      slots.push_back({rows, cols, offset, rows * cols});
      offset += rows * cols;
    }
    return slots;
  }
  static std::vector<S> on_host(const Buffer<S, Device>& b) {
    std::vector<S> out(static_cast<std::size_t>(b.size()));
    b.download(out.data(), b.size());
    return out;
  }

  Device* device_;
  DiagSsmPolicyShape shape_;
  std::vector<Slot> layout_;
  Buffer<S, Device> parameters_;
  Buffer<S, Device> gradients_;
  Arena<Device> work_;
};

}  // namespace ssmrl::cuda
