// `ssmrl train`, `eval` and `adapt` for meta-training configurations.
#pragma once

#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>
#include <string>

#include <ssmrl/ssmrl.hpp>

#include "arguments.hpp"
#include "configs.hpp"
#include "console.hpp"
#include "run_directory.hpp"

namespace ssmrl::cli {

namespace fs = std::filesystem;

inline const std::vector<std::string>& training_columns() {
  static const std::vector<std::string> columns{"iteration", "pre_adaptation_return", "post_adaptation_return",
                                                "trpo_accepted", "trpo_kl", "seconds"};
  return columns;
}

inline void plot_training(const io::CsvTable& log, const fs::path& path, const std::string& title) {
  const auto x = log.column("iteration");
  io::write_svg(path, {title,
                       "meta-iteration",
                       "mean return per trajectory",
                       {{"before adaptation", x, log.column("pre_adaptation_return")},
                        {"after one step", x, log.column("post_adaptation_return")}}});
}

template <class Config>
meta::MetaTrainerOptions trainer_options(const Config& config, const std::map<std::string, std::string>& metadata,
                                         const fs::path& path) {
  auto options = config.options;
  options.seed = std::stoull(metadata_value(metadata, "ssmrl.seed", path));
  options.meta_batch = std::stoi(metadata_value(metadata, "ssmrl.tasks_per_batch", path));
  options.first_order = metadata_value(metadata, "ssmrl.first_order", path) == "true";
  return options;
}

template <class Config>
int train(const Config& config, const Arguments& args) {
  const bool resume = args.flag("resume");
  const auto seed = static_cast<std::uint64_t>(args.integer("seed", 1));
  const fs::path dir = args.run_directory(config.name);
  const fs::path latest = dir / "latest.safetensors";
  const fs::path csv = dir / "train.csv";
  const fs::path svg = dir / "train.svg";
  auto run = open_run(dir, args,
                      {{"ssmrl.config", config.name},
                       {"ssmrl.seed", std::to_string(seed)},
                       {"ssmrl.tasks_per_batch", std::to_string(args.integer("tasks-per-batch", config.options.meta_batch, 1))},
                       {"ssmrl.first_order", args.flag("first-order") ? "true" : "false"}},
                      {{"ssmrl.seed", "seed"}, {"ssmrl.tasks_per_batch", "tasks-per-batch"}, {"ssmrl.first_order", "first-order"}},
                      training_columns());
  const auto& metadata = run.metadata;
  const long start = run.start;
  auto& log = run.log;
  auto policy = config.make_policy(std::stoull(metadata.at("ssmrl.seed")));
  double best = -std::numeric_limits<double>::infinity();
  if (resume) {
    io::load_checkpoint(latest, policy);
    best = std::stod(metadata_value(run.saved, "ssmrl.best_post_adaptation_return", latest));
  }
  const long total = args.integer("outer-steps", config.outer_steps, 1);
  const long save_every = args.integer("save-every", 50, 1);
  auto options = trainer_options(config, metadata, latest);
  options.threads = static_cast<unsigned>(args.integer("threads", 2, 1));
  meta::MetaTrainer trainer(std::move(policy), typename Config::Tasks{}, options);
  trainer.set_iterations_done(start);
  auto save = [&](const fs::path& path, long iteration, double post_return) {
    auto m = metadata;
    m["ssmrl.iteration"] = std::to_string(iteration);
    m["ssmrl.post_adaptation_return"] = std::to_string(post_return);
    m["ssmrl.best_post_adaptation_return"] = std::to_string(best);
    io::save_checkpoint(path, trainer.policy(), m);
  };
  if (!resume) save(dir / "step_0.safetensors", 0, std::nan(""));
  std::printf("%s: %s\nseed %s, %s-order, %d tasks per batch, meta-iterations %ld to %ld, %u threads, checkpoints in %s\n",
              config.name.c_str(), config.summary.c_str(), metadata.at("ssmrl.seed").c_str(),
              options.first_order ? "first" : "second", options.meta_batch, start, total, options.threads,
              dir.string().c_str());
  std::fflush(stdout);
  Progress progress(start, total, args.flag("quiet"));
  for (long it = start; it < total; ++it) {
    const double before = progress.elapsed();
    const auto s = trainer.iteration();
    log.add_row({static_cast<double>(s.iteration), s.pre_adaptation_return, s.post_adaptation_return,
                 s.trpo.accepted ? 1.0 : 0.0, s.trpo.kl, progress.elapsed() - before});
    log.write(csv);  // before the checkpoint: a resume may find extra rows, never missing ones
    if (s.post_adaptation_return > best) {
      best = s.post_adaptation_return;
      save(dir / "best.safetensors", it + 1, s.post_adaptation_return);
    }
    save(latest, it + 1, s.post_adaptation_return);
    if ((it + 1) % save_every == 0 || it + 1 == total) save(dir / ("step_" + std::to_string(it + 1) + ".safetensors"), it + 1, s.post_adaptation_return);
    if ((it + 1) % 10 == 0 || it + 1 == total) plot_training(log, svg, config.name);
    char status[96];
    std::snprintf(status, sizeof status, "before %7.2f  after %7.2f  best %7.2f", s.pre_adaptation_return,
                  s.post_adaptation_return, best);
    progress.update(it + 1, status);
  }
  if (start < total) std::printf("meta-training: %ld iterations in %.1f s\n", total - start, progress.elapsed());
  std::printf("log %s\nplot %s\n", csv.string().c_str(), svg.string().c_str());
  return 0;
}

//! Returns on the held-out tasks before adaptation and after each of `steps` policy-gradient steps.
template <class Config>
Evaluation evaluate(const Config& config, const fs::path& path, const std::map<std::string, std::string>& metadata,
                    long episodes, long steps, bool online) {
  if (episodes <= 0) episodes = 20;
  auto options = trainer_options(config, metadata, path);
  auto policy = config.make_policy(options.seed);
  io::load_checkpoint(path, policy);
  options.trajectories = online ? 1 : static_cast<int>(episodes);
  meta::MetaTrainer trainer(std::move(policy), typename Config::Tasks{}, options);
  Evaluation e{path.string(), config.name, std::stol(metadata_value(metadata, "ssmrl.iteration", path)),
               trainer.tasks().held_out().size(), episodes, online, {}};
  for (const auto& task : trainer.tasks().held_out()) {
    for (long run = 0; run < (online ? episodes : 1); ++run) e.returns.push_back(trainer.adaptation_curve(task, static_cast<int>(steps)));
  }
  return e;
}

}  // namespace ssmrl::cli
