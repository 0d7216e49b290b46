// Offline pretraining of a MetaController from logged runs (train.csv files of sweeps): each run's
// rows in iteration order, cut into windows of k rows; at the start of each window a decision whose
// input is what was known before it (the telemetry of the row before, the knobs in effect then) and
// whose label is the move to the values in effect during the window, weighted by how much the
// objective improved over the window (advantage-weighted imitation).
#pragma once

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "ssmrl/control/meta_controller.hpp"
#include "ssmrl/io/csv.hpp"

namespace ssmrl::control {

struct WindowOptions {
  int window = 5;                          //!< rows per decision
  std::string objective = "return_mean";   //!< the column whose improvement is rewarded
  std::string order = "iteration";         //!< the column that orders a run's rows
  double temperature = 1.0;                //!< weights exp((gain - mean) / (temperature * std))
};

//! Decisions of logged runs, as MetaController::imitate() takes them: per run, the inputs, the
//! actions to imitate, their weights; and each decision's gain of the objective.
template <class Scalar>
struct PretrainingData {
  std::vector<std::vector<ad::Matrix<Scalar>>> inputs;
  std::vector<std::vector<std::vector<int>>> actions;
  std::vector<std::vector<double>> weights;
  std::vector<std::vector<double>> gains;
};

//! The columns a controller may not read as telemetry: the knobs it steers (their column holds the
//! value chosen for the window being decided). Their values before the decision are its input
//! anyway, as knob positions.
inline std::vector<std::string> leaking_columns(const KnobSchema& steered) {
  std::vector<std::string> out;
  for (const auto& k : steered.knobs()) {
    out.push_back("knob." + k.name);
    out.push_back(k.name);
  }
  return out;
}

//! Reads logged runs into pretraining data for `c`. Every run must have the telemetry columns of
//! `c`, a `knob.NAME` column per steered knob, and the objective and order columns. A controller
//! that reads a steered knob's column as telemetry is refused (the value chosen would leak into the
//! decision). Counts every decision's telemetry in c's normaliser, then normalises the inputs.
template <class RNN>
PretrainingData<typename MetaController<RNN>::Scalar> pretraining_windows(MetaController<RNN>& c,
                                                                          const std::vector<io::CsvTable>& runs,
                                                                          const WindowOptions& o) {
  const char* fn = "control::pretraining_windows";
  SSMRL_REQUIRE(o.window > 0 && o.temperature > 0, fn, ": window ", o.window, " and temperature ", o.temperature,
                " must be positive");
  for (const auto& leak : leaking_columns(c.knobs())) {
    for (const auto& n : c.telemetry_names()) {
      SSMRL_REQUIRE(n != leak, fn, ": the controller reads '", n,
                    "' as telemetry: that column holds the value chosen for the window being decided (a leak); "
                    "the value in effect before the decision is already an input");
    }
  }
  PretrainingData<typename MetaController<RNN>::Scalar> data;
  std::vector<double> all_gains;
  // What each decision knew, kept until the normaliser has seen every run (inputs are normalised
  // by the statistics of all the data, not of the rows read so far).
  std::vector<std::vector<std::pair<Telemetry, KnobChanges>>> known;
  for (std::size_t r = 0; r < runs.size(); ++r) {
    const auto& run = runs[r];
    std::vector<std::size_t> rows(run.rows().size());
    std::iota(rows.begin(), rows.end(), std::size_t{0});
    const auto order = run.column(o.order);
    std::stable_sort(rows.begin(), rows.end(), [&](std::size_t a, std::size_t b) { return order[a] < order[b]; });
    const auto objective = run.column(o.objective);
    std::vector<std::vector<double>> telemetry;
    for (const auto& n : c.telemetry_names()) telemetry.push_back(run.column(n));
    // Per steered knob, its column as numbers (a choice's index for a text column), read once.
    std::vector<std::vector<double>> knob_numbers;
    for (const auto& knob : c.knobs().knobs()) {
      const auto name = "knob." + knob.name;
      if (!run.is_text_column(run.column_index(name))) {
        knob_numbers.push_back(run.column(name));
        continue;
      }
      auto& numbers = knob_numbers.emplace_back();
      for (const auto& text : run.text_column(name)) {
        const auto at = std::find(knob.choices.begin(), knob.choices.end(), text) - knob.choices.begin();
        numbers.push_back(static_cast<double>(at));
      }
    }
    auto knob_value = [&](std::size_t k, std::size_t row) { return c.knobs()[k].from_number(knob_numbers[k][row]); };
    auto& inputs = known.emplace_back();
    auto& actions = data.actions.emplace_back();
    auto& gains = data.gains.emplace_back();
    // Decision d is made after row t - 1 (t = 1 + d * window), for rows t .. t + window - 1.
    for (std::size_t t = 1; t + static_cast<std::size_t>(o.window) <= rows.size();
         t += static_cast<std::size_t>(o.window)) {
      const std::size_t before = rows[t - 1];
      Telemetry tel;
      for (std::size_t i = 0; i < telemetry.size(); ++i) tel.add(c.telemetry_names()[i], telemetry[i][before]);
      KnobChanges current;
      std::vector<int> chosen;
      for (std::size_t k = 0; k < c.knobs().size(); ++k) {
        const auto was = knob_value(k, before);
        current[c.knobs()[k].name] = was;
        chosen.push_back(action_of_change(c.knobs()[k], was, knob_value(k, rows[t]), c.options().levels));
      }
      std::vector<double> x;
      for (const double v : tel.values) x.push_back(v);
      c.normalizer().update(x);
      inputs.emplace_back(std::move(tel), std::move(current));
      actions.push_back(chosen);
      double after = 0;
      for (int w = 0; w < o.window; ++w) after += objective[rows[t + static_cast<std::size_t>(w)]] / o.window;
      gains.push_back(after - objective[before]);
      all_gains.push_back(gains.back());
    }
    if (inputs.empty()) {
      known.pop_back();
      data.actions.pop_back();
      data.gains.pop_back();
    }
  }
  SSMRL_REQUIRE(!all_gains.empty(), fn, ": the ", runs.size(), " runs hold no window of ", o.window,
                " rows after a first row");
  for (const auto& run : known) {
    auto& inputs = data.inputs.emplace_back();
    for (const auto& [tel, current] : run) inputs.push_back(c.input_of(tel, current, false));
  }
  double mean = 0;
  for (const double g : all_gains) mean += g / static_cast<double>(all_gains.size());
  double var = 0;
  for (const double g : all_gains) var += (g - mean) * (g - mean) / static_cast<double>(all_gains.size());
  const double scale = o.temperature * std::sqrt(var + 1e-12);
  for (const auto& run : data.gains) {
    auto& w = data.weights.emplace_back();
    for (const double g : run) w.push_back(std::exp(std::clamp((g - mean) / scale, -10.0, 10.0)));
  }
  return data;
}

}  // namespace ssmrl::control
