// The columns of train.csv before the knobs', for meta and plain configurations, and what a
// controller of each reads and is rewarded by by default.
#pragma once

#include <string>
#include <vector>

#include "ssmrl/mc/registry.hpp"

namespace ssmrl::cli {

inline const std::vector<std::string>& training_columns() {
  static const std::vector<std::string> columns{"iteration", "pre_adaptation_return", "post_adaptation_return",
                                                "trpo_accepted", "trpo_kl", "seconds", "post_adaptation_std",
                                                "entropy", "episode_length", "grad_norm", "outer_step_applied"};
  return columns;
}

inline const std::vector<std::string>& plain_columns() {
  static const std::vector<std::string> columns{"update", "env_steps", "mean_return_last_100", "loss", "grad_norm",
                                                "seconds", "return_std", "episode_length", "entropy", "kl",
                                                "clip_fraction", "explained_variance", "lr"};
  return columns;
}

//! The plain columns of a policy's train.csv: with an MC head, its entropy and each action's share of
//! the rollout's MC choices follow ("mc_share.noop" first, then the declared actions in order).
template <class Policy>
std::vector<std::string> plain_columns_of() {
  auto columns = plain_columns();
  if constexpr (requires { typename Policy::registry_type; }) {
    columns.emplace_back("mc_entropy");
    columns.push_back("mc_share." + std::string(mc::noop_action));
    for (const auto& a : Policy::registry_type::declared_actions()) columns.push_back("mc_share." + a);
  }
  return columns;
}

//! The telemetry a new controller reads by default, and the objective whose improvement rewards it.
inline std::vector<std::string> default_controller_telemetry(bool meta) {
  if (meta)
    return {
        "pre_adaptation_return", "post_adaptation_return", "post_adaptation_std", "entropy", "grad_norm", "trpo_kl"};
  return {"mean_return_last_100", "return_std", "entropy", "kl", "grad_norm", "clip_fraction", "explained_variance",
          "episode_length"};
}
inline std::string default_objective(bool meta) { return meta ? "post_adaptation_return" : "mean_return_last_100"; }

}  // namespace ssmrl::cli
