// `ssmrl rsi`: the self-improvement loop (rsi::ImprovementLoop over a MetaSubject) run in the
// foreground or as a daemon in its directory, with a pid file, a stop file and the directory's lock;
// its status and log; and `plain`, the same compute spent on training the starting configuration.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include <ssmrl/io/lock.hpp>

#include "commands.hpp"
#include "configs.hpp"
#include "knob_options.hpp"
#include "run_directory.hpp"
#include "rsi_subject.hpp"

namespace ssmrl::cli {

namespace {

namespace fs = std::filesystem;
using NavigationConfig = MetaConfig<NavigationMlpPolicy, env::Navigation2DTasks>;
// The configuration's MLP policy with a norm of its features that proposals can switch on (off at the start).
using SwitchableMlpPolicy =
    policy::RecurrentPolicy<nn::MlpCell<float>, policy::GaussianHead<float>, nn::OptionalLayerNorm<float>>;
using Subject = MetaSubject<NavigationConfig, SwitchableMlpPolicy>;

// The files of a run directory beside the loop's history.jsonl and checkpoints/.
constexpr const char* settings_name = "rsi.json";
constexpr const char* pid_name = "rsi.pid";
constexpr const char* stop_name = "stop";
constexpr const char* log_name = "rsi.log";

SwitchableMlpPolicy navigation_mlp_sized(std::uint64_t seed, const std::vector<ad::Index>& hidden) {
  return {nn::MlpCell<float>({.input = 2, .hidden = hidden}),
          policy::GaussianHead<float>({.input = hidden.back(), .actions = 2}),
          nn::OptionalLayerNorm<float>(hidden.back(), false), {}, seed};
}
SwitchableMlpPolicy navigation_mlp_normalised(std::uint64_t seed, const std::vector<ad::Index>& hidden) {
  return {nn::MlpCell<float>({.input = 2, .hidden = hidden}),
          policy::GaussianHead<float>({.input = hidden.back(), .actions = 2}),
          nn::OptionalLayerNorm<float>(hidden.back(), true), {}, seed};
}

// The settings options: fixed when the run's directory is created.
const std::vector<std::string>& setting_names() {
  static const std::vector<std::string> names{
      "config", "seed", "hidden", "set", "tasks-per-batch", "budget", "cycles", "eval-seeds", "heldout-seeds",
      "tasks-per-seed", "proposal-knobs", "widen-probability", "null-trials", "degradation", "replicates",
      "shrink-probability", "norm-probability", "normalised"};
  return names;
}

nlohmann::json settings_json(const RsiOptions& o) {
  return {{"config", o.config},
          {"seed", o.seed},
          {"hidden", o.hidden},
          {"set", o.set},
          {"tasks-per-batch", o.tasks_per_batch},
          {"budget", o.budget},
          {"cycles", o.cycles},
          {"eval-seeds", o.eval_seeds},
          {"heldout-seeds", o.heldout_seeds},
          {"tasks-per-seed", o.tasks_per_seed},
          {"proposal-knobs", o.proposal_knobs},
          {"widen-probability", o.widen_probability},
          {"null-trials", o.null_trials},
          {"degradation", o.degradation},
          {"replicates", o.replicates},
          {"shrink-probability", o.shrink_probability},
          {"norm-probability", o.norm_probability},
          {"normalised", o.normalised}};
}

RsiOptions settings_from(const nlohmann::json& j, RsiOptions o, const fs::path& path) {
  try {
    o.config = j.at("config").get<std::string>();
    o.seed = j.at("seed").get<std::uint64_t>();
    o.hidden = j.at("hidden").get<std::string>();
    o.set = j.at("set").get<std::vector<std::string>>();
    o.tasks_per_batch = j.at("tasks-per-batch").get<int>();
    o.budget = j.at("budget").get<long>();
    o.cycles = j.at("cycles").get<long>();
    o.eval_seeds = j.at("eval-seeds").get<int>();
    o.heldout_seeds = j.at("heldout-seeds").get<int>();
    o.tasks_per_seed = j.at("tasks-per-seed").get<int>();
    o.proposal_knobs = j.at("proposal-knobs").get<std::string>();
    o.widen_probability = j.at("widen-probability").get<double>();
    o.null_trials = j.at("null-trials").get<bool>();
    o.degradation = j.at("degradation").get<double>();
    o.replicates = j.at("replicates").get<int>();
    o.shrink_probability = j.value("shrink-probability", 0.0);  // absent from the first runs' files
    o.norm_probability = j.value("norm-probability", 0.0);
    o.normalised = j.value("normalised", false);
  } catch (const nlohmann::json::exception& e) {
    SSMRL_THROW(InvalidArgument, ::ssmrl::detail::message("ssmrl rsi: '", path.string(),
                                                          "' is not a settings file of `ssmrl rsi`: ", e.what()));
  }
  return o;
}

std::vector<ad::Index> parse_hidden(const std::string& text) {
  std::vector<ad::Index> out;
  for (const auto& part : split(text, ',')) {
    const bool digits = !part.empty() && part.size() <= 5 && part.find_first_not_of("0123456789") == std::string::npos;
    SSMRL_REQUIRE(digits && std::stol(part) >= 1 && std::stol(part) <= 4096, "ssmrl rsi: --hidden '", text,
                  "': each width must be a whole number from 1 to 4096");
    out.push_back(std::stol(part));
  }
  SSMRL_REQUIRE(!out.empty() && out.size() <= 8, "ssmrl rsi: --hidden '", text, "' must name 1 to 8 widths");
  return out;
}

NavigationConfig config_named(const std::string& name) {
  std::optional<NavigationConfig> found;
  const bool known = visit_config(name, [&](const auto& c) {
    if constexpr (std::is_same_v<std::decay_t<decltype(c)>, NavigationConfig>) found = c;
  });
  SSMRL_REQUIRE(known, "ssmrl rsi: unknown config '", name, "'; known: ", known_configs());
  SSMRL_REQUIRE(found.has_value(), "ssmrl rsi: config '", name,
                "' is not a MAML configuration with an MLP policy and a TRPO outer step; use navigation2d or "
                "navigation2d-pretrained");
  return *found;
}

std::vector<std::uint64_t> seeds_from(std::uint64_t first, int count) {
  std::vector<std::uint64_t> out;
  for (int i = 0; i < count; ++i) out.push_back(first + static_cast<std::uint64_t>(i));
  return out;
}

rsi::LoopOptions loop_options(const RsiOptions& s) {
  rsi::LoopOptions o;
  o.eval_seeds = seeds_from(10000, s.eval_seeds);
  o.heldout_seeds = seeds_from(20000, s.heldout_seeds);
  o.budget = s.budget;
  o.seed = s.seed;
  o.safety.degradation = s.degradation;
  o.replicates = s.replicates;
  return o;
}

Subject make_subject(const RsiOptions& s) {
  const auto config = config_named(s.config);
  SubjectSettings settings;
  settings.proposal_knobs = split(s.proposal_knobs, ',');
  SSMRL_REQUIRE(!settings.proposal_knobs.empty(), "ssmrl rsi: --proposal-knobs is empty");
  settings.widen_probability = s.widen_probability;
  settings.shrink_probability = s.shrink_probability;
  settings.normalisation_probability = s.norm_probability;
  SSMRL_REQUIRE(s.widen_probability + s.shrink_probability + s.norm_probability <= 1, "ssmrl rsi: --widen-probability ",
                s.widen_probability, ", --shrink-probability ", s.shrink_probability, " and --norm-probability ",
                s.norm_probability, " add up to more than 1");
  settings.null_trials = s.null_trials;
  settings.tasks_per_seed = s.tasks_per_seed;
  settings.compute_unit = static_cast<double>(s.budget);
  auto options = config.options;
  options.meta_batch = s.tasks_per_batch;
  const auto schema = meta::MetaTrainer<NavigationMlpPolicy, env::Navigation2DTasks>::knob_schema(options);
  return Subject(config, s.normalised ? navigation_mlp_normalised : navigation_mlp_sized, s.seed,
                 parse_hidden(s.hidden),
                 knob_assignments(schema, s.set, "ssmrl rsi --set"), s.tasks_per_batch, settings);
}

// The settings of `dir`: those saved there, or (a new run) those given, saved. Settings given for a
// run that has its own are refused rather than ignored.
RsiOptions prepared_settings(const RsiOptions& given, bool create) {
  const fs::path dir = given.dir;
  const fs::path path = dir / settings_name;
  if (fs::exists(path)) {
    for (const auto& name : setting_names()) {
      SSMRL_REQUIRE(given.given.count(name) == 0, "ssmrl rsi ", given.action, ": '", dir.string(),
                    "' holds a run with its settings (", path.string(), "); --", name,
                    " is for a new run's directory");
    }
    const auto text = io::read_file("ssmrl rsi", path);
    const auto j = nlohmann::json::parse(text, nullptr, false);
    SSMRL_REQUIRE(!j.is_discarded() && j.is_object(), "ssmrl rsi: '", path.string(), "' is not a JSON object");
    auto s = settings_from(j, given, path);
    static_cast<void>(make_subject(s));  // the saved settings are checked as given ones are
    return s;
  }
  SSMRL_REQUIRE(create, "ssmrl rsi ", given.action, ": '", dir.string(), "' holds no run (no ", settings_name, ")");
  static_cast<void>(make_subject(given));  // refused before anything is written
  fs::create_directories(dir);
  io::write_file_atomically("ssmrl rsi", path, settings_json(given).dump(2) + "\n");
  return given;
}

bool running(const fs::path& dir) {
  try {
    io::DirectoryLock probe("ssmrl rsi", dir);
    return false;
  } catch (const io::IoError&) {
    return true;
  }
}

std::optional<long> pid_of(const fs::path& dir) {
  const fs::path path = dir / pid_name;
  if (!fs::exists(path)) return std::nullopt;
  try {
    const auto text = io::read_file("ssmrl rsi", path);
    return std::stol(text);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// The complete lines of the history, read without changing the file (a daemon may be writing it).
std::vector<nlohmann::json> history_records(const fs::path& dir) {
  std::vector<nlohmann::json> out;
  const fs::path path = dir / "history.jsonl";
  if (!fs::exists(path)) return out;
  const auto text = io::read_file("ssmrl rsi", path);
  std::size_t start = 0;
  for (auto end = text.find('\n'); end != std::string::npos; start = end + 1, end = text.find('\n', start)) {
    auto j = nlohmann::json::parse(text.substr(start, end - start), nullptr, false);
    if (!j.is_discarded() && j.is_object()) out.push_back(std::move(j));
  }
  return out;
}

std::string number_text(const nlohmann::json& j, const char* format = "%.3f") {
  if (!j.is_number()) return "-";
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, j.get<double>());
  return buffer;
}

std::string proposal_text(const nlohmann::json& p) {
  if (!p.is_object() || !p.contains("kind")) return "-";
  const auto kind = p["kind"].get<std::string>();
  if (kind == "knob") return p["knob"].get<std::string>() + " " + p["from"].get<std::string>() + " -> " +
                             p["to"].get<std::string>();
  if (kind == "widen" || kind == "shrink") return kind + " layer " + std::to_string(p["layer"].get<long>()) + " " +
                              std::to_string(p["from"].get<long>()) + " -> " + std::to_string(p["to"].get<long>());
  if (kind == "normalisation") return "normalisation " + p["from"].get<std::string>() + " -> " +
                                      p["to"].get<std::string>();
  return "reseed training " + std::to_string(p["from"].get<std::uint64_t>()) + " -> " +
         std::to_string(p["to"].get<std::uint64_t>());
}

// The primary score's IQM of an evaluation record ({"primary": {...}}).
std::string primary_iqm(const nlohmann::json& e) {
  if (!e.is_object() || !e.contains("primary")) return "-";
  return number_text(e["primary"].value("iqm", nlohmann::json()));
}

void print_cycle(std::FILE* out, const nlohmann::json& r) {
  const long cycle = r.value("cycle", -1L);
  const auto decision = r.value("decision", std::string("?"));
  if (decision == "baseline") {
    std::fprintf(out, "cycle 0: baseline, heldout_return IQM %s on the evaluation seeds, %s on the held-out seeds\n",
                 primary_iqm(r["eval"]).c_str(), primary_iqm(r["heldout"]).c_str());
    return;
  }
  std::string held;
  if (r.contains("heldout")) {
    const auto& h = r["heldout"];
    held = ", held-out seeds " + primary_iqm(h["candidate"]) + " vs " + primary_iqm(h["baseline"]);
  }
  std::fprintf(out, "cycle %ld: %s: %s (IQM %s vs %s%s; %s)%s\n", cycle, proposal_text(r["proposal"]).c_str(),
               decision.c_str(), primary_iqm(r["eval"]["candidate"]).c_str(),
               primary_iqm(r["eval"]["baseline"]).c_str(), held.c_str(), r.value("why", std::string()).c_str(),
               r.contains("safety") ? ("; safety: " + r["safety"].get<std::string>()).c_str() : "");
}

// The loop, until its cycles are done, it stops itself, or a stop is asked for (the stop file, or
// SIGINT/SIGTERM): a cycle that started is finished, then the loop returns.
int run_loop(const RsiOptions& s) {
  const fs::path dir = s.dir;
  StopOnSignals signals;
  rsi::ImprovementLoop<Subject> loop(make_subject(s), dir, loop_options(s));
  const auto& records = loop.history().records();
  if (records.size() == 1) print_cycle(stdout, records.back());
  else std::printf("resumed at cycle %ld\n", loop.next_cycle());
  std::fflush(stdout);
  while (!loop.stopped() && (s.cycles == 0 || loop.next_cycle() <= s.cycles)) {
    if (signals.requested() || fs::exists(dir / stop_name)) {
      std::printf("stop asked for: ending before cycle %ld\n", loop.next_cycle());
      std::fflush(stdout);
      return 0;
    }
    const auto started = std::chrono::steady_clock::now();
    loop.run_cycle();
    print_cycle(stdout, loop.history().records().back());
    std::printf("  (%.1f s)\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    std::fflush(stdout);
  }
  std::printf(loop.stopped() ? "the loop stopped itself after consecutive failures\n" : "done: %ld cycles\n",
              loop.next_cycle() - 1);
  return loop.stopped() ? 1 : 0;
}

void write_pid(const fs::path& dir) {
  io::write_file_atomically("ssmrl rsi start", dir / pid_name, std::to_string(::getpid()) + "\n");
}
void remove_own_pid(const fs::path& dir) {
  if (pid_of(dir) == static_cast<long>(::getpid())) fs::remove(dir / pid_name);
}

int start(const RsiOptions& given) {
  const auto s = prepared_settings(given, true);
  const fs::path dir = s.dir;
  if (s.foreground) {
    io::DirectoryLock lock("ssmrl rsi start", dir);
    fs::remove(dir / stop_name);
    write_pid(dir);
    const int status = run_loop(s);
    remove_own_pid(dir);
    return status;
  }
  { io::DirectoryLock probe("ssmrl rsi start", dir); }  // a running daemon is named before any fork
  int ready[2];
  SSMRL_REQUIRE(::pipe(ready) == 0, "ssmrl rsi start: cannot create a pipe");
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t child = ::fork();
  SSMRL_REQUIRE(child >= 0, "ssmrl rsi start: cannot fork");
  if (child > 0) {  // the command: waits for the daemon's word that it holds the directory
    ::close(ready[1]);
    std::string word;
    char buffer[512];
    for (ssize_t n; (n = ::read(ready[0], buffer, sizeof buffer)) > 0;) {
      word.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(ready[0]);
    int ignored = 0;
    ::waitpid(child, &ignored, 0);
    if (word.rfind("started ", 0) == 0) {
      std::printf("self-improvement daemon %s in %s; `ssmrl rsi status --dir %s`, `ssmrl rsi logs --dir %s`\n",
                  word.c_str(), dir.string().c_str(), dir.string().c_str(), dir.string().c_str());
      return 0;
    }
    std::fprintf(stderr, "%s\n", word.empty() ? "ssmrl rsi start: the daemon ended before it started" : word.c_str());
    return 1;
  }
  // The daemon: a session of its own, in a grandchild that init adopts.
  ::close(ready[0]);
  ::setsid();
  if (::fork() != 0) ::_exit(0);
  const auto tell = [&](const std::string& word) {
    [[maybe_unused]] const ssize_t n = ::write(ready[1], word.data(), word.size());
    ::close(ready[1]);
    ready[1] = -1;
  };
  try {
    io::DirectoryLock lock("ssmrl rsi start", dir);
    fs::remove(dir / stop_name);
    write_pid(dir);
    const int log = ::open((dir / log_name).c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    SSMRL_REQUIRE(log >= 0 && null >= 0, "ssmrl rsi start: cannot open '", (dir / log_name).string(), "'");
    ::dup2(null, STDIN_FILENO);
    ::dup2(log, STDOUT_FILENO);
    ::dup2(log, STDERR_FILENO);
    std::printf("daemon %ld started\n", static_cast<long>(::getpid()));
    std::fflush(stdout);
    tell("started (pid " + std::to_string(::getpid()) + ")");
    int status = 1;
    try {
      status = run_loop(s);
    } catch (const std::exception& e) {
      std::printf("the loop failed: %s\n", e.what());
    }
    remove_own_pid(dir);
    std::fflush(stdout);
    ::_exit(status);
  } catch (const std::exception& e) {
    if (ready[1] >= 0) tell(e.what());
    ::_exit(1);
  }
}

int stop(const RsiOptions& given) {
  const auto s = prepared_settings(given, false);
  const fs::path dir = s.dir;
  if (!running(dir)) {
    std::printf("no daemon runs in %s\n", dir.string().c_str());
    return 0;
  }
  const auto pid = pid_of(dir);
  io::write_file_atomically("ssmrl rsi stop", dir / stop_name, "stop\n");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(s.timeout);
  while (running(dir) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (!running(dir)) {
    fs::remove(dir / stop_name);
    std::printf("the daemon in %s stopped after its cycle\n", dir.string().c_str());
    return 0;
  }
  SSMRL_REQUIRE(pid.has_value() && *pid > 1, "ssmrl rsi stop: the daemon in '", dir.string(),
                "' did not stop within ", s.timeout, " s and its pid file is missing");
  ::kill(static_cast<pid_t>(*pid), SIGKILL);
  for (int i = 0; i < 200 && running(dir); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  fs::remove(dir / stop_name);
  std::printf("the daemon in %s (pid %ld) did not stop within %ld s: killed; the next start resumes from its last "
              "checkpoint\n",
              dir.string().c_str(), *pid, s.timeout);
  return 0;
}

int status(const RsiOptions& given) {
  const auto s = prepared_settings(given, false);
  const fs::path dir = s.dir;
  const auto pid = pid_of(dir);
  if (running(dir)) {
    std::printf("running (pid %s) in %s\n", pid ? std::to_string(*pid).c_str() : "?", dir.string().c_str());
  } else {
    std::printf("not running, in %s\n", dir.string().c_str());
  }
  std::printf("config %s, seed %llu, hidden %s%s, %d tasks per batch, budget %ld meta-iterations per arm, %s\n",
              s.config.c_str(), static_cast<unsigned long long>(s.seed), s.hidden.c_str(),
              s.normalised ? " (normalised)" : "", s.tasks_per_batch,
              s.budget, s.null_trials ? "null trials (proposals only reseed training)" : "proposals:");
  if (!s.null_trials) {
    std::printf("  widen %.2f, shrink %.2f, normalisation %.2f, else a knob of %s\n", s.widen_probability,
                s.shrink_probability, s.norm_probability, s.proposal_knobs.c_str());
  }
  const auto records = history_records(dir);
  if (records.empty()) {
    std::printf("no cycle recorded yet\n");
    return 0;
  }
  int accepted = 0, rejected = 0, withdrawn = 0, rolled_back = 0;
  for (const auto& r : records) {
    const auto d = r.value("decision", std::string());
    accepted += d == "accepted";
    rejected += d == "rejected";
    withdrawn += d == "withdrawn";
    rolled_back += d == "rolled_back" || d == "stopped";
  }
  const auto& last = records.back();
  std::printf("cycles done: %zu (accepted %d, rejected %d, withdrawn on held-out seeds %d, rolled back %d)\n",
              records.size() - 1, accepted, rejected, withdrawn, rolled_back);
  std::printf("best heldout_return (mean over the evaluation seeds): %s\n",
              number_text(last.value("best", nlohmann::json())).c_str());
  std::printf("compute: %ld meta-iterations of training (both arms, every replicate, of every cycle)\n",
              2 * s.budget * s.replicates * static_cast<long>(records.size() - 1));
  std::printf("last: ");
  print_cycle(stdout, last);
  return 0;
}

int logs(const RsiOptions& given) {
  const auto s = prepared_settings(given, false);
  const fs::path path = fs::path(s.dir) / log_name;
  std::size_t shown = 0;
  const auto show_new = [&] {
    if (!fs::exists(path)) return;
    const auto text = io::read_file("ssmrl rsi logs", path);
    if (text.size() > shown) std::fwrite(text.data() + shown, 1, text.size() - shown, stdout);
    shown = std::max(shown, text.size());
    std::fflush(stdout);
  };
  show_new();
  while (!s.no_follow && running(s.dir)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    show_new();
  }
  show_new();
  return 0;
}

// The seeds of a report: used by no decision of the loop (neither evaluation nor held-out seeds).
std::vector<std::uint64_t> report_seeds(const RsiOptions& s) { return seeds_from(30000, s.heldout_seeds); }

// `subject` evaluated on the report seeds: printed, and written to DIR/NAME.json.
void report(const Subject& subject, const RsiOptions& s, const std::string& name, nlohmann::json out) {
  const auto e = rsi::detail::evaluation_json(subject.evaluate(report_seeds(s)));
  out["report_seeds"] = report_seeds(s);
  out["report"] = e;
  const fs::path path = fs::path(s.dir) / (name + ".json");
  io::write_file_atomically("ssmrl rsi", path, out.dump(2) + "\n");
  std::printf("on %d report seeds (used by no decision): %s IQM %s [%s, %s], mean %s", s.heldout_seeds,
              e["primary"]["name"].get<std::string>().c_str(), number_text(e["primary"]["iqm"]).c_str(),
              number_text(e["primary"]["iqm_ci95"][0]).c_str(), number_text(e["primary"]["iqm_ci95"][1]).c_str(),
              number_text(e["primary"]["mean"]).c_str());
  for (const auto& m : e["others"]) {
    std::printf("; %s IQM %s", m["name"].get<std::string>().c_str(),
                number_text(m.value("iqm", nlohmann::json())).c_str());
  }
  std::printf("\nwritten to %s\n", path.string().c_str());
}

// The starting configuration trained for `iterations` (default: what the loop's cycles have used,
// both arms, every replicate), evaluated on the report seeds.
int plain(const RsiOptions& given) {
  const auto s = prepared_settings(given, false);
  const fs::path dir = s.dir;
  const long cycles = static_cast<long>(history_records(dir).size()) - 1;
  const long iterations = given.iterations > 0 ? given.iterations : 2 * s.budget * s.replicates * std::max(0L, cycles);
  SSMRL_REQUIRE(iterations > 0, "ssmrl rsi plain: '", dir.string(),
                "' has no cycle yet; give --iterations for the meta-iterations to train");
  auto subject = make_subject(s);
  const auto started = std::chrono::steady_clock::now();
  subject.train(iterations);
  std::printf("plain training of the starting configuration: %ld meta-iterations in %.1f s\n", iterations,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  report(subject, s, "plain-" + std::to_string(iterations), {{"iterations", iterations}});
  return 0;
}

// The loop's policy now (its last cycle's checkpoint), evaluated on the report seeds.
int evaluate(const RsiOptions& given) {
  const auto s = prepared_settings(given, false);
  const auto records = history_records(s.dir);
  SSMRL_REQUIRE(!records.empty(), "ssmrl rsi evaluate: '", s.dir, "' has no cycle yet");
  const long cycle = records.back().value("cycle", 0L);
  auto subject = make_subject(s);
  subject.load(fs::path(s.dir) / "checkpoints" / ("cycle_" + std::to_string(cycle) + ".safetensors"));
  nlohmann::json hidden = subject.policy().cell().config().hidden;
  const bool normalised = subject.policy().norm().enabled();
  std::printf("the loop's policy after cycle %ld: hidden %s, normalisation %s, %ld meta-iterations trained\n", cycle,
              hidden.dump().c_str(), normalised ? "on" : "off", subject.iterations());
  report(subject, s, "evaluate-" + std::to_string(cycle),
         {{"cycle", cycle}, {"hidden", hidden}, {"normalised", normalised}});
  return 0;
}

}  // namespace

int run_rsi(const RsiOptions& options) {
  if (options.action == "start") return start(options);
  if (options.action == "stop") return stop(options);
  if (options.action == "status") return status(options);
  if (options.action == "logs") return logs(options);
  if (options.action == "plain") return plain(options);
  if (options.action == "evaluate") return evaluate(options);
  // restart: a graceful stop (forced after --timeout), then a start with the run's settings.
  const int stopped = stop(options);
  if (stopped != 0) return stopped;
  return start(options);
}

}  // namespace ssmrl::cli
