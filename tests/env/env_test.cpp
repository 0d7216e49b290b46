// Environments beyond the traces: bad input, the registry, task families, Navigation2D and EnvBatch.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <ssmrl/env.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/errors.hpp"

using namespace ssmrl;
using test::message_of;

static_assert(env::Environment<env::CartPole>);
static_assert(env::Environment<env::PositionOnlyCartPole>);
static_assert(env::Environment<env::RepeatPrevious>);
static_assert(env::Environment<env::RecentMajority>);
static_assert(env::Environment<env::Pendulum>);
static_assert(env::Environment<env::MountainCar>);
static_assert(env::Environment<env::MountainCarContinuous>);
static_assert(env::Environment<env::Acrobot>);
static_assert(env::Environment<env::Navigation2D>);
static_assert(env::Environment<env::OneOf<env::PositionOnlyCartPole, env::RepeatPrevious>>);
static_assert(env::Environment<env::OneOf<env::CartPole, env::PositionOnlyCartPole>>);  // one state type twice
static_assert(!env::Environment<int>);
static_assert(env::TaskDistribution<env::Navigation2DTasks>);
static_assert(env::TaskDistribution<env::CartPoleTasks>);
static_assert(env::TaskDistribution<env::PendulumTasks>);
// Any uniform random bit generator, not only std::mt19937_64.
static_assert(env::Environment<env::Acrobot, std::minstd_rand>);
static_assert(env::Environment<env::Navigation2D, std::ranlux48>);
static_assert(env::TaskDistribution<env::Navigation2DTasks, std::minstd_rand>);
static_assert(!env::Environment<env::CartPole, int>);

namespace {

// CartPole that throws from step() when told to, as a user's environment might.
struct FaultyCartPole : env::CartPole {
  bool fail = false;
  env::StepResult step(std::span<const float> action) {
    if (fail) throw std::runtime_error("FaultyCartPole: step failed");
    return env::CartPole::step(action);
  }
};

}  // namespace

namespace ssmrl::env {
template <>
inline constexpr bool enable_environment<FaultyCartPole> = true;
}  // namespace ssmrl::env
static_assert(env::Environment<FaultyCartPole>);

TEST_CASE("bad actions and stepping an ended episode are refused and change nothing") {
  std::mt19937_64 rng(1);
  env::CartPole cartpole;
  cartpole.reset(rng);
  const auto before = cartpole.state();
  const float two[] = {2.0f};
  const float half[] = {0.5f};
  CHECK(message_of<InvalidArgument>([&] { cartpole.step(std::span<const float>(two)); }) ==
        "CartPole-v1::step: action 2 is not one of 0..1");
  CHECK_THROWS_AS(cartpole.step(std::span<const float>(half)), InvalidArgument);
  CHECK(cartpole.state() == before);
  CHECK(cartpole.elapsed_steps() == 0);

  env::Pendulum pendulum;
  pendulum.reset(rng);
  const auto pendulum_before = pendulum.state();
  const float nan[] = {std::numeric_limits<float>::quiet_NaN()};
  const float pair[] = {0.1f, 0.2f};
  CHECK(message_of<InvalidArgument>([&] { pendulum.step(std::span<const float>(nan)); }) ==
        "Pendulum-v1::step: action is NaN");
  CHECK(message_of<InvalidArgument>([&] { pendulum.step(std::span<const float>(pair)); }) ==
        "Pendulum-v1::step: action has 2 values, expected 1");
  CHECK(pendulum.state() == pendulum_before);

  // An ended episode.
  env::MountainCar car(3);
  car.reset(rng);
  for (int i = 0; i < 3; ++i) car.step(1);
  CHECK(car.needs_reset());
  const auto car_before = car.state();
  CHECK(message_of<UsageError>([&] { car.step(1); }).find("the episode has ended") != std::string::npos);
  CHECK(car.state() == car_before);
  car.reset(rng);
  CHECK_NOTHROW(car.step(1));
  // Never reset.
  env::Acrobot acrobot;
  CHECK_THROWS_AS(acrobot.step(0), UsageError);
}

