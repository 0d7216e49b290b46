// Trust-region policy optimisation's step: conjugate gradient on Hessian-vector products of the
// mean KL divergence (from the autodiff, second order), a step scaled to the KL limit, and a
// backtracking line search that keeps the KL limit and demands improvement.
#pragma once

#include <algorithm>
#include <cmath>
#include <exception>
#include <functional>
#include <span>
#include <vector>

#include "ssmrl/autodiff.hpp"
#include "ssmrl/core/workers.hpp"
#include "ssmrl/dist/communicator.hpp"
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
  double gradient_norm = 0;  //!< of the surrogate's gradient at the old parameters
};

using ::ssmrl::for_chunks;

//! One TRPO update of `params` (a parameter struct of matrices) for objectives that are sums over
//! `parts` (tasks, say): `loss(tape, vars, i)` is part i's term of the surrogate to minimise,
//! `kl(tape, vars, i)` its term of the mean KL from the current policy (fixed inside it) to the one
//! with `vars`, and `fisher_kl(tape, vars, i)` its term of the KL whose Hessian preconditions the
//! step (`kl` itself, or a cheaper stand-in; the line search always checks `kl`). Part i records on
//! `tapes[i]` (at least `parts` tapes; kept across calls, they keep their memory); `threads` share
//! the parts. Every sum runs over the parts in order, so the result does not depend on `threads`.
//! With a communicator of several ranks, each rank computes its share of the parts (dist::share:
//! the callbacks are called only for those, and only their tapes are used) and the per-part values,
//! gradients and Fisher products are gathered before the same ordered sums: every rank gets the
//! result of one process, bit for bit. The parameters change only when a step is accepted.
template <class Scalar, class Params, class LossFn, class KlFn, class FisherKlFn,
          dist::Communicator Comm = dist::SingleProcess>
