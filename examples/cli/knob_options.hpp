// The knobs of `ssmrl train`: the configured values (--config-file, then --set), the hot-swap
// override file read before each iteration, the audit log, and the knob columns of train.csv.
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <ssmrl/ssmrl.hpp>

#include "commands.hpp"
#include "optimizer_options.hpp"
#include "ranks.hpp"
#include "run_directory.hpp"

namespace ssmrl::cli {

//! The parts of `text` between the separators `sep` ("a,b" gives "a" and "b").
inline std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::string part;
  std::istringstream in(text);
  while (std::getline(in, part, sep)) out.push_back(part);
  return out;
}

//! Knob values from NAME=VALUE assignments (--set), each checked against `schema`; later ones win.
inline control::KnobChanges knob_assignments(const control::KnobSchema& schema, const std::vector<std::string>& set,
                                             const char* caller) {
  control::KnobChanges changes;
  for (const auto& assignment : set) {
    const auto eq = assignment.find('=');
    SSMRL_REQUIRE(eq != std::string::npos && eq > 0, caller, ": '", assignment,
                  "' is not NAME=VALUE; the knobs are ", schema.names_text());
    const auto name = assignment.substr(0, eq);
    changes[name] = schema.at(name, caller).parse(assignment.substr(eq + 1), caller);
  }
  return changes;
}

//! The configured knob values of a run: the saved ones (a resumed run), then --config-file, then
//! each --set NAME=VALUE; all checked against `schema` before anything runs.
inline control::KnobChanges configured_knobs(const control::KnobSchema& schema, const TrainOptions& args,
                                             const std::map<std::string, std::string>& saved) {
  control::KnobChanges changes;
  if (const auto it = saved.find("ssmrl.knobs.config"); it != saved.end()) {
    changes = control::parse_knob_changes(it->second, schema, "the run's saved knobs");
  }
  if (!args.config_file.empty()) {
    for (const auto& [k, v] : control::parse_knob_changes(io::read_file("ssmrl train --config-file", args.config_file),
                                                          schema, args.config_file)) {
      changes[k] = v;
    }
  }
  for (const auto& [k, v] : knob_assignments(schema, args.set, "ssmrl train --set")) changes[k] = v;
  return changes;
}

//! The override file of a run, as an absolute path (empty: none), kept in its checkpoints so that a
//! resumed run watches the same file.
inline std::string override_path(const TrainOptions& args) {
  return args.override_file.empty() ? std::string() : fs::absolute(args.override_file).lexically_normal().string();
}

//! train.csv's column of a knob: "knob.NAME".
inline std::string knob_column(const control::Knob& k) { return "knob." + k.name; }

//! The knob columns that hold texts (choices).
inline std::vector<std::string> knob_text_columns(const control::KnobSchema& schema) {
  std::vector<std::string> out;
  for (const auto& k : schema.knobs()) {
    if (k.type == control::KnobType::choice) out.push_back(knob_column(k));
  }
  return out;
}

//! The controller of `ssmrl train --controller`: a GRU over telemetry columns of train.csv.
using CliController = control::MetaController<nn::GruCell<double>>;

//! A controller file of `ssmrl controller init` or `ssmrl pretrain` (or of a run), its network
//! built from the file's description and then loaded.
inline CliController load_cli_controller(const fs::path& path) {
  const auto file = io::read_safetensors(path);
  const auto& m = file.metadata;
  auto value = [&](const std::string& key) {
    const auto it = m.find(key);
    SSMRL_REQUIRE(it != m.end(), "ssmrl: '", path.string(), "' has no '", key, "' metadata; it is no controller file");
    return it->second;
  };
  nlohmann::json cell;
  std::vector<std::string> telemetry;
  long levels = 0;
  try {
    cell = nlohmann::json::parse(value("ssmrl.controller.cell"));
    telemetry = nlohmann::json::parse(value("ssmrl.controller.telemetry")).get<std::vector<std::string>>();
    levels = std::stol(value("ssmrl.controller.levels"));
    SSMRL_REQUIRE(cell.at("type") == "GruCell", "ssmrl: '", path.string(), "' holds a ", cell.at("type").dump(),
                  " controller; the command line runs GruCell controllers");
  } catch (const std::exception& e) {
    SSMRL_THROW(::ssmrl::InvalidArgument, ::ssmrl::detail::message("ssmrl: '", path.string(),
                                                                   "': unreadable controller description: ", e.what()));
  }
  CliController c(
      nn::GruCell<double>({.input = cell.at("input").get<ad::Index>(), .hidden = cell.at("hidden").get<ad::Index>()}),
      control::schema_of_json(value("ssmrl.controller.knobs"), path.string()), telemetry,
      {.levels = static_cast<int>(levels)});
  control::load_controller(path, c);
  return c;
}

