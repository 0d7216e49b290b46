// MetaController<RNN>: a recurrent network (any of the library's cells) that reads a trainer's
// normalised telemetry and the positions of the knobs it steers, carries its state across calls,
// and chooses per knob one of a few bounded actions (down / keep / up for multiplicative and
// additive knobs; a point of a grid, a bool or a choice for absolute ones). Whatever the network
// outputs, the decoded value is inside the knob's bounds and of its type. Learns by REINFORCE on
// its own sampled choices (reward: the improvement that followed), with a baseline and an entropy
// bonus, or by weighted imitation of logged decisions (offline pretraining).
#pragma once

#include <cmath>
#include <random>
#include <sstream>
#include <span>
#include <string>
#include <vector>

#include "ssmrl/autodiff.hpp"
#include "ssmrl/control/knobs.hpp"
#include "ssmrl/control/telemetry.hpp"
#include "ssmrl/nn/cells/cell.hpp"
#include "ssmrl/nn/linear.hpp"
#include "ssmrl/optim/adam.hpp"
#include "ssmrl/optim/clip.hpp"

namespace ssmrl::control {

//! How many actions a controller has for `k`: 3 for multiplicative and additive moves (down, keep,
//! up); for absolute moves 2 (bool), one per choice, or `levels` grid points (float and int).
inline int action_count(const Knob& k, int levels) {
  if (k.move != KnobMove::absolute) return 3;
  if (k.type == KnobType::boolean) return 2;
  if (k.type == KnobType::choice) return static_cast<int>(k.choices.size());
  return levels;
}

//! The value that action `a` gives knob `k` from `current`; always a value of the knob (decoded by
//! Knob::from_number, so clamped to the bounds and of the knob's type).
inline KnobValue apply_action(const Knob& k, const KnobValue& current, int a, int levels) {
  SSMRL_REQUIRE(a >= 0 && a < action_count(k, levels), "control::apply_action: action ", a, " of knob '", k.name,
                "', which has ", action_count(k, levels));
  const double x = k.number(current);
  switch (k.move) {
    case KnobMove::multiplicative: return k.from_number(a == 0 ? x / k.step : a == 2 ? x * k.step : x);
    case KnobMove::additive: return k.from_number(a == 0 ? x - k.step : a == 2 ? x + k.step : x);
    case KnobMove::absolute: break;
  }
  if (k.type == KnobType::boolean || k.type == KnobType::choice) return k.from_number(a);
  const double f = levels > 1 ? static_cast<double>(a) / (levels - 1) : 0.0;
  if (k.log_scale) return k.from_number(std::exp(std::log(k.lower) + f * (std::log(k.upper) - std::log(k.lower))));
  return k.from_number(k.lower + f * (k.upper - k.lower));
}

//! The action of `k` that reproduces the move from `before` to `after` best (offline pretraining's
//! label): the nearest grid point, or down / keep / up by the direction of the change.
inline int action_of_change(const Knob& k, const KnobValue& before, const KnobValue& after, int levels) {
  const double a = k.number(after);
  if (k.move != KnobMove::absolute) {
    const double b = k.number(before);
    return a < b ? 0 : a > b ? 2 : 1;
  }
  if (k.type == KnobType::boolean || k.type == KnobType::choice) return static_cast<int>(a);
  int best = 0;
  double distance = INFINITY;
  for (int i = 0; i < levels; ++i) {
    const double d = std::abs(k.position(apply_action(k, before, i, levels)) - k.position(after));
    if (d < distance) {
      distance = d;
      best = i;
    }
  }
  return best;
}

struct MetaControllerOptions {
  int levels = 9;               //!< grid points of absolute float and int knobs
  double lr = 1e-2;             //!< Adam on the controller's parameters
  double entropy_coef = 0.01;   //!< REINFORCE's entropy bonus
  double baseline_decay = 0.9;  //!< REINFORCE's baseline: this exponential average of rewards
  double max_grad_norm = 1.0;
  bool zero_gradient = false;   //!< ablation: compute every update but apply none
  std::uint64_t seed = 1;
};

//! What one REINFORCE or imitation step did.
struct ControllerUpdate {
  double loss = 0;
  double grad_norm = 0;
  double mean_reward = 0;
  double baseline = 0;  //!< before this update
  double entropy = 0;   //!< mean over decisions of the summed entropies of the knobs' choices
};

template <nn::Cell RNN>
class MetaController {
public:
  using Scalar = typename RNN::scalar_type;
  using CellParams = typename RNN::template params_type<ad::Matrix<Scalar>>;
  using HeadParams = nn::LinearParams<ad::Matrix<Scalar>>;

