// Meta-cognitive actions: internal actions a policy chooses per environment before it acts. A
// component declares its actions by name and handles one of them for a set of environment ids; a
// compile-time list of components gives the McRegistry, whose runtime view by name serves
// configurations. The MC head's output i means the i-th action of the *active set*, whatever the
// declaration order; "noop" is always action 0 of every active set.
#pragma once

#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ssmrl/core/error.hpp"

namespace ssmrl::mc {

using EnvId = std::int64_t;

//! A component of MC actions: `C::mc_actions` names its actions (an array of string_view), and
//! `apply_mc(k, ids, targets...)` applies its k-th action to the environments `ids`, writing into
//! the targets McRegistry::apply() was given (McPolicy gives its McEffects).
template <class C>
concept McComponent = requires(std::size_t k) {
  { C::mc_actions.size() } -> std::convertible_to<std::size_t>;
  { std::string_view(C::mc_actions[0]) };
};

//! One action of the registry: its name, the component that handles it and its index there.
struct McAction {
  std::string name;
  std::size_t component = 0;  //!< position in the registry's component list (unused for noop)
  std::size_t local = 0;      //!< index in the component's mc_actions
  bool noop = false;
};

inline constexpr std::string_view noop_action = "noop";

template <McComponent... Components>
class McRegistry {
public:
  explicit McRegistry(Components... components) : components_(std::move(components)...) {
    all_.push_back({std::string(noop_action), 0, 0, true});
    add_actions(std::index_sequence_for<Components...>{});
    for (std::size_t i = 0; i < all_.size(); ++i) {
      for (std::size_t j = 0; j < i; ++j) {
        SSMRL_REQUIRE(all_[i].name != all_[j].name, "mc::McRegistry: two components declare the action '",
                      all_[i].name, "'");
      }
    }
    std::vector<std::string> every;
    for (std::size_t i = 1; i < all_.size(); ++i) every.push_back(all_[i].name);
    set_active(every);
  }

  //! The components' actions in declaration order (noop, the registry's own, not among them),
  //! known from the types alone: what a configuration may name before a registry exists.
  [[nodiscard]] static std::vector<std::string> declared_actions() {
    std::vector<std::string> out;
    (out.insert(out.end(), Components::mc_actions.begin(), Components::mc_actions.end()), ...);
    return out;
  }
  //! Every declared action, noop first, then each component's in declaration order.
  [[nodiscard]] const std::vector<McAction>& actions() const noexcept { return all_; }
  [[nodiscard]] std::optional<std::size_t> find(std::string_view name) const {
    for (std::size_t i = 0; i < all_.size(); ++i) {
      if (all_[i].name == name) return i;
    }
    return std::nullopt;
  }
  [[nodiscard]] std::string names_text() const {
    std::string s;
    for (const auto& a : all_) s += (s.empty() ? "" : ", ") + a.name;
    return s;
  }

  //! The active set: noop, then `names` in the order given (noop among them is ignored). A name
  //! not declared, or given twice, is refused and the active set stays as it was. May change
  //! between steps (a curriculum); the MC head's output i then means the new set's i-th action.
  void set_active(const std::vector<std::string>& names) {
    std::vector<std::size_t> next{0};
    for (const auto& n : names) {
      const auto at = find(n);
      SSMRL_REQUIRE(at.has_value(), "mc::McRegistry::set_active: no action '", n, "'; the actions are ",
                    names_text());
      if (*at == 0) continue;
      for (const auto k : next) {
        SSMRL_REQUIRE(k != *at, "mc::McRegistry::set_active: action '", n, "' given twice");
      }
      next.push_back(*at);
    }
    active_ = std::move(next);
    for (auto& ids : pending_) ids.clear();
    pending_.resize(all_.size());
  }
  [[nodiscard]] std::size_t active_count() const noexcept { return active_.size(); }
  //! The i-th action of the active set.
  [[nodiscard]] const McAction& active(std::size_t i) const {
    SSMRL_REQUIRE(i < active_.size(), "mc::McRegistry::active: index ", i, " of an active set of ", active_.size());
    return all_[active_[i]];
  }
  //! The position in actions() of the i-th action of the active set.
  [[nodiscard]] std::size_t active_position(std::size_t i) const {
    SSMRL_REQUIRE(i < active_.size(), "mc::McRegistry::active_position: index ", i, " of an active set of ",
                  active_.size());
    return active_[i];
  }
  [[nodiscard]] std::vector<std::string> active_names() const {
    std::vector<std::string> out;
    for (const auto k : active_) out.push_back(all_[k].name);
    return out;
  }

