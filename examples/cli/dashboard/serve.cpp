// `ssmrl serve --dir DIR`: the dashboard. One page (compiled into the program) over a JSON API on
// cpp-httplib: the runs under DIR and the shipped checkpoints, a training run started, watched,
// steered through its override file and stopped, adaptation of a checkpoint, and the
// self-improvement daemon. The work is done by `ssmrl` itself, run as a child with arguments the
// server builds, so that the page gets the command line's checks and messages.
//
// Safety: a random token, printed in the URL, on every request (a query parameter or the cookie the
// first page sets; actions are POST with the token in a header, which no other site's page can
// send); the Host header must name the loopback address (DNS rebinding); requests reach files
// only by plain names inside DIR (confined_paths.hpp).
#include <httplib.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include <ssmrl/control/knobs.hpp>
#include <ssmrl/control/override_file.hpp>
#include <ssmrl/io/lock.hpp>

#include "../commands.hpp"
#include "confined_paths.hpp"
#include "page.hpp"
#include "processes.hpp"

namespace ssmrl::cli {

namespace dashboard {

using nlohmann::json;

namespace {

constexpr const char* token_cookie = "ssmrl_token";
constexpr const char* token_header = "X-Ssmrl-Token";
constexpr const char* override_name = "override.json";
constexpr std::uintmax_t max_table_bytes = 32 << 20;

std::string random_token() {
  std::random_device device;  // the kernel's generator (getrandom) on Linux
  static constexpr char hex[] = "0123456789abcdef";
  std::string token;
  for (int i = 0; i < 24; ++i) {
    const auto byte = device() & 0xff;
    token += hex[byte >> 4];
    token += hex[byte & 0xf];
  }
  return token;
}

//! Compares without an early exit, so that timing tells nothing about the token.
bool same_token(const std::string& given, const std::string& token) {
  if (given.size() != token.size()) return false;
  unsigned difference = 0;
  for (std::size_t i = 0; i < token.size(); ++i) difference |= static_cast<unsigned char>(given[i] ^ token[i]);
  return difference == 0;
}

std::string cookie_value(const httplib::Request& request, const std::string& name) {
  const auto cookies = request.get_header_value("Cookie");
  std::size_t at = 0;
  while (at < cookies.size()) {
    const auto end = std::min(cookies.find(';', at), cookies.size());
    auto part = cookies.substr(at, end - at);
    part.erase(0, part.find_first_not_of(' '));
    if (part.rfind(name + "=", 0) == 0) return part.substr(name.size() + 1);
    at = end + 1;
  }
  return {};
}

//! A file's text, or nothing when it is missing; refused when larger than `limit`.
std::optional<std::string> text_of(const fs::path& path, std::uintmax_t limit = max_table_bytes) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return std::nullopt;
  const auto size = fs::file_size(path, ec);
  if (ec) return std::nullopt;
  if (size > limit) {
    throw Refusal(413, "ssmrl serve: '" + path.filename().string() + "' holds " + std::to_string(size) +
                           " bytes, more than the page shows (" + std::to_string(limit) + ")");
  }
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

//! The metadata of a safetensors file, read from its header alone; empty when it has none.
json checkpoint_metadata(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char size_bytes[8] = {};
  if (!in.read(reinterpret_cast<char*>(size_bytes), 8)) return json::object();
  std::uint64_t size = 0;
  for (int i = 7; i >= 0; --i) size = size << 8 | size_bytes[i];
  if (size > (16u << 20)) return json::object();
  std::string header(size, '\0');
  if (!in.read(header.data(), static_cast<std::streamsize>(size))) return json::object();
  const auto doc = json::parse(header, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("__metadata__")) return json::object();
  json out = json::object();  // strings only: a file from elsewhere may hold anything there
  if (doc["__metadata__"].is_object()) {
    for (const auto& [key, value] : doc["__metadata__"].items()) {
      if (value.is_string()) out[key] = value;
    }
  }
  return out;
}

std::vector<std::string> checkpoint_files(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const auto name = entry.path().filename().string();
    if (plain_name(name) && entry.path().extension() == ".safetensors" && entry.is_regular_file(ec)) {
      out.push_back(name);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

json knob_json(const control::Knob& k) {
  json j{{"name", k.name},
         {"type", control::knob_type_name(k.type)},
         {"range", k.range_text()},
         {"default", control::knob_text(k.default_value)},
         {"description", k.description}};
  if (k.type == control::KnobType::choice) j["choices"] = k.choices;
  if (k.type == control::KnobType::real || k.type == control::KnobType::integer) {
    j["lower"] = k.lower;
    j["upper"] = k.upper;
    j["log"] = k.log_scale;
  }
  return j;
}

//! A member of a JSON body as a string (numbers written as JSON writes them), or `fallback`.
std::string field(const json& body, const char* name, const std::string& fallback = {}) {
  if (!body.contains(name) || body[name].is_null()) return fallback;
  const auto& v = body[name];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number() || v.is_boolean()) return v.dump();
  throw Refusal(400, std::string("ssmrl serve: '") + name + "' is " + v.type_name() + ", not a value");
}

//! A whole number in [lo, hi] from a field's text; `what` names the option it becomes.
long whole(const std::string& text, long lo, long hi, const std::string& what) {
  long value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc{} || end != text.data() + text.size() || value < lo || value > hi) {
    throw Refusal(400, what + ": '" + text + "' is not a whole number from " + std::to_string(lo) + " to " +
                           std::to_string(hi));
  }
  return value;
}

//! The JSON object on the last line of `output` that holds one (a command's --json output).
json last_json_line(const std::string& output) {
  std::size_t end = output.size();
  while (end > 0) {
    const auto start = output.rfind('\n', end - 1);
    const auto from = start == std::string::npos ? 0 : start + 1;
    const auto line = output.substr(from, end - from);
    if (!line.empty() && line.front() == '{') {
      const auto doc = json::parse(line, nullptr, false);
      if (!doc.is_discarded()) return doc;
    }
    if (start == std::string::npos) break;
    end = start;
  }
  return nullptr;
}

}  // namespace

class Dashboard {
public:
  explicit Dashboard(const ServeOptions& options) : options_(options), token_(random_token()) {
    std::error_code ec;
    fs::create_directories(options.dir, ec);
    SSMRL_REQUIRE(fs::is_directory(options.dir, ec), "ssmrl serve --dir: '", options.dir, "' is not a directory");
    root_ = fs::canonical(options.dir);
    lock_.emplace("ssmrl serve", root_);  // one dashboard, and so one training run, per directory
    exe_ = fs::read_symlink("/proc/self/exe");
    pretrained_ = pretrained_dir(options.pretrained);
    for (const auto& c : config_summaries()) {
      bool meta = false;
      const auto schema = config_knob_schema(c.name, meta);
      json knobs = json::array();
      for (const auto& k : schema.knobs()) knobs.push_back(knob_json(k));
      configs_.push_back({{"name", c.name},
                          {"summary", c.summary},
                          {"meta", c.meta},
                          {"outer_steps", c.outer_steps},
                          {"knobs", knobs},
                          {"columns", config_columns(c.name)}});
    }
  }

