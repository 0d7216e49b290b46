// A recurrent policy: a cell, an optional normalisation of its features, an action head and an
// optional value head, with one recurrent state per environment of a batch.
#pragma once

#include <array>
#include <concepts>
#include <random>
#include <string_view>
#include <tuple>

#include "ssmrl/nn/cells/cell.hpp"
#include "ssmrl/nn/layer_norm.hpp"
#include "ssmrl/policy/concepts.hpp"
#include "ssmrl/policy/heads.hpp"

namespace ssmrl::policy {

template <class CellP, class NormP, class HeadP, class ValueP>
struct PolicyParams {
  CellP cell;
  NormP norm;
  HeadP head;
  ValueP value;
  static constexpr std::array<std::string_view, 4> names{"cell", "norm", "head", "value"};
  auto fields() { return std::tie(cell, norm, head, value); }
  auto fields() const { return std::tie(cell, norm, head, value); }
  template <class U>
  using rebind = PolicyParams<typename CellP::template rebind<U>, typename NormP::template rebind<U>,
                              typename HeadP::template rebind<U>, typename ValueP::template rebind<U>>;
};

template <nn::Cell CellT, class HeadT, class NormT = nn::NoNorm<typename CellT::scalar_type>,
          class ValueT = NoValueHead<typename CellT::scalar_type>>
class RecurrentPolicy {
public:
  using scalar_type = typename CellT::scalar_type;
  using Scalar = scalar_type;
  using cell_type = CellT;
  using head_type = HeadT;
  template <class T>
  using params_type = PolicyParams<typename CellT::template params_type<T>, typename NormT::template params_type<T>,
                                   typename HeadT::template params_type<T>, typename ValueT::template params_type<T>>;
  using Params = params_type<ad::Matrix<Scalar>>;
  using VarParams = params_type<ad::Var<Scalar>>;
  static constexpr bool has_value_head = ValueT::enabled;
  static constexpr bool categorical = HeadT::categorical;

  //! What act() returns: views of the policy's buffers, valid until the next call.
  struct Step {
    const ad::Matrix<Scalar>& actions;   //!< action_size x num_envs
    const ad::Matrix<Scalar>& log_prob;  //!< 1 x num_envs
    const ad::Matrix<Scalar>& value;     //!< 1 x num_envs (empty without a value head)
    //! What evaluate() takes to reproduce log_prob where it is not the actions (a squashing head's
    //! u before tanh), action_size x num_envs; empty where the actions are the samples.
    const ad::Matrix<Scalar>& samples;
  };

  //! log-probabilities, entropies and values of whole trajectories, recorded on a tape.
  struct Evaluation {
    ad::Var<Scalar> features;  //!< cell output after normalisation, output_size x T*batch
    ad::Var<Scalar> log_prob;  //!< 1 x T*batch
    ad::Var<Scalar> entropy;   //!< 1 x T*batch
    ad::Var<Scalar> value;     //!< 1 x T*batch; empty without a value head
  };

  RecurrentPolicy(CellT cell, HeadT head, NormT norm, ValueT value, std::uint64_t seed)
      : cell_(std::move(cell)), head_(std::move(head)), norm_(std::move(norm)), value_head_(std::move(value)) {
    SSMRL_REQUIRE(head_.input_size() == cell_.output_size(), "RecurrentPolicy: the head takes ", head_.input_size(),
                  " features, the cell gives ", cell_.output_size());
    nn::init::Rng rng(seed);
    params_ = Params{cell_.init_params(rng), norm_.init_params(rng), head_.init_params(rng), value_head_.init_params(rng)};
    set_num_envs(1);
  }

  [[nodiscard]] const CellT& cell() const noexcept { return cell_; }
  [[nodiscard]] const HeadT& head() const noexcept { return head_; }
  [[nodiscard]] const NormT& norm() const noexcept { return norm_; }
  [[nodiscard]] const ValueT& value_head() const noexcept { return value_head_; }
  [[nodiscard]] ad::Index observation_size() const noexcept { return cell_.input_size(); }
  [[nodiscard]] ad::Index action_size() const noexcept { return head_.action_size(); }

  [[nodiscard]] const Params& params() const noexcept { return params_; }
  [[nodiscard]] Params& params() noexcept { return params_; }
  //! Replaces every parameter; nothing changes unless all shapes match.
  void set_params(Params p) {
    check_shapes(p);
    params_ = std::move(p);
  }
  void check_shapes(const Params& p) const {
    cell_.check_shapes(p.cell);
    std::size_t i = 0;
    const auto expected = nn::to_list<ad::Matrix<Scalar>>(params_);
    const auto names = nn::parameter_names(params_);
    nn::for_each_parameter(p, [&](std::string_view name, const ad::Matrix<Scalar>& m) {
      SSMRL_REQUIRE(i < expected.size() && m.rows() == expected[i].rows() && m.cols() == expected[i].cols(),
                    "RecurrentPolicy::check_shapes: parameter ", name, " is ", m.rows(), "x", m.cols(), ", expected ",
                    i < expected.size() ? expected[i].rows() : 0, "x", i < expected.size() ? expected[i].cols() : 0);
      ++i;
    });
  }

  // ---- acting, one recurrent state per environment, no tape ----

