// What a self-improvement run keeps on disk: its history, one JSON object per cycle in a JSON Lines
// file appended a whole line at a time and fsynced, and a ring of its last checkpoints beside the
// best. A crash can leave at most a torn last line, which opening the history ignores and cuts
// off; a checkpoint is written (atomically) before its cycle's line, so the history never names a
// cycle whose checkpoint is missing, and a checkpoint no line names is a cycle to run again.
#pragma once

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ssmrl/core/error.hpp"
#include "ssmrl/io/checkpoint.hpp"
#include "ssmrl/io/file.hpp"

namespace ssmrl::rsi {

//! The history of a run: cycles 0, 1, 2, ... in order, each a JSON object with "cycle".
class History {
public:
  //! Opens (or creates) `path`. Complete lines are read; a torn last line (no newline) is cut off the
  //! file, so that the next cycle starts on a line of its own. A complete line that is not a cycle's
  //! object, or cycles out of order, is refused: that is no crash's doing.
  explicit History(std::filesystem::path path) : path_(std::move(path)) {
    const std::string text = std::filesystem::exists(path_) ? io::read_file("rsi::History", path_) : std::string();
    std::size_t kept = 0;  // bytes of complete, valid lines
    std::size_t start = 0;
    long line_number = 0;
    while (start < text.size()) {
      ++line_number;
      const auto end = text.find('\n', start);
      const bool complete = end != std::string::npos;
      const auto line = text.substr(start, complete ? end - start : std::string::npos);
      auto record = nlohmann::json::parse(line, nullptr, false);
      const bool valid = !record.is_discarded() && record.is_object() && record.contains("cycle") &&
                         record["cycle"].is_number_integer();
      if (!complete) break;  // the torn last line of a crash: each line is written whole, newline last
      SSMRL_REQUIRE(valid, "rsi::History: line ", line_number, " of '", path_.string(),
                    "' is not a cycle's JSON object (with an integer \"cycle\")");
      SSMRL_REQUIRE(record["cycle"].get<long>() == static_cast<long>(records_.size()), "rsi::History: line ",
                    line_number, " of '", path_.string(), "' is cycle ", record["cycle"].get<long>(), ", expected ",
                    records_.size());
      records_.push_back(std::move(record));
      start = end + 1;
      kept = start;
    }
    if (kept < text.size() || !std::filesystem::exists(path_)) io::write_file_atomically("rsi::History", path_,
                                                                                         text.substr(0, kept));
    torn_ = kept < text.size();
  }

  [[nodiscard]] const std::vector<nlohmann::json>& records() const noexcept { return records_; }
  [[nodiscard]] long next_cycle() const noexcept { return static_cast<long>(records_.size()); }
  //! Whether opening cut off a torn last line.
  [[nodiscard]] bool had_torn_line() const noexcept { return torn_; }
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }

  //! Appends `record` as the next cycle's line (its "cycle" must be next_cycle()), durably.
  void append(const nlohmann::json& record) {
    SSMRL_REQUIRE(record.is_object() && record.contains("cycle") && record["cycle"].is_number_integer() &&
                      record["cycle"].get<long>() == next_cycle(),
                  "rsi::History::append: the record's cycle must be ", next_cycle(), ", the next one; got ",
                  record.is_object() && record.contains("cycle") ? record["cycle"].dump() : std::string("none"));
    io::append_durably("rsi::History::append", path_, record.dump() + "\n");
    records_.push_back(record);
  }

private:
  std::filesystem::path path_;
  std::vector<nlohmann::json> records_;
  bool torn_ = false;
};

//! The checkpoints of a run: cycle_N.safetensors for the last `keep` cycles saved, and
//! best.safetensors, a copy of the best one marked.
class CheckpointRing {
public:
  CheckpointRing(std::filesystem::path dir, int keep) : dir_(std::move(dir)), keep_(keep) {
    SSMRL_REQUIRE(keep >= 1, "rsi::CheckpointRing: keep ", keep, " must be at least 1");
    std::filesystem::create_directories(dir_);
  }
  [[nodiscard]] std::filesystem::path path_of(long cycle) const {
    return dir_ / ("cycle_" + std::to_string(cycle) + ".safetensors");
  }
  [[nodiscard]] std::filesystem::path best_path() const { return dir_ / "best.safetensors"; }

  //! Saves `model` as `cycle`'s checkpoint (atomically), then removes those more than `keep`
  //! cycles older.
  template <class Model>
  void save(long cycle, const Model& model, const std::map<std::string, std::string>& metadata = {}) {
    SSMRL_REQUIRE(cycle >= 0, "rsi::CheckpointRing::save: cycle ", cycle, " must not be negative");
    auto extra = metadata;
    extra["ssmrl.rsi.cycle"] = std::to_string(cycle);
    io::save_checkpoint(path_of(cycle), model, extra);
    prune(cycle);
  }
  //! Removes the checkpoints `keep` or more cycles older than `cycle`, any of later cycles (left
  //! by a crash before their history line: they are run again), and the temporary files of writes a
  //! crash interrupted.
  void prune(long cycle) {
    for (const long old : cycles()) {
      if (old <= cycle - keep_ || old > cycle) std::filesystem::remove(path_of(old));
    }
    std::vector<std::filesystem::path> torn;
    for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
      if (io::is_temporary_file(entry.path())) torn.push_back(entry.path());
    }
    for (const auto& path : torn) std::filesystem::remove(path);
  }
  //! Copies `cycle`'s checkpoint to best.safetensors, atomically.
  void mark_best(long cycle) {
    const auto from = path_of(cycle);
    SSMRL_REQUIRE(std::filesystem::exists(from), "rsi::CheckpointRing::mark_best: no checkpoint of cycle ", cycle,
                  " in '", dir_.string(), "'");
    io::write_file_atomically("rsi::CheckpointRing::mark_best", best_path(),
                              io::read_file("rsi::CheckpointRing::mark_best", from));
  }
  //! The cycles whose checkpoints are on disk, oldest first.
  [[nodiscard]] std::vector<long> cycles() const {
    std::vector<long> out;
    for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
      const auto name = entry.path().filename().string();
      if (!name.starts_with("cycle_") || !name.ends_with(".safetensors")) continue;
      const auto digits = name.substr(6, name.size() - 6 - 12);
      if (digits.empty() || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
        continue;
      out.push_back(std::stol(digits));
    }
    std::sort(out.begin(), out.end());
    return out;
  }

private:
  std::filesystem::path dir_;
  int keep_;
};

}  // namespace ssmrl::rsi
