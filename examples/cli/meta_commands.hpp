// `ssmrl train`, `eval` and `adapt` for meta-training configurations.
#pragma once

#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <ssmrl/ssmrl.hpp>

#include "commands.hpp"
#include "configs.hpp"
#include "console.hpp"
#include "knob_options.hpp"
#include "log_columns.hpp"
#include "optimizer_options.hpp"
#include "ranks.hpp"
#include "run_directory.hpp"

namespace ssmrl::cli {

namespace fs = std::filesystem;

//! Marks the best checkpoint on `plot`: the first largest finite y of a log whose row i is after
//! iteration i + 1, as the training loops choose best.safetensors.
inline void mark_best(io::LinePlot& plot, const std::vector<double>& x, const std::vector<double>& y,
                      const std::string& unit) {
  std::size_t best = y.size();
  for (std::size_t i = 0; i < y.size(); ++i) {
    if (std::isfinite(y[i]) && (best == y.size() || y[i] > y[best])) best = i;
  }
  if (best < y.size())
    plot.markers.push_back({x[best], y[best], "best checkpoint (" + unit + " " + std::to_string(best + 1) + ")"});
}

//! The training curves, the best iteration marked.
inline void plot_training(const io::CsvTable& log, const fs::path& path, const std::string& title) {
  const auto x = log.column("iteration");
  const auto after = log.column("post_adaptation_return");
  io::LinePlot plot{title,
                    "meta-iteration",
                    "mean return per trajectory",
                    {{"before adaptation", x, log.column("pre_adaptation_return")}, {"after one step", x, after}}};
  mark_best(plot, x, after, "iteration");
  io::write_svg(path, plot);
}

template <class Config>
meta::MetaTrainerOptions trainer_options(const Config& config, const std::map<std::string, std::string>& metadata,
                                         const fs::path& path) {
  auto options = config.options;
  options.seed = metadata_integer<std::uint64_t>(metadata, "ssmrl.seed", path);
  options.meta_batch = metadata_integer<int>(metadata, "ssmrl.tasks_per_batch", path);
  SSMRL_REQUIRE(options.meta_batch > 0, "ssmrl: '", path.string(), "': ssmrl.tasks_per_batch ", options.meta_batch,
                " must be positive");
  options.first_order = metadata_value(metadata, "ssmrl.first_order", path) == "true";
  if (const auto it = metadata.find("ssmrl.optimizer"); it != metadata.end()) {
    options.outer_optimizer =
        optim::parse_optimizer_kind(it->second, "ssmrl: '" + path.string() + "': ssmrl.optimizer");
  }
  return options;
}

//! Loads a checkpoint into the trainer's policy and, for Meta-SGD, its learned rates, and the outer
//! optimiser's state where the checkpoint has it.
template <class Trainer>
std::map<std::string, std::string> load_meta_checkpoint(const fs::path& path, Trainer& trainer) {
  const auto file = io::read_safetensors(path);
  auto rates = trainer.inner_lrs();
  auto optimizer = trainer.optimizer();
  using Scalar = typename std::decay_t<decltype(trainer.policy())>::Scalar;
  auto stepped = nn::to_list<ad::Matrix<Scalar>>(trainer.policy().params());
  if (rates) {
    for (auto& m : nn::to_list<ad::Matrix<Scalar>>(*rates)) stepped.push_back(std::move(m));
  }
  restore_optimizer_state(file, path.string(), optimizer, stepped);
  auto metadata = meta::load_checkpoint(file, path.string(), trainer.policy(), rates, {optimizer_prefix});
  if (rates) trainer.set_inner_lrs(std::move(*rates));
  trainer.optimizer() = std::move(optimizer);
  return metadata;
}

//! Under mpirun: refuses parameters that differ between the ranks after `iteration` (they train in
//! lockstep, so a difference is a bug or a rank that read other files), comparing a hash of their bytes.
template <class Vector>
void check_ranks_agree(const Vector& params, long iteration) {
  if (ranks().size() == 1) return;
  std::vector<double> hashes(static_cast<std::size_t>(ranks().size()));
  hashes[static_cast<std::size_t>(ranks().rank())] =
      dist::value_hash(std::span(params.data(), static_cast<std::size_t>(params.size())));
  dist::allgather_parts(ranks(), std::span<double>(hashes), hashes.size(), 1);
  for (std::size_t r = 1; r < hashes.size(); ++r) {
    SSMRL_REQUIRE(hashes[r] == hashes[0], "ssmrl train: after meta-iteration ", iteration, " the parameters of rank ",
                  r, " differ from rank 0's; the ranks no longer train the same run");
  }
}

template <class Config>
int train(const Config& config, const TrainOptions& args) {
  const auto tasks_per_batch = args.tasks_per_batch > 0 ? args.tasks_per_batch : config.options.meta_batch;
  // Under mpirun, the ranks share each meta-batch's tasks and every rank trains the same parameters;
  // rank 0 alone writes and prints.
  using Trainer =
      meta::MetaTrainer<typename Config::Policy, typename Config::Tasks, typename Config::Algorithm, Ranks>;
  const bool writer = ranks().writer();
  const auto split_check = [&](int meta_batch) {
    SSMRL_REQUIRE(ranks().size() <= meta_batch, "ssmrl train: ", ranks().size(), " MPI ranks share a meta-batch of ",
                  meta_batch, " tasks (--tasks-per-batch); give each rank one task at least");
  };
  if (!args.resume) split_check(tasks_per_batch);  // before the run's directory is made
  auto configured = config.options;
  configured.first_order = args.first_order;
  const auto schema = Trainer::knob_schema(configured);
  const bool gradient_outer_step = schema.find("outer_lr").has_value();
  SSMRL_REQUIRE(gradient_outer_step || (args.optimizer.empty() && (args.meta_optimizer.empty() ||
                                                                   args.meta_optimizer == "none")),
                "ssmrl train: config '", config.name, "' takes TRPO outer steps; --optimizer and --meta-optimizer are "
                "for configs with a gradient outer step (such as navigation2d-adam)");
  const std::string optimizer =
      args.optimizer.empty() ? optim::optimizer_name(config.options.outer_optimizer) : args.optimizer;
  static_cast<void>(optim::parse_optimizer_kind(optimizer, "ssmrl train --optimizer"));
  static_cast<void>(make_meta_optimizer(args.meta_optimizer, 0));
  RunDirectory run_dir(args,
                       {{"ssmrl.config", config.name},
                        {"ssmrl.seed", std::to_string(args.seed)},
                        {"ssmrl.tasks_per_batch", std::to_string(tasks_per_batch)},
                        {"ssmrl.first_order", args.first_order ? "true" : "false"},
                        {"ssmrl.save_every", std::to_string(args.save_every)},
                        {"ssmrl.threads", std::to_string(args.threads)},
                        {"ssmrl.override_file", override_path(args)},
                        {"ssmrl.controller_every", std::to_string(args.controller_every)},
                        {"ssmrl.controller_learn", args.controller_learn ? "true" : "false"},
                        {"ssmrl.schedule", args.schedule},
                        {"ssmrl.optimizer", optimizer},
                        {"ssmrl.meta_optimizer", args.meta_optimizer}},
                       {{"ssmrl.seed", "seed", true},
                        {"ssmrl.tasks_per_batch", "tasks-per-batch", true},
                        {"ssmrl.first_order", "first-order", true},
                        {"ssmrl.save_every", "save-every", false},
                        {"ssmrl.threads", "threads", false},
                        {"ssmrl.override_file", "override-file", false},
                        {"ssmrl.controller_every", "controller-every", true},
                        {"ssmrl.controller_learn", "controller-learn", true},
                        {"ssmrl.schedule", "schedule", true},
                        {"ssmrl.optimizer", "optimizer", true},
                        {"ssmrl.meta_optimizer", "meta-optimizer", true}},
                       with_knob_columns(training_columns(), schema), knob_text_columns(schema));
  const fs::path dir = run_dir.path();
  const fs::path latest = dir / "latest.safetensors";
  const fs::path csv = dir / "train.csv";
  const fs::path svg = dir / "train.svg";
  auto& run = run_dir.start();
  const auto& metadata = run.metadata;
  const long start = run.start;
  auto& log = run.log;
  const long total = args.outer_steps > 0 ? args.outer_steps : config.outer_steps;
  if (args.resume && total <= start) {
    if (writer)
      std::printf("the run in %s is already at meta-iteration %ld; --outer-steps %ld asks for no more: nothing to do\n",
                dir.string().c_str(), start, total);
    return 0;
  }
  auto options = trainer_options(config, metadata, latest);
  const long save_every = metadata_integer(metadata, "ssmrl.save_every", latest);
  options.threads = metadata_integer<unsigned>(metadata, "ssmrl.threads", latest);
  // The knobs' defaults are the run's own options (a resumed first-order run's first_order is true).
  const auto run_schema = Trainer::knob_schema(options);
  RunKnobs knobs(run_schema, configured_knobs(run_schema, args, run.saved), dir, metadata.at("ssmrl.override_file"),
                 args.resume ? std::optional<long>(start) : std::nullopt, run.saved,
                 {args.controller, metadata_integer(metadata, "ssmrl.controller_every", latest),
                  metadata.at("ssmrl.controller_learn") == "true", "post_adaptation_return",
                  metadata.count("ssmrl.meta_optimizer") ? metadata.at("ssmrl.meta_optimizer") : "none",
                  options.seed, "outer_lr", "outer_weight_decay"},
                 metadata.at("ssmrl.schedule"), with_knob_columns(training_columns(), schema));
  split_check(options.meta_batch);
  Trainer trainer(config.make_policy(options.seed), typename Config::Tasks{}, options, typename Trainer::Env{},
                  typename Config::Algorithm{}, ranks());
  double best = -std::numeric_limits<double>::infinity();
  if (args.resume) {
    load_meta_checkpoint(latest, trainer);
    best = metadata_number(run.saved, "ssmrl.best_post_adaptation_return", latest);
  }
  trainer.set_iterations_done(start);
  auto save = [&](const fs::path& path, long iteration, double post_return) {
    if (!writer) return;
    auto m = metadata;
    m["ssmrl.iteration"] = std::to_string(iteration);
    m["ssmrl.post_adaptation_return"] = io::detail::number(post_return, "%.17g");
    m["ssmrl.best_post_adaptation_return"] = io::detail::number(best, "%.17g");
    knobs.add_metadata(m, iteration, path == latest);
    auto file = meta::checkpoint_file(trainer.policy(), trainer.inner_lrs(), m);
    add_optimizer_state(file, trainer.optimizer());
    io::write_safetensors(path, file);
    if (path == latest) knobs.checkpoint_written();
  };
  auto write_log = [&] {
    if (writer) log.write(csv);
  };
  if (!args.resume) {
    save(dir / "step_0.safetensors", 0, std::nan(""));
    save(latest, 0, std::nan(""));
    write_log();
    run_dir.commit();
  }
  if (writer) {
    std::printf("%s: %s\nseed %llu, %s-order, %d tasks per batch, meta-iterations %ld to %ld, %u threads%s, "
                "checkpoints in %s\n",
                config.name.c_str(), config.summary.c_str(), static_cast<unsigned long long>(options.seed),
                options.first_order ? "first" : "second", options.meta_batch, start, total, options.threads,
                ranks().size() > 1 ? (" on each of " + std::to_string(ranks().size()) + " MPI ranks").c_str() : "",
                dir.string().c_str());
    std::fflush(stdout);
  }
  StopOnSignals stop;
  // Every rank stops after the same iteration: when any of them was asked to.
  auto stopping = [&] { return dist::max_over_ranks(ranks(), stop.requested() ? 1.0 : 0.0) > 0; };
  Progress progress(start, total, args.quiet || !writer);
  long it = start;
  for (; it < total && !stopping(); ++it) {
    knobs.before_iteration(it, trainer, log);
    const auto s = trainer.iteration();
    check_ranks_agree(nn::flatten<typename Trainer::Scalar>(trainer.policy().params()), it + 1);
    log.add_cells(
        row_with_knobs({static_cast<double>(s.iteration + 1), s.pre_adaptation_return, s.post_adaptation_return,
                        s.trpo.accepted ? 1.0 : 0.0, s.trpo.kl, s.seconds, s.post_adaptation_std,
                        s.entropy, s.episode_length, s.grad_norm, s.outer_step_applied ? 1.0 : 0.0},
                       knobs));
    write_log();  // before the checkpoint: a resume may find extra rows, never missing ones
    if (s.post_adaptation_return > best) {
      best = s.post_adaptation_return;
      save(dir / "best.safetensors", it + 1, s.post_adaptation_return);
    }
    save(latest, it + 1, s.post_adaptation_return);
    if ((it + 1) % save_every == 0 || it + 1 == total)
      save(dir / ("step_" + std::to_string(it + 1) + ".safetensors"), it + 1, s.post_adaptation_return);
    if (writer && ((it + 1) % 10 == 0 || it + 1 == total)) plot_training(log, svg, config.name);
    char status[96];
    std::snprintf(status, sizeof status, "before %7.2f  after %7.2f  best %7.2f", s.pre_adaptation_return,
                  s.post_adaptation_return, best);
    progress.update(it + 1, status);
  }
  if (it < total) {
    // A rank that was not signalled itself stops as if by SIGTERM, as its signalled peer asked.
    const int status = stop.requested() ? stop.exit_status() : 128 + SIGTERM;
    if (!writer) return status;
    plot_training(log, svg, config.name);
    progress.finish_line();
    std::printf("stopped by %s after meta-iteration %ld of %ld; the latest checkpoint is %s\ncontinue with: %s\n",
                stop.requested() ? stop.signal_name() : "a signal to another MPI rank", it, total,
                latest.string().c_str(), resume_command(args, total).c_str());
    return status;
  }
  if (!writer) return 0;
  std::printf("meta-training: %ld iterations in %.1f s\n", total - start, progress.elapsed());
  if (knobs.has_controller()) std::printf("controller: %ld REINFORCE steps\n", knobs.controller_updates());
  std::printf("log %s\nplot %s\n", csv.string().c_str(), svg.string().c_str());
  return 0;
}

//! Returns on the held-out tasks before adaptation and after each of `steps` policy-gradient steps.
//! The held-out evaluation draws from `eval_seed` alone, not from the training seed.
template <class Config>
Evaluation evaluate(const Config& config, const fs::path& path, const std::map<std::string, std::string>& metadata,
                    long episodes, long steps, bool online, std::uint64_t eval_seed) {
  if (episodes <= 0) episodes = 20;
  auto options = trainer_options(config, metadata, path);
  options.trajectories = online ? 1 : static_cast<int>(episodes);
  meta::MetaTrainer<typename Config::Policy, typename Config::Tasks, typename Config::Algorithm> trainer(
      config.make_policy(options.seed), typename Config::Tasks{}, options);
  load_meta_checkpoint(path, trainer);
  Evaluation e{path.string(), config.name, metadata_integer(metadata, "ssmrl.iteration", path),
               trainer.tasks().held_out().size(), episodes, online, {}};
  const auto held_out =
      trainer.held_out_curves(static_cast<int>(steps), eval_seed, online ? static_cast<int>(episodes) : 1);
  for (const auto& task : held_out.curves) {
    for (const auto& run : task) e.returns.push_back(run);
  }
  return e;
}

}  // namespace ssmrl::cli
