// The MC action registry: declared order, active-set indexing with non-prefix subsets and a
// curriculum that changes the set mid-run, environment ids (not batch rows), refusals that change
// nothing; buffers keyed by environment id that grow; the recurrent-state actions (clear, noise at
// two levels recorded for replay, transient), and noop leaving everything bit-identical.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <ssmrl/mc/registry.hpp>
#include <ssmrl/mc/state_actions.hpp>
#include <ssmrl/mc.hpp>
#include <ssmrl/adapt/experience_buffer.hpp>
#include <ssmrl/mc/checkpoint.hpp>
#include <ssmrl/env.hpp>
#include <ssmrl/nn.hpp>
#include <ssmrl/policy/recurrent_policy.hpp>
#include <ssmrl/rl/trainer.hpp>

#include <array>
#include <cmath>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "support/errors.hpp"

using namespace ssmrl;

namespace {

using Calls = std::vector<std::pair<std::string, std::vector<mc::EnvId>>>;

// Records each handler call as (action name, ids), into a log shared by the components.
struct Memory {
  static constexpr std::array<std::string_view, 2> mc_actions{"forget", "recall"};
  Calls* log = nullptr;
  void apply_mc(std::size_t k, std::span<const mc::EnvId> ids) {
    log->push_back({std::string(mc_actions[k]), {ids.begin(), ids.end()}});
  }
};
struct Focus {
  static constexpr std::array<std::string_view, 2> mc_actions{"focus_15", "focus_30"};
  Calls* log = nullptr;
  void apply_mc(std::size_t k, std::span<const mc::EnvId> ids) {
    log->push_back({std::string(mc_actions[k]), {ids.begin(), ids.end()}});
  }
};
struct Clashing {
  static constexpr std::array<std::string_view, 1> mc_actions{"recall"};
  void apply_mc(std::size_t, std::span<const mc::EnvId>) {}
};
struct OwnNoop {
  static constexpr std::array<std::string_view, 1> mc_actions{"noop"};
  void apply_mc(std::size_t, std::span<const mc::EnvId>) {}
};
static_assert(mc::McComponent<Memory>);
static_assert(mc::McComponent<mc::RecurrentStateActions<double>>);
static_assert(mc::McComponent<mc::ObservationFocus<double>>);
static_assert(!mc::McComponent<int>);

}  // namespace

TEST_CASE("the registry: noop first, then the components' actions in declared order; clashes refused") {
  Calls log;
  mc::McRegistry<Memory, Focus> registry(Memory{&log}, Focus{&log});
  std::vector<std::string> names;
  for (const auto& a : registry.actions()) names.push_back(a.name);
  CHECK(names == std::vector<std::string>{"noop", "forget", "recall", "focus_15", "focus_30"});
  CHECK(registry.active_count() == 5);  // every action is active at first
  CHECK(registry.find("focus_30") == 4u);
  CHECK_FALSE(registry.find("bogus").has_value());
  const auto clash = test::message_of<InvalidArgument>([] { mc::McRegistry<Memory, Clashing>(Memory{}, Clashing{}); });
  CHECK(clash.find("two components declare the action 'recall'") != std::string::npos);
  CHECK_THROWS_AS((mc::McRegistry<OwnNoop>(OwnNoop{})), InvalidArgument);
}

