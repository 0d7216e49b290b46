// Between the CPU policy and the device one: the shape of a RecurrentPolicy<DiagSsmCell, Head> that
// the device runs (refusing the configurations it does not), and its parameters or gradients
// flattened in the device's order.
#pragma once

#include <string>
#include <vector>

#include "ssmrl/cuda/policy.hpp"
#include "ssmrl/nn/cells/diag_ssm.hpp"
#include "ssmrl/nn/parameters.hpp"
#include "ssmrl/policy/heads.hpp"
#include "ssmrl/policy/recurrent_policy.hpp"

namespace ssmrl::cuda {

namespace detail {
// The CPU policy names the Gaussian head's mean layer head.mean.W; the device head.W.
inline std::string device_name(std::string_view name) {
  std::string s(name);
  if (s.rfind("head.mean.", 0) == 0) s.erase(5, 5);
  return s;
}
}  // namespace detail

//! The device shape of a CPU diagonal-SSM policy; refuses what the device programs do not run.
template <class Policy>
DiagSsmPolicyShape shape_of(const Policy& policy) {
  const auto& cell = policy.cell().config();
  SSMRL_REQUIRE(cell.activation == nn::Activation::tanh && cell.readout_bias,
                "cuda::shape_of: the device runs a tanh readout with bias; this cell's differs");
  DiagSsmPolicyShape shape{.obs = cell.input, .state = cell.state, .hidden = cell.output};
  if constexpr (Policy::head_type::categorical) {
    shape.actions = policy.head().num_actions();
  } else {
    // A state-dependent log_std is refused by flatten(), its parameters being named head.log_std.W.
    const auto& head = policy.head().config();
    SSMRL_REQUIRE(!head.squash, "cuda::shape_of: the device runs a Gaussian head without squashing");
    shape.actions = head.actions;
    shape.head = Head::gaussian;
    shape.log_std_min = head.log_std_min;
    shape.log_std_max = head.log_std_max;
  }
  return shape;
}

//! Parameters (or gradients, any struct shaped like them) laid out as the device holds them.
template <class S, class Params>
std::vector<S> flatten(const Params& params, std::span<const std::string_view> expected) {
  std::vector<S> out;
  std::size_t i = 0;
  nn::for_each_parameter(params, [&](std::string_view name, const ad::Matrix<S>& m) {
    const auto got = detail::device_name(name);
    SSMRL_REQUIRE(i < expected.size() && got == expected[i], "cuda::flatten: parameter ", i, " is '", got,
                  "', the device expects '", i < expected.size() ? std::string(expected[i]) : std::string("nothing"),
                  "'");
    out.insert(out.end(), m.data(), m.data() + m.size());
    ++i;
  });
  SSMRL_REQUIRE(i == expected.size(), "cuda::flatten: ", i, " parameters, the device expects ", expected.size());
  return out;
}

//! The inverse: a parameter struct shaped like `like`, filled from the device's flat order.
template <class S, class Params>
Params unflatten(const Params& like, std::span<const S> flat) {
  Params out = like;
  std::size_t at = 0;
  nn::for_each_parameter(out, [&](std::string_view name, ad::Matrix<S>& m) {
    SSMRL_REQUIRE(at + static_cast<std::size_t>(m.size()) <= flat.size(), "cuda::unflatten: ", flat.size(),
                  " numbers end before ", name);
    std::copy(flat.begin() + static_cast<std::ptrdiff_t>(at), flat.begin() + static_cast<std::ptrdiff_t>(at + m.size()),
              m.data());
    at += static_cast<std::size_t>(m.size());
  });
  SSMRL_REQUIRE(at == flat.size(), "cuda::unflatten: ", flat.size(), " numbers for ", at, " parameters");
  return out;
}

//! A device policy with the CPU policy's shape and parameters.
template <class S, class Device, class Policy>
DiagSsmPolicy<S, Device> to_device(Device& device, const Policy& policy) {
  DiagSsmPolicy<S, Device> out(device, shape_of(policy));
  const auto flat = flatten<S>(policy.params(), out.names());
  out.set_parameters(flat);
  return out;
}

}  // namespace ssmrl::cuda
