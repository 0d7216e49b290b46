// Policy heads: categorical and diagonal Gaussian action distributions, and a value head. Each maps
// cell features (one sample per column) to a distribution, evaluates it on the tape for training and
// samples from it without a tape.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>
#include <random>
#include <string_view>
#include <tuple>
#include <type_traits>

#include "ssmrl/autodiff.hpp"
#include "ssmrl/nn/init.hpp"
#include "ssmrl/nn/layer_norm.hpp"
#include "ssmrl/nn/linear.hpp"
#include "ssmrl/policy/concepts.hpp"

namespace ssmrl::policy {

//! Categorical over `actions` choices: logits = W features + b. Actions are stored as their index
//! (a 1 x N matrix holding whole numbers).
template <class Scalar>
class CategoricalHead {
public:
  static constexpr bool categorical = true;
  template <class T>
  using params_type = nn::LinearParams<T>;
  using Params = params_type<ad::Matrix<Scalar>>;
  struct workspace_type {
    ad::Matrix<Scalar> logits;
    ad::Matrix<Scalar> samples;  //!< empty: the actions are what log_prob() takes
  };

  CategoricalHead(ad::Index input, ad::Index actions) : input_(input), actions_(actions) {
    SSMRL_REQUIRE(input > 0 && actions > 1, "CategoricalHead: input ", input, " must be positive and actions ",
                  actions, " at least 2");
  }
  [[nodiscard]] ad::Index input_size() const noexcept { return input_; }
  [[nodiscard]] ad::Index action_size() const noexcept { return 1; }
  [[nodiscard]] ad::Index num_actions() const noexcept { return actions_; }

  //! Orthogonal weights with gain 0.01, so that the first policy is close to uniform.
  [[nodiscard]] Params init_params(nn::init::Rng& rng) const {
    return nn::init_linear<Scalar>(input_, actions_, rng, nn::LinearInit::orthogonal, 0.01);
  }

  [[nodiscard]] ad::Var<Scalar> logits(const params_type<ad::Var<Scalar>>& p, const ad::Var<Scalar>& features) const {
    return nn::linear(p, features);
  }
  //! log pi(action | features) per column; actions: 1 x N indices.
  [[nodiscard]] ad::Var<Scalar> log_prob(const params_type<ad::Var<Scalar>>& p, const ad::Var<Scalar>& features,
                                         const ad::Matrix<Scalar>& actions) const {
    SSMRL_REQUIRE(actions.rows() == 1 && actions.cols() == features.cols(), "CategoricalHead::log_prob: actions are ",
                  actions.rows(), "x", actions.cols(), ", expected 1x", features.cols());
    auto& tape = features.tape();
    int* index = tape.template allocate_array<int>(static_cast<std::size_t>(actions.cols()));
    for (ad::Index j = 0; j < actions.cols(); ++j) index[j] = static_cast<int>(actions(0, j));
    return ad::pick(ad::log_softmax(logits(p, features)),
                    std::span<const int>(index, static_cast<std::size_t>(actions.cols())));
  }
  [[nodiscard]] ad::Var<Scalar> entropy(const params_type<ad::Var<Scalar>>& p, const ad::Var<Scalar>& features) const {
    return ad::categorical_entropy(logits(p, features));
  }

  //! KL(old || new) per column, from logits (old usually detached): sum p_old (log p_old - log p_new).
  [[nodiscard]] static ad::Var<Scalar> kl_divergence(const ad::Var<Scalar>& old_logits, const ad::Var<Scalar>& new_logits) {
    const auto old_log_p = ad::log_softmax(old_logits);
    return ad::colwise_sum(ad::mul(ad::exp(old_log_p), ad::sub(old_log_p, ad::log_softmax(new_logits))));
  }
  //! The distribution's parameters for kl_divergence(): the logits.
  [[nodiscard]] ad::Var<Scalar> distribution(const params_type<ad::Var<Scalar>>& p, const ad::Var<Scalar>& features) const {
    return logits(p, features);
  }

  [[nodiscard]] workspace_type make_workspace(ad::Index batch) const { return {ad::Matrix<Scalar>(actions_, batch), {}}; }

