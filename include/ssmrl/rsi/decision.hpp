// How a self-improvement cycle judges a proposal: metrics on a common scale, accepted only by a
// paired one-sided test on the primary score with non-inferiority on every other metric, then
// confirmed on held-out seeds; and the safety monitor that rolls back and stops.
#pragma once

#include <cmath>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "ssmrl/core/error.hpp"
#include "ssmrl/rsi/statistics.hpp"

namespace ssmrl::rsi {

//! A raw score x on the common scale: (x - floor) / (reference - floor), 0 at the floor (a random
//! policy's return, say) and 1 at the reference (the solved threshold), as Atari's human-normalised
//! scores are.
struct ScoreScale {
  double floor = 0;
  double reference = 1;
  [[nodiscard]] double normalise(double x) const {
    SSMRL_REQUIRE(std::isfinite(floor) && std::isfinite(reference) && reference != floor, "rsi::ScoreScale: floor ",
                  floor, " and reference ", reference, " must be finite and differ");
    return (x - floor) / (reference - floor);
  }
};

//! One metric of a policy on each evaluation seed (already on the common scale), with the margin
//! by which a proposal may be worse on it and still pass.
struct MetricSample {
  std::string name;
  std::vector<double> per_seed;
  double margin = 0.05;
};

struct JudgeOptions {
  double alpha = 0.05;
  SignFlipOptions test{};
};

//! The verdict on one metric.
struct MetricVerdict {
  std::string name;
  PairedTest test;  //!< superiority for the primary score, non-inferiority (shift -margin) otherwise
  bool passed = false;
};

struct Judgement {
  bool accepted = false;
  std::string why;
  std::vector<MetricVerdict> verdicts;  //!< the primary first
};

//! Accepts the candidate when its primary score beats the baseline's by a paired one-sided
//! sign-flip test at `alpha` on the same seeds, and every other metric is non-inferior within its
//! margin at `alpha` (so that no metric that moved by chance decides alone, and none may quietly
//! get worse). Non-finite values are refused. Metrics pair by name.
[[nodiscard]] inline Judgement judge(const MetricSample& primary_candidate, const MetricSample& primary_baseline,
                                     const std::vector<MetricSample>& others_candidate,
                                     const std::vector<MetricSample>& others_baseline,
                                     const JudgeOptions& options = {}) {
  SSMRL_REQUIRE(options.alpha > 0 && options.alpha < 1, "rsi::judge: alpha ", options.alpha, " must be in (0, 1)");
  SSMRL_REQUIRE(primary_candidate.name == primary_baseline.name, "rsi::judge: the primary metrics differ: '",
                primary_candidate.name, "' and '", primary_baseline.name, "'");
  SSMRL_REQUIRE(others_candidate.size() == others_baseline.size(), "rsi::judge: the candidate has ",
                others_candidate.size(), " other metrics, the baseline ", others_baseline.size());
  Judgement j;
  MetricVerdict primary{primary_candidate.name,
                        paired_sign_flip_test(primary_candidate.per_seed, primary_baseline.per_seed, 0, options.test),
                        false};
  primary.passed = primary.test.significant(options.alpha);
  j.verdicts.push_back(primary);
  std::vector<std::string> failed;
  for (std::size_t k = 0; k < others_candidate.size(); ++k) {
    const auto& c = others_candidate[k];
    const auto& b = others_baseline[k];
    SSMRL_REQUIRE(c.name == b.name && c.margin == b.margin && c.margin >= 0, "rsi::judge: metric ", k, " is '", c.name,
                  "' (margin ", c.margin, ") for the candidate and '", b.name, "' (margin ", b.margin,
                  ") for the baseline; they must agree, with a margin >= 0");
    MetricVerdict v{c.name, paired_sign_flip_test(c.per_seed, b.per_seed, -c.margin, options.test), false};
    v.passed = v.test.significant(options.alpha);
    if (!v.passed) failed.push_back(c.name);
    j.verdicts.push_back(v);
  }
  j.accepted = primary.passed && failed.empty();
  if (!primary.passed) {
    j.why = primary.name + " not better (mean difference " + std::to_string(primary.test.mean_difference) +
            ", p " + std::to_string(primary.test.p_value) + ")";
  } else if (!failed.empty()) {
    j.why = primary.name + " better (p " + std::to_string(primary.test.p_value) + ") but possibly worse on";
    for (const auto& name : failed) j.why += " " + name;
  } else {
    j.why = primary.name + " better (mean difference " + std::to_string(primary.test.mean_difference) + ", p " +
            std::to_string(primary.test.p_value) + "), the others no worse than their margins";
  }
  return j;
}

//! The re-check of an accepted proposal on held-out seeds it never saw: its primary score must be
//! non-inferior within `margin` there (a paired test at `alpha`), or the acceptance is withdrawn.
[[nodiscard]] inline MetricVerdict confirm(const MetricSample& heldout_candidate, const MetricSample& heldout_baseline,
                                           double margin, const JudgeOptions& options = {}) {
  SSMRL_REQUIRE(margin >= 0 && std::isfinite(margin), "rsi::confirm: margin ", margin, " must be finite and >= 0");
  MetricVerdict v{heldout_candidate.name,
                  paired_sign_flip_test(heldout_candidate.per_seed, heldout_baseline.per_seed, -margin, options.test),
                  false};
  v.passed = v.test.significant(options.alpha);
  return v;
}

struct SafetyOptions {
  //! A drop of the primary score's mean below the best's by more than this rolls back.
  double degradation = 0.1;
  //! A spread (standard deviation over seeds) of the primary score above this rolls back.
  double max_spread = 1.0;
  int max_consecutive_failures = 3;
};

//! Watches the policy a cycle ends with: a non-finite metric, a primary score fallen below the
//! best by more than `degradation`, or one spread over seeds by more than `max_spread` is a
//! failure, and the loop rolls back to the last good checkpoint; `max_consecutive_failures` in a
//! row stop the loop. A rejected proposal is no failure (nothing changed).
class SafetyMonitor {
public:
  enum class Verdict { good, roll_back, stop };