TEST_CASE("the registry builds environments by id and lists the known ones for an unknown id") {
  auto e = env::make("MountainCarContinuous-v0");
  CHECK(e->id() == "MountainCarContinuous-v0");
  CHECK(e->action_space().kind == env::Space::Kind::box);
  CHECK(e->max_episode_steps() == 999);
  std::mt19937_64 rng(2);
  e->reset(rng);
  const float push[] = {1.0f};
  CHECK(e->step(std::span<const float>(push)).reward == doctest::Approx(-0.1));
  const auto msg = message_of<InvalidArgument>([] { (void)env::make("CartPole-v0"); });
  CHECK(msg.find("unknown environment 'CartPole-v0'") != std::string::npos);
  CHECK(msg.find("CartPole-v1") != std::string::npos);
  CHECK(msg.find("Acrobot-v1") != std::string::npos);
  env::add_env<env::CartPole>("LongPole-v0", [] { return env::CartPole({.length = 1.0}); });
  CHECK(env::make("LongPole-v0")->id() == "CartPole-v1");
}

TEST_CASE("Navigation2D moves by clipped velocities, rewards minus the distance, ends at the goal") {
  env::Navigation2D nav({.goal = {0.25, -0.1}});
  std::mt19937_64 rng(3);
  nav.reset(rng);
  const float far[] = {0.5f, -0.05f};
  auto r = nav.step(std::span<const float>(far));
  CHECK(nav.state()[0] == doctest::Approx(0.1));
  CHECK(nav.state()[1] == doctest::Approx(-0.05));
  CHECK(r.reward == doctest::Approx(-std::hypot(0.15, 0.05)));
  CHECK_FALSE(r.done());
  const float move[] = {0.1f, -0.05f};
  nav.step(std::span<const float>(move));
  const float last[] = {0.05f, 0.0f};
  r = nav.step(std::span<const float>(last));
  CHECK(r.terminated);
  CHECK(r.reward > -0.01);
  float obs[2];
  nav.observe(obs);
  CHECK(obs[0] == doctest::Approx(0.25f));
}

TEST_CASE("task families sample inside their ranges and never a held-out task") {
  std::mt19937_64 rng(4);
  const env::Navigation2DTasks nav;
  CHECK(nav.held_out().size() == 40);
  for (int i = 0; i < 20000; ++i) {
    const auto t = nav.sample(rng);
    CHECK_FALSE(nav.is_held_out(t));
    CHECK(std::abs(t.goal[0]) <= 0.5);
  }
  for (const auto& h : nav.held_out()) CHECK(nav.is_held_out(h));
  const env::CartPoleTasks cartpole;
  for (int i = 0; i < 2000; ++i) {
    const auto t = cartpole.sample(rng);
    CHECK_FALSE(cartpole.is_held_out(t));
    CHECK((t.length >= 0.25 && t.length <= 0.75 && t.gravity >= 7 && t.gravity <= 12));
  }
  env::CartPole env;
  env::CartPoleTasks::apply(env, cartpole.held_out()[0]);
  CHECK(env.physics().length == cartpole.held_out()[0].length);
  const env::PendulumTasks pendulum;
  for (int i = 0; i < 2000; ++i) CHECK_FALSE(pendulum.is_held_out(pendulum.sample(rng)));
}

TEST_CASE("EnvBatch: automatic resets keep the final observation, and threads change nothing") {
  auto run = [](unsigned threads) {
    env::EnvBatch<env::CartPole> batch(7, env::CartPole(), 42, threads);
    Eigen::MatrixXf actions(1, 7);
    std::mt19937_64 rng(5);
    std::vector<float> trace;
    int ended = 0;
    for (int t = 0; t < 300; ++t) {
      for (int i = 0; i < 7; ++i) actions(0, i) = static_cast<float>(rng() % 2);
      batch.step(actions);
      for (int i = 0; i < 7; ++i) {
        if (batch.terminated()[i] || batch.truncated()[i]) {
          ++ended;
          // The final observation is the ended episode's; the current one starts a new episode.
          const float x = batch.final_observations()(2, i);
          CHECK(std::abs(x) > 0.2);  // the pole fell past 12 degrees
          CHECK(std::abs(batch.observations()(2, i)) <= 0.05f);
          CHECK(batch.finished_returns()[i] >= 1.0);
        }
      }
      trace.insert(trace.end(), batch.observations().data(), batch.observations().data() + batch.observations().size());
    }
    CHECK(ended > 0);
    return trace;
  };
  const auto one = run(1);
  CHECK(one == run(2));
  CHECK(one == run(3));

  env::EnvBatch<env::Navigation2D> nav(3, env::Navigation2D(), 1);
  Eigen::MatrixXf bad = Eigen::MatrixXf::Zero(2, 3);
  bad(1, 2) = std::numeric_limits<float>::quiet_NaN();
  CHECK(message_of<InvalidArgument>([&] { nav.step(bad); }) == "EnvBatch::step: action of environment 2 is NaN");
  CHECK(nav.env(0).elapsed_steps() == 0);  // nothing moved
  CHECK_THROWS_AS(nav.step(Eigen::MatrixXf::Zero(2, 4)), InvalidArgument);
}