  //! Steers the knobs of `knobs` from the telemetry values named `telemetry`; the cell's input
  //! size must be telemetry.size() + knobs.size().
  MetaController(RNN cell, KnobSchema knobs, std::vector<std::string> telemetry, MetaControllerOptions options = {})
      : cell_(std::move(cell)),
        knobs_(std::move(knobs)),
        telemetry_(std::move(telemetry)),
        options_(options),
        normalizer_(telemetry_.size()),
        adam_({.lr = options.lr}),
        rng_(options.seed),
        workspace_(cell_.make_workspace(1)),
        output_(cell_.output_size(), 1) {
    SSMRL_REQUIRE(cell_.input_size() == static_cast<ad::Index>(telemetry_.size() + knobs_.size()),
                  "control::MetaController: the cell takes ", cell_.input_size(), " inputs, but ", telemetry_.size(),
                  " telemetry values and ", knobs_.size(), " knob positions make ", telemetry_.size() + knobs_.size());
    SSMRL_REQUIRE(knobs_.size() > 0 && options.levels >= 2 && options.lr > 0 && options.entropy_coef >= 0 &&
                      options.baseline_decay >= 0 && options.baseline_decay < 1,
                  "control::MetaController: knobs ", knobs_.size(), " and levels ", options.levels,
                  " must be positive (levels at least 2), lr ", options.lr, " positive, entropy_coef ",
                  options.entropy_coef, " not negative, baseline_decay ", options.baseline_decay, " in [0, 1)");
    nn::init::Rng rng(options.seed);
    cell_params_ = cell_.init_params(rng);
    for (const auto& k : knobs_.knobs()) {
      heads_.push_back(nn::init_linear<Scalar>(cell_.output_size(), action_count(k, options.levels), rng,
                                               nn::LinearInit::orthogonal, 0.01));
    }
    reset();
  }

  [[nodiscard]] const KnobSchema& knobs() const noexcept { return knobs_; }
  [[nodiscard]] const std::vector<std::string>& telemetry_names() const noexcept { return telemetry_; }
  [[nodiscard]] const MetaControllerOptions& options() const noexcept { return options_; }
  [[nodiscard]] const RNN& cell() const noexcept { return cell_; }
  [[nodiscard]] RunningNormalizer& normalizer() noexcept { return normalizer_; }
  [[nodiscard]] const RunningNormalizer& normalizer() const noexcept { return normalizer_; }

  //! Starts a new run: recurrent state zero, pending decisions dropped (the parameters, the
  //! normalisation and the baseline stay).
  void reset() {
    state_ = ad::Matrix<Scalar>::Zero(cell_.state_size(), 1);
    segment_start_ = state_;
    inputs_.clear();
    actions_.clear();
  }

  struct Decision {
    KnobChanges changes;       //!< the steered knobs' new values
    std::vector<int> actions;  //!< per knob, the action chosen
    double log_prob = 0;       //!< of the actions together
  };

  //! The input of one decision: the telemetry, normalised by the statistics so far (then counted
  //! in them), and where the steered knobs' current values lie in their ranges.
  [[nodiscard]] ad::Matrix<Scalar> input_of(const Telemetry& t, const KnobChanges& current, bool count = true) {
    std::vector<double> x;
    for (const auto& n : telemetry_) x.push_back(t[n]);
    if (count) normalizer_.update(x);
    auto z = normalizer_.normalize(x);
    ad::Matrix<Scalar> in(static_cast<ad::Index>(z.size() + knobs_.size()), 1);
    for (std::size_t i = 0; i < z.size(); ++i) in(static_cast<ad::Index>(i), 0) = static_cast<Scalar>(z[i]);
    for (std::size_t k = 0; k < knobs_.size(); ++k) {
      in(static_cast<ad::Index>(z.size() + k), 0) = static_cast<Scalar>(knobs_[k].position(current_value(current, k)));
    }
    return in;
  }

