// A training run's directory: a new one, or an existing one that --resume continues.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <ssmrl/ssmrl.hpp>

#include "arguments.hpp"

namespace ssmrl::cli {

namespace fs = std::filesystem;

inline std::string metadata_value(const std::map<std::string, std::string>& metadata, const std::string& key,
                                  const fs::path& path) {
  const auto it = metadata.find(key);
  SSMRL_REQUIRE(it != metadata.end(), "ssmrl: '", path.string(), "' has no '", key,
                "' metadata; it was not written by `ssmrl train`");
  return it->second;
}

struct RunStart {
  std::map<std::string, std::string> metadata;  //!< what the run's checkpoints carry
  std::map<std::string, std::string> saved;     //!< the latest checkpoint's metadata (when resuming)
  long start = 0;                               //!< iterations done
  io::CsvTable log;
};

//! With --resume: the latest checkpoint's metadata (its config checked; each key of `from_run`,
//! mapped to its option's name, taken from the run, and an explicit different value refused) and the
//! log cut to the checkpoint's iteration. Without: a new directory (one that holds a run is refused).
inline RunStart open_run(const fs::path& dir, const Arguments& args, std::map<std::string, std::string> metadata,
                         const std::map<std::string, std::string>& from_run, const std::vector<std::string>& columns) {
  const fs::path latest = dir / "latest.safetensors";
  const fs::path csv = dir / "train.csv";
  RunStart run{std::move(metadata), {}, 0, io::CsvTable(columns)};
  if (!args.flag("resume")) {
    SSMRL_REQUIRE(!fs::exists(latest), "ssmrl train: '", dir.string(),
                  "' already holds a run; pass --resume to continue it or --ckpt-dir for a new one");
    fs::create_directories(dir);
    return run;
  }
  SSMRL_REQUIRE(fs::exists(latest), "ssmrl train: --resume, but '", latest.string(), "' does not exist");
  run.saved = io::read_safetensors(latest).metadata;
  const auto config = run.metadata.at("ssmrl.config");
  SSMRL_REQUIRE(metadata_value(run.saved, "ssmrl.config", latest) == config, "ssmrl train: '", latest.string(),
                "' is a run of config '", run.saved.at("ssmrl.config"), "', not '", config, "'");
  for (const auto& [key, option] : from_run) {
    const auto saved = metadata_value(run.saved, key, latest);
    SSMRL_REQUIRE(!args.has(option) || saved == run.metadata.at(key), "ssmrl train: --resume continues the run in '",
                  dir.string(), "', whose ", option, " is ", saved, ", not ", run.metadata.at(key));
    run.metadata[key] = saved;
  }
  run.start = std::stol(metadata_value(run.saved, "ssmrl.iteration", latest));
  run.log = io::CsvTable::read(csv, columns);
  SSMRL_REQUIRE(run.log.rows().size() >= static_cast<std::size_t>(run.start), "ssmrl train: '", csv.string(), "' has ",
                run.log.rows().size(), " rows, the checkpoint is at iteration ", run.start);
  run.log.truncate(static_cast<std::size_t>(run.start));
  return run;
}

}  // namespace ssmrl::cli
