// Layer normalisation over the features of each sample (column), with a learned scale and shift.
#pragma once

#include <array>
#include <string_view>
#include <tuple>

#include "ssmrl/autodiff.hpp"
#include "ssmrl/nn/parameters.hpp"

namespace ssmrl::nn {

template <class T>
struct LayerNormParams {
  T scale;  //!< features x 1, initially ones
  T shift;  //!< features x 1, initially zeros
  static constexpr std::array<std::string_view, 2> names{"scale", "shift"};
  auto fields() { return std::tie(scale, shift); }
  auto fields() const { return std::tie(scale, shift); }
  template <class U>
  using rebind = LayerNormParams<U>;
};

//! y = (x - mean) / sqrt(var + eps) * scale + shift, per column (as torch.nn.LayerNorm).
template <class Scalar>
class LayerNorm {
public:
  template <class T>
  using params_type = LayerNormParams<T>;
  using Params = params_type<ad::Matrix<Scalar>>;

  explicit LayerNorm(ad::Index features, double eps = 1e-5) : features_(features), eps_(eps) {
    SSMRL_REQUIRE(features > 0 && eps > 0, "LayerNorm: features ", features, " and eps ", eps, " must be positive");
  }
  [[nodiscard]] ad::Index features() const noexcept { return features_; }
  [[nodiscard]] double eps() const noexcept { return eps_; }

  template <class Rng>
  [[nodiscard]] Params init_params(Rng&) const {
    return {ad::Matrix<Scalar>::Ones(features_, 1), ad::Matrix<Scalar>::Zero(features_, 1)};
  }

  [[nodiscard]] ad::Var<Scalar> forward(const LayerNormParams<ad::Var<Scalar>>& p, const ad::Var<Scalar>& x) const {
    const auto centred = ad::sub(x, ad::colwise_mean(x));
    const auto variance = ad::colwise_mean(ad::square(centred));
    const auto normalised = ad::div(centred, ad::sqrt(variance + static_cast<Scalar>(eps_)));
    return ad::add(ad::mul(normalised, p.scale), p.shift);
  }

  //! In place, without a tape.
  template <class Derived>
  void apply(const Params& p, Eigen::MatrixBase<Derived>& x) const {
    for (ad::Index j = 0; j < x.cols(); ++j) {
      auto col = x.col(j);
      const Scalar mean = col.mean();
      col.array() -= mean;
      const Scalar inv = Scalar(1) / std::sqrt(col.squaredNorm() / static_cast<Scalar>(col.size()) + static_cast<Scalar>(eps_));
      col.array() = col.array() * inv * p.scale.col(0).array() + p.shift.col(0).array();
    }
  }

private:
  ad::Index features_;
  double eps_;
};

//! A LayerNorm that is on or off at run time (one policy type for both, as a self-improvement
//! proposal that toggles normalisation needs). Off, it passes the features through and its scale
//! and shift are empty (0 x 1), so it has no parameters.
template <class Scalar>
class OptionalLayerNorm {
public:
  template <class T>
  using params_type = LayerNormParams<T>;
  using Params = params_type<ad::Matrix<Scalar>>;

  OptionalLayerNorm(ad::Index features, bool enabled, double eps = 1e-5) : norm_(features, eps), enabled_(enabled) {}
  [[nodiscard]] ad::Index features() const noexcept { return norm_.features(); }
  [[nodiscard]] double eps() const noexcept { return norm_.eps(); }
  [[nodiscard]] bool enabled() const noexcept { return enabled_; }

  //! On, as LayerNorm starts (ones and zeros); off, empty.
  template <class Rng>
  [[nodiscard]] Params init_params(Rng& rng) const {
    if (enabled_) return norm_.init_params(rng);
    return {ad::Matrix<Scalar>(0, 1), ad::Matrix<Scalar>(0, 1)};
  }
  [[nodiscard]] ad::Var<Scalar> forward(const LayerNormParams<ad::Var<Scalar>>& p, const ad::Var<Scalar>& x) const {
    return enabled_ ? norm_.forward(p, x) : x;
  }
  template <class Derived>
  void apply(const Params& p, Eigen::MatrixBase<Derived>& x) const {
    if (enabled_) norm_.apply(p, x);
  }

private:
  LayerNorm<Scalar> norm_;
  bool enabled_;
};

//! No normalisation: the policy's default.
template <class T>
struct EmptyParams {
  static constexpr std::array<std::string_view, 0> names{};
  auto fields() { return std::tie(); }
  auto fields() const { return std::tie(); }
  template <class U>
  using rebind = EmptyParams<U>;
};

template <class Scalar>
class NoNorm {
public:
  template <class T>
  using params_type = EmptyParams<T>;
  using Params = params_type<ad::Matrix<Scalar>>;
  template <class Rng>
  [[nodiscard]] Params init_params(Rng&) const { return {}; }
  [[nodiscard]] ad::Var<Scalar> forward(const EmptyParams<ad::Var<Scalar>>&, const ad::Var<Scalar>& x) const { return x; }
  template <class Derived>
  void apply(const Params&, Eigen::MatrixBase<Derived>&) const {}
};

}  // namespace ssmrl::nn
