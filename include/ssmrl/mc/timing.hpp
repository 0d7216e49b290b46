// When an MC policy chooses each action: counts of its choices over the first episode of each
// environment of a rollout, by a clock — the step of the episode, or the steps since an observation
// feature last exceeded 0.5 (an event the environment shows, such as Regime Switch's redraw flag).
#pragma once

#include <cstddef>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "ssmrl/autodiff.hpp"
#include "ssmrl/core/error.hpp"

namespace ssmrl::mc {

struct McTiming {
  std::vector<std::string> actions;       //!< the registry's actions, noop first
  std::vector<std::vector<long>> counts;  //!< counts[clock][action]

  [[nodiscard]] long steps_at(std::size_t clock) const {
    long n = 0;
    for (const long c : counts.at(clock)) n += c;
    return n;
  }
  //! The share of the steps at `clock` that chose `action` (NaN where no step had that clock).
  [[nodiscard]] double share(std::size_t clock, std::size_t action) const {
    const long n = steps_at(clock);
    return n == 0 ? std::numeric_limits<double>::quiet_NaN()
                  : static_cast<double>(counts.at(clock).at(action)) / static_cast<double>(n);
  }
};

//! The timing of the MC choices of `t` (a rollout with its McRecord, such as rl::collect gives),
//! whose policy has the actions `names`. With `since_feature`, the clock is the steps since that
//! observation feature last exceeded 0.5 (0 on such a step; counted from the episode's start
//! before the first).
template <class Trajectories>
McTiming choice_timing(const Trajectories& t, std::vector<std::string> names,
                       std::optional<ad::Index> since_feature = std::nullopt) {
  SSMRL_REQUIRE(!t.mc.empty() && t.mc.choices.cols() == t.envs * t.steps, "mc::choice_timing: the rollout has ",
                t.mc.choices.cols(), " MC choices for ", t.envs, " environments x ", t.steps,
                " steps (was it collected with an MC policy?)");
  SSMRL_REQUIRE(!names.empty(), "mc::choice_timing: names is empty");
  if (since_feature) {
    SSMRL_REQUIRE(*since_feature >= 0 && *since_feature < t.observations.rows(), "mc::choice_timing: since_feature ",
                  *since_feature, " is not a feature of observations of ", t.observations.rows());
  }
  McTiming timing{std::move(names), {}};
  for (ad::Index i = 0; i < t.envs; ++i) {
    std::size_t clock = 0;
    for (ad::Index k = 0; k < t.steps; ++k) {
      const auto c = k * t.envs + i;
      if (since_feature && t.observations(*since_feature, c) > 0.5) clock = 0;
      const double chosen = static_cast<double>(t.mc.choices(0, c));
      SSMRL_REQUIRE(chosen >= 0 && chosen < static_cast<double>(timing.actions.size()),
                    "mc::choice_timing: choice ", chosen, " at column ", c, " is not one of ", timing.actions.size(),
                    " actions");
      if (timing.counts.size() <= clock) timing.counts.resize(clock + 1, std::vector<long>(timing.actions.size(), 0));
      ++timing.counts[clock][static_cast<std::size_t>(chosen)];
      ++clock;
      if (t.terminated(0, c) != 0 || t.truncated(0, c) != 0) break;
    }
  }
  return timing;
}

}  // namespace ssmrl::mc
