// A recurrent policy with an MC head: each step it first chooses, per environment, an internal
// action of an McRegistry (pass 1: the cell's features from the current state, not advanced), the
// chosen actions' effects are applied (state edits, observation focus), and the base policy then
// acts on the altered state and input (pass 2), advancing the recurrent state once. Training
// replays the rollout's recorded choices and effects at the same steps (evaluate_mc), step by step.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <string_view>
#include <tuple>
#include <vector>

#include "ssmrl/mc/effects.hpp"
#include "ssmrl/mc/focus.hpp"
#include "ssmrl/mc/registry.hpp"
#include "ssmrl/mc/state_actions.hpp"
#include "ssmrl/nn/linear.hpp"
#include "ssmrl/policy/concepts.hpp"

namespace ssmrl::mc {

template <class PolicyP, class HeadP>
struct McPolicyParams {
  PolicyP policy;
  HeadP mc_head;
  static constexpr std::array<std::string_view, 2> names{"policy", "mc_head"};
  auto fields() { return std::tie(policy, mc_head); }
  auto fields() const { return std::tie(policy, mc_head); }
  template <class U>
  using rebind = McPolicyParams<typename PolicyP::template rebind<U>, typename HeadP::template rebind<U>>;
};

//! The logits' additive mask of an active set: 0 for an active action, a large negative number for
//! the others (their probability is exactly 0 and they get no gradient).
template <class Scalar>
inline constexpr Scalar inactive_logit = Scalar(-1e30);

//! How the MC head starts. Its weights are orthogonal with gain 0.01, so its first choices follow its
//! bias: by default every action is equally likely; with `noop_probability` set, noop's bias is
//! raised so that it has that probability while every action is active (the others share the rest
//! equally), and the policy starts out close to its base, disturbing its memory rarely.
struct McHeadOptions {
  std::optional<double> noop_probability;
};

template <class Base, McComponent... Components>
class McPolicy {
public:
  using scalar_type = typename Base::scalar_type;
  using Scalar = scalar_type;
  using base_type = Base;
  using registry_type = McRegistry<Components...>;
  template <class T>
  using params_type = McPolicyParams<typename Base::template params_type<T>, nn::LinearParams<T>>;
  using Params = params_type<ad::Matrix<Scalar>>;
  using VarParams = params_type<ad::Var<Scalar>>;
  static constexpr bool has_value_head = Base::has_value_head;
  static constexpr bool categorical = Base::categorical;
  static constexpr bool focuses = registry_type::template has_component<ObservationFocus<Scalar>>;

  struct Step {
    const ad::Matrix<Scalar>& actions;
    const ad::Matrix<Scalar>& log_prob;
    const ad::Matrix<Scalar>& value;
    const ad::Matrix<Scalar>& samples;
    const ad::Matrix<Scalar>& mc_choices;   //!< 1 x N: index among all the registry's actions
    const ad::Matrix<Scalar>& mc_log_prob;  //!< 1 x N
    const ad::Matrix<Scalar>& mc_value;     //!< 1 x N: the value before the MC action (empty without a value head)
    const McEffects<Scalar>& mc_effects;
  };

  struct Evaluation {
    ad::Var<Scalar> features;
    ad::Var<Scalar> log_prob;
    ad::Var<Scalar> entropy;
    ad::Var<Scalar> value;
    ad::Var<Scalar> mc_log_prob;  //!< 1 x T*batch (empty without a record)
    ad::Var<Scalar> mc_entropy;   //!< 1 x T*batch (empty without a record)
  };

  //! `base` acts on the observations (with one more feature, the share of tokens visible, where the
  //! registry focuses); the MC head is a linear map of the base's features to every action's logit.
  McPolicy(Base base, registry_type registry, std::uint64_t seed, McHeadOptions head = {})
      : base_(std::move(base)), registry_(std::move(registry)), rng_(seed ^ 0x6d635f68656164ULL) {
    if (head.noop_probability) {
      const double p = *head.noop_probability;
      SSMRL_REQUIRE(p > 0 && p < 1, "mc::McPolicy: head.noop_probability ", p, " must be in (0, 1)");
    }
    if constexpr (focuses) {
      const auto& focus = registry_.template component<ObservationFocus<Scalar>>();
      SSMRL_REQUIRE(base_.observation_size() == focus.input_size(), "mc::McPolicy: the policy takes ",
                    base_.observation_size(), " inputs; focus over ", focus.options().tokens, " tokens of ",
                    focus.options().token_size, " needs ", focus.input_size(), " (the observation and its mask)");
    }
    nn::init::Rng rng(seed);
    params_ = Params{base_.params(), nn::init_linear<Scalar>(base_.cell().output_size(), mc_actions(), rng,
                                                             nn::LinearInit::orthogonal, 0.01)};
    const auto others = static_cast<double>(mc_actions() - 1);
    if (head.noop_probability && others > 0) {
      // softmax gives noop e^b / (e^b + others): b = log(p * others / (1 - p)).
      const double p = *head.noop_probability;
      params_.mc_head.b(0, 0) = static_cast<Scalar>(std::log(p * others / (1 - p)));
    }
    set_num_envs(1);
  }

