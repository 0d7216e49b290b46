// Meta-optimizers: rules that read an optimiser's metrics every few steps and set its learning
// rate and weight decay. The MetaOptimizer concept, OptimizerWrapper (applies the changes to every
// group of an optimiser, within bounds, and publishes lr and weight_decay as knobs), and two rule
// sets: PlateauMetaOptimizer and AdvancedPlateauMetaOptimizer.
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "ssmrl/control/knobs.hpp"
#include "ssmrl/control/telemetry.hpp"
#include "ssmrl/core/error.hpp"

namespace ssmrl::metaopt {

//! New values of the learning rate and the weight decay (absent: unchanged), for every group.
struct Changes {
  std::optional<double> lr;
  std::optional<double> weight_decay;
  bool operator==(const Changes&) const = default;
};

//! What OptimizerWrapper needs of a meta-optimizer: `update(metrics, step)` reads named metrics
//! ("loss", lower is better; "lr" and "weight_decay" in effect, added by the wrapper; where the task
//! has them "grad_norm", "weight_norm", "cost") after `step` optimiser steps and returns changes;
//! `every()` optimiser steps between two updates; `reset()` forgets the run; `state()` /
//! `set_state()` carry what it learnt and counted through a checkpoint.
template <class M>
concept MetaOptimizer = requires(M m, const M cm, const control::Telemetry& metrics, long step,
                                 const std::vector<double>& state) {
  { m.update(metrics, step) } -> std::same_as<Changes>;
  { cm.every() } -> std::convertible_to<long>;
  m.reset();
  { cm.state() } -> std::same_as<std::vector<double>>;
  m.set_state(state);
};

//! The bounds of what a meta-optimizer may set.
struct Bounds {
  double min_lr = 1e-7;
  double max_lr = 1.0;
  double max_weight_decay = 1e-2;
};

namespace detail {
inline double metric(const control::Telemetry& t, const char* name) { return t.has(name) ? t[name] : NAN; }

// Least-squares slope of `values` against their index.
inline double slope(const std::deque<double>& values) {
  const auto n = static_cast<double>(values.size());
  double mx = (n - 1) / 2;
  double my = 0;
  for (const double v : values) my += v;
  my /= n;
  double sxy = 0;
  double sxx = 0;
  for (std::size_t i = 0; i < values.size(); ++i) {
    const double dx = static_cast<double>(i) - mx;
    sxy += dx * (values[i] - my);
    sxx += dx * dx;
  }
  return sxx > 0 ? sxy / sxx : 0.0;
}

inline void require_state(const char* fn, const std::vector<double>& s, std::size_t n) {
  SSMRL_REQUIRE(s.size() == n, fn, ": ", s.size(), " values, expected ", n);
  for (const double v : s) SSMRL_REQUIRE(!std::isnan(v), fn, ": a value is NaN");
}
}  // namespace detail

struct PlateauMetaOptions {
  long patience = 10;            //!< updates without improvement before the lr is cut
  double factor = 0.5;           //!< lr <- max(lr factor, min_lr)
  double min_lr = 1e-6;
  double threshold = 1e-4;       //!< improvement: loss < best - threshold max(|best|, 1e-12)
  double grad_norm_high = 10.0;  //!< weight decay raised when the gradient norm exceeds this
  double weight_decay_factor = 2.0;
  double weight_decay_start = 1e-5;  //!< the first value when raising from zero
  long every = 1;
};

//! Rules, at each update (loss L, best B, gradient norm G, weight decay w):
//! - plateau: L < B - threshold max(|B|, 1e-12) is an improvement (B = L, count 0; relative to
//!   |B|, so sign-safe for negative losses); otherwise the count grows, and a count above
//!   `patience` sets lr = max(lr factor, min_lr) and the count to 0.
//! - weight decay: G > grad_norm_high sets w = max(w weight_decay_factor, weight_decay_start)
//!   (so it can start from zero); absent G (a task without gradients norms), no change.
class PlateauMetaOptimizer {
public:
  explicit PlateauMetaOptimizer(PlateauMetaOptions o = {}) : o_(o) {
    SSMRL_REQUIRE(o.patience >= 0 && o.factor > 0 && o.factor < 1 && o.min_lr >= 0 && o.threshold >= 0 &&
                      o.grad_norm_high > 0 && o.weight_decay_factor > 1 && o.weight_decay_start > 0 && o.every >= 1,
                  "metaopt::PlateauMetaOptimizer: patience ", o.patience, " not negative, factor ", o.factor,
                  " in (0, 1), min_lr ", o.min_lr, " and threshold ", o.threshold, " not negative, grad_norm_high ",
                  o.grad_norm_high, " positive, weight_decay_factor ", o.weight_decay_factor,
                  " above 1, weight_decay_start ", o.weight_decay_start, " positive, every ", o.every, " at least 1");
  }

