// `ssmrl controller init`, `ssmrl sweep` and `ssmrl pretrain`: a new controller for a
// configuration's knobs, runs of a configuration over knob values, schedules and seeds (on several
// threads), and offline pretraining of a controller on such runs' logs.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include <ssmrl/ssmrl.hpp>

#include "commands.hpp"
#include "knob_options.hpp"
#include "log_columns.hpp"

namespace ssmrl::cli {

namespace {

std::string json_text(const control::KnobChanges& changes) {
  auto text = control::knob_changes_json(changes);
  return nlohmann::json::parse(text).dump();
}

// "1-4" or "1,3,5".
std::vector<std::uint64_t> parse_seeds(const std::string& text) {
  std::vector<std::uint64_t> out;
  for (const auto& part : split(text, ',')) {
    const auto dash = part.find('-');
    try {
      if (dash == std::string::npos) {
        out.push_back(std::stoull(part));
      } else {
        const auto a = std::stoull(part.substr(0, dash));
        const auto b = std::stoull(part.substr(dash + 1));
        SSMRL_REQUIRE(a <= b && b - a < 10000, "ssmrl sweep --seeds: '", part, "' is no range of at most 10000 seeds");
        for (auto s = a; s <= b; ++s) out.push_back(s);
      }
    } catch (const std::logic_error&) {
      SSMRL_THROW(::ssmrl::InvalidArgument,
                  ::ssmrl::detail::message("ssmrl sweep --seeds: '", part, "' is not a seed or a range A-B"));
    }
  }
  SSMRL_REQUIRE(!out.empty(), "ssmrl sweep --seeds: no seeds in '", text, "'");
  return out;
}

// NAME=LOW:HIGH (float and int knobs) or NAME=* (bools and choices): where a random value is drawn.
struct SampleRange {
  const control::Knob* knob = nullptr;
  double low = 0;
  double high = 0;
};

control::KnobValue draw(const SampleRange& r, std::mt19937_64& rng) {
  const auto& k = *r.knob;
  if (k.type == control::KnobType::boolean || k.type == control::KnobType::choice) return control::resample(k, rng);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  if (k.type == control::KnobType::integer) {
    std::uniform_int_distribution<std::int64_t> d(static_cast<std::int64_t>(r.low), static_cast<std::int64_t>(r.high));
    return d(rng);
  }
  if (k.log_scale) return k.from_number(std::exp(std::log(r.low) + u(rng) * (std::log(r.high) - std::log(r.low))));
  return k.from_number(r.low + u(rng) * (r.high - r.low));
}

}  // namespace

int run_controller_init(const ControllerInitOptions& o) {
  bool meta = false;
  const auto schema = config_knob_schema(o.config, meta);
  const auto steered = schema.subset(split(o.knobs, ','), "ssmrl controller init --knobs");
  SSMRL_REQUIRE(steered.size() > 0, "ssmrl controller init --knobs: no knobs named; the knobs are ",
                schema.names_text());
  const auto telemetry = o.telemetry.empty() ? default_controller_telemetry(meta) : split(o.telemetry, ',');
  const auto columns = config_columns(o.config);
  for (const auto& n : telemetry) {
    SSMRL_REQUIRE(std::find(columns.begin(), columns.end(), n) != columns.end(), "ssmrl controller init --telemetry: '",
                  n, "' is not a telemetry column of ", o.config, "'s train.csv; they are ", [&] {
                    std::string s;
                    for (const auto& c : columns) s += (s.empty() ? "" : ", ") + c;
                    return s;
                  }());
  }
  CliController c(nn::GruCell<double>({.input = static_cast<ad::Index>(telemetry.size() + steered.size()),
                                       .hidden = static_cast<ad::Index>(o.hidden)}),
                  steered, telemetry, {.seed = o.seed});
  control::save_controller(o.out, c, {{"ssmrl.config", o.config}});
  std::printf("controller for %s: GRU with %ld hidden units steering %s from %zu telemetry values; %s\n",
              o.config.c_str(), o.hidden, steered.names_text().c_str(), telemetry.size(), o.out.c_str());
  return 0;
}

int run_sweep(const SweepOptions& o) {
  bool meta = false;
  const auto schema = config_knob_schema(o.config, meta);
  const auto seeds = parse_seeds(o.seeds);
  // The grid: every combination of the listed values.
  std::vector<control::KnobChanges> grid{{}};
  for (const auto& g : o.grid) {
    const auto eq = g.find('=');
    SSMRL_REQUIRE(eq != std::string::npos, "ssmrl sweep --grid: '", g, "' is not NAME=V1,V2,...");
    const auto& k = schema.at(g.substr(0, eq), "ssmrl sweep --grid");
    std::vector<control::KnobChanges> next;
    for (const auto& text : split(g.substr(eq + 1), ',')) {
      const auto v = k.parse(text, "ssmrl sweep --grid");
      for (auto c : grid) {
        c[k.name] = v;
        next.push_back(std::move(c));
      }
    }
    grid = std::move(next);
  }
  std::vector<SampleRange> ranges;
  for (const auto& s : o.sample) {
    const auto eq = s.find('=');
    SSMRL_REQUIRE(eq != std::string::npos, "ssmrl sweep --sample: '", s, "' is not NAME=LOW:HIGH or NAME=*");
    SampleRange r;
    r.knob = &schema.at(s.substr(0, eq), "ssmrl sweep --sample");
    const auto spec = s.substr(eq + 1);
    if (r.knob->type == control::KnobType::boolean || r.knob->type == control::KnobType::choice) {
      SSMRL_REQUIRE(spec == "*", "ssmrl sweep --sample: knob '", r.knob->name, "' is ",
                    control::knob_type_name(r.knob->type), "; sample it with NAME=*");
    } else {
      const auto colon = spec.find(':');
      SSMRL_REQUIRE(colon != std::string::npos, "ssmrl sweep --sample: '", s, "' is not NAME=LOW:HIGH");
      r.low = r.knob->number(r.knob->parse(spec.substr(0, colon), "ssmrl sweep --sample"));
      r.high = r.knob->number(r.knob->parse(spec.substr(colon + 1), "ssmrl sweep --sample"));
      SSMRL_REQUIRE(r.low <= r.high, "ssmrl sweep --sample: '", s, "': LOW is above HIGH");
    }
    ranges.push_back(r);
  }
  SSMRL_REQUIRE(o.schedules == 0 || o.outer_steps > 0, "ssmrl sweep --schedules: give --outer-steps, the length "
                "that the schedules' pieces cover");
  SSMRL_REQUIRE((o.samples == 0 && o.schedules == 0) || !ranges.empty(),
                "ssmrl sweep: --samples and --schedules draw from --sample ranges; none given");
  std::mt19937_64 rng(o.sweep_seed);
  struct Run {
    std::string name;
    std::uint64_t seed;
    std::string kind;
    control::KnobChanges set;
    std::string schedule;
  };
  std::vector<Run> runs;
  const bool grid_runs = !o.grid.empty() || (o.samples == 0 && o.schedules == 0);
  for (const auto seed : seeds) {
    if (grid_runs) {
      for (const auto& g : grid) runs.push_back({"", seed, "grid", g, ""});
    }
    for (long i = 0; i < o.samples; ++i) {
      control::KnobChanges c;
      for (const auto& r : ranges) c[r.knob->name] = draw(r, rng);
      runs.push_back({"", seed, "random", c, ""});
    }
    for (long i = 0; i < o.schedules; ++i) {
      nlohmann::json schedule = nlohmann::json::array();
      const long length = o.outer_steps;
      for (long at = 0; at < length; at += o.segment) {
        control::KnobChanges c;
        for (const auto& r : ranges) c[r.knob->name] = draw(r, rng);
        schedule.push_back(nlohmann::json::array({at, nlohmann::json::parse(json_text(c))}));
      }
      runs.push_back({"", seed, "schedule", {}, schedule.dump()});
    }
  }
  for (std::size_t i = 0; i < runs.size(); ++i) {
    char name[64];
    std::snprintf(name, sizeof name, "run-%04zu-seed%llu", i, static_cast<unsigned long long>(runs[i].seed));
    runs[i].name = name;
  }
  SSMRL_REQUIRE(!runs.empty(), "ssmrl sweep: no runs");
  std::error_code ec;
  fs::create_directories(o.dir, ec);
  SSMRL_REQUIRE(!ec, "ssmrl sweep --dir '", o.dir, "': ", ec.message());
  nlohmann::ordered_json manifest;
  manifest["config"] = o.config;
  manifest["outer_steps"] = o.outer_steps;
  for (const auto& r : runs) {
    manifest["runs"].push_back(
        {{"dir", r.name},
         {"seed", r.seed},
         {"kind", r.kind},
         {"set", nlohmann::json::parse(json_text(r.set))},
         {"schedule", r.schedule.empty() ? nlohmann::json() : nlohmann::json::parse(r.schedule)}});
  }
  io::write_file_atomically("ssmrl sweep", fs::path(o.dir) / "sweep.json", manifest.dump(2) + "\n");
  std::printf("sweep of %s: %zu runs (%zu seeds) in %s on %u threads\n", o.config.c_str(), runs.size(), seeds.size(),
              o.dir.c_str(), o.threads);
  std::fflush(stdout);
  std::atomic<std::size_t> next{0};
  std::atomic<int> failed{0};
  std::mutex out;
  auto worker = [&] {
    for (std::size_t i = next++; i < runs.size(); i = next++) {
      const auto& r = runs[i];
      TrainOptions t;
      t.config = o.config;
      t.seed = r.seed;
      t.outer_steps = o.outer_steps;
      t.ckpt_dir = (fs::path(o.dir) / r.name).string();
      t.threads = 1;
      t.no_eval = true;
      t.quiet = true;
      t.schedule = r.schedule;
      t.save_every = 1000000;
      for (const auto& [k, v] : r.set) t.set.push_back(k + "=" + control::knob_text(v));
      int status = 0;
      std::string error;
      try {
        status = meta ? run_train_meta(t) : run_train_plain(t);
      } catch (const std::exception& e) {
        status = 1;
        error = e.what();
      }
      std::lock_guard<std::mutex> lock(out);
      if (status != 0) {
        ++failed;
        std::fprintf(stderr, "ssmrl sweep: %s failed (%d): %s\n", r.name.c_str(), status, error.c_str());
      }
    }
  };
  std::vector<std::thread> pool;
  for (unsigned w = 0; w < std::max(1u, o.threads); ++w) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  std::printf("sweep done: %zu runs, %d failed; manifest %s\n", runs.size(), failed.load(),
              (fs::path(o.dir) / "sweep.json").string().c_str());
  return failed.load() == 0 ? 0 : 1;
}

int run_pretrain(const PretrainOptions& o) {
  auto c = load_cli_controller(o.controller);
  std::vector<fs::path> dirs;
  for (const auto& p : o.runs) {
    std::error_code ec;
    if (fs::exists(fs::path(p) / "train.csv", ec)) {
      dirs.emplace_back(p);
      continue;
    }
    SSMRL_REQUIRE(fs::is_directory(p, ec), "ssmrl pretrain --runs: '", p, "' is neither a run nor a directory of runs");
    for (const auto& e : fs::directory_iterator(p)) {
      if (fs::exists(e.path() / "train.csv", ec) && fs::exists(e.path() / "latest.safetensors", ec))
        dirs.push_back(e.path());
    }
  }
  std::sort(dirs.begin(), dirs.end());
  SSMRL_REQUIRE(!dirs.empty(), "ssmrl pretrain --runs: no runs (directories with train.csv and latest.safetensors)");
  std::vector<io::CsvTable> tables;
  std::set<std::uint64_t> seeds;
  std::string config;
  bool meta = false;
  control::KnobSchema schema;
  for (const auto& d : dirs) {
    const auto metadata = io::read_safetensors(d / "latest.safetensors").metadata;
    const auto run_config = metadata_value(metadata, "ssmrl.config", d / "latest.safetensors");
    if (config.empty()) {
      config = run_config;
      schema = config_knob_schema(config, meta);
    }
    SSMRL_REQUIRE(run_config == config, "ssmrl pretrain: '", d.string(), "' is a run of ", run_config, ", not ", config);
    seeds.insert(metadata_integer<std::uint64_t>(metadata, "ssmrl.seed", d / "latest.safetensors"));
    tables.push_back(io::CsvTable::read(d / "train.csv",
                                        with_knob_columns(config_columns(config), schema),
                                        knob_text_columns(schema)));
  }
  const auto objective = o.objective.empty() ? default_objective(meta) : o.objective;
  const auto data = control::pretraining_windows(
      c, tables, {.window = static_cast<int>(o.window), .objective = objective, .order = meta ? "iteration" : "update"});
  std::size_t decisions = 0;
  for (const auto& run : data.actions) decisions += run.size();
  std::printf("pretraining on %zu runs of %s (%zu decisions, windows of %ld rows, objective %s), seeds:", dirs.size(),
              config.c_str(), decisions, o.window, objective.c_str());
  std::string seed_list;
  for (const auto s : seeds) seed_list += (seed_list.empty() ? "" : ",") + std::to_string(s);
  std::printf(" %s\n", seed_list.c_str());
  control::ControllerUpdate u;
  for (long step = 0; step < o.steps; ++step) {
    u = c.imitate(data.inputs, data.actions, data.weights);
    if (step % 50 == 0 || step + 1 == o.steps)
      std::printf("step %ld: weighted negative log-likelihood %.4f\n", step, u.loss);
  }
  c.reset();
  control::save_controller(o.controller, c, {{"ssmrl.config", config}, {"ssmrl.pretrain.seeds", seed_list}});
  std::printf("saved %s; evaluate it on seeds other than %s\n", o.controller.c_str(), seed_list.c_str());
  return 0;
}

}  // namespace ssmrl::cli
