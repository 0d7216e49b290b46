// The description of an MC policy in its checkpoints: its base policy's, every action of its
// registry and each component's settings. The transient MC state (the last step's effects and
// choices, the generators of choices and noise) is no part of it and is never saved.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "ssmrl/io/checkpoint.hpp"
#include "ssmrl/mc/mc_policy.hpp"

namespace ssmrl::mc {

//! A component's part of the description: its actions (and, for ours, their settings).
template <McComponent C>
nlohmann::ordered_json describe_component(const C&) {
  auto actions = nlohmann::ordered_json::array();
  for (const auto& a : C::mc_actions) actions.push_back(std::string(a));
  return {{"type", "component"}, {"actions", actions}};
}
template <class S>
nlohmann::ordered_json describe_component(const RecurrentStateActions<S>& c) {
  return {{"type", "recurrent_state_actions"}, {"low_std", c.options().low_std}, {"high_std", c.options().high_std}};
}
template <class S>
nlohmann::ordered_json describe_component(const ObservationFocus<S>& c) {
  const auto& o = c.options();
  return {{"type", "observation_focus"}, {"tokens", o.tokens}, {"token_size", o.token_size},
          {"short_keep", o.short_keep}, {"long_keep", o.long_keep}};
}

template <class Base, McComponent... Components>
nlohmann::ordered_json describe(const McPolicy<Base, Components...>& p) {
  auto actions = nlohmann::ordered_json::array();
  for (const auto& a : p.registry().actions()) actions.push_back(a.name);
  auto components = nlohmann::ordered_json::array();
  (components.push_back(describe_component(p.registry().template component<Components>())), ...);
  return {{"type", "mc_policy"}, {"base", io::describe(p.base())}, {"actions", actions}, {"components", components}};
}

}  // namespace ssmrl::mc