TrpoResult trpo_step_parts(Params& params, std::size_t parts, LossFn&& loss, KlFn&& kl, FisherKlFn&& fisher_kl,
                           TrpoOptions options, std::span<ad::Tape<Scalar>> tapes, unsigned threads = 1,
                           const Comm& comm = {}) {
  SSMRL_REQUIRE(parts > 0 && tapes.size() >= parts, "optim::trpo_step_parts: parts ", parts, " must be positive and ",
                "at most the tapes, ", tapes.size());
  using Tape = ad::Tape<Scalar>;
  const auto mine = dist::share(parts, comm);
  const std::size_t workers = std::min<std::size_t>(std::max<std::size_t>(1, mine.size()), std::max(1u, threads));
  const auto count = static_cast<std::size_t>(nn::parameter_count(params));
  auto each_part = [&](auto&& fn) {
    if (mine.size() == 0) return;
    for_chunks(mine.size(), workers, [&](std::size_t, std::size_t begin, std::size_t end) {
      for (std::size_t i = begin; i < end; ++i) fn(mine.begin + i);
    });
  };
  // Per-part vectors, part i at [i * count, (i + 1) * count): this rank's parts written, then all gathered.
  auto part_of = [&](Vector<Scalar>& all, std::size_t i) { return all.segment(static_cast<Eigen::Index>(i * count),
                                                                              static_cast<Eigen::Index>(count)); };
  auto gather_parts = [&](Vector<Scalar>& all) {
    dist::allgather_parts(comm, std::span<Scalar>(all.data(), static_cast<std::size_t>(all.size())), parts, count);
  };
  // Sum over the parts of fn's value at `p`, and optionally of its gradient.
  auto sum_at = [&](const Params& p, auto&& fn, Vector<Scalar>* gradient) {
    std::vector<double> values(parts, 0.0);
    Vector<Scalar> gradients;
    if (gradient != nullptr) gradients = Vector<Scalar>::Zero(static_cast<Eigen::Index>(parts * count));
    each_part([&](std::size_t i) {
      Tape& tape = tapes[i];
      typename Tape::Scope scope(tape);
      const auto vars = nn::on_tape(tape, p);
      const auto term = fn(tape, vars, i);
      values[i] = static_cast<double>(term.item());
      if (gradient != nullptr && term.requires_grad()) {
        tape.backward(term);
        part_of(gradients, i) = nn::flatten<Scalar>(nn::gradients_of<Scalar>(vars));
      }
    });
    dist::allgather_parts(comm, std::span<double>(values), parts, 1);
    if (gradient != nullptr) {
      gather_parts(gradients);
      *gradient = Vector<Scalar>::Zero(static_cast<Eigen::Index>(count));
      for (std::size_t i = 0; i < parts; ++i) *gradient += part_of(gradients, i);
    }
    double sum = 0;
    for (const double v : values) sum += v;
    return sum;
  };
  Vector<Scalar> gradient;
  const double loss_before = sum_at(params, loss, &gradient);
  TrpoResult result{false, loss_before, loss_before, 0, 0, static_cast<double>(gradient.norm())};
  Vector<Scalar> full_step;
  {
    // F v: the Hessian of the KL at the current parameters. Each part records the gradient of its
    // KL once as a graph (create_graph); a product is then one reverse pass of <gradient, v> per part.
    std::vector<typename Tape::Mark> marks;
    for (std::size_t i = mine.begin; i < mine.end; ++i) marks.push_back(tapes[i].mark());
    std::vector<std::vector<ad::Var<Scalar>>> leaves(parts);
    std::vector<std::vector<ad::Var<Scalar>>> kl_gradients(parts);
    each_part([&](std::size_t i) {
      Tape& tape = tapes[i];
      const auto vars = nn::on_tape(tape, params);
      leaves[i] = nn::to_list<ad::Var<Scalar>>(vars);
      kl_gradients[i] = ad::grad(fisher_kl(tape, vars, i), std::span<const ad::Var<Scalar>>(leaves[i]),
                                 {.create_graph = true});
    });
    auto fisher_product = [&](const Vector<Scalar>& v) {
      Params direction = params;
      nn::unflatten(direction, v);
      const auto dirs = nn::to_list<ad::Matrix<Scalar>>(direction);
      Vector<Scalar> products = Vector<Scalar>::Zero(static_cast<Eigen::Index>(parts * count));
      each_part([&](std::size_t part) {
        Tape& tape = tapes[part];
        typename Tape::Scope scope(tape);
        const auto& list = leaves[part];
        std::vector<ad::Var<Scalar>> terms;
        for (std::size_t i = 0; i < list.size(); ++i) {
          if (kl_gradients[part][i].requires_grad()) {
            terms.push_back(ad::sum(ad::mul(kl_gradients[part][i], tape.constant(dirs[i]))));
          }
        }
        if (!terms.empty()) tape.backward(ad::add_n<Scalar>(terms));
        std::vector<ad::Matrix<Scalar>> hv;
        for (const auto& leaf : list) {
          hv.push_back(!terms.empty() && leaf.requires_grad() ? ad::Matrix<Scalar>(leaf.grad())
                                                              : ad::Matrix<Scalar>::Zero(leaf.rows(), leaf.cols()));
        }
        part_of(products, part) = nn::flatten<Scalar>(nn::from_list(params, hv));
      });
      gather_parts(products);
      Vector<Scalar> out = static_cast<Scalar>(options.cg_damping) * v;
      for (std::size_t i = 0; i < parts; ++i) out += part_of(products, i);
      return out;
    };
    const Vector<Scalar> direction = conjugate_gradient<Scalar>(fisher_product, -gradient, options.cg_iterations);
    const double shs = static_cast<double>(direction.dot(fisher_product(direction)));
    for (std::size_t i = mine.begin; i < mine.end; ++i) tapes[i].rewind(marks[i - mine.begin]);
    if (!(shs > 0) || !std::isfinite(shs)) return result;
    full_step = static_cast<Scalar>(std::sqrt(2 * options.max_kl / shs)) * direction;
  }
  const Vector<Scalar> start = nn::flatten<Scalar>(params);
  double fraction = 1;
  for (int i = 0; i < options.line_search_steps; ++i, fraction *= options.backtrack_ratio) {
    Params candidate = params;
    nn::unflatten(candidate, Vector<Scalar>(start + static_cast<Scalar>(fraction) * full_step));
    const double new_loss = sum_at(candidate, loss, nullptr);
    const double new_kl = sum_at(candidate, kl, nullptr);
    if (std::isfinite(new_loss) && new_loss < loss_before && new_kl <= options.max_kl) {
      params = std::move(candidate);
      return {true, loss_before, new_loss, new_kl, i, result.gradient_norm};
    }
  }
  return result;
}

//! One TRPO update of `params` for a loss and KL given whole: `loss(tape, vars)`, `kl(tape, vars)`
//! and `fisher_kl(tape, vars)` as in trpo_step_parts with one part. `workspace` (optional) is a
//! tape to record on; one kept across calls keeps its memory.
template <class Scalar, class Params, class LossFn, class KlFn, class FisherKlFn>
TrpoResult trpo_step(Params& params, LossFn&& loss, KlFn&& kl, FisherKlFn&& fisher_kl, TrpoOptions options = {},
                     ad::Tape<Scalar>* workspace = nullptr) {
  ad::Tape<Scalar> own_tape(workspace == nullptr ? std::size_t{1} << 16 : 64);
  ad::Tape<Scalar>& tape = workspace != nullptr ? *workspace : own_tape;
  auto whole = [](auto& fn) { return [&fn](ad::Tape<Scalar>& t, const auto& vars, std::size_t) { return fn(t, vars); }; };
  return trpo_step_parts<Scalar>(params, 1, whole(loss), whole(kl), whole(fisher_kl), options,
                                 std::span<ad::Tape<Scalar>>(&tape, 1));
}

template <class Scalar, class Params, class LossFn, class KlFn>
TrpoResult trpo_step(Params& params, LossFn&& loss, KlFn&& kl, TrpoOptions options = {},
                     ad::Tape<Scalar>* workspace = nullptr) {
  return trpo_step<Scalar>(params, loss, kl, kl, options, workspace);
}

}  // namespace ssmrl::optim
