// The classic-control environments against traces of the real Gymnasium environments: every step of
// every episode from the recorded state before it, and whole episodes where the traces allow.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <ssmrl/env/classic_control.hpp>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <variant>

using namespace ssmrl;
using nlohmann::json;

namespace {

std::string traces_path() {
  if (const char* env = std::getenv("SSMRL_GOLDEN_TRACES"); env != nullptr && *env != '\0') return env;
  return SSMRL_GOLDEN_TRACES_DEFAULT;
}

bool close(double x, double y, double tol) { return std::abs(x - y) <= tol * std::max(1.0, std::abs(y)); }

// Equal, or one unit in the last place apart.
bool float_close(float x, float y) { return x == y || std::nextafter(x, y) == y; }

template <class Env>
std::vector<float> action_of(const json& a) {
  if (a.is_array()) return {a[0].get<float>()};
  return {static_cast<float>(a.get<int>())};
}

template <class Env>
typename Env::State state_of(const json& s) {
  typename Env::State out{};
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = s[i].get<double>();
  return out;
}

struct Counts {
  int episodes = 0;
  int steps = 0;
  int whole = 0;
};

template <class Env>
void check_episode(const json& ep, bool whole_episode, Counts& counts) {
  Env env;
  const auto& actions = ep["actions"];
  const auto n = actions.size();
  REQUIRE(ep["max_episode_steps"].get<int>() == env.max_episode_steps());
  std::vector<float> obs(Env::observation_size);
  // Observation right after reset.
  env.set_state(state_of<Env>(ep["init_state"]), 0);
  env.observe(obs);
  for (std::size_t i = 0; i < obs.size(); ++i) CHECK(float_close(obs[i], ep["init_obs"][i].get<float>()));

  for (std::size_t k = 0; k < n; ++k) {
    INFO("step " << k);
    env.set_state(state_of<Env>(k == 0 ? ep["init_state"] : ep["states"][k - 1]), static_cast<int>(k));
    const auto a = action_of<Env>(actions[k]);
    const auto r = env.step(std::span<const float>(a));
    const auto& want = ep["states"][k];
    for (std::size_t i = 0; i < want.size(); ++i) CHECK(close(env.state()[i], want[i].get<double>(), 1e-12));
    env.observe(obs);
    for (std::size_t i = 0; i < obs.size(); ++i) CHECK(float_close(obs[i], ep["obs"][k][i].get<float>()));
    CHECK(close(r.reward, ep["rewards"][k].get<double>(), 1e-12));
    CHECK(r.terminated == ep["terminated"][k].get<bool>());
    CHECK(r.truncated == ep["truncated"][k].get<bool>());
    ++counts.steps;
  }
  if (whole_episode) {
    env.set_state(state_of<Env>(ep["init_state"]), 0);
    for (std::size_t k = 0; k < n; ++k) {
      INFO("whole episode, step " << k);
      const auto a = action_of<Env>(actions[k]);
      const auto r = env.step(std::span<const float>(a));
      const auto& want = ep["states"][k];
      for (std::size_t i = 0; i < want.size(); ++i) CHECK(close(env.state()[i], want[i].get<double>(), 1e-6));
      REQUIRE(r.terminated == ep["terminated"][k].get<bool>());
      REQUIRE(r.truncated == ep["truncated"][k].get<bool>());
    }
    CHECK(env.needs_reset());
    ++counts.whole;
  }
  ++counts.episodes;
}

}  // namespace

TEST_CASE("golden: classic control against Gymnasium traces, step by step and whole episodes") {
  const auto path = traces_path();
  INFO("traces: " << path);
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), "cannot open the golden traces at " << path);
  std::map<std::string, Counts> counts;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const auto ep = json::parse(line);
    const auto id = ep.at("env").get<std::string>();
    INFO(id << " seed " << ep.at("seed"));
    auto& c = counts[id];
    if (id == "CartPole-v1") check_episode<env::CartPole>(ep, false, c);
    else if (id == "Pendulum-v1") check_episode<env::Pendulum>(ep, true, c);
    else if (id == "MountainCar-v0") check_episode<env::MountainCar>(ep, true, c);
    else if (id == "MountainCarContinuous-v0") check_episode<env::MountainCarContinuous>(ep, true, c);
    else if (id == "Acrobot-v1") check_episode<env::Acrobot>(ep, false, c);
    else FAIL("unknown environment id '" << id << "'");
  }
  int total = 0;
  for (const auto& [id, c] : counts) {
    MESSAGE(id << ": " << c.episodes << " episodes, " << c.steps << " steps one at a time, " << c.whole
               << " whole episodes");
    total += c.episodes;
  }
  CHECK(total > 0);
}