TEST_CASE("EnvBatch takes any seedable generator and the actions of a double policy") {
  env::EnvBatch<env::Pendulum, std::minstd_rand> a(3, env::Pendulum{}, 5);
  env::EnvBatch<env::Pendulum, std::minstd_rand> b(3, env::Pendulum{}, 5);
  CHECK(a.observations() == b.observations());  // the same seeds, the same starts
  env::EnvBatch<env::Pendulum> c(3, env::Pendulum{}, 5);
  CHECK(a.observations() != c.observations());  // another generator, other starts
  const Eigen::MatrixXd in_double = Eigen::MatrixXd::Constant(1, 3, 0.5);
  a.step(in_double);
  b.step(Eigen::MatrixXf::Constant(1, 3, 0.5f));
  CHECK(a.observations() == b.observations());
  CHECK(a.rewards() == b.rewards());
  CHECK_THROWS_AS(a.step(Eigen::MatrixXd::Constant(2, 3, 0.5)), InvalidArgument);  // the float path's checks hold
}

TEST_CASE("registries are objects too: additions to one stay local") {
  env::Registry local;
  local.add_type<env::CartPole>("LocalPole-v0", [] { return env::CartPole({.length = 1.0}); });
  CHECK(local.make("LocalPole-v0")->id() == "CartPole-v1");
  CHECK_THROWS_AS(env::make("LocalPole-v0"), InvalidArgument);
  CHECK(local.ids().size() == env::Registry{}.ids().size() + 1);  // the built-ins and its own
  // A registry of other built-ins, and the free functions on its process-wide instance.
  using PolesOnly = env::RegistryOf<env::CartPole>;
  CHECK(env::registered_ids<PolesOnly>() == std::vector<std::string>{"CartPole-v1"});
  env::add_env<env::CartPole, PolesOnly>("ShortPole-v0", [] { return env::CartPole({.length = 0.25}); });
  CHECK(env::make<PolesOnly>("ShortPole-v0")->id() == "CartPole-v1");
  CHECK_THROWS_AS(env::make<PolesOnly>("Acrobot-v1"), InvalidArgument);
  CHECK_THROWS_AS(env::make("ShortPole-v0"), InvalidArgument);
}

TEST_CASE("derived seeds differ per environment and repeat per seed") {
  CHECK(env::derive_seed(1, 0) != env::derive_seed(1, 1));
  CHECK(env::derive_seed(1, 0) != env::derive_seed(2, 0));
  CHECK(env::derive_seed(7, 3) == env::derive_seed(7, 3));
}

TEST_CASE("EnvBatch: an exception on any thread reaches the caller, and the batch stays usable and destructible") {
  for (const unsigned threads : {1U, 2U, 3U}) {
    for (const std::size_t failing : {std::size_t(0), std::size_t(5)}) {  // the caller's share, the last worker's
      CAPTURE(threads);
      CAPTURE(failing);
      env::EnvBatch<FaultyCartPole> batch(6, FaultyCartPole(), 3, threads);
      const Eigen::MatrixXf actions = Eigen::MatrixXf::Zero(1, 6);
      batch.step(actions);
      batch.env(failing).fail = true;
      CHECK(message_of<std::runtime_error>([&] { batch.step(actions); }) == "FaultyCartPole: step failed");
      // Every thread came back: the batch steps again once the environment is mended.
      batch.env(failing).fail = false;
      batch.reset();
      batch.step(actions);
      CHECK(batch.env(failing).elapsed_steps() == 1);
      // Two failures at once: the first environment's exception wins, whichever thread ran it.
      batch.env(1).fail = true;
      batch.env(4).fail = true;
      CHECK_THROWS_AS(batch.step(actions), std::runtime_error);
    }  // destroyed here: a deadlock or std::terminate would end the test
  }
}