  //! Reads the telemetry and the steered knobs' values in effect (`current`, by name), advances the
  //! recurrent state, and chooses per knob (sampled, or the most probable with `greedy`). The
  //! decision is kept for the next reinforce().
  Decision decide(const Telemetry& t, const KnobChanges& current, bool greedy = false) {
    const auto in = input_of(t, current);
    ad::Matrix<Scalar>& out = output_;
    cell_.step(cell_params_, state_, in, out, workspace_);
    Decision d;
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    for (std::size_t k = 0; k < knobs_.size(); ++k) {
      const ad::Matrix<Scalar> logits = heads_[k].W * out + heads_[k].b;
      const Eigen::VectorXd l = logits.col(0).template cast<double>();
      const double lse = l.maxCoeff() + std::log((l.array() - l.maxCoeff()).exp().sum());
      int a = 0;
      if (greedy) {
        l.maxCoeff(&a);
      } else {
        double u = uniform(rng_);
        for (a = 0; a + 1 < l.size(); ++a) {
          u -= std::exp(l(a) - lse);
          if (u < 0) break;
        }
      }
      d.actions.push_back(a);
      d.log_prob += l(a) - lse;
      d.changes[knobs_[k].name] = apply_action(knobs_[k], current_value(current, k), a, options_.levels);
    }
    inputs_.push_back(in);
    actions_.push_back(d.actions);
    return d;
  }

  //! Decisions made since the last update.
  [[nodiscard]] std::size_t pending() const noexcept { return actions_.size(); }

  //! REINFORCE on the decisions since the last update, `rewards[i]` the reward of decision i (the
  //! improvement of the objective that followed it): minimises -mean((r - b) / s log pi(a)) - beta
  //! mean(H), b the running baseline and s the running spread of r - b, by one Adam step. The log-probabilities are
  //! recomputed on the tape from the same inputs and the state the decisions started from.
  ControllerUpdate reinforce(const std::vector<double>& rewards) {
    SSMRL_REQUIRE(rewards.size() == actions_.size() && !rewards.empty(), "control::MetaController::reinforce: ",
                  rewards.size(), " rewards for ", actions_.size(), " decisions");
    ControllerUpdate u;
    u.baseline = baseline_;
    double sum = 0;
    for (const double r : rewards) {
      SSMRL_REQUIRE(std::isfinite(r), "control::MetaController::reinforce: a reward is ", r);
      sum += r;
    }
    u.mean_reward = sum / static_cast<double>(rewards.size());
    // Advantages over the baseline, scaled by a running estimate of their spread, so that the step
    // size does not depend on the reward's units.
    const double b = baselined_ ? baseline_ : u.mean_reward;
    double squares = 0;
    for (const double r : rewards) squares += (r - b) * (r - b);
    squares /= static_cast<double>(rewards.size());
    const double decay = options_.baseline_decay;
    reward_variance_ = baselined_ ? decay * reward_variance_ + (1 - decay) * squares : squares;
    const double scale = 1.0 / std::sqrt(reward_variance_ + 1e-8);
    std::vector<double> weights;
    for (const double r : rewards) weights.push_back((r - b) * scale);
    step(weights, options_.entropy_coef, u);
    baseline_ = baselined_ ? decay * baseline_ + (1 - decay) * u.mean_reward : u.mean_reward;
    baselined_ = true;
    return u;
  }

