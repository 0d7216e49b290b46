// Typed knobs: the tunable options of a running trainer, described by a schema (type, bounds,
// default, scale, how a controller moves it), and their values in effect, layered by where each
// came from (default < config < controller < a person's override file).
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <variant>
#include <vector>

#include "ssmrl/core/error.hpp"

namespace ssmrl::control {

enum class KnobType { real, integer, boolean, choice };

//! How a controller changes a knob: to a value of its range, by a factor, or by a step.
enum class KnobMove { absolute, multiplicative, additive };

inline const char* knob_type_name(KnobType t) {
  switch (t) {
    case KnobType::real: return "float";
    case KnobType::integer: return "int";
    case KnobType::boolean: return "bool";
    case KnobType::choice: return "choice";
  }
  return "?";
}

inline const char* knob_move_name(KnobMove m) {
  switch (m) {
    case KnobMove::absolute: return "absolute";
    case KnobMove::multiplicative: return "multiplicative";
    case KnobMove::additive: return "additive";
  }
  return "?";
}

//! A knob's value: double (float knobs), int64 (int knobs), bool, or the name of a choice.
using KnobValue = std::variant<double, std::int64_t, bool, std::string>;

//! What a value is in text: ints without a decimal point, floats with enough digits to read back
//! exactly, bools as true/false, choices as their name.
inline std::string knob_text(const KnobValue& v) {
  if (const auto* d = std::get_if<double>(&v)) {
    char buffer[32];
    const auto [end, error] = std::to_chars(buffer, buffer + sizeof buffer, *d);
    return error == std::errc{} ? std::string(buffer, end) : std::string("?");
  }
  if (const auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
  if (const auto* b = std::get_if<bool>(&v)) return *b ? "true" : "false";
  return std::get<std::string>(v);
}

struct Knob {
  std::string name;
  KnobType type = KnobType::real;
  double lower = 0;  //!< float and int knobs: the closed range of values
  double upper = 1;
  KnobValue default_value = 0.0;
  bool log_scale = false;               //!< float knobs: the range is positive, read on a log scale
  KnobMove move = KnobMove::absolute;   //!< how a controller moves it
  double step = 0;                      //!< multiplicative: a factor > 1; additive: the step (> 0)
  std::vector<std::string> choices;     //!< choice knobs
  std::string description;

  //! Where the value lies in its range, in [0, 1] (on the log scale where there is one; a choice's
  //! index over the last index; bools 0 or 1): a controller's input.
  [[nodiscard]] double position(const KnobValue& v) const {
    switch (type) {
      case KnobType::boolean: return std::get<bool>(v) ? 1.0 : 0.0;
      case KnobType::choice: {
        const auto it = std::find(choices.begin(), choices.end(), std::get<std::string>(v));
        return choices.size() <= 1
                   ? 0.0
                   : static_cast<double>(it - choices.begin()) / static_cast<double>(choices.size() - 1);
      }
      default: break;
    }
    const double x = type == KnobType::real ? std::get<double>(v) : static_cast<double>(std::get<std::int64_t>(v));
    if (upper <= lower) return 0.0;
    if (log_scale) return (std::log(x) - std::log(lower)) / (std::log(upper) - std::log(lower));
    return (x - lower) / (upper - lower);
  }
  //! The number a value stands for (a choice's index, a bool's 0 or 1).
  [[nodiscard]] double number(const KnobValue& v) const {
    switch (type) {
      case KnobType::real: return std::get<double>(v);
      case KnobType::integer: return static_cast<double>(std::get<std::int64_t>(v));
      case KnobType::boolean: return std::get<bool>(v) ? 1.0 : 0.0;
      case KnobType::choice: {
        const auto it = std::find(choices.begin(), choices.end(), std::get<std::string>(v));
        return static_cast<double>(it - choices.begin());
      }
    }
    return 0;
  }
  //! The range in words: "[0.0001, 0.01] log" or "{a, b}".
  [[nodiscard]] std::string range_text() const {
    // Appended piece by piece: GCC 12 warns (-Wrestrict, wrongly) on "literal" + std::string&&.
    std::string s;
    switch (type) {
      case KnobType::boolean: return "{false, true}";
      case KnobType::choice:
        s += '{';
        for (std::size_t i = 0; i < choices.size(); ++i) {
          if (i) s += ", ";
          s += choices[i];
        }
        s += '}';
        return s;
      case KnobType::integer:
        s += '[';
        s += std::to_string(static_cast<std::int64_t>(lower));
        s += ", ";
        s += std::to_string(static_cast<std::int64_t>(upper));
        s += ']';
        return s;
      case KnobType::real: break;
    }
    s += '[';
    s += knob_text(lower);
    s += ", ";
    s += knob_text(upper);
    s += ']';
    if (log_scale) s += " log";
    return s;
  }

  //! Why `v` is not a value of this knob (its type, its range, NaN), or nothing when it is one.
  [[nodiscard]] std::optional<std::string> problem(const KnobValue& v) const {
    const auto wrong_type = [&] {
      return std::optional<std::string>("knob '" + name + "' is " + knob_type_name(type) + ", not " +
                                        type_of(v) + " (" + knob_text(v) + ")");
    };
    switch (type) {
      case KnobType::real: {
        if (!std::holds_alternative<double>(v)) return wrong_type();
        const double x = std::get<double>(v);
        if (!std::isfinite(x) || x < lower || x > upper) {
          return "knob '" + name + "' = " + knob_text(v) + " is outside its range " + range_text();
        }
        return std::nullopt;
      }
      case KnobType::integer: {
        if (!std::holds_alternative<std::int64_t>(v)) return wrong_type();
        const auto x = static_cast<double>(std::get<std::int64_t>(v));
        if (x < lower || x > upper)
          return "knob '" + name + "' = " + knob_text(v) + " is outside its range " + range_text();
        return std::nullopt;
      }
      case KnobType::boolean:
        if (!std::holds_alternative<bool>(v)) return wrong_type();
        return std::nullopt;
      case KnobType::choice:
        if (!std::holds_alternative<std::string>(v)) return wrong_type();
        if (std::find(choices.begin(), choices.end(), std::get<std::string>(v)) == choices.end()) {
          return "knob '" + name + "' = " + knob_text(v) + " is not one of " + range_text();
        }
        return std::nullopt;
    }
    return std::nullopt;
  }

  //! The value of this knob's type nearest to `x`, inside its bounds: floats clamped, ints rounded
  //! then clamped, bools x >= 0.5, choices the nearest index. NaN gives the default.
  [[nodiscard]] KnobValue from_number(double x) const {
    if (std::isnan(x)) return default_value;
    switch (type) {
      case KnobType::real: return std::clamp(x, lower, upper);
      case KnobType::integer:
        return static_cast<std::int64_t>(
            std::clamp(std::round(std::clamp(x, -9e15, 9e15)), std::ceil(lower), std::floor(upper)));
      case KnobType::boolean: return x >= 0.5;
      case KnobType::choice: {
        const double last = static_cast<double>(choices.size()) - 1;
        return choices[static_cast<std::size_t>(std::clamp(std::round(std::clamp(x, -1.0, last + 1)), 0.0, last))];
      }
    }
    return default_value;
  }

  //! Reads a value of this knob from text (a command line's NAME=VALUE): ints as whole numbers,
  //! floats as numbers, bools as true/false/1/0, choices by name. Throws InvalidArgument naming
  //! `caller`, the knob and its range when the text is no value of it.
  [[nodiscard]] KnobValue parse(std::string_view text, const char* caller) const {
    KnobValue v;
    bool read = false;
    const char* first = text.data();
    const char* last = text.data() + text.size();
    switch (type) {
      case KnobType::real: {
        double x = 0;
        const auto [end, error] = std::from_chars(first, last, x);
        read = error == std::errc{} && end == last && !text.empty();
        v = x;
        break;
      }
      case KnobType::integer: {
        std::int64_t x = 0;
        const auto [end, error] = std::from_chars(first, last, x);
        read = error == std::errc{} && end == last && !text.empty();
        v = x;
        break;
      }
      case KnobType::boolean:
        read = text == "true" || text == "false" || text == "1" || text == "0";
        v = text == "true" || text == "1";
        break;
      case KnobType::choice:
        read = true;
        v = std::string(text);
        break;
    }
    SSMRL_REQUIRE(read, caller, ": knob '", name, "' (", knob_type_name(type), ", ", range_text(), "): '", text,
                  "' is not a ", knob_type_name(type) == std::string("int") ? "whole number" : knob_type_name(type));
    if (const auto p = problem(v)) SSMRL_THROW(::ssmrl::InvalidArgument, ::ssmrl::detail::message(caller, ": ", *p));
    return v;
  }

  static std::string type_of(const KnobValue& v) {
    if (std::holds_alternative<double>(v)) return "float";
    if (std::holds_alternative<std::int64_t>(v)) return "int";
    if (std::holds_alternative<bool>(v)) return "bool";
    return "text";
  }
};

//! A knob of float type on [lower, upper].
inline Knob real_knob(std::string name, double value, double lower, double upper, bool log_scale,
                      std::string description) {
  return {std::move(name), KnobType::real, lower, upper, value, log_scale,
          log_scale ? KnobMove::multiplicative : KnobMove::additive, log_scale ? 1.25 : (upper - lower) / 20, {},
          std::move(description)};
}
inline Knob integer_knob(std::string name, std::int64_t value, std::int64_t lower, std::int64_t upper,
                         std::string description) {
  return {std::move(name), KnobType::integer, static_cast<double>(lower), static_cast<double>(upper), value, false,
          KnobMove::additive, 1, {}, std::move(description)};
}
inline Knob boolean_knob(std::string name, bool value, std::string description) {
  return {std::move(name), KnobType::boolean, 0, 1, value, false, KnobMove::absolute, 0, {}, std::move(description)};
}
inline Knob choice_knob(std::string name, std::string value, std::vector<std::string> choices, std::string description) {
  return {std::move(name), KnobType::choice, 0, static_cast<double>(choices.size()) - 1, std::move(value), false,
          KnobMove::absolute, 0, std::move(choices), std::move(description)};
}

//! Knob values by name: what a configuration, a controller or an override file sets.
using KnobChanges = std::map<std::string, KnobValue>;

//! The knobs of a trainer, in a fixed order (the order of train.csv's knob columns).
class KnobSchema {
public:
  KnobSchema() = default;
  explicit KnobSchema(std::vector<Knob> knobs) : knobs_(std::move(knobs)) {
    for (std::size_t i = 0; i < knobs_.size(); ++i) {
      const auto& k = knobs_[i];
      SSMRL_REQUIRE(!k.name.empty() && k.name.find_first_of(",\"\n= ") == std::string::npos,
                    "control::KnobSchema: knob name '", k.name,
                    "' is empty or holds a comma, quote, '=', space or newline");
      for (std::size_t j = 0; j < i; ++j) {
        SSMRL_REQUIRE(knobs_[j].name != k.name, "control::KnobSchema: knob '", k.name, "' is named twice");
      }
      SSMRL_REQUIRE(k.lower <= k.upper && (!k.log_scale || (k.type == KnobType::real && k.lower > 0)),
                    "control::KnobSchema: knob '", k.name, "' has the range [", k.lower, ", ", k.upper, "]",
                    k.log_scale ? " on a log scale (it must be a positive float range)" : "");
      SSMRL_REQUIRE(k.type != KnobType::choice || !k.choices.empty(), "control::KnobSchema: choice knob '", k.name,
                    "' has no choices");
      SSMRL_REQUIRE(k.move != KnobMove::multiplicative || (k.step > 1 && k.lower > 0),
                    "control::KnobSchema: knob '", k.name, "' moves by a factor ", k.step,
                    " (it must exceed 1 and the range be positive)");
      SSMRL_REQUIRE(k.move != KnobMove::additive || k.step > 0, "control::KnobSchema: knob '", k.name,
                    "' moves by a step ", k.step, " (it must be positive)");
      if (const auto p = k.problem(k.default_value)) {
        SSMRL_THROW(::ssmrl::InvalidArgument, ::ssmrl::detail::message("control::KnobSchema: the default: ", *p));
      }
    }
  }

  [[nodiscard]] const std::vector<Knob>& knobs() const noexcept { return knobs_; }
  [[nodiscard]] std::size_t size() const noexcept { return knobs_.size(); }
  [[nodiscard]] const Knob& operator[](std::size_t i) const { return knobs_[i]; }
  [[nodiscard]] std::optional<std::size_t> find(std::string_view name) const {
    for (std::size_t i = 0; i < knobs_.size(); ++i) {
      if (knobs_[i].name == name) return i;
    }
    return std::nullopt;
  }
  [[nodiscard]] const Knob& at(std::string_view name, const char* caller) const {
    const auto i = find(name);
    SSMRL_REQUIRE(i.has_value(), caller, ": no knob '", name, "'; the knobs are ", names_text());
    return knobs_[*i];
  }
  [[nodiscard]] std::vector<KnobValue> defaults() const {
    std::vector<KnobValue> out;
    for (const auto& k : knobs_) out.push_back(k.default_value);
    return out;
  }
  [[nodiscard]] std::string names_text() const {
    std::string s;
    for (const auto& k : knobs_) s += (s.empty() ? "" : ", ") + k.name;
    return s;
  }

  //! Every problem of `changes` (an unknown name, a wrong type, a value out of range), one per line;
  //! empty when all are values of their knobs.
  [[nodiscard]] std::string problems(const KnobChanges& changes) const {
    std::string out;
    for (const auto& [name, value] : changes) {
      const auto i = find(name);
      const auto p = i ? knobs_[*i].problem(value)
                       : std::optional<std::string>("no knob '" + name + "' (the knobs are " + names_text() + ")");
      if (p) out += (out.empty() ? "" : "; ") + *p;
    }
    return out;
  }
  //! Throws InvalidArgument naming `caller` and every problem of `changes`; does nothing else.
  void check(const KnobChanges& changes, const char* caller) const {
    const auto p = problems(changes);
    SSMRL_REQUIRE(p.empty(), caller, ": ", p);
  }
  //! Throws unless `values` holds one value of each knob, in order.
  void check_values(const std::vector<KnobValue>& values, const char* caller) const {
    SSMRL_REQUIRE(values.size() == knobs_.size(), caller, ": ", values.size(), " values for ", knobs_.size(), " knobs");
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (const auto p = knobs_[i].problem(values[i]))
        SSMRL_THROW(::ssmrl::InvalidArgument, ::ssmrl::detail::message(caller, ": ", *p));
    }
  }

  //! Same knobs, types, ranges, moves and choices (defaults may differ): what a saved controller
  //! needs of the trainer it steers.
  [[nodiscard]] bool same_knobs(const KnobSchema& other) const {
    if (other.size() != size()) return false;
    for (std::size_t i = 0; i < size(); ++i) {
      const auto& a = knobs_[i];
      const auto& b = other.knobs_[i];
      if (a.name != b.name || a.type != b.type || a.lower != b.lower || a.upper != b.upper ||
          a.log_scale != b.log_scale || a.move != b.move || a.step != b.step || a.choices != b.choices) {
        return false;
      }
    }
    return true;
  }
  //! The knobs named in `names`, in this schema's order (a controller steering some of them).
  [[nodiscard]] KnobSchema subset(const std::vector<std::string>& names, const char* caller) const {
    std::vector<Knob> out;
    for (const auto& n : names) static_cast<void>(at(n, caller));
    for (const auto& k : knobs_) {
      if (std::find(names.begin(), names.end(), k.name) != names.end()) out.push_back(k);
    }
    return KnobSchema(std::move(out));
  }

private:
  std::vector<Knob> knobs_;
};

//! Where a knob's value in effect came from, lowest precedence first.
enum class KnobSource { default_value, config, controller, override_file };

inline const char* knob_source_name(KnobSource s) {
  switch (s) {
    case KnobSource::default_value: return "default";
    case KnobSource::config: return "config";
    case KnobSource::controller: return "controller";
    case KnobSource::override_file: return "override";
  }
  return "?";
}

//! The values in effect: per knob, the value of the highest layer that sets it (override file >
//! controller > config > default). Each layer is set whole or not at all: a refused change leaves
//! every value as it was.
class KnobState {
public:
  KnobState() = default;
  explicit KnobState(KnobSchema schema) : schema_(std::move(schema)) {}

