// Memory tasks defined as POPGym (Morad et al., ICLR 2023) defines them, for policies whose memory
// matters: Position-only CartPole (velocities hidden) and its noisy variant, and Repeat Previous
// (name the suit of the card seen k steps ago); and two of ours in the same manner, for the MC
// actions: Recent Majority (token observations, where focusing on the newest tokens helps) and
// Regime Switch (where clearing the memory at a signalled switch helps). Rewards are on POPGym's
// [-1, 1] episode scale. The random draws are ours (std::mt19937_64 and std::shuffle), so episodes
// follow POPGym's rules but not numpy's streams.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <random>
#include <span>
#include <string_view>
#include <vector>

#include "ssmrl/env/cartpole.hpp"
#include "ssmrl/env/environment.hpp"

namespace ssmrl::env {

//! POPGym's difficulty levels.
enum class Difficulty { easy, medium, hard };

//! CartPole-v1's dynamics observed as (x, theta) only; episodes of at most 200, 400 or 600 steps
//! (easy, medium, hard), reward 1 / max steps per step, so a full episode scores 1. With
//! `noise_std` > 0 (POPGym's noisy variant: 0.1, 0.2, 0.3), Gaussian noise is added to each
//! observation and clipped to the observation space; POPGym's noisy levels all keep 200 steps.
class PositionOnlyCartPole : public CartPole {
public:
  static constexpr std::size_t observation_size = 2;

  static int steps_of(Difficulty d) { return d == Difficulty::easy ? 200 : d == Difficulty::medium ? 400 : 600; }

  explicit PositionOnlyCartPole(int max_episode_steps = 200, double noise_std = 0.0)
      : CartPole({}, max_episode_steps), noise_std_(noise_std) {
    SSMRL_REQUIRE(noise_std >= 0 && std::isfinite(noise_std), "PositionOnlyCartPole: noise_std ", noise_std,
                  " must be finite and not negative");
  }
  static PositionOnlyCartPole of(Difficulty d) { return PositionOnlyCartPole(steps_of(d)); }
  //! POPGym's NoisyPositionOnlyCartPole levels: noise 0.1, 0.2, 0.3, all of 200 steps.
  static PositionOnlyCartPole noisy(Difficulty d) {
    return PositionOnlyCartPole(200, d == Difficulty::easy ? 0.1 : d == Difficulty::medium ? 0.2 : 0.3);
  }

  [[nodiscard]] std::string_view id() const {
    return noise_std_ > 0 ? "popgym-NoisyPositionOnlyCartPole" : "popgym-PositionOnlyCartPole";
  }
  [[nodiscard]] Space observation_space() const {
    const auto x = static_cast<float>(x_threshold * 2);
    const auto t = static_cast<float>(theta_threshold * 2);
    return Space::box({-x, -t}, {x, t});
  }
  [[nodiscard]] double noise_std() const noexcept { return noise_std_; }

  template <class Rng>
  void reset(Rng& rng) {
    CartPole::reset(rng);
    noise_rng_.seed(rng());
    draw_noise();
  }
  StepResult step(std::span<const float> action) { return step(detail::discrete_action(id(), action, 2)); }
  StepResult step(int action) {
    auto r = CartPole::step(action);
    r.reward = 1.0 / static_cast<double>(max_episode_steps());
    draw_noise();
    return r;
  }
  void observe(std::span<float> out) const {
    const auto space = observation_space();
    const std::array<double, 2> v{state_[0], state_[2]};
    for (std::size_t i = 0; i < 2; ++i) {
      out[i] = std::clamp(static_cast<float>(v[i]) + noise_[i], space.low[i], space.high[i]);
    }
  }

private:
  void draw_noise() {
    if (noise_std_ == 0) return;
    std::normal_distribution<double> normal(0.0, noise_std_);
    for (auto& n : noise_) n = static_cast<float>(normal(noise_rng_));
  }

  double noise_std_ = 0;
  std::mt19937_64 noise_rng_;
  std::array<float, 2> noise_{};
};

template <>
inline constexpr bool enable_environment<PositionOnlyCartPole> = true;

//! The cards of a Repeat Previous episode: each card's suit (0 to 3) in dealing order, and how many
//! have been dealt.
struct CardsState {
  std::vector<int> suits;
  int dealt = 0;
  bool operator==(const CardsState&) const = default;
};

//! POPGym's Repeat Previous: `decks` shuffled decks of 52 cards; reset deals one card, each step
//! deals the next, and the observation is the suit of the card just dealt (one-hot, 4 values). The
//! action names a suit; once k cards have been dealt, it earns +1/(52 decks - k) when it is the suit
//! of the card dealt k - 1 cards before the newest (k = 1: the newest) and -1/(52 decks - k)
//! otherwise, so a perfect episode scores 1. Episodes last 52 decks - 1 steps. Easy: 1 deck, k 4;
//! medium: 2 decks, k 32; hard: 3 decks, k 64.
class RepeatPrevious : public EpisodicState<CardsState> {
public:
  static constexpr std::size_t observation_size = 4;
  static constexpr std::size_t action_size = 1;

