// CartPole-v1, as Gymnasium 1.x computes it (Euler integration, float64 state, float32
// observations, reward 1 every step, 500-step limit), with its physics open to change for task
// families.
#pragma once

#include <array>
#include <numbers>

#include "ssmrl/env/environment.hpp"

namespace ssmrl::env {

struct CartPolePhysics {
  double gravity = 9.8;
  double masscart = 1.0;
  double masspole = 0.1;
  double length = 0.5;  //!< half the pole's length
  double force_mag = 10.0;
};

class CartPole : public EpisodicState<std::array<double, 4>> {
public:
  using State = std::array<double, 4>;  //!< x, x_dot, theta, theta_dot
  static constexpr std::size_t observation_size = 4;
  static constexpr std::size_t action_size = 1;
  static constexpr int default_max_episode_steps = 500;
  static constexpr double tau = 0.02;
  static constexpr double x_threshold = 2.4;
  static constexpr double theta_threshold = 12 * 2 * std::numbers::pi / 360;

  explicit CartPole(CartPolePhysics physics = {}, int max_episode_steps = default_max_episode_steps)
      : EpisodicState(max_episode_steps) {
    set_physics(physics);
  }

  [[nodiscard]] std::string_view id() const { return "CartPole-v1"; }
  [[nodiscard]] Space observation_space() const {
    constexpr float big = std::numeric_limits<float>::max();
    const auto x = static_cast<float>(x_threshold * 2);
    const auto t = static_cast<float>(theta_threshold * 2);
    return Space::box({-x, -big, -t, -big}, {x, big, t, big});
  }
  [[nodiscard]] Space action_space() const { return Space::discrete(2); }

  [[nodiscard]] const CartPolePhysics& physics() const { return physics_; }
  //! New physics apply from the next step; every value must be positive.
  void set_physics(const CartPolePhysics& p) {
    SSMRL_REQUIRE(p.gravity > 0 && p.masscart > 0 && p.masspole > 0 && p.length > 0 && p.force_mag > 0,
                  "CartPole::set_physics: gravity ", p.gravity, ", masscart ", p.masscart, ", masspole ", p.masspole,
                  ", length ", p.length, ", force_mag ", p.force_mag, " must all be positive");
    physics_ = p;
    total_mass_ = p.masspole + p.masscart;
    polemass_length_ = p.masspole * p.length;
  }

  //! Each state variable uniform in [-0.05, 0.05].
  template <class Rng>
  void reset(Rng& rng) {
    std::uniform_real_distribution<double> u(-0.05, 0.05);
    for (auto& s : state_) s = u(rng);
    clock_.restart();
  }

  StepResult step(std::span<const float> action) { return step(detail::discrete_action(id(), action, 2)); }

  SSMRL_EXACT_FP_FUNCTION StepResult step(int action) {
    SSMRL_EXACT_FP
    SSMRL_REQUIRE(action == 0 || action == 1, "CartPole-v1::step: action ", action, " is not 0 or 1");
    clock_.check_can_step(id());
    auto [x, x_dot, theta, theta_dot] = state_;
    const double force = action == 1 ? physics_.force_mag : -physics_.force_mag;
    const double costheta = std::cos(theta);
    const double sintheta = std::sin(theta);
    const double temp = (force + polemass_length_ * (theta_dot * theta_dot) * sintheta) / total_mass_;
    const double thetaacc = (physics_.gravity * sintheta - costheta * temp) /
                            (physics_.length * (4.0 / 3.0 - physics_.masspole * (costheta * costheta) / total_mass_));
    const double xacc = temp - polemass_length_ * thetaacc * costheta / total_mass_;
    x = x + tau * x_dot;
    x_dot = x_dot + tau * xacc;
    theta = theta + tau * theta_dot;
    theta_dot = theta_dot + tau * thetaacc;
    state_ = {x, x_dot, theta, theta_dot};
    const bool terminated = x < -x_threshold || x > x_threshold || theta < -theta_threshold || theta > theta_threshold;
    return clock_.finish(1.0, terminated);
  }

  void observe(std::span<float> out) const {
    for (std::size_t i = 0; i < 4; ++i) out[i] = static_cast<float>(state_[i]);
  }

private:
  CartPolePhysics physics_;
  double total_mass_ = 0;
  double polemass_length_ = 0;
};

template <>
inline constexpr bool enable_environment<CartPole> = true;

}  // namespace ssmrl::env
