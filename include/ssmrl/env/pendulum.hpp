// Pendulum-v1, as Gymnasium 1.x computes it (the float32 torque, clipped to [-2, 2], enters float64
// arithmetic; 200-step limit), with mass, length and gravity open to change for task families.
#pragma once

#include <algorithm>
#include <array>
#include <numbers>

#include "ssmrl/env/environment.hpp"

namespace ssmrl::env {

struct PendulumPhysics {
  double g = 10.0;
  double m = 1.0;
  double l = 1.0;
};

class Pendulum : public EpisodicState<std::array<double, 2>> {
public:
  using State = std::array<double, 2>;  //!< theta, theta_dot
  static constexpr std::size_t observation_size = 3;
  static constexpr std::size_t action_size = 1;
  static constexpr int default_max_episode_steps = 200;
  static constexpr double max_speed = 8;
  static constexpr double max_torque = 2.0;
  static constexpr double dt = 0.05;

  explicit Pendulum(PendulumPhysics physics = {}, int max_episode_steps = default_max_episode_steps)
      : EpisodicState(max_episode_steps) {
    set_physics(physics);
  }

  [[nodiscard]] std::string_view id() const { return "Pendulum-v1"; }
  [[nodiscard]] Space observation_space() const { return Space::box({-1, -1, -8}, {1, 1, 8}); }
  [[nodiscard]] Space action_space() const { return Space::box({-2}, {2}); }

  [[nodiscard]] const PendulumPhysics& physics() const { return physics_; }
  void set_physics(const PendulumPhysics& p) {
    SSMRL_REQUIRE(p.g > 0 && p.m > 0 && p.l > 0, "Pendulum::set_physics: g ", p.g, ", m ", p.m, ", l ", p.l,
                  " must all be positive");
    physics_ = p;
  }

  //! theta uniform in [-pi, pi], theta_dot in [-1, 1].
  template <class Rng>
  void reset(Rng& rng) {
    std::uniform_real_distribution<double> angle(-std::numbers::pi, std::numbers::pi);
    std::uniform_real_distribution<double> speed(-1.0, 1.0);
    state_[0] = angle(rng);
    state_[1] = speed(rng);
    clock_.restart();
  }

  StepResult step(std::span<const float> action) { return step(detail::continuous_action(id(), action)); }

  SSMRL_EXACT_FP_FUNCTION StepResult step(float torque) {
    SSMRL_EXACT_FP
    SSMRL_REQUIRE(!std::isnan(torque), "Pendulum-v1::step: action is NaN");
    clock_.check_can_step(id());
    const auto [th, thdot] = state_;
    const double g = physics_.g, m = physics_.m, l = physics_.l;
    // Clipped in float32, then used in float64, as NumPy 1.x promotes a float32 scalar.
    const double u = static_cast<double>(std::clamp(torque, -2.0f, 2.0f));
    const double norm = detail::python_mod(th + std::numbers::pi, 2 * std::numbers::pi) - std::numbers::pi;
    const double costs = norm * norm + 0.1 * (thdot * thdot) + 0.001 * (u * u);
    double newthdot = thdot + (3 * g / (2 * l) * std::sin(th) + 3.0 / (m * (l * l)) * u) * dt;
    newthdot = std::clamp(newthdot, -max_speed, max_speed);
    const double newth = th + newthdot * dt;
    state_ = {newth, newthdot};
    return clock_.finish(-costs, false);
  }

  void observe(std::span<float> out) const {
    out[0] = static_cast<float>(std::cos(state_[0]));
    out[1] = static_cast<float>(std::sin(state_[0]));
    out[2] = static_cast<float>(state_[1]);
  }

private:
  PendulumPhysics physics_;
};

template <>
inline constexpr bool enable_environment<Pendulum> = true;

}  // namespace ssmrl::env