TEST_CASE("active-set indexing: output i is the i-th action of the active set, for non-prefix sets and a curriculum") {
  Calls log;
  mc::McRegistry<Memory, Focus> registry(Memory{&log}, Focus{&log});
  // A non-prefix subset in an order other than the declared one.
  registry.set_active({"focus_30", "forget"});
  CHECK(registry.active_names() == std::vector<std::string>{"noop", "focus_30", "forget"});
  // Rows 0..3 are environments 7, 2, 9, 4: the handlers get environment ids, not rows.
  const std::vector<mc::EnvId> ids{7, 2, 9, 4};
  registry.apply(std::vector<int>{1, 2, 0, 1}, ids);
  // Handlers run in declared order of the actions, each with its ids in row order.
  CHECK(log == Calls{{"forget", {2}}, {"focus_30", {7, 4}}});
  // The curriculum changes the set mid-run: the same outputs now mean other actions.
  log.clear();
  registry.set_active({"recall", "focus_15", "focus_30"});
  registry.apply(std::vector<int>{1, 2, 0, 3}, ids);
  CHECK(log == Calls{{"recall", {7}}, {"focus_15", {2}}, {"focus_30", {4}}});
  // All noop: no handler runs.
  log.clear();
  registry.apply(std::vector<int>{0, 0, 0, 0}, ids);
  CHECK(log.empty());
  // Refusals change nothing: an unknown or repeated name keeps the set; a bad choice applies none.
  const auto unknown = test::message_of<InvalidArgument>([&] { registry.set_active({"forget", "bogus"}); });
  CHECK(unknown.find("no action 'bogus'; the actions are noop, forget, recall, focus_15, focus_30") !=
        std::string::npos);
  CHECK_THROWS_AS(registry.set_active({"forget", "forget"}), InvalidArgument);
  CHECK(registry.active_names() == std::vector<std::string>{"noop", "recall", "focus_15", "focus_30"});
  const auto bad = test::message_of<InvalidArgument>([&] { registry.apply(std::vector<int>{1, 4, 0, 0}, ids); });
  CHECK(bad.find("row 1 chose 4 of an active set of 4") != std::string::npos);
  CHECK_THROWS_AS(registry.apply(std::vector<int>{1, 1}, ids), InvalidArgument);
  CHECK(log.empty());
  // noop is always present, even when the configuration names it or names nothing.
  registry.set_active({"noop", "forget"});
  CHECK(registry.active_names() == std::vector<std::string>{"noop", "forget"});
  registry.set_active({});
  CHECK(registry.active_count() == 1);
}

TEST_CASE("buffers keyed by environment id grow as ids appear and reset by id") {
  mc::EnvBuffer<int> b(-1);
  CHECK(b.size() == 0);
  b.at(40) = 3;
  b.at(2) = 5;
  CHECK(b.size() == 2);
  CHECK(b.at(40) == 3);
  CHECK(b.at(1000000) == -1);  // a new id: a new slot holding the initial value
  CHECK(b.size() == 3);
  CHECK_FALSE(b.contains(7));
  CHECK(b.find(7) == nullptr);
  const std::vector<mc::EnvId> reset{40, 7};
  b.reset(reset);
  CHECK(*b.find(40) == -1);
  CHECK(*b.find(2) == 5);
  CHECK(b.size() == 3);  // resetting an unknown id adds nothing
}

TEST_CASE("recurrent-state actions: clear and two noise levels on the chosen environments, recorded for replay") {
  ad::Matrix<double> state = ad::Matrix<double>::Constant(64, 4, 1.0);
  for (ad::Index j = 0; j < 4; ++j) state.col(j).array() += static_cast<double>(j);
  const ad::Matrix<double> before = state;
  mc::McRegistry<mc::RecurrentStateActions<double>> registry(mc::RecurrentStateActions<double>({.seed = 3}));
  // Rows are environments 10..13: effects land in the environment's column, whatever the row.
  const std::vector<mc::EnvId> ids{10, 11, 12, 13};
  mc::McEffects<double> effects;
  effects.resize(64, ids);
  // noop everywhere: bit-identical.
  registry.apply(std::vector<int>{0, 0, 0, 0}, ids, effects);
  effects.apply_to_state(state);
  CHECK(state == before);
  // Environment 11 cleared, 12 noised low, 13 noised high, 10 untouched.
  registry.apply(std::vector<int>{0, 1, 2, 3}, ids, effects);
  effects.apply_to_state(state);
  CHECK(state.col(0) == before.col(0));
  CHECK(state.col(1).isZero(0.0));
  CHECK(effects.state_edited() == ad::Matrix<double>((ad::Matrix<double>(1, 4) << 0, 1, 1, 1).finished()));
  auto& actions = registry.component<0>();
  REQUIRE(actions.drawn(12) != nullptr);
  REQUIRE(actions.drawn(13) != nullptr);
  CHECK(actions.drawn(10) == nullptr);
  // Replaying the recorded noise gives the state bit for bit.
  CHECK(state.col(2) == ad::Matrix<double>(before.col(2) + *actions.drawn(12)));
  CHECK(state.col(3) == ad::Matrix<double>(before.col(3) + *actions.drawn(13)));
  CHECK(effects.state_offset().col(3) == *actions.drawn(13));
  auto rms = [](const ad::Matrix<double>& m) { return std::sqrt(m.squaredNorm() / static_cast<double>(m.size())); };
  CHECK(rms(*actions.drawn(12)) == doctest::Approx(0.1).epsilon(0.3));
  CHECK(rms(*actions.drawn(13)) == doctest::Approx(0.5).epsilon(0.3));
  CHECK(actions.draws(13) == 1);
  // The draws come from (seed, id, count): another registry with the same seed draws the same.
  mc::McRegistry<mc::RecurrentStateActions<double>> twin(mc::RecurrentStateActions<double>({.seed = 3}));
  mc::McEffects<double> twin_effects;
  twin_effects.resize(64, ids);
  twin.apply(std::vector<int>{0, 1, 2, 3}, ids, twin_effects);
  CHECK(twin_effects.state_offset() == effects.state_offset());
  // Transient: the record is forgotten, the counts kept (the next draw is a new one).
  actions.clear_transient();
  CHECK(actions.drawn(13) == nullptr);
  effects.clear();
  registry.apply(std::vector<int>{0, 0, 0, 3}, ids, effects);
  CHECK(*actions.drawn(13) != *twin.component<0>().drawn(13));
  // An id the effects do not hold is refused before anything changes.
  const ad::Matrix<double> offsets = effects.state_offset();
  const std::vector<mc::EnvId> outside{12, 9};
  const auto refused =
      test::message_of<InvalidArgument>([&] { registry.apply(std::vector<int>{1, 1}, outside, effects); });
  CHECK(refused.find("environment id 9 is not among the 4 environments") != std::string::npos);
  CHECK(effects.state_offset() == offsets);
}

