// A MetaController saved as safetensors: its parameters, recurrent state and normalisation
// statistics as tensors; its knob schema, telemetry names and REINFORCE baseline as metadata. A
// file whose schema, telemetry or shapes do not match the controller is refused, changing nothing.
#pragma once

#include <cmath>
#include <filesystem>
#include <stdexcept>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ssmrl/control/meta_controller.hpp"
#include "ssmrl/io/checkpoint.hpp"
#include "ssmrl/io/named_tensors.hpp"
#include "ssmrl/io/safetensors.hpp"
#include "ssmrl/io/tensor.hpp"

namespace ssmrl::control {

inline constexpr const char* controller_format = "ssmrl-controller-1";

//! The schema as JSON: per knob its name, type, range, default, scale, move, step and choices.
inline nlohmann::ordered_json schema_json(const KnobSchema& schema) {
  auto out = nlohmann::ordered_json::array();
  for (const auto& k : schema.knobs()) {
    nlohmann::ordered_json j;
    j["name"] = k.name;
    j["type"] = knob_type_name(k.type);
    j["lower"] = k.lower;
    j["upper"] = k.upper;
    std::visit([&](const auto& v) { j["default"] = v; }, k.default_value);
    j["log_scale"] = k.log_scale;
    j["move"] = knob_move_name(k.move);
    j["step"] = k.step;
    j["choices"] = k.choices;
    out.push_back(j);
  }
  return out;
}

//! Reads schema_json() back; throws InvalidArgument naming `origin` on anything else.
inline KnobSchema schema_of_json(const std::string& text, const std::string& origin) {
  const char* fn = "control::schema_of_json";
  try {
    const auto doc = nlohmann::json::parse(text);
    SSMRL_REQUIRE(doc.is_array(), fn, ": '", origin, "': the knob schema is not a JSON array");
    std::vector<Knob> knobs;
    for (const auto& j : doc) {
      Knob k;
      k.name = j.at("name").get<std::string>();
      const auto type = j.at("type").get<std::string>();
      const auto move = j.at("move").get<std::string>();
      bool known = false;
      for (auto t : {KnobType::real, KnobType::integer, KnobType::boolean, KnobType::choice}) {
        if (type == knob_type_name(t)) k.type = t, known = true;
      }
      SSMRL_REQUIRE(known, fn, ": '", origin, "': knob '", k.name, "' has the type '", type, "'");
      known = false;
      for (auto m : {KnobMove::absolute, KnobMove::multiplicative, KnobMove::additive}) {
        if (move == knob_move_name(m)) k.move = m, known = true;
      }
      SSMRL_REQUIRE(known, fn, ": '", origin, "': knob '", k.name, "' has the move '", move, "'");
      k.lower = j.at("lower").get<double>();
      k.upper = j.at("upper").get<double>();
      k.log_scale = j.at("log_scale").get<bool>();
      k.step = j.at("step").get<double>();
      k.choices = j.at("choices").get<std::vector<std::string>>();
      const auto& d = j.at("default");
      switch (k.type) {
        case KnobType::real: k.default_value = d.get<double>(); break;
        case KnobType::integer: k.default_value = d.get<std::int64_t>(); break;
        case KnobType::boolean: k.default_value = d.get<bool>(); break;
        case KnobType::choice: k.default_value = d.get<std::string>(); break;
      }
      knobs.push_back(std::move(k));
    }
    return KnobSchema(std::move(knobs));
  } catch (const nlohmann::json::exception& e) {
    SSMRL_THROW(::ssmrl::InvalidArgument,
                ::ssmrl::detail::message(fn, ": '", origin, "': the knob schema is not readable: ", e.what()));
  }
}

//! Saves `c` to `path` atomically and durably.
template <class RNN>
void save_controller(const std::filesystem::path& path, const MetaController<RNN>& c,
                     const std::map<std::string, std::string>& extra_metadata = {}) {
  using Scalar = typename MetaController<RNN>::Scalar;
  io::SafetensorsFile file;
  file.metadata = extra_metadata;
  file.metadata["format"] = controller_format;
  file.metadata["ssmrl.controller.knobs"] = schema_json(c.knobs()).dump();
  file.metadata["ssmrl.controller.telemetry"] = nlohmann::json(c.telemetry_names()).dump();
  file.metadata["ssmrl.controller.levels"] = std::to_string(c.options().levels);
  file.metadata["ssmrl.controller.cell"] = io::describe(c.cell()).dump();
  file.metadata["ssmrl.controller.rng"] = c.rng_text();
  const auto params = c.parameters();
  for (std::size_t i = 0; i < params.size(); ++i)
    file.tensors.push_back(io::to_tensor("param." + std::to_string(i), params[i]));
  file.tensors.push_back(io::to_tensor("state", c.state()));
  const auto stats = c.normalizer().state();
  ad::Matrix<double> s(static_cast<ad::Index>(stats.size()), 1);
  for (std::size_t i = 0; i < stats.size(); ++i) s(static_cast<ad::Index>(i), 0) = stats[i];
  if (s.size() > 0) file.tensors.push_back(io::to_tensor("normalizer", s));
  ad::Matrix<double> b(3, 1);
  b << c.baseline(), c.reward_variance(), c.has_baseline() ? 1.0 : 0.0;
  file.tensors.push_back(io::to_tensor("baseline", b));
  // Learning in progress: the pending decisions and Adam's moments.
  const auto learning = c.learning_state();
  if (!learning.inputs.empty()) {
    const auto n = static_cast<ad::Index>(learning.inputs.size());
    ad::Matrix<Scalar> inputs(c.cell().input_size(), n);
    ad::Matrix<double> actions(static_cast<ad::Index>(c.knobs().size()), n);
    for (ad::Index i = 0; i < n; ++i) {
      inputs.col(i) = learning.inputs[static_cast<std::size_t>(i)];
      for (std::size_t k = 0; k < c.knobs().size(); ++k)
        actions(static_cast<ad::Index>(k), i) = learning.actions[static_cast<std::size_t>(i)][k];
    }
    file.tensors.push_back(io::to_tensor("pending.inputs", inputs));
    file.tensors.push_back(io::to_tensor("pending.actions", actions));
    file.tensors.push_back(io::to_tensor("pending.segment_start", learning.segment_start));
  }
  const auto& adam = c.optimizer();
  file.metadata["ssmrl.controller.adam_steps"] = std::to_string(adam.steps());
  for (std::size_t i = 0; i < adam.state().first_moment.size(); ++i) {
    file.tensors.push_back(io::to_tensor("adam.m." + std::to_string(i), adam.state().first_moment[i]));
    file.tensors.push_back(io::to_tensor("adam.v." + std::to_string(i), adam.state().second_moment[i]));
  }
  io::write_safetensors(path, file);
}

//! Loads a file of save_controller() into `c`, whose knob schema (names, types, ranges, moves),
//! telemetry names, levels and shapes must match; everything is checked before anything changes.
//! Returns the file's metadata.
template <class RNN>
std::map<std::string, std::string> load_controller(const std::filesystem::path& path, MetaController<RNN>& c) {
  using Scalar = typename MetaController<RNN>::Scalar;
  const char* fn = "control::load_controller";
  const auto file = io::NamedTensors::read(path);
  const auto& m = file.metadata();
  auto value = [&](const std::string& key) {
    const auto it = m.find(key);
    SSMRL_REQUIRE(it != m.end(), fn, ": '", path.string(), "' has no '", key, "' metadata; it is no saved controller");
    return it->second;
  };
  SSMRL_REQUIRE(value("format") == controller_format, fn, ": '", path.string(), "' has format '", value("format"),
                "', not ", controller_format);
  const auto schema = schema_of_json(value("ssmrl.controller.knobs"), path.string());
  SSMRL_REQUIRE(schema.same_knobs(c.knobs()), fn, ": '", path.string(), "' steers the knobs ", schema.names_text(),
                " with other types, ranges or moves than this controller's ", c.knobs().names_text());
  SSMRL_REQUIRE(value("ssmrl.controller.telemetry") == nlohmann::json(c.telemetry_names()).dump(), fn, ": '",
                path.string(), "' reads the telemetry ", value("ssmrl.controller.telemetry"), ", this controller ",
                nlohmann::json(c.telemetry_names()).dump());
  SSMRL_REQUIRE(value("ssmrl.controller.levels") == std::to_string(c.options().levels), fn, ": '", path.string(),
                "' has ", value("ssmrl.controller.levels"), " levels, this controller ", c.options().levels);
  SSMRL_REQUIRE(value("ssmrl.controller.cell") == io::describe(c.cell()).dump(), fn, ": '", path.string(),
                "' holds the cell ", value("ssmrl.controller.cell"), ", this controller ",
                io::describe(c.cell()).dump());
  auto params = c.parameters();
  for (std::size_t i = 0; i < params.size(); ++i) params[i] = file.matrix<Scalar>("param." + std::to_string(i));
  const auto state = file.matrix<Scalar>("state");
  std::vector<double> stats;
  if (c.normalizer().features() > 0) {
    const auto s = file.matrix<double>("normalizer");
    stats.assign(s.data(), s.data() + s.size());
  }
  const auto b = file.matrix<double>("baseline");
  SSMRL_REQUIRE(b.size() == 3, fn, ": '", path.string(), "': tensor baseline has ", b.size(), " entries, not 3");
  typename MetaController<RNN>::LearningState learning{state, {}, {}};
  if (file.contains("pending.inputs")) {
    const auto inputs = file.matrix<Scalar>("pending.inputs");
    const auto actions = file.matrix<double>("pending.actions");
    learning.segment_start = file.matrix<Scalar>("pending.segment_start");
    SSMRL_REQUIRE(actions.cols() == inputs.cols(), fn, ": '", path.string(), "' has ", inputs.cols(),
                  " pending inputs and ", actions.cols(), " pending actions");
    for (ad::Index i = 0; i < inputs.cols(); ++i) {
      learning.inputs.push_back(inputs.col(i));
      std::vector<int> a;
      for (ad::Index k = 0; k < actions.rows(); ++k) {
        const double x = actions(k, i);
        SSMRL_REQUIRE(x == std::floor(x) && std::abs(x) < 1e6, fn, ": '", path.string(), "': pending action ", x);
        a.push_back(static_cast<int>(x));
      }
      learning.actions.push_back(std::move(a));
    }
  }
  typename optim::Adam<Scalar>::State adam;
  long adam_steps = 0;
  if (const auto it = m.find("ssmrl.controller.adam_steps"); it != m.end()) {
    try {
      std::size_t used = 0;
      adam_steps = std::stol(it->second, &used);
      SSMRL_REQUIRE(used == it->second.size(), fn, ": '", path.string(), "': adam_steps '", it->second, "'");
    } catch (const std::logic_error&) {
      SSMRL_THROW(::ssmrl::InvalidArgument,
                  ::ssmrl::detail::message(fn, ": '", path.string(), "': adam_steps '", it->second, "'"));
    }
    if (adam_steps > 0) {
      for (std::size_t i = 0; i < params.size(); ++i) {
        adam.first_moment.push_back(file.matrix<Scalar>("adam.m." + std::to_string(i)));
        adam.second_moment.push_back(file.matrix<Scalar>("adam.v." + std::to_string(i)));
        SSMRL_REQUIRE(
            adam.first_moment[i].rows() == params[i].rows() && adam.first_moment[i].cols() == params[i].cols(), fn,
            ": '", path.string(), "': Adam's moment ", i, " is ", adam.first_moment[i].rows(), "x",
            adam.first_moment[i].cols(), ", its parameter ", params[i].rows(), "x", params[i].cols());
      }
    }
  }
  // Every check on copies first; then the controller changes.
  auto copy = c;
  copy.set_parameters(params);
  copy.set_state(state);
  copy.set_learning_state(std::move(learning));
  copy.optimizer().set_state(std::move(adam), adam_steps);
  copy.normalizer().set_state(stats);
  copy.set_baseline(b(0), b(1), b(2) != 0);
  copy.set_rng_text(value("ssmrl.controller.rng"));
  c = std::move(copy);
  return m;
}

}  // namespace ssmrl::control