  //! Applies choice[r] (an index in the active set) to environment env_ids[r], for every row r:
  //! each component's handler is called once per chosen action with the ids that chose it, in the
  //! order of the rows, and the targets. Checked whole before any handler runs. No allocation once
  //! the id lists have grown to the batch's size.
  template <class... Targets>
  void apply(std::span<const int> choices, std::span<const EnvId> env_ids, Targets&... targets) {
    SSMRL_REQUIRE(choices.size() == env_ids.size(), "mc::McRegistry::apply: ", choices.size(), " choices for ",
                  env_ids.size(), " environment ids");
    for (std::size_t r = 0; r < choices.size(); ++r) {
      SSMRL_REQUIRE(choices[r] >= 0 && static_cast<std::size_t>(choices[r]) < active_.size(),
                    "mc::McRegistry::apply: row ", r, " chose ", choices[r], " of an active set of ", active_.size());
    }
    for (auto& ids : pending_) ids.clear();
    for (std::size_t r = 0; r < choices.size(); ++r) {
      pending_[active_[static_cast<std::size_t>(choices[r])]].push_back(env_ids[r]);
    }
    for (std::size_t k = 1; k < all_.size(); ++k) {
      if (!pending_[k].empty()) dispatch(all_[k], pending_[k], std::index_sequence_for<Components...>{}, targets...);
    }
  }

  //! Makes room for the environments `ids`, in the registry and in each component that has
  //! `prepare_mc(ids, targets...)`, so that apply() allocates nothing for them afterwards.
  template <class... Targets>
  void prepare(std::span<const EnvId> ids, Targets&... targets) {
    for (auto& list : pending_) list.reserve(ids.size());
    prepare_each(std::index_sequence_for<Components...>{}, ids, targets...);
  }

  template <std::size_t I>
  [[nodiscard]] auto& component() noexcept {
    return std::get<I>(components_);
  }
  template <class C>
  [[nodiscard]] C& component() noexcept {
    return std::get<C>(components_);
  }
  template <class C>
  [[nodiscard]] const C& component() const noexcept {
    return std::get<C>(components_);
  }
  //! Whether the component C is in the list.
  template <class C>
  static constexpr bool has_component = (std::is_same_v<C, Components> || ...);

private:
  template <std::size_t... I>
  void add_actions(std::index_sequence<I...>) {
    (add_component_actions<I>(), ...);
  }
  template <std::size_t I>
  void add_component_actions() {
    using C = std::tuple_element_t<I, std::tuple<Components...>>;
    for (std::size_t k = 0; k < C::mc_actions.size(); ++k) {
      const std::string name(C::mc_actions[k]);
      SSMRL_REQUIRE(name != noop_action && !name.empty(), "mc::McRegistry: a component declares the action '", name,
                    "'; names are not empty and 'noop' is the registry's own");
      all_.push_back({name, I, k, false});
    }
  }
  template <std::size_t... I, class... Targets>
  void prepare_each(std::index_sequence<I...>, std::span<const EnvId> ids, Targets&... targets) {
    (prepare_one(std::get<I>(components_), ids, targets...), ...);
  }
  template <class C, class... Targets>
  static void prepare_one(C& c, std::span<const EnvId> ids, Targets&... targets) {
    if constexpr (requires { c.prepare_mc(ids, targets...); }) c.prepare_mc(ids, targets...);
  }
  template <std::size_t... I, class... Targets>
  void dispatch(const McAction& a, const std::vector<EnvId>& ids, std::index_sequence<I...>, Targets&... targets) {
    ((a.component == I ? std::get<I>(components_).apply_mc(a.local, std::span<const EnvId>(ids), targets...) : void()),
     ...);
  }

  std::tuple<Components...> components_;
  std::vector<McAction> all_;
  std::vector<std::size_t> active_;
  std::vector<std::vector<EnvId>> pending_;
};

//! Per-environment values keyed by environment id (not batch row): a new id gets a slot holding
//! `initial`, so the buffer grows as environments appear; reset(ids) returns them to `initial`.
template <class T>
class EnvBuffer {
public:
  explicit EnvBuffer(T initial = T{}) : initial_(std::move(initial)) {}
  [[nodiscard]] T& at(EnvId id) {
    const auto [it, inserted] = slots_.try_emplace(id, values_.size());
    if (inserted) values_.push_back(initial_);
    return values_[it->second];
  }
  [[nodiscard]] const T* find(EnvId id) const {
    const auto it = slots_.find(id);
    return it == slots_.end() ? nullptr : &values_[it->second];
  }
  [[nodiscard]] bool contains(EnvId id) const { return slots_.count(id) == 1; }
  [[nodiscard]] std::size_t size() const noexcept { return values_.size(); }
  void reset(std::span<const EnvId> ids) {
    for (const auto id : ids) {
      if (const auto it = slots_.find(id); it != slots_.end()) values_[it->second] = initial_;
    }
  }
  void reset_all() {
    for (auto& v : values_) v = initial_;
  }

private:
  T initial_;
  std::unordered_map<EnvId, std::size_t> slots_;
  std::vector<T> values_;
};

}  // namespace ssmrl::mc