  [[nodiscard]] const Base& base() const noexcept { return base_; }
  [[nodiscard]] registry_type& registry() noexcept { return registry_; }
  [[nodiscard]] const registry_type& registry() const noexcept { return registry_; }
  //! Every action of the registry (noop included): the MC head's outputs.
  [[nodiscard]] ad::Index mc_actions() const noexcept { return static_cast<ad::Index>(registry_.actions().size()); }
  [[nodiscard]] ad::Index observation_size() const noexcept { return base_.observation_size() - (focuses ? 1 : 0); }
  [[nodiscard]] ad::Index action_size() const noexcept { return base_.action_size(); }

  [[nodiscard]] const Params& params() const noexcept { return params_; }
  void set_params(Params p) {
    base_.check_shapes(p.policy);
    SSMRL_REQUIRE(p.mc_head.W.rows() == mc_actions() && p.mc_head.W.cols() == base_.cell().output_size() &&
                      p.mc_head.b.rows() == mc_actions() && p.mc_head.b.cols() == 1,
                  "mc::McPolicy::set_params: mc_head is ", p.mc_head.W.rows(), "x", p.mc_head.W.cols(), " and ",
                  p.mc_head.b.rows(), "x", p.mc_head.b.cols(), ", expected ", mc_actions(), "x",
                  base_.cell().output_size(), " and ", mc_actions(), "x1");
    base_.set_params(p.policy);
    params_ = std::move(p);
  }

  //! Sizes everything for `count` environments whose ids are 0..count-1 and zeroes the state.
  void set_num_envs(ad::Index count) {
    std::vector<EnvId> ids(static_cast<std::size_t>(std::max<ad::Index>(count, 0)));
    for (std::size_t j = 0; j < ids.size(); ++j) ids[j] = static_cast<EnvId>(j);
    set_env_ids(ids);
  }
  //! As set_num_envs, for environments with the given ids (column j is environment ids[j]).
  void set_env_ids(std::span<const EnvId> ids) {
    const auto count = static_cast<ad::Index>(ids.size());
    base_.set_num_envs(count);
    effects_.resize(base_.cell().state_size(), ids);
    ids_.assign(ids.begin(), ids.end());
    registry_.prepare(std::span<const EnvId>(ids_), effects_);
    input_.resize(base_.observation_size(), count);
    peek_.resize(base_.cell().state_size(), count);
    first_features_.resize(base_.cell().output_size(), count);
    logits_.resize(mc_actions(), count);
    mask_.resize(mc_actions(), 1);
    mc_choices_.resize(1, count);
    mc_log_prob_.resize(1, count);
    mc_value_.resize(1, has_value_head ? count : 0);
    active_choices_.assign(ids.size(), 0);
    workspace_ = base_.cell().make_workspace(count);
  }
  [[nodiscard]] ad::Index num_envs() const noexcept { return base_.num_envs(); }
  [[nodiscard]] std::span<const EnvId> env_ids() const noexcept { return ids_; }
  void reset(ad::Index env) { base_.reset(env); }
  void reset_all() { base_.reset_all(); }
  [[nodiscard]] const ad::Matrix<Scalar>& state() const noexcept { return base_.state(); }
  [[nodiscard]] ad::Matrix<Scalar>& state() noexcept { return base_.state(); }
  //! The effects of the last step (transient: cleared at the next, never in a checkpoint).
  [[nodiscard]] const McEffects<Scalar>& effects() const noexcept { return effects_; }