  int serve() {
    httplib::Server server;
    server.set_payload_max_length(1 << 20);
    server.set_pre_routing_handler(
        [this](const httplib::Request& q, httplib::Response& r) { return admit(q, r); });
    server.Get("/", [this](const httplib::Request& q, httplib::Response& r) { page(q, r); });
    for (const auto& file : page_files()) {
      if (file.path == std::string("/")) continue;
      server.Get(file.path, [&file](const httplib::Request&, httplib::Response& r) {
        r.set_content(file.text, file.type);
      });
    }
    route(server, "GET", "/api/state", &Dashboard::state);
    route(server, "GET", "/api/run", &Dashboard::run);
    route(server, "POST", "/api/train", &Dashboard::train);
    route(server, "POST", "/api/stop", &Dashboard::stop);
    route(server, "POST", "/api/override", &Dashboard::set_override);
    route(server, "POST", "/api/override/remove", &Dashboard::remove_override);
    route(server, "POST", "/api/adapt", &Dashboard::adapt);
    route(server, "GET", "/api/rsi", &Dashboard::rsi_status);
    route(server, "POST", "/api/rsi/start", &Dashboard::rsi_start);
    route(server, "POST", "/api/rsi/stop", &Dashboard::rsi_stop);

    int port = options_.port;
    if (port == 0) {
      port = server.bind_to_any_port(options_.host);
      SSMRL_REQUIRE(port > 0, "ssmrl serve: cannot listen on ", options_.host);
    } else {
      SSMRL_REQUIRE(server.bind_to_port(options_.host, port), "ssmrl serve --port: cannot listen on ", options_.host,
                    ":", port, " (in use?)");
    }
    port_ = port;
    loopback_ = options_.host == "127.0.0.1" || options_.host == "localhost" || options_.host == "::1";
    const std::string shown_host = options_.host.find(':') != std::string::npos ? "[" + options_.host + "]"
                                                                                 : options_.host;
    std::printf("ssmrl serve: the dashboard of %s at\n  http://%s:%d/?token=%s\n", root_.string().c_str(),
                shown_host.c_str(), port, token_.c_str());
    if (!loopback_) std::printf("warning: listening on %s, not only on this machine\n", options_.host.c_str());
    std::printf("Ctrl-C stops it (and a training run it started, after its current iteration)\n");
    std::fflush(stdout);

    std::thread stopper([&server] {
      sigset_t set;
      sigemptyset(&set);
      sigaddset(&set, SIGINT);
      sigaddset(&set, SIGTERM);
      int signal = 0;
      sigwait(&set, &signal);
      server.stop();
    });
    stopper.detach();
    server.listen_after_bind();
    finish_job();
    return 0;
  }

private:
  using Handler = json (Dashboard::*)(const httplib::Request&, const json&);

