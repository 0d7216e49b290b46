// Acrobot-v1, as Gymnasium 1.x computes it: the book's dynamics, one fourth-order Runge-Kutta step
// of 0.2 s, angles wrapped to [-pi, pi], velocities bounded, 500-step limit.
#pragma once

#include <algorithm>
#include <array>
#include <numbers>

#include "ssmrl/env/environment.hpp"

namespace ssmrl::env {

class Acrobot : public EpisodicState<std::array<double, 4>> {
public:
  using State = std::array<double, 4>;  //!< theta1, theta2, dtheta1, dtheta2
  static constexpr std::size_t observation_size = 6;
  static constexpr std::size_t action_size = 1;
  static constexpr int default_max_episode_steps = 500;
  static constexpr double dt = 0.2;
  static constexpr double max_vel_1 = 4 * std::numbers::pi;
  static constexpr double max_vel_2 = 9 * std::numbers::pi;

  explicit Acrobot(int max_episode_steps = default_max_episode_steps) : EpisodicState(max_episode_steps) {}

  [[nodiscard]] std::string_view id() const { return "Acrobot-v1"; }
  [[nodiscard]] Space observation_space() const {
    const auto v1 = static_cast<float>(max_vel_1);
    const auto v2 = static_cast<float>(max_vel_2);
    return Space::box({-1, -1, -1, -1, -v1, -v2}, {1, 1, 1, 1, v1, v2});
  }
  [[nodiscard]] Space action_space() const { return Space::discrete(3); }

  //! Each state variable uniform in [-0.1, 0.1], rounded to float32 as Gymnasium does.
  template <class Rng>
  void reset(Rng& rng) {
    std::uniform_real_distribution<double> u(-0.1, 0.1);
    for (auto& s : state_) s = static_cast<double>(static_cast<float>(u(rng)));
    clock_.restart();
  }

  StepResult step(std::span<const float> action) { return step(detail::discrete_action(id(), action, 3)); }

  SSMRL_EXACT_FP_FUNCTION StepResult step(int action) {
    SSMRL_EXACT_FP
    SSMRL_REQUIRE(action >= 0 && action <= 2, "Acrobot-v1::step: action ", action, " is not one of 0..2");
    clock_.check_can_step(id());
    const double torque = static_cast<double>(action) - 1.0;
    using V = std::array<double, 4>;
    auto add = [](const V& y, double h, const V& k) {
      return V{y[0] + h * k[0], y[1] + h * k[1], y[2] + h * k[2], y[3] + h * k[3]};
    };
    const V y0 = state_;
    const double h = dt - 0.0;
    const double h2 = h / 2.0;
    const V k1 = derivatives(y0, torque);
    const V k2 = derivatives(add(y0, h2, k1), torque);
    const V k3 = derivatives(add(y0, h2, k2), torque);
    const V k4 = derivatives(add(y0, h, k3), torque);
    V ns;
    for (int i = 0; i < 4; ++i) ns[i] = y0[i] + h / 6.0 * (k1[i] + 2 * k2[i] + 2 * k3[i] + k4[i]);
    ns[0] = wrap(ns[0]);
    ns[1] = wrap(ns[1]);
    ns[2] = std::min(std::max(ns[2], -max_vel_1), max_vel_1);
    ns[3] = std::min(std::max(ns[3], -max_vel_2), max_vel_2);
    state_ = ns;
    const bool terminated = -std::cos(ns[0]) - std::cos(ns[1] + ns[0]) > 1.0;
    return clock_.finish(terminated ? 0.0 : -1.0, terminated);
  }

  void observe(std::span<float> out) const {
    out[0] = static_cast<float>(std::cos(state_[0]));
    out[1] = static_cast<float>(std::sin(state_[0]));
    out[2] = static_cast<float>(std::cos(state_[1]));
    out[3] = static_cast<float>(std::sin(state_[1]));
    out[4] = static_cast<float>(state_[2]);
    out[5] = static_cast<float>(state_[3]);
  }

private:
  static double wrap(double x) {
    constexpr double lo = -std::numbers::pi;
    constexpr double hi = std::numbers::pi;
    constexpr double span = hi - lo;
    while (x > hi) x = x - span;
    while (x < lo) x = x + span;
    return x;
  }

  // The book's equations, in Gymnasium's order of operations.
  SSMRL_EXACT_FP_FUNCTION static std::array<double, 4> derivatives(const std::array<double, 4>& s, double a) {
    SSMRL_EXACT_FP
    constexpr double m1 = 1.0, m2 = 1.0, l1 = 1.0, lc1 = 0.5, lc2 = 0.5, I1 = 1.0, I2 = 1.0, g = 9.8;
    constexpr double pi = std::numbers::pi;
    const double theta1 = s[0], theta2 = s[1], dtheta1 = s[2], dtheta2 = s[3];
    const double d1 = m1 * (lc1 * lc1) + m2 * ((l1 * l1) + (lc2 * lc2) + 2 * l1 * lc2 * std::cos(theta2)) + I1 + I2;
    const double d2 = m2 * ((lc2 * lc2) + l1 * lc2 * std::cos(theta2)) + I2;
    const double phi2 = m2 * lc2 * g * std::cos(theta1 + theta2 - pi / 2.0);
    const double phi1 = -m2 * l1 * lc2 * (dtheta2 * dtheta2) * std::sin(theta2) -
                        2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * std::sin(theta2) +
                        (m1 * lc1 + m2 * l1) * g * std::cos(theta1 - pi / 2) + phi2;
    const double ddtheta2 =
        (a + d2 / d1 * phi1 - m2 * l1 * lc2 * (dtheta1 * dtheta1) * std::sin(theta2) - phi2) /
        (m2 * (lc2 * lc2) + I2 - (d2 * d2) / d1);
    const double ddtheta1 = -(d2 * ddtheta2 + phi1) / d1;
    return {dtheta1, dtheta2, ddtheta1, ddtheta2};
  }

};

template <>
inline constexpr bool enable_environment<Acrobot> = true;

}  // namespace ssmrl::env
