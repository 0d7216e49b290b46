// The knobs of `ssmrl train`: the configured values (--config-file, then --set), the hot-swap
// override file read before each iteration, the audit log, and the knob columns of train.csv.
#pragma once

#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <ssmrl/ssmrl.hpp>

#include "commands.hpp"
#include "run_directory.hpp"

namespace ssmrl::cli {

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
  for (const auto& assignment : args.set) {
    const auto eq = assignment.find('=');
    SSMRL_REQUIRE(eq != std::string::npos && eq > 0, "ssmrl train --set: '", assignment,
                  "' is not NAME=VALUE; the knobs are ", schema.names_text());
    const auto name = assignment.substr(0, eq);
    changes[name] = schema.at(name, "ssmrl train --set").parse(assignment.substr(eq + 1), "ssmrl train --set");
  }
  return changes;
}

//! The override file of a run, as an absolute path (empty: none), kept in its checkpoints so that a
//! resumed run watches the same file.
inline std::string override_path(const TrainOptions& args) {
  return args.override_file.empty() ? std::string() : fs::absolute(args.override_file).lexically_normal().string();
}

//! Every knob's value in effect, as JSON (a checkpoint's record).
inline std::string knobs_in_effect_json(const control::KnobState& state) {
  control::KnobChanges all;
  for (std::size_t i = 0; i < state.schema().size(); ++i) all[state.schema()[i].name] = state.value(i);
  return control::knob_changes_json(all);
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

//! The knobs of one run: their layered values, the override file, the audit log.
class RunKnobs {
public:
  RunKnobs(control::KnobSchema schema, control::KnobChanges configured, const fs::path& dir,
           const std::string& override_file, std::optional<long> resume_at)
      : state_(std::move(schema)), audit_(dir / "knobs_audit.csv", resume_at) {
    state_.set_layer(control::KnobSource::config, std::move(configured));
    if (!override_file.empty()) override_.emplace(override_file);
  }

  [[nodiscard]] const control::KnobState& state() const noexcept { return state_; }
  [[nodiscard]] std::string config_json() const {
    return control::knob_changes_json(state_.layer(control::KnobSource::config));
  }

  //! Before iteration `iteration` (counted from 0): reads the override file, sets the trainer's knobs
  //! to the values in effect and records changes in the audit log.
  template <class Trainer>
  void before_iteration(long iteration, Trainer& trainer) {
    if (override_) {
      const auto check = override_->apply(state_);
      if (check.warning) std::fprintf(stderr, "ssmrl train: override file ignored: %s\n", check.warning->c_str());
    }
    if constexpr (requires { trainer.learning_rate_held(); }) {
      const auto lr = state_.schema().find("lr");
      const bool held = lr && state_.source(*lr) >= control::KnobSource::controller;
      trainer.set_knob_values(state_.values(), held);
    } else {
      trainer.set_knob_values(state_.values());
    }
    audit_.record(iteration, state_);
  }

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
  control::KnobState state_;
  std::optional<control::OverrideFile> override_;
  control::AuditLog audit_;
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
