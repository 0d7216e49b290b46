// A training run's directory: a new one, or an existing one that --resume continues; locked for the
// run's lifetime, cleared of temporary files that an interrupted write left, and removed again when
// a new run is refused before its first checkpoint. Also: stopping cleanly on SIGINT and SIGTERM.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include <ssmrl/ssmrl.hpp>

#include "commands.hpp"
#include "ranks.hpp"

namespace ssmrl::cli {

namespace fs = std::filesystem;

inline std::string metadata_value(const std::map<std::string, std::string>& metadata, const std::string& key,
                                  const fs::path& path) {
  const auto it = metadata.find(key);
  SSMRL_REQUIRE(it != metadata.end(), "ssmrl: '", path.string(), "' has no '", key,
                "' metadata; it was not written by `ssmrl train`");
  return it->second;
}

//! A whole integer from the metadata (a checkpoint from elsewhere may hold anything there).
template <class Int = long>
Int metadata_integer(const std::map<std::string, std::string>& metadata, const std::string& key, const fs::path& path) {
  const auto text = metadata_value(metadata, key, path);
  Int value{};
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  SSMRL_REQUIRE(error == std::errc{} && end == text.data() + text.size(), "ssmrl: '", path.string(), "': metadata '",
                key, "' is '", text, "', not an integer");
  return value;
}

//! A number from the metadata; "nan" and "inf" as std::from_chars reads them.
inline double metadata_number(const std::map<std::string, std::string>& metadata, const std::string& key,
                              const fs::path& path) {
  const auto text = metadata_value(metadata, key, path);
  double value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  SSMRL_REQUIRE(error == std::errc{} && end == text.data() + text.size(), "ssmrl: '", path.string(), "': metadata '",
                key, "' is '", text, "', not a number");
  return value;
}

// ---- stopping on SIGINT / SIGTERM ----

namespace detail {
inline volatile std::sig_atomic_t stop_signal = 0;
extern "C" inline void record_stop_signal(int signal) { stop_signal = signal; }
}  // namespace detail

//! From construction on, SIGINT and SIGTERM ask the run to stop after its current iteration (a
//! second one ends the process at once: the handler is reset after the first).
class StopOnSignals {
public:
  StopOnSignals() {
    struct sigaction action {};
    action.sa_handler = detail::record_stop_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESETHAND;
    sigaction(SIGINT, &action, nullptr);
    sigaction(SIGTERM, &action, nullptr);
  }
  [[nodiscard]] static bool requested() { return detail::stop_signal != 0; }
  [[nodiscard]] static int signal() { return detail::stop_signal; }
  [[nodiscard]] static const char* signal_name() { return detail::stop_signal == SIGINT ? "SIGINT" : "SIGTERM"; }
  //! The exit status of a run stopped by a signal: 128 + its number, as a shell reports it.
  [[nodiscard]] static int exit_status() { return 128 + detail::stop_signal; }
};

// ---- the run directory ----

struct RunStart {
  std::map<std::string, std::string> metadata;  //!< what the run's checkpoints carry
  std::map<std::string, std::string> saved;     //!< the latest checkpoint's metadata (when resuming)
  long start = 0;                               //!< iterations done
  io::CsvTable log;
};

//! The option and metadata key of a setting that a resumed run takes from the run itself.
struct RunSetting {
  std::string key;     //!< metadata key, "ssmrl.*"
  std::string option;  //!< the option's long name
  bool must_match;     //!< an explicit different value is refused (else the new value is used)
};

class RunDirectory {
public:
  //! With --resume: the latest checkpoint's metadata (its config checked; each setting of `from_run`
  //! taken from the run when the checkpoint has it, and an explicit different value refused where it
  //! must match) and the log cut to the checkpoint's iteration. Without: a new directory (one that
  //! holds a run is refused). Either way the directory is locked from here on. The other ranks of an
  //! mpirun job (ranks().writer() false) create, lock and clean nothing; they read a resumed run.
  RunDirectory(const TrainOptions& options, std::map<std::string, std::string> metadata,
               const std::vector<RunSetting>& from_run, const std::vector<std::string>& columns,
               const std::vector<std::string>& text_columns = {})
      : dir_(options.run_directory()), start_{std::move(metadata), {}, 0, io::CsvTable(columns, text_columns)} {
    const fs::path latest = dir_ / "latest.safetensors";
    const fs::path csv = dir_ / "train.csv";
    std::error_code ec;
    const bool writer = ranks().writer();
    if (!options.resume) {
      if (!writer) return;
      SSMRL_REQUIRE(!fs::exists(latest, ec), "ssmrl train: '", dir_.string(),
                    "' already holds a run; pass --resume to continue it or --ckpt-dir for a new one");
      create(options);
      lock_.emplace("ssmrl train", dir_);
      SSMRL_REQUIRE(!fs::exists(latest, ec), "ssmrl train: '", dir_.string(), "' already holds a run");
      io::remove_temporary_files(dir_);
      return;
    }
    SSMRL_REQUIRE(fs::is_directory(dir_, ec), "ssmrl train: --resume, but the run directory '", dir_.string(),
                  "' does not exist");
    if (writer) lock_.emplace("ssmrl train", dir_);
    if (const auto removed = writer ? io::remove_temporary_files(dir_) : 0; removed > 0) {
      std::printf("removed %zu temporary file%s that an interrupted write left in %s\n", removed,
                  removed == 1 ? "" : "s", dir_.string().c_str());
    }
    SSMRL_REQUIRE(fs::exists(latest, ec), "ssmrl train: --resume, but '", latest.string(), "' does not exist");
    start_.saved = io::read_safetensors(latest).metadata;
    const auto config = start_.metadata.at("ssmrl.config");
    SSMRL_REQUIRE(metadata_value(start_.saved, "ssmrl.config", latest) == config, "ssmrl train: '", latest.string(),
                  "' is a run of config '", start_.saved.at("ssmrl.config"), "', not '", config, "'");
    for (const auto& s : from_run) {
      const auto it = start_.saved.find(s.key);
      if (it == start_.saved.end()) continue;  // a run from before this setting was kept: the value given now
      const bool given = options.given.count(s.option) == 1;
      SSMRL_REQUIRE(!s.must_match || !given || it->second == start_.metadata.at(s.key), "ssmrl train: --resume ",
                    "continues the run in '", dir_.string(), "', whose --", s.option, " is ", it->second, ", not ",
                    start_.metadata.at(s.key));
      if (!given || s.must_match) start_.metadata[s.key] = it->second;
    }
    start_.start = metadata_integer(start_.saved, "ssmrl.iteration", latest);
    start_.log = io::CsvTable::read(csv, columns, text_columns);
    SSMRL_REQUIRE(start_.start >= 0 && start_.log.rows().size() >= static_cast<std::size_t>(start_.start),
                  "ssmrl train: '", csv.string(), "' has ", start_.log.rows().size(),
                  " rows, the checkpoint is at iteration ", start_.start);
    start_.log.truncate(static_cast<std::size_t>(start_.start));
    committed_ = true;
  }
  RunDirectory(const RunDirectory&) = delete;
  RunDirectory& operator=(const RunDirectory&) = delete;
  //! A new run refused before commit() leaves no directory behind.
  ~RunDirectory() {
    if (committed_ || created_.empty()) return;
    lock_.reset();
    std::error_code ec;
    fs::remove_all(created_, ec);
  }