//! Reads a schedule's JSON, [[iteration, {knob: value}], ...], checking every entry against `schema`.
inline std::vector<std::pair<long, control::KnobChanges>> parse_schedule(const std::string& text,
                                                                         const control::KnobSchema& schema) {
  std::vector<std::pair<long, control::KnobChanges>> out;
  if (text.empty()) return out;
  const auto doc = nlohmann::json::parse(text);
  SSMRL_REQUIRE(doc.is_array(), "ssmrl train: the schedule is not a JSON array");
  for (const auto& entry : doc) {
    SSMRL_REQUIRE(entry.is_array() && entry.size() == 2 && entry[0].is_number_integer(),
                  "ssmrl train: a schedule entry is not [iteration, {knobs}]: ", entry.dump());
    out.emplace_back(entry[0].get<long>(), control::parse_knob_changes(entry[1].dump(), schema, "the schedule"));
  }
  return out;
}

//! The knobs of one run: their layered values, the override file, the audit log, and a
//! controller or a scripted schedule writing the controller's layer.
struct ControllerSetup {
  std::string file;       //!< a controller file to start from (a new run)
  long every = 5;
  bool learn = false;
  std::string objective;  //!< the train.csv column whose improvement rewards a decision
  std::string meta_optimizer;  //!< --meta-optimizer: empty or "none", or a name of make_meta_optimizer()
  std::uint64_t meta_seed = 0;
  std::string lr_knob = "lr";  //!< the knobs a meta-optimizer sets
  std::string weight_decay_knob = "weight_decay";
};

