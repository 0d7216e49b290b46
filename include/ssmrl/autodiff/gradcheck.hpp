// Checks a function's gradients, first and second order, against central differences in double.
#pragma once

#include <algorithm>
#include <cmath>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "ssmrl/autodiff/grad.hpp"
#include "ssmrl/autodiff/ops/basic.hpp"
#include "ssmrl/autodiff/ops/reduce.hpp"

namespace ssmrl::ad {

struct GradcheckOptions {
  double step = 1e-6;                //!< central-difference step
  double relative_tolerance = 1e-5;  //!< allowed |analytic - numeric| relative to max(1, |numeric|)...
  double absolute_tolerance = 1e-7;  //!< ...plus this
  bool second_order = true;          //!< also check the create_graph gradients
  unsigned seed = 1;                 //!< for the random weights that reduce outputs to a scalar
};

struct GradcheckResult {
  bool passed = true;
  double max_error_first = 0;   //!< largest |analytic - numeric| of the first derivatives
  double max_error_second = 0;  //!< largest |analytic - numeric| of the second-order check
  std::string report;           //!< what failed, empty when passed
};

//! `fn(tape, inputs) -> Var<double>` may return any shape; its output is reduced to a scalar with
//! fixed random weights. First order compares Tape::backward() with central differences of that
//! scalar. Second order builds <grad, u> with create_graph for random directions u, compares its
//! value with the first-order gradient, and its gradient (a Hessian-vector product) with central
//! differences of the first-order gradient.
template <class Fn>
GradcheckResult gradcheck(Fn&& fn, const std::vector<Matrix<Double<Fn>>>& inputs, GradcheckOptions options = {}) {
  using Real = Double<Fn>;
  GradcheckResult result;
  std::mt19937_64 rng(options.seed);
  std::uniform_real_distribution<double> unit(0.5, 1.5);
  auto random_like = [&](Index rows, Index cols) {
    Matrix<Real> m(rows, cols);
    for (Index i = 0; i < m.size(); ++i) m.data()[i] = (rng() % 2 == 0 ? 1.0 : -1.0) * unit(rng);
    return m;
  };

  Tape<Real> tape;
  Matrix<Real> output_weights;
  auto record = [&](const std::vector<Matrix<Real>>& x, std::vector<Var<Real>>& vars) {
    vars.clear();
    for (const auto& m : x) vars.push_back(tape.variable(m));
    const Var<Real> out = fn(tape, std::span<const Var<Real>>(vars));
    if (output_weights.size() == 0) output_weights = random_like(out.rows(), out.cols());
    SSMRL_REQUIRE(out.rows() == output_weights.rows() && out.cols() == output_weights.cols(),
                  "ad::gradcheck: the function's output changed shape between calls");
    return sum(mul(out, tape.constant(output_weights)));
  };
  auto first_order = [&](const std::vector<Matrix<Real>>& x, double* value) {
    tape.clear();
    std::vector<Var<Real>> vars;
    const auto s = record(x, vars);
    if (value != nullptr) *value = s.item();
    tape.backward(s);
    std::vector<Matrix<Real>> g;
    for (const auto& v : vars) g.emplace_back(v.grad());
    return g;
  };
  auto scalar_at = [&](const std::vector<Matrix<Real>>& x) {
    tape.clear();
    std::vector<Var<Real>> vars;
    return record(x, vars).item();
  };
  auto fail = [&](const std::string& what) {
    result.passed = false;
    if (result.report.size() < 2000) result.report += what + "\n";
  };
  auto close = [&](double analytic, double numeric) {
    return std::abs(analytic - numeric) <=
           options.absolute_tolerance + options.relative_tolerance * std::max(1.0, std::abs(numeric));
  };

  const auto analytic = first_order(inputs, nullptr);
  std::vector<Matrix<Real>> x = inputs;
  for (std::size_t k = 0; k < x.size(); ++k) {
    for (Index i = 0; i < x[k].size(); ++i) {
      const double keep = x[k].data()[i];
      x[k].data()[i] = keep + options.step;
      const double up = scalar_at(x);
      x[k].data()[i] = keep - options.step;
      const double down = scalar_at(x);
      x[k].data()[i] = keep;
      const double numeric = (up - down) / (2 * options.step);
      const double a = analytic[k].data()[i];
      result.max_error_first = std::max(result.max_error_first, std::abs(a - numeric));
      if (!close(a, numeric)) {
        fail(::ssmrl::detail::message("first order, input ", k, " entry ", i, ": analytic ", a, ", numeric ", numeric));
      }
    }
  }
  if (!options.second_order) return result;

  std::vector<Matrix<Real>> directions;
  for (const auto& m : inputs) directions.push_back(random_like(m.rows(), m.cols()));
  tape.clear();
  std::vector<Var<Real>> vars;
  const auto s = record(inputs, vars);
  const auto g = grad(s, std::span<const Var<Real>>(vars), {.create_graph = true});
  std::vector<Var<Real>> terms;
  double expected_inner = 0;
  for (std::size_t k = 0; k < vars.size(); ++k) {
    terms.push_back(sum(mul(g[k], tape.constant(directions[k]))));
    expected_inner += analytic[k].cwiseProduct(directions[k]).sum();
  }
  const auto inner = add_n<Real>(terms);
  if (!close(inner.item(), expected_inner)) {
    fail(::ssmrl::detail::message("create_graph gradient differs from the first-order gradient: <grad, u> is ", inner.item(),
                         " against ", expected_inner));
  }
  std::vector<Matrix<Real>> hvp;
  if (inner.requires_grad()) {
    tape.backward(inner);
    for (const auto& v : vars) hvp.emplace_back(v.grad());
  } else {
    for (const auto& m : inputs) hvp.push_back(Matrix<Real>::Zero(m.rows(), m.cols()));
  }
  auto inner_at = [&](const std::vector<Matrix<Real>>& at) {
    const auto gr = first_order(at, nullptr);
    double total = 0;
    for (std::size_t k = 0; k < gr.size(); ++k) total += gr[k].cwiseProduct(directions[k]).sum();
    return total;
  };
  for (std::size_t k = 0; k < x.size(); ++k) {
    for (Index i = 0; i < x[k].size(); ++i) {
      const double keep = x[k].data()[i];
      x[k].data()[i] = keep + options.step;
      const double up = inner_at(x);
      x[k].data()[i] = keep - options.step;
      const double down = inner_at(x);
      x[k].data()[i] = keep;
      const double numeric = (up - down) / (2 * options.step);
      const double a = hvp[k].data()[i];
      result.max_error_second = std::max(result.max_error_second, std::abs(a - numeric));
      if (!close(a, numeric)) {
        fail(::ssmrl::detail::message("second order, input ", k, " entry ", i, ": analytic ", a, ", numeric ", numeric));
      }
    }
  }
  return result;
}

}  // namespace ssmrl::ad