  [[nodiscard]] const fs::path& path() const { return dir_; }
  [[nodiscard]] RunStart& start() { return start_; }
  //! The run has written its first checkpoint: from now on the directory stays.
  void commit() { committed_ = true; }

private:
  void create(const TrainOptions& options) {
    std::error_code ec;
    fs::path first_missing;
    for (fs::path p = fs::absolute(dir_, ec); !p.empty() && !fs::exists(p, ec); p = p.parent_path()) {
      first_missing = p;
      if (p == p.parent_path()) break;
    }
    fs::create_directories(dir_, ec);
    if (ec || !fs::is_directory(dir_)) {
      SSMRL_THROW(::ssmrl::InvalidArgument,
                  ::ssmrl::detail::message("ssmrl train: --ckpt-dir '", options.run_directory(),
                                           "': cannot create the run directory: ",
                                           ec ? ec.message() : std::string("a file of that name exists")));
    }
    created_ = first_missing;
    // A directory that cannot be written to is refused now, not at the first checkpoint.
    const auto probe = dir_ / ".write-test";
    const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
      const int error = errno;
      SSMRL_THROW(::ssmrl::InvalidArgument,
                  ::ssmrl::detail::message("ssmrl train: --ckpt-dir '", options.run_directory(),
                                           "': cannot write in the run directory: ", std::strerror(error)));
    }
    ::close(fd);
    fs::remove(probe, ec);
  }

  fs::path dir_;
  RunStart start_;
  std::optional<io::DirectoryLock> lock_;
  fs::path created_;
  bool committed_ = false;
};

//! What to type to continue a stopped run.
inline std::string resume_command(const TrainOptions& options, long total) {
  return "ssmrl train --config " + options.config + " --ckpt-dir " + options.run_directory() + " --resume" +
         " --outer-steps " + std::to_string(total);
}

}  // namespace ssmrl::cli
