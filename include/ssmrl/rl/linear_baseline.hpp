// The linear feature baseline of the MAML paper (after rllab): state values fitted per task by
// regularised least squares on features of the observation and of the time within the episode.
#pragma once

#include <Eigen/Cholesky>

#include "ssmrl/rl/advantages.hpp"

namespace ssmrl::rl {

template <class Scalar>
class LinearFeatureBaseline {
public:
  explicit LinearFeatureBaseline(double regularisation = 1e-5) : regularisation_(regularisation) {
    SSMRL_REQUIRE(regularisation > 0, "rl::LinearFeatureBaseline: regularisation ", regularisation, " must be positive");
  }

  //! Per column: the observation clipped to [-10, 10], its square, then t/100, its square and
  //! cube (t the step within the episode, from the keep mask), and 1.
  static ad::Matrix<Scalar> features(const TrajectoryBatch<Scalar>& t) {
    const ad::Index d = t.observations.rows();
    ad::Matrix<Scalar> f(2 * d + 4, t.columns());
    std::vector<ad::Index> elapsed(static_cast<std::size_t>(t.envs), 0);
    for (ad::Index k = 0; k < t.steps; ++k) {
      for (ad::Index i = 0; i < t.envs; ++i) {
        const ad::Index c = k * t.envs + i;
        auto& e = elapsed[static_cast<std::size_t>(i)];
        if (t.keep(0, c) == 0) e = 0;
        const auto o = t.observations.col(c).array().max(Scalar(-10)).min(Scalar(10));
        const Scalar al = static_cast<Scalar>(e) / Scalar(100);
        f.col(c) << o.matrix(), o.square().matrix(), al, al * al, al * al * al, Scalar(1);
        ++e;
      }
    }
    return f;
  }

  //! Fits the weights to the discounted returns of `t`; raises the regularisation tenfold (up to
  //! five times) while the solution is not finite, as rllab does.
  void fit(const TrajectoryBatch<Scalar>& t, double gamma) {
    // The normal equations in double: the cubes of t/100 and the squared observations span orders of
    // magnitude, and a float Gram matrix of thousands of columns loses the digits the solve needs.
    using Real = ad::Double<Scalar>;
    const ad::Matrix<Real> f = features(t).template cast<Real>();
    const ad::Matrix<Real> returns = discounted_returns(t, gamma).template cast<Real>();
    const ad::Matrix<Real> ff = f * f.transpose();
    const ad::Matrix<Real> fr = f * returns.transpose();
    double reg = regularisation_;
    for (int attempt = 0; attempt < 5; ++attempt) {
      const ad::Matrix<Real> a = ff + reg * ad::Matrix<Real>::Identity(ff.rows(), ff.cols());
      const ad::Matrix<Real> w = a.ldlt().solve(fr);
      if (w.allFinite()) {
        weights_ = w.template cast<Scalar>();
        return;
      }
      reg *= 10;
    }
    SSMRL_THROW(::ssmrl::InvalidArgument, "rl::LinearFeatureBaseline::fit: no finite solution");
  }

  //! Values for every column of `t` (zeros before the first fit).
  [[nodiscard]] ad::Matrix<Scalar> predict(const TrajectoryBatch<Scalar>& t) const {
    if (weights_.size() == 0) return ad::Matrix<Scalar>::Zero(1, t.columns());
    return weights_.transpose() * features(t);
  }
  [[nodiscard]] const ad::Matrix<Scalar>& weights() const { return weights_; }

private:
  double regularisation_;
  ad::Matrix<Scalar> weights_;
};

//! Normalised GAE advantages of `t` with the linear feature baseline fitted on `t` itself, the
//! returns not bootstrapped (the MAML paper's inner-step advantages).
template <class Scalar>
ad::Matrix<Scalar> linear_baseline_advantages(const TrajectoryBatch<Scalar>& t, double gamma, double lambda) {
  LinearFeatureBaseline<Scalar> baseline;
  baseline.fit(t, gamma);
  const ad::Matrix<Scalar> values = baseline.predict(t);
  const ad::Matrix<Scalar> no_values = ad::Matrix<Scalar>::Zero(1, t.envs);
  auto without_bootstrap = t;
  without_bootstrap.bootstrap.setZero();
  return normalized(gae(without_bootstrap, values, no_values, gamma, lambda).advantages);
}

}  // namespace ssmrl::rl