TEST_CASE("task families refuse held-out sets that leave no room for training, and sampling is bounded") {
  const auto message = message_of<InvalidArgument>(
      [] { env::Navigation2DTasks tasks({.held_out_count = 400, .exclusion_radius = 0.2}); });
  CHECK(message.find("env task distribution: 400 held-out tasks with exclusion radius 0.2 leave about 0% of the task "
                     "range for training (0 of 10000 probes)") == 0);
  CHECK_THROWS_AS(env::CartPoleTasks({.held_out_count = 5000, .exclusion_radius = 0.24}), InvalidArgument);
  // A crowded but feasible set still samples, and never near a held-out task.
  const env::Navigation2DTasks crowded({.held_out_count = 40, .exclusion_radius = 0.15});
  std::mt19937_64 rng(1);
  for (int i = 0; i < 200; ++i) CHECK_FALSE(crowded.is_held_out(crowded.sample(rng)));
}

TEST_CASE("Position-only CartPole: CartPole's x and theta, reward 1 / max steps, POPGym's limits and noise") {
  CHECK(env::PositionOnlyCartPole::of(env::Difficulty::easy).max_episode_steps() == 200);
  CHECK(env::PositionOnlyCartPole::of(env::Difficulty::medium).max_episode_steps() == 400);
  CHECK(env::PositionOnlyCartPole::of(env::Difficulty::hard).max_episode_steps() == 600);
  CHECK(env::PositionOnlyCartPole::noisy(env::Difficulty::hard).max_episode_steps() == 200);
  CHECK(env::PositionOnlyCartPole::noisy(env::Difficulty::medium).noise_std() == 0.2);
  std::mt19937_64 a(11), b(11);
  env::CartPole full;
  env::PositionOnlyCartPole partial = env::PositionOnlyCartPole::of(env::Difficulty::easy);
  full.reset(a);
  partial.reset(b);
  std::array<float, 4> f{};
  std::array<float, 2> p{};
  double total = 0;
  for (int t = 0; t < 30 && !partial.needs_reset(); ++t) {
    full.observe(f);
    partial.observe(p);
    CHECK(p[0] == f[0]);
    CHECK(p[1] == f[2]);
    const int action = f[2] + f[3] > 0 ? 1 : 0;
    full.step(action);
    total += partial.step(action).reward;
  }
  CHECK(total == doctest::Approx(30.0 / 200));
  // The time limit: a balanced pole truncates at 200 steps, a full episode scoring 1.
  partial.set_state({0, 0, 0, 0}, 199);
  const auto last = partial.step(1);
  CHECK(last.truncated);
  CHECK(last.reward == 1.0 / 200);
  // Noise: observations = state + N(0, 0.3), clipped to the space.
  auto noisy = env::PositionOnlyCartPole::noisy(env::Difficulty::hard);
  std::mt19937_64 c(5);
  noisy.reset(c);
  double squares = 0;
  int n = 0;
  for (int t = 0; t < 100; ++t) {
    noisy.set_state({0.1, 0, 0.01, 0}, 0);
    noisy.step(t % 2);
    noisy.observe(p);
    squares += std::pow(p[0] - noisy.state()[0], 2) + std::pow(p[1] - noisy.state()[2], 2);
    n += 2;
    CHECK(std::abs(p[1]) <= static_cast<float>(env::CartPole::theta_threshold * 2));
  }
  CHECK(std::sqrt(squares / n) == doctest::Approx(0.3).epsilon(0.15));
  CHECK_THROWS_AS(env::PositionOnlyCartPole(200, -1.0), InvalidArgument);
}