  explicit SafetyMonitor(SafetyOptions options = {}) : options_(options) {
    SSMRL_REQUIRE(options.degradation >= 0 && options.max_spread > 0 && options.max_consecutive_failures >= 1,
                  "rsi::SafetyMonitor: degradation ", options.degradation, " must be >= 0, max_spread ",
                  options.max_spread, " positive and max_consecutive_failures ", options.max_consecutive_failures,
                  " at least 1");
  }

  //! Judges the primary score per seed (and any other values that must be finite); `why` says what
  //! failed.
  Verdict check(const std::vector<double>& primary, const std::vector<double>& others = {}) {
    why_.clear();
    for (const double v : primary) {
      if (!std::isfinite(v)) why_ = "a primary score is not finite";
    }
    for (const double v : others) {
      if (!std::isfinite(v)) why_ = "a metric is not finite";
    }
    if (why_.empty() && primary.empty()) why_ = "no primary score";
    if (why_.empty()) {
      double m = 0;
      for (const double v : primary) m += v;
      m /= static_cast<double>(primary.size());
      double spread = 0;
      for (const double v : primary) spread += (v - m) * (v - m);
      spread = primary.size() > 1 ? std::sqrt(spread / static_cast<double>(primary.size() - 1)) : 0.0;
      if (best_ && m < *best_ - options_.degradation) {
        why_ = "the primary score fell to " + std::to_string(m) + " from the best " + std::to_string(*best_);
      } else if (spread > options_.max_spread) {
        why_ = "the primary score's spread over seeds is " + std::to_string(spread);
      } else {
        if (!best_ || m > *best_) best_ = m;
        failures_ = 0;
        return Verdict::good;
      }
    }
    ++failures_;
    return failures_ >= options_.max_consecutive_failures ? Verdict::stop : Verdict::roll_back;
  }
  //! Where a resumed run left off: the best mean primary score and the failures in a row.
  void restore(std::optional<double> best, int consecutive_failures) {
    SSMRL_REQUIRE((!best || std::isfinite(*best)) && consecutive_failures >= 0 &&
                      consecutive_failures <= options_.max_consecutive_failures,
                  "rsi::SafetyMonitor::restore: best ", best.value_or(0.0), " must be finite and consecutive_failures ",
                  consecutive_failures, " in [0, ", options_.max_consecutive_failures, "]");
    best_ = best;
    failures_ = consecutive_failures;
  }
  [[nodiscard]] const std::string& why() const noexcept { return why_; }
  [[nodiscard]] int consecutive_failures() const noexcept { return failures_; }
  [[nodiscard]] std::optional<double> best() const noexcept { return best_; }

private:
  SafetyOptions options_;
  std::optional<double> best_;
  int failures_ = 0;
  std::string why_;
};

}  // namespace ssmrl::rsi