namespace {

using Gru = nn::GruCell<double>;
using Lstm = nn::LstmCell<double>;
using Ssm = nn::DiagSsmCell<double>;
template <class Cell>
using Base = policy::RecurrentPolicy<Cell, policy::CategoricalHead<double>, nn::NoNorm<double>, policy::ValueHead<double>>;
using StateRegistry = mc::McRegistry<mc::RecurrentStateActions<double>>;

template <class Cell>
Cell make_cell(ad::Index input, ad::Index width) {
  if constexpr (std::is_same_v<Cell, Ssm>) {
    return Ssm(nn::DiagSsmConfig{.input = input, .state = width, .output = width});
  } else {
    return Cell(nn::RnnConfig{.input = input, .hidden = width});
  }
}
template <class Cell>
Base<Cell> make_base(ad::Index input, ad::Index width, std::uint64_t seed) {
  return Base<Cell>(make_cell<Cell>(input, width), policy::CategoricalHead<double>(width, 2), nn::NoNorm<double>(),
                    policy::ValueHead<double>(width), seed);
}
// An MC policy whose head prefers the non-noop actions, so that a rollout uses all of them.
template <class Cell>
mc::McPolicy<Base<Cell>, mc::RecurrentStateActions<double>> make_state_policy(ad::Index input, std::uint64_t seed) {
  mc::McPolicy<Base<Cell>, mc::RecurrentStateActions<double>> p(
      make_base<Cell>(input, 8, seed), StateRegistry(mc::RecurrentStateActions<double>({.seed = seed})), seed);
  auto params = p.params();
  params.mc_head.b << -1.0, 0.0, 0.0, 0.0;  // noop, clear_state, noise_low, noise_high
  p.set_params(params);
  return p;
}

// Rollout on Regime Switch, then training's evaluation of it: the same log-probabilities (main
// and MC), values and final recurrent states to 1e-10, MC actions taken on many steps.
template <class Cell>
void check_replay() {
  auto agent = make_state_policy<Cell>(2, 5);
  env::EnvBatch<env::RegimeSwitch> batch(4, env::RegimeSwitch{}, 9);
  std::mt19937_64 rng(3);
  (void)rl::collect(agent, batch, 190, policy::ActMode::sample, rng);  // episodes end in the next rollout
  const auto t = rl::collect(agent, batch, 30, policy::ActMode::sample, rng);
  REQUIRE_FALSE(t.mc.empty());
  CHECK((t.keep.array() == 0).count() == 4);  // every environment starts a new episode in it
  // The MC head's baseline, the value before its action, differs from the value after it where the
  // action edited the state.
  REQUIRE(t.mc.values.cols() == t.values.cols());
  for (ad::Index c = 0; c < t.values.cols(); ++c) {
    if (t.mc.state_edited(0, c) == 0) CHECK(t.mc.values(0, c) == t.values(0, c));
  }
  CHECK((t.mc.values - t.values).cwiseAbs().maxCoeff() > 1e-6);
  const auto edited = (t.mc.state_edited.array() != 0).count();
  CHECK(edited > 40);
  CHECK((t.mc.state_keep.array() == 0).count() > 10);
  ad::Tape<double> tape;
  const auto vars = nn::on_tape(tape, agent.params());
  ad::Var<double> final_state;
  const auto e = agent.evaluate_mc(vars, tape.constant(t.observations), t.envs, t.sampled(),
                                    {.initial_state = tape.constant(t.initial_state), .keep = t.keep.data(),
                                     .final_state = &final_state},
                                    t.mc);
  CHECK((e.log_prob.value() - t.log_probs).cwiseAbs().maxCoeff() < 1e-10);
  CHECK((e.mc_log_prob.value() - t.mc.log_probs).cwiseAbs().maxCoeff() < 1e-10);
  CHECK((e.value.value() - t.values).cwiseAbs().maxCoeff() < 1e-10);
  REQUIRE(final_state.valid());
  CHECK((final_state.value() - agent.state()).cwiseAbs().maxCoeff() < 1e-10);
  // rl::evaluate picks the replay for a trajectory with a record; the noop evaluation differs.
  const auto picked = rl::evaluate(agent, tape, vars, t);
  CHECK((picked.log_prob.value() - t.log_probs).cwiseAbs().maxCoeff() < 1e-10);
  const auto noop = agent.evaluate(vars, tape.constant(t.observations), t.envs, t.sampled(),
                                    {.initial_state = tape.constant(t.initial_state), .keep = t.keep.data()});
  CHECK((noop.log_prob.value() - t.log_probs).cwiseAbs().maxCoeff() > 1e-6);
  // Gradients reach the MC head through its own log-probabilities.
  tape.backward(ad::sum(e.mc_log_prob));
  CHECK(vars.mc_head.W.grad().cwiseAbs().maxCoeff() > 0);
}

}  // namespace