  //! Offline pretraining: one step of weighted imitation, maximising sum_i w_i log pi(a_i | x_i) /
  //! sum w over decisions given as whole sequences (inputs from input_of(), one column each, and
  //! the actions to imitate), each from a zero state.
  ControllerUpdate imitate(const std::vector<std::vector<ad::Matrix<Scalar>>>& inputs,
                           const std::vector<std::vector<std::vector<int>>>& actions,
                           const std::vector<std::vector<double>>& weights) {
    SSMRL_REQUIRE(inputs.size() == actions.size() && inputs.size() == weights.size() && !inputs.empty(),
                  "control::MetaController::imitate: ", inputs.size(), " sequences of inputs, ", actions.size(),
                  " of actions, ", weights.size(), " of weights");
    ControllerUpdate u;
    scratch_.tape.clear();
    const auto cell_vars = nn::on_tape(scratch_.tape, cell_params_);
    std::vector<nn::LinearParams<ad::Var<Scalar>>> head_vars;
    for (const auto& h : heads_) head_vars.push_back(nn::on_tape(scratch_.tape, h));
    std::vector<ad::Var<Scalar>> terms;
    double total = 0;
    for (std::size_t s = 0; s < inputs.size(); ++s) {
      SSMRL_REQUIRE(
          inputs[s].size() == actions[s].size() && inputs[s].size() == weights[s].size() && !inputs[s].empty(),
          "control::MetaController::imitate: sequence ", s, " has ", inputs[s].size(), " inputs, ", actions[s].size(),
          " actions and ", weights[s].size(), " weights");
      for (const double w : weights[s]) total += w;
      terms.push_back(weighted_log_prob(cell_vars, head_vars, inputs[s], actions[s], weights[s], nullptr, 0.0));
    }
    SSMRL_REQUIRE(total > 0, "control::MetaController::imitate: the weights sum to ", total);
    ad::Var<Scalar> loss = terms[0];
    for (std::size_t i = 1; i < terms.size(); ++i) loss = ad::add(loss, terms[i]);
    loss = -loss * static_cast<Scalar>(1.0 / total);
    apply_gradient(loss, cell_vars, head_vars, u);
    return u;
  }

