// Parameter initialisers: uniform, Xavier (Glorot) and orthogonal.
#pragma once

#include <Eigen/QR>

#include <cmath>
#include <random>

#include "ssmrl/autodiff/tape.hpp"

namespace ssmrl::nn::init {

using Rng = std::mt19937_64;

template <class Scalar>
ad::Matrix<Scalar> uniform(ad::Index rows, ad::Index cols, double lo, double hi, Rng& rng) {
  std::uniform_real_distribution<double> u(lo, hi);
  ad::Matrix<Scalar> m(rows, cols);
  for (ad::Index i = 0; i < m.size(); ++i) m.data()[i] = static_cast<Scalar>(u(rng));
  return m;
}

template <class Scalar>
ad::Matrix<Scalar> normal(ad::Index rows, ad::Index cols, double stddev, Rng& rng) {
  std::normal_distribution<double> n(0.0, stddev);
  ad::Matrix<Scalar> m(rows, cols);
  for (ad::Index i = 0; i < m.size(); ++i) m.data()[i] = static_cast<Scalar>(n(rng));
  return m;
}

//! Glorot and Bengio: uniform in +-sqrt(6 / (fan_in + fan_out)) * gain.
template <class Scalar>
ad::Matrix<Scalar> xavier_uniform(ad::Index rows, ad::Index cols, Rng& rng, double gain = 1.0) {
  const double bound = gain * std::sqrt(6.0 / static_cast<double>(rows + cols));
  return uniform<Scalar>(rows, cols, -bound, bound, rng);
}

//! Saxe et al.: a (semi-)orthogonal matrix from the QR decomposition of a Gaussian one, signs fixed
//! so that the distribution is uniform, times `gain`.
template <class Scalar>
ad::Matrix<Scalar> orthogonal(ad::Index rows, ad::Index cols, Rng& rng, double gain = 1.0) {
  const ad::Index big = std::max(rows, cols);
  const ad::Index small = std::min(rows, cols);
  using Real = ad::Double<Scalar>;
  const ad::Matrix<Real> g = normal<Real>(big, small, 1.0, rng);
  Eigen::HouseholderQR<ad::Matrix<Real>> qr(g);
  ad::Matrix<Real> q = qr.householderQ() * ad::Matrix<Real>::Identity(big, small);
  const ad::Matrix<Real> r = qr.matrixQR().topLeftCorner(small, small);
  for (ad::Index j = 0; j < small; ++j) {
    if (r(j, j) < 0) q.col(j) = -q.col(j);
  }
  const ad::Matrix<Real> out = rows >= cols ? q : ad::Matrix<Real>(q.transpose());
  return (gain * out).template cast<Scalar>();
}

//! PyTorch's default for nn.Linear, GRUCell and LSTMCell: uniform in +-1/sqrt(fan_in).
template <class Scalar>
ad::Matrix<Scalar> torch_default(ad::Index rows, ad::Index cols, ad::Index fan_in, Rng& rng) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  return uniform<Scalar>(rows, cols, -bound, bound, rng);
}

}  // namespace ssmrl::nn::init