TEST_CASE(
    "Repeat Previous: the suit seen k - 1 cards before the newest, +-1/(52 decks - k), episodes of 52 decks - 1") {
  for (const auto d : {env::Difficulty::easy, env::Difficulty::medium, env::Difficulty::hard}) {
    auto e = env::RepeatPrevious::of(d);
    const int cards = 52 * e.decks();
    CHECK(e.max_episode_steps() == cards - 1);
    std::mt19937_64 rng(3);
    e.reset(rng);
    // Each suit 13 times per deck, dealt in a shuffled order.
    for (int s = 0; s < 4; ++s) {
      CHECK(std::count(e.state().suits.begin(), e.state().suits.end(), s) == 13 * e.decks());
    }
    // An oracle that remembers every observation scores 1, a contrarian -1; nothing before k cards.
    for (const bool right : {true, false}) {
      e.reset(rng);
      std::vector<int> seen;
      std::array<float, 4> o{};
      double total = 0;
      int steps = 0;
      while (!e.needs_reset()) {
        e.observe(o);
        seen.push_back(static_cast<int>(std::max_element(o.begin(), o.end()) - o.begin()));
        const int size = static_cast<int>(seen.size());
        const int target = size >= e.k() ? seen[static_cast<std::size_t>(size - e.k())] : 0;
        const auto r = e.step(right ? target : (target + 1) % 4);
        if (size < e.k()) CHECK(r.reward == 0);
        total += r.reward;
        ++steps;
        if (steps == cards - 1) CHECK(r.truncated);
      }
      CHECK(steps == cards - 1);
      CHECK(total == doctest::Approx(right ? 1.0 : -1.0).epsilon(1e-12));
    }
  }
  CHECK_THROWS_AS(env::RepeatPrevious(1, 52), InvalidArgument);
  auto e = env::RepeatPrevious::of(env::Difficulty::easy);
  std::mt19937_64 rng(1);
  e.reset(rng);
  CHECK_THROWS_AS(e.step(4), InvalidArgument);
}

TEST_CASE("Recent Majority: the majority of the newest 15 tokens (plain) or of 15 or 30 as the cue says (cued)") {
  using env::RecentMajority;
  constexpr auto size = RecentMajority::observation_size;
  // The majority an oracle reads from the observation alone: the symbols are one-hot, the cue is
  // the newest token's third feature.
  const auto oracle = [](const std::array<float, size>& o) {
    const std::size_t horizon = o[size - 1] == 1.0f ? 30 : 15;
    int ones = 0;
    for (std::size_t i = RecentMajority::tokens - horizon; i < RecentMajority::tokens; ++i) {
      CHECK(o[i * 3] + o[i * 3 + 1] == 1.0f);
      ones += o[i * 3 + 1] == 1.0f ? 1 : 0;
    }
    return 2 * ones > static_cast<int>(horizon) ? 1 : 0;
  };
  for (const bool cued : {false, true}) {
    RecentMajority e(cued);
    CHECK(e.id() == (cued ? "ssmrl-CuedMajority" : "ssmrl-RecentMajority"));
    std::mt19937_64 rng(5);
    std::array<int, 2> horizons{};  // episodes of 15 and of 30
    int differs_from_window = 0;    // steps whose answer is not the majority of all 32 tokens
    for (int episode = 0; episode < 40; ++episode) {
      e.reset(rng);
      ++horizons[e.state().horizon == 30 ? 1 : 0];
      std::array<float, size> o{};
      double total = 0;
      int steps = 0;
      const bool right = episode % 2 == 0;
      while (!e.needs_reset()) {
        e.observe(o);
        const int answer = oracle(o);
        CHECK(answer == e.answer());
        const int all = std::accumulate(e.state().window.begin(), e.state().window.end(), 0);
        if ((2 * all > 32 ? 1 : 0) != answer) ++differs_from_window;
        const int last = e.state().window.back();
        const auto r = e.step(right ? answer : 1 - answer);
        // The window moves by one: what was newest is now second newest.
        CHECK(e.state().window[30] == last);
        total += r.reward;
        ++steps;
      }
      CHECK(steps == 200);
      CHECK(total == doctest::Approx(right ? 1.0 : -1.0).epsilon(1e-12));
    }
    CHECK(horizons[1] == (cued ? doctest::Approx(20).epsilon(0.5) : doctest::Approx(0)));
    CHECK(differs_from_window > 400);
  }
  // A tie in a horizon of 30 counts as 0; states the task cannot be in are refused and change nothing.
  RecentMajority e(true);
  std::mt19937_64 rng(2);
  e.reset(rng);
  auto s = e.state();
  for (std::size_t i = 0; i < 32; ++i) s.window[i] = static_cast<int>(i % 2);
  s.horizon = 30;
  e.set_state(s);
  CHECK(e.answer() == 0);
  s.window[2] = 1;
  e.set_state(s);
  CHECK(e.answer() == 1);
  for (const int horizon : {0, 16, 31, 40}) {
    auto bad = s;
    bad.horizon = horizon;
    CHECK(ssmrl::test::message_of<InvalidArgument>([&] { e.set_state(bad); }).find("horizon") != std::string::npos);
  }
  auto bad = s;
  bad.window[4] = 2;
  CHECK_THROWS_AS(e.set_state(bad), InvalidArgument);
  CHECK(e.state() == s);
  RecentMajority plain;
  plain.reset(rng);
  CHECK_THROWS_AS(plain.set_state(s), InvalidArgument);  // 30 is not a horizon of the plain task
  CHECK_THROWS_AS(e.step(2), InvalidArgument);
}