  explicit RepeatPrevious(int decks = 1, int k = 4) : EpisodicState(52 * decks - 1), decks_(decks), k_(k) {
    SSMRL_REQUIRE(decks >= 1 && decks <= 100 && k >= 1 && k < 52 * decks, "RepeatPrevious: decks ", decks,
                  " must be in [1, 100] and k ", k, " in [1, ", 52 * decks, ")");
  }
  static RepeatPrevious of(Difficulty d) {
    return d == Difficulty::easy ? RepeatPrevious(1, 4) : d == Difficulty::medium ? RepeatPrevious(2, 32)
                                                                                   : RepeatPrevious(3, 64);
  }

  [[nodiscard]] std::string_view id() const { return "popgym-RepeatPrevious"; }
  [[nodiscard]] Space observation_space() const { return Space::box({0, 0, 0, 0}, {1, 1, 1, 1}); }
  [[nodiscard]] Space action_space() const { return Space::discrete(4); }
  [[nodiscard]] int decks() const noexcept { return decks_; }
  [[nodiscard]] int k() const noexcept { return k_; }

  template <class Rng>
  void reset(Rng& rng) {
    state_.suits.resize(static_cast<std::size_t>(52 * decks_));
    for (std::size_t i = 0; i < state_.suits.size(); ++i) state_.suits[i] = static_cast<int>(i % 4);
    std::shuffle(state_.suits.begin(), state_.suits.end(), rng);
    state_.dealt = 1;
    clock_.restart();
  }
  StepResult step(std::span<const float> action) { return step(detail::discrete_action(id(), action, 4)); }
  StepResult step(int action) {
    SSMRL_REQUIRE(action >= 0 && action < 4, "popgym-RepeatPrevious::step: action ", action, " is not a suit 0 to 3");
    clock_.check_can_step(id());
    SSMRL_REQUIRE(state_.dealt >= 1 && state_.dealt < static_cast<int>(state_.suits.size()),
                  "popgym-RepeatPrevious::step: ", state_.dealt, " of ", state_.suits.size(), " cards dealt");
    const double scale = 1.0 / static_cast<double>(52 * decks_ - k_);
    double reward = 0;
    if (state_.dealt >= k_)
      reward = action == state_.suits[static_cast<std::size_t>(state_.dealt - k_)] ? scale : -scale;
    ++state_.dealt;
    return clock_.finish(reward, false);
  }
  void observe(std::span<float> out) const {
    std::fill(out.begin(), out.begin() + 4, 0.0f);
    if (state_.dealt >= 1) out[static_cast<std::size_t>(state_.suits[static_cast<std::size_t>(state_.dealt - 1)])] = 1;
  }

private:
  int decks_ = 1;
  int k_ = 4;
};

template <>
inline constexpr bool enable_environment<RepeatPrevious> = true;

//! The stream of a Recent Majority episode: the last 32 symbols (oldest first), the horizon of the
//! episode (the newest tokens that decide the answer) and the generator.
struct TokenStreamState {
  std::array<int, 32> window{};
  int horizon = 15;
  std::mt19937_64 rng;
  bool operator==(const TokenStreamState&) const = default;
};

//! Recent Majority (ours): each step a new symbol, 0 or 1 with equal chance, enters a window of the
//! last 32; the observation is the window as 32 tokens of 3 features (the symbol one-hot, then the
//! cue), newest last. The action names the majority symbol of the newest `horizon` tokens (a tie
//! counts as 0); it earns +1/200 when right and -1/200 when wrong, over episodes of 200 steps.
//! Plain, the horizon is always 15; cued, each episode draws 15 or 30 with equal chance and shows it
//! as the newest token's cue feature (1 for 30). The older tokens are a distractor: the majority of
//! the whole window often differs. Focusing on the horizon's tokens (the MC actions focus_short and
//! focus_long keep 15 and 30) leaves exactly what decides the answer visible, and makes the answer
//! the same function of what is visible in both kinds of episode.
class RecentMajority : public EpisodicState<TokenStreamState> {
public:
  static constexpr std::size_t tokens = 32;
  static constexpr std::size_t token_size = 3;
  static constexpr int short_horizon = 15;
  static constexpr int long_horizon = 30;
  static constexpr std::size_t observation_size = tokens * token_size;
  static constexpr std::size_t action_size = 1;

  explicit RecentMajority(bool cued = false) : EpisodicState(200), cued_(cued) {}
  [[nodiscard]] std::string_view id() const { return cued_ ? "ssmrl-CuedMajority" : "ssmrl-RecentMajority"; }
  [[nodiscard]] bool cued() const noexcept { return cued_; }
  [[nodiscard]] Space observation_space() const {
    return Space::box(std::vector<float>(observation_size, 0.0f), std::vector<float>(observation_size, 1.0f));
  }
  [[nodiscard]] Space action_space() const { return Space::discrete(2); }
  //! EpisodicState::set_state, refusing a state this task cannot be in.
  void set_state(const State& s, int elapsed_steps = 0) {
    const bool symbols = std::all_of(s.window.begin(), s.window.end(), [](int v) { return v == 0 || v == 1; });
    SSMRL_REQUIRE(symbols && (s.horizon == short_horizon || (cued_ && s.horizon == long_horizon)), id(),
                  "::set_state: horizon ", s.horizon, " or a symbol other than 0 or 1 in the window is not a state of ",
                  cued_ ? "the cued task (horizon 15 or 30)" : "the plain task (horizon 15)");
    EpisodicState::set_state(s, elapsed_steps);
  }