TEST_CASE("two-pass step: noop changes nothing, bit for bit, and the state advances once per step") {
  auto base = make_base<Gru>(2, 8, 4);
  mc::McPolicy<Base<Gru>, mc::RecurrentStateActions<double>> agent(base, StateRegistry(mc::RecurrentStateActions<double>()), 4);
  agent.registry().set_active({});  // only noop: the MC policy must act exactly as its base
  base.set_num_envs(3);
  agent.set_num_envs(3);
  std::mt19937_64 rng_a(8);
  std::mt19937_64 rng_b(8);
  std::mt19937_64 data(2);
  std::normal_distribution<double> normal;
  for (int k = 0; k < 20; ++k) {
    const ad::Matrix<double> obs = ad::Matrix<double>::NullaryExpr(2, 3, [&] { return normal(data); });
    const auto a = base.act(obs, policy::ActMode::sample, rng_a);
    const auto b = agent.act(obs, policy::ActMode::sample, rng_b);
    CHECK(a.actions == b.actions);
    CHECK(a.log_prob == b.log_prob);
    CHECK(a.value == b.value);
    CHECK(b.mc_choices.isZero(0));
    CHECK(b.mc_log_prob.isZero(0));
    CHECK(b.mc_value == b.value);  // the value before the MC action: noop leaves it as it is
    CHECK(base.state() == agent.state());
  }
  // Every action active: the state after a step is the base's one step from the edited state.
  agent.registry().set_active({"noise_high", "clear_state"});
  auto params = agent.params();
  params.mc_head.b << 0.0, 2.0, -40.0, 2.0;
  agent.set_params(params);
  int edited = 0;
  for (int k = 0; k < 20; ++k) {
    const ad::Matrix<double> obs = ad::Matrix<double>::NullaryExpr(2, 3, [&] { return normal(data); });
    auto single = agent.base();
    ad::Matrix<double> before = agent.state();
    const auto b = agent.act(obs, policy::ActMode::sample, rng_b);
    CHECK((b.mc_choices.array() != 2).all());  // noise_low is not in the active set
    agent.effects().apply_to_state(before);
    single.state() = before;
    const auto a = single.act(obs, policy::ActMode::greedy, rng_a);
    (void)a;
    CHECK(single.state() == agent.state());
    edited += static_cast<int>((agent.effects().state_edited().array() != 0).count());
  }
  CHECK(edited > 20);
}