  //! The parameters as one list (cell's, then each head's W and b), for saving and comparing.
  [[nodiscard]] std::vector<ad::Matrix<Scalar>> parameters() const {
    auto list = nn::to_list<ad::Matrix<Scalar>>(cell_params_);
    for (const auto& h : heads_) {
      list.push_back(h.W);
      list.push_back(h.b);
    }
    return list;
  }
  //! Sets parameters() from a list of the same shapes, all finite; nothing changes otherwise.
  void set_parameters(const std::vector<ad::Matrix<Scalar>>& list) {
    const auto have = parameters();
    SSMRL_REQUIRE(list.size() == have.size(), "control::MetaController::set_parameters: ", list.size(),
                  " matrices for ", have.size());
    for (std::size_t i = 0; i < list.size(); ++i) {
      SSMRL_REQUIRE(list[i].rows() == have[i].rows() && list[i].cols() == have[i].cols() && list[i].allFinite(),
                    "control::MetaController::set_parameters: matrix ", i, " is ", list[i].rows(), "x",
                    list[i].cols(), list[i].allFinite() ? "" : " (not finite)", ", expected ", have[i].rows(), "x",
                    have[i].cols());
    }
    const std::size_t cell_count = nn::to_list<ad::Matrix<Scalar>>(cell_params_).size();
    cell_params_ = nn::from_list(
        cell_params_,
        std::vector<ad::Matrix<Scalar>>(list.begin(), list.begin() + static_cast<std::ptrdiff_t>(cell_count)));
    for (std::size_t k = 0; k < heads_.size(); ++k) {
      heads_[k].W = list[cell_count + 2 * k];
      heads_[k].b = list[cell_count + 2 * k + 1];
    }
  }
  //! The recurrent state carried across decisions (state_size x 1).
  [[nodiscard]] const ad::Matrix<Scalar>& state() const noexcept { return state_; }
  void set_state(const ad::Matrix<Scalar>& s) {
    SSMRL_REQUIRE(s.rows() == cell_.state_size() && s.cols() == 1 && s.allFinite(),
                  "control::MetaController::set_state: state is ", s.rows(), "x", s.cols(), ", expected ",
                  cell_.state_size(), "x1, finite");
    state_ = s;
    segment_start_ = s;
    inputs_.clear();
    actions_.clear();
  }
  //! What learning carries between REINFORCE steps: the state the pending decisions started from,
  //! their inputs and their actions (saved with the controller, so that a resumed run learns from
  //! the decisions made before the interruption as the uninterrupted run does).
  struct LearningState {
    ad::Matrix<Scalar> segment_start;
    std::vector<ad::Matrix<Scalar>> inputs;
    std::vector<std::vector<int>> actions;
  };
  [[nodiscard]] LearningState learning_state() const { return {segment_start_, inputs_, actions_}; }
  //! Restores learning_state(); shapes and actions are checked first, nothing changes otherwise.
  void set_learning_state(LearningState s) {
    const char* fn = "control::MetaController::set_learning_state";
    SSMRL_REQUIRE(s.segment_start.rows() == cell_.state_size() && s.segment_start.cols() == 1 &&
                      s.segment_start.allFinite() && s.inputs.size() == s.actions.size(),
                  fn, ": a segment start of ", s.segment_start.rows(), "x", s.segment_start.cols(), " (expected ",
                  cell_.state_size(), "x1, finite) and ", s.inputs.size(), " inputs for ", s.actions.size(), " actions");
    for (std::size_t i = 0; i < s.inputs.size(); ++i) {
      SSMRL_REQUIRE(s.inputs[i].rows() == cell_.input_size() && s.inputs[i].cols() == 1 && s.inputs[i].allFinite() &&
                        s.actions[i].size() == knobs_.size(),
                    fn, ": decision ", i, " has an input of ", s.inputs[i].rows(), "x", s.inputs[i].cols(), " and ",
                    s.actions[i].size(), " actions (expected ", cell_.input_size(), "x1, finite, and ", knobs_.size(),
                    ")");
      for (std::size_t k = 0; k < knobs_.size(); ++k) {
        const int a = s.actions[i][k];
        SSMRL_REQUIRE(a >= 0 && a < action_count(knobs_[k], options_.levels), fn, ": decision ", i, " takes action ",
                      a, " of knob '", knobs_[k].name, "', which has ", action_count(knobs_[k], options_.levels));
      }
    }
    segment_start_ = std::move(s.segment_start);
    inputs_ = std::move(s.inputs);
    actions_ = std::move(s.actions);
  }
  //! The optimiser of the controller's parameters (its moments are saved with the controller).
  [[nodiscard]] const optim::Adam<Scalar>& optimizer() const noexcept { return adam_; }
  [[nodiscard]] optim::Adam<Scalar>& optimizer() noexcept { return adam_; }
  //! REINFORCE's running baseline and spread (saved with the controller).
  //! The generator of sampled decisions, as text (std::mt19937_64's stream form), so that a
  //! resumed run samples as the uninterrupted one would.
  [[nodiscard]] std::string rng_text() const {
    std::ostringstream out;
    out << rng_;
    return out.str();
  }
  void set_rng_text(const std::string& text) {
    std::istringstream in(text);
    std::mt19937_64 rng;
    in >> rng;
    SSMRL_REQUIRE(!in.fail(), "control::MetaController::set_rng_text: not a generator state");
    rng_ = rng;
  }
  [[nodiscard]] double baseline() const noexcept { return baseline_; }
  [[nodiscard]] double reward_variance() const noexcept { return reward_variance_; }
  [[nodiscard]] bool has_baseline() const noexcept { return baselined_; }
  void set_baseline(double b, double variance, bool set) {
    SSMRL_REQUIRE(std::isfinite(b) && std::isfinite(variance) && variance >= 0,
                  "control::MetaController::set_baseline: baseline ", b, ", variance ", variance);
    baseline_ = b;
    reward_variance_ = variance;
    baselined_ = set;
  }

private:
  [[nodiscard]] KnobValue current_value(const KnobChanges& current, std::size_t k) const {
    const auto it = current.find(knobs_[k].name);
    SSMRL_REQUIRE(it != current.end(), "control::MetaController: no current value of knob '", knobs_[k].name, "'");
    if (const auto p = knobs_[k].problem(it->second)) {
      SSMRL_THROW(::ssmrl::InvalidArgument, ::ssmrl::detail::message("control::MetaController: ", *p));
    }
    return it->second;
  }

