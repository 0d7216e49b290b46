// The synthetic objective of Ray Tune's PBT examples (pbt_function), whose best learning-rate
// schedule is known: a benchmark for controllers of a learning rate.
#pragma once

#include <algorithm>
#include <cmath>
#include <random>

namespace ssmrl::control {

//! "Accuracy" a starts at 0. The best learning rate is 0.01 a / 100 for a < 100 and
//! 0.01 - 0.01 (a - 100) / 100 after, clipped to [0.001, 0.01]. Per step, with q = max(lr, opt) /
//! min(lr, opt): a += u / q if q < 3, else a -= (q - 3) u when lr > opt (u uniform in [0, 1)); then
//! a += 2 N(0, 1) and a = max(a, 0).
struct PbtToy {
  double accuracy = 0;

  [[nodiscard]] static double optimal_lr(double a) {
    const double opt = a < 100 ? 0.01 * a / 100 : 0.01 - 0.01 * (a - 100) / 100;
    return std::clamp(opt, 0.001, 0.01);
  }
  //! One step with learning rate `lr` (positive).
  template <class Rng>
  void step(double lr, Rng& rng) {
    const double opt = optimal_lr(accuracy);
    const double q = std::max(lr, opt) / std::min(lr, opt);
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    std::normal_distribution<double> noise(0.0, 1.0);
    const double u = uniform(rng);
    if (q < 3) accuracy += u / q;
    else if (lr > opt) accuracy -= (q - 3) * u;
    accuracy += 2 * noise(rng);
    accuracy = std::max(accuracy, 0.0);
  }
};

}  // namespace ssmrl::control