  template <class Rng>
  void reset(Rng& rng) {
    state_.rng.seed(rng());
    for (auto& symbol : state_.window) symbol = draw();
    state_.horizon = cued_ && draw() == 1 ? long_horizon : short_horizon;
    clock_.restart();
  }
  //! The majority symbol of the newest `horizon` tokens (0 on a tie): the right action now.
  [[nodiscard]] int answer() const {
    int ones = 0;
    for (std::size_t i = tokens - static_cast<std::size_t>(state_.horizon); i < tokens; ++i) ones += state_.window[i];
    return 2 * ones > state_.horizon ? 1 : 0;
  }
  StepResult step(std::span<const float> action) { return step(detail::discrete_action(id(), action, 2)); }
  StepResult step(int action) {
    SSMRL_REQUIRE(action == 0 || action == 1, id(), "::step: action ", action, " is not 0 or 1");
    clock_.check_can_step(id());
    const double reward = (action == answer() ? 1.0 : -1.0) / static_cast<double>(max_episode_steps());
    std::rotate(state_.window.begin(), state_.window.begin() + 1, state_.window.end());
    state_.window.back() = draw();
    return clock_.finish(reward, false);
  }
  void observe(std::span<float> out) const {
    for (std::size_t i = 0; i < tokens; ++i) {
      out[i * token_size] = state_.window[i] == 0 ? 1.0f : 0.0f;
      out[i * token_size + 1] = state_.window[i] == 1 ? 1.0f : 0.0f;
      out[i * token_size + 2] = 0.0f;
    }
    if (state_.horizon == long_horizon) out[observation_size - 1] = 1.0f;
  }

private:
  int draw() { return static_cast<int>(state_.rng() >> 63); }
  bool cued_ = false;
};

template <>
inline constexpr bool enable_environment<RecentMajority> = true;

//! The hidden regime of a Regime Switch episode, whether it was just redrawn, and the generator.
struct RegimeState {
  int regime = 0;
  bool switched = false;
  float cue = 0;
  std::mt19937_64 rng;
  bool operator==(const RegimeState&) const = default;
};

//! Regime Switch (ours): a hidden regime, 0 or 1; each step the observation is a noisy cue of it
//! (+-1 plus Gaussian noise of std 2) and a switch flag. With probability 0.05 per step the regime
//! is redrawn (0 or 1 with equal chance, so it may stay) and the flag is 1 on the step that shows
//! it. The action names the regime: +1/200 when right, -1/200 when wrong, over 200 steps. Evidence
//! from before a switch says nothing about the regime after it, so a memory that accumulates cues
//! is best cleared when the flag shows (the MC action clear_state).
class RegimeSwitch : public EpisodicState<RegimeState> {
public:
  static constexpr std::size_t observation_size = 2;
  static constexpr std::size_t action_size = 1;
  static constexpr double switch_probability = 0.05;
  static constexpr double cue_std = 2.0;

  RegimeSwitch() : EpisodicState(200) {}
  [[nodiscard]] std::string_view id() const { return "ssmrl-RegimeSwitch"; }
  [[nodiscard]] Space observation_space() const { return Space::box({-1e9f, 0.0f}, {1e9f, 1.0f}); }
  [[nodiscard]] Space action_space() const { return Space::discrete(2); }

  template <class Rng>
  void reset(Rng& rng) {
    state_.rng.seed(rng());
    state_.regime = static_cast<int>(state_.rng() >> 63);
    state_.switched = true;
    draw_cue();
    clock_.restart();
  }
  StepResult step(std::span<const float> action) { return step(detail::discrete_action(id(), action, 2)); }
  StepResult step(int action) {
    SSMRL_REQUIRE(action == 0 || action == 1, "ssmrl-RegimeSwitch::step: action ", action, " is not 0 or 1");
    clock_.check_can_step(id());
    const double reward = (action == state_.regime ? 1.0 : -1.0) / static_cast<double>(max_episode_steps());
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    state_.switched = uniform(state_.rng) < switch_probability;
    if (state_.switched) state_.regime = static_cast<int>(state_.rng() >> 63);
    draw_cue();
    return clock_.finish(reward, false);
  }
  void observe(std::span<float> out) const {
    out[0] = state_.cue;
    out[1] = state_.switched ? 1.0f : 0.0f;
  }

private:
  void draw_cue() {
    std::normal_distribution<double> normal(0.0, cue_std);
    state_.cue = static_cast<float>((state_.regime == 1 ? 1.0 : -1.0) + normal(state_.rng));
  }
};

template <>
inline constexpr bool enable_environment<RegimeSwitch> = true;

}  // namespace ssmrl::env