  template <class Rng>
  void act(const Params& p, Eigen::Ref<const ad::Matrix<Scalar>> features, ActMode mode, Rng& rng,
           Eigen::Ref<ad::Matrix<Scalar>> actions, Eigen::Ref<ad::Matrix<Scalar>> log_prob, workspace_type& ws) const {
    nn::linear_into(p, features, ws.logits);
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    for (ad::Index j = 0; j < features.cols(); ++j) {
      auto col = ws.logits.col(j);
      const Scalar lse = ad::log_sum_exp_of(col);
      ad::Index chosen = 0;
      if (mode == ActMode::greedy) {
        col.maxCoeff(&chosen);
      } else {
        double u = uniform(rng);
        chosen = actions_ - 1;
        for (ad::Index a = 0; a < actions_; ++a) {
          u -= std::exp(static_cast<double>(col(a) - lse));
          if (u < 0) {
            chosen = a;
            break;
          }
        }
      }
      actions(0, j) = static_cast<Scalar>(chosen);
      log_prob(0, j) = col(chosen) - lse;
    }
  }

private:
  ad::Index input_;
  ad::Index actions_;
};

//! Where a Gaussian head's log standard deviation comes from.
enum class GaussianStd {
  learned,          //!< one learned value per action dimension, independent of the state
  state_dependent,  //!< a linear function of the features
};

template <class T>
struct GaussianParams {
  nn::LinearParams<T> mean;
  T log_std;  //!< actions x 1
  static constexpr std::array<std::string_view, 2> names{"mean", "log_std"};
  auto fields() { return std::tie(mean, log_std); }
  auto fields() const { return std::tie(mean, log_std); }
  template <class U>
  using rebind = GaussianParams<U>;
};

template <class T>
struct GaussianStateStdParams {
  nn::LinearParams<T> mean;
  nn::LinearParams<T> log_std;
  static constexpr std::array<std::string_view, 2> names{"mean", "log_std"};
  auto fields() { return std::tie(mean, log_std); }
  auto fields() const { return std::tie(mean, log_std); }
  template <class U>
  using rebind = GaussianStateStdParams<U>;
};

struct GaussianHeadConfig {
  ad::Index input = 0;
  ad::Index actions = 0;
  double initial_log_std = 0.0;
  //! Squash samples with tanh into (-1, 1); log-probabilities then include the change of variables.
  bool squash = false;
  //! The log standard deviation the head uses is its parameter (or linear output) clamped to
  //! [log_std_min, log_std_max]; outside the range the gradient is zero, as for PyTorch's clamp.
  double log_std_min = -20.0;
  double log_std_max = 2.0;
};

//! Diagonal Gaussian: mean = W features + b; log_std learned or state-dependent, clamped to the
//! configured range. With squashing the environment sees tanh(u) and the log-probability is that of
//! u minus sum log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)); act() then also gives u (the
//! workspace's `samples`), which is what log_prob() takes: tanh(u) rounds to +-1 long before u is
//! large, so u cannot be recovered from the action. entropy() is the entropy of u (the squashed one
//! has no closed form).
template <class Scalar, GaussianStd std_kind = GaussianStd::learned>
class GaussianHead {
public:
  static constexpr bool categorical = false;
  template <class T>
  using params_type = std::conditional_t<std_kind == GaussianStd::learned, GaussianParams<T>, GaussianStateStdParams<T>>;
  using Params = params_type<ad::Matrix<Scalar>>;
  struct workspace_type {
    ad::Matrix<Scalar> mean;
    ad::Matrix<Scalar> log_std;
    ad::Matrix<Scalar> samples;  //!< u before tanh when squashing, else empty (the actions are the samples)
  };

  explicit GaussianHead(const GaussianHeadConfig& config) : config_(config) {
    SSMRL_REQUIRE(config.input > 0 && config.actions > 0, "GaussianHead: input ", config.input, " and actions ",
                  config.actions, " must be positive");
    SSMRL_REQUIRE(std::isfinite(config.log_std_min) && std::isfinite(config.log_std_max) &&
                      config.log_std_min < config.log_std_max && config.initial_log_std >= config.log_std_min &&
                      config.initial_log_std <= config.log_std_max,
                  "GaussianHead: initial_log_std ", config.initial_log_std, " must lie in [log_std_min, log_std_max] = [",
                  config.log_std_min, ", ", config.log_std_max, "], a finite and non-empty range");
  }
  [[nodiscard]] ad::Index input_size() const noexcept { return config_.input; }
  [[nodiscard]] ad::Index action_size() const noexcept { return config_.actions; }
  [[nodiscard]] const GaussianHeadConfig& config() const noexcept { return config_; }