  Changes update(const control::Telemetry& metrics, long /*step*/) {
    Changes c;
    const double loss = metrics["loss"];
    if (std::isfinite(loss)) {
      if (loss < best_ - o_.threshold * std::max(std::abs(best_), 1e-12) || !std::isfinite(best_)) {
        best_ = loss;
        bad_ = 0;
      } else if (++bad_ > o_.patience) {
        c.lr = std::max(metrics["lr"] * o_.factor, o_.min_lr);
        bad_ = 0;
      }
    }
    const double g = detail::metric(metrics, "grad_norm");
    if (std::isfinite(g) && g > o_.grad_norm_high) {
      c.weight_decay = std::max(metrics["weight_decay"] * o_.weight_decay_factor, o_.weight_decay_start);
    }
    return c;
  }
  [[nodiscard]] long every() const noexcept { return o_.every; }
  void reset() {
    best_ = INFINITY;
    bad_ = 0;
  }
  [[nodiscard]] std::vector<double> state() const { return {best_, static_cast<double>(bad_)}; }
  void set_state(const std::vector<double>& s) {
    detail::require_state("metaopt::PlateauMetaOptimizer::set_state", s, 2);
    SSMRL_REQUIRE(s[1] >= 0 && s[1] == std::floor(s[1]), "metaopt::PlateauMetaOptimizer::set_state: count ", s[1]);
    best_ = s[0];
    bad_ = static_cast<long>(s[1]);
  }

private:
  PlateauMetaOptions o_;
  double best_ = INFINITY;
  long bad_ = 0;
};

struct AdvancedPlateauMetaOptions {
  long warmup_steps = 100;            //!< optimiser steps of linear warm-up
  double warmup_start_factor = 0.1;   //!< the warm-up's first lr, as a share of the base lr
  long window = 20;                   //!< updates in the trend window
  double flat_slope = 1e-3;           //!< plateau: slope > -flat_slope (|mean| + 1e-12) per update
  long patience = 3;                  //!< flat windows in a row before the lr is cut
  double factor = 0.5;
  double min_lr = 1e-6;
  double rising_slope = 1e-2;         //!< rising loss: slope > rising_slope (|mean| + 1e-12)
  double grad_norm_high = 10.0;
  double weight_norm_high = 100.0;
  double weight_decay_factor = 2.0;
  double weight_decay_start = 1e-5;
  long every = 1;
};

//! Rules, at each update after `step` optimiser steps (loss L; trend window of the last `window`
//! losses with least-squares slope s and mean m; gradient norm G; weight norm N; weight decay w):
//! - warm-up: while step < warmup_steps, lr = base (f + (1 - f) step / warmup_steps), f the start
//!   factor and base the lr at the first update; the other lr rules wait for its end.
//! - plateau: with a full window, s > -flat_slope (|m| + 1e-12) is a flat window; `patience` flat
//!   windows in a row cut lr = max(lr factor, min_lr) and empty the window (a cooldown of `window`).
//! - rising loss: with a full window, s > rising_slope (|m| + 1e-12) halves w (to 0 below
//!   weight_decay_start): the decay term is what pulls a rising training loss up.
//! - large gradients or weights: G > grad_norm_high or N > weight_norm_high raises
//!   w = max(w weight_decay_factor, weight_decay_start); rising loss wins over them.
class AdvancedPlateauMetaOptimizer {
public:
  explicit AdvancedPlateauMetaOptimizer(AdvancedPlateauMetaOptions o = {}) : o_(o) {
    SSMRL_REQUIRE(o.warmup_steps >= 0 && o.warmup_start_factor > 0 && o.warmup_start_factor <= 1 && o.window >= 2 &&
                      o.flat_slope >= 0 && o.patience >= 1 && o.factor > 0 && o.factor < 1 && o.min_lr >= 0 &&
                      o.rising_slope > 0 && o.grad_norm_high > 0 && o.weight_norm_high > 0 &&
                      o.weight_decay_factor > 1 && o.weight_decay_start > 0 && o.every >= 1,
                  "metaopt::AdvancedPlateauMetaOptimizer: warmup_steps ", o.warmup_steps, " not negative, "
                  "warmup_start_factor ", o.warmup_start_factor, " in (0, 1], window ", o.window, " at least 2, "
                  "flat_slope ", o.flat_slope, " not negative, patience ", o.patience, " at least 1, factor ",
                  o.factor, " in (0, 1), min_lr ", o.min_lr, " not negative, rising_slope ", o.rising_slope,
                  ", grad_norm_high ", o.grad_norm_high, ", weight_norm_high ", o.weight_norm_high,
                  " positive, weight_decay_factor ", o.weight_decay_factor, " above 1, weight_decay_start ",
                  o.weight_decay_start, " positive, every ", o.every, " at least 1");
  }

