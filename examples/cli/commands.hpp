// The subcommands of `ssmrl`: what each takes (filled in by the command-line parser in main.cpp)
// and the function that runs it, each in a translation unit of its own.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include <ssmrl/control/knobs.hpp>

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
  std::string controller;        //!< --controller: a controller file (`ssmrl controller init`, `ssmrl pretrain`)
  long controller_every = 5;     //!< iterations between its decisions
  bool controller_learn = false; //!< REINFORCE on its decisions during the run
  //! A scripted schedule (`ssmrl sweep`): JSON [[iteration, {knob: value, ...}], ...], applied
  //! through the controller's layer.
  std::string schedule;
  std::string optimizer;              //!< --optimizer: sgd, adam or adamw (empty: the configuration's)
  std::string meta_optimizer = "none";  //!< --meta-optimizer: none, plateau, advanced-plateau or rl
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
  std::string mc_when;      //!< `eval --mc-when`: the timing plot of the MC choices (and its .csv beside)
  long mc_when_since = -1;  //!< `eval --mc-when-since`: the observation feature whose events restart the clock
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
//! A named configuration as `ssmrl configs` lists it.
struct ConfigSummary {
  std::string name;
  std::string summary;
  bool meta = false;     //!< meta-training (else plain training)
  long outer_steps = 0;  //!< its meta-iterations, or its most updates
};
std::vector<ConfigSummary> config_summaries();
//! The knobs of configuration `name` as `ssmrl train` runs it; sets `meta`. Throws for unknown names.
control::KnobSchema config_knob_schema(const std::string& name, bool& meta);
//! The columns of a configuration's train.csv before its knobs'.
std::vector<std::string> config_columns(const std::string& name);
//! `ssmrl configs --knobs NAME`: the knobs of a configuration, with types, bounds and defaults.
int run_config_knobs(const std::string& name);

struct ControllerInitOptions {
  std::string config;
  std::string knobs;       //!< comma-separated knob names
  std::string telemetry;   //!< comma-separated train.csv columns; empty: the configuration's default set
  long hidden = 32;
  std::uint64_t seed = 1;
  std::string out;
};
//! `ssmrl controller init`: a new MetaController<GRU> file for a configuration's knobs.
int run_controller_init(const ControllerInitOptions& options);

struct SweepOptions {
  std::string config;
  std::string dir;
  std::vector<std::string> grid;    //!< NAME=V1,V2,... : every combination
  std::vector<std::string> sample;  //!< NAME=LOW:HIGH : drawn (log-uniformly for log-scale knobs)
  long samples = 0;                 //!< random draws of --sample (0: grid only)
  long schedules = 0;               //!< per seed, runs with random piecewise-constant schedules of --sample
  long segment = 10;                //!< iterations per piece of a schedule
  std::string seeds = "1";          //!< e.g. 1-4 or 1,3,5
  long outer_steps = 0;
  unsigned threads = 2;
  std::uint64_t sweep_seed = 1;
};
//! `ssmrl sweep`: runs of a configuration over knob values and seeds, each with its train.csv.
int run_sweep(const SweepOptions& options);

struct PretrainOptions {
  std::string controller;           //!< the controller file, trained in place
  std::vector<std::string> runs;    //!< run directories or directories holding them (a sweep's)
  long window = 5;
  long steps = 300;
  std::string objective;            //!< empty: the configuration's
};
//! `ssmrl pretrain`: offline pretraining of a controller on logged runs.
int run_pretrain(const PretrainOptions& options);

struct RsiOptions {
  std::string action;               //!< start, stop, status, logs, restart, plain
  std::string dir;
  // The run's settings, fixed when its directory is created (rsi.json):
  std::string config = "navigation2d";
  std::uint64_t seed = 1;
  std::string hidden = "16,16";     //!< the starting policy's layer widths
  std::vector<std::string> set;     //!< NAME=VALUE: the starting knobs
  int tasks_per_batch = 10;
  long budget = 5;                  //!< meta-iterations per arm and cycle
  long cycles = 10;                 //!< cycles to run (0: until stopped)
  int eval_seeds = 8;
  int heldout_seeds = 8;
  int tasks_per_seed = 10;
  std::string proposal_knobs = "inner_lr,max_kl,gamma,gae_lambda";
  double widen_probability = 0.3;
  double shrink_probability = 0;
  double norm_probability = 0;
  bool normalised = false;          //!< the starting policy normalises its features (LayerNorm)
  bool null_trials = false;
  double degradation = 0.1;         //!< a fall of the mean primary score below the best that rolls back
  int replicates = 5;               //!< trainings of each arm per cycle, judged per replicate
  // How a command runs:
  bool foreground = false;          //!< start: run the loop in this process
  long timeout = 60;                //!< stop: seconds before the daemon is killed
  bool no_follow = false;           //!< logs: print and return
  long iterations = 0;              //!< plain: meta-iterations of the starting configuration
  GivenOptions given;
};
//! `ssmrl rsi ACTION --dir DIR`: the self-improvement loop as a daemon, and its plain-training baseline.
int run_rsi(const RsiOptions& options);

struct ServeOptions {
  std::string dir;                 //!< the runs it lists, starts and changes; nothing outside it
  std::string host = "127.0.0.1";
  int port = 8787;                 //!< 0: a free port
  std::string pretrained;          //!< the shipped checkpoints; empty: beside the program or the sources
};
//! `ssmrl serve`: the dashboard, a local web page over the runs in one directory.
int run_serve(const ServeOptions& options);

//! Whether `name` is a meta-training configuration (false for plain ones); throws for unknown names.
bool is_meta_config(const std::string& name);

}  // namespace ssmrl::cli
