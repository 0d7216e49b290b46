// Online adaptation during a rollout: every `every` steps, the adapter takes its steps on the most
// recent `window` steps, while the policy keeps its recurrent state and the environments run on.
#pragma once

#include <deque>
#include <vector>

#include "ssmrl/adapt/adapter.hpp"
#include "ssmrl/env/env_batch.hpp"
#include "ssmrl/rl/rollout.hpp"

namespace ssmrl::adapt {

//! `later` appended after `earlier` in time (the same environments): the recurrent state is
//! `earlier`'s, and an episode that ended at `earlier`'s last step starts anew (keep = 0).
template <class Scalar>
rl::TrajectoryBatch<Scalar> concat_in_time(const rl::TrajectoryBatch<Scalar>& earlier, const rl::TrajectoryBatch<Scalar>& later) {
  SSMRL_REQUIRE(earlier.envs == later.envs, "adapt::concat_in_time: ", earlier.envs, " and ", later.envs, " environments");
  SSMRL_REQUIRE((earlier.samples.size() > 0) == (later.samples.size() > 0), "adapt::concat_in_time: one batch records ",
                "samples apart from its actions and the other does not (", earlier.samples.size(), " and ",
                later.samples.size(), " entries)");
  rl::TrajectoryBatch<Scalar> out = earlier;
  out.steps = earlier.steps + later.steps;
  auto append = [](ad::Matrix<Scalar>& to, const ad::Matrix<Scalar>& from) {
    if (from.size() == 0) return;
    ad::Matrix<Scalar> joined(from.rows(), to.cols() + from.cols());
    joined << to, from;
    to = std::move(joined);
  };
  append(out.observations, later.observations);
  append(out.actions, later.actions);
  append(out.samples, later.samples);
  append(out.rewards, later.rewards);
  append(out.terminated, later.terminated);
  append(out.truncated, later.truncated);
  append(out.log_probs, later.log_probs);
  append(out.values, later.values);
  append(out.bootstrap, later.bootstrap);
  append(out.keep, later.keep);
  for (ad::Index i = 0; i < earlier.envs; ++i) {
    const auto last = (earlier.steps - 1) * earlier.envs + i;
    if (earlier.terminated(0, last) != 0 || earlier.truncated(0, last) != 0) out.keep(0, earlier.steps * earlier.envs + i) = 0;
  }
  out.last_values = later.last_values;
  out.finished_returns.insert(out.finished_returns.end(), later.finished_returns.begin(), later.finished_returns.end());
  out.finished_lengths.insert(out.finished_lengths.end(), later.finished_lengths.begin(), later.finished_lengths.end());
  return out;
}

struct OnlineOptions {
  ad::Index steps = 500;   //!< steps of each environment in all
  ad::Index every = 25;    //!< adapt after each this many steps
  ad::Index window = 100;  //!< on the most recent this many steps (a multiple of `every`)
};

//! The rollout of `policy` (adapted in place by `adapter`) over `batch`; returns the whole rollout.
template <class Strategy, class PolicyT, class Env, class EnvRng, class Rng>
rl::TrajectoryBatch<typename PolicyT::scalar_type> run_online(Adapter<Strategy, PolicyT>& adapter, PolicyT& policy,
                                                              env::EnvBatch<Env, EnvRng>& batch, OnlineOptions options,
                                                              policy::ActMode mode, Rng& rng) {
  SSMRL_REQUIRE(options.steps > 0 && options.every > 0 && options.window >= options.every &&
                    options.window % options.every == 0,
                "adapt::run_online: steps ", options.steps, " and every ", options.every,
                " must be positive and window ", options.window, " a multiple of every");
  std::deque<rl::TrajectoryBatch<typename PolicyT::scalar_type>> recent;
  rl::TrajectoryBatch<typename PolicyT::scalar_type> all;
  for (ad::Index done = 0; done < options.steps; done += options.every) {
    auto chunk = rl::collect(policy, batch, std::min(options.every, options.steps - done), mode, rng);
    all = done == 0 ? chunk : concat_in_time(all, chunk);
    recent.push_back(std::move(chunk));
    while (static_cast<ad::Index>(recent.size()) * options.every > options.window) recent.pop_front();
    auto window = recent.front();
    for (std::size_t k = 1; k < recent.size(); ++k) window = concat_in_time(window, recent[k]);
    adapter.adapt(window);
  }
  return all;
}

}  // namespace ssmrl::adapt
