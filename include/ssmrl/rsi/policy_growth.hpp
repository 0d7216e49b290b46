// Growth of a whole RecurrentPolicy: its cell widened by Net2Net and every reader of the cell's
// features (normalisation, action head, value head) rebuilt for the new width, starting from what
// was learnt. Without normalisation the grown policy acts as the original did; a LayerNorm over
// widened features keeps its scale and shift per copied unit, but its statistics change with the
// copies, so that policy only starts near the original.
#pragma once

#include <optional>
#include <utility>

#include "ssmrl/policy/heads.hpp"
#include "ssmrl/policy/recurrent_policy.hpp"
#include "ssmrl/rsi/net2net.hpp"

namespace ssmrl::rsi {

namespace detail {

template <class S>
policy::CategoricalHead<S> with_input(const policy::CategoricalHead<S>& h, ad::Index n) {
  return {n, h.num_actions()};
}
template <class S, policy::GaussianStd K>
policy::GaussianHead<S, K> with_input(const policy::GaussianHead<S, K>& h, ad::Index n) {
  auto config = h.config();
  config.input = n;
  return policy::GaussianHead<S, K>(config);
}
template <class S>
policy::ValueHead<S> with_input(const policy::ValueHead<S>&, ad::Index n) {
  return policy::ValueHead<S>(n);
}
template <class S>
policy::NoValueHead<S> with_input(const policy::NoValueHead<S>& h, ad::Index) {
  return h;
}
template <class S>
nn::LayerNorm<S> with_input(const nn::LayerNorm<S>& norm, ad::Index n) {
  return nn::LayerNorm<S>(n, norm.eps());
}
template <class S>
nn::OptionalLayerNorm<S> with_input(const nn::OptionalLayerNorm<S>& norm, ad::Index n) {
  return nn::OptionalLayerNorm<S>(n, norm.enabled(), norm.eps());
}
template <class S>
nn::NoNorm<S> with_input(const nn::NoNorm<S>& norm, ad::Index) {
  return norm;
}

template <class M>
nn::LinearParams<M> widen_reader(const nn::LinearParams<M>& p, const Widening& w) {
  return widen_input(p, w);
}
template <class M>
policy::GaussianParams<M> widen_reader(const policy::GaussianParams<M>& p, const Widening& w) {
  return {widen_input(p.mean, w), p.log_std};
}
template <class M>
policy::GaussianStateStdParams<M> widen_reader(const policy::GaussianStateStdParams<M>& p, const Widening& w) {
  return {widen_input(p.mean, w), widen_input(p.log_std, w)};
}
template <class M>
nn::EmptyParams<M> widen_reader(const nn::EmptyParams<M>& p, const Widening&) {
  return p;
}
// A LayerNorm is not a reader but is per unit: each copy keeps its unit's scale and shift (an
// OptionalLayerNorm that is off has none).
template <class M>
nn::LayerNormParams<M> widen_reader(const nn::LayerNormParams<M>& p, const Widening& w) {
  if (p.scale.rows() == 0) return p;
  return {w.copy_rows(p.scale), w.copy_rows(p.shift)};
}

}  // namespace detail

//! `policy` with its cell replaced by `grown`; `features`, where given, is how the cell's output
//! (the features the heads read) widened, and every reader follows it. The state is reset, for the
//! number of environments `policy` had.
template <class Cell, class Head, class Norm, class Value>
[[nodiscard]] policy::RecurrentPolicy<Cell, Head, Norm, Value> with_grown_cell(
    const policy::RecurrentPolicy<Cell, Head, Norm, Value>& policy, Grown<Cell> grown,
    const std::optional<Widening>& features, std::uint64_t seed = 0) {
  const ad::Index n = grown.cell.output_size();
  SSMRL_REQUIRE(features ? (features->from() == policy.cell().output_size() && features->to() == n)
                         : n == policy.cell().output_size(),
                "rsi::with_grown_cell: the grown cell gives ", n, " features, the policy's ",
                policy.cell().output_size(),
                features ? ", and the features' widening does not map one to the other" : ", and none widened");
  const auto& p = policy.params();
  using Params = typename policy::RecurrentPolicy<Cell, Head, Norm, Value>::Params;
  Params params{std::move(grown.params), features ? detail::widen_reader(p.norm, *features) : p.norm,
                features ? detail::widen_reader(p.head, *features) : p.head,
                features ? detail::widen_reader(p.value, *features) : p.value};
  policy::RecurrentPolicy<Cell, Head, Norm, Value> out(std::move(grown.cell), detail::with_input(policy.head(), n),
                                                       detail::with_input(policy.norm(), n),
                                                       detail::with_input(policy.value_head(), n), seed);
  out.set_params(std::move(params));
  out.set_num_envs(policy.num_envs());
  return out;
}

//! A GRU or LSTM policy with its hidden units widened by `w` (the heads read the copies split).
template <class Cell, class Head, class Norm, class Value>
  requires requires(const Cell& c) { c.config().hidden; Cell::gates; }
[[nodiscard]] policy::RecurrentPolicy<Cell, Head, Norm, Value> widen_hidden(
    const policy::RecurrentPolicy<Cell, Head, Norm, Value>& policy, const Widening& w) {
  return with_grown_cell(policy, widen_hidden(policy.cell(), policy.params().cell, w), w);
}

//! A diagonal-SSM policy with its state widened (its features unchanged).
template <class S, class B, class Head, class Norm, class Value>
[[nodiscard]] policy::RecurrentPolicy<nn::DiagSsmCell<S, B>, Head, Norm, Value> widen_state(
    const policy::RecurrentPolicy<nn::DiagSsmCell<S, B>, Head, Norm, Value>& policy, const Widening& w) {
  return with_grown_cell(policy, widen_state(policy.cell(), policy.params().cell, w), std::nullopt);
}

//! An MLP policy with hidden layer `layer` widened (the heads follow when it is the last).
template <class S, class B, class Head, class Norm, class Value>
[[nodiscard]] policy::RecurrentPolicy<nn::MlpCell<S, B>, Head, Norm, Value> widen_layer(
    const policy::RecurrentPolicy<nn::MlpCell<S, B>, Head, Norm, Value>& policy, std::size_t layer,
    const Widening& w) {
  auto grown = widen_layer(policy.cell(), policy.params().cell, layer, w);
  const bool last = layer + 1 == policy.cell().config().hidden.size();
  return with_grown_cell(policy, std::move(grown), last ? std::optional<Widening>(w) : std::nullopt);
}

}  // namespace ssmrl::rsi