TEST_CASE("OneOf: the chosen task, step for step, its observation followed by zeros; states only of that task") {
  using Task = env::OneOf<env::PositionOnlyCartPole, env::RepeatPrevious>;
  static_assert(Task::observation_size == 4 && Task::action_size == 1);
  const auto noisy = env::PositionOnlyCartPole::noisy(env::Difficulty::easy);
  const auto cards = env::RepeatPrevious::of(env::Difficulty::medium);
  Task a(noisy);
  Task b(cards);
  CHECK(a.index() == 0);
  CHECK(b.index() == 1);
  CHECK(a.id() == noisy.id());
  CHECK(b.id() == cards.id());
  CHECK(b.max_episode_steps() == 103);
  CHECK(a.action_space().n == 2);
  CHECK(b.action_space().n == 4);
  const auto space = a.observation_space();
  REQUIRE(space.low.size() == 4);
  CHECK(space.low[2] == 0.0f);
  CHECK(space.high[3] == 0.0f);
  CHECK(space.high[0] == noisy.observation_space().high[0]);

  // The same draws as the task alone, every step, through an automatic end of episode.
  auto plain_a = noisy;
  auto plain_b = cards;
  std::mt19937_64 r1(7);
  std::mt19937_64 r2(7);
  a.reset(r1);
  plain_a.reset(r2);
  b.reset(r1);
  plain_b.reset(r2);
  std::array<float, 4> wide{};
  std::array<float, 4> own{};
  for (int t = 0; t < 300; ++t) {
    if (a.needs_reset()) {
      a.reset(r1);
      plain_a.reset(r2);
    }
    if (b.needs_reset()) {
      b.reset(r1);
      plain_b.reset(r2);
    }
    const std::array<float, 1> act{static_cast<float>(t % 2)};
    const auto ra = a.step(act);
    const auto pa = plain_a.step(act);
    CHECK(ra.reward == pa.reward);
    CHECK(ra.done() == pa.done());
    CHECK(a.elapsed_steps() == plain_a.elapsed_steps());
    wide.fill(9.0f);
    a.observe(wide);
    plain_a.observe(std::span<float>(own).first(2));
    CHECK(wide[0] == own[0]);
    CHECK(wide[1] == own[1]);
    CHECK(wide[2] == 0.0f);
    CHECK(wide[3] == 0.0f);
    const std::array<float, 1> suit{static_cast<float>(t % 4)};
    CHECK(b.step(suit).reward == plain_b.step(suit).reward);
    b.observe(wide);
    plain_b.observe(own);
    CHECK(wide == own);
  }

  // A state round-trips; a state of the other task is refused and changes nothing.
  const auto saved = b.state();
  const int elapsed = b.elapsed_steps();
  b.set_state(saved, elapsed);
  CHECK(std::get<1>(b.state()) == plain_b.state());
  const auto before = std::get<0>(a.state());
  const auto message = message_of<InvalidArgument>([&] { a.set_state(saved, 0); });
  CHECK(message.find("env::OneOf::set_state") != std::string::npos);
  CHECK(message.find("alternative 1") != std::string::npos);
  CHECK(std::get<0>(a.state()) == before);
  CHECK_THROWS_AS(a.step(std::array<float, 1>{3.0f}), InvalidArgument);
  std::array<float, 3> narrow{};
  CHECK_THROWS_AS(a.observe(narrow), InvalidArgument);
}
