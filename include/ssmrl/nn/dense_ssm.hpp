// A dense linear state space model with a tanh readout and a linear head, written with tape
// operations: h_t = A h_{t-1} + B x_t, y_t = tanh(C h_t + D x_t + c), out_t = W y_t + b.
#pragma once

#include <array>
#include <cmath>
#include <new>
#include <span>
#include <random>
#include <string_view>

#include "ssmrl/autodiff.hpp"

namespace ssmrl::nn {

struct DenseSsmDims {
  ad::Index obs = 0;
  ad::Index state = 0;
  ad::Index hidden = 0;
  ad::Index out = 0;  //!< actions (logits) or action dimensions (Gaussian mean)
};

//! The parameters, as matrices (T = ad::Matrix<Scalar>) or as tape variables (T = ad::Var<Scalar>).
template <class T>
struct DenseSsmParams {
  T A;  //!< state x state
  T B;  //!< state x obs
  T C;  //!< hidden x state
  T D;  //!< hidden x obs
  T c;  //!< hidden x 1
  T W;  //!< out x hidden
  T b;  //!< out x 1

  static constexpr std::size_t count = 7;
  static constexpr std::array<std::string_view, count> names{"A", "B", "C", "D", "c", "W", "b"};

  [[nodiscard]] std::array<T, count> to_array() const { return {A, B, C, D, c, W, b}; }
  [[nodiscard]] static DenseSsmParams from_array(const std::array<T, count>& p) {
    return {p[0], p[1], p[2], p[3], p[4], p[5], p[6]};
  }
};

//! Random parameters: A scaled to a spectral radius below one, the rest Xavier-uniform-like.
template <class Scalar>
DenseSsmParams<ad::Matrix<Scalar>> init_dense_ssm(const DenseSsmDims& d, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto uniform = [&](ad::Index rows, ad::Index cols, double bound) {
    std::uniform_real_distribution<double> u(-bound, bound);
    ad::Matrix<Scalar> m(rows, cols);
    for (ad::Index i = 0; i < m.size(); ++i) m.data()[i] = static_cast<Scalar>(u(rng));
    return m;
  };
  auto xavier = [&](ad::Index rows, ad::Index cols) { return uniform(rows, cols, std::sqrt(6.0 / double(rows + cols))); };
  DenseSsmParams<ad::Matrix<Scalar>> p;
  // Entries of size 0.9 / sqrt(state) keep the spectral radius near 0.9 * sqrt(3) / sqrt(3) < 1.
  p.A = uniform(d.state, d.state, 0.9 / std::sqrt(double(d.state)));
  p.B = xavier(d.state, d.obs);
  p.C = xavier(d.hidden, d.state);
  p.D = xavier(d.hidden, d.obs);
  p.c = ad::Matrix<Scalar>::Zero(d.hidden, 1);
  p.W = xavier(d.out, d.hidden);
  p.b = ad::Matrix<Scalar>::Zero(d.out, 1);
  return p;
}

//! Puts every parameter on the tape as a variable.
template <class Scalar>
DenseSsmParams<ad::Var<Scalar>> on_tape(ad::Tape<Scalar>& tape, const DenseSsmParams<ad::Matrix<Scalar>>& p) {
  return {tape.variable(p.A), tape.variable(p.B), tape.variable(p.C), tape.variable(p.D),
          tape.variable(p.c), tape.variable(p.W), tape.variable(p.b)};
}

//! Outputs for a whole batch of sequences starting from h_0 = 0. `obs` is obs x (T * batch): T
//! blocks of `batch` columns in time order. Returns out x (T * batch) in the same layout.
template <class Scalar>
ad::Var<Scalar> dense_ssm_forward(const DenseSsmParams<ad::Var<Scalar>>& p, const ad::Var<Scalar>& obs,
                                  ad::Index batch) {
  SSMRL_REQUIRE(batch > 0 && obs.cols() > 0 && obs.cols() % batch == 0, "nn::dense_ssm_forward: obs has ", obs.cols(),
                " columns, not a whole number of steps of batch ", batch);
  SSMRL_REQUIRE(p.B.cols() == obs.rows(), "nn::dense_ssm_forward: obs has ", obs.rows(), " rows, B expects ",
                p.B.cols(), " (obs_dim)");
  const ad::Index steps = obs.cols() / batch;
  // The input and readout products are taken over the whole sequence at once; only the
  // recurrence walks the steps.
  const auto inputs = ad::matmul(p.B, obs);
  auto& tape = obs.tape();
  // The list of states lives on the tape too, so that a training loop allocates nothing.
  auto* states = tape.template allocate_array<ad::Var<Scalar>>(static_cast<std::size_t>(steps));
  ad::Var<Scalar> h = ad::slice_cols(inputs, 0, batch);
  new (&states[0]) ad::Var<Scalar>(h);
  for (ad::Index t = 1; t < steps; ++t) {
    h = ad::add(ad::matmul(p.A, h), ad::slice_cols(inputs, t * batch, batch));
    new (&states[t]) ad::Var<Scalar>(h);
  }
  const auto hidden = ad::concat_cols<Scalar>(std::span<const ad::Var<Scalar>>(states, static_cast<std::size_t>(steps)));
  const auto y = ad::tanh(ad::add(ad::add(ad::matmul(p.C, hidden), ad::matmul(p.D, obs)), p.c));
  return ad::add(ad::matmul(p.W, y), p.b);
}

}  // namespace ssmrl::nn