class RunKnobs {
public:
  RunKnobs(control::KnobSchema schema, control::KnobChanges configured, const fs::path& dir,
           const std::string& override_file, std::optional<long> resume_at,
           const std::map<std::string, std::string>& saved = {}, const ControllerSetup& setup = {},
           const std::string& schedule = {}, const std::vector<std::string>& log_columns = {})
      : state_(std::move(schema)), dir_(dir), setup_(setup) {
    state_.set_layer(control::KnobSource::config, std::move(configured));
    // Of an mpirun job's ranks, rank 0 alone reads the override file and writes the audit log.
    if (ranks().writer()) {
      audit_.emplace(dir / "knobs_audit.csv", resume_at);
      if (!override_file.empty()) override_.emplace(override_file);
    }
    schedule_ = parse_schedule(schedule, state_.schema());
    if (const auto it = saved.find("ssmrl.knobs.controller"); resume_at && it != saved.end()) {
      state_.set_layer(control::KnobSource::controller,
                       control::parse_knob_changes(it->second, state_.schema(), "the run's controller knobs"));
    }
    SSMRL_REQUIRE(!(resume_at && !setup.file.empty()), "ssmrl train --resume: the run continues with its own "
                  "controller (the file its latest checkpoint names); --controller is for a new run");
    if (const auto it = saved.find("ssmrl.controller_file"); resume_at && it != saved.end() && !it->second.empty()) {
      controller_.emplace(load_cli_controller(dir / it->second));
      controller_file_ = it->second;
      restore_learning(saved);
    } else if (!setup.file.empty()) {
      controller_.emplace(load_cli_controller(setup.file));
    }
    meta_ = make_meta_optimizer(setup.meta_optimizer, setup.meta_seed);
    if (meta_) {
      SSMRL_REQUIRE(!controller_ && schedule_.empty(), "ssmrl train --meta-optimizer: a meta-optimizer writes the "
                    "controller's layer of the knobs, as --controller and schedules do; give one of them");
      SSMRL_REQUIRE(state_.schema().find(setup.lr_knob).has_value(), "ssmrl train --meta-optimizer: this configuration "
                    "has no knob '", setup.lr_knob, "' (its knobs are ", state_.schema().names_text(),
                    "); a meta-optimizer needs a gradient outer step, not TRPO");
      SSMRL_REQUIRE(std::find(log_columns.begin(), log_columns.end(), setup.objective) != log_columns.end(),
                    "ssmrl train --meta-optimizer: the objective '", setup.objective, "' is not a column of train.csv");
      if (const auto it = saved.find("ssmrl.meta_optimizer_state"); resume_at && it != saved.end()) {
        std::vector<double> numbers;
        std::size_t at = 0;
        const auto& text = it->second;
        while (at < text.size()) {
          auto end = text.find(' ', at);
          if (end == std::string::npos) end = text.size();
          double v = 0;
          const auto [stop, error] = std::from_chars(text.data() + at, text.data() + end, v);
          SSMRL_REQUIRE(error == std::errc{} && stop == text.data() + end, "ssmrl train --resume: the checkpoint's "
                        "meta-optimizer state holds '", text.substr(at, end - at), "', not a number");
          numbers.push_back(v);
          at = end + 1;
        }
        std::visit([&](auto& m) { m.set_state(numbers); }, *meta_);
      }
    }
    if (controller_) {
      SSMRL_REQUIRE(schedule_.empty(), "ssmrl train: a controller and a schedule both write the controller's knobs");
      const auto& steered = controller_->knobs();
      std::vector<std::string> names;
      for (const auto& k : steered.knobs()) names.push_back(k.name);
      SSMRL_REQUIRE(steered.same_knobs(state_.schema().subset(names, "ssmrl train --controller")),
                    "ssmrl train --controller: the controller steers ", steered.names_text(),
                    " with other types, ranges or moves than this configuration's knobs of those names");
      for (const auto& n : controller_->telemetry_names()) {
        SSMRL_REQUIRE(std::find(log_columns.begin(), log_columns.end(), n) != log_columns.end(),
                      "ssmrl train --controller: the controller reads '", n, "', which is not a column of train.csv");
      }
      SSMRL_REQUIRE(std::find(log_columns.begin(), log_columns.end(), setup.objective) != log_columns.end(),
                    "ssmrl train --controller: the objective '", setup.objective, "' is not a column of train.csv");
    }
  }

  [[nodiscard]] const control::KnobState& state() const noexcept { return state_; }
  [[nodiscard]] std::string config_json() const {
    return control::knob_changes_json(state_.layer(control::KnobSource::config));
  }

  //! Before iteration `iteration` (counted from 0): reads the override file, sets the trainer's knobs
  //! to the values in effect and records changes in the audit log.
  template <class Trainer>
  void before_iteration(long iteration, Trainer& trainer, const io::CsvTable& log) {
    for (const auto& [at, changes] : schedule_) {
      if (at == iteration) state_.merge_into_layer(control::KnobSource::controller, changes);
    }
    if (controller_ && iteration > 0 && iteration % setup_.every == 0 && !log.rows().empty()) decide(log);
    if (meta_ && iteration > 0 && !log.rows().empty()) steer(log, iteration);
    if (override_) {
      const auto check = override_->apply(state_);
      if (check.warning) std::fprintf(stderr, "ssmrl train: override file ignored: %s\n", check.warning->c_str());
    }
    if (ranks().size() > 1) {  // every rank trains with rank 0's override, read once
      auto text = control::knob_changes_json(state_.layer(control::KnobSource::override_file));
      ranks().broadcast(text, 0);
      if (!ranks().writer()) {
        state_.set_layer(control::KnobSource::override_file,
                         control::parse_knob_changes(text, state_.schema(), "rank 0's override"));
      }
    }
    if constexpr (requires { trainer.learning_rate_held(); }) {
      const auto lr = state_.schema().find("lr");
      const bool held = lr && state_.source(*lr) >= control::KnobSource::controller;
      trainer.set_knob_values(state_.values(), held);
    } else {
      trainer.set_knob_values(state_.values());
    }
    if (audit_) audit_->record(iteration, state_);
  }

