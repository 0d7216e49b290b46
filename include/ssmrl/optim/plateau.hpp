// ReduceLROnPlateau with torch.optim.lr_scheduler.ReduceLROnPlateau's semantics, to the step: a
// metric that has not improved on the best by the threshold for more than `patience` steps cuts
// every group's learning rate by `factor` (not below its min_lr; a cut of eps or less is skipped),
// then `cooldown` steps pass in which bad steps are not counted.
//
// The trap with RL returns: PyTorch's default relative threshold compares with best * (1 +/-
// threshold), which for a negative best moves the bar the wrong way (mode max, best -100,
// threshold 0.01: -100.5 counts as an improvement, since -100.5 > -101). For metrics that can be
// negative use the absolute mode.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "ssmrl/core/error.hpp"

namespace ssmrl::optim {

enum class PlateauMode { min, max };
enum class ThresholdMode { rel, abs };

struct PlateauOptions {
  PlateauMode mode = PlateauMode::min;
  double factor = 0.1;
  long patience = 10;
  double threshold = 1e-4;
  ThresholdMode threshold_mode = ThresholdMode::rel;
  long cooldown = 0;
  std::vector<double> min_lr = {0.0};  //!< one value for every group, or one per group
  double eps = 1e-8;
};

class ReduceLROnPlateau {
public:
  //! The counters of a run, for checkpoints.
  struct State {
    double best = 0;
    long bad_steps = 0;
    long cooldown_left = 0;
    long steps = 0;
  };

  explicit ReduceLROnPlateau(PlateauOptions options = {}) : options_(std::move(options)) {
    const auto& o = options_;
    SSMRL_REQUIRE(o.factor < 1 && o.factor >= 0 && o.patience >= 0 && o.cooldown >= 0 && std::isfinite(o.threshold) &&
                      o.threshold >= 0 && std::isfinite(o.eps) && o.eps >= 0 && !o.min_lr.empty(),
                  "optim::ReduceLROnPlateau: factor ", o.factor, " must lie in [0, 1), patience ", o.patience,
                  " and cooldown ", o.cooldown, " not be negative, threshold ", o.threshold, " and eps ", o.eps,
                  " finite and not negative, and min_lr hold a value");
    for (const double m : o.min_lr) {
      SSMRL_REQUIRE(std::isfinite(m) && m >= 0, "optim::ReduceLROnPlateau: a min_lr is ", m);
    }
    state_.best = worst();
  }

  //! Whether `metric` improves on `best` by the threshold.
  [[nodiscard]] bool is_better(double metric, double best) const {
    const double t = options_.threshold;
    if (options_.mode == PlateauMode::min) {
      return options_.threshold_mode == ThresholdMode::rel ? metric < best * (1 - t) : metric < best - t;
    }
    return options_.threshold_mode == ThresholdMode::rel ? metric > best * (t + 1) : metric > best + t;
  }

  //! One step with this step's metric; reduces the learning rates of `optimizer` (any type with
  //! group_count(), lr(g) and set_lr(g, lr)) when the plateau lasts. Returns whether it did.
  template <class Optimizer>
  bool step(double metric, Optimizer& optimizer) {
    std::vector<double> lrs(optimizer.group_count());
    for (std::size_t g = 0; g < lrs.size(); ++g) lrs[g] = optimizer.lr(g);
    const bool reduced = step(metric, lrs);
    for (std::size_t g = 0; g < lrs.size(); ++g) optimizer.set_lr(g, lrs[g]);
    return reduced;
  }

  //! The same on a list of learning rates, one per group.
  bool step(double metric, std::vector<double>& lrs) {
    SSMRL_REQUIRE(options_.min_lr.size() == 1 || options_.min_lr.size() == lrs.size(),
                  "optim::ReduceLROnPlateau::step: ", options_.min_lr.size(), " min_lr values for ", lrs.size(),
                  " groups");
    SSMRL_REQUIRE(!std::isnan(metric), "optim::ReduceLROnPlateau::step: the metric is NaN");
    ++state_.steps;
    if (is_better(metric, state_.best)) {
      state_.best = metric;
      state_.bad_steps = 0;
    } else {
      ++state_.bad_steps;
    }
    if (state_.cooldown_left > 0) {
      --state_.cooldown_left;
      state_.bad_steps = 0;
    }
    if (state_.bad_steps <= options_.patience) return false;
    bool reduced = false;
    for (std::size_t g = 0; g < lrs.size(); ++g) {
      const double floor = options_.min_lr[options_.min_lr.size() == 1 ? 0 : g];
      const double next = std::max(lrs[g] * options_.factor, floor);
      if (lrs[g] - next > options_.eps) {
        lrs[g] = next;
        reduced = true;
      }
    }
    state_.cooldown_left = options_.cooldown;
    state_.bad_steps = 0;
    return reduced;
  }

  [[nodiscard]] const PlateauOptions& options() const noexcept { return options_; }
  [[nodiscard]] const State& state() const noexcept { return state_; }
  void set_state(const State& s) {
    SSMRL_REQUIRE(!std::isnan(s.best) && s.bad_steps >= 0 && s.cooldown_left >= 0 && s.steps >= 0,
                  "optim::ReduceLROnPlateau::set_state: best ", s.best, ", bad_steps ", s.bad_steps,
                  ", cooldown_left ", s.cooldown_left, ", steps ", s.steps);
    state_ = s;
  }

private:
  [[nodiscard]] double worst() const {
    return options_.mode == PlateauMode::min ? std::numeric_limits<double>::infinity()
                                             : -std::numeric_limits<double>::infinity();
  }

  PlateauOptions options_;
  State state_;
};

}  // namespace ssmrl::optim
