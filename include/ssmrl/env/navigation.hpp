// Navigation2D, the point robot of the MAML paper: the observation is the position only (the goal
// is hidden; adaptation must find it), start at the origin, the action a velocity clipped to
// [-0.1, 0.1] per coordinate, the reward minus the distance to the goal after the move, done within
// 0.01 of the goal in both coordinates or after 100 steps.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>

#include "ssmrl/env/environment.hpp"

namespace ssmrl::env {

struct Navigation2DTask {
  std::array<double, 2> goal{0.0, 0.0};
  friend bool operator==(const Navigation2DTask&, const Navigation2DTask&) = default;
};

class Navigation2D : public EpisodicState<std::array<double, 2>> {
public:
  using State = std::array<double, 2>;  //!< position
  using task_type = Navigation2DTask;
  static constexpr std::size_t observation_size = 2;
  static constexpr std::size_t action_size = 2;
  static constexpr int default_max_episode_steps = 100;
  static constexpr double max_velocity = 0.1;
  static constexpr double goal_tolerance = 0.01;

  explicit Navigation2D(Navigation2DTask task = {}, int max_episode_steps = default_max_episode_steps)
      : EpisodicState(max_episode_steps), task_(task) {}

  [[nodiscard]] std::string_view id() const { return "Navigation2D"; }
  [[nodiscard]] Space observation_space() const {
    constexpr float big = std::numeric_limits<float>::infinity();
    return Space::box({-big, -big}, {big, big});
  }
  [[nodiscard]] Space action_space() const { return Space::box({-0.1f, -0.1f}, {0.1f, 0.1f}); }

  [[nodiscard]] const Navigation2DTask& task() const { return task_; }
  //! A new goal applies from the next reset.
  void set_task(const Navigation2DTask& task) {
    SSMRL_REQUIRE(std::isfinite(task.goal[0]) && std::isfinite(task.goal[1]), "Navigation2D::set_task: goal (",
                  task.goal[0], ", ", task.goal[1], ") is not finite");
    task_ = task;
  }

  //! Starts at the origin; the generator is not used (the task fixes everything).
  template <class Rng>
  void reset(Rng&) {
    state_ = {0.0, 0.0};
    clock_.restart();
  }

  StepResult step(std::span<const float> action) {
    SSMRL_REQUIRE(action.size() == 2, "Navigation2D::step: action has ", action.size(), " values, expected 2");
    SSMRL_REQUIRE(!std::isnan(action[0]) && !std::isnan(action[1]), "Navigation2D::step: action (", action[0], ", ",
                  action[1], ") has a NaN");
    clock_.check_can_step(id());
    for (int i = 0; i < 2; ++i) {
      state_[i] += std::clamp(static_cast<double>(action[i]), -max_velocity, max_velocity);
    }
    const double dx = state_[0] - task_.goal[0];
    const double dy = state_[1] - task_.goal[1];
    const bool reached = std::abs(dx) < goal_tolerance && std::abs(dy) < goal_tolerance;
    return clock_.finish(-std::sqrt(dx * dx + dy * dy), reached);
  }

  void observe(std::span<float> out) const {
    out[0] = static_cast<float>(state_[0]);
    out[1] = static_cast<float>(state_[1]);
  }

private:
  Navigation2DTask task_;
};

template <>
inline constexpr bool enable_environment<Navigation2D> = true;

}  // namespace ssmrl::env