  [[nodiscard]] const KnobSchema& schema() const noexcept { return schema_; }
  //! Replaces what layer `source` sets (not the defaults) with `changes`, after checking them all.
  void set_layer(KnobSource source, KnobChanges changes) {
    SSMRL_REQUIRE(source != KnobSource::default_value, "control::KnobState::set_layer: the defaults are the schema's");
    schema_.check(changes, "control::KnobState::set_layer");
    layers_[index(source)] = std::move(changes);
  }
  //! Adds `changes` to what layer `source` sets, after checking them all.
  void merge_into_layer(KnobSource source, const KnobChanges& changes) {
    auto merged = layers_[index(source)];
    for (const auto& [k, v] : changes) merged[k] = v;
    set_layer(source, std::move(merged));
  }
  void clear_layer(KnobSource source) { layers_[index(source)].clear(); }
  [[nodiscard]] const KnobChanges& layer(KnobSource source) const { return layers_[index(source)]; }

  [[nodiscard]] KnobSource source(std::size_t knob) const {
    for (int s = 2; s >= 0; --s) {
      if (layers_[static_cast<std::size_t>(s)].count(schema_[knob].name)) return static_cast<KnobSource>(s + 1);
    }
    return KnobSource::default_value;
  }
  [[nodiscard]] KnobValue value(std::size_t knob) const {
    for (int s = 2; s >= 0; --s) {
      const auto& layer = layers_[static_cast<std::size_t>(s)];
      if (const auto it = layer.find(schema_[knob].name); it != layer.end()) return it->second;
    }
    return schema_[knob].default_value;
  }
  [[nodiscard]] std::vector<KnobValue> values() const {
    std::vector<KnobValue> out;
    for (std::size_t i = 0; i < schema_.size(); ++i) out.push_back(value(i));
    return out;
  }
  [[nodiscard]] KnobValue value(std::string_view name) const {
    static_cast<void>(schema_.at(name, "control::KnobState::value"));
    return value(*schema_.find(name));
  }

private:
  static std::size_t index(KnobSource s) { return static_cast<std::size_t>(s) - 1; }
  KnobSchema schema_;
  KnobChanges layers_[3];
};

}  // namespace ssmrl::control