  void route(httplib::Server& server, const char* method, const char* path, Handler handler) {
    auto handle = [this, handler](const httplib::Request& q, httplib::Response& r) {
      json reply;
      try {
        json body = json::object();
        if (q.method == "POST" && !q.body.empty()) {
          body = json::parse(q.body, nullptr, false);
          if (body.is_discarded() || !body.is_object()) {
            throw Refusal(400, "ssmrl serve: the request's body is not a JSON object");
          }
        }
        reply = (this->*handler)(q, body);
        r.status = 200;
      } catch (const Refusal& e) {
        r.status = e.status;
        reply = {{"error", e.what()}};
      } catch (const std::exception& e) {
        r.status = 400;
        reply = {{"error", e.what()}};
      }
      r.set_header("Cache-Control", "no-store");
      r.set_content(reply.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
    };
    if (std::string(method) == "GET") {
      server.Get(path, handle);
    } else {
      server.Post(path, handle);
    }
  }

  httplib::Server::HandlerResponse admit(const httplib::Request& q, httplib::Response& r) {
    r.set_header("X-Content-Type-Options", "nosniff");
    r.set_header("Referrer-Policy", "no-referrer");
    r.set_header("X-Frame-Options", "DENY");
    r.set_header("Content-Security-Policy",
                 "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'");
    auto refuse = [&](int status, const std::string& message) {
      r.status = status;
      r.set_content(json{{"error", message}}.dump(), "application/json");
      return httplib::Server::HandlerResponse::Handled;
    };
    if (loopback_) {
      const auto host = q.get_header_value("Host");
      const auto port = ":" + std::to_string(port_);
      if (host != "127.0.0.1" + port && host != "localhost" + port && host != "[::1]" + port) {
        return refuse(403, "ssmrl serve: refused a request for host '" + host + "'; open the printed URL");
      }
    }
    std::string given;
    if (q.method == "GET" || q.method == "HEAD") {
      given = q.has_param("token") ? q.get_param_value("token") : cookie_value(q, token_cookie);
    } else {
      given = q.get_header_value(token_header);
    }
    if (!same_token(given, token_)) {
      return refuse(403, "ssmrl serve: this request has no valid access token; open the URL that `ssmrl serve` "
                         "printed (actions need the token in the " + std::string(token_header) + " header)");
    }
    return httplib::Server::HandlerResponse::Unhandled;
  }

  void page(const httplib::Request&, httplib::Response& r) {
    for (const auto& file : page_files()) {
      if (file.path != std::string("/")) continue;
      std::string text = file.text;
      const std::string mark = "__SSMRL_TOKEN__";
      if (const auto at = text.find(mark); at != std::string::npos) text.replace(at, mark.size(), token_);
      r.set_header("Set-Cookie", std::string(token_cookie) + "=" + token_ + "; Path=/; HttpOnly; SameSite=Strict");
      r.set_header("Cache-Control", "no-store");
      r.set_content(text, file.type);
    }
  }

  static fs::path pretrained_dir(const std::string& given) {
    std::error_code ec;
    if (!given.empty()) {
      SSMRL_REQUIRE(fs::is_directory(given, ec), "ssmrl serve --pretrained: '", given, "' is not a directory");
      return fs::canonical(given);
    }
    const auto beside = fs::read_symlink("/proc/self/exe", ec).parent_path() / "../share/ssmrl/pretrained";
    if (fs::is_directory(beside, ec)) return fs::canonical(beside);
#ifdef SSMRL_PRETRAINED_SOURCE_DIR
    if (fs::is_directory(SSMRL_PRETRAINED_SOURCE_DIR, ec)) return fs::canonical(SSMRL_PRETRAINED_SOURCE_DIR);
#endif
    return {};
  }

  const json& config(const std::string& name) const {
    for (const auto& c : configs_) {
      if (c["name"] == name) return c;
    }
    std::string known;
    for (const auto& c : configs_) known += (known.empty() ? "" : ", ") + c["name"].get<std::string>();
    throw Refusal(400, "ssmrl train: unknown config '" + name + "'; known: " + known);
  }

  static control::KnobSchema schema_of(const std::string& config_name) {
    bool meta = false;
    return config_knob_schema(config_name, meta);
  }

  //! The job's state for the page; the caller holds mutex_.
  json job_json() const {
    if (!job_) return nullptr;
    const auto status = job_->status();
    auto output = job_->output();
    if (output.size() > 4000) output.erase(0, output.size() - 4000);
    return {{"name", job_name_},
            {"config", job_config_},
            {"running", !status},
            {"stopping", stopping_ && !status},
            {"status", status ? json(*status) : json(nullptr)},
            {"output", output}};
  }

  json state(const httplib::Request&, const json&) {
    json runs = json::array();
    std::error_code ec;
    std::vector<fs::directory_entry> entries;
    for (const auto& entry : fs::directory_iterator(root_, ec)) entries.push_back(entry);
    std::sort(entries.begin(), entries.end());
    std::lock_guard lock(mutex_);
    for (const auto& entry : entries) {
      const auto name = entry.path().filename().string();
      if (!plain_name(name) || !entry.is_directory(ec)) continue;
      fs::path dir;
      try {
        dir = confined(root_, name, "run");
      } catch (const Refusal&) {
        continue;  // a link leading out of the directory is not listed
      }
      const bool rsi = fs::exists(dir / "rsi.json", ec);
      const bool trained = fs::exists(dir / "train.csv", ec) || fs::exists(dir / "latest.safetensors", ec);
      const bool current = job_ && job_name_ == name;
      if (!rsi && !trained && !current) continue;
      json run{{"name", name}, {"kind", rsi ? "rsi" : "train"}, {"checkpoints", checkpoint_files(dir)}};
      if (rsi) run["checkpoints"] = json::array();  // the loop's own, read by `ssmrl rsi evaluate`
      const auto meta = checkpoint_metadata(dir / "latest.safetensors");
      run["config"] = meta.value("ssmrl.config", current ? job_config_ : std::string());
      run["iteration"] = meta.value("ssmrl.iteration", std::string());
      run["training"] = current && job_->running();
      runs.push_back(run);
    }
    json pretrained = json::array();
    if (!pretrained_.empty()) {
      for (const auto& file : checkpoint_files(pretrained_)) {
        pretrained.push_back({{"file", file}, {"config", checkpoint_metadata(pretrained_ / file).value(
                                                            "ssmrl.config", std::string())}});
      }
    }
    return {{"dir", root_.string()}, {"configs", configs_}, {"runs", runs}, {"pretrained", pretrained},
            {"job", job_json()}};
  }

  json run(const httplib::Request& q, const json&) {
    const auto name = q.get_param_value("name");
    const auto dir = confined(root_, name, "run");
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
      std::lock_guard lock(mutex_);
      if (job_ && job_name_ == name) return {{"name", name}, {"config", job_config_}, {"job", job_json()}};
      throw Refusal(404, "ssmrl serve: no run '" + name + "' in " + root_.string());
    }
    const auto meta = checkpoint_metadata(dir / "latest.safetensors");
    json reply{{"name", name},
               {"metadata", meta},
               {"checkpoints", checkpoint_files(dir)},
               {"csv", text_of(dir / "train.csv").value_or("")},
               {"audit", text_of(dir / "knobs_audit.csv").value_or("")},
               {"override", text_of(dir / override_name, control::max_override_bytes).value_or("")}};
    std::lock_guard lock(mutex_);
    reply["config"] = meta.value("ssmrl.config", job_ && job_name_ == name ? job_config_ : std::string());
    if (job_ && job_name_ == name) reply["job"] = job_json();
    return reply;
  }

