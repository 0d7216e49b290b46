// Trust-region policy optimisation's step: conjugate gradient on Hessian-vector products of the
// mean KL divergence (from the autodiff, second order), a step scaled to the KL limit, and a
// backtracking line search that keeps the KL limit and demands improvement.
#pragma once

#include <cmath>
#include <functional>
#include <vector>

#include "ssmrl/autodiff.hpp"
#include "ssmrl/nn/parameters.hpp"

namespace ssmrl::optim {

template <class Scalar>
using Vector = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;

//! Solves A x = b for symmetric positive definite A given as a product x -> A x.
template <class Scalar>
Vector<Scalar> conjugate_gradient(const std::function<Vector<Scalar>(const Vector<Scalar>&)>& product,
                                  const Vector<Scalar>& b, int iterations = 10, double residual_tolerance = 1e-10) {
  Vector<Scalar> x = Vector<Scalar>::Zero(b.size());
  Vector<Scalar> r = b;
  Vector<Scalar> p = b;
  Scalar rr = r.squaredNorm();
  for (int i = 0; i < iterations && rr > residual_tolerance; ++i) {
    const Vector<Scalar> ap = product(p);
    const Scalar alpha = rr / p.dot(ap);
    x += alpha * p;
    r -= alpha * ap;
    const Scalar next = r.squaredNorm();
    p = r + (next / rr) * p;
    rr = next;
  }
  return x;
}

struct TrpoOptions {
  double max_kl = 0.01;
  int cg_iterations = 10;
  double cg_damping = 1e-5;
  double backtrack_ratio = 0.5;
  int line_search_steps = 15;
};

struct TrpoResult {
  bool accepted = false;  //!< false when no step within the KL limit improved the loss
  double loss_before = 0;
  double loss_after = 0;
  double kl = 0;
  int backtracks = 0;
};

//! One TRPO update of `params` (a parameter struct of matrices). `loss(tape, vars)` is the
//! surrogate to minimise; `kl(tape, vars)` the mean KL from the current policy (fixed inside it)
//! to the one with `vars`. The parameters change only when a step is accepted.
//! `workspace` (optional) is a tape to record on; one kept across calls keeps its memory.
//! `fisher_kl(tape, vars)` is the KL whose Hessian preconditions the step (the same as `kl` in the
//! overload below; a cheaper stand-in with the same Hessian, or an approximation of it, otherwise);
//! the line search always checks `kl` itself.
template <class Scalar, class Params, class LossFn, class KlFn, class FisherKlFn>
TrpoResult trpo_step(Params& params, LossFn&& loss, KlFn&& kl, FisherKlFn&& fisher_kl, TrpoOptions options = {},
                     ad::Tape<Scalar>* workspace = nullptr) {
  ad::Tape<Scalar> own_tape(workspace == nullptr ? std::size_t{1} << 16 : 64);
  ad::Tape<Scalar>& tape = workspace != nullptr ? *workspace : own_tape;
  auto value_at = [&](const Params& p, auto&& fn) {
    typename ad::Tape<Scalar>::Scope scope(tape);
    return static_cast<double>(fn(tape, nn::on_tape(tape, p)).item());
  };
  Vector<Scalar> gradient;
  double loss_before = 0;
  {
    typename ad::Tape<Scalar>::Scope scope(tape);
    const auto vars = nn::on_tape(tape, params);
    const auto l = loss(tape, vars);
    loss_before = l.item();
    tape.backward(l);
    gradient = nn::flatten<Scalar>(nn::gradients_of<Scalar>(vars));
  }
  // F v: the Hessian of the KL at the current parameters. The KL's gradient is recorded once as a
  // graph (create_graph); each product is then one reverse pass of <gradient, v> over it.
  TrpoResult result{false, loss_before, loss_before, 0, 0};
  Vector<Scalar> full_step;
  {
    typename ad::Tape<Scalar>::Scope graph_scope(tape);
    const auto vars = nn::on_tape(tape, params);
    const auto list = nn::to_list<ad::Var<Scalar>>(vars);
    const auto kl_gradient = ad::grad(fisher_kl(tape, vars), std::span<const ad::Var<Scalar>>(list), {.create_graph = true});
    auto fisher_product = [&](const Vector<Scalar>& v) {
      typename ad::Tape<Scalar>::Scope scope(tape);
      Params direction = params;
      nn::unflatten(direction, v);
      const auto dirs = nn::to_list<ad::Matrix<Scalar>>(direction);
      std::vector<ad::Var<Scalar>> terms;
      for (std::size_t i = 0; i < list.size(); ++i) {
        if (kl_gradient[i].requires_grad()) terms.push_back(ad::sum(ad::mul(kl_gradient[i], tape.constant(dirs[i]))));
      }
      std::vector<ad::Matrix<Scalar>> hv;
      if (!terms.empty()) tape.backward(ad::add_n<Scalar>(terms));
      for (const auto& w : list) {
        hv.push_back(!terms.empty() && w.requires_grad() ? ad::Matrix<Scalar>(w.grad())
                                                         : ad::Matrix<Scalar>::Zero(w.rows(), w.cols()));
      }
      Params out = params;
      out = nn::from_list(out, hv);
      return Vector<Scalar>(nn::flatten<Scalar>(out) + static_cast<Scalar>(options.cg_damping) * v);
    };
    const Vector<Scalar> direction = conjugate_gradient<Scalar>(fisher_product, -gradient, options.cg_iterations);
    const double shs = static_cast<double>(direction.dot(fisher_product(direction)));
    if (!(shs > 0) || !std::isfinite(shs)) return result;
    full_step = static_cast<Scalar>(std::sqrt(2 * options.max_kl / shs)) * direction;
  }
  const Vector<Scalar> start = nn::flatten<Scalar>(params);
  double fraction = 1;
  for (int i = 0; i < options.line_search_steps; ++i, fraction *= options.backtrack_ratio) {
    Params candidate = params;
    nn::unflatten(candidate, Vector<Scalar>(start + static_cast<Scalar>(fraction) * full_step));
    const double new_loss = value_at(candidate, loss);
    const double new_kl = value_at(candidate, kl);
    if (std::isfinite(new_loss) && new_loss < loss_before && new_kl <= options.max_kl) {
      params = std::move(candidate);
      return {true, loss_before, new_loss, new_kl, i};
    }
  }
  return result;
}

template <class Scalar, class Params, class LossFn, class KlFn>
TrpoResult trpo_step(Params& params, LossFn&& loss, KlFn&& kl, TrpoOptions options = {},
                     ad::Tape<Scalar>* workspace = nullptr) {
  return trpo_step<Scalar>(params, loss, kl, kl, options, workspace);
}

}  // namespace ssmrl::optim
