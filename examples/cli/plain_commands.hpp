// `ssmrl train` and `eval` for plain (non-meta) configurations: policy-gradient training on one
// environment until a 100-episode evaluation reaches the configuration's threshold.
#pragma once

#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>
#include <numeric>
#include <string>

#include <ssmrl/ssmrl.hpp>

#include "arguments.hpp"
#include "configs.hpp"
#include "console.hpp"
#include "meta_commands.hpp"

namespace ssmrl::cli {

inline const std::vector<std::string>& plain_columns() {
  static const std::vector<std::string> columns{"update", "env_steps", "mean_return_last_100", "loss", "grad_norm",
                                                "seconds"};
  return columns;
}

template <class Policy, class Env>
int train(const PlainConfig<Policy, Env>& config, const Arguments& args) {
  SSMRL_REQUIRE(!args.has("tasks-per-batch") && !args.has("first-order"), "ssmrl train: config '", config.name,
                "' trains on one environment; --tasks-per-batch and --first-order are for meta-training configs");
  const bool resume = args.flag("resume");
  const auto seed = static_cast<std::uint64_t>(args.integer("seed", 1));
  const fs::path dir = args.run_directory(config.name);
  const fs::path latest = dir / "latest.safetensors";
  const fs::path csv = dir / "train.csv";
  auto run = open_run(dir, args, {{"ssmrl.config", config.name}, {"ssmrl.seed", std::to_string(seed)}},
                      {{"ssmrl.seed", "seed"}}, plain_columns());
  const auto& metadata = run.metadata;
  const long start = run.start;
  auto& log = run.log;
  auto policy = config.make_policy(std::stoull(metadata.at("ssmrl.seed")));
  double best = -std::numeric_limits<double>::infinity();
  if (resume) {
    io::load_checkpoint(latest, policy);
    best = std::stod(metadata_value(run.saved, "ssmrl.best_return", latest));
  }
  const long total = args.integer("outer-steps", config.outer_steps, 1);
  const long save_every = args.integer("save-every", 50, 1);
  auto options = config.options;
  options.seed = std::stoull(metadata.at("ssmrl.seed")) + static_cast<std::uint64_t>(start) * 7919;
  options.total_updates = total;
  rl::Trainer<Policy, Env> trainer(std::move(policy), options);
  trainer.set_updates_done(start);
  auto save = [&](const fs::path& path, long update) {
    auto m = metadata;
    m["ssmrl.iteration"] = std::to_string(update);
    m["ssmrl.best_return"] = std::to_string(best);
    io::save_checkpoint(path, trainer.policy(), m);
  };
  if (!resume) save(dir / "step_0.safetensors", 0);
  std::printf("%s: %s\nseed %s, updates %ld to at most %ld (%d environments x %d steps each), checkpoints in %s\n",
              config.name.c_str(), config.summary.c_str(), metadata.at("ssmrl.seed").c_str(), start, total,
              options.envs, options.steps, dir.string().c_str());
  if (resume) std::printf("(resumed: Adam's moments and the environments start afresh)\n");
  std::fflush(stdout);
  Progress progress(start, total, args.flag("quiet"));
  double evaluated = std::numeric_limits<double>::quiet_NaN();
  long it = start;
  for (; it < total; ++it) {
    const double before = progress.elapsed();
    const auto s = trainer.update();
    log.add_row({static_cast<double>(it + 1), static_cast<double>(s.env_steps), s.mean_return, s.loss, s.grad_norm,
                 progress.elapsed() - before});
    if ((it + 1) % 25 == 0) {  // the log first: a resume may find extra rows, never missing ones
      log.write(csv);
      save(latest, it + 1);
    }
    if ((it + 1) % save_every == 0) save(dir / ("step_" + std::to_string(it + 1) + ".safetensors"), it + 1);
    if (s.mean_return > best) {
      best = s.mean_return;
      save(dir / "best.safetensors", it + 1);
    }
    char status[96];
    std::snprintf(status, sizeof status, "mean return (last 100) %8.2f", s.mean_return);
    progress.update(it + 1, status);
    // Every 25 updates, the threshold is checked on fresh episodes of the current policy.
    if ((it + 1) % 25 == 0) {
      const auto returns = trainer.evaluate(config.eval_episodes, config.eval_mode, 1000003 + static_cast<std::uint64_t>(it));
      evaluated = std::accumulate(returns.begin(), returns.end(), 0.0) / static_cast<double>(returns.size());
      if (evaluated >= config.solved) {
        ++it;
        break;
      }
    }
  }
  log.write(csv);
  save(latest, it);
  save(dir / ("step_" + std::to_string(it) + ".safetensors"), it);
  io::write_svg(dir / "train.svg", {config.name, "environment steps", "mean return of the last 100 episodes",
                                    {{"training", log.column("env_steps"), log.column("mean_return_last_100")}}});
  const bool solved = evaluated >= config.solved;
  std::printf("%s after %ld updates, %.0f environment steps, %.1f s of training; last evaluation (%d episodes, %s "
              "actions): mean return %.2f, threshold %.0f\n",
              solved ? "solved" : "not solved", it, log.rows().empty() ? 0.0 : log.rows().back()[1], progress.elapsed(),
              config.eval_episodes, config.eval_mode == policy::ActMode::sample ? "sampled" : "mean", evaluated,
              config.solved);
  std::printf("log %s\nplot %s\n", csv.string().c_str(), (dir / "train.svg").string().c_str());
  return 0;
}

//! Returns of whole episodes of the checkpoint's policy with the configuration's evaluation mode.
template <class Policy, class Env>
Evaluation evaluate(const PlainConfig<Policy, Env>& config, const fs::path& path,
                    const std::map<std::string, std::string>& metadata, long episodes, long steps, bool online) {
  SSMRL_REQUIRE(steps == 0 && !online, "ssmrl adapt: config '", config.name,
                "' trains on one environment; `adapt` needs a meta-trained checkpoint");
  auto policy = config.make_policy(0);
  io::load_checkpoint(path, policy);
  rl::Trainer<Policy, Env> trainer(std::move(policy), config.options);
  if (episodes <= 0) episodes = config.eval_episodes;
  Evaluation e{path.string(), config.name, std::stol(metadata_value(metadata, "ssmrl.iteration", path)), 0, episodes,
               false, {}};
  for (const double r : trainer.evaluate(static_cast<int>(episodes), config.eval_mode, 12345)) e.returns.push_back({r});
  return e;
}

}  // namespace ssmrl::cli
