// The hot-swap override file: a JSON object of knob values beside a running trainer, read before
// each iteration, validated whole (an unknown key, a wrong type, a value out of range, NaN, a key
// given twice, malformed or truncated JSON: the whole file is refused and the run keeps its values),
// replaced atomically by its writers; and the audit log of the values in effect.
#pragma once

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ssmrl/control/knobs.hpp"
#include "ssmrl/core/error.hpp"
#include "ssmrl/io/csv.hpp"
#include "ssmrl/io/file.hpp"

namespace ssmrl::control {

//! The largest override file read (a knob file is a few hundred bytes).
inline constexpr std::uint64_t max_override_bytes = 1 << 20;

//! Reads the knob values of a JSON object: each key a knob of `schema`, each value of its type
//! (floats: any JSON number; ints: a JSON whole number, 3.0 refused; bools: true/false; choices: one
//! of its names) and in range. Throws InvalidArgument naming `origin` and every problem.
inline KnobChanges parse_knob_changes(std::string_view text, const KnobSchema& schema, const std::string& origin) {
  const char* fn = "control::parse_knob_changes";
  std::set<std::string> keys;
  std::string duplicate;
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(text, [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
      if (depth == 1 && event == nlohmann::json::parse_event_t::key && !keys.insert(parsed.get<std::string>()).second) {
        duplicate = parsed.get<std::string>();
      }
      return true;
    });
  } catch (const nlohmann::json::exception& e) {
    SSMRL_THROW(::ssmrl::InvalidArgument, ::ssmrl::detail::message(fn, ": '", origin, "' is not JSON: ", e.what()));
  }
  SSMRL_REQUIRE(doc.is_object(), fn, ": '", origin, "' holds JSON ", doc.type_name(), ", not an object of knob values");
  SSMRL_REQUIRE(duplicate.empty(), fn, ": '", origin, "' names knob '", duplicate, "' twice");
  KnobChanges changes;
  std::string problems;
  auto problem = [&](const std::string& p) { problems += (problems.empty() ? "" : "; ") + p; };
  for (const auto& [key, value] : doc.items()) {
    const auto i = schema.find(key);
    if (!i) {
      problem("no knob '" + key + "' (the knobs are " + schema.names_text() + ")");
      continue;
    }
    const auto& knob = schema[*i];
    KnobValue v;
    bool typed = false;
    switch (knob.type) {
      case KnobType::real:
        typed = value.is_number();
        if (typed) v = value.get<double>();
        break;
      case KnobType::integer:
        typed = value.is_number_integer();
        if (typed && value.is_number_unsigned() && value.get<std::uint64_t>() > std::uint64_t(INT64_MAX)) typed = false;
        if (typed) v = value.get<std::int64_t>();
        break;
      case KnobType::boolean:
        typed = value.is_boolean();
        if (typed) v = value.get<bool>();
        break;
      case KnobType::choice:
        typed = value.is_string();
        if (typed) v = value.get<std::string>();
        break;
    }
    if (!typed) {
      problem("knob '" + key + "' is " + knob_type_name(knob.type) + " " + knob.range_text() + ", not JSON " +
              value.type_name() + " " + value.dump());
      continue;
    }
    if (const auto p = knob.problem(v)) {
      problem(*p);
      continue;
    }
    changes[key] = v;
  }
  SSMRL_REQUIRE(problems.empty(), fn, ": '", origin, "': ", problems);
  return changes;
}

//! The JSON text of knob values (ints as whole numbers, floats exactly), one knob per line.
inline std::string knob_changes_json(const KnobChanges& changes) {
  nlohmann::json doc = nlohmann::json::object();
  for (const auto& entry : changes) {  // not a structured binding: clang 14 cannot capture one
    std::visit([&](const auto& x) { doc[entry.first] = x; }, entry.second);
  }
  return doc.dump(2) + "\n";
}

//! Replaces the override file at `path` with `changes`, atomically and durably (temporary file in
//! the same directory, fsync, rename, fsync of the directory): a reader sees the old file or the new.
inline void write_override_file(const std::filesystem::path& path, const KnobChanges& changes) {
  io::write_file_atomically("control::write_override_file", path, knob_changes_json(changes));
}

//! What OverrideFile::apply() did.
struct OverrideCheck {
  bool present = false;  //!< the file exists
  bool changed = false;  //!< the override layer changed (a new valid content, or the file removed)
  std::optional<std::string> warning;  //!< why the file was refused, once per distinct content
};

