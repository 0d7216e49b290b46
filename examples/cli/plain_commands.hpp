// `ssmrl train` and `eval` for plain (non-meta) configurations: policy-gradient training on one
// environment until a 100-episode evaluation reaches the configuration's threshold.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>
#include <numeric>
#include <optional>
#include <string>

#include <ssmrl/ssmrl.hpp>

#include "commands.hpp"
#include "configs.hpp"
#include "console.hpp"
#include "knob_options.hpp"
#include "meta_commands.hpp"
#include "optimizer_options.hpp"

namespace ssmrl::cli {

namespace detail {
inline std::string numbers_text(const std::vector<double>& values) {
  std::string s;
  for (const double v : values) s += (s.empty() ? "" : " ") + io::detail::number(v, "%.17g");
  return s;
}
inline std::vector<double> numbers_of(const std::string& text, const std::string& key, const fs::path& path) {
  std::vector<double> out;
  std::size_t at = 0;
  while (at < text.size()) {
    auto end = text.find(' ', at);
    if (end == std::string::npos) end = text.size();
    double v = 0;
    const auto [stop, error] = std::from_chars(text.data() + at, text.data() + end, v);
    SSMRL_REQUIRE(error == std::errc{} && stop == text.data() + end && end > at, "ssmrl: '", path.string(),
                  "': metadata '", key, "' holds '", text.substr(at, end - at), "', not a number");
    out.push_back(v);
    at = end + 1;
  }
  return out;
}
}  // namespace detail

//! Seeds of the evaluations that decide when training stops, and of the one reported after it.
inline std::uint64_t stopping_evaluation_seed(long update) { return 1000003 + static_cast<std::uint64_t>(update); }
inline std::uint64_t independent_evaluation_seed(long update) { return 7000001 + static_cast<std::uint64_t>(update); }

template <class Policy, class Env>
int train(const PlainConfig<Policy, Env>& config, const TrainOptions& args) {
  SSMRL_REQUIRE(args.given.count("tasks-per-batch") == 0 && !args.first_order && args.given.count("threads") == 0,
                "ssmrl train: config '", config.name,
                "' trains on one environment; --tasks-per-batch, --first-order and --threads are for meta-training configs");
  const long total = args.outer_steps > 0 ? args.outer_steps : config.outer_steps;
  auto trainer_options = config.options;
  trainer_options.total_updates = total;
  const std::string optimizer =
      args.optimizer.empty() ? optim::optimizer_name(config.options.optimizer) : args.optimizer;
  static_cast<void>(optim::parse_optimizer_kind(optimizer, "ssmrl train --optimizer"));
  static_cast<void>(make_meta_optimizer(args.meta_optimizer, 0));
  const auto schema = rl::Trainer<Policy, Env>::knob_schema(trainer_options);
  RunDirectory run_dir(args,
                       {{"ssmrl.config", config.name},
                        {"ssmrl.seed", std::to_string(args.seed)},
                        {"ssmrl.save_every", std::to_string(args.save_every)},
                        {"ssmrl.override_file", override_path(args)},
                        {"ssmrl.controller_every", std::to_string(args.controller_every)},
                        {"ssmrl.controller_learn", args.controller_learn ? "true" : "false"},
                        {"ssmrl.schedule", args.schedule},
                        {"ssmrl.optimizer", optimizer},
                        {"ssmrl.meta_optimizer", args.meta_optimizer}},
                       {{"ssmrl.seed", "seed", true},
                        {"ssmrl.save_every", "save-every", false},
                        {"ssmrl.override_file", "override-file", false},
                        {"ssmrl.controller_every", "controller-every", true},
                        {"ssmrl.controller_learn", "controller-learn", true},
                        {"ssmrl.schedule", "schedule", true},
                        {"ssmrl.optimizer", "optimizer", true},
                        {"ssmrl.meta_optimizer", "meta-optimizer", true}},
                       with_knob_columns(plain_columns_of<Policy>(), schema), knob_text_columns(schema));
  const fs::path dir = run_dir.path();
  const fs::path latest = dir / "latest.safetensors";
  const fs::path csv = dir / "train.csv";
  const fs::path svg = dir / "train.svg";
  auto& run = run_dir.start();
  const auto& metadata = run.metadata;
  const long start = run.start;
  auto& log = run.log;
  RunKnobs knobs(schema, configured_knobs(schema, args, run.saved), dir, metadata.at("ssmrl.override_file"),
                 args.resume ? std::optional<long>(start) : std::nullopt, run.saved,
                 {args.controller, metadata_integer(metadata, "ssmrl.controller_every", latest),
                  metadata.at("ssmrl.controller_learn") == "true", "mean_return_last_100",
                  metadata.count("ssmrl.meta_optimizer") ? metadata.at("ssmrl.meta_optimizer") : "none",
                  metadata_integer<std::uint64_t>(metadata, "ssmrl.seed", latest)},
                 metadata.at("ssmrl.schedule"), with_knob_columns(plain_columns_of<Policy>(), schema));
  if (args.resume) {
    if (metadata_value(run.saved, "ssmrl.solved", latest) == "true") {
      std::printf("the run in %s was solved after %ld updates (evaluation %s, independent evaluation %s): nothing to do\n",
                  dir.string().c_str(), start, metadata_value(run.saved, "ssmrl.stop_evaluation", latest).c_str(),
                  metadata_value(run.saved, "ssmrl.independent_evaluation", latest).c_str());
      return 0;
    }
    if (total <= start) {
      std::printf("the run in %s is already at update %ld; --outer-steps %ld asks for no more: nothing to do\n",
                  dir.string().c_str(), start, total);
      return 0;
    }
  }
  const auto seed = metadata_integer<std::uint64_t>(metadata, "ssmrl.seed", latest);
  auto policy = config.make_policy(seed);
  double best = -std::numeric_limits<double>::infinity();
  typename rl::Trainer<Policy, Env>::Progress counts;
  std::optional<io::SafetensorsFile> resumed;
  if (args.resume) {
    resumed = io::read_safetensors(latest);
    io::load_checkpoint(*resumed, latest.string(), policy, {.other_prefixes = {optimizer_prefix}});
    best = metadata_number(run.saved, "ssmrl.best_return", latest);
    counts.updates = start;
    counts.env_steps = metadata_integer(run.saved, "ssmrl.env_steps", latest);
    counts.episodes = metadata_integer(run.saved, "ssmrl.episodes", latest);
    counts.recent_returns = detail::numbers_of(metadata_value(run.saved, "ssmrl.recent_returns", latest),
                                               "ssmrl.recent_returns", latest);
  }
  const long save_every = metadata_integer(metadata, "ssmrl.save_every", latest);
  auto options = trainer_options;
  options.seed = seed + static_cast<std::uint64_t>(start) * 7919;
  if (metadata.count("ssmrl.optimizer")) {
    options.optimizer = optim::parse_optimizer_kind(metadata.at("ssmrl.optimizer"), "ssmrl train");
  }
  rl::Trainer<Policy, Env> trainer(std::move(policy), options, config.env);
  trainer.restore_progress(counts);
  if (resumed) {
    restore_optimizer_state(*resumed, latest.string(), trainer.optimizer(),
                            nn::to_list<ad::Matrix<typename Policy::Scalar>>(trainer.policy().params()));
  }
  double evaluated = std::numeric_limits<double>::quiet_NaN();
  double independent = std::numeric_limits<double>::quiet_NaN();
  bool solved = false;
  auto save = [&](const fs::path& path, long update) {
    auto m = metadata;
    const auto p = trainer.progress();
    m["ssmrl.iteration"] = std::to_string(update);
    m["ssmrl.best_return"] = io::detail::number(best, "%.17g");
    m["ssmrl.env_steps"] = std::to_string(p.env_steps);
    m["ssmrl.episodes"] = std::to_string(p.episodes);
    m["ssmrl.recent_returns"] = detail::numbers_text(p.recent_returns);
    m["ssmrl.solved"] = solved ? "true" : "false";
    m["ssmrl.stop_evaluation"] = io::detail::number(evaluated, "%.17g");
    m["ssmrl.independent_evaluation"] = io::detail::number(independent, "%.17g");
    knobs.add_metadata(m, update, path == latest);
    auto file = io::checkpoint_file(trainer.policy(), m);
    add_optimizer_state(file, trainer.optimizer());
    io::write_safetensors(path, file);
    if (path == latest) knobs.checkpoint_written();
  };
  auto plot = [&] {
    const auto x = log.column("env_steps");
    const auto y = log.column("mean_return_last_100");
    io::LinePlot p{config.name, "environment steps", "mean return of the last 100 episodes", {{"training", x, y}}};
    mark_best(p, x, y, "update");
    io::write_svg(svg, p);
    if constexpr (requires { typename Policy::registry_type; }) {  // how often the MC head chose each action
      io::LinePlot shares{config.name, "environment steps", "share of the rollout's MC choices", {}};
      for (const auto& c : plain_columns_of<Policy>()) {
        if (c.starts_with("mc_share.")) shares.series.push_back({c.substr(9), x, log.column(c)});
      }
      io::write_svg(dir / "mc_actions.svg", shares);
    }
  };
  if (!args.resume) {
    save(dir / "step_0.safetensors", 0);
    save(latest, 0);
    log.write(csv);
    run_dir.commit();
  }
  std::printf("%s: %s\nseed %llu, updates %ld to at most %ld (%d environments x %d steps each), optimiser %s, "
              "meta-optimizer %s, checkpoints in %s\n",
              config.name.c_str(), config.summary.c_str(), static_cast<unsigned long long>(seed), start, total,
              options.envs, options.steps, optim::optimizer_name(options.optimizer),
              knobs.meta_optimizer() ? metadata.at("ssmrl.meta_optimizer").c_str() : "none", dir.string().c_str());
  if (args.resume) std::printf("(resumed: the optimiser's state continues, the environments start afresh)\n");
  std::fflush(stdout);
  StopOnSignals stop;
  Progress progress(start, total, args.quiet);
  long it = start;
  for (; it < total && !stop.requested(); ++it) {
    const double before = progress.elapsed();
    knobs.before_iteration(it, trainer, log);
    const auto s = trainer.update();
    std::vector<double> numbers{static_cast<double>(it + 1), static_cast<double>(s.env_steps), s.mean_return, s.loss,
                                s.grad_norm, progress.elapsed() - before, s.return_std, s.episode_length, s.entropy,
                                s.kl, s.clip_fraction, s.explained_variance, s.lr};
    if constexpr (requires { typename Policy::registry_type; }) {
      numbers.push_back(s.mc_entropy);
      numbers.insert(numbers.end(), s.mc_action_share.begin(), s.mc_action_share.end());
    }
    log.add_cells(row_with_knobs(numbers, knobs));
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
      const auto returns = trainer.evaluate(config.eval_episodes, config.eval_mode, stopping_evaluation_seed(it));
      evaluated = std::accumulate(returns.begin(), returns.end(), 0.0) / static_cast<double>(returns.size());
      if (evaluated >= config.solved) {
        solved = true;
        ++it;
        break;
      }
    }
  }
  const bool stopped = stop.requested() && !solved;
  // The evaluation that stopped training is biased upward (the run stops on a lucky one): the figure
  // to report comes from episodes on seeds that took no part in that decision.
  if (!stopped) {
    const auto returns = trainer.evaluate(config.eval_episodes, config.eval_mode, independent_evaluation_seed(it));
    independent = std::accumulate(returns.begin(), returns.end(), 0.0) / static_cast<double>(returns.size());
  }
  log.write(csv);
  save(latest, it);
  if (!stopped) save(dir / ("step_" + std::to_string(it) + ".safetensors"), it);
  plot();
  progress.finish_line();
  if (stopped) {
    std::printf("stopped by %s after update %ld of at most %ld; the latest checkpoint is %s\ncontinue with: %s\n",
                stop.signal_name(), it, total, latest.string().c_str(), resume_command(args, total).c_str());
    return stop.exit_status();
  }
  const char* mode = config.eval_mode == policy::ActMode::sample ? "sampled" : "mean";
  std::printf("%s after %ld updates, %.0f environment steps, %.1f s of training\n", solved ? "solved" : "not solved", it,
              log.rows().empty() ? 0.0 : log.rows().back()[1], progress.elapsed());
  if (std::isnan(evaluated)) {
    std::printf("no evaluation came (one every 25 updates), threshold %g\n", config.solved);
  } else {
    std::printf("evaluation that %s (%d episodes, %s actions): mean return %.2f, threshold %g\n",
                solved ? "stopped training" : "came last", config.eval_episodes, mode, evaluated, config.solved);
  }
  std::printf("independent evaluation (%d episodes on other seeds, %s actions): mean return %.2f\n",
              config.eval_episodes, mode, independent);
  if (knobs.has_controller()) std::printf("controller: %ld REINFORCE steps\n", knobs.controller_updates());
  std::printf("log %s\nplot %s\n", csv.string().c_str(), svg.string().c_str());
  if constexpr (requires { typename Policy::registry_type; })
    std::printf("MC actions plot %s\n", (dir / "mc_actions.svg").string().c_str());
  return 0;
}

