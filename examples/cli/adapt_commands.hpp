// `ssmrl adapt --strategy` for policies trained on one environment: deployed on held-out (shifted)
// dynamics, adapted after each episode by the test-time adapter with each strategy.
#pragma once

#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <ssmrl/ssmrl.hpp>

#include "commands.hpp"
#include "configs.hpp"
#include "console.hpp"
#include "meta_commands.hpp"

namespace ssmrl::cli {

struct StrategyResult {
  std::string strategy;
  std::vector<std::vector<double>> returns;  //!< [run][episode]
  long rolled_back = 0;
};

//! What a deployment needs of a configuration.
template <class Env>
struct Deployment {
  std::string config;
  Env shifted;
  std::string shift;
  policy::ActMode mode;
};

template <class Policy, class Env>
Deployment<Env> deployment_of(const PlainConfig<Policy, Env>& config) {
  return {config.name, config.shifted, config.shift, config.eval_mode};
}
template <class Policy, class Tasks, class Algorithm>
Deployment<typename Tasks::env_type> deployment_of(const MetaConfig<Policy, Tasks, Algorithm>& config) {
  SSMRL_REQUIRE(config.shifted.has_value(), "ssmrl adapt: config '", config.name,
                "' names no shifted dynamics for --strategy (cartpole-varied and the plain configs do)");
  return {config.name, *config.shifted, config.shift, policy::ActMode::sample};
}

//! Runs: `runs` environments with the shifted dynamics, `episodes` consecutive whole episodes each;
//! after each episode, one adapter call on that episode's steps. The hybrid strategy replays
//! experience of the nominal dynamics, collected before deployment.
template <class Policy, class Env>
StrategyResult deploy(const Deployment<Env>& config, const Policy& trained, const std::string& strategy,
                      long runs, long episodes, const adapt::AdapterOptions& options, std::uint64_t seed) {
  Policy pi = trained;
  adapt::StrategyRegistry<Policy> registry;
  adapt::Adapter adapter(pi, registry.make(strategy), options);
  const int horizon = config.shifted.max_episode_steps();
  const policy::ActMode mode = config.mode;
  std::mt19937_64 rng(seed);
  adapt::ExperienceBuffer<typename Policy::scalar_type> buffer(
      Env::observation_size, Env::action_size, static_cast<ad::Index>(trained.state().rows()),
      {.capacity = 4096, .segment_length = 25, .mode = adapt::BufferMode::reservoir, .seed = seed});
  if (strategy == "hybrid") {
    env::EnvBatch<Env> nominal(static_cast<std::size_t>(runs), Env{}, seed + 1);
    Policy acting = trained;
    acting.set_num_envs(runs);
    std::mt19937_64 nominal_rng(seed + 3);
    buffer.add(rl::collect(acting, nominal, horizon, policy::ActMode::sample, nominal_rng));
  }
  env::EnvBatch<Env> batch(static_cast<std::size_t>(runs), config.shifted, seed + 2);
  StrategyResult result{strategy, std::vector<std::vector<double>>(static_cast<std::size_t>(runs)), 0};
  for (long e = 0; e < episodes; ++e) {
    batch.reset();
    pi.set_num_envs(runs);
    pi.reset_all();
    const auto t = rl::collect(pi, batch, horizon, mode, rng);
    const auto returns = rl::first_episode_returns(t);
    for (long r = 0; r < runs; ++r) result.returns[static_cast<std::size_t>(r)].push_back(returns[static_cast<std::size_t>(r)]);
    if (e + 1 == episodes) break;
    // Greedy evaluation episodes carry no exploration; the adapter learns from sampled ones.
    auto data = t;
    if (mode != policy::ActMode::sample) {
      batch.reset();
      pi.reset_all();
      data = rl::collect(pi, batch, horizon, policy::ActMode::sample, rng);
    }
    if (strategy == "hybrid") {
      const auto replay = buffer.sample(runs);
      result.rolled_back += adapter.adapt(data, &replay).rolled_back;
      buffer.add(data);
    } else {
      result.rolled_back += adapter.adapt(data).rolled_back;
    }
  }
  return result;
}

template <class Config>
int adapt_strategies(const Config& c, const fs::path& path, const std::map<std::string, std::string>& metadata,
                     const EvalOptions& args) {
  using Policy = typename Config::Policy;
  const auto config = deployment_of(c);
  Policy trained = c.make_policy(0);
  io::load_checkpoint(path, trained, {.other_prefixes = {optimizer_prefix}});
  const long runs = args.episodes > 0 ? args.episodes : 10;
  const long episodes = (args.given.count("adapt-steps") == 1 ? args.adapt_steps : 4) + 1;
  adapt::AdapterOptions options{.lr = args.lr, .steps_per_call = args.steps_per_call};
  if (args.no_guards) options.guards = {.max_grad_norm = 0, .max_step = 0, .trust_radius = 0};
  // maml_step: the meta-training inner step, plain SGD at the meta-training inner rate.
  auto options_of = [&](const std::string& strategy) {
    auto o = options;
    if constexpr (requires { c.options.inner_lr; }) {
      if (strategy == "maml_step") {
        o.optimizer = adapt::OptimizerKind::sgd;
        o.lr = c.options.inner_lr;
      }
    }
    return o;
  };
  // The replay buffer keeps no MC record, so policies with an MC head have no hybrid strategy.
  constexpr bool mc_head = requires { typename Policy::registry_type; };
  std::vector<std::string> strategies{"none", "entropy", "policy_gradient"};
  if (!mc_head) strategies.emplace_back("hybrid");
  if constexpr (requires { c.options.inner_lr; }) strategies.push_back("maml_step");
  SSMRL_REQUIRE(!(mc_head && args.strategy == "hybrid"), "ssmrl adapt --strategy: hybrid replays buffered segments, "
                "which keep no MC actions; '", c.name, "' has an MC head (use entropy or policy_gradient)");
  if (args.strategy != "all") strategies = {args.strategy};
  std::vector<StrategyResult> results;
  for (const auto& s : strategies) results.push_back(deploy(config, trained, s, runs, episodes, options_of(s), 2024));
  if (args.json) {
    nlohmann::ordered_json j;
    j["checkpoint"] = path.string();
    j["config"] = config.config;
    j["iteration"] = metadata_integer(metadata, "ssmrl.iteration", path);
    j["shift"] = config.shift;
    j["runs"] = runs;
    j["lr"] = options.lr;
    j["steps_per_call"] = options.steps_per_call;
    j["guards"] = !args.no_guards;
    for (const auto& r : results) {
      auto per_episode = nlohmann::ordered_json::array();
      for (std::size_t e = 0; e < r.returns.front().size(); ++e) {
        const auto st = column_stats(r.returns, e);
        per_episode.push_back({{"episode", e + 1}, {"mean_return", st[0]}, {"std_return", st[1]}});
      }
      j["strategies"][r.strategy] = {{"episodes", per_episode}, {"rolled_back_calls", r.rolled_back}};
    }
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("checkpoint %s (config %s), deployed with the %s; %ld runs of %ld episodes, adapting after each\n"
              "(Adam lr %g, %d steps per call, guards %s); mean return (std over runs) of each episode:\n",
              path.string().c_str(), config.config.c_str(), config.shift.c_str(), runs, episodes, options.lr,
              options.steps_per_call,
              args.no_guards ? "off" : "on");
  std::printf("%-16s", "strategy");
  for (long e = 0; e < episodes; ++e) std::printf("   episode %-6ld", e + 1);
  std::printf(" rolled back\n");
  for (const auto& r : results) {
    std::printf("%-16s", r.strategy.c_str());
    for (long e = 0; e < episodes; ++e) {
      const auto st = column_stats(r.returns, static_cast<std::size_t>(e));
      std::printf(" %8.1f (%5.1f)", st[0], st[1]);
    }
    std::printf(" %ld\n", r.rolled_back);
  }
  return 0;
}

}  // namespace ssmrl::cli