  Changes update(const control::Telemetry& metrics, long step) {
    Changes c;
    if (std::isnan(base_lr_)) base_lr_ = metrics["lr"];
    const double w = metrics["weight_decay"];
    const double loss = metrics["loss"];
    if (std::isfinite(loss)) {
      window_.push_back(loss);
      if (static_cast<long>(window_.size()) > o_.window) window_.pop_front();
    }
    const bool lr_rules = !warming_ && step >= o_.warmup_steps;
    if (step < o_.warmup_steps) {
      const double f = o_.warmup_start_factor;
      c.lr = base_lr_ * (f + (1 - f) * static_cast<double>(step) / static_cast<double>(o_.warmup_steps));
    } else if (warming_) {
      warming_ = false;
      c.lr = base_lr_;
    }
    bool rising = false;
    if (static_cast<long>(window_.size()) == o_.window) {
      const double s = detail::slope(window_);
      double m = 0;
      for (const double v : window_) m += v;
      m /= static_cast<double>(window_.size());
      const double scale = std::abs(m) + 1e-12;
      rising = s > o_.rising_slope * scale;
      if (lr_rules) {
        flat_ = s > -o_.flat_slope * scale ? flat_ + 1 : 0;
        if (flat_ >= o_.patience) {
          c.lr = std::max(metrics["lr"] * o_.factor, o_.min_lr);
          flat_ = 0;
          window_.clear();
        }
      }
    }
    const double g = detail::metric(metrics, "grad_norm");
    const double n = detail::metric(metrics, "weight_norm");
    if (rising) {
      const double half = w / 2;
      c.weight_decay = half < o_.weight_decay_start ? 0.0 : half;
    } else if ((std::isfinite(g) && g > o_.grad_norm_high) || (std::isfinite(n) && n > o_.weight_norm_high)) {
      c.weight_decay = std::max(w * o_.weight_decay_factor, o_.weight_decay_start);
    }
    return c;
  }
  [[nodiscard]] long every() const noexcept { return o_.every; }
  void reset() {
    window_.clear();
    flat_ = 0;
    base_lr_ = NAN;
    warming_ = true;
  }
  //! [base lr or NaN (as -1), warming, flat count, window...].
  [[nodiscard]] std::vector<double> state() const {
    std::vector<double> s{std::isnan(base_lr_) ? -1.0 : base_lr_, warming_ ? 1.0 : 0.0, static_cast<double>(flat_)};
    s.insert(s.end(), window_.begin(), window_.end());
    return s;
  }
  void set_state(const std::vector<double>& s) {
    const char* fn = "metaopt::AdvancedPlateauMetaOptimizer::set_state";
    SSMRL_REQUIRE(s.size() >= 3 && s.size() <= 3 + static_cast<std::size_t>(o_.window), fn, ": ", s.size(),
                  " values, expected 3 to ", 3 + o_.window);
    detail::require_state(fn, s, s.size());
    SSMRL_REQUIRE((s[0] == -1 || s[0] >= 0) && (s[1] == 0 || s[1] == 1) && s[2] >= 0 && s[2] == std::floor(s[2]), fn,
                  ": base lr ", s[0], ", warming ", s[1], ", flat count ", s[2]);
    base_lr_ = s[0] == -1 ? NAN : s[0];
    warming_ = s[1] == 1;
    flat_ = static_cast<long>(s[2]);
    window_.assign(s.begin() + 3, s.end());
  }

private:
  AdvancedPlateauMetaOptions o_;
  std::deque<double> window_;
  long flat_ = 0;
  double base_lr_ = NAN;
  bool warming_ = true;
};

//! An optimiser (Sgd, Adam, AdamW) steered by a meta-optimizer: step() steps the optimiser, and
//! observe(metrics) after every `every()` steps asks the meta-optimizer and applies its changes to
//! every group, clamped to the bounds. The values in effect are knobs (`lr`, `weight_decay`), so an
//! override file and the audit log see them, and a person's value set through set_knob_values wins
//! until the meta-optimizer's next change.
template <class Optimizer, MetaOptimizer Meta>
class OptimizerWrapper {
public:
  OptimizerWrapper(Optimizer optimizer, Meta meta, Bounds bounds = {})
      : optimizer_(std::move(optimizer)), meta_(std::move(meta)), bounds_(bounds) {
    SSMRL_REQUIRE(bounds.min_lr > 0 && bounds.max_lr >= bounds.min_lr && bounds.max_weight_decay >= 0,
                  "metaopt::OptimizerWrapper: bounds lr [", bounds.min_lr, ", ", bounds.max_lr, "], weight decay [0, ",
                  bounds.max_weight_decay, "] must be ordered and positive");
  }