  //! The two-pass step for every environment.
  template <class Rng>
  Step act(Eigen::Ref<const ad::Matrix<Scalar>> observations, policy::ActMode mode, Rng& rng) {
    SSMRL_REQUIRE(observations.rows() == observation_size() && observations.cols() == num_envs(),
                  "mc::McPolicy::act: observations are ", observations.rows(), "x", observations.cols(),
                  ", expected ", observation_size(), "x", num_envs(), " (observation size x environments)");
    input_of(observations, nullptr, input_);
    // Pass 1: the features the cell would give from the state as it is, on a copy of it.
    peek_ = base_.state();
    base_.cell().step(base_.params().cell, peek_, input_, first_features_, workspace_);
    base_.norm().apply(base_.params().norm, first_features_);
    nn::linear_into(params_.mc_head, first_features_, logits_);
    if constexpr (has_value_head) base_.value_head().value_into(base_.params().value, first_features_, mc_value_);
    active_mask(mask_);
    logits_.colwise() += mask_.col(0);
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    for (ad::Index j = 0; j < num_envs(); ++j) {
      const auto col = logits_.col(j);
      const Scalar lse = ad::log_sum_exp_of(col);
      std::size_t chosen = 0;
      if (mode == policy::ActMode::greedy) {
        for (std::size_t i = 1; i < registry_.active_count(); ++i) {
          if (col(global(i)) > col(global(chosen))) chosen = i;
        }
      } else {
        double u = uniform(rng_);
        chosen = registry_.active_count() - 1;
        for (std::size_t i = 0; i < registry_.active_count(); ++i) {
          u -= std::exp(static_cast<double>(col(global(i)) - lse));
          if (u < 0) {
            chosen = i;
            break;
          }
        }
      }
      active_choices_[static_cast<std::size_t>(j)] = static_cast<int>(chosen);
      mc_choices_(0, j) = static_cast<Scalar>(global(chosen));
      mc_log_prob_(0, j) = col(global(chosen)) - lse;
    }
    // The chosen actions' effects, then pass 2 on the altered state and input.
    effects_.clear();
    registry_.apply(std::span<const int>(active_choices_), std::span<const EnvId>(ids_), effects_);
    effects_.apply_to_state(base_.state());
    if constexpr (focuses) input_of(observations, effects_.tokens().data(), input_);
    const auto step = base_.act(input_, mode, rng);
    return {step.actions, step.log_prob, step.value, step.samples, mc_choices_, mc_log_prob_, mc_value_, effects_};
  }

  //! Values after one more step with `observations`, state unchanged and no MC action (bootstrap).
  const ad::Matrix<Scalar>& peek_values(Eigen::Ref<const ad::Matrix<Scalar>> observations) {
    SSMRL_REQUIRE(observations.rows() == observation_size() && observations.cols() == num_envs(),
                  "mc::McPolicy::peek_values: observations are ", observations.rows(), "x", observations.cols(),
                  ", expected ", observation_size(), "x", num_envs());
    input_of(observations, nullptr, input_);
    return base_.peek_values(input_);
  }

  //! Trajectories as though every step had chosen noop (the fused path): what a caller without
  //! the rollout's McRecord gets.
  [[nodiscard]] Evaluation evaluate(const VarParams& p, const ad::Var<Scalar>& observations, ad::Index batch,
                                    const ad::Matrix<Scalar>& samples,
                                    const nn::SequenceOptions<Scalar>& options = {}) const {
    const auto e = base_.evaluate(p.policy, inputs_on_tape(observations, nullptr), batch, samples, options);
    return {e.features, e.log_prob, e.entropy, e.value, {}, {}};
  }

