// What `ssmrl` prints: a progress bar (or periodic lines when the output is not a terminal), and the
// evaluation table for people or one JSON object for scripts.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ssmrl::cli {

class Progress {
public:
  Progress(long first, long total, bool quiet)
      : first_(first), total_(total), quiet_(quiet), terminal_(isatty(STDERR_FILENO) == 1),
        start_(std::chrono::steady_clock::now()) {}

  //! After iteration `done - 1`; `status` is what the bar shows beside the count.
  void update(long done, const std::string& status) {
    if (quiet_) return;
    const double seconds = elapsed();
    const double per_step = seconds / static_cast<double>(std::max(1L, done - first_));
    const double eta = per_step * static_cast<double>(total_ - done);
    if (terminal_) {
      constexpr int width = 30;
      const int filled = static_cast<int>(width * static_cast<double>(done) / static_cast<double>(std::max(1L, total_)));
      std::fprintf(stderr, "\r[%s%s] %ld/%ld  %s  %.2f s/it  ETA %s ", std::string(filled, '#').c_str(),
                   std::string(width - filled, '.').c_str(), done, total_, status.c_str(), per_step,
                   duration(eta).c_str());
      if (done == total_) std::fprintf(stderr, "\n");
    } else if (done % 10 == 0 || done == total_ || done == first_ + 1) {
      std::fprintf(stderr, "%ld/%ld  %s  (%.0f s, ETA %s)\n", done, total_, status.c_str(), seconds,
                   duration(eta).c_str());
    }
    std::fflush(stderr);
  }
  //! Ends the bar's line when a run stops before its last iteration.
  void finish_line() {
    if (!quiet_ && terminal_) std::fprintf(stderr, "\n");
  }
  [[nodiscard]] double elapsed() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

  static std::string duration(double seconds) {
    char buffer[32];
    const long s = std::lround(seconds);
    if (s >= 3600) std::snprintf(buffer, sizeof buffer, "%ldh%02ldm", s / 3600, (s / 60) % 60);
    else std::snprintf(buffer, sizeof buffer, "%ldm%02lds", s / 60, s % 60);
    return buffer;
  }

private:
  long first_;
  long total_;
  bool quiet_;
  bool terminal_;
  std::chrono::steady_clock::time_point start_;
};

//! Returns per task (rows) and per adaptation step (columns): before adaptation, after 1, 2, ...
struct Evaluation {
  std::string checkpoint;
  std::string config;
  long iteration = 0;
  std::size_t tasks = 0;  //!< held-out tasks; 0 for a policy trained on one environment
  long episodes = 0;
  bool online = false;
  std::vector<std::vector<double>> returns;  //!< [run][step]
};

inline std::vector<double> column_stats(const std::vector<std::vector<double>>& rows, std::size_t c) {
  double mean = 0;
  for (const auto& r : rows) mean += r[c];
  mean /= static_cast<double>(rows.size());
  double var = 0;
  for (const auto& r : rows) var += (r[c] - mean) * (r[c] - mean);
  var /= static_cast<double>(std::max<std::size_t>(1, rows.size() - 1));
  return {mean, std::sqrt(var)};
}

inline nlohmann::ordered_json to_json(const Evaluation& e) {
  nlohmann::ordered_json j;
  j["checkpoint"] = e.checkpoint;
  j["config"] = e.config;
  j["iteration"] = e.iteration;
  if (e.tasks == 0) {
    const auto s = column_stats(e.returns, 0);
    j["episodes"] = e.episodes;
    j["mean_return"] = s[0];
    j["std_return"] = s[1];
    return j;
  }
  j["held_out_tasks"] = e.tasks;
  j["episodes_per_task"] = e.episodes;
  j["online"] = e.online;
  auto steps = nlohmann::ordered_json::array();
  const std::size_t columns = e.returns.empty() ? 0 : e.returns.front().size();
  for (std::size_t c = 0; c < columns; ++c) {
    const auto s = column_stats(e.returns, c);
    steps.push_back({{"adaptation_steps", c}, {"mean_return", s[0]}, {"std_return", s[1]}});
  }
  j["returns"] = steps;
  return j;
}

inline void print_table(const Evaluation& e) {
  std::printf("checkpoint %s (config %s, iteration %ld)\n", e.checkpoint.c_str(), e.config.c_str(), e.iteration);
  const std::size_t columns = e.returns.empty() ? 0 : e.returns.front().size();
  if (e.tasks == 0) {
    const auto s = column_stats(e.returns, 0);
    std::printf("%ld episodes: mean return %.2f, std %.2f\n", e.episodes, s[0], s[1]);
    return;
  }
  if (e.online) {
    std::printf("held-out tasks: %zu; online: %ld runs per task of one episode per step\n", e.tasks, e.episodes);
  } else {
    std::printf("held-out tasks: %zu, %ld episodes per task and step\n", e.tasks, e.episodes);
  }
  std::printf("%-22s %12s %12s\n", "", "mean return", "std");
  for (std::size_t c = 0; c < columns; ++c) {
    const auto s = column_stats(e.returns, c);
    const std::string label = c == 0 ? "before adaptation" : "after " + std::to_string(c) + (c == 1 ? " step" : " steps");
    std::printf("%-22s %12.2f %12.2f\n", label.c_str(), s[0], s[1]);
  }
  std::printf("(std over %s)\n", e.online ? "runs" : "tasks of the per-task mean return");
}

}  // namespace ssmrl::cli