  //! Sizes the per-environment state and buffers for `count` environments and zeroes the state.
  void set_num_envs(ad::Index count) {
    SSMRL_REQUIRE(count > 0, "RecurrentPolicy::set_num_envs: count ", count, " must be positive");
    state_.setZero(cell_.state_size(), count);
    features_.resize(cell_.output_size(), count);
    actions_.resize(head_.action_size(), count);
    log_prob_.resize(1, count);
    if constexpr (ValueT::enabled) {
      value_.resize(1, count);
      peek_state_.resize(cell_.state_size(), count);
      peek_features_.resize(cell_.output_size(), count);
      peek_value_.resize(1, count);
    }
    cell_workspace_ = cell_.make_workspace(count);
    head_workspace_ = head_.make_workspace(count);
  }
  [[nodiscard]] ad::Index num_envs() const noexcept { return state_.cols(); }
  //! Zeroes one environment's recurrent state (its episode ended).
  void reset(ad::Index env) {
    SSMRL_REQUIRE(env >= 0 && env < num_envs(), "RecurrentPolicy::reset: environment ", env, " is outside [0, ",
                  num_envs(), ")");
    state_.col(env).setZero();
  }
  void reset_all() { state_.setZero(); }
  [[nodiscard]] const ad::Matrix<Scalar>& state() const noexcept { return state_; }
  [[nodiscard]] ad::Matrix<Scalar>& state() noexcept { return state_; }

  //! One step for every environment: observations are observation_size x num_envs.
  template <class Rng>
  Step act(Eigen::Ref<const ad::Matrix<Scalar>> observations, ActMode mode, Rng& rng) {
    SSMRL_REQUIRE(observations.rows() == cell_.input_size() && observations.cols() == num_envs(),
                  "RecurrentPolicy::act: observations are ", observations.rows(), "x", observations.cols(),
                  ", expected ", cell_.input_size(), "x", num_envs(), " (observation size x environments)");
    cell_.step(params_.cell, state_, observations, features_, cell_workspace_);
    norm_.apply(params_.norm, features_);
    head_.act(params_.head, features_, mode, rng, actions_, log_prob_, head_workspace_);
    if constexpr (ValueT::enabled) value_head_.value_into(params_.value, features_, value_);
    if constexpr (requires { head_workspace_.samples; }) {
      return {actions_, log_prob_, value_, head_workspace_.samples};
    } else {
      return {actions_, log_prob_, value_, no_samples_};
    }
  }

  //! The values each environment would see if it took one more step with `observations`, from
  //! its current recurrent state, without changing that state: bootstraps a truncated episode from
  //! its final observation. Needs a value head.
  const ad::Matrix<Scalar>& peek_values(Eigen::Ref<const ad::Matrix<Scalar>> observations) {
    static_assert(ValueT::enabled, "RecurrentPolicy::peek_values: the policy has no value head");
    SSMRL_REQUIRE(observations.rows() == cell_.input_size() && observations.cols() == num_envs(),
                  "RecurrentPolicy::peek_values: observations are ", observations.rows(), "x", observations.cols(),
                  ", expected ", cell_.input_size(), "x", num_envs());
    peek_state_ = state_;
    cell_.step(params_.cell, peek_state_, observations, peek_features_, cell_workspace_);
    norm_.apply(params_.norm, peek_features_);
    value_head_.value_into(params_.value, peek_features_, peek_value_);
    return peek_value_;
  }

  // ---- training, on a tape ----

  //! Evaluates trajectories: observations observation_size x (T * batch) in time-major blocks,
  //! samples action_size x (T * batch) as act() produced them (Step::samples where not empty, else
  //! Step::actions; rl::evaluate() picks them from a TrajectoryBatch).
  [[nodiscard]] Evaluation evaluate(const VarParams& p, const ad::Var<Scalar>& observations, ad::Index batch,
                                    const ad::Matrix<Scalar>& samples,
                                    const nn::SequenceOptions<Scalar>& options = {}) const {
    Evaluation e;
    e.features = norm_.forward(p.norm, cell_.forward_sequence(p.cell, observations, batch, options));
    e.log_prob = head_.log_prob(p.head, e.features, samples);
    e.entropy = head_.entropy(p.head, e.features);
    if constexpr (ValueT::enabled) e.value = value_head_.value(p.value, e.features);
    return e;
  }

  //! The head's distribution parameters for every column of trajectories (for kl_divergence()).
  [[nodiscard]] ad::Var<Scalar> distribution(const VarParams& p, const ad::Var<Scalar>& observations, ad::Index batch,
                                             const nn::SequenceOptions<Scalar>& options = {}) const {
    return head_.distribution(p.head,
                              norm_.forward(p.norm, cell_.forward_sequence(p.cell, observations, batch, options)));
  }
  //! The head's distribution parameters from features that evaluate() gave (no second forward pass).
  [[nodiscard]] ad::Var<Scalar> distribution_of(const VarParams& p, const ad::Var<Scalar>& features) const {
    return head_.distribution(p.head, features);
  }
  //! Mean over columns of KL(old || new); pass old detached (tape.detach) to differentiate in new.
  [[nodiscard]] ad::Var<Scalar> mean_kl(const ad::Var<Scalar>& old_distribution, const ad::Var<Scalar>& new_distribution) const {
    return ad::mean(head_.kl_divergence(old_distribution, new_distribution));
  }

private:
  CellT cell_;
  HeadT head_;
  NormT norm_;
  ValueT value_head_;
  Params params_;
  ad::Matrix<Scalar> state_;
  ad::Matrix<Scalar> features_;
  ad::Matrix<Scalar> actions_;
  ad::Matrix<Scalar> log_prob_;
  ad::Matrix<Scalar> value_;
  ad::Matrix<Scalar> peek_state_;
  ad::Matrix<Scalar> peek_features_;
  ad::Matrix<Scalar> peek_value_;
  ad::Matrix<Scalar> no_samples_;
  typename CellT::workspace_type cell_workspace_;
  typename HeadT::workspace_type head_workspace_;
};

//! The name of TrainablePolicy before the concepts were split by algorithm (policy/concepts.hpp).
template <class P>
concept Policy = TrainablePolicy<P>;

}  // namespace ssmrl::policy