  //! One step of the optimiser (its step(params, grads)).
  template <class Params, class Grads>
  void step(Params&& params, Grads&& grads) {
    optimizer_.step(std::forward<Params>(params), std::forward<Grads>(grads));
  }

  //! After a step: the metrics of it ("loss" and what the task has). Every every() steps the
  //! meta-optimizer decides; returns the changes applied (clamped), empty otherwise.
  Changes observe(control::Telemetry metrics) {
    const long steps = optimizer_.steps();
    if (steps == 0 || steps % meta_.every() != 0) return {};
    metrics.add("lr", optimizer_.lr());
    metrics.add("weight_decay", optimizer_.weight_decay());
    auto c = meta_.update(metrics, steps);
    if (c.lr) {
      c.lr = std::clamp(*c.lr, bounds_.min_lr, bounds_.max_lr);
      optimizer_.set_lr(*c.lr);
    }
    if (c.weight_decay) {
      c.weight_decay = std::clamp(*c.weight_decay, 0.0, bounds_.max_weight_decay);
      optimizer_.set_weight_decay(*c.weight_decay);
    }
    return c;
  }

  [[nodiscard]] control::KnobSchema knob_schema() const {
    return control::KnobSchema({control::real_knob("lr", optimizer_.lr(), bounds_.min_lr, bounds_.max_lr, true,
                                                   "the optimiser's learning rate"),
                                control::real_knob("weight_decay", optimizer_.weight_decay(), 0.0,
                                                   bounds_.max_weight_decay, false, "the optimiser's weight decay")});
  }
  [[nodiscard]] std::vector<control::KnobValue> knob_values() const {
    return {optimizer_.lr(), optimizer_.weight_decay()};
  }
  //! Sets both (checked whole against knob_schema()'s bounds) for every group.
  void set_knob_values(const std::vector<control::KnobValue>& values) {
    knob_schema().check_values(values, "metaopt::OptimizerWrapper::set_knob_values");
    optimizer_.set_lr(std::get<double>(values[0]));
    optimizer_.set_weight_decay(std::get<double>(values[1]));
  }

  [[nodiscard]] Optimizer& optimizer() noexcept { return optimizer_; }
  [[nodiscard]] const Optimizer& optimizer() const noexcept { return optimizer_; }
  [[nodiscard]] Meta& meta() noexcept { return meta_; }
  [[nodiscard]] const Meta& meta() const noexcept { return meta_; }

private:
  Optimizer optimizer_;
  Meta meta_;
  Bounds bounds_;
};

}  // namespace ssmrl::metaopt