//! Watches one override file for a run: apply() reads it, and on a new valid content replaces the
//! override layer of a KnobState; a refused content leaves the layer as it was (with a warning the
//! first time that content is seen); a removed file clears the layer (back to the configured values).
class OverrideFile {
public:
  explicit OverrideFile(std::filesystem::path path) : path_(std::move(path)) {}
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }

  OverrideCheck apply(KnobState& state) {
    OverrideCheck check;
    std::error_code ec;
    const auto status = std::filesystem::status(path_, ec);
    if (!std::filesystem::exists(status)) {
      check.changed = !state.layer(KnobSource::override_file).empty() || accepted_.has_value();
      state.clear_layer(KnobSource::override_file);
      accepted_.reset();
      return check;
    }
    check.present = true;
    std::string text;
    try {
      SSMRL_REQUIRE(std::filesystem::is_regular_file(status), "control::OverrideFile: '", path_.string(),
                    "' is not a regular file");
      const auto size = std::filesystem::file_size(path_, ec);
      SSMRL_REQUIRE(ec || size <= max_override_bytes, "control::OverrideFile: '", path_.string(), "' has ", size,
                    " bytes, more than the ", max_override_bytes, " an override file may have");
      text = io::read_file("control::OverrideFile", path_);
      if (accepted_ && *accepted_ == text) return check;
      if (refused_ && *refused_ == text) return check;
      auto changes = parse_knob_changes(text, state.schema(), path_.string());
      state.set_layer(KnobSource::override_file, std::move(changes));
      accepted_ = text;
      refused_.reset();
      check.changed = true;
    } catch (const std::exception& e) {
      if (!refused_ || *refused_ != text) {
        check.warning = std::string(e.what()) + "; the run keeps its current values";
      }
      refused_ = text;
    }
    return check;
  }

private:
  std::filesystem::path path_;
  std::optional<std::string> accepted_;  //!< the content in effect
  std::optional<std::string> refused_;   //!< the last content refused (warned about once)
};

//! The audit log of a run: a CSV of (iteration, knob, value, source) rows, one for each knob whose
//! value or source changed before `iteration` (every knob at the first iteration). Lines are appended
//! whole and synced; a reader ignores a torn last line.
class AuditLog {
public:
  static const std::vector<std::string>& columns() {
    static const std::vector<std::string> c{"iteration", "knob", "value", "source"};
    return c;
  }
  static const std::vector<std::string>& text_columns() {
    static const std::vector<std::string> c{"knob", "value", "source"};
    return c;
  }
  //! Reads an audit log.
  static io::CsvTable read(const std::filesystem::path& path) {
    return io::CsvTable::read(path, columns(), text_columns(), true);
  }

  //! A new log at `path` (its header written now), or with `resume_at`, the existing one cut to the
  //! rows of iterations before it (rewritten atomically) and continued.
  explicit AuditLog(std::filesystem::path path, std::optional<long> resume_at = std::nullopt) : path_(std::move(path)) {
    io::CsvTable table(columns(), text_columns());
    std::error_code ec;
    if (resume_at && std::filesystem::exists(path_, ec)) {
      const auto old = read(path_);
      const auto iterations = old.column("iteration");
      const auto knobs = old.text_column("knob");
      const auto values = old.text_column("value");
      const auto sources = old.text_column("source");
      for (std::size_t r = 0; r < iterations.size(); ++r) {
        if (iterations[r] >= static_cast<double>(*resume_at)) continue;
        table.add_cells(std::vector<io::CsvTable::Cell>{iterations[r], knobs[r], values[r], sources[r]});
        last_[knobs[r]] = values[r] + "," + sources[r];
      }
    }
    io::write_file_atomically("control::AuditLog", path_, table.text());
  }

  //! Appends the knobs of `state` whose value or source differ from the last rows for them.
  void record(long iteration, const KnobState& state) {
    std::string lines;
    for (std::size_t i = 0; i < state.schema().size(); ++i) {
      const auto& name = state.schema()[i].name;
      const auto value = knob_text(state.value(i));
      const std::string source = knob_source_name(state.source(i));
      auto& last = last_[name];
      if (last == value + "," + source) continue;
      last = value + "," + source;
      SSMRL_REQUIRE(io::plain_csv_text(value), "control::AuditLog::record: the value '", value, "' of knob '", name,
                    "' holds a comma, quote or newline");
      lines += std::to_string(iteration) + "," + name + "," + value + "," + source + "\n";
    }
    if (!lines.empty()) append(lines);
  }

private:
  void append(const std::string& lines) { io::append_durably("control::AuditLog", path_, lines); }

  std::filesystem::path path_;
  std::map<std::string, std::string> last_;
};

}  // namespace ssmrl::control