TEST_CASE("the MC head starts uniform, or with noop at a chosen probability; other probabilities refused") {
  using Agent = mc::McPolicy<Base<Gru>, mc::RecurrentStateActions<double>>;
  const Agent uniform(make_base<Gru>(2, 8, 4), StateRegistry(mc::RecurrentStateActions<double>()), 4);
  CHECK(uniform.params().mc_head.b.isZero(0));
  Agent agent(make_base<Gru>(2, 8, 4), StateRegistry(mc::RecurrentStateActions<double>()), 4, {.noop_probability = 0.9});
  const ad::Matrix<double> b = agent.params().mc_head.b;
  const double total = b.array().exp().sum();
  CHECK(std::exp(b(0, 0)) / total == doctest::Approx(0.9).epsilon(1e-12));
  CHECK(b.bottomRows(3).isZero(0));
  CHECK(agent.params().mc_head.W == uniform.params().mc_head.W);
  agent.set_num_envs(50);
  std::mt19937_64 rng(1);
  std::mt19937_64 data(2);
  std::normal_distribution<double> normal;
  long noops = 0;
  for (int k = 0; k < 40; ++k) {
    const ad::Matrix<double> obs = ad::Matrix<double>::NullaryExpr(2, 50, [&] { return normal(data); });
    noops += (agent.act(obs, policy::ActMode::sample, rng).mc_choices.array() == 0).count();
  }
  CHECK(static_cast<double>(noops) / 2000.0 == doctest::Approx(0.9).epsilon(0.03));
  for (const double p : {0.0, 1.0, -0.5, std::nan("")}) {
    const auto message = ssmrl::test::message_of<InvalidArgument>([&] {
      Agent refused(make_base<Gru>(2, 8, 4), StateRegistry(mc::RecurrentStateActions<double>()), 4,
                    {.noop_probability = p});
    });
    CHECK(message.find("mc::McPolicy: head.noop_probability") != std::string::npos);
  }
}

TEST_CASE("replay buffers refuse trajectories with MC actions, whose segments would replay as noop") {
  auto agent = make_state_policy<Gru>(2, 5);
  env::EnvBatch<env::RegimeSwitch> batch(2, env::RegimeSwitch{}, 9);
  std::mt19937_64 rng(3);
  const auto t = rl::collect(agent, batch, 50, policy::ActMode::sample, rng);
  REQUIRE_FALSE(t.mc.empty());
  adapt::ExperienceBuffer<double> buffer(2, 1, agent.state().rows(), {.capacity = 8, .segment_length = 25});
  const auto message = test::message_of<InvalidArgument>([&] { buffer.add(t); });
  CHECK(message.find("adapt::ExperienceBuffer::add: the trajectories record MC actions (100 MC choices)") !=
        std::string::npos);
  CHECK(buffer.size() == 0);
  auto plain = t;
  plain.mc = {};
  buffer.add(plain);
  CHECK(buffer.size() == 4);
}

TEST_CASE("training replays a rollout's MC actions: identical log-probabilities and states (GRU, LSTM, SSM)") {
  SUBCASE("GRU") { check_replay<Gru>(); }
  SUBCASE("LSTM") { check_replay<Lstm>(); }
  SUBCASE("diagonal SSM, fused scan") { check_replay<Ssm>(); }
}

