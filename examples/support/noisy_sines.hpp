// The examples' sequence-regression data: sines of random frequency and phase with noisy inputs,
// the clean value one step ahead as the target.
#pragma once

#include <cmath>
#include <numbers>
#include <random>

#include <ssmrl/autodiff.hpp>

namespace examples {

struct Sequences {
  ssmrl::ad::Matrix<double> inputs;   // 1 x (T * batch): noisy sine, time-major blocks
  ssmrl::ad::Matrix<double> targets;  // 1 x (T * batch): the clean value one step ahead
};

// Frequency in [0.1, 0.3], phase in [0, 2 pi); the model must infer both from the noisy history.
inline Sequences make_sequences(ssmrl::ad::Index batch, ssmrl::ad::Index steps, double noise,
                                std::mt19937_64& rng) {
  std::uniform_real_distribution<double> frequency(0.1, 0.3);
  std::uniform_real_distribution<double> phase(0.0, 2 * std::numbers::pi);
  std::normal_distribution<double> jitter(0.0, noise);
  Sequences s{ssmrl::ad::Matrix<double>(1, batch * steps), ssmrl::ad::Matrix<double>(1, batch * steps)};
  for (ssmrl::ad::Index b = 0; b < batch; ++b) {
    const double w = frequency(rng);
    const double p = phase(rng);
    for (ssmrl::ad::Index t = 0; t < steps; ++t) {
      s.inputs(0, t * batch + b) = std::sin(w * double(t) + p) + jitter(rng);
      s.targets(0, t * batch + b) = std::sin(w * double(t + 1) + p);
    }
  }
  return s;
}

}  // namespace examples