  //! The checkpoint metadata of the knobs (with `with_controller`, the controller's file is written
  //! first, named by the iteration, and named in the metadata; the previous one goes after).
  void add_metadata(std::map<std::string, std::string>& m, long iteration, bool with_controller) {
    m["ssmrl.knobs.config"] = config_json();
    m["ssmrl.knobs.controller"] = control::knob_changes_json(state_.layer(control::KnobSource::controller));
    control::KnobChanges all;
    for (std::size_t i = 0; i < state_.schema().size(); ++i) all[state_.schema()[i].name] = state_.value(i);
    m["ssmrl.knobs"] = control::knob_changes_json(all);
    if (meta_) {
      std::string text;
      for (const double v : std::visit([](const auto& o) { return o.state(); }, *meta_)) {
        text += (text.empty() ? "" : " ") + io::detail::number(v, "%.17g");
      }
      m["ssmrl.meta_optimizer_state"] = text;
    }
    if (controller_ && with_controller) {
      const std::string name = "controller-" + std::to_string(iteration) + ".safetensors";
      control::save_controller(dir_ / name, *controller_, {{"ssmrl.iteration", std::to_string(iteration)}});
      m["ssmrl.controller_file"] = name;
      nlohmann::json learning;
      learning["updates"] = updates_;
      learning["rewards"] = rewards_;
      learning["awaiting"] =
          awaiting_ ? nlohmann::json::array({awaiting_->first, awaiting_->second}) : nlohmann::json();
      m["ssmrl.controller_learning"] = learning.dump();
      pending_removal_ = controller_file_ != name ? controller_file_ : std::string();
      controller_file_ = name;
    } else if (with_controller) {
      m["ssmrl.controller_file"] = "";
    }
  }
  //! After the checkpoint that names the new controller file: the previous file goes.
  void checkpoint_written() {
    if (pending_removal_.empty()) return;
    std::error_code ec;
    fs::remove(dir_ / pending_removal_, ec);
    pending_removal_.clear();
  }
  [[nodiscard]] bool has_controller() const noexcept { return controller_.has_value(); }
  [[nodiscard]] const std::optional<CliMetaOptimizer>& meta_optimizer() const noexcept { return meta_; }
  [[nodiscard]] long controller_updates() const noexcept { return updates_; }

  //! The knob cells of a train.csv row: numbers (bools 0/1), choices as text.
  [[nodiscard]] std::vector<io::CsvTable::Cell> cells() const {
    std::vector<io::CsvTable::Cell> out;
    for (std::size_t i = 0; i < state_.schema().size(); ++i) {
      const auto& k = state_.schema()[i];
      const auto v = state_.value(i);
      if (k.type == control::KnobType::choice) out.emplace_back(std::get<std::string>(v));
      else out.emplace_back(k.number(v));
    }
    return out;
  }

private:
  // The rewards of decisions not yet learnt from, the decision awaiting its reward and the count of
  // REINFORCE steps, as the checkpoint holds them (absent in runs of older versions).
  void restore_learning(const std::map<std::string, std::string>& saved) {
    const auto it = saved.find("ssmrl.controller_learning");
    if (it == saved.end()) return;
    try {
      const auto j = nlohmann::json::parse(it->second);
      updates_ = j.at("updates").get<long>();
      rewards_ = j.at("rewards").get<std::vector<double>>();
      if (!j.at("awaiting").is_null()) {
        awaiting_ = std::make_pair(j.at("awaiting").at(0).get<std::size_t>(), j.at("awaiting").at(1).get<double>());
      }
    } catch (const nlohmann::json::exception& e) {
      SSMRL_THROW(::ssmrl::InvalidArgument,
                  ::ssmrl::detail::message("ssmrl train --resume: the checkpoint's controller learning state is not "
                                           "readable: ", e.what()));
    }
  }

