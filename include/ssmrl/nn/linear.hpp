// Linear layers and multilayer perceptrons: parameters, initialisation, the tape forward pass and
// the allocation-free inference pass.
#pragma once

#include <array>
#include <string_view>
#include <tuple>
#include <vector>

#include "ssmrl/autodiff.hpp"
#include "ssmrl/nn/init.hpp"
#include "ssmrl/nn/parameters.hpp"

namespace ssmrl::nn {

enum class Activation { identity, tanh, relu };

//! y = W x + b, one sample per column.
template <class T>
struct LinearParams {
  T W;  //!< out x in
  T b;  //!< out x 1
  static constexpr std::array<std::string_view, 2> names{"W", "b"};
  auto fields() { return std::tie(W, b); }
  auto fields() const { return std::tie(W, b); }
  template <class U>
  using rebind = LinearParams<U>;
};

enum class LinearInit { xavier, orthogonal, torch_default };

template <class Scalar>
LinearParams<ad::Matrix<Scalar>> init_linear(ad::Index in, ad::Index out, init::Rng& rng,
                                             LinearInit how = LinearInit::xavier, double gain = 1.0) {
  LinearParams<ad::Matrix<Scalar>> p;
  switch (how) {
    case LinearInit::xavier: p.W = init::xavier_uniform<Scalar>(out, in, rng, gain); break;
    case LinearInit::orthogonal: p.W = init::orthogonal<Scalar>(out, in, rng, gain); break;
    case LinearInit::torch_default: p.W = init::torch_default<Scalar>(out, in, in, rng); break;
  }
  p.b = how == LinearInit::torch_default ? init::torch_default<Scalar>(out, 1, in, rng)
                                         : ad::Matrix<Scalar>::Zero(out, 1);
  return p;
}

template <class Scalar>
ad::Var<Scalar> activate(const ad::Var<Scalar>& x, Activation a) {
  switch (a) {
    case Activation::tanh: return ad::tanh(x);
    case Activation::relu: return ad::relu(x);
    case Activation::identity: break;
  }
  return x;
}

template <class Derived>
void activate_in_place(Eigen::MatrixBase<Derived>& x, Activation a) {
  switch (a) {
    case Activation::tanh: x.derived().array() = x.derived().array().tanh(); break;
    case Activation::relu: x.derived().array() = x.derived().array().max(typename Derived::Scalar(0)); break;
    case Activation::identity: break;
  }
}

//! W x + b on the tape.
template <class Scalar>
ad::Var<Scalar> linear(const LinearParams<ad::Var<Scalar>>& p, const ad::Var<Scalar>& x) {
  return ad::add(ad::matmul(p.W, x), p.b);
}

//! W x + b into `out` (a matrix, block or map), without allocating.
template <class Scalar, class X, class Out>
void linear_into(const LinearParams<ad::Matrix<Scalar>>& p, const X& x, Out&& out) {
  out.noalias() = p.W * x;
  out.colwise() += p.b.col(0);
}

//! A stack of linear layers with one activation between them (none after the last).
template <class T>
struct MlpParams {
  std::vector<LinearParams<T>> layers;
  static constexpr std::array<std::string_view, 1> names{"layers"};
  auto fields() { return std::tie(layers); }
  auto fields() const { return std::tie(layers); }
  template <class U>
  using rebind = MlpParams<U>;
};

//! sizes = {in, hidden..., out}.
template <class Scalar>
MlpParams<ad::Matrix<Scalar>> init_mlp(const std::vector<ad::Index>& sizes, init::Rng& rng,
                                       LinearInit how = LinearInit::xavier) {
  SSMRL_REQUIRE(sizes.size() >= 2, "nn::init_mlp: sizes has ", sizes.size(), " entries, need at least in and out");
  MlpParams<ad::Matrix<Scalar>> p;
  for (std::size_t i = 0; i + 1 < sizes.size(); ++i) p.layers.push_back(init_linear<Scalar>(sizes[i], sizes[i + 1], rng, how));
  return p;
}

template <class Scalar>
ad::Var<Scalar> mlp(const MlpParams<ad::Var<Scalar>>& p, ad::Var<Scalar> x, Activation hidden) {
  for (std::size_t i = 0; i < p.layers.size(); ++i) {
    x = linear(p.layers[i], x);
    if (i + 1 < p.layers.size()) x = activate(x, hidden);
  }
  return x;
}

}  // namespace ssmrl::nn