TEST_CASE("observation focus: older tokens zeroed and the visible share appended, replayed in training") {
  using Focus = mc::ObservationFocus<double>;
  using Registry = mc::McRegistry<mc::RecurrentStateActions<double>, Focus>;
  constexpr auto n = static_cast<ad::Index>(env::RecentMajority::observation_size);
  mc::McPolicy<Base<Gru>, mc::RecurrentStateActions<double>, Focus> agent(
      make_base<Gru>(n + 1, 8, 2), Registry(mc::RecurrentStateActions<double>(), Focus({.tokens = 32, .token_size = 3})), 2);
  agent.registry().set_active({"focus_long", "focus_short"});
  auto params = agent.params();
  params.mc_head.b << -1.0, -40.0, -40.0, -40.0, 0.0, 0.0;
  agent.set_params(params);
  CHECK(agent.observation_size() == n);
  // The input a focus gives: 15 newest tokens of 32 kept, share 15/32 appended.
  const Focus& focus = agent.registry().component<Focus>();
  const ad::Matrix<double> obs = ad::Matrix<double>::Ones(n, 2);
  ad::Matrix<double> input(n + 1, 2);
  const std::array<double, 2> kept{15, 0};
  focus.input_into(obs, kept.data(), input);
  CHECK(input.col(0).head(17 * 3).isZero(0));
  CHECK(input.col(0).segment(17 * 3, 15 * 3).isOnes(0));
  CHECK(input(n, 0) == 15.0 / 32.0);
  CHECK(input.col(1).isOnes(0));
  // A rollout on Recent Majority replays in training, focus at the same steps.
  env::EnvBatch<env::RecentMajority> batch(3, env::RecentMajority{}, 4);
  std::mt19937_64 rng(6);
  const auto t = rl::collect(agent, batch, 40, policy::ActMode::sample, rng);
  CHECK((t.mc.tokens.array() == 15).count() > 10);
  CHECK((t.mc.tokens.array() == 30).count() > 10);
  CHECK(t.mc.state_edited.isZero(0));
  ad::Tape<double> tape;
  const auto vars = nn::on_tape(tape, agent.params());
  const auto e = rl::evaluate(agent, tape, vars, t);
  CHECK((e.log_prob.value() - t.log_probs).cwiseAbs().maxCoeff() < 1e-10);
  CHECK((e.mc_log_prob.value() - t.mc.log_probs).cwiseAbs().maxCoeff() < 1e-10);
  // A focus lasts one step: the next step with noop sees every token again.
  agent.registry().set_active({});
  (void)agent.act(batch.observations().cast<double>(), policy::ActMode::sample, rng);
  CHECK(agent.effects().tokens().isZero(0));
}

TEST_CASE("choice timing: counts by the step of each first episode, or by the steps since a flag") {
  // Two environments over 6 steps (column k * 2 + i); environment 1's episode ends at step 2.
  struct Rollout {
    ad::Index envs = 2, steps = 6;
    ad::Matrix<double> observations = ad::Matrix<double>::Zero(2, 12);
    ad::Matrix<double> terminated = ad::Matrix<double>::Zero(1, 12);
    ad::Matrix<double> truncated = ad::Matrix<double>::Zero(1, 12);
    mc::McRecord<double> mc;
  } t;
  t.mc.choices.resize(1, 12);
  const std::array<int, 6> env0{0, 1, 1, 0, 2, 0};
  const std::array<int, 6> env1{1, 1, 0, 2, 2, 2};
  for (ad::Index k = 0; k < 6; ++k) {
    t.mc.choices(0, k * 2) = env0[static_cast<std::size_t>(k)];
    t.mc.choices(0, k * 2 + 1) = env1[static_cast<std::size_t>(k)];
  }
  t.terminated(0, 2 * 2 + 1) = 1;
  t.observations(1, 2 * 2) = 1;  // environment 0's flag at step 2
  const std::vector<std::string> names{"noop", "a", "b"};

  const auto by_step = mc::choice_timing(t, names);
  REQUIRE(by_step.counts.size() == 6);
  CHECK(by_step.actions == names);
  CHECK(by_step.steps_at(0) == 2);
  CHECK(by_step.steps_at(2) == 2);
  CHECK(by_step.steps_at(3) == 1);  // environment 1 stopped at its episode's end
  CHECK(by_step.counts[1] == std::vector<long>{0, 2, 0});
  CHECK(by_step.counts[2] == std::vector<long>{1, 1, 0});
  CHECK(by_step.share(4, 2) == 1.0);
  CHECK_THROWS((void)by_step.share(6, 0));

  // Since the flag: environment 0's clocks are 0 1 0 1 2 3, environment 1's 0 1 2 (no flag).
  const auto since = mc::choice_timing(t, names, 1);
  REQUIRE(since.counts.size() == 4);
  CHECK(since.counts[0] == std::vector<long>{1, 2, 0});
  CHECK(since.counts[1] == std::vector<long>{1, 2, 0});
  CHECK(since.counts[2] == std::vector<long>{1, 0, 1});
  CHECK(since.counts[3] == std::vector<long>{1, 0, 0});
  CHECK(since.share(0, 1) == doctest::Approx(2.0 / 3.0));

  // Refusals name the argument.
  CHECK(test::message_of<InvalidArgument>([&] { (void)mc::choice_timing(t, names, 2); }).find("since_feature 2") !=
        std::string::npos);
  CHECK(test::message_of<InvalidArgument>([&] { (void)mc::choice_timing(t, {"noop", "a"}); }).find("choice 2") !=
        std::string::npos);
  CHECK_THROWS_AS((void)mc::choice_timing(t, {}), InvalidArgument);
  auto plain = t;
  plain.mc = {};
  CHECK(test::message_of<InvalidArgument>([&] { (void)mc::choice_timing(plain, names); }).find("MC policy") !=
        std::string::npos);
}

