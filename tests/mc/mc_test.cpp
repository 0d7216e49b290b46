// The MC action registry: declared order, active-set indexing with non-prefix subsets and a
// curriculum that changes the set mid-run, environment ids (not batch rows), refusals that change
// nothing; buffers keyed by environment id that grow; the recurrent-state actions (clear, noise at
// two levels recorded for replay, transient), and noop leaving everything bit-identical.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <ssmrl/mc/registry.hpp>
#include <ssmrl/mc/state_actions.hpp>

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
  mc::McRegistry<mc::RecurrentStateActions<double>> registry(mc::RecurrentStateActions<double>(state, {.seed = 3}));
  const std::vector<mc::EnvId> ids{0, 1, 2, 3};
  // noop everywhere: bit-identical.
  registry.apply(std::vector<int>{0, 0, 0, 0}, ids);
  CHECK(state == before);
  // Environment 1 cleared, 2 noised low, 3 noised high, 0 untouched.
  registry.apply(std::vector<int>{0, 1, 2, 3}, ids);
  CHECK(state.col(0) == before.col(0));
  CHECK(state.col(1).isZero(0.0));
  auto& actions = registry.component<0>();
  REQUIRE(actions.drawn(2) != nullptr);
  REQUIRE(actions.drawn(3) != nullptr);
  CHECK(actions.drawn(0) == nullptr);
  // Replaying the recorded noise gives the state bit for bit.
  CHECK(state.col(2) == ad::Matrix<double>(before.col(2) + *actions.drawn(2)));
  CHECK(state.col(3) == ad::Matrix<double>(before.col(3) + *actions.drawn(3)));
  auto rms = [](const ad::Matrix<double>& m) { return std::sqrt(m.squaredNorm() / static_cast<double>(m.size())); };
  CHECK(rms(*actions.drawn(2)) == doctest::Approx(0.1).epsilon(0.3));
  CHECK(rms(*actions.drawn(3)) == doctest::Approx(0.5).epsilon(0.3));
  CHECK(actions.draws(3) == 1);
  // The draws come from (seed, id, count): another registry with the same seed draws the same.
  ad::Matrix<double> replay = before;
  mc::McRegistry<mc::RecurrentStateActions<double>> twin(mc::RecurrentStateActions<double>(replay, {.seed = 3}));
  twin.apply(std::vector<int>{0, 1, 2, 3}, ids);
  CHECK(replay == state);
  // Transient: the record is forgotten, the counts kept (the next draw is a new one).
  actions.clear_transient();
  CHECK(actions.drawn(3) == nullptr);
  registry.apply(std::vector<int>{0, 0, 0, 3}, ids);
  CHECK(*actions.drawn(3) != *twin.component<0>().drawn(3));
  // An id outside the state is refused before anything changes.
  const ad::Matrix<double> now = state;
  const std::vector<mc::EnvId> outside{2, 9};
  CHECK_THROWS_AS(registry.apply(std::vector<int>{1, 1}, outside), InvalidArgument);
  CHECK(state == now);
}
