// RLMetaOptimizer: a small MLP policy that chooses, at every update, a move of the learning rate and
// the weight decay from a discrete grid, trained by REINFORCE on the improvement that follows each
// decision. It learns online within a run, can be pretrained over many runs (reset() between them
// keeps what it learnt) and deployed frozen or still learning.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "ssmrl/autodiff.hpp"
#include "ssmrl/control/telemetry.hpp"
#include "ssmrl/core/error.hpp"
#include "ssmrl/metaopt/plateau.hpp"
#include "ssmrl/nn/linear.hpp"
#include "ssmrl/nn/parameters.hpp"
#include "ssmrl/optim/adam.hpp"
#include "ssmrl/optim/clip.hpp"

namespace ssmrl::metaopt {

namespace detail {
// SplitMix64 of (seed, k): the uniform draws of decision k, so that a restored state continues the
// same sequence without a generator's state.
constexpr std::uint64_t mix(std::uint64_t seed, std::uint64_t k) noexcept {
  std::uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (k + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
}  // namespace detail

//! How a weight-decay action moves w.
enum class WeightDecayMove {
  additive,        //!< w + delta (the prototype's steps of 1e-5)
  multiplicative,  //!< w factor; raised from below the floor to the floor, cut below it to 0
};

struct RLMetaOptions {
  std::vector<double> lr_factors{0.5, 1.0, 2.0};
  WeightDecayMove weight_decay_move = WeightDecayMove::additive;
  std::vector<double> weight_decay_deltas{-1e-5, 0.0, 1e-5};  //!< additive moves
  std::vector<double> weight_decay_factors{0.5, 1.0, 2.0};    //!< multiplicative moves
  double weight_decay_floor = 1e-6;                           //!< multiplicative moves' smallest non-zero w
  Bounds bounds = {};          //!< of the values set (max_weight_decay 0: no weight-decay moves, no w feature)
  std::vector<ad::Index> hidden{32};  //!< tanh layers of the policy
  long window = 10;            //!< updates in the trend window
  long every = 1;              //!< optimiser steps between two decisions
  long total_steps = 0;        //!< the run's optimiser steps; positive: a progress feature
  long batch = 16;             //!< decisions per REINFORCE step
  double learning_rate = 3e-3;  //!< Adam on the policy
  double entropy_coef = 1e-2;
  double baseline_decay = 0.9;  //!< moving baseline b <- decay b + (1 - decay) r
  double max_grad_norm = 1.0;
  bool learning = true;         //!< false: frozen (decides, never trains)
  bool explore = true;          //!< sample the action (false: the most probable)
  bool policy_gradient = true;  //!< false: only the entropy term trains (a control for tests)
  std::uint64_t seed = 0;
};

//! What one REINFORCE step did.
struct RLMetaUpdate {
  long decisions = 0;  //!< decisions learnt from
  double loss = 0;
  double entropy = 0;
  double grad_norm = 0;
};

//! Features (inputs of the policy), in this order, each present only where the task has it:
//! - lr: 2 (log lr - log min_lr) / (log max_lr - log min_lr) - 1, in [-1, 1] over the bounds;
//! - weight decay (when max_weight_decay > 0): log10(w + 1e-8) mapped from [-8, log10(max + 1e-8)]
//!   to [-1, 1];
//! - loss level: s(L) = sign(L) log10(1 + |L| / 1e-4) / 4 (0.26 at 1e-3, 0.5 at 1e-2, 1 at 1, 1.6 at
//!   200: it keeps varying where a tanh or a clip would saturate);
//! - trends over the window (loss, lr, and gradient norm and cost where present): the least-squares
//!   slope of the feature over the window, divided by the run's mean absolute change of that feature
//!   per update, clipped to [-5, 5] (a signal-to-noise ratio, scale-free);
//! - gradient norm: log10(G + 1e-12) / 4, and cost s(C), when the first update's metrics have
//!   "grad_norm" / "cost" (absent otherwise, not 0; then fixed for the policy's life);
//! - progress (when total_steps > 0): 2 step / total_steps - 1, clipped to [-1, 1].
//! Actions: the grid lr factor x weight-decay move (row-major: the lr factor varies slowest).
//! Reward of decision t: L_t - L_{t+1}, the loss at the update that made it minus the loss at the
//! next one (after `every` steps under it), credited to decision t alone. Every `batch` decisions,
//! REINFORCE: A = r - b (b the moving baseline before r), normalised over the batch; loss =
//! -mean(A log pi(a|x)) - entropy_coef mean(H(pi(.|x))); gradients clipped to max_grad_norm; Adam.
//!
//! A class template only so that its member functions, and the tape operations they use, are
//! instantiated where they are used, not in every file that includes the library
//! (docs/reference/compile-time.md); use RLMetaOptimizer, its one instance.
template <class Unused = void>
class BasicRLMetaOptimizer {
public:
  explicit BasicRLMetaOptimizer(RLMetaOptions o = {}) : o_(std::move(o)) {
    const auto& b = o_.bounds;
    bool factors_ok = !o_.lr_factors.empty() && !o_.weight_decay_deltas.empty() && !o_.weight_decay_factors.empty();
    for (const double f : o_.lr_factors) factors_ok = factors_ok && std::isfinite(f) && f > 0;
    for (const double d : o_.weight_decay_deltas) factors_ok = factors_ok && std::isfinite(d);
    for (const double f : o_.weight_decay_factors) factors_ok = factors_ok && std::isfinite(f) && f >= 0;
    bool hidden_ok = true;
    for (const auto h : o_.hidden) hidden_ok = hidden_ok && h > 0;
    SSMRL_REQUIRE(factors_ok && hidden_ok && b.min_lr > 0 && b.max_lr >= b.min_lr && b.max_weight_decay >= 0 &&
                      o_.weight_decay_floor > 0 && o_.window >= 2 && o_.every >= 1 && o_.total_steps >= 0 &&
                      o_.batch >= 1 && o_.learning_rate > 0 && o_.entropy_coef >= 0 && o_.baseline_decay >= 0 &&
                      o_.baseline_decay < 1 && o_.max_grad_norm > 0,
                  "metaopt::RLMetaOptimizer: options out of range (lr factors positive, weight-decay moves finite and "
                  "factors not negative, hidden widths positive, bounds lr [", b.min_lr, ", ", b.max_lr,
                  "] positive and ordered, max weight decay ", b.max_weight_decay, " not negative, floor ",
                  o_.weight_decay_floor, " positive, window ", o_.window, " at least 2, every ", o_.every,
                  " and batch ", o_.batch, " at least 1, total_steps ", o_.total_steps, " not negative, learning_rate ",
                  o_.learning_rate, " and max_grad_norm ", o_.max_grad_norm, " positive, entropy_coef ",
                  o_.entropy_coef, " not negative, baseline_decay ", o_.baseline_decay, " in [0, 1))");
    adam_ = optim::Adam<double>({.lr = o_.learning_rate});
  }

  //! Decides after `step` optimiser steps from metrics ("loss", "lr", "weight_decay"; "grad_norm"
  //! and "cost" where the task has them). A non-finite loss drops the decision awaiting its reward
  //! and changes nothing.
  Changes update(const control::Telemetry& metrics, long step) {
    const char* fn = "metaopt::RLMetaOptimizer::update";
    const double loss = metrics["loss"];
    const double lr = metrics["lr"];
    const double w = metrics.has("weight_decay") ? metrics["weight_decay"] : 0.0;
    SSMRL_REQUIRE(std::isfinite(lr) && lr > 0 && std::isfinite(w) && w >= 0, fn, ": lr ", lr, " must be positive and ",
                  "weight_decay ", w, " not negative");
    if (!initialized_) initialize(metrics.has("grad_norm"), metrics.has("cost"));
    for (const auto& [name, present] : {std::pair{"grad_norm", has_grad_}, std::pair{"cost", has_cost_}}) {
      SSMRL_REQUIRE(!present || metrics.has(name), fn, ": metric ", name,
                    " was present when the policy was built and is missing at step ", step);
    }
    if (!std::isfinite(loss)) {
      pending_ = false;
      return {};
    }
    if (pending_) record(pending_input_, pending_action_, pending_loss_ - loss);
    observe_run(loss, lr, w, metrics);
    auto x = features(lr, w, step);
    if (o_.learning) normalizer_.update(x);
    x = normalizer_.normalize(x);
    const auto probs = policy_probabilities(x);
    const int a = choose(probs);
    ++decisions_;
    pending_ = true;
    pending_input_ = x;
    pending_action_ = a;
    pending_loss_ = loss;
    return apply(a, lr, w);
  }

  [[nodiscard]] long every() const noexcept { return o_.every; }

  //! Forgets the run (windows, statistics, the decision awaiting its reward); keeps the policy, its
  //! optimiser, the baseline and the decisions not yet learnt from.
  void reset() {
    pending_ = false;
    const auto windows = run_.windows.size();
    run_.windows.assign(windows, {});
    run_.change_sum.assign(windows, 0.0);
    run_.change_count.assign(windows, 0);
  }

  // ---- Introspection, for tests and reports ----
  [[nodiscard]] std::size_t action_count() const noexcept { return lr_moves() * wd_moves(); }
  [[nodiscard]] std::size_t input_size() const noexcept { return input_size_; }
  [[nodiscard]] bool initialized() const noexcept { return initialized_; }
  //! The action of the last decision (-1 before the first).
  [[nodiscard]] int last_action() const noexcept { return pending_ ? pending_action_ : -1; }
  [[nodiscard]] long decisions() const noexcept { return decisions_; }
  [[nodiscard]] long reinforce_steps() const noexcept { return reinforce_steps_; }
  [[nodiscard]] const RLMetaUpdate& last_reinforce() const noexcept { return last_update_; }
  //! (normalised input, action, reward) of each decision rewarded but not yet learnt from.
  struct Sample {
    std::vector<double> input;
    int action = 0;
    double reward = 0;
  };
  [[nodiscard]] const std::vector<Sample>& unlearnt() const noexcept { return batch_; }
  //! The policy's action probabilities for features() (normalised as update() normalises them).
  [[nodiscard]] std::vector<double> probabilities(const std::vector<double>& x) const {
    SSMRL_REQUIRE(initialized_ && x.size() == input_size_, "metaopt::RLMetaOptimizer::probabilities: ", x.size(),
                  " features, the policy takes ", input_size_, initialized_ ? "" : " (not built yet)");
    return policy_probabilities(normalizer_.normalize(x));
  }
  //! The features of the current run for these values (as update() would build them after
  //! observing them); the policy must be built.
  [[nodiscard]] std::vector<double> features(double lr, double w, long step) const {
    SSMRL_REQUIRE(initialized_, "metaopt::RLMetaOptimizer::features: the policy is built at the first update");
    const auto& b = o_.bounds;
    std::vector<double> x;
    x.reserve(input_size_);
    const double span = std::log(b.max_lr) - std::log(b.min_lr);
    x.push_back(span > 0 ? 2 * (std::log(std::clamp(lr, b.min_lr, b.max_lr)) - std::log(b.min_lr)) / span - 1 : 0.0);
    if (has_wd()) {
      const double top = std::log10(b.max_weight_decay + 1e-8);
      x.push_back(2 * (std::log10(std::min(w, b.max_weight_decay) + 1e-8) + 8) / (top + 8) - 1);
    }
    for (std::size_t k = 0; k < run_.windows.size(); ++k) {
      const auto& values = run_.windows[k];
      if (k != lr_window) x.push_back(values.empty() ? 0.0 : values.back());
      x.push_back(trend(k));
    }
    if (o_.total_steps > 0) {
      x.push_back(std::clamp(2 * static_cast<double>(step) / static_cast<double>(o_.total_steps) - 1, -1.0, 1.0));
    }
    return x;
  }
  //! sign(v) log10(1 + |v| / 1e-4) / 4, the level transform of losses and costs.
  [[nodiscard]] static double symlog(double v) { return std::copysign(std::log10(1 + std::abs(v) / 1e-4) / 4, v); }

  void set_learning(bool learning) noexcept { o_.learning = learning; }
  void set_explore(bool explore) noexcept { o_.explore = explore; }
  [[nodiscard]] const RLMetaOptions& options() const noexcept { return o_; }

  // ---- State: policy, Adam, baseline, counts, and the run (exact --resume) ----
  [[nodiscard]] std::vector<double> state() const {
    std::vector<double> s{state_tag, static_cast<double>(action_count()), initialized_ ? 1.0 : 0.0};
    if (initialized_) {
      s.insert(s.end(), {has_grad_ ? 1.0 : 0.0, has_cost_ ? 1.0 : 0.0});
      const auto values = nn::to_list<ad::Matrix<double>>(policy_);
      for (const auto& m : values) put(s, m);
      const auto statistics = normalizer_.state();
      s.insert(s.end(), statistics.begin(), statistics.end());
      s.push_back(static_cast<double>(adam_.steps()));
      if (adam_.steps() > 0) {
        for (const auto& m : adam_.state().first_moment) put(s, m);
        for (const auto& m : adam_.state().second_moment) put(s, m);
      }
    }
    s.insert(s.end(), {static_cast<double>(decisions_), static_cast<double>(reinforce_steps_), baseline_,
                       baselined_ ? 1.0 : 0.0, pending_ ? 1.0 : 0.0});
    if (pending_) {
      s.insert(s.end(), {static_cast<double>(pending_action_), pending_loss_});
      s.insert(s.end(), pending_input_.begin(), pending_input_.end());
    }
    s.push_back(static_cast<double>(batch_.size()));
    for (const auto& b : batch_) {
      s.insert(s.end(), {static_cast<double>(b.action), b.reward});
      s.insert(s.end(), b.input.begin(), b.input.end());
    }
    s.push_back(static_cast<double>(run_.windows.size()));
    for (std::size_t k = 0; k < run_.windows.size(); ++k) {
      s.insert(s.end(), {static_cast<double>(run_.windows[k].size()), run_.change_sum[k],
                         static_cast<double>(run_.change_count[k])});
      s.insert(s.end(), run_.windows[k].begin(), run_.windows[k].end());
    }
    return s;
  }

  //! Restores state(), checked whole first (the grid and the policy's shape must match these
  //! options); on error nothing changes.
  void set_state(const std::vector<double>& s) {
    BasicRLMetaOptimizer next(o_);
    Reader r{s, 0};
    SSMRL_REQUIRE(r.take() == state_tag, fn_state, ": not a state of this class (tag)");
    const double actions = r.take();
    SSMRL_REQUIRE(actions == static_cast<double>(action_count()), fn_state, ": ", actions,
                  " actions, these options have ", action_count());
    if (r.flag()) {
      const bool grad = r.flag();
      const bool cost = r.flag();
      next.initialize(grad, cost);
      auto values = nn::to_list<ad::Matrix<double>>(next.policy_);
      for (auto& m : values) r.matrix(m);
      next.policy_ = nn::from_list<ad::Matrix<double>>(next.policy_, values);
      next.normalizer_.set_state(r.vector(3 * next.input_size_));
      const long steps = r.count();
      optim::Adam<double>::State adam;
      if (steps > 0) {
        adam.first_moment = values;
        adam.second_moment = values;
        for (auto& m : adam.first_moment) r.matrix(m);
        for (auto& m : adam.second_moment) r.matrix(m);
      }
      next.adam_.set_state(std::move(adam), steps);
    }
    next.decisions_ = r.count();
    next.reinforce_steps_ = r.count();
    next.baseline_ = r.take();
    next.baselined_ = r.flag();
    next.pending_ = r.flag();
    SSMRL_REQUIRE(!next.pending_ || next.initialized_, fn_state, ": a pending decision without a policy");
    if (next.pending_) {
      next.pending_action_ = r.action(next.action_count());
      next.pending_loss_ = r.take();
      next.pending_input_ = r.vector(next.input_size_);
    }
    const long batch = r.count();
    SSMRL_REQUIRE(batch < o_.batch && (batch == 0 || next.initialized_), fn_state, ": ", batch,
                  " decisions awaiting a REINFORCE step of ", o_.batch);
    for (long i = 0; i < batch; ++i) {
      Sample b;
      b.action = r.action(next.action_count());
      b.reward = r.take();
      b.input = r.vector(next.input_size_);
      next.batch_.push_back(std::move(b));
    }
    const long windows = r.count();
    SSMRL_REQUIRE(static_cast<std::size_t>(windows) == next.run_.windows.size(), fn_state, ": ", windows,
                  " trend windows, the policy has ", next.run_.windows.size());
    for (auto k = 0UL; k < next.run_.windows.size(); ++k) {
      const long n = r.count();
      SSMRL_REQUIRE(n <= o_.window, fn_state, ": a window of ", n, " values, at most ", o_.window);
      next.run_.change_sum[k] = r.take();
      next.run_.change_count[k] = r.count();
      const auto v = r.vector(static_cast<std::size_t>(n));
      next.run_.windows[k].assign(v.begin(), v.end());
    }
    SSMRL_REQUIRE(r.at == s.size(), fn_state, ": ", s.size() - r.at, " values left over");
    *this = std::move(next);
  }

private:
  static constexpr double state_tag = 7301.0;
  static constexpr const char* fn_state = "metaopt::RLMetaOptimizer::set_state";
  static constexpr std::size_t lr_window = 1;  // windows: loss, lr, then gradient norm and cost where present

  struct Run {
    std::vector<std::deque<double>> windows;
    std::vector<double> change_sum;  // sum of |feature change| per update
    std::vector<long> change_count;
  };

  struct Reader {
    const std::vector<double>& s;
    std::size_t at;
    double take() {
      SSMRL_REQUIRE(at < s.size(), fn_state, ": the state ends early (", s.size(), " values)");
      const double v = s[at++];
      SSMRL_REQUIRE(std::isfinite(v), fn_state, ": value ", at - 1, " is not finite");
      return v;
    }
    bool flag() {
      const double v = take();
      SSMRL_REQUIRE(v == 0 || v == 1, fn_state, ": value ", at - 1, " is ", v, ", a flag (0 or 1)");
      return v == 1;
    }
    long count() {
      const double v = take();
      SSMRL_REQUIRE(v >= 0 && v == std::floor(v) && v < 9e15, fn_state, ": value ", at - 1, " is ", v, ", a count");
      return static_cast<long>(v);
    }
    int action(std::size_t n) {
      const long a = count();
      SSMRL_REQUIRE(static_cast<std::size_t>(a) < n, fn_state, ": action ", a, " of ", n);
      return static_cast<int>(a);
    }
    std::vector<double> vector(std::size_t n) {
      std::vector<double> v(n);
      for (double& x : v) x = take();
      return v;
    }
    void matrix(ad::Matrix<double>& m) {
      const double rows = take();
      const double cols = take();
      SSMRL_REQUIRE(rows == static_cast<double>(m.rows()) && cols == static_cast<double>(m.cols()), fn_state,
                    ": a ", rows, "x", cols, " matrix where the policy has ", m.rows(), "x", m.cols());
      for (ad::Index i = 0; i < m.size(); ++i) m.data()[i] = take();
    }
  };

  static void put(std::vector<double>& s, const ad::Matrix<double>& m) {
    s.insert(s.end(), {static_cast<double>(m.rows()), static_cast<double>(m.cols())});
    s.insert(s.end(), m.data(), m.data() + m.size());
  }

  [[nodiscard]] bool has_wd() const noexcept { return o_.bounds.max_weight_decay > 0; }
  [[nodiscard]] std::size_t lr_moves() const noexcept { return o_.lr_factors.size(); }
  [[nodiscard]] std::size_t wd_moves() const noexcept {
    if (!has_wd()) return 1;
    return o_.weight_decay_move == WeightDecayMove::additive ? o_.weight_decay_deltas.size()
                                                             : o_.weight_decay_factors.size();
  }

  [[nodiscard]] std::vector<double> policy_probabilities(const std::vector<double>& x) const {
    ad::Matrix<double> h = Eigen::Map<const ad::Matrix<double>>(x.data(), static_cast<ad::Index>(x.size()), 1);
    for (std::size_t i = 0; i < policy_.layers.size(); ++i) {
      ad::Matrix<double> y = policy_.layers[i].W * h + policy_.layers[i].b;
      if (i + 1 < policy_.layers.size()) y = y.array().tanh().matrix();
      h = std::move(y);
    }
    const double top = h.maxCoeff();
    std::vector<double> p(static_cast<std::size_t>(h.rows()));
    double total = 0;
    for (ad::Index i = 0; i < h.rows(); ++i) total += p[static_cast<std::size_t>(i)] = std::exp(h(i, 0) - top);
    for (double& v : p) v /= total;
    return p;
  }

  void initialize(bool grad, bool cost) {
    has_grad_ = grad;
    has_cost_ = cost;
    const std::size_t windows = 2 + (grad ? 1 : 0) + (cost ? 1 : 0);
    run_.windows.assign(windows, {});
    run_.change_sum.assign(windows, 0.0);
    run_.change_count.assign(windows, 0);
    input_size_ = 1 + (has_wd() ? 1 : 0) + 2 * windows - 1 + (o_.total_steps > 0 ? 1 : 0);
    std::vector<ad::Index> sizes{static_cast<ad::Index>(input_size_)};
    sizes.insert(sizes.end(), o_.hidden.begin(), o_.hidden.end());
    sizes.push_back(static_cast<ad::Index>(action_count()));
    nn::init::Rng rng(detail::mix(o_.seed, 0x6d65'7461'6f70ULL));
    policy_ = nn::init_mlp<double>(sizes, rng);
    policy_.layers.back().W *= 0.01;  // a near-uniform first policy
    normalizer_ = control::RunningNormalizer(input_size_);
    initialized_ = true;
  }

  void observe_run(double loss, double lr, double w, const control::Telemetry& metrics) {
    (void)w;
    const auto& b = o_.bounds;
    const double span = std::log(b.max_lr) - std::log(b.min_lr);
    std::vector<double> v{symlog(loss), span > 0 ? 2 * std::log(std::clamp(lr, b.min_lr, b.max_lr)) / span : 0.0};
    if (has_grad_) v.push_back(std::log10(std::max(metrics["grad_norm"], 0.0) + 1e-12) / 4);
    if (has_cost_) v.push_back(symlog(metrics["cost"]));
    for (std::size_t k = 0; k < v.size(); ++k) {
      auto& window = run_.windows[k];
      if (!std::isfinite(v[k])) v[k] = window.empty() ? 0.0 : window.back();
      if (!window.empty()) {
        run_.change_sum[k] += std::abs(v[k] - window.back());
        ++run_.change_count[k];
      }
      window.push_back(v[k]);
      if (static_cast<long>(window.size()) > o_.window) window.pop_front();
    }
  }

  [[nodiscard]] double trend(std::size_t k) const {
    const auto& values = run_.windows[k];
    if (values.size() < 2 || run_.change_count[k] == 0) return 0.0;
    const double scale = run_.change_sum[k] / static_cast<double>(run_.change_count[k]);
    if (!(scale > 0)) return 0.0;
    return std::clamp(detail::slope(values) / scale, -5.0, 5.0);
  }

  [[nodiscard]] int choose(const std::vector<double>& p) const {
    if (!o_.explore) return static_cast<int>(std::max_element(p.begin(), p.end()) - p.begin());
    const double u =
        static_cast<double>(detail::mix(o_.seed, static_cast<std::uint64_t>(decisions_)) >> 11) * 0x1.0p-53;
    double c = 0;
    for (std::size_t i = 0; i + 1 < p.size(); ++i) {
      c += p[i];
      if (u < c) return static_cast<int>(i);
    }
    return static_cast<int>(p.size() - 1);
  }

  [[nodiscard]] Changes apply(int a, double lr, double w) const {
    const auto& b = o_.bounds;
    Changes c;
    const auto i_lr = static_cast<std::size_t>(a) / wd_moves();
    const auto i_wd = static_cast<std::size_t>(a) % wd_moves();
    c.lr = std::clamp(lr * o_.lr_factors[i_lr], b.min_lr, b.max_lr);
    if (has_wd()) {
      double next = w;
      if (o_.weight_decay_move == WeightDecayMove::additive) {
        next = w + o_.weight_decay_deltas[i_wd];
      } else {
        const double f = o_.weight_decay_factors[i_wd];
        next = w * f;
        if (f > 1 && next < o_.weight_decay_floor) next = o_.weight_decay_floor;
        if (f < 1 && next < o_.weight_decay_floor) next = 0;
      }
      c.weight_decay = std::clamp(next, 0.0, b.max_weight_decay);
    }
    return c;
  }

  void record(std::vector<double> input, int action, double reward) {
    batch_.push_back({std::move(input), action, reward});
    if (static_cast<long>(batch_.size()) < o_.batch) return;
    if (o_.learning) reinforce();
    batch_.clear();
  }

  void reinforce() {
    const auto n = static_cast<ad::Index>(batch_.size());
    std::vector<double> adv(batch_.size());
    for (std::size_t i = 0; i < batch_.size(); ++i) {
      const double r = batch_[i].reward;
      if (!baselined_) {
        baseline_ = r;
        baselined_ = true;
      }
      adv[i] = r - baseline_;
      baseline_ = o_.baseline_decay * baseline_ + (1 - o_.baseline_decay) * r;
    }
    if (n > 1) {
      double mean = 0;
      for (const double a : adv) mean += a / static_cast<double>(n);
      double var = 0;
      for (const double a : adv) var += (a - mean) * (a - mean) / static_cast<double>(n);
      const double sd = std::sqrt(var);
      for (double& a : adv) a = sd > 1e-12 ? (a - mean) / (sd + 1e-8) : 0.0;
    }
    tape_.tape.clear();
    ad::Matrix<double> x(static_cast<ad::Index>(input_size_), n);
    ad::Matrix<double> weights(1, n);
    int* index = tape_.tape.template allocate_array<int>(batch_.size());
    for (ad::Index j = 0; j < n; ++j) {
      const auto& b = batch_[static_cast<std::size_t>(j)];
      x.col(j) = Eigen::Map<const ad::Matrix<double>>(b.input.data(), static_cast<ad::Index>(b.input.size()), 1);
      weights(0, j) = o_.policy_gradient ? adv[static_cast<std::size_t>(j)] : 0.0;
      index[j] = b.action;
    }
    const auto vars = nn::on_tape(tape_.tape, policy_);
    const auto logits = nn::mlp(vars, tape_.tape.constant(x), nn::Activation::tanh);
    const auto log_p = ad::pick(ad::log_softmax(logits), std::span<const int>(index, batch_.size()));
    const auto inv_n = 1.0 / static_cast<double>(n);
    const auto objective = ad::sum(ad::mul(log_p, tape_.tape.constant(weights))) * inv_n;
    const auto entropy = ad::mean(ad::categorical_entropy(logits));
    const auto loss = ad::sub(-objective, entropy * o_.entropy_coef);
    tape_.tape.backward(loss);
    auto grads = nn::to_list<ad::Matrix<double>>(nn::gradients_of<double>(vars));
    last_update_ = {.decisions = n, .loss = loss.item(), .entropy = entropy.item(), .grad_norm = 0};
    last_update_.grad_norm = optim::clip_grad_norm(std::span<ad::Matrix<double>>(grads), o_.max_grad_norm);
    ++reinforce_steps_;
    if (!std::isfinite(last_update_.grad_norm)) return;
    auto values = nn::to_list<ad::Matrix<double>>(policy_);
    adam_.step(std::span<ad::Matrix<double>>(values), std::span<const ad::Matrix<double>>(grads));
    policy_ = nn::from_list<ad::Matrix<double>>(policy_, values);
  }

  // A copy starts its own tape.
  struct Scratch {
    ad::Tape<double> tape;
    Scratch() = default;
    Scratch(const Scratch&) {}
    Scratch& operator=(const Scratch&) { return *this; }
    Scratch(Scratch&&) noexcept {}
    Scratch& operator=(Scratch&&) noexcept { return *this; }
  };

  RLMetaOptions o_;
  bool initialized_ = false;
  bool has_grad_ = false;
  bool has_cost_ = false;
  std::size_t input_size_ = 0;
  nn::MlpParams<ad::Matrix<double>> policy_;
  control::RunningNormalizer normalizer_;  //!< of the features over the policy's life; frozen when not learning
  optim::Adam<double> adam_;
  Scratch tape_;
  long decisions_ = 0;
  long reinforce_steps_ = 0;
  double baseline_ = 0;
  bool baselined_ = false;
  bool pending_ = false;
  std::vector<double> pending_input_;
  int pending_action_ = 0;
  double pending_loss_ = 0;
  std::vector<Sample> batch_;
  Run run_;
  RLMetaUpdate last_update_;
};

using RLMetaOptimizer = BasicRLMetaOptimizer<>;
static_assert(MetaOptimizer<RLMetaOptimizer>);

}  // namespace ssmrl::metaopt