TEST_CASE("PPO trains the MC head by its own coefficients; its actions are knobs; checkpoints hold parameters only") {
  using Agent = decltype(make_state_policy<Gru>(2, 1));
  using Trainer = rl::Trainer<Agent, env::RegimeSwitch>;
  const rl::TrainerOptions options{.envs = 4, .steps = 32, .lr = 1e-3, .epochs = 2, .minibatches = 2, .seed = 3};
  const auto schema = Trainer::knob_schema(options);
  for (const std::string name : {"mc_pg_coef", "mc_entropy_coef", "mc_clear_state", "mc_noise_low", "mc_noise_high"})
    REQUIRE(schema.find(name).has_value());
  CHECK(std::get<bool>(schema[*schema.find("mc_noise_low")].default_value));
  CHECK_FALSE(schema.find("mc_noop").has_value());  // noop is always in the active set
  CHECK(ssmrl::test::message_of<InvalidArgument>([] {
          Trainer(make_state_policy<Gru>(2, 1), {.algorithm = rl::Algorithm::a2c});
        }).find("MC head trains with ppo") != std::string::npos);

  Trainer trainer(make_state_policy<Gru>(2, 1), options);
  const auto head_before = trainer.policy().params().mc_head.W;
  auto s = trainer.update();
  REQUIRE(s.mc_action_share.size() == 4);
  double total = 0;
  for (const double share : s.mc_action_share) {
    CHECK(share > 0);
    total += share;
  }
  CHECK(total == doctest::Approx(1.0));
  CHECK(std::isfinite(s.mc_entropy));
  CHECK(s.mc_entropy > 0.5);
  CHECK((trainer.policy().params().mc_head.W - head_before).cwiseAbs().maxCoeff() > 0);

  // Knobs off: those actions leave the active set and are never chosen; the knob reads back.
  const auto names = trainer.knob_schema();
  auto values = trainer.knob_values();
  values[*names.find("mc_noise_low")] = false;
  values[*names.find("mc_noise_high")] = false;
  trainer.set_knob_values(values);
  CHECK(trainer.policy().registry().active_names() == std::vector<std::string>{"noop", "clear_state"});
  CHECK_FALSE(std::get<bool>(trainer.knob_values()[*names.find("mc_noise_low")]));
  CHECK(std::get<bool>(trainer.knob_values()[*names.find("mc_clear_state")]));
  s = trainer.update();
  CHECK(s.mc_action_share[2] == 0.0);
  CHECK(s.mc_action_share[3] == 0.0);
  CHECK(s.mc_action_share[1] > 0.0);
  // A value outside the knob's type is refused and the active set stays.
  auto wrong = trainer.knob_values();
  wrong[*names.find("mc_clear_state")] = 1.5;
  CHECK(ssmrl::test::message_of<InvalidArgument>([&] { trainer.set_knob_values(wrong); }).find("mc_clear_state") !=
        std::string::npos);
  CHECK(trainer.policy().registry().active_names() == std::vector<std::string>{"noop", "clear_state"});
  // Every action off: noop only, chosen with probability 1.
  values[*names.find("mc_clear_state")] = false;
  trainer.set_knob_values(values);
  s = trainer.update();
  CHECK(s.mc_action_share[0] == 1.0);
  CHECK(s.mc_entropy == doctest::Approx(0.0).epsilon(1e-12));

  // With both MC coefficients 0 the MC head gets no gradient and stays put; the policy learns.
  auto frozen_options = options;
  frozen_options.mc_pg_coef = 0;
  frozen_options.mc_entropy_coef = 0;
  Trainer frozen(make_state_policy<Gru>(2, 1), frozen_options);
  const auto start = frozen.policy().params();
  (void)frozen.update();
  CHECK(frozen.policy().params().mc_head.W == start.mc_head.W);
  CHECK(frozen.policy().params().mc_head.b == start.mc_head.b);
  CHECK((frozen.policy().params().policy.head.W - start.policy.head.W).cwiseAbs().maxCoeff() > 0);

  // A checkpoint holds the parameters, named policy.* and mc_head.*, and nothing of the transient
  // MC state: a step with noise on every environment leaves it byte for byte the same.
  Agent agent = trainer.policy();
  agent.registry().set_active({"noise_high"});
  auto p = agent.params();
  p.mc_head.b << 0.0, 0.0, 0.0, 40.0;
  // clear_state over noop on about half the features (a fixed direction through them).
  for (ad::Index c = 0; c < p.mc_head.W.cols(); ++c) p.mc_head.W(1, c) = p.mc_head.W(0, c) + (c % 2 == 0 ? 5.0 : -5.0);
  agent.set_params(p);
  const auto file = io::checkpoint_file(agent);
  CHECK(file.tensors.size() == nn::parameter_names(agent.params()).size());
  for (const auto& t : file.tensors) CHECK((t.name.rfind("policy.", 0) == 0 || t.name.rfind("mc_head.", 0) == 0));
  agent.set_num_envs(3);
  std::mt19937_64 rng(4);
  const ad::Matrix<double> obs = ad::Matrix<double>::Constant(2, 3, 0.5);
  (void)agent.act(obs, policy::ActMode::sample, rng);
  REQUIRE((agent.effects().state_edited().array() != 0).count() > 0);
  const auto after = io::checkpoint_file(agent);
  REQUIRE(after.tensors.size() == file.tensors.size());
  for (std::size_t i = 0; i < file.tensors.size(); ++i) CHECK(after.tensors[i].bytes == file.tensors[i].bytes);
  CHECK(after.metadata.at("model") == file.metadata.at("model"));

  // Loaded into a policy of another seed, it acts as the original (greedy, and the clear, which
  // draws nothing: the noise generator is transient too).
  Agent loaded = make_state_policy<Gru>(2, 99);
  io::load_checkpoint(file, "memory", loaded);
  Agent original = agent;
  original.registry().set_active({"clear_state"});
  loaded.registry().set_active({"clear_state"});
  original.set_num_envs(3);
  loaded.set_num_envs(3);
  std::mt19937_64 data(6);
  std::normal_distribution<double> normal;
  int cleared = 0;
  for (int k = 0; k < 10; ++k) {
    const ad::Matrix<double> o = ad::Matrix<double>::NullaryExpr(2, 3, [&] { return normal(data); });
    const auto a = original.act(o, policy::ActMode::greedy, rng);
    const auto b = loaded.act(o, policy::ActMode::greedy, rng);
    CHECK(a.actions == b.actions);
    CHECK(a.mc_choices == b.mc_choices);
    CHECK(original.state() == loaded.state());
    cleared += static_cast<int>((a.mc_choices.array() == 1).count());
  }
  CHECK(cleared > 0);
  // A checkpoint of a policy whose components differ is refused, and nothing is applied.
  using Other = mc::McPolicy<Base<Gru>, mc::RecurrentStateActions<double>>;
  Other other(make_base<Gru>(2, 8, 1), StateRegistry(mc::RecurrentStateActions<double>({.low_std = 0.2})), 1);
  const auto kept = other.params().mc_head.W;
  CHECK(ssmrl::test::message_of<InvalidArgument>([&] { io::load_checkpoint(file, "memory", other); })
            .find("different model") != std::string::npos);
  CHECK(other.params().mc_head.W == kept);
}