  //! Trajectories as the rollout ran them: at each step pass 1 from the state (the MC head's
  //! log-probability of the recorded choice), the recorded effects, pass 2 (the base's log-probability
  //! and value), the state advanced once. The per-step path: the cell walks one step at a time, so
  //! that the recorded noise enters the state exactly where it did in the rollout.
  [[nodiscard]] Evaluation evaluate_mc(const VarParams& p, const ad::Var<Scalar>& observations, ad::Index batch,
                                       const ad::Matrix<Scalar>& samples, const nn::SequenceOptions<Scalar>& options,
                                       const McRecord<Scalar>& record) const {
    auto& tape = observations.tape();
    const ad::Index cols = observations.cols();
    SSMRL_REQUIRE(batch > 0 && cols % batch == 0 && record.choices.cols() == cols && record.log_probs.cols() == cols &&
                      record.state_offset.cols() == cols && record.state_offset.rows() == base_.cell().state_size(),
                  "mc::McPolicy::evaluate_mc: the record has ", record.choices.cols(), " columns and a state offset of ",
                  record.state_offset.rows(), "x", record.state_offset.cols(), " for ", cols,
                  " columns of observations and a state of ", base_.cell().state_size());
    const ad::Index steps = cols / batch;
    const auto first_inputs = inputs_on_tape(observations, nullptr);
    const auto second_inputs = focuses ? inputs_on_tape(observations, record.tokens.data()) : first_inputs;
    const auto& cell = base_.cell();
    nn::detail::StepList<Scalar> first(tape, steps);
    nn::detail::StepList<Scalar> second(tape, steps);
    ad::Var<Scalar> h = options.initial_state.valid() ? options.initial_state
                                                      : tape.constant(cell.state_size(), batch, Scalar(0));
    for (ad::Index t = 0; t < steps; ++t) {
      h = nn::detail::kept_state(h, options.keep, t, batch);
      first.set(t, cell.forward_sequence(p.policy.cell, ad::slice_cols(first_inputs, t * batch, batch), batch,
                                         {.initial_state = h}));
      if (!record.state_edited.middleCols(t * batch, batch).isZero(0)) {
        h = ad::add(ad::mul(h, tape.constant(record.state_keep.middleCols(t * batch, batch))),
                    tape.constant(record.state_offset.middleCols(t * batch, batch)));
      }
      ad::Var<Scalar> next;
      second.set(t, cell.forward_sequence(p.policy.cell, ad::slice_cols(second_inputs, t * batch, batch), batch,
                                          {.initial_state = h, .final_state = &next}));
      h = next;
    }
    if (options.final_state != nullptr) *options.final_state = h;
    Evaluation e;
    const auto& norm = base_.norm();
    const auto mc_features = norm.forward(p.policy.norm, ad::concat_cols(first.span(steps)));
    ad::Matrix<Scalar> mask(mc_actions(), 1);
    active_mask(mask);
    const auto logits = ad::add(nn::linear(p.mc_head, mc_features), tape.constant(mask));
    int* index = tape.template allocate_array<int>(static_cast<std::size_t>(cols));
    for (ad::Index j = 0; j < cols; ++j) index[j] = static_cast<int>(record.choices(0, j));
    e.mc_log_prob = ad::pick(ad::log_softmax(logits), std::span<const int>(index, static_cast<std::size_t>(cols)));
    e.mc_entropy = ad::categorical_entropy(logits);
    e.features = norm.forward(p.policy.norm, ad::concat_cols(second.span(steps)));
    e.log_prob = base_.head().log_prob(p.policy.head, e.features, samples);
    e.entropy = base_.head().entropy(p.policy.head, e.features);
    if constexpr (has_value_head) e.value = base_.value_head().value(p.policy.value, e.features);
    return e;
  }

  [[nodiscard]] ad::Var<Scalar> distribution_of(const VarParams& p, const ad::Var<Scalar>& features) const {
    return base_.distribution_of(p.policy, features);
  }

private:
  [[nodiscard]] std::size_t global(std::size_t i) const { return registry_.active_position(i); }

  void active_mask(ad::Matrix<Scalar>& mask) const {
    mask.setConstant(inactive_logit<Scalar>);
    for (std::size_t i = 0; i < registry_.active_count(); ++i) mask(static_cast<ad::Index>(global(i)), 0) = 0;
  }

  // The base's input: the observations, and where the registry focuses, the focused tokens and mask.
  void input_of(Eigen::Ref<const ad::Matrix<Scalar>> observations, const Scalar* tokens,
                Eigen::Ref<ad::Matrix<Scalar>> input) const {
    if constexpr (focuses) {
      registry_.template component<ObservationFocus<Scalar>>().input_into(observations, tokens, input);
    } else {
      input = observations;
    }
  }
  [[nodiscard]] ad::Var<Scalar> inputs_on_tape(const ad::Var<Scalar>& observations, const Scalar* tokens) const {
    if constexpr (!focuses) {
      return observations;
    } else {
      ad::Matrix<Scalar> input(base_.observation_size(), observations.cols());
      input_of(observations.value(), tokens, input);
      return observations.tape().constant(input);
    }
  }

  Base base_;
  registry_type registry_;
  Params params_;
  std::mt19937_64 rng_;
  McEffects<Scalar> effects_;
  std::vector<EnvId> ids_;
  std::vector<int> active_choices_;
  ad::Matrix<Scalar> input_;
  ad::Matrix<Scalar> peek_;
  ad::Matrix<Scalar> first_features_;
  ad::Matrix<Scalar> logits_;
  ad::Matrix<Scalar> mask_;
  ad::Matrix<Scalar> mc_choices_;
  ad::Matrix<Scalar> mc_log_prob_;
  ad::Matrix<Scalar> mc_value_;
  typename Base::cell_type::workspace_type workspace_;
};

}  // namespace ssmrl::mc
