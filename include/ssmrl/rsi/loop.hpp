// The self-improvement loop: the baseline evaluated first; then each cycle proposes a change,
// trains the changed subject and the unchanged one on the same budget, accepts by judge() on the
// evaluation seeds, confirms on held-out seeds, lets the safety monitor roll back or stop, and
// writes the cycle's checkpoint, then its history line. A cycle's choices come from (seed, cycle)
// alone, so a run resumed after a crash repeats the interrupted cycle exactly.
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "ssmrl/core/error.hpp"
#include "ssmrl/rsi/decision.hpp"
#include "ssmrl/rsi/history.hpp"
#include "ssmrl/rsi/statistics.hpp"

namespace ssmrl::rsi {

//! A subject's metrics on some seeds: the primary score and the others, each per seed.
struct Evaluation {
  MetricSample primary;
  std::vector<MetricSample> others;
};

//! What the loop improves: a copyable, trainable thing with its evaluation and its checkpoint.
//!  - `proposal_type`, `propose(rng)` (a change within its bounds), `with(proposal)` (the subject
//!    changed, starting from what it learnt), `describe(proposal)` (JSON for the history);
//!  - `train(budget)`, `evaluate(seeds)` (an Evaluation);
//!  - `save(path)` (atomically) and `load(path)` (all of its state, or nothing).
template <class S>
concept ImprovableSubject =
    std::copyable<S> && requires(S s, const S cs, std::mt19937_64& rng, const typename S::proposal_type& p,
                                 long budget, std::span<const std::uint64_t> seeds, const std::filesystem::path& path) {
      { cs.propose(rng) } -> std::same_as<typename S::proposal_type>;
      { cs.with(p) } -> std::same_as<S>;
      { cs.describe(p) } -> std::convertible_to<nlohmann::json>;
      s.train(budget);
      { cs.evaluate(seeds) } -> std::same_as<Evaluation>;
      cs.save(path);
      s.load(path);
    };

//! A subject whose training can draw from independent streams: `replicate(k)` is a copy that
//! trains from stream k (the same k of a changed copy is the same stream, so the pair shares it).
template <class S>
concept ReplicableSubject = ImprovableSubject<S> && requires(const S cs, int k) {
  { cs.replicate(k) } -> std::same_as<S>;
};

struct LoopOptions {
  std::vector<std::uint64_t> eval_seeds;     //!< the seeds acceptance is decided on
  std::vector<std::uint64_t> heldout_seeds;  //!< the seeds an accepted proposal is confirmed on
  long budget = 1;                           //!< training per cycle, for the candidate and the baseline alike
  //! 1: one training of each arm, judged per evaluation seed. K > 1 (a ReplicableSubject): K
  //! trainings of each arm, replicate k of both from stream k, judged per replicate (its mean over
  //! the evaluation seeds), so that the test's noise includes training's; replicate 0 is kept.
  int replicates = 1;
  JudgeOptions judge{};
  double confirm_margin = 0.05;
  SafetyOptions safety{};
  int keep = 3;  //!< checkpoints kept beside the best
  std::uint64_t seed = 0;
};

enum class CycleOutcome { accepted, rejected, withdrawn, rolled_back, stopped };

[[nodiscard]] inline const char* outcome_name(CycleOutcome o) {
  switch (o) {
    case CycleOutcome::accepted: return "accepted";
    case CycleOutcome::rejected: return "rejected";
    case CycleOutcome::withdrawn: return "withdrawn";
    case CycleOutcome::rolled_back: return "rolled_back";
    case CycleOutcome::stopped: return "stopped";
  }
  return "?";
}

namespace detail {
inline bool finite(const MetricSample& m) {
  return !m.per_seed.empty() &&
         std::all_of(m.per_seed.begin(), m.per_seed.end(), [](double v) { return std::isfinite(v); });
}
inline bool finite(const Evaluation& e) {
  return finite(e.primary) &&
         std::all_of(e.others.begin(), e.others.end(), [](const MetricSample& m) { return finite(m); });
}
inline nlohmann::json metric_json(const MetricSample& m) {
  nlohmann::json j{{"name", m.name}, {"per_seed", m.per_seed}};
  if (finite(m)) {
    ad::Matrix<double> column(static_cast<ad::Index>(m.per_seed.size()), 1);
    for (std::size_t i = 0; i < m.per_seed.size(); ++i) column(static_cast<ad::Index>(i), 0) = m.per_seed[i];
    const auto ci = stratified_bootstrap(column, [](std::span<const double> v) { return interquartile_mean(v); });
    j["mean"] = mean(m.per_seed);
    j["iqm"] = ci.estimate;
    j["iqm_ci95"] = {ci.low, ci.high};
  }
  return j;
}
inline nlohmann::json evaluation_json(const Evaluation& e) {
  nlohmann::json others = nlohmann::json::array();
  for (const auto& m : e.others) others.push_back(metric_json(m));
  return {{"primary", metric_json(e.primary)}, {"others", others}};
}
//! Per replicate, the mean over the seeds of each metric: the evaluation the replicates are judged by.
inline Evaluation replicate_means(const std::vector<Evaluation>& replicates) {
  Evaluation out = replicates.front();
  const auto average = [](const MetricSample& m) { return mean(m.per_seed); };
  out.primary.per_seed.clear();
  for (auto& m : out.others) m.per_seed.clear();
  for (const auto& r : replicates) {
    out.primary.per_seed.push_back(finite(r.primary) ? average(r.primary) : std::nan(""));
    for (std::size_t i = 0; i < out.others.size(); ++i) {
      out.others[i].per_seed.push_back(finite(r.others[i]) ? average(r.others[i]) : std::nan(""));
    }
  }
  return out;
}
inline std::vector<double> all_values(const Evaluation& e) {
  std::vector<double> out;
  for (const auto& m : e.others) out.insert(out.end(), m.per_seed.begin(), m.per_seed.end());
  return out;
}
}  // namespace detail

template <ImprovableSubject Subject>
class ImprovementLoop {
public:
  //! Takes `dir` (history.jsonl and checkpoints/). A new run evaluates `subject` first, on both
  //! sets of seeds, and records it as cycle 0; a run with a history resumes: `subject` is loaded
  //! from the last recorded cycle's checkpoint (a checkpoint no line names is removed).
  ImprovementLoop(Subject subject, const std::filesystem::path& dir, LoopOptions options)
      : subject_(std::move(subject)), options_(std::move(options)), history_(prepared(dir) / "history.jsonl"),
        ring_(dir / "checkpoints", options_.keep), monitor_(options_.safety) {
    SSMRL_REQUIRE(!options_.eval_seeds.empty() && !options_.heldout_seeds.empty() && options_.budget > 0,
                  "rsi::ImprovementLoop: eval_seeds (", options_.eval_seeds.size(), ") and heldout_seeds (",
                  options_.heldout_seeds.size(), ") must not be empty and budget ", options_.budget,
                  " must be positive");
    SSMRL_REQUIRE(options_.replicates == 1 || (ReplicableSubject<Subject> && options_.replicates > 1),
                  "rsi::ImprovementLoop: replicates ", options_.replicates,
                  " must be 1, or more for a subject with replicate(k)");
    for (const auto s : options_.heldout_seeds) {
      for (const auto e : options_.eval_seeds) {
        SSMRL_REQUIRE(s != e, "rsi::ImprovementLoop: seed ", s, " is both an evaluation and a held-out seed");
      }
    }
    if (history_.next_cycle() == 0) {
      const auto eval = subject_.evaluate(options_.eval_seeds);
      const auto heldout = subject_.evaluate(options_.heldout_seeds);
      (void)monitor_.check(eval.primary.per_seed, detail::all_values(eval));
      ring_.prune(0);
      subject_.save(ring_.path_of(0));
      ring_.mark_best(0);
      history_.append({{"cycle", 0},
                       {"decision", "baseline"},
                       {"eval", detail::evaluation_json(eval)},
                       {"heldout", detail::evaluation_json(heldout)},
                       {"best", best_json()},
                       {"consecutive_failures", monitor_.consecutive_failures()}});
      return;
    }
    const auto& last = history_.records().back();
    SSMRL_REQUIRE(last.contains("decision") && last["decision"].is_string() && last.contains("best") &&
                      (last["best"].is_null() || last["best"].is_number()) && last.contains("consecutive_failures") &&
                      last["consecutive_failures"].is_number_integer(),
                  "rsi::ImprovementLoop: the last line of '", history_.path().string(),
                  "' lacks the loop's \"decision\", \"best\" or \"consecutive_failures\": not a history of this loop");
    const long cycle = last["cycle"].get<long>();
    SSMRL_REQUIRE(std::filesystem::exists(ring_.path_of(cycle)), "rsi::ImprovementLoop: '", history_.path().string(),
                  "' ends at cycle ", cycle, " but its checkpoint '", ring_.path_of(cycle).string(), "' is missing");
    ring_.prune(cycle);
    subject_.load(ring_.path_of(cycle));
    stopped_ = last["decision"] == "stopped";
    monitor_.restore(last["best"].is_null() ? std::nullopt : std::optional<double>(last["best"].get<double>()),
                     last["consecutive_failures"].get<int>());
  }