//! Returns of whole episodes of the checkpoint's policy with the configuration's evaluation mode.
template <class Policy, class Env>
Evaluation evaluate(const PlainConfig<Policy, Env>& config, const fs::path& path,
                    const std::map<std::string, std::string>& metadata, long episodes, long steps, bool online,
                    std::uint64_t eval_seed) {
  SSMRL_REQUIRE(steps == 0 && !online, "ssmrl adapt: config '", config.name,
                "' trains on one environment; `adapt` needs a meta-trained checkpoint");
  auto policy = config.make_policy(0);
  io::load_checkpoint(path, policy, {.other_prefixes = {optimizer_prefix}});
  rl::Trainer<Policy, Env> trainer(std::move(policy), config.options, config.env);
  if (episodes <= 0) episodes = config.eval_episodes;
  Evaluation e{path.string(), config.name, metadata_integer(metadata, "ssmrl.iteration", path), 0, episodes,
               false, {}};
  for (const double r : trainer.evaluate(static_cast<int>(episodes), config.eval_mode, eval_seed)) e.returns.push_back({r});
  return e;
}

//! `ssmrl eval --mc-when`: when the MC head of the checkpoint's policy chose each action, over the
//! episodes of the evaluation (the same seed, so the same episodes): the share of each action at each
//! value of the clock, plotted (`options.mc_when`) and tabled (the same name with .csv).
template <class Policy, class Env>
  requires requires { typename Policy::registry_type; }
