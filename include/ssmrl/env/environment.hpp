// What every environment shares: spaces, step results, the Environment concept, and the guard
// against fused multiply-adds that exact reproduction of Gymnasium's float64 arithmetic needs.
#pragma once

#include <cmath>
#include <concepts>
#include <cstdint>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ssmrl/core/error.hpp"

// Gymnasium computes a * b + c as two roundings; a fused multiply-add rounds once. Environment
// dynamics are compiled without contraction, whatever -ffp-contract the including program uses.
#if defined(__clang__)
#define SSMRL_EXACT_FP _Pragma("clang fp contract(off)")
#define SSMRL_EXACT_FP_FUNCTION
#elif defined(__GNUC__)
#define SSMRL_EXACT_FP
#define SSMRL_EXACT_FP_FUNCTION __attribute__((optimize("fp-contract=off")))
#else
#define SSMRL_EXACT_FP
#define SSMRL_EXACT_FP_FUNCTION
#endif

namespace ssmrl::env {

//! An observation or action space: a finite set {0, ..., n - 1} or a box of float32 bounds.
struct Space {
  enum class Kind { discrete, box };
  Kind kind = Kind::box;
  int n = 0;                //!< discrete: number of actions
  std::vector<float> low;   //!< box: lower bounds, one per dimension
  std::vector<float> high;  //!< box: upper bounds
  [[nodiscard]] std::size_t size() const { return kind == Kind::discrete ? 1 : low.size(); }
  static Space discrete(int count) { return {Kind::discrete, count, {}, {}}; }
  static Space box(std::vector<float> lo, std::vector<float> hi) { return {Kind::box, 0, std::move(lo), std::move(hi)}; }
};

struct StepResult {
  double reward = 0;
  bool terminated = false;  //!< the task ended (success or failure)
  bool truncated = false;   //!< the time limit ended the episode
  [[nodiscard]] bool done() const { return terminated || truncated; }
};

//! Opt-in: a type is an Environment only when it says so, as well as having the members.
template <class E>
inline constexpr bool enable_environment = false;

//! An Environment has
//!  - `id()` (the Gymnasium id), `observation_space()`, `action_space()`, `observation_size`,
//!    `action_size`, `max_episode_steps()`;
//!  - `reset(rng)` (Gymnasium's start distribution), `step(action)` with the action as a span of
//!    floats (a discrete action is its index), `observe(out)` writing float32 observations;
//!  - `state()` / `set_state(state, elapsed_steps)`, `elapsed_steps()`, `needs_reset()`;
//!  - `enable_environment<E>` true.
//! `G` is the generator that reset() must accept (any uniform random bit generator; the library's
//! environments take every one).
template <class E, class G = std::mt19937_64>
concept Environment = enable_environment<E> && std::uniform_random_bit_generator<G> &&
    requires(E& env, const E& cenv, G& rng, std::span<const float> action, std::span<float> out,
             const typename E::State& state) {
      { E::observation_size } -> std::convertible_to<std::size_t>;
      { E::action_size } -> std::convertible_to<std::size_t>;
      { cenv.id() } -> std::convertible_to<std::string_view>;
      { cenv.observation_space() } -> std::same_as<Space>;
      { cenv.action_space() } -> std::same_as<Space>;
      { cenv.max_episode_steps() } -> std::same_as<int>;
      env.reset(rng);
      { env.step(action) } -> std::same_as<StepResult>;
      cenv.observe(out);
      { cenv.state() } -> std::convertible_to<const typename E::State&>;
      env.set_state(state, 0);
      { cenv.elapsed_steps() } -> std::same_as<int>;
      { cenv.needs_reset() } -> std::same_as<bool>;
    };

//! Episode bookkeeping for an environment of your own: the step count against the time limit, and
//! whether the episode has ended. step() calls check_can_step() first and returns finish(reward,
//! terminated), which counts the step and sets the truncation flag; reset() calls restart().
class EpisodeClock {
public:
  explicit EpisodeClock(int max_steps) : max_steps_(max_steps) {
    SSMRL_REQUIRE(max_steps > 0, "env: max_episode_steps ", max_steps, " must be positive");
  }
  [[nodiscard]] int elapsed() const { return elapsed_; }
  [[nodiscard]] int max_steps() const { return max_steps_; }
  [[nodiscard]] bool needs_reset() const { return needs_reset_; }
  void restart(int elapsed = 0) {
    SSMRL_REQUIRE(elapsed >= 0, "env::set_state: elapsed_steps ", elapsed, " is negative");
    elapsed_ = elapsed;
    needs_reset_ = false;
  }
  void check_can_step(std::string_view id) const {
    if (needs_reset_) {
      SSMRL_THROW(::ssmrl::UsageError,
                  ::ssmrl::detail::message(id, "::step: the episode has ended; call reset() or set_state() first"));
    }
  }
  //! Counts the step and fills in the flags.
  StepResult finish(double reward, bool terminated) {
    ++elapsed_;
    StepResult r{reward, terminated, elapsed_ >= max_steps_};
    needs_reset_ = r.done();
    return r;
  }

private:
  int max_steps_;
  int elapsed_ = 0;
  bool needs_reset_ = true;
};

//! The state, the clock and the Environment concept's accessors of both (set_state(), state(),
//! elapsed_steps(), needs_reset(), max_episode_steps()): an environment of your own derives from
//! EpisodicState<its state type> and uses `state_` and `clock_`.
template <class StateT>
class EpisodicState {
public:
  using State = StateT;
  explicit EpisodicState(int max_episode_steps) : clock_(max_episode_steps) {}
  //! Puts the environment in `s` with `elapsed_steps` already taken (the time limit counts them).
  void set_state(const State& s, int elapsed_steps = 0) {
    clock_.restart(elapsed_steps);
    state_ = s;
  }
  [[nodiscard]] const State& state() const { return state_; }
  [[nodiscard]] int elapsed_steps() const { return clock_.elapsed(); }
  [[nodiscard]] bool needs_reset() const { return clock_.needs_reset(); }
  [[nodiscard]] int max_episode_steps() const { return clock_.max_steps(); }

protected:
  State state_{};
  EpisodeClock clock_;
};

namespace detail {

// Python's float modulo (the sign of the divisor), as numpy.remainder computes it.
inline double python_mod(double a, double b) {
  double r = std::fmod(a, b);
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

inline int discrete_action(std::string_view id, std::span<const float> action, int n) {
  SSMRL_REQUIRE(action.size() == 1, id, "::step: action has ", action.size(), " values, expected 1 (an index)");
  const float a = action[0];
  SSMRL_REQUIRE(a == std::floor(a) && a >= 0 && a < static_cast<float>(n), id, "::step: action ", a,
                " is not one of 0..", n - 1);
  return static_cast<int>(a);
}

inline float continuous_action(std::string_view id, std::span<const float> action) {
  SSMRL_REQUIRE(action.size() == 1, id, "::step: action has ", action.size(), " values, expected 1");
  SSMRL_REQUIRE(!std::isnan(action[0]), id, "::step: action is NaN");
  return action[0];
}

}  // namespace detail
}  // namespace ssmrl::env
