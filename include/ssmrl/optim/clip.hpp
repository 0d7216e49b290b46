// Gradient clipping by the global norm over a list of matrices.
#pragma once

#include <cmath>
#include <span>

#include "ssmrl/autodiff/tape.hpp"

namespace ssmrl::optim {

//! Scales `grads` so that their joint Euclidean norm is at most `max_norm`; returns the norm before.
//! A non-finite norm leaves the gradients as they are (the caller decides what to do with it).
template <class Scalar>
double clip_grad_norm(std::span<ad::Matrix<Scalar>> grads, double max_norm) {
  SSMRL_REQUIRE(max_norm > 0, "optim::clip_grad_norm: max_norm ", max_norm, " must be positive");
  double squared = 0;
  for (const auto& g : grads) squared += static_cast<double>(g.squaredNorm());
  const double norm = std::sqrt(squared);
  if (std::isfinite(norm) && norm > max_norm) {
    const auto scale = static_cast<Scalar>(max_norm / (norm + 1e-12));
    for (auto& g : grads) g *= scale;
  }
  return norm;
}

}  // namespace ssmrl::optim
