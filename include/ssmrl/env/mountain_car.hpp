// MountainCar-v0 and MountainCarContinuous-v0, as Gymnasium 1.x computes them. The continuous
// one stores its state as float32 after every step (NumPy 1.x rules), and its reward uses the
// unclipped action.
#pragma once

#include <algorithm>
#include <array>
#include <random>
#include <span>

#include "ssmrl/env/environment.hpp"

namespace ssmrl::env {

namespace detail {

// What the two MountainCars share: the track, the start distribution and the observation.
class MountainCarTrack : public EpisodicState<std::array<double, 2>> {
public:
  using State = std::array<double, 2>;  //!< position, velocity
  static constexpr std::size_t observation_size = 2;
  static constexpr std::size_t action_size = 1;
  static constexpr double min_position = -1.2;
  static constexpr double max_position = 0.6;
  static constexpr double max_speed = 0.07;
  static constexpr double goal_velocity = 0;

  [[nodiscard]] Space observation_space() const { return Space::box({-1.2f, -0.07f}, {0.6f, 0.07f}); }

  //! Position uniform in [-0.6, -0.4], velocity 0.
  template <class Rng>
  void reset(Rng& rng) {
    state_ = {std::uniform_real_distribution<double>(-0.6, -0.4)(rng), 0.0};
    clock_.restart();
  }

  void observe(std::span<float> out) const {
    out[0] = static_cast<float>(state_[0]);
    out[1] = static_cast<float>(state_[1]);
  }

protected:
  using EpisodicState::EpisodicState;
};

}  // namespace detail

class MountainCar : public detail::MountainCarTrack {
public:
  static constexpr int default_max_episode_steps = 200;
  static constexpr double goal_position = 0.5;
  static constexpr double force = 0.001;
  static constexpr double gravity = 0.0025;

  explicit MountainCar(int max_episode_steps = default_max_episode_steps) : MountainCarTrack(max_episode_steps) {}

  [[nodiscard]] std::string_view id() const { return "MountainCar-v0"; }
  [[nodiscard]] Space action_space() const { return Space::discrete(3); }

  StepResult step(std::span<const float> action) { return step(detail::discrete_action(id(), action, 3)); }

  SSMRL_EXACT_FP_FUNCTION StepResult step(int action) {
    SSMRL_EXACT_FP
    SSMRL_REQUIRE(action >= 0 && action <= 2, "MountainCar-v0::step: action ", action, " is not one of 0..2");
    clock_.check_can_step(id());
    auto [position, velocity] = state_;
    velocity = velocity + ((action - 1) * force + std::cos(3 * position) * (-gravity));
    velocity = std::clamp(velocity, -max_speed, max_speed);
    position = position + velocity;
    position = std::clamp(position, min_position, max_position);
    if (position == min_position && velocity < 0) velocity = 0;
    state_ = {position, velocity};
    return clock_.finish(-1.0, position >= goal_position && velocity >= goal_velocity);
  }
};

//! Its state holds float32 values after every step.
class MountainCarContinuous : public detail::MountainCarTrack {
public:
  static constexpr int default_max_episode_steps = 999;
  static constexpr double min_action = -1.0;
  static constexpr double max_action = 1.0;
  static constexpr double goal_position = 0.45;
  static constexpr double power = 0.0015;

  explicit MountainCarContinuous(int max_episode_steps = default_max_episode_steps) : MountainCarTrack(max_episode_steps) {}

  [[nodiscard]] std::string_view id() const { return "MountainCarContinuous-v0"; }
  [[nodiscard]] Space action_space() const { return Space::box({-1}, {1}); }

  StepResult step(std::span<const float> action) { return step(detail::continuous_action(id(), action)); }

  SSMRL_EXACT_FP_FUNCTION StepResult step(float action) {
    SSMRL_EXACT_FP
    SSMRL_REQUIRE(!std::isnan(action), "MountainCarContinuous-v0::step: action is NaN");
    clock_.check_can_step(id());
    auto [position, velocity] = state_;
    const double force = std::min(std::max(static_cast<double>(action), min_action), max_action);
    velocity = velocity + (force * power - 0.0025 * std::cos(3 * position));
    if (velocity > max_speed) velocity = max_speed;
    if (velocity < -max_speed) velocity = -max_speed;
    position = position + velocity;
    if (position > max_position) position = max_position;
    if (position < min_position) position = min_position;
    if (position == min_position && velocity < 0) velocity = 0;
    const bool terminated = position >= goal_position && velocity >= goal_velocity;
    const double a = static_cast<double>(action);
    const double reward = (terminated ? 100.0 : 0.0) - (a * a) * 0.1;
    state_ = {static_cast<double>(static_cast<float>(position)), static_cast<double>(static_cast<float>(velocity))};
    return clock_.finish(reward, terminated);
  }
};

template <>
inline constexpr bool enable_environment<MountainCar> = true;
template <>
inline constexpr bool enable_environment<MountainCarContinuous> = true;

}  // namespace ssmrl::env
