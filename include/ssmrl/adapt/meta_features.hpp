// Monitoring of a deployed policy: predictive entropy, confidence and variance of its action
// distribution, and the shift of its features (the cell's output) against running statistics.
#pragma once

#include <cmath>
#include <limits>
#include <numbers>
#include <vector>

#include "ssmrl/autodiff/ops/prob.hpp"

namespace ssmrl::adapt {

//! Figures of one batch of observations.
struct MetaFeatureValues {
  double entropy = 0;        //!< mean entropy of the action distribution
  double confidence = 0;     //!< categorical: mean probability of the likeliest action; Gaussian: mean of 1 / (1 + std)
  double variance = 0;       //!< categorical: mean over actions of the probabilities' variance over the batch; Gaussian: mean std^2
  //! Mean over features of |batch mean - running mean| / spread (0 before any statistics), the spread
  //! being the running std but at least MetaFeatures' std_floor x (1 + |running mean|).
  double feature_shift = 0;
};

//! Running (exponential) mean and variance of the features, and the figures of each batch.
template <class Scalar>
class MetaFeatures {
  using Real = ad::Double<Scalar>;  // the statistics are kept in double
  using Vector = Eigen::Matrix<Real, Eigen::Dynamic, 1>;
  using Array = Eigen::Array<Real, Eigen::Dynamic, 1>;

public:
  //! std_floor: the least spread a feature is measured against, relative to 1 + its magnitude, so
  //! that a feature that was constant shifts by its relative change, not by its change over 1e-8.
  explicit MetaFeatures(double decay = 0.99, double std_floor = 1e-3) : decay_(decay), std_floor_(std_floor) {
    SSMRL_REQUIRE(decay >= 0 && decay < 1, "adapt::MetaFeatures: decay ", decay, " must lie in [0, 1)");
    SSMRL_REQUIRE(std_floor > 0 && std::isfinite(std_floor), "adapt::MetaFeatures: std_floor ", std_floor,
                  " must be positive and finite");
  }

  //! Figures of a batch: `distribution` as the policy's head gives it (categorical: logits, actions x N;
  //! Gaussian: mean and log-std stacked, 2 actions x N), `features` features x N. The running
  //! statistics are updated after the shift is measured.
  MetaFeatureValues measure(const ad::Matrix<Scalar>& distribution, bool categorical, const ad::Matrix<Scalar>& features) {
    MetaFeatureValues v;
    const auto n = static_cast<double>(distribution.cols());
    if (categorical) {
      ad::Matrix<Real> p = distribution.template cast<Real>();
      for (ad::Index j = 0; j < p.cols(); ++j) {
        auto c = p.col(j);
        c = (c.array() - ad::log_sum_exp_of(c)).exp().matrix();
        double h = 0;
        for (ad::Index i = 0; i < c.size(); ++i) h -= c(i) > 0 ? c(i) * std::log(c(i)) : 0.0;
        v.entropy += h / n;
        v.confidence += c.maxCoeff() / n;
      }
      const Vector mean = p.rowwise().mean();
      v.variance = ((p.colwise() - mean).array().square().rowwise().sum() / std::max(1.0, n - 1)).mean();
    } else {
      const ad::Index a = distribution.rows() / 2;
      const ad::Matrix<Real> log_std = distribution.bottomRows(a).template cast<Real>();
      const double per_dim = 0.5 * std::log(2 * std::numbers::pi * std::numbers::e);
      v.entropy = (log_std.array() + per_dim).colwise().sum().mean();
      v.confidence = (1.0 / (1.0 + log_std.array().exp().rowwise().mean())).mean();
      v.variance = (2.0 * log_std.array()).exp().mean();
    }
    const Vector batch_mean = features.template cast<Real>().rowwise().mean();
    const Vector batch_var =
        (features.template cast<Real>().colwise() - batch_mean).array().square().rowwise().mean();
    if (count_ > 0) {
      const Array spread = variance_.array().sqrt().max(std_floor_ * (1.0 + mean_.array().abs()));
      v.feature_shift = ((batch_mean - mean_).array().abs() / spread).mean();
      mean_ = decay_ * mean_ + (1 - decay_) * batch_mean;
      variance_ = decay_ * variance_ + (1 - decay_) * batch_var;
    } else {
      mean_ = batch_mean;
      variance_ = batch_var;
    }
    ++count_;
    log_.push_back(v);
    return v;
  }

  [[nodiscard]] const std::vector<MetaFeatureValues>& log() const noexcept { return log_; }
  [[nodiscard]] const Vector& running_mean() const noexcept { return mean_; }
  [[nodiscard]] const Vector& running_variance() const noexcept { return variance_; }

private:
  double decay_;
  double std_floor_;
  Vector mean_;
  Vector variance_;
  long count_ = 0;
  std::vector<MetaFeatureValues> log_;
};

}  // namespace ssmrl::adapt