void write_mc_when(const PlainConfig<Policy, Env>& config, const fs::path& path, const EvalOptions& options) {
  const fs::path svg = options.mc_when;
  auto policy = config.make_policy(0);
  io::load_checkpoint(path, policy, {.other_prefixes = {optimizer_prefix}});
  std::vector<std::string> names;
  for (const auto& a : policy.registry().actions()) names.push_back(a.name);
  rl::Trainer<Policy, Env> trainer(std::move(policy), config.options, config.env);
  const long episodes = options.episodes > 0 ? options.episodes : config.eval_episodes;
  const auto t = trainer.evaluation_trajectories(static_cast<int>(episodes), config.eval_mode, options.eval_seed);
  std::optional<ad::Index> since;
  if (options.mc_when_since >= 0) since = static_cast<ad::Index>(options.mc_when_since);
  const auto timing = mc::choice_timing(t, names, since);
  const std::string clock =
      since ? "steps since observation feature " + std::to_string(*since) + " exceeded 0.5" : "step of the episode";
  std::vector<std::string> columns{since ? "steps_since" : "step", "steps"};
  for (const auto& n : names) columns.push_back("share." + n);
  io::CsvTable table(columns);
  io::LinePlot plot{config.name + ": MC choices over " + std::to_string(episodes) + " evaluation episodes", clock,
                    "share of the MC choices", {}};
  for (const auto& n : names) plot.series.push_back({n, {}, {}});
  for (std::size_t k = 0; k < timing.counts.size(); ++k) {
    std::vector<double> row{static_cast<double>(k), static_cast<double>(timing.steps_at(k))};
    for (std::size_t a = 0; a < names.size(); ++a) {
      const double share = timing.share(k, a);
      row.push_back(share);
      if (std::isfinite(share)) {
        plot.series[a].x.push_back(static_cast<double>(k));
        plot.series[a].y.push_back(share);
      }
    }
    table.add_row(row);
  }
  fs::path csv = svg;
  csv.replace_extension(".csv");
  table.write(csv);
  io::write_svg(svg, plot);
  std::fprintf(options.json ? stderr : stdout, "MC choices by %s: plot %s, table %s\n", clock.c_str(),
               svg.string().c_str(), csv.string().c_str());
}

}  // namespace ssmrl::cli
