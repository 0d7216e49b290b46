// Normalisation switched on or off in a policy whose norm is an nn::OptionalLayerNorm. Neither
// direction preserves the function: a LayerNorm divides each sample's features by that sample's
// own spread. Given statistics of the raw features along sampled trajectories, the new policy starts
// near the old one. Switched on, scale is the mean spread and shift the mean level, so a sample of
// typical level and spread passes unchanged. Switched off, the readers (heads) absorb the norm as it
// acts on such a sample: W' = W diag(scale / spread), b' = b + W (shift - scale * level / spread).
// Without statistics, the norm starts as LayerNorm does (ones, zeros) and the readers are kept.
#pragma once

#include <cmath>
#include <optional>
#include <utility>

#include "ssmrl/nn/layer_norm.hpp"
#include "ssmrl/policy/heads.hpp"
#include "ssmrl/policy/recurrent_policy.hpp"
#include "ssmrl/rl/rollout.hpp"

namespace ssmrl::rsi {

//! Of a policy's raw features (the cell's outputs, before any norm), per sample: the mean over
//! samples of each sample's mean (level) and of sqrt(variance + eps) (spread), as LayerNorm sees them.
struct FeatureStatistics {
  double level = 0;
  double spread = 1;
  long samples = 0;
};

//! The statistics of `policy`'s cell outputs along trajectories `t` (stepped as they were collected:
//! from t.initial_state, each state reset where t.keep starts an episode).
template <class Policy>
[[nodiscard]] FeatureStatistics feature_statistics(const Policy& policy,
                                                   const rl::TrajectoryBatch<typename Policy::scalar_type>& t,
                                                   double eps = 1e-5) {
  using S = typename Policy::scalar_type;
  const auto& cell = policy.cell();
  const ad::Index n = t.envs;
  SSMRL_REQUIRE(n > 0 && t.steps > 0 && t.observations.rows() == cell.input_size() &&
                    t.observations.cols() == n * t.steps && t.keep.cols() == n * t.steps,
                "rsi::feature_statistics: trajectories of ", t.envs, " environments x ", t.steps, " steps with ",
                t.observations.rows(), "x", t.observations.cols(), " observations do not fit a policy of ",
                cell.input_size(), " observations");
  ad::Matrix<S> state = ad::Matrix<S>::Zero(cell.state_size(), n);
  if (t.initial_state.rows() == state.rows() && t.initial_state.cols() == n) state = t.initial_state;
  ad::Matrix<S> features(cell.output_size(), n);
  auto workspace = cell.make_workspace(n);
  FeatureStatistics out{0, 0, n * t.steps};
  const double count = static_cast<double>(features.rows());
  for (ad::Index k = 0; k < t.steps; ++k) {
    for (ad::Index j = 0; j < n; ++j) {
      if (t.keep(0, k * n + j) == S(0)) state.col(j).setZero();
    }
    cell.step(policy.params().cell, state, t.observations.middleCols(k * n, n), features, workspace);
    for (ad::Index j = 0; j < n; ++j) {
      const Eigen::VectorXd x = features.col(j).template cast<double>();
      const double mean = x.mean();
      out.level += mean;
      out.spread += std::sqrt((x.array() - mean).square().sum() / count + eps);
    }
  }
  out.level /= static_cast<double>(out.samples);
  out.spread /= static_cast<double>(out.samples);
  SSMRL_REQUIRE(std::isfinite(out.level) && std::isfinite(out.spread) && out.spread > 0,
                "rsi::feature_statistics: level ", out.level, " and spread ", out.spread,
                " of the features are not finite with a positive spread");
  return out;
}

namespace detail {

// A reader of features x, made to read a % x + c instead (% elementwise).
template <class M>
nn::LinearParams<M> fold_reader(const nn::LinearParams<M>& p, const M& a, const M& c) {
  return {(p.W.array().rowwise() * a.col(0).array().transpose()).matrix(), p.b + p.W * c};
}
template <class M>
policy::GaussianParams<M> fold_reader(const policy::GaussianParams<M>& p, const M& a, const M& c) {
  return {fold_reader(p.mean, a, c), p.log_std};
}
template <class M>
policy::GaussianStateStdParams<M> fold_reader(const policy::GaussianStateStdParams<M>& p, const M& a, const M& c) {
  return {fold_reader(p.mean, a, c), fold_reader(p.log_std, a, c)};
}
template <class M>
nn::EmptyParams<M> fold_reader(const nn::EmptyParams<M>& p, const M&, const M&) {
  return p;
}

}  // namespace detail

//! `policy` with its normalisation switched on or off (it must be the other way now), starting
//! from `statistics` where given (see the top of this file). The state is reset, for the number of
//! environments `policy` had.
template <class Cell, class Head, class Value, class S>
[[nodiscard]] policy::RecurrentPolicy<Cell, Head, nn::OptionalLayerNorm<S>, Value> with_normalisation(
    const policy::RecurrentPolicy<Cell, Head, nn::OptionalLayerNorm<S>, Value>& policy, bool enabled,
    const std::optional<FeatureStatistics>& statistics = std::nullopt) {
  using Policy = policy::RecurrentPolicy<Cell, Head, nn::OptionalLayerNorm<S>, Value>;
  const auto& norm = policy.norm();
  SSMRL_REQUIRE(norm.enabled() != enabled, "rsi::with_normalisation: the policy's normalisation is already ",
                enabled ? "on" : "off");
  SSMRL_REQUIRE(!statistics || (std::isfinite(statistics->level) && std::isfinite(statistics->spread) &&
                                statistics->spread > 0),
                "rsi::with_normalisation: statistics with level ", statistics ? statistics->level : 0.0,
                " and spread ", statistics ? statistics->spread : 0.0, " (it must be finite and positive)");
  const ad::Index f = norm.features();
  const auto& p = policy.params();
  typename Policy::Params params{p.cell, {}, p.head, p.value};
  if (enabled) {
    params.norm.scale = ad::Matrix<S>::Constant(f, 1, static_cast<S>(statistics ? statistics->spread : 1.0));
    params.norm.shift = ad::Matrix<S>::Constant(f, 1, static_cast<S>(statistics ? statistics->level : 0.0));
  } else {
    params.norm.scale.resize(0, 1);
    params.norm.shift.resize(0, 1);
    if (statistics) {
      const auto spread = static_cast<S>(statistics->spread);
      const auto level = static_cast<S>(statistics->level);
      const ad::Matrix<S> a = p.norm.scale / spread;
      const ad::Matrix<S> c = p.norm.shift - a * level;
      params.head = detail::fold_reader(p.head, a, c);
      params.value = detail::fold_reader(p.value, a, c);
    }
  }
  Policy out(policy.cell(), policy.head(), nn::OptionalLayerNorm<S>(f, enabled, norm.eps()), policy.value_head(), 0);
  out.set_params(std::move(params));
  out.set_num_envs(policy.num_envs());
  return out;
}

}  // namespace ssmrl::rsi