  // sum_t w_t sum_k log pi_k(a_tk) over one sequence from `start` (zero when null); adds the
  // summed entropies' mean to `entropy`.
  ad::Var<Scalar> weighted_log_prob(const typename RNN::template params_type<ad::Var<Scalar>>& cell_vars,
                                    const std::vector<nn::LinearParams<ad::Var<Scalar>>>& head_vars,
                                    const std::vector<ad::Matrix<Scalar>>& inputs,
                                    const std::vector<std::vector<int>>& actions, const std::vector<double>& weights,
                                    ad::Var<Scalar>* entropy, double entropy_scale) {
    const auto steps = static_cast<ad::Index>(inputs.size());
    ad::Matrix<Scalar> x(cell_.input_size(), steps);
    ad::Matrix<Scalar> w(1, steps);
    for (ad::Index t = 0; t < steps; ++t) {
      x.col(t) = inputs[static_cast<std::size_t>(t)];
      w(0, t) = static_cast<Scalar>(weights[static_cast<std::size_t>(t)]);
    }
    nn::SequenceOptions<Scalar> seq;
    if (entropy != nullptr) seq.initial_state = scratch_.tape.constant(segment_start_);
    const auto out = cell_.forward_sequence(cell_vars, scratch_.tape.constant(x), 1, seq);
    ad::Var<Scalar> total;
    for (std::size_t k = 0; k < head_vars.size(); ++k) {
      const auto logits = nn::linear(head_vars[k], out);
      int* index = scratch_.tape.template allocate_array<int>(static_cast<std::size_t>(steps));
      for (ad::Index t = 0; t < steps; ++t) index[t] = actions[static_cast<std::size_t>(t)][k];
      const auto lp = ad::pick(ad::log_softmax(logits), std::span<const int>(index, static_cast<std::size_t>(steps)));
      const auto term = ad::sum(ad::mul(lp, scratch_.tape.constant(w)));
      total = k == 0 ? term : ad::add(total, term);
      if (entropy != nullptr) {
        const auto h = ad::mean(ad::categorical_entropy(logits)) * static_cast<Scalar>(entropy_scale);
        *entropy = entropy->valid() ? ad::add(*entropy, h) : h;
      }
    }
    return total;
  }

  void step(const std::vector<double>& weights, double entropy_coef, ControllerUpdate& u) {
    scratch_.tape.clear();
    const auto cell_vars = nn::on_tape(scratch_.tape, cell_params_);
    std::vector<nn::LinearParams<ad::Var<Scalar>>> head_vars;
    for (const auto& h : heads_) head_vars.push_back(nn::on_tape(scratch_.tape, h));
    ad::Var<Scalar> entropy;
    const auto objective = weighted_log_prob(cell_vars, head_vars, inputs_, actions_, weights, &entropy, 1.0);
    u.entropy = static_cast<double>(entropy.item());
    const auto n = static_cast<Scalar>(1.0 / static_cast<double>(weights.size()));
    const auto loss = ad::sub(-objective * n, entropy * static_cast<Scalar>(entropy_coef));
    apply_gradient(loss, cell_vars, head_vars, u);
    segment_start_ = state_;
    inputs_.clear();
    actions_.clear();
  }

  void apply_gradient(const ad::Var<Scalar>& loss, const typename RNN::template params_type<ad::Var<Scalar>>& cell_vars,
                      const std::vector<nn::LinearParams<ad::Var<Scalar>>>& head_vars, ControllerUpdate& u) {
    u.loss = static_cast<double>(loss.item());
    scratch_.tape.backward(loss);
    auto grads = nn::to_list<ad::Matrix<Scalar>>(nn::gradients_of<Scalar>(cell_vars));
    for (const auto& h : head_vars) {
      grads.push_back(h.W.grad());
      grads.push_back(h.b.grad());
    }
    u.grad_norm = optim::clip_grad_norm(std::span<ad::Matrix<Scalar>>(grads), options_.max_grad_norm);
    if (options_.zero_gradient || !std::isfinite(u.grad_norm)) return;
    auto values = parameters();
    adam_.step(std::span<ad::Matrix<Scalar>>(values), std::span<const ad::Matrix<Scalar>>(grads));
    set_parameters(values);
  }

  RNN cell_;
  KnobSchema knobs_;
  std::vector<std::string> telemetry_;
  MetaControllerOptions options_;
  RunningNormalizer normalizer_;
  optim::Adam<Scalar> adam_;
  std::mt19937_64 rng_;
  CellParams cell_params_;
  std::vector<HeadParams> heads_;
  typename RNN::workspace_type workspace_;  //!< of decide(): sized once, not per decision
  ad::Matrix<Scalar> output_;
  // A copy of the controller (an evaluation that must not learn) starts its own tape.
  struct Scratch {
    ad::Tape<Scalar> tape;
    Scratch() = default;
    Scratch(const Scratch&) {}
    Scratch& operator=(const Scratch&) { return *this; }
  };
  Scratch scratch_;
  ad::Matrix<Scalar> state_;
  ad::Matrix<Scalar> segment_start_;
  std::vector<ad::Matrix<Scalar>> inputs_;
  std::vector<std::vector<int>> actions_;
  double baseline_ = 0;
  double reward_variance_ = 1;
  bool baselined_ = false;
};

}  // namespace ssmrl::control