  json train(const httplib::Request&, const json& body) {
    std::lock_guard lock(mutex_);
    if (job_ && job_->running()) {
      throw Refusal(409, "ssmrl serve: run '" + job_name_ + "' is training in " + root_.string() +
                             "; one run at a time: stop it first");
    }
    const auto config_name = field(body, "config");
    const auto& c = config(config_name);
    const auto name = field(body, "name");
    const auto dir = confined(root_, name, "run");
    std::error_code ec;
    if (fs::exists(dir, ec)) {
      throw Refusal(409, "ssmrl serve: '" + name + "' already exists in " + root_.string() +
                             "; a new run needs a new name");
    }
    std::vector<std::string> argv{exe_.string(), "train", "--config", config_name, "--ckpt-dir", dir.string(),
                                  "--override-file", (dir / override_name).string(), "--quiet"};
    const auto seed = field(body, "seed", "1");
    if (seed.empty() || seed.size() > 19 || seed.find_first_not_of("0123456789") != std::string::npos) {
      throw Refusal(400, "ssmrl train --seed: value " + seed + " is not a whole number from 0 to 10^19 - 1");
    }
    argv.insert(argv.end(), {"--seed", seed});
    if (const auto steps = field(body, "outer_steps"); !steps.empty()) {
      whole(steps, 1, 1'000'000, "ssmrl train --outer-steps");
      argv.insert(argv.end(), {"--outer-steps", steps});
    }
    if (const auto tasks = field(body, "tasks_per_batch"); !tasks.empty()) {
      if (!c["meta"].get<bool>()) {
        throw Refusal(400, "ssmrl train: --tasks-per-batch is for meta configs; '" + config_name + "' is plain");
      }
      whole(tasks, 1, 10'000, "ssmrl train --tasks-per-batch");
      argv.insert(argv.end(), {"--tasks-per-batch", tasks});
    }
    if (body.contains("knobs")) {
      if (!body["knobs"].is_object()) throw Refusal(400, "ssmrl serve: 'knobs' is not an object of knob values");
      const auto schema = schema_of(config_name);
      for (const auto& [knob, value] : body["knobs"].items()) {
        const auto text = value.is_string() ? value.get<std::string>() : value.dump();
        if (text.empty()) continue;  // the form's empty field: the configured value
        [[maybe_unused]] const auto checked = schema.at(knob, "ssmrl train --set").parse(text, "ssmrl train --set");
        argv.insert(argv.end(), {"--set", knob + "=" + text});
      }
    }
    job_ = std::make_unique<Job>(argv);
    job_name_ = name;
    job_config_ = config_name;
    stopping_ = false;
    // A run the command line refuses ends at once, before its first checkpoint, leaving nothing.
    if (job_->wait_for(std::chrono::milliseconds(500)) && job_->status() != 0) {
      auto output = job_->output();
      job_.reset();
      throw Refusal(400, output.empty() ? "ssmrl train failed" : output);
    }
    std::printf("ssmrl serve: started run '%s' (%s, pid %ld)\n", name.c_str(), config_name.c_str(),
                static_cast<long>(job_->pid()));
    std::fflush(stdout);
    return {{"started", name}, {"job", job_json()}};
  }

  json stop(const httplib::Request&, const json&) {
    std::lock_guard lock(mutex_);
    if (!job_ || !job_->running()) throw Refusal(409, "ssmrl serve: no training run is going on");
    job_->signal(SIGTERM);  // the run stops after its current iteration, with a checkpoint
    stopping_ = true;
    std::printf("ssmrl serve: stopping run '%s'\n", job_name_.c_str());
    std::fflush(stdout);
    return {{"stopping", job_name_}};
  }

  //! The running job's override file; the caller holds mutex_.
  fs::path running_override(const json& body) const {
    if (!job_ || !job_->running()) {
      throw Refusal(409, "ssmrl serve: no training run is going on; the override file is a running run's");
    }
    const auto name = field(body, "name", job_name_);
    if (name != job_name_) {
      throw Refusal(409, "ssmrl serve: run '" + name + "' is not training (run '" + job_name_ + "' is)");
    }
    return confined(root_, job_name_, "run") / override_name;
  }

  json set_override(const httplib::Request&, const json& body) {
    std::lock_guard lock(mutex_);
    const auto path = running_override(body);
    const auto text = field(body, "text");
    // Checked whole as the run will check it, then replaced atomically (the hot-swap protocol).
    const auto changes = control::parse_knob_changes(text, schema_of(job_config_), "the override");
    control::write_override_file(path, changes);
    std::printf("ssmrl serve: wrote the override file of run '%s' (%zu knobs)\n", job_name_.c_str(), changes.size());
    std::fflush(stdout);
    return {{"written", path.filename().string()}, {"knobs", changes.size()}};
  }

  json remove_override(const httplib::Request&, const json& body) {
    std::lock_guard lock(mutex_);
    const auto path = running_override(body);
    std::error_code ec;
    const bool removed = fs::remove(path, ec);
    if (ec) throw Refusal(500, "ssmrl serve: cannot remove the override file: " + ec.message());
    if (!removed) throw Refusal(409, "ssmrl serve: run '" + job_name_ + "' has no override file");
    return {{"removed", path.filename().string()}};
  }

  json adapt(const httplib::Request&, const json& body) {
    fs::path checkpoint;
    if (const auto shipped = field(body, "pretrained"); !shipped.empty()) {
      if (pretrained_.empty()) throw Refusal(404, "ssmrl serve: no shipped checkpoints were found");
      checkpoint = confined(pretrained_, shipped, "checkpoint");
    } else {
      checkpoint = confined(confined(root_, field(body, "run"), "run"), field(body, "file"), "checkpoint");
    }
    std::error_code ec;
    if (!fs::is_regular_file(checkpoint, ec)) throw Refusal(404, "ssmrl serve: no checkpoint " + checkpoint.string());
    std::vector<std::string> argv{exe_.string(), "adapt", "--checkpoint", checkpoint.string(), "--json"};
    if (const auto strategy = field(body, "strategy"); !strategy.empty()) {
      argv.push_back("--strategy=" + strategy);
    }
    if (const auto episodes = field(body, "episodes"); !episodes.empty()) {
      whole(episodes, 1, 1000, "ssmrl adapt --episodes");
      argv.insert(argv.end(), {"--episodes", episodes});
    }
    if (const auto steps = field(body, "adapt_steps"); !steps.empty()) {
      whole(steps, 0, 100, "ssmrl adapt --adapt-steps");
      argv.insert(argv.end(), {"--adapt-steps", steps});
    }
    std::unique_lock busy(adapt_mutex_, std::try_to_lock);
    if (!busy.owns_lock()) throw Refusal(409, "ssmrl serve: an adaptation is running; one at a time");
    const auto done = run_to_end(argv, std::chrono::seconds(600));
    if (done.status != 0) {
      throw Refusal(400, done.status < 0 ? "ssmrl adapt took longer than 10 minutes and was stopped" : done.output);
    }
    const auto result = last_json_line(done.output);
    if (result.is_null()) throw Refusal(500, "ssmrl adapt wrote no JSON: " + done.output);
    return result;
  }

  fs::path rsi_dir(const json& body) const { return confined(root_, field(body, "name"), "run"); }

  json rsi_status(const httplib::Request& q, const json&) {
    const auto dir = confined(root_, q.get_param_value("name"), "run");
    std::error_code ec;
    if (!fs::exists(dir / "rsi.json", ec)) {
      throw Refusal(404, "ssmrl serve: '" + q.get_param_value("name") + "' is no self-improvement run");
    }
    const auto done = run_to_end({exe_.string(), "rsi", "status", "--dir", dir.string()}, std::chrono::seconds(30));
    json history = json::array();
    const auto text = text_of(dir / "history.jsonl").value_or("");
    std::size_t at = 0;
    while (at < text.size()) {
      const auto end = text.find('\n', at);
      if (end == std::string::npos) break;  // a line being written
      const auto record = json::parse(text.substr(at, end - at), nullptr, false);
      if (!record.is_discarded()) history.push_back(record);
      at = end + 1;
    }
    return {{"name", q.get_param_value("name")},
            {"status", done.output},
            {"running", done.output.rfind("running", 0) == 0},
            {"history", history}};
  }

  json rsi_start(const httplib::Request&, const json& body) {
    const auto dir = rsi_dir(body);
    std::vector<std::string> argv{exe_.string(), "rsi", "start", "--dir", dir.string()};
    std::error_code ec;
    if (fs::exists(dir, ec) && !fs::exists(dir / "rsi.json", ec)) {
      throw Refusal(409, "ssmrl serve: '" + field(body, "name") + "' exists and is no self-improvement run; "
                             "a new one needs a new name");
    }
    if (!fs::exists(dir / "rsi.json", ec)) {  // a new run: its settings (an existing one keeps its own)
      for (const char* option : {"seed", "hidden", "budget", "cycles", "tasks_per_batch", "eval_seeds",
                                 "heldout_seeds", "tasks_per_seed", "replicates", "widen_probability"}) {
        const auto value = field(body, option);
        if (value.empty()) continue;
        std::string flag = std::string("--") + option;
        std::replace(flag.begin() + 2, flag.end(), '_', '-');
        argv.push_back(flag + "=" + value);  // one word: a value can never read as another option
      }
    }
    const auto done = run_to_end(argv, std::chrono::seconds(60));
    if (done.status != 0) throw Refusal(400, done.output);
    return {{"output", done.output}};
  }

  json rsi_stop(const httplib::Request&, const json& body) {
    const auto dir = rsi_dir(body);
    const auto done = run_to_end({exe_.string(), "rsi", "stop", "--dir", dir.string(), "--timeout", "60"},
                                 std::chrono::seconds(90));
    if (done.status != 0) throw Refusal(400, done.output);
    return {{"output", done.output}};
  }

  //! At the server's end: a training run it started stops after its iteration, with a checkpoint.
  void finish_job() {
    std::lock_guard lock(mutex_);
    if (!job_ || !job_->running()) return;
    std::printf("ssmrl serve: stopping run '%s' after its current iteration\n", job_name_.c_str());
    std::fflush(stdout);
    job_->signal(SIGTERM);
    if (!job_->wait_for(std::chrono::seconds(300))) job_->signal(SIGKILL);
  }

  ServeOptions options_;
  std::string token_;
  fs::path root_, exe_, pretrained_;
  json configs_ = json::array();
  int port_ = 0;
  bool loopback_ = true;
  std::mutex mutex_;  // the job
  std::unique_ptr<Job> job_;
  std::string job_name_, job_config_;
  bool stopping_ = false;
  std::mutex adapt_mutex_;
  std::optional<io::DirectoryLock> lock_;
};

}  // namespace dashboard

int run_serve(const ServeOptions& options) {
  // SIGINT and SIGTERM go to the server's stopping thread alone; children start with defaults.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  dashboard::Dashboard board(options);
  return board.serve();
}

}  // namespace ssmrl::cli
