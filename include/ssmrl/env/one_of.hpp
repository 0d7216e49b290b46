// One environment type for several tasks chosen at run time: env::OneOf<E...> holds one of its
// alternatives and forwards to it, observing into the widest observation (zeros after the chosen
// task's own). A configuration can then change task without compiling its trainer again.
#pragma once

#include <algorithm>
#include <cstddef>
#include <span>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

#include "ssmrl/env/environment.hpp"

namespace ssmrl::env {

template <class... Es>
  requires(sizeof...(Es) > 0 && (enable_environment<Es> && ...))
class OneOf {
public:
  using State = std::variant<typename Es::State...>;
  //! The widest alternative's; a narrower task's observation is followed by zeros.
  static constexpr std::size_t observation_size = std::max({Es::observation_size...});
  static constexpr std::size_t action_size = std::max({Es::action_size...});
  static_assert(((Es::action_size == action_size) && ...), "env::OneOf: the alternatives' actions must be of one size");

  OneOf() = default;
  template <class E>
    requires(std::is_same_v<std::remove_cvref_t<E>, Es> || ...)
  OneOf(E&& env) : env_(std::forward<E>(env)) {}  // NOLINT(google-explicit-constructor): a task is a OneOf

  //! Which alternative this is (0 for the first of E...).
  [[nodiscard]] std::size_t index() const noexcept { return env_.index(); }
  [[nodiscard]] std::string_view id() const {
    return std::visit([](const auto& e) { return std::string_view(e.id()); }, env_);
  }
  //! The alternative's space; a box is widened to `observation_size` with [0, 0] bounds.
  [[nodiscard]] Space observation_space() const {
    Space s = std::visit([](const auto& e) { return e.observation_space(); }, env_);
    if (s.kind == Space::Kind::box) {
      s.low.resize(observation_size, 0.0f);
      s.high.resize(observation_size, 0.0f);
    }
    return s;
  }
  [[nodiscard]] Space action_space() const {
    return std::visit([](const auto& e) { return e.action_space(); }, env_);
  }
  [[nodiscard]] int max_episode_steps() const {
    return std::visit([](const auto& e) { return e.max_episode_steps(); }, env_);
  }
  [[nodiscard]] int elapsed_steps() const {
    return std::visit([](const auto& e) { return e.elapsed_steps(); }, env_);
  }
  [[nodiscard]] bool needs_reset() const {
    return std::visit([](const auto& e) { return e.needs_reset(); }, env_);
  }

  template <class Rng>
  void reset(Rng& rng) {
    std::visit([&rng](auto& e) { e.reset(rng); }, env_);
  }
  StepResult step(std::span<const float> action) {
    return std::visit([action](auto& e) { return e.step(action); }, env_);
  }
  void observe(std::span<float> out) const {
    SSMRL_REQUIRE(out.size() >= observation_size, "env::OneOf::observe: out has ", out.size(), " values, expected ",
                  observation_size);
    std::visit(
        [out](const auto& e) {
          constexpr std::size_t own = std::remove_cvref_t<decltype(e)>::observation_size;
          e.observe(out.first(own));
          std::fill(out.begin() + static_cast<std::ptrdiff_t>(own),
                    out.begin() + static_cast<std::ptrdiff_t>(observation_size), 0.0f);
        },
        env_);
  }

  [[nodiscard]] State state() const { return state_of(std::index_sequence_for<Es...>{}); }
  //! Puts the chosen task in `s`, which must be a state of that task.
  void set_state(const State& s, int elapsed_steps = 0) {
    SSMRL_REQUIRE(s.index() == env_.index(), "env::OneOf::set_state: the state is of alternative ", s.index(),
                  ", the environment (", id(), ") is alternative ", env_.index());
    set_state_of(s, elapsed_steps, std::index_sequence_for<Es...>{});
  }

private:
  // By index, not type: alternatives may share a state type (CartPole and PositionOnlyCartPole).
  template <std::size_t... I>
  State state_of(std::index_sequence<I...>) const {
    State s;
    ((env_.index() == I ? static_cast<void>(s.template emplace<I>(std::get<I>(env_).state())) : void()), ...);
    return s;
  }
  template <std::size_t... I>
  void set_state_of(const State& s, int elapsed_steps, std::index_sequence<I...>) {
    ((env_.index() == I ? std::get<I>(env_).set_state(std::get<I>(s), elapsed_steps) : void()), ...);
  }

  std::variant<Es...> env_;
};

template <class... Es>
inline constexpr bool enable_environment<OneOf<Es...>> = true;

}  // namespace ssmrl::env
