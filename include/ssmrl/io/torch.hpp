// PyTorch weights under torch's own names: a module's state_dict saved as safetensors (or .npz),
// loaded into the library's GRU and LSTM cells, linear layers, layer norms and policies, one name
// prefix per part. scripts/ssmrl-save-state-dict writes such files from Python.
#pragma once

#include <string>

#include "ssmrl/io/named_tensors.hpp"
#include "ssmrl/nn/cells/gru.hpp"
#include "ssmrl/nn/layer_norm.hpp"
#include "ssmrl/nn/linear.hpp"
#include "ssmrl/policy/recurrent_policy.hpp"

namespace ssmrl::io {

namespace detail {

inline std::string torch_name(const std::string& prefix, const char* name) {
  return prefix.empty() ? std::string(name) : prefix + "." + name;
}

}  // namespace detail

//! torch.nn.GRUCell / LSTMCell (and the first layer of torch.nn.GRU / LSTM, whose names end in
//! "_l0": pass suffix "_l0"): PREFIX.weight_ih, weight_hh, bias_ih, bias_hh into `p`, whose
//! shapes they must have. Nothing changes unless all four are there with those shapes.
template <class Scalar>
void import_torch_rnn(const NamedTensors& file, const std::string& prefix, nn::RnnParams<ad::Matrix<Scalar>>& p,
                      const std::string& suffix = "") {
  nn::RnnParams<ad::Matrix<Scalar>> next;
  auto read = [&](const char* name, const ad::Matrix<Scalar>& like) {
    return file.matrix<Scalar>(detail::torch_name(prefix, name) + suffix, like.rows(), like.cols());
  };
  next.weight_ih = read("weight_ih", p.weight_ih);
  next.weight_hh = read("weight_hh", p.weight_hh);
  next.bias_ih = read("bias_ih", p.bias_ih);
  next.bias_hh = read("bias_hh", p.bias_hh);
  p = std::move(next);
}

//! torch.nn.Linear: PREFIX.weight [out, in] and PREFIX.bias [out] into W and b.
template <class Scalar>
void import_torch_linear(const NamedTensors& file, const std::string& prefix, nn::LinearParams<ad::Matrix<Scalar>>& p) {
  auto weight = file.matrix<Scalar>(detail::torch_name(prefix, "weight"), p.W.rows(), p.W.cols());
  auto bias = file.matrix<Scalar>(detail::torch_name(prefix, "bias"), p.b.rows(), p.b.cols());
  p.W = std::move(weight);
  p.b = std::move(bias);
}

//! torch.nn.LayerNorm (elementwise affine): PREFIX.weight and PREFIX.bias into scale and shift.
template <class Scalar>
void import_torch_layer_norm(const NamedTensors& file, const std::string& prefix,
                             nn::LayerNormParams<ad::Matrix<Scalar>>& p) {
  auto scale = file.matrix<Scalar>(detail::torch_name(prefix, "weight"), p.scale.rows(), p.scale.cols());
  auto shift = file.matrix<Scalar>(detail::torch_name(prefix, "bias"), p.shift.rows(), p.shift.cols());
  p.scale = std::move(scale);
  p.shift = std::move(shift);
}

//! Where each part of a policy lies in a torch state_dict (the norm and value prefixes are used only
//! by policies that have those parts); `log_std` names a Gaussian head's log-std parameter.
struct TorchPolicyNames {
  std::string cell = "rnn";
  std::string norm = "norm";
  std::string head = "head";
  std::string log_std = "log_std";
  std::string value = "value";
};

//! Imports a RecurrentPolicy with a GRU or LSTM cell, an optional LayerNorm, a categorical head or a
//! Gaussian head with a learned log-std, and an optional value head, from torch names. Everything
//! is read and checked first; nothing changes unless every tensor is there with its shape. Other
//! tensors in the file are ignored (a state_dict often holds more than the policy).
template <class Policy>
void import_torch_policy(const NamedTensors& file, Policy& policy, const TorchPolicyNames& names = {}) {
  using Scalar = typename Policy::scalar_type;
  auto p = policy.params();
  import_torch_rnn(file, names.cell, p.cell);
  if constexpr (requires { p.norm.scale; }) import_torch_layer_norm(file, names.norm, p.norm);
  if constexpr (requires { p.head.W; }) {
    import_torch_linear(file, names.head, p.head);
  } else {
    static_assert(requires { p.head.mean.W; p.head.log_std.rows(); },
                  "io::import_torch_policy: the head is neither categorical nor a Gaussian with a learned log-std");
    import_torch_linear(file, names.head, p.head.mean);
    auto log_std = file.matrix<Scalar>(names.log_std, p.head.log_std.rows(), p.head.log_std.cols());
    p.head.log_std = std::move(log_std);
  }
  if constexpr (Policy::has_value_head) import_torch_linear(file, names.value, p.value);
  policy.set_params(std::move(p));
}

}  // namespace ssmrl::io
