// The subcommands of `ssmrl`: what each takes (filled in by the command-line parser in main.cpp)
// and the function that runs it, each in a translation unit of its own.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace ssmrl::cli {

//! The options given on the command line, by their long names without "--" (for checks that an
//! option was given explicitly, such as a conflict with the run being resumed).
using GivenOptions = std::set<std::string>;

struct TrainOptions {
  std::string config;
  std::uint64_t seed = 1;
  long outer_steps = 0;      //!< 0: the configuration's
  int tasks_per_batch = 0;   //!< 0: the configuration's
  std::string ckpt_dir;      //!< empty: runs/CONFIG[-first-order]-seedS
  bool resume = false;
  bool first_order = false;
  long save_every = 50;
  unsigned threads = 2;
  bool no_eval = false;
  bool quiet = false;
  std::vector<std::string> set;  //!< --set NAME=VALUE, in order
  std::string config_file;       //!< --config-file: a JSON object of knob values
  std::string override_file;     //!< --override-file: read before each iteration
  GivenOptions given;

  [[nodiscard]] std::string run_directory() const {
    return !ckpt_dir.empty() ? ckpt_dir
                             : "runs/" + config + (first_order ? "-first-order" : "") + "-seed" + std::to_string(seed);
  }
};

struct EvalOptions {
  std::string checkpoint;
  long episodes = 0;        //!< 0: the configuration's
  long adapt_steps = 0;     //!< `adapt`: policy-gradient steps (meta configs) or adapted episodes (--strategy)
  std::uint64_t eval_seed = 12345;  //!< the evaluation's own seed (not the training seed)
  bool online = false;
  bool json = false;
  std::string strategy;     //!< `adapt`: empty, or a test-time adaptation strategy, or "all"
  double lr = 0.001;
  int steps_per_call = 1;
  bool no_guards = false;
  GivenOptions given;
};

int run_train(const TrainOptions& options);
int run_train_meta(const TrainOptions& options);
int run_train_plain(const TrainOptions& options);
int run_eval(const EvalOptions& options);
int run_adapt(const EvalOptions& options);
int run_configs();
//! `ssmrl configs --knobs NAME`: the knobs of a configuration, with types, bounds and defaults.
int run_config_knobs(const std::string& name);

//! Whether `name` is a meta-training configuration (false for plain ones); throws for unknown names.
bool is_meta_config(const std::string& name);

}  // namespace ssmrl::cli
