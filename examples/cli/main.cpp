// The ssmrl command line: train a policy on a named configuration, evaluate a checkpoint, adapt it
// (policy-gradient steps on held-out tasks, or test-time adaptation on shifted dynamics), and list
// the configurations. Parsing is CLI11's; each command runs in a translation unit of its own.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <limits>
#include <string>

#include <ssmrl/version.hpp>

#include "commands.hpp"
#include "ranks.hpp"

using namespace ssmrl::cli;

namespace {

constexpr long max_count = 1'000'000;

// A flag given twice is an error, as a repeated option is.
CLI::Option* flag(CLI::App* app, const std::string& name, bool& value, const std::string& description) {
  return app->add_flag(name, value, description)->multi_option_policy(CLI::MultiOptionPolicy::Throw);
}

// A whole number within [lo, hi]: "abc" is refused as not a number, a value outside as out of range.
template <class T>
CLI::Option* whole_number(CLI::Option* option, T lo, T hi) {
  return option->check(CLI::TypeValidator<T>(std::string()))->check(CLI::Range(lo, hi));
}

// A command on a checkpoint: --checkpoint and --episodes, which eval and adapt share.
CLI::App* checkpoint_command(CLI::App& app, const std::string& name, const std::string& description,
                             EvalOptions& options, const std::string& episodes) {
  auto* command = app.add_subcommand(name, description);
  command->add_option("--checkpoint", options.checkpoint, "Checkpoint file written by `ssmrl train`")
      ->required()
      ->check(CLI::ExistingFile);
  whole_number(command->add_option("--episodes", options.episodes, episodes), 1L, 100000L);
  command->add_option("--eval-seed", options.eval_seed,
                      "Seed of the evaluation (its own, not the training seed)")
      ->capture_default_str()
      ->check(CLI::TypeValidator<std::uint64_t>(std::string()));
  return command;
}

// The long names of the options given, for checks against a resumed run.
GivenOptions given_options(const CLI::App* app) {
  GivenOptions given;
  for (const auto* option : app->get_options()) {
    if (option->count() > 0 && !option->get_lnames().empty()) given.insert(option->get_lnames().front());
  }
  return given;
}

std::string version_text() {
  return "ssmrl " + std::to_string(ssmrl::version_major) + "." + std::to_string(ssmrl::version_minor) + "." +
         std::to_string(ssmrl::version_patch);
}

}  // namespace

