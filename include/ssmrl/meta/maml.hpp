// MAML in the manner of learn2learn: take the meta-parameters onto a tape, clone them, adapt the
// clone with k inner SGD steps on a loss (first or second order, a fixed inner learning rate or
// learned per-parameter rates as in Meta-SGD), evaluate the clone, and differentiate the query loss
// back to the meta-parameters through every inner step.
#pragma once

#include <optional>
#include <vector>

#include "ssmrl/autodiff.hpp"
#include "ssmrl/nn/parameters.hpp"

namespace ssmrl::meta {

struct MamlOptions {
  double inner_lr = 0.1;       //!< the inner step size (Meta-SGD: the initial per-parameter rate)
  bool first_order = false;    //!< default order of adapt(); each call may override it
  bool learn_inner_lr = false;  //!< Meta-SGD: one learned rate per parameter entry
};

//! `Params` is a parameter struct over matrices (a policy's params_type<Matrix>).
template <class Scalar, class Params>
class MamlLearner {
public:
  using VarParams = typename Params::template rebind<ad::Var<Scalar>>;

  //! The meta-parameters as variables of one tape: the model's, and Meta-SGD's rates.
  struct MetaVariables {
    VarParams params;
    std::optional<VarParams> inner_lrs;
  };

  //! An adapted copy: its parameters are variables that depend on the meta-variables.
  class Clone {
  public:
    [[nodiscard]] const VarParams& params() const { return params_; }

    //! One inner SGD step on `loss`; second order records the gradient on the tape so that the
    //! meta-gradient flows through it, first order uses its value only.
    void adapt(const ad::Var<Scalar>& loss, std::optional<bool> first_order = std::nullopt) {
      const bool fo = first_order.value_or(options_.first_order);
      const auto vars = nn::to_list<ad::Var<Scalar>>(params_);
      const auto grads = ad::grad(loss, std::span<const ad::Var<Scalar>>(vars), {.create_graph = !fo});
      std::vector<ad::Var<Scalar>> next;
      next.reserve(vars.size());
      if (lrs_.empty()) {
        for (std::size_t i = 0; i < vars.size(); ++i) {
          next.push_back(vars[i] - static_cast<Scalar>(options_.inner_lr) * grads[i]);
        }
      } else {
        for (std::size_t i = 0; i < vars.size(); ++i) next.push_back(ad::sub(vars[i], ad::mul(lrs_[i], grads[i])));
      }
      params_ = nn::from_list(params_, next);
      ++steps_;
    }
    [[nodiscard]] int steps() const { return steps_; }

  private:
    friend class MamlLearner;
    Clone(VarParams p, std::vector<ad::Var<Scalar>> lrs, MamlOptions o)
        : params_(std::move(p)), lrs_(std::move(lrs)), options_(o) {}
    VarParams params_;
    std::vector<ad::Var<Scalar>> lrs_;
    MamlOptions options_;
    int steps_ = 0;
  };

  MamlLearner(Params initial, MamlOptions options) : params_(std::move(initial)), options_(options) {
    SSMRL_REQUIRE(options.inner_lr > 0, "meta::MamlLearner: inner_lr ", options.inner_lr, " must be positive");
    if (options.learn_inner_lr) {
      inner_lrs_ = nn::transform_parameters<ad::Matrix<Scalar>>(params_, [&](const ad::Matrix<Scalar>& m) {
        return ad::Matrix<Scalar>::Constant(m.rows(), m.cols(), static_cast<Scalar>(options.inner_lr));
      });
    }
  }

  [[nodiscard]] const Params& params() const { return params_; }
  [[nodiscard]] Params& params() { return params_; }
  [[nodiscard]] const std::optional<Params>& inner_lrs() const { return inner_lrs_; }
  [[nodiscard]] std::optional<Params>& inner_lrs() { return inner_lrs_; }
  [[nodiscard]] const MamlOptions& options() const { return options_; }
  //! The fixed inner step size and the default order of later clones (a knob changed between steps).
  void set_inner_lr(double lr) {
    SSMRL_REQUIRE(lr > 0 && std::isfinite(lr), "meta::MamlLearner::set_inner_lr: lr ", lr, " must be positive");
    options_.inner_lr = lr;
  }
  void set_first_order(bool first_order) { options_.first_order = first_order; }

  //! Puts the meta-parameters on `tape`; every clone of one meta-step shares them.
  [[nodiscard]] MetaVariables meta_variables(ad::Tape<Scalar>& tape) const {
    MetaVariables m{nn::on_tape(tape, params_), std::nullopt};
    if (inner_lrs_) m.inner_lrs = nn::on_tape(tape, *inner_lrs_);
    return m;
  }

  //! A clone whose parameters start at the meta-parameters.
  [[nodiscard]] Clone clone(const MetaVariables& meta) const {
    std::vector<ad::Var<Scalar>> lrs;
    if (meta.inner_lrs) lrs = nn::to_list<ad::Var<Scalar>>(*meta.inner_lrs);
    return Clone(meta.params, std::move(lrs), options_);
  }

  //! The meta-gradient after tape.backward(query loss): one struct for the parameters and, with
  //! Meta-SGD, one for the rates.
  struct MetaGradient {
    Params params;
    std::optional<Params> inner_lrs;
  };
  [[nodiscard]] static MetaGradient meta_gradient(const MetaVariables& meta) {
    MetaGradient g{nn::gradients_of<Scalar>(meta.params), std::nullopt};
    if (meta.inner_lrs) g.inner_lrs = nn::gradients_of<Scalar>(*meta.inner_lrs);
    return g;
  }

private:
  Params params_;
  std::optional<Params> inner_lrs_;
  MamlOptions options_;
};

}  // namespace ssmrl::meta