  [[nodiscard]] Params init_params(nn::init::Rng& rng) const {
    Params p;
    p.mean = nn::init_linear<Scalar>(config_.input, config_.actions, rng, nn::LinearInit::orthogonal, 0.01);
    const auto initial = static_cast<Scalar>(config_.initial_log_std);
    if constexpr (std_kind == GaussianStd::learned) {
      p.log_std = ad::Matrix<Scalar>::Constant(config_.actions, 1, initial);
    } else {
      p.log_std = nn::init_linear<Scalar>(config_.input, config_.actions, rng, nn::LinearInit::orthogonal, 0.01);
      p.log_std.b.setConstant(initial);
    }
    return p;
  }

  //! The log standard deviation, clamped to [log_std_min, log_std_max].
  [[nodiscard]] ad::Var<Scalar> log_std(const params_type<ad::Var<Scalar>>& p, const ad::Var<Scalar>& features) const {
    const auto lo = static_cast<Scalar>(config_.log_std_min);
    const auto hi = static_cast<Scalar>(config_.log_std_max);
    if constexpr (std_kind == GaussianStd::learned) {
      (void)features;
      return ad::clamp(p.log_std, lo, hi);
    } else {
      return ad::clamp(nn::linear(p.log_std, features), lo, hi);
    }
  }

  //! samples: action_size x N, as act() sampled them: u before tanh when squashing (the
  //! workspace's `samples`), else the actions. unsquash() turns squashed actions back into u where
  //! only they are known, exactly only while |u| is small (a float tanh is 1 from u = 9 on).
  [[nodiscard]] ad::Var<Scalar> log_prob(const params_type<ad::Var<Scalar>>& p, const ad::Var<Scalar>& features,
                                         const ad::Matrix<Scalar>& samples) const {
    SSMRL_REQUIRE(samples.rows() == config_.actions && samples.cols() == features.cols(),
                  "GaussianHead::log_prob: samples are ", samples.rows(), "x", samples.cols(), ", expected ",
                  config_.actions, "x", features.cols());
    auto& tape = features.tape();
    const auto mean = nn::linear(p.mean, features);
    const auto density = ad::gaussian_log_prob(mean, log_std(p, features), tape.constant(samples));
    if (!config_.squash) return density;
    // The change of variables depends on the data only.
    ad::Matrix<Scalar> correction(1, samples.cols());
    for (ad::Index j = 0; j < samples.cols(); ++j) {
      Scalar sum = 0;
      for (ad::Index i = 0; i < samples.rows(); ++i) sum += log_squash_derivative(samples(i, j));
      correction(0, j) = sum;
    }
    return ad::sub(density, tape.constant(correction));
  }
  //! atanh of squashed actions clipped away from +-1 (see log_prob()).
  [[nodiscard]] static ad::Matrix<Scalar> unsquash(const ad::Matrix<Scalar>& actions) {
    const Scalar limit = Scalar(1) - Scalar(std::is_same_v<Scalar, float> ? 1e-6 : 1e-12);
    return actions.array().max(-limit).min(limit).atanh().matrix();
  }
  //! log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)), with softplus(x) = max(x, 0) + log1p(exp(-|x|)),
  //! which neither overflows nor cancels for any u.
  [[nodiscard]] static Scalar log_squash_derivative(Scalar u) {
    const Scalar x = Scalar(-2) * u;
    const Scalar softplus = std::max(x, Scalar(0)) + std::log1p(std::exp(-std::abs(x)));
    return Scalar(2) * (std::numbers::ln2_v<Scalar> - u - softplus);
  }

  //! The distribution's parameters for kl_divergence(): mean and log-std stacked, 2 actions x N.
  [[nodiscard]] ad::Var<Scalar> distribution(const params_type<ad::Var<Scalar>>& p, const ad::Var<Scalar>& features) const {
    const auto mean = nn::linear(p.mean, features);
    return ad::concat_rows({mean, ad::broadcast_to(log_std(p, features), config_.actions, features.cols())});
  }
  //! KL(old || new) of diagonal Gaussians per column (of the unsquashed variable), summed over
  //! dimensions: log s_new - log s_old + (s_old^2 + (m_old - m_new)^2) / (2 s_new^2) - 1/2.
  [[nodiscard]] ad::Var<Scalar> kl_divergence(const ad::Var<Scalar>& old_dist, const ad::Var<Scalar>& new_dist) const {
    const auto a = config_.actions;
    const auto m0 = ad::slice_rows(old_dist, 0, a);
    const auto s0 = ad::slice_rows(old_dist, a, a);
    const auto m1 = ad::slice_rows(new_dist, 0, a);
    const auto s1 = ad::slice_rows(new_dist, a, a);
    const auto var_ratio = ad::exp(ad::affine(ad::sub(s0, s1), Scalar(2), Scalar(0)));
    const auto mean_term = ad::mul(ad::square(ad::sub(m0, m1)), ad::exp(ad::affine(s1, Scalar(-2), Scalar(0))));
    const auto per_dim = ad::sub(ad::add(s1, ad::affine(ad::add(var_ratio, mean_term), Scalar(0.5), Scalar(-0.5))), s0);
    return ad::colwise_sum(per_dim);
  }