  // One decision from the last logged row; first the reward of the decision before (the mean of
  // the objective over the rows since it, less its value when it was made), and with learning a
  // REINFORCE step once 8 decisions have their rewards.
  void decide(const io::CsvTable& log) {
    const auto& row = log.rows().back();
    const double objective = row[log.column_index(setup_.objective)];
    if (awaiting_) {
      const auto values = log.column(setup_.objective);
      double sum = 0;
      long count = 0;
      for (std::size_t r = awaiting_->first; r < values.size(); ++r, ++count) sum += values[r];
      const double reward = count > 0 ? sum / static_cast<double>(count) - awaiting_->second : 0.0;
      rewards_.push_back(std::isfinite(reward) ? reward : 0.0);
    }
    if (setup_.learn && !rewards_.empty() && rewards_.size() == controller_->pending() && rewards_.size() >= 8) {
      controller_->reinforce(rewards_);
      rewards_.clear();
      ++updates_;
    }
    control::Telemetry t;
    for (const auto& n : controller_->telemetry_names()) t.add(n, row[log.column_index(n)]);
    control::KnobChanges current;
    for (const auto& k : controller_->knobs().knobs()) current[k.name] = state_.value(k.name);
    const auto d = controller_->decide(t, current, !setup_.learn);
    state_.merge_into_layer(control::KnobSource::controller, d.changes);
    awaiting_ = std::make_pair(log.rows().size(), std::isfinite(objective) ? objective : 0.0);
  }

  // A meta-optimizer's decision after `iteration` iterations, every every() of them, from the last
  // logged row: loss = -objective, the gradient norm where logged, the values in effect; none where
  // the row's objective or gradient norm is not a number.
  void steer(const io::CsvTable& log, long iteration) {
    const long every = std::visit([](const auto& o) { return static_cast<long>(o.every()); }, *meta_);
    if (iteration % every != 0) return;
    const auto& row = log.rows().back();
    const auto& schema = state_.schema();
    const auto lr = *schema.find(setup_.lr_knob);
    const auto wd = schema.find(setup_.weight_decay_knob);
    control::Telemetry metrics;
    metrics.add("loss", -row[log.column_index(setup_.objective)]);
    if (const auto& c = log.columns(); std::find(c.begin(), c.end(), "grad_norm") != c.end()) {
      metrics.add("grad_norm", row[log.column_index("grad_norm")]);
    }
    // No decision on a row without the numbers (no episode finished yet, a skipped step).
    for (const double v : metrics.values) {
      if (!std::isfinite(v)) return;
    }
    metrics.add("lr", std::get<double>(state_.value(lr)));
    metrics.add("weight_decay", wd ? std::get<double>(state_.value(*wd)) : 0.0);
    const auto c = std::visit([&](auto& o) { return o.update(metrics, iteration); }, *meta_);
    control::KnobChanges changes;
    const metaopt::Bounds bounds;
    if (c.lr) {
      changes[setup_.lr_knob] =
          std::clamp(*c.lr, std::max(bounds.min_lr, schema[lr].lower), std::min(bounds.max_lr, schema[lr].upper));
    }
    if (c.weight_decay && wd) {
      changes[setup_.weight_decay_knob] = std::clamp(*c.weight_decay, std::max(0.0, schema[*wd].lower),
                                                     std::min(bounds.max_weight_decay, schema[*wd].upper));
    }
    if (!changes.empty()) state_.merge_into_layer(control::KnobSource::controller, changes);
  }

  control::KnobState state_;
  std::optional<CliMetaOptimizer> meta_;
  std::optional<control::OverrideFile> override_;
  std::optional<control::AuditLog> audit_;
  fs::path dir_;
  ControllerSetup setup_;
  std::vector<std::pair<long, control::KnobChanges>> schedule_;
  std::optional<CliController> controller_;
  std::string controller_file_;
  std::string pending_removal_;
  std::optional<std::pair<std::size_t, double>> awaiting_;  //!< the last decision's first row and objective then
  std::vector<double> rewards_;
  long updates_ = 0;
};

//! `columns` followed by a column per knob.
inline std::vector<std::string> with_knob_columns(std::vector<std::string> columns, const control::KnobSchema& schema) {
  for (const auto& k : schema.knobs()) columns.push_back(knob_column(k));
  return columns;
}

//! A row of numbers, then the knobs' cells.
inline std::vector<io::CsvTable::Cell> row_with_knobs(const std::vector<double>& numbers, const RunKnobs& knobs) {
  std::vector<io::CsvTable::Cell> row(numbers.begin(), numbers.end());
  for (auto& c : knobs.cells()) row.push_back(std::move(c));
  return row;
}

}  // namespace ssmrl::cli