int main(int argc, char** argv) {
  // Under mpirun, MPI starts here (and may take its own arguments out of argv).
  const RanksSession ranks_session(argc, argv);
  CLI::App app{"ssmrl: meta-reinforcement learning with state space model policies.\n"
               "Run `ssmrl COMMAND --help` for a command's options.",
               "ssmrl"};
  app.set_version_flag("--version", version_text());
  app.require_subcommand(1);
  app.fallthrough(false);

  TrainOptions train;
  auto* train_app = app.add_subcommand("train", "Train a policy on a named configuration (see `ssmrl configs`), "
                                                "writing checkpoints, a CSV log and an SVG plot to its run directory");
  train_app->add_option("--config", train.config, "Configuration name (see `ssmrl configs`)")->required();
  train_app->add_option("--seed", train.seed, "Seed of the policy's initialisation and of training")
      ->capture_default_str()
      ->check(CLI::Validator(
          [](std::string& text) {
            const bool digits =
                !text.empty() && text.size() <= 19 && text.find_first_not_of("0123456789") == std::string::npos;
            return digits ? std::string() : "value " + text + " is not a whole number from 0 to 10^19 - 1";
          },
          std::string()));
  whole_number(train_app->add_option("--outer-steps", train.outer_steps,
                                     "Meta-iterations (meta configs) or the most updates (plain configs) to train to; "
                                     "default: the configuration's"),
               1L, max_count);
  whole_number(train_app->add_option("--tasks-per-batch", train.tasks_per_batch,
                                     "Tasks per meta-iteration (meta configs); default: the configuration's"),
               1, 10000);
  train_app->add_option("--ckpt-dir", train.ckpt_dir, "Run directory; default: runs/CONFIG[-first-order]-seedSEED");
  flag(train_app, "--resume", train.resume, "Continue the run in the run directory from its latest checkpoint");
  flag(train_app, "--first-order", train.first_order, "First-order MAML (meta configs)");
  whole_number(train_app->add_option("--save-every", train.save_every,
                                     "Keep a step_N checkpoint every N iterations; kept with the run")
                   ->capture_default_str(),
               1L, max_count);
  whole_number(train_app->add_option("--threads", train.threads,
                                     "Threads sharing the tasks (meta configs); the results do not depend on it")
                   ->capture_default_str(),
               1U, 256U);
  flag(train_app, "--no-eval", train.no_eval, "Skip the evaluation on held-out tasks after meta-training");
  flag(train_app, "--quiet", train.quiet, "No progress bar or progress lines");
  train_app->add_option("--set", train.set,
                        "Set a knob, NAME=VALUE (repeatable; after --config-file); see `ssmrl configs --knobs CONFIG`");
  train_app->add_option("--config-file", train.config_file, "A JSON object of knob values, e.g. {\"lr\": 0.001}")
      ->check(CLI::ExistingFile);
  train_app->add_option("--override-file", train.override_file,
                        "A JSON object of knob values read before every iteration while it exists; it wins over the "
                        "configured values and schedules, and a resumed run keeps watching it");
  train_app->add_option("--controller", train.controller,
                        "A controller file (`ssmrl controller init`, `ssmrl pretrain`) that sets its knobs from the "
                        "logged telemetry; a person's override file still wins")
      ->check(CLI::ExistingFile);
  whole_number(train_app->add_option("--controller-every", train.controller_every,
                                     "Iterations between the controller's decisions")
                   ->capture_default_str(),
               1L, max_count);
  train_app->add_option("--optimizer", train.optimizer,
                        "The optimiser: sgd (momentum 0.9), adam or adamw; default: the configuration's (adam); its "
                        "state is kept in the run's checkpoints");
  train_app->add_option("--meta-optimizer", train.meta_optimizer,
                        "A meta-optimizer that sets the learning rate and weight decay knobs after every iteration "
                        "from the logged objective and gradient norm: none, plateau, advanced-plateau or rl "
                        "(REINFORCE, learning online); a person's override file still wins")
      ->capture_default_str();
  flag(train_app, "--controller-learn", train.controller_learn,
       "Fine-tune the controller during the run: REINFORCE on its sampled decisions, rewarded by the objective's "
       "improvement over the next window (else it takes its most probable decisions)");

  EvalOptions eval;
  auto* eval_app = checkpoint_command(
      app, "eval",
      "Evaluate a checkpoint: returns on the held-out tasks (meta configs) or of "
      "whole episodes (plain configs)",
      eval, "Episodes per task (meta configs) or in all (plain configs); default: the configuration's");
  flag(eval_app, "--json", eval.json, "One JSON object instead of a table");
  eval_app->add_option("--mc-when", eval.mc_when,
                       "Also write when the MC head chose each action in these episodes: a plot (FILE, .svg) and "
                       "its table (FILE with .csv); plain configs with MC actions");
  whole_number(eval_app->add_option("--mc-when-since", eval.mc_when_since,
                                    "With --mc-when: count the steps since observation feature K last exceeded 0.5 "
                                    "(an event the environment shows), not the steps of the episode"),
               0L, 1000000L)
      ->needs("--mc-when");

  EvalOptions adapt;
  auto* adapt_app = checkpoint_command(
      app, "adapt",
      "Adapt a checkpoint: policy-gradient steps on each held-out task (meta configs), or with --strategy, "
      "deployment on shifted dynamics with test-time adaptation after each episode",
      adapt, "Episodes per task and step; with --strategy, runs (default 10); default: the configuration's");
  whole_number(adapt_app->add_option("--adapt-steps", adapt.adapt_steps,
                                     "Policy-gradient steps (default 3); with --strategy, adapted episodes after the "
                                     "first (default 4)"),
               0L, 1000L);
  flag(adapt_app, "--online", adapt.online, "One episode per adaptation step, each run on its own");
  flag(adapt_app, "--json", adapt.json, "One JSON object instead of a table");
  adapt_app->add_option("--strategy", adapt.strategy,
                        "Test-time adaptation strategy: none, entropy, policy_gradient, hybrid, maml_step (meta "
                        "configs: the meta-training inner step, SGD at its rate), or all");
  adapt_app->add_option("--lr", adapt.lr, "Learning rate of test-time adaptation (Adam)")
      ->capture_default_str()
      ->check(CLI::TypeValidator<double>(std::string()))
      ->check(CLI::Validator(
          [](std::string& text) {
            double v = 0;
            CLI::detail::lexical_cast(text, v);
            return v > 0 && v <= 10 ? std::string() : "value " + text + " is not in (0, 10]";
          },
          "(0, 10]"));
  whole_number(adapt_app->add_option("--steps-per-call", adapt.steps_per_call, "Optimiser steps per adaptation call")
                   ->capture_default_str(),
               1, 1000);
  flag(adapt_app, "--no-guards", adapt.no_guards, "Test-time adaptation without its guards");

  auto* configs_app = app.add_subcommand("configs", "List the named configurations");
  std::string knobs_of;
  configs_app->add_option("--knobs", knobs_of,
                          "List the knobs of configuration NAME with their types, bounds and defaults");

  ControllerInitOptions init;
  auto* controller_app = app.add_subcommand("controller", "Controller files for `ssmrl train --controller`");
  controller_app->require_subcommand(1);
  auto* init_app = controller_app->add_subcommand("init", "Write a new (untrained) MetaController<GRU> for a "
                                                          "configuration's knobs");
  init_app->add_option("--config", init.config, "Configuration name (see `ssmrl configs`)")->required();
  init_app->add_option("--knobs", init.knobs, "Comma-separated knobs to steer (see `ssmrl configs --knobs NAME`)")
      ->required();
  init_app->add_option("--telemetry", init.telemetry,
                       "Comma-separated train.csv columns it reads; default: returns, entropy, KL, gradient norm and "
                       "the configuration's other measures");
  whole_number(init_app->add_option("--hidden", init.hidden, "GRU hidden units")->capture_default_str(), 1L, 4096L);
  init_app->add_option("--seed", init.seed, "Seed of its initial weights and decisions")->capture_default_str();
  init_app->add_option("--out", init.out, "The file to write")->required();

  SweepOptions sweep;
  auto* sweep_app = app.add_subcommand("sweep", "Train a configuration over a grid or random sample of knob values, "
                                                "random piecewise-constant schedules and seeds, one run directory each");
  sweep_app->add_option("--config", sweep.config, "Configuration name (see `ssmrl configs`)")->required();
  sweep_app->add_option("--dir", sweep.dir, "Where the runs and sweep.json go")->required();
  sweep_app->add_option("--grid", sweep.grid, "NAME=V1,V2,...: every combination (repeatable)");
  sweep_app->add_option("--sample", sweep.sample,
                        "NAME=LOW:HIGH (log-uniform on log-scale knobs) or NAME=* (repeatable)");
  whole_number(sweep_app->add_option("--samples", sweep.samples, "Runs per seed with values drawn from --sample"), 0L,
               max_count);
  whole_number(sweep_app->add_option("--schedules", sweep.schedules,
                                     "Runs per seed whose --sample knobs change every --segment iterations"),
               0L, max_count);
  whole_number(
      sweep_app->add_option("--segment", sweep.segment, "Iterations per piece of a schedule")->capture_default_str(),
      1L, max_count);
  sweep_app->add_option("--seeds", sweep.seeds, "Seeds: 1-4 or 1,3,5")->capture_default_str();
  whole_number(
      sweep_app->add_option("--outer-steps", sweep.outer_steps, "Iterations of each run; default: the configuration's"),
      1L, max_count);
  whole_number(sweep_app->add_option("--threads", sweep.threads, "Runs side by side")->capture_default_str(), 1U, 256U);
  sweep_app->add_option("--sweep-seed", sweep.sweep_seed, "Seed of the drawn values and schedules")
      ->capture_default_str();

  PretrainOptions pretrain;
  auto* pretrain_app = app.add_subcommand("pretrain",
                                          "Pretrain a controller offline on the train.csv logs of runs "
                                          "(a sweep's): advantage-weighted imitation of what improved the objective");
  pretrain_app->add_option("--controller", pretrain.controller, "The controller file, trained in place")
      ->required()
      ->check(CLI::ExistingFile);
  pretrain_app->add_option("--runs", pretrain.runs, "Run directories, or directories holding them")->required();
  whole_number(pretrain_app->add_option("--window", pretrain.window, "Rows per decision")->capture_default_str(), 1L,
               100000L);
  whole_number(pretrain_app->add_option("--steps", pretrain.steps, "Gradient steps")->capture_default_str(), 1L,
               max_count);
  pretrain_app->add_option("--objective", pretrain.objective,
                           "The train.csv column to improve; default: the configuration's return");

  RsiOptions rsi;
  auto* rsi_app = app.add_subcommand(
      "rsi", "Self-improvement: a daemon that proposes changes to a meta-trained policy (knobs, Net2Net growth), "
             "trains each on a budget and keeps it only when a paired test on evaluation seeds and a re-check on "
             "held-out seeds say it is better; `plain` spends the same compute on plain training");
  rsi_app->add_option("action", rsi.action,
                      "start, stop, status, logs, restart; plain (the starting configuration trained with the loop's "
                      "compute) or evaluate (the loop's policy), both on report seeds")
      ->required()
      ->check(CLI::IsMember({"start", "stop", "status", "logs", "restart", "plain", "evaluate"}));
  rsi_app->add_option("--dir", rsi.dir, "The run's directory (settings, history, checkpoints, log)")->required();
  rsi_app->add_option("--config", rsi.config, "A meta configuration with an MLP policy: navigation2d")
      ->capture_default_str();
  rsi_app->add_option("--seed", rsi.seed, "Seed of the starting policy, of training and of the proposals")
      ->capture_default_str();
  rsi_app->add_option("--hidden", rsi.hidden, "The starting policy's hidden layer widths")->capture_default_str();
  rsi_app->add_option("--set", rsi.set, "A starting knob, NAME=VALUE (repeatable)");
  whole_number(rsi_app->add_option("--tasks-per-batch", rsi.tasks_per_batch, "Tasks per meta-iteration")
                   ->capture_default_str(),
               1, 10000);
  whole_number(rsi_app->add_option("--budget", rsi.budget,
                                   "Meta-iterations of each arm (proposal, unchanged) per cycle")
                   ->capture_default_str(),
               1L, max_count);
  whole_number(rsi_app->add_option("--cycles", rsi.cycles, "Cycles to run, the baseline not counted (0: until stopped)")
                   ->capture_default_str(),
               0L, max_count);
  whole_number(rsi_app->add_option("--eval-seeds", rsi.eval_seeds, "Evaluation seeds that decide acceptance")
                   ->capture_default_str(),
               5, 1000);
  whole_number(rsi_app->add_option("--heldout-seeds", rsi.heldout_seeds, "Held-out seeds that confirm an acceptance")
                   ->capture_default_str(),
               5, 1000);
  whole_number(rsi_app->add_option("--tasks-per-seed", rsi.tasks_per_seed, "Goals per seed and evaluation")
                   ->capture_default_str(),
               1, 1000);
  rsi_app->add_option("--proposal-knobs", rsi.proposal_knobs, "Comma-separated knobs that proposals change")
      ->capture_default_str();
  rsi_app->add_option("--widen-probability", rsi.widen_probability, "Share of proposals that widen a layer")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  rsi_app->add_option("--shrink-probability", rsi.shrink_probability,
                      "Share of proposals that remove 1 to 20% of a layer's units, keeping those the next layer reads "
                      "most strongly (not function-preserving)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  rsi_app->add_option("--norm-probability", rsi.norm_probability,
                      "Share of proposals that switch the LayerNorm of the features on or off, starting from their "
                      "statistics along a rollout (not function-preserving)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  rsi_app->add_option("--degradation", rsi.degradation,
                      "A fall of the mean primary score below the best seen that rolls back (on its common scale)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1000.0));
  whole_number(rsi_app->add_option("--replicates", rsi.replicates,
                                   "Trainings of each arm per cycle (stream k for both), judged per replicate so that "
                                   "the test's noise includes training's; 1: one each, judged per evaluation seed")
                   ->capture_default_str(),
               1, 64);
  flag(rsi_app, "--normalised", rsi.normalised, "The starting policy normalises its features (a LayerNorm)");
  flag(rsi_app, "--null-trials", rsi.null_trials,
       "Every proposal only reseeds training: how often the test accepts a change that is none");
  flag(rsi_app, "--foreground", rsi.foreground, "start: run the loop in this process (Ctrl-C stops it after a cycle)");
  whole_number(rsi_app->add_option("--timeout", rsi.timeout, "stop: seconds to wait before the daemon is killed")
                   ->capture_default_str(),
               0L, 86400L);
  flag(rsi_app, "--no-follow", rsi.no_follow, "logs: print the log and return, not follow it");
  whole_number(rsi_app->add_option("--iterations", rsi.iterations,
                                   "plain: meta-iterations of the starting configuration; default: the compute of the "
                                   "loop's cycles so far"),
               1L, max_count);

  ServeOptions serve;
  auto* serve_app = app.add_subcommand(
      "serve", "The dashboard: a local web page over the runs in a directory (train, watch, steer, adapt, "
               "self-improvement); prints its URL with an access token");
  serve_app->add_option("--dir", serve.dir, "The directory of the runs it lists and starts (created if missing)")
      ->required();
  whole_number(serve_app->add_option("--port", serve.port, "Port (0: a free one)")->capture_default_str(), 0, 65535);
  serve_app->add_option("--host", serve.host, "Address to listen on; anything but loopback is reachable by others")
      ->capture_default_str();
  serve_app->add_option("--pretrained", serve.pretrained,
                        "The shipped checkpoints; default: share/ssmrl/pretrained beside the program, or the sources'");

  const std::string command = argc > 1 ? argv[1] : "";
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    const bool known = command == "train" || command == "eval" || command == "adapt" || command == "configs" ||
                       command == "controller" || command == "sweep" || command == "pretrain" || command == "rsi" ||
                       command == "serve";
    std::fprintf(stderr, "ssmrl%s: %s\nrun `ssmrl%s --help` for the options\n", known ? (" " + command).c_str() : "",
                 e.what(), known ? (" " + command).c_str() : "");
    return 2;
  }
  try {
    if (ranks().size() > 1) {
      SSMRL_REQUIRE(train_app->parsed(), "ssmrl ", command, ": only `ssmrl train` runs over several MPI ranks; run `ssmrl ",
                    command, "` without mpirun");
      check_same_command_line(argc, argv);
    }
    if (train_app->parsed()) {
      train.given = given_options(train_app);
      return run_train(train);
    }
    if (eval_app->parsed()) {
      eval.given = given_options(eval_app);
      return run_eval(eval);
    }
    if (adapt_app->parsed()) {
      adapt.given = given_options(adapt_app);
      return run_adapt(adapt);
    }
    if (configs_app->parsed()) return knobs_of.empty() ? run_configs() : run_config_knobs(knobs_of);
    if (init_app->parsed()) return run_controller_init(init);
    if (sweep_app->parsed()) return run_sweep(sweep);
    if (pretrain_app->parsed()) return run_pretrain(pretrain);
    if (serve_app->parsed()) return run_serve(serve);
    if (rsi_app->parsed()) {
      rsi.given = given_options(rsi_app);
      return run_rsi(rsi);
    }
  } catch (const std::exception& e) {
    // A rank that fails ends the whole job, so that the others do not wait for it.
    return fail_ranks(e.what(), 1);
  }
  return 2;
}
