// `ssmrl configs`, and what the other commands ask of the configurations without training anything.
#include <cstdio>
#include <type_traits>

#include "commands.hpp"
#include "configs.hpp"
#include "log_columns.hpp"

namespace ssmrl::cli {

std::vector<ConfigSummary> config_summaries() {
  std::vector<ConfigSummary> out;
  for (const auto& n : config_names()) {
    visit_config(n, [&](const auto& c) {
      using C = std::decay_t<decltype(c)>;
      out.push_back({c.name, c.summary, requires { typename C::Tasks; }, c.outer_steps});
    });
  }
  return out;
}

int run_configs() {
  for (const auto& c : config_summaries()) {
    std::printf("%-32s %s (%ld %s)\n", c.name.c_str(), c.summary.c_str(), c.outer_steps,
                c.meta ? "meta-iterations" : "updates at most");
  }
  return 0;
}

control::KnobSchema config_knob_schema(const std::string& name, bool& meta) {
  control::KnobSchema schema;
  const bool found = visit_config(name, [&](const auto& c) {
    using C = std::decay_t<decltype(c)>;
    if constexpr (requires { typename C::Tasks; }) {
      meta = true;
      schema = meta::MetaTrainer<typename C::Policy, typename C::Tasks, typename C::Algorithm>::knob_schema(c.options);
    } else {
      meta = false;
      auto options = c.options;
      options.total_updates = c.outer_steps;
      schema = rl::Trainer<typename C::Policy, typename C::Env>::knob_schema(options);
    }
  });
  SSMRL_REQUIRE(found, "ssmrl: unknown config '", name, "'; known: ", known_configs());
  return schema;
}

std::vector<std::string> config_columns(const std::string& name) {
  std::vector<std::string> columns;
  const bool found = visit_config(name, [&](const auto& c) {
    using C = std::decay_t<decltype(c)>;
    if constexpr (requires { typename C::Tasks; }) {
      columns = training_columns();
    } else {
      columns = plain_columns_of<typename C::Policy>();
    }
  });
  SSMRL_REQUIRE(found, "ssmrl: unknown config '", name, "'; known: ", known_configs());
  return columns;
}

int run_config_knobs(const std::string& name) {
  bool meta = false;
  const auto schema = config_knob_schema(name, meta);
  visit_config(name, [&](const auto& c) {
    std::printf("knobs of %s (ssmrl train --set NAME=VALUE, --config-file, --override-file):\n", c.name.c_str());
    std::printf("%-14s %-7s %-30s %-12s %-15s %s\n", "name", "type", "range", "default", "move", "what it is");
    for (const auto& k : schema.knobs()) {
      std::string move = control::knob_move_name(k.move);
      if (k.move == control::KnobMove::multiplicative) move += " x" + control::knob_text(k.step);
      if (k.move == control::KnobMove::additive) move += " " + control::knob_text(k.step);
      std::printf("%-14s %-7s %-30s %-12s %-15s %s\n", k.name.c_str(), control::knob_type_name(k.type),
                  k.range_text().c_str(), control::knob_text(k.default_value).c_str(), move.c_str(),
                  k.description.c_str());
    }
  });
  return 0;
}

bool is_meta_config(const std::string& name) {
  bool meta = false;
  const bool found = visit_config(name, [&](const auto& c) {
    using C = std::decay_t<decltype(c)>;
    meta = requires { typename C::Tasks; };
  });
  SSMRL_REQUIRE(found, "ssmrl train: unknown config '", name, "'; known: ", known_configs());
  return meta;
}

}  // namespace ssmrl::cli