  //! Sum over dimensions of log_std + 0.5 log(2 pi e), per column.
  [[nodiscard]] ad::Var<Scalar> entropy(const params_type<ad::Var<Scalar>>& p, const ad::Var<Scalar>& features) const {
    const Scalar constant = Scalar(0.5) * std::log(Scalar(2) * std::numbers::pi_v<Scalar> * std::numbers::e_v<Scalar>);
    const auto per_dim = ad::broadcast_to(log_std(p, features), config_.actions, features.cols());
    return ad::colwise_sum(per_dim + constant);
  }

  [[nodiscard]] workspace_type make_workspace(ad::Index batch) const {
    return {ad::Matrix<Scalar>(config_.actions, batch), ad::Matrix<Scalar>(config_.actions, batch),
            config_.squash ? ad::Matrix<Scalar>(config_.actions, batch) : ad::Matrix<Scalar>()};
  }

  template <class Rng>
  void act(const Params& p, Eigen::Ref<const ad::Matrix<Scalar>> features, ActMode mode, Rng& rng,
           Eigen::Ref<ad::Matrix<Scalar>> actions, Eigen::Ref<ad::Matrix<Scalar>> log_prob, workspace_type& ws) const {
    nn::linear_into(p.mean, features, ws.mean);
    if constexpr (std_kind == GaussianStd::learned) {
      for (ad::Index j = 0; j < features.cols(); ++j) ws.log_std.col(j) = p.log_std.col(0);
    } else {
      nn::linear_into(p.log_std, features, ws.log_std);
    }
    ws.log_std = ws.log_std.cwiseMax(static_cast<Scalar>(config_.log_std_min)).cwiseMin(static_cast<Scalar>(config_.log_std_max));
    std::normal_distribution<double> normal(0.0, 1.0);
    const Scalar half_log_two_pi = Scalar(0.5) * std::log(Scalar(2) * std::numbers::pi_v<Scalar>);
    for (ad::Index j = 0; j < features.cols(); ++j) {
      Scalar lp = 0;
      for (ad::Index i = 0; i < config_.actions; ++i) {
        const Scalar z = mode == ActMode::sample ? static_cast<Scalar>(normal(rng)) : Scalar(0);
        const Scalar u = ws.mean(i, j) + std::exp(ws.log_std(i, j)) * z;
        lp += Scalar(-0.5) * z * z - ws.log_std(i, j) - half_log_two_pi;
        if (config_.squash) {
          lp -= log_squash_derivative(u);
          ws.samples(i, j) = u;
          actions(i, j) = std::tanh(u);
        } else {
          actions(i, j) = u;
        }
      }
      log_prob(0, j) = lp;
    }
  }

private:
  GaussianHeadConfig config_;
};

//! State value: v = w^T features + b, 1 x N.
template <class Scalar>
class ValueHead {
public:
  template <class T>
  using params_type = nn::LinearParams<T>;
  using Params = params_type<ad::Matrix<Scalar>>;

  explicit ValueHead(ad::Index input) : input_(input) {
    SSMRL_REQUIRE(input > 0, "ValueHead: input ", input, " must be positive");
  }
  [[nodiscard]] Params init_params(nn::init::Rng& rng) const {
    return nn::init_linear<Scalar>(input_, 1, rng, nn::LinearInit::orthogonal, 1.0);
  }
  [[nodiscard]] ad::Var<Scalar> value(const params_type<ad::Var<Scalar>>& p, const ad::Var<Scalar>& features) const {
    return nn::linear(p, features);
  }
  void value_into(const Params& p, Eigen::Ref<const ad::Matrix<Scalar>> features, Eigen::Ref<ad::Matrix<Scalar>> out) const {
    nn::linear_into(p, features, out);
  }
  static constexpr bool enabled = true;

private:
  ad::Index input_;
};

//! No value head (a pure policy-gradient policy).
template <class Scalar>
class NoValueHead {
public:
  template <class T>
  using params_type = nn::EmptyParams<T>;
  using Params = params_type<ad::Matrix<Scalar>>;
  [[nodiscard]] Params init_params(nn::init::Rng&) const { return {}; }
  static constexpr bool enabled = false;
};

}  // namespace ssmrl::policy
