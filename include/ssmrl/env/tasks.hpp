// Meta-RL task families: distributions over tasks of one environment type, each with a held-out set
// that training never samples from (the sampler rejects tasks near any held-out one).
#pragma once

#include <algorithm>
#include <array>
#include <concepts>
#include <random>
#include <vector>

#include "ssmrl/env/cartpole.hpp"
#include "ssmrl/env/navigation.hpp"
#include "ssmrl/env/pendulum.hpp"

namespace ssmrl::env {

//! A TaskDistribution names its environment and task types, samples training tasks from a
//! generator, gives its held-out tasks, and sets a task on an environment.
//! `G` is the generator that sample() must accept (any uniform random bit generator).
template <class D, class G = std::mt19937_64>
concept TaskDistribution = std::uniform_random_bit_generator<G> &&
                           requires(const D& d, G& rng, typename D::env_type& env, const typename D::task_type& task) {
  typename D::env_type;
  typename D::task_type;
  { d.sample(rng) } -> std::same_as<typename D::task_type>;
  { d.held_out() } -> std::convertible_to<const std::vector<typename D::task_type>&>;
  { d.is_held_out(task) } -> std::same_as<bool>;
  D::apply(env, task);
};

namespace detail {

// Tasks as points in a box; a task is "near" a held-out one when every coordinate, scaled to the
// box, is within `radius`.
template <std::size_t N>
class BoxTasks {
public:
  using Point = std::array<double, N>;
  BoxTasks(Point lo, Point hi, std::size_t held_out_count, std::uint64_t held_out_seed, double radius)
      : lo_(lo), hi_(hi), radius_(radius) {
    for (std::size_t i = 0; i < N; ++i) {
      SSMRL_REQUIRE(lo[i] < hi[i], "env task range ", i, ": [", lo[i], ", ", hi[i], "] is empty");
    }
    SSMRL_REQUIRE(radius >= 0 && radius < 0.25, "env task exclusion radius ", radius, " must be in [0, 0.25)");
    std::mt19937_64 rng(held_out_seed);
    for (std::size_t k = 0; k < held_out_count; ++k) held_out_.push_back(uniform(rng));
    // Feasibility: the fraction of the box outside every exclusion zone, estimated on a fixed sample.
    std::mt19937_64 probe(0x5eed);
    std::size_t accepted = 0;
    for (std::size_t k = 0; k < feasibility_samples; ++k) accepted += near_held_out(uniform(probe)) ? 0 : 1;
    SSMRL_REQUIRE(accepted >= min_feasible_accepted, "env task distribution: ", held_out_count,
                  " held-out tasks with exclusion radius ", radius, " leave about ",
                  100.0 * static_cast<double>(accepted) / static_cast<double>(feasibility_samples),
                  "% of the task range for training (", accepted, " of ", feasibility_samples,
                  " probes); fewer held-out tasks or a smaller exclusion radius are needed");
  }
  //! A task of the box that is not near any held-out one; throws ssmrl::InvalidArgument after
  //! max_sample_attempts draws (which the feasibility check makes all but impossible).
  template <class Rng>
  Point sample(Rng& rng) const {
    for (std::size_t attempt = 0; attempt < max_sample_attempts; ++attempt) {
      const Point p = uniform(rng);
      if (!near_held_out(p)) return p;
    }
    SSMRL_THROW(::ssmrl::InvalidArgument,
                ::ssmrl::detail::message("env task distribution: no task away from the ", held_out_.size(),
                                         " held-out ones in ", max_sample_attempts, " draws (exclusion radius ",
                                         radius_, ")"));
  }
  static constexpr std::size_t feasibility_samples = 10000;
  //! At least 0.1% of the probes must be away from the held-out tasks.
  static constexpr std::size_t min_feasible_accepted = 10;
  static constexpr std::size_t max_sample_attempts = 1000000;
  [[nodiscard]] bool near_held_out(const Point& p) const {
    return std::any_of(held_out_.begin(), held_out_.end(), [&](const Point& h) {
      for (std::size_t i = 0; i < N; ++i) {
        if (std::abs(p[i] - h[i]) > radius_ * (hi_[i] - lo_[i])) return false;
      }
      return true;
    });
  }
  [[nodiscard]] const std::vector<Point>& held_out_points() const { return held_out_; }
  [[nodiscard]] const Point& low() const { return lo_; }
  [[nodiscard]] const Point& high() const { return hi_; }

private:
  template <class Rng>
  Point uniform(Rng& rng) const {
    Point p;
    for (std::size_t i = 0; i < N; ++i) p[i] = std::uniform_real_distribution<double>(lo_[i], hi_[i])(rng);
    return p;
  }
  Point lo_;
  Point hi_;
  double radius_;
  std::vector<Point> held_out_;
};

}  // namespace detail

struct TaskSetOptions {
  std::size_t held_out_count = 40;  //!< the MAML paper evaluates on 40 goals
  std::uint64_t held_out_seed = 20170309;
  double exclusion_radius = 0.02;  //!< as a fraction of each range
};

//! Goals uniform in [-0.5, 0.5]^2.
class Navigation2DTasks {
public:
  using env_type = Navigation2D;
  using task_type = Navigation2DTask;
  explicit Navigation2DTasks(TaskSetOptions o = {})
      : box_({-0.5, -0.5}, {0.5, 0.5}, o.held_out_count, o.held_out_seed, o.exclusion_radius) {
    for (const auto& p : box_.held_out_points()) held_out_.push_back({p});
  }
  template <class Rng>
  [[nodiscard]] task_type sample(Rng& rng) const { return {box_.sample(rng)}; }
  [[nodiscard]] const std::vector<task_type>& held_out() const { return held_out_; }
  [[nodiscard]] bool is_held_out(const task_type& t) const { return box_.near_held_out(t.goal); }
  static void apply(env_type& env, const task_type& t) { env.set_task(t); }

private:
  detail::BoxTasks<2> box_;
  std::vector<task_type> held_out_;
};

//! CartPole with varied physics, each uniform over its range: half pole length [0.25, 0.75] m,
//! pole mass [0.05, 0.2] kg, cart mass [0.5, 2] kg, gravity [7, 12] m/s^2, force [5, 15] N
//! (Gymnasium's values, 0.5, 0.1, 1, 9.8 and 10, lie inside).
class CartPoleTasks {
public:
  using env_type = CartPole;
  using task_type = CartPolePhysics;
  explicit CartPoleTasks(TaskSetOptions o = {})
      : box_({0.25, 0.05, 0.5, 7.0, 5.0}, {0.75, 0.2, 2.0, 12.0, 15.0}, o.held_out_count, o.held_out_seed,
             o.exclusion_radius) {
    for (const auto& p : box_.held_out_points()) held_out_.push_back(to_task(p));
  }
  template <class Rng>
  [[nodiscard]] task_type sample(Rng& rng) const { return to_task(box_.sample(rng)); }
  [[nodiscard]] const std::vector<task_type>& held_out() const { return held_out_; }
  [[nodiscard]] bool is_held_out(const task_type& t) const {
    return box_.near_held_out({t.length, t.masspole, t.masscart, t.gravity, t.force_mag});
  }
  static void apply(env_type& env, const task_type& t) { env.set_physics(t); }

private:
  static task_type to_task(const std::array<double, 5>& p) {
    return {.gravity = p[3], .masscart = p[2], .masspole = p[1], .length = p[0], .force_mag = p[4]};
  }
  detail::BoxTasks<5> box_;
  std::vector<task_type> held_out_;
};

//! Pendulum with varied physics: mass [0.5, 2] kg, length [0.5, 1.5] m, gravity [8, 12] m/s^2.
class PendulumTasks {
public:
  using env_type = Pendulum;
  using task_type = PendulumPhysics;
  explicit PendulumTasks(TaskSetOptions o = {})
      : box_({0.5, 0.5, 8.0}, {2.0, 1.5, 12.0}, o.held_out_count, o.held_out_seed, o.exclusion_radius) {
    for (const auto& p : box_.held_out_points()) held_out_.push_back({.g = p[2], .m = p[0], .l = p[1]});
  }
  template <class Rng>
  [[nodiscard]] task_type sample(Rng& rng) const {
    const auto p = box_.sample(rng);
    return {.g = p[2], .m = p[0], .l = p[1]};
  }
  [[nodiscard]] const std::vector<task_type>& held_out() const { return held_out_; }
  [[nodiscard]] bool is_held_out(const task_type& t) const { return box_.near_held_out({t.m, t.l, t.g}); }
  static void apply(env_type& env, const task_type& t) { env.set_physics(t); }

private:
  detail::BoxTasks<3> box_;
  std::vector<task_type> held_out_;
};

}  // namespace ssmrl::env