  [[nodiscard]] const Subject& subject() const noexcept { return subject_; }
  [[nodiscard]] const History& history() const noexcept { return history_; }
  [[nodiscard]] long next_cycle() const noexcept { return history_.next_cycle(); }
  [[nodiscard]] bool stopped() const noexcept { return stopped_; }

  //! One cycle (refused once the loop stopped).
  CycleOutcome run_cycle() {
    SSMRL_REQUIRE(!stopped_, "rsi::ImprovementLoop::run_cycle: the loop stopped after ",
                  options_.safety.max_consecutive_failures, " consecutive failures; see ", history_.path().string());
    const long cycle = history_.next_cycle();
    std::seed_seq seq{static_cast<std::uint32_t>(options_.seed), static_cast<std::uint32_t>(options_.seed >> 32),
                      static_cast<std::uint32_t>(cycle)};
    std::mt19937_64 rng(seq);
    const auto proposal = subject_.propose(rng);
    const Subject changed = subject_.with(proposal);
    const auto trained = [&](const Subject& start, int k) {
      Subject s = start;
      if constexpr (ReplicableSubject<Subject>) {
        if (options_.replicates > 1) s = start.replicate(k);
      }
      s.train(options_.budget);
      return s;
    };
    // Replicate 0 of each arm is kept; the others only lend their evaluations.
    Subject candidate = trained(changed, 0);
    Subject baseline = trained(subject_, 0);
    std::vector<Evaluation> evals_c{candidate.evaluate(options_.eval_seeds)};
    std::vector<Evaluation> evals_b{baseline.evaluate(options_.eval_seeds)};
    for (int k = 1; k < options_.replicates; ++k) {
      evals_c.push_back(trained(changed, k).evaluate(options_.eval_seeds));
      evals_b.push_back(trained(subject_, k).evaluate(options_.eval_seeds));
    }
    // One training per arm is judged per evaluation seed; replicates by their means.
    const auto eval_c = options_.replicates == 1 ? evals_c.front() : detail::replicate_means(evals_c);
    const auto eval_b = options_.replicates == 1 ? evals_b.front() : detail::replicate_means(evals_b);
    // A non-finite evaluation cannot be judged: the proposal is rejected, and the safety monitor
    // sees the baseline's.
    Judgement judgement;
    if (detail::finite(eval_c) && detail::finite(eval_b)) {
      judgement = judge(eval_c.primary, eval_b.primary, eval_c.others, eval_b.others, options_.judge);
    } else {
      judgement.why = detail::finite(eval_c) ? "the baseline's metrics are not finite"
                                             : "the candidate's metrics are not finite";
      judgement.verdicts.push_back({eval_c.primary.name, {}, false});
    }
    nlohmann::json record{{"cycle", cycle},
                          {"proposal", subject_.describe(proposal)},
                          {"replicates", options_.replicates},
                          {"eval", {{"candidate", detail::evaluation_json(eval_c)},
                                    {"baseline", detail::evaluation_json(eval_b)}}},
                          {"why", judgement.why},
                          {"p_value", judgement.verdicts.front().test.p_value}};
    CycleOutcome outcome = judgement.accepted ? CycleOutcome::accepted : CycleOutcome::rejected;
    if (judgement.accepted) {
      const auto held_c = candidate.evaluate(options_.heldout_seeds);
      const auto held_b = baseline.evaluate(options_.heldout_seeds);
      const auto confirmed = confirm(held_c.primary, held_b.primary, options_.confirm_margin, options_.judge);
      record["heldout"] = {{"candidate", detail::evaluation_json(held_c)},
                           {"baseline", detail::evaluation_json(held_b)},
                           {"confirmed", confirmed.passed},
                           {"p_value", confirmed.test.p_value}};
      if (!confirmed.passed) {
        outcome = CycleOutcome::withdrawn;
        record["why"] = judgement.why + "; withdrawn: not confirmed on the held-out seeds (p " +
                        std::to_string(confirmed.test.p_value) + ")";
      }
    }
    const bool take_candidate = outcome == CycleOutcome::accepted;
    const auto& kept_eval = take_candidate ? evals_c.front() : evals_b.front();  // per seed, of replicate 0
    const auto best_before = monitor_.best();
    const auto verdict = monitor_.check(kept_eval.primary.per_seed, detail::all_values(kept_eval));
    if (verdict == SafetyMonitor::Verdict::good) {
      subject_ = std::move(take_candidate ? candidate : baseline);
    } else {
      // Back to the last good checkpoint (the previous cycle's); the cycle's training is dropped.
      subject_.load(ring_.path_of(cycle - 1));
      record["safety"] = monitor_.why();
      outcome = verdict == SafetyMonitor::Verdict::stop ? CycleOutcome::stopped : CycleOutcome::rolled_back;
    }
    record["decision"] = outcome_name(outcome);
    // Every cycle ends on a good state (kept or rolled back to), saved before its history line.
    subject_.save(ring_.path_of(cycle));
    if (verdict == SafetyMonitor::Verdict::good && (!best_before || monitor_.best() != best_before)) {
      ring_.mark_best(cycle);
    }
    ring_.prune(cycle);
    record["best"] = best_json();
    record["consecutive_failures"] = monitor_.consecutive_failures();
    history_.append(record);
    stopped_ = outcome == CycleOutcome::stopped;
    return outcome;
  }

private:
  [[nodiscard]] nlohmann::json best_json() const {
    return monitor_.best() ? nlohmann::json(*monitor_.best()) : nlohmann::json(nullptr);
  }
  static const std::filesystem::path& prepared(const std::filesystem::path& dir) {
    std::filesystem::create_directories(dir);
    return dir;
  }

  Subject subject_;
  LoopOptions options_;
  History history_;
  CheckpointRing ring_;
  SafetyMonitor monitor_;
  bool stopped_ = false;
};

}  // namespace ssmrl::rsi
