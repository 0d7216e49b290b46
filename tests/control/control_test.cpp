// Hyper-parameter control without a trainer: the knob schema (types, bounds, decoding), the layered
// values and their precedence, the override file's refusals (each leaves every knob bit-identical),
// its atomic writer against a concurrent reader, the audit log, the telemetry normaliser, the
// MetaController (bounded decoding, save and load, learning from rewards) and PBT's decisions.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <ssmrl/control.hpp>
#include <ssmrl/control/controller_file.hpp>
#include <ssmrl/control/override_file.hpp>
#include <ssmrl/control/pbt.hpp>
#include <ssmrl/control/pbt_toy.hpp>
#include <ssmrl/control/population.hpp>
#include <ssmrl/control/pretraining.hpp>
#include <ssmrl/nn/cells/diag_ssm.hpp>
#include <ssmrl/nn/cells/gru.hpp>

#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "support/errors.hpp"
#include "support/thread_communicator.hpp"

using namespace ssmrl;
using namespace ssmrl::control;
namespace fs = std::filesystem;

namespace {

fs::path scratch_dir(const std::string& name) {
  const auto dir = fs::temp_directory_path() / ("ssmrl_control_test_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// A schema with one knob of each type and move.
KnobSchema mixed_schema() {
  return KnobSchema({real_knob("lr", 3e-4, 1e-6, 1.0, true, "learning rate"),
                     real_knob("clip", 0.2, 0.01, 0.9, false, "clip range"),
                     integer_knob("epochs", 4, 1, 50, "epochs"),
                     boolean_knob("decay", true, "decay"),
                     choice_knob("fisher", "at_adapted", {"at_adapted", "through_adaptation"}, "fisher")});
}

// Every knob's value and source, as text: equal texts mean bit-identical states (floats are
// printed with the shortest text that reads back exactly).
std::string snapshot(const KnobState& s) {
  std::string out;
  for (std::size_t i = 0; i < s.schema().size(); ++i) {
    out += s.schema()[i].name + "=" + knob_text(s.value(i)) + "(" + knob_source_name(s.source(i)) + ") ";
  }
  return out;
}

}  // namespace

TEST_CASE("a knob refuses values of another type, outside its range, and NaN, naming the knob and range") {
  const auto schema = mixed_schema();
  const auto& lr = schema[0];
  CHECK_FALSE(lr.problem(1e-3).has_value());
  CHECK(lr.problem(2.0).value() == "knob 'lr' = 2 is outside its range [1e-06, 1] log");
  CHECK(lr.problem(std::nan("")).has_value());
  CHECK(lr.problem(std::int64_t{1}).value().find("is float, not int") != std::string::npos);
  const auto& epochs = schema[2];
  CHECK(epochs.problem(3.0).value().find("is int, not float") != std::string::npos);
  CHECK(epochs.problem(std::int64_t{51}).value().find("[1, 50]") != std::string::npos);
  CHECK(schema[4].problem(std::string("exact")).value().find("{at_adapted, through_adaptation}") != std::string::npos);
  CHECK(test::message_of<InvalidArgument>([&] { (void)epochs.parse("2.5", "here"); }).find("not a whole number") !=
        std::string::npos);
  CHECK(std::get<std::int64_t>(epochs.parse("7", "here")) == 7);
  CHECK(std::get<bool>(schema[3].parse("false", "here")) == false);
  CHECK(test::message_of<InvalidArgument>([&] { (void)lr.parse("0", "here"); }).find("outside its range") !=
        std::string::npos);
  CHECK_THROWS_AS(KnobSchema({real_knob("a", 1, 0, 2, false, ""), real_knob("a", 1, 0, 2, false, "")}), InvalidArgument);
  CHECK_THROWS_AS(KnobSchema({real_knob("a", 3, 0, 2, false, "")}), InvalidArgument);
}

TEST_CASE("decoding any number gives a value of the knob's type inside its bounds (many random draws)") {
  const auto schema = mixed_schema();
  std::mt19937_64 rng(7);
  std::cauchy_distribution<double> wild(0.0, 100.0);
  for (int draw = 0; draw < 20000; ++draw) {
    double x = wild(rng);
    if (draw % 97 == 0) x = draw % 2 ? std::numeric_limits<double>::infinity() : -1e300;
    for (const auto& k : schema.knobs()) {
      const auto v = k.from_number(x);
      REQUIRE_MESSAGE(!k.problem(v).has_value(), k.name, " decoded ", x, " to ", knob_text(v));
      if (k.type == KnobType::integer) REQUIRE(std::holds_alternative<std::int64_t>(v));
    }
  }
  CHECK(std::get<std::int64_t>(schema[2].from_number(3.4)) == 3);
  CHECK(std::get<std::string>(schema[4].from_number(0.7)) == "through_adaptation");
  CHECK(schema[0].position(1e-6) == doctest::Approx(0.0));
  CHECK(schema[0].position(1.0) == doctest::Approx(1.0));
  CHECK(schema[0].position(1e-3) == doctest::Approx(0.5));
}

TEST_CASE("precedence: override file > controller > config > default, and a refused layer changes nothing") {
  KnobState s(mixed_schema());
  CHECK(s.source(0) == KnobSource::default_value);
  s.set_layer(KnobSource::config, {{"lr", 1e-3}});
  s.set_layer(KnobSource::controller, {{"lr", 2e-3}, {"epochs", std::int64_t{8}}});
  s.set_layer(KnobSource::override_file, {{"lr", 5e-3}});
  CHECK(std::get<double>(s.value(0)) == 5e-3);
  CHECK(s.source(0) == KnobSource::override_file);
  CHECK(std::get<std::int64_t>(s.value(2)) == 8);
  CHECK(s.source(2) == KnobSource::controller);
  const auto before = snapshot(s);
  CHECK_THROWS_AS(s.set_layer(KnobSource::controller, {{"lr", 1e-3}, {"epochs", std::int64_t{0}}}), InvalidArgument);
  CHECK(snapshot(s) == before);
  s.clear_layer(KnobSource::override_file);
  CHECK(std::get<double>(s.value(0)) == 2e-3);
  s.clear_layer(KnobSource::controller);
  CHECK(std::get<double>(s.value(0)) == 1e-3);
  CHECK(s.source(0) == KnobSource::config);
}

TEST_CASE("each refusal of the override file leaves every knob bit-identical, with one warning per content") {
  const auto dir = scratch_dir("refusals");
  const auto path = dir / "override.json";
  KnobState s(mixed_schema());
  s.set_layer(KnobSource::config, {{"clip", 0.3}});
  OverrideFile file(path);
  write_text(path, R"({"lr": 0.001, "epochs": 6})");
  auto check = file.apply(s);
  CHECK(check.changed);
  CHECK_FALSE(check.warning);
  CHECK(std::get<double>(s.value(0)) == 0.001);
  const auto applied = snapshot(s);

  const std::vector<std::pair<std::string, std::string>> refused{
      {R"({"lr": 0.002, "bogus": 1})", "no knob 'bogus'"},
      {R"({"lr": "0.002"})", "not JSON string"},
      {R"({"epochs": 6.0})", "knob 'epochs' is int"},
      {R"({"epochs": 2.5})", "knob 'epochs' is int"},
      {R"({"decay": 1})", "knob 'decay' is bool"},
      {R"({"lr": 5})", "outside its range"},
      {R"({"lr": 1e999})", ""},
      {R"({"lr": NaN})", "is not JSON"},
      {R"({"lr": 0.002,)", "is not JSON"},
      {R"({"lr": 0.0)", "is not JSON"},
      {"", "is not JSON"},
      {R"([0.002])", "not an object"},
      {R"({"lr": 0.002, "lr": 0.003})", "names knob 'lr' twice"},
      {R"({"fisher": "exact"})", "is not one of"},
      {R"({"epochs": 18446744073709551615})", "knob 'epochs' is int"},
  };
  for (const auto& entry : refused) {  // not a structured binding: doctest's CAPTURE is a lambda
    const std::string& text = entry.first;
    const std::string& reason = entry.second;
    CAPTURE(text);
    write_text(path, text);
    check = file.apply(s);
    REQUIRE(check.warning.has_value());
    CHECK(check.warning->find(reason) != std::string::npos);
    CHECK(check.warning->find(path.string()) != std::string::npos);
    CHECK_FALSE(check.changed);
    CHECK(snapshot(s) == applied);
    // The same content again: still refused, no second warning.
    check = file.apply(s);
    CHECK_FALSE(check.warning.has_value());
    CHECK(snapshot(s) == applied);
  }
  // Deleting the file reverts to the configured values.
  fs::remove(path);
  check = file.apply(s);
  CHECK(check.changed);
  CHECK(std::get<double>(s.value(0)) == 3e-4);
  CHECK(s.source(0) == KnobSource::default_value);
  CHECK(std::get<double>(s.value(1)) == 0.3);
  CHECK(s.source(1) == KnobSource::config);
  fs::remove_all(dir);
}

TEST_CASE("int knobs stay ints through the override file's JSON, and floats read back exactly") {
  const auto schema = mixed_schema();
  const KnobChanges changes{
      {"lr", 0.1 + 0.2}, {"epochs", std::int64_t{12}}, {"decay", false}, {"fisher", std::string("through_adaptation")}};
  const auto text = knob_changes_json(changes);
  CHECK(text.find("\"epochs\": 12,") != std::string::npos);
  const auto back = parse_knob_changes(text, schema, "text");
  CHECK(back == changes);
}

TEST_CASE("a reader of the override file sees only whole versions while writers replace it") {
  const auto dir = scratch_dir("concurrent");
  const auto path = dir / "override.json";
  const auto schema = mixed_schema();
  // Versions of very different sizes, so that a torn or mixed read could not parse as one of them.
  auto version = [](int n) {
    KnobChanges c{{"epochs", std::int64_t{1 + n % 50}}};
    if (n % 2 == 0) {
      c["lr"] = 1e-4 * (1 + n % 7);
      c["clip"] = 0.05 + 0.01 * (n % 9);
      c["fisher"] = std::string("through_adaptation");
    }
    return c;
  };
  write_override_file(path, version(0));
  constexpr int rounds = 1500;  // per writer
  std::atomic<int> writers_done{0};
  auto writer = [&](int id) {
    for (int r = 0; r < rounds; ++r) write_override_file(path, version(2 * r + id));
    ++writers_done;
  };
  std::thread a(writer, 0);
  std::thread b(writer, 1);
  long reads = 0;
  long bad = 0;
  std::string first_bad;
  while (writers_done.load() < 2) {
    std::string text;
    try {
      text = io::read_file("reader", path);
      const auto got = parse_knob_changes(text, schema, "reader");
      const auto epochs = std::get<std::int64_t>(got.at("epochs"));
      bool known = false;
      for (int n = static_cast<int>(epochs) - 1; n < 2 * rounds + 2 && !known; n += 50) known = version(n) == got;
      if (!known) throw std::runtime_error("not a written version");
    } catch (const std::exception& e) {
      if (bad++ == 0) first_bad = std::string(e.what()) + ": " + text;
    }
    ++reads;
  }
  a.join();
  b.join();
  INFO(first_bad);
  CHECK(bad == 0);
  CHECK(reads > 100);
  std::size_t leftovers = 0;
  for (const auto& e : fs::directory_iterator(dir)) leftovers += io::is_temporary_file(e.path()) ? 1 : 0;
  CHECK(leftovers == 0);
  fs::remove_all(dir);
}

TEST_CASE("the audit log records each change of value or source, resumes cut, and skips a torn last line") {
  const auto dir = scratch_dir("audit");
  const auto path = dir / "audit.csv";
  KnobState s(mixed_schema());
  {
    AuditLog log(path);
    log.record(0, s);
    log.record(1, s);
    s.set_layer(KnobSource::override_file, {{"epochs", std::int64_t{9}}});
    log.record(2, s);
    s.clear_layer(KnobSource::override_file);
    log.record(3, s);
  }
  auto table = AuditLog::read(path);
  REQUIRE(table.rows().size() == 7);
  CHECK(table.column("iteration")[5] == 2);
  CHECK(table.text_column("knob")[5] == "epochs");
  CHECK(table.text_column("value")[5] == "9");
  CHECK(table.text_column("source")[5] == "override");
  CHECK(table.text_column("source")[6] == "default");
  CHECK(table.text_column("value")[0] == "3e-04");
  // Resumed at iteration 3: the row of iteration 3 goes, and the same change is recorded again.
  {
    AuditLog log(path, 3);
    CHECK(AuditLog::read(path).rows().size() == 6);
    log.record(3, s);
  }
  CHECK(AuditLog::read(path).rows().size() == 7);
  std::ofstream(path, std::ios::app) << "4,lr,0.00";
  CHECK(AuditLog::read(path).rows().size() == 7);
  fs::remove_all(dir);
}

TEST_CASE("a CSV table with text columns round-trips and refuses texts that need quoting") {
  io::CsvTable t({"iteration", "source", "value"}, {"source"});
  t.add_cells(std::vector<io::CsvTable::Cell>{1.0, std::string("override"), 0.5});
  t.add_cells(std::vector<io::CsvTable::Cell>{2.0, std::string("config"), std::nan("")});
  const auto back = io::CsvTable::parse(t.text(), "text", {"iteration", "source", "value"}, {"source"});
  CHECK(back.text() == t.text());
  CHECK(back.text_column("source")[1] == "config");
  CHECK_THROWS_AS(t.add_cells(std::vector<io::CsvTable::Cell>{1.0, std::string("a,b"), 0.5}), InvalidArgument);
  CHECK_THROWS_AS(t.add_cells(std::vector<io::CsvTable::Cell>{1.0, 2.0, 0.5}), InvalidArgument);
  CHECK_THROWS_AS(t.add_row(std::vector<double>{1.0, 2.0, 0.5}), InvalidArgument);
  CHECK_THROWS_AS(io::CsvTable::parse("iteration,source,value\n1,\"x,2\n", "text", {"iteration", "source", "value"},
                                      {"source"}),
                  InvalidArgument);
}

TEST_CASE("the running normaliser matches the batch mean and variance, skips NaN and round-trips its state") {
  RunningNormalizer n(2);
  std::mt19937_64 rng(3);
  std::normal_distribution<double> d(5.0, 2.0);
  std::vector<double> xs;
  for (int i = 0; i < 1000; ++i) {
    const double x = d(rng);
    xs.push_back(x);
    n.update({x, i % 10 == 0 ? std::nan("") : -x});
  }
  double mean = 0;
  for (const double x : xs) mean += x;
  mean /= static_cast<double>(xs.size());
  double var = 0;
  for (const double x : xs) var += (x - mean) * (x - mean);
  var /= static_cast<double>(xs.size());
  CHECK(n.means()[0] == doctest::Approx(mean).epsilon(1e-12));
  CHECK(n.variance(0) == doctest::Approx(var).epsilon(1e-10));
  CHECK(n.counts()[1] == 900);
  const auto z = n.normalize({mean + std::sqrt(var), std::nan("")});
  CHECK(z[0] == doctest::Approx(1.0).epsilon(1e-6));
  CHECK(z[1] == 0.0);
  CHECK(n.normalize({1e9, 0})[0] == 5.0);
  RunningNormalizer m(2);
  m.set_state(n.state());
  CHECK(m.normalize({1.0, 2.0}) == n.normalize({1.0, 2.0}));
  auto broken = n.state();
  broken[0] = -1;
  CHECK_THROWS_AS(m.set_state(broken), InvalidArgument);
  CHECK(m.state() == n.state());
}

namespace {

using GruController = MetaController<nn::GruCell<double>>;

// A schema with every kind of move: multiplicative, additive (a float and an int), and absolute
// (a float grid, a bool, a choice).
KnobSchema steered_schema() {
  auto grid = real_knob("entropy", 0.01, 0.0, 0.1, false, "");
  grid.move = KnobMove::absolute;
  return KnobSchema({real_knob("lr", 3e-4, 1e-6, 1.0, true, ""), real_knob("clip", 0.2, 0.01, 0.9, false, ""),
                     integer_knob("epochs", 4, 1, 50, ""), grid, boolean_knob("decay", true, ""),
                     choice_knob("fisher", "at_adapted", {"at_adapted", "through_adaptation"}, "")});
}

KnobChanges defaults_of(const KnobSchema& s) {
  KnobChanges out;
  for (const auto& k : s.knobs()) out[k.name] = k.default_value;
  return out;
}

Telemetry telemetry_of(double a, double b) {
  Telemetry t;
  t.add("return_mean", a);
  t.add("kl", b);
  return t;
}

}  // namespace

TEST_CASE("whatever the controller's network outputs, each decoded value is in bounds and of its knob's type") {
  const auto schema = steered_schema();
  GruController c(nn::GruCell<double>({.input = 2 + 6, .hidden = 8}), schema, {"return_mean", "kl"}, {.levels = 5});
  std::mt19937_64 rng(11);
  std::normal_distribution<double> wild(0.0, 30.0);
  auto knobs = defaults_of(schema);
  for (int draw = 0; draw < 300; ++draw) {
    auto params = c.parameters();
    for (auto& m : params) m = m.unaryExpr([&](double) { return wild(rng); });
    c.set_parameters(params);
    for (int step = 0; step < 10; ++step) {
      const auto d = c.decide(telemetry_of(wild(rng), wild(rng)), knobs, step % 2 == 0);
      REQUIRE(d.changes.size() == schema.size());
      schema.check(d.changes, "decoded");
      REQUIRE(std::holds_alternative<std::int64_t>(d.changes.at("epochs")));
      knobs = d.changes;
    }
  }
  CHECK(apply_action(schema[0], 1.0, 2, 5) == KnobValue(1.0));  // up from the upper bound stays there
  CHECK(apply_action(schema[2], std::int64_t{1}, 0, 5) == KnobValue(std::int64_t{1}));
  CHECK(apply_action(schema[3], 0.05, 4, 5) == KnobValue(0.1));
  CHECK(action_of_change(schema[3], 0.0, 0.074, 5) == 3);
  CHECK_THROWS_AS(GruController(nn::GruCell<double>({.input = 3, .hidden = 8}), schema, {"return_mean"}),
                  InvalidArgument);
}

TEST_CASE("an LSTM controller carries its state across decisions and loads to the same decisions") {
  const auto dir = scratch_dir("lstm");
  const auto schema = steered_schema();
  using LstmController = MetaController<nn::LstmCell<double>>;
  LstmController c(nn::LstmCell<double>({.input = 8, .hidden = 6}), schema, {"return_mean", "kl"}, {.levels = 5});
  CHECK(c.state().rows() == c.cell().state_size());
  auto knobs = defaults_of(schema);
  const auto first = c.decide(telemetry_of(1, 2), knobs, true);
  schema.check(first.changes, "lstm");
  CHECK(c.state() != ad::Matrix<double>::Zero(c.cell().state_size(), 1));
  save_controller(dir / "lstm.safetensors", c);
  LstmController d(nn::LstmCell<double>({.input = 8, .hidden = 6}), schema, {"return_mean", "kl"}, {.levels = 5, .seed = 8});
  load_controller(dir / "lstm.safetensors", d);
  CHECK(c.decide(telemetry_of(3, 4), first.changes, true).changes == d.decide(telemetry_of(3, 4), first.changes, true).changes);
  GruController g(nn::GruCell<double>({.input = 8, .hidden = 6}), schema, {"return_mean", "kl"}, {.levels = 5});
  CHECK(test::message_of<InvalidArgument>([&] { load_controller(dir / "lstm.safetensors", g); }).find("holds the cell") !=
        std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("a saved controller loads to the same decisions; a file for other knobs is refused, changing nothing") {
  const auto dir = scratch_dir("controller");
  const auto schema = steered_schema();
  GruController c(nn::GruCell<double>({.input = 8, .hidden = 8}), schema, {"return_mean", "kl"},
                  {.levels = 5, .seed = 3});
  auto knobs = defaults_of(schema);
  std::mt19937_64 rng(5);
  std::normal_distribution<double> n(0.0, 1.0);
  std::vector<Telemetry> later;
  for (int i = 0; i < 12; ++i) later.push_back(telemetry_of(n(rng), n(rng)));
  for (int i = 0; i < 6; ++i) knobs = c.decide(later[static_cast<std::size_t>(i)], knobs).changes;
  c.reinforce({1, 0, 2, 0, 1, 3});
  save_controller(dir / "c.safetensors", c);
  GruController d(nn::GruCell<double>({.input = 8, .hidden = 8}), schema, {"return_mean", "kl"},
                  {.levels = 5, .seed = 9});
  CHECK(d.parameters() != c.parameters());
  load_controller(dir / "c.safetensors", d);
  CHECK(d.parameters() == c.parameters());
  CHECK(d.state() == c.state());
  CHECK(d.normalizer().state() == c.normalizer().state());
  auto knobs_c = knobs;
  auto knobs_d = knobs;
  for (std::size_t i = 6; i < later.size(); ++i) {
    const auto a = c.decide(later[i], knobs_c, true);
    const auto b = d.decide(later[i], knobs_d, true);
    CHECK(a.changes == b.changes);
    CHECK(a.log_prob == b.log_prob);
    knobs_c = a.changes;
    knobs_d = b.changes;
  }
  auto other = steered_schema().subset({"lr", "clip", "epochs", "entropy", "decay"}, "test");
  GruController e(nn::GruCell<double>({.input = 7, .hidden = 8}), other, {"return_mean", "kl"}, {.levels = 5});
  const auto before = e.parameters();
  CHECK(test::message_of<InvalidArgument>([&] { load_controller(dir / "c.safetensors", e); }).find("steers the knobs") !=
        std::string::npos);
  CHECK(e.parameters() == before);
  GruController f(nn::GruCell<double>({.input = 8, .hidden = 8}), schema, {"return_mean", "entropy"}, {.levels = 5});
  CHECK_THROWS_AS(load_controller(dir / "c.safetensors", f), InvalidArgument);
  fs::remove_all(dir);
}

namespace {

// Runs of 20 decisions on a synthetic objective whose best value of knob x is 0.7: reward
// -|x - 0.7| + noise. Returns the mean reward of the last 100 runs.
template <class Controller>
double learn_synthetic(Controller& c, int runs) {
  std::mt19937_64 rng(21);
  std::normal_distribution<double> noise(0.0, 0.1);
  double late = 0;
  for (int r = 0; r < runs; ++r) {
    c.reset();
    KnobChanges knobs{{"x", 0.5}};
    std::vector<double> rewards;
    double last = 0;
    for (int t = 0; t < 20; ++t) {
      Telemetry tel;
      tel.add("reward", last);
      knobs = c.decide(tel, knobs).changes;
      last = -std::abs(std::get<double>(knobs.at("x")) - 0.7) + noise(rng);
      rewards.push_back(last);
    }
    c.reinforce(rewards);
    if (r >= runs - 100) late += std::accumulate(rewards.begin(), rewards.end(), 0.0) / 20 / 100;
  }
  return late;
}

}  // namespace

TEST_CASE(
    "online REINFORCE moves a knob toward the optimum of a synthetic objective; without the gradient it does not") {
  auto x = real_knob("x", 0.5, 0.0, 1.0, false, "");
  x.move = KnobMove::absolute;
  const KnobSchema schema({x});
  using SsmController = MetaController<nn::DiagSsmCell<double>>;
  auto make = [&](bool zero) {
    return SsmController(nn::DiagSsmCell<double>({.input = 2, .state = 8, .output = 8}), schema, {"reward"},
                         {.levels = 9, .lr = 1e-2, .zero_gradient = zero, .seed = 4});
  };
  auto learner = make(false);
  auto control = make(true);
  const auto start = learner.parameters();
  const double learnt = learn_synthetic(learner, 400);
  const double frozen = learn_synthetic(control, 400);
  CHECK(control.parameters() == start);
  CHECK(learner.parameters() != start);
  MESSAGE("mean reward of the last 100 runs: learning ", learnt, ", without the gradient ", frozen);
  CHECK(frozen < -0.2);  // about the mean distance of a uniform choice from 0.7
  CHECK(learnt > -0.08);  // the grid points 0.625 and 0.75 lie 0.075 and 0.05 from it
  learner.reset();
  const auto d = learner.decide([] { Telemetry t; t.add("reward", 0.0); return t; }(), {{"x", 0.5}}, true);
  CHECK(std::abs(std::get<double>(d.changes.at("x")) - 0.7) < 0.1);
}

TEST_CASE("PBT: the bottom quantile copies the top one, and explore keeps ints ints and values in bounds") {
  std::mt19937_64 rng(2);
  const std::vector<double> scores{5, 1, std::nan(""), 9, 7, 3, 8, 2};
  const auto copies = pbt_exploits(scores, {}, rng);
  REQUIRE(copies.size() == 2);
  for (const auto& c : copies) {
    CHECK((c.to == 2 || c.to == 1));
    CHECK((c.from == 3 || c.from == 6));
  }
  CHECK(pbt_exploits({1.0, 2.0, 3.0, 4.0}, {}, rng).size() == 1);
  const auto schema = mixed_schema();
  const PbtOptions no_resample{.resample_probability = 0};
  for (int i = 0; i < 2000; ++i) {
    const auto v = pbt_explore(
        schema, {{"lr", 0.5}, {"epochs", std::int64_t{10}}, {"decay", true}, {"fisher", std::string("at_adapted")}},
        i % 2 ? PbtOptions{} : no_resample, rng);
    schema.check(v, "explored");
    REQUIRE(std::holds_alternative<std::int64_t>(v.at("epochs")));
    if (i % 2 == 0) {
      const double lr = std::get<double>(v.at("lr"));
      CHECK((lr == 0.5 * 0.8 || lr == 0.5 * 1.2));
      const auto epochs = std::get<std::int64_t>(v.at("epochs"));
      CHECK((epochs == 8 || epochs == 12));
      CHECK(std::get<bool>(v.at("decay")) == false);
      CHECK(std::get<std::string>(v.at("fisher")) == "through_adaptation");
    }
  }
  CHECK(std::get<double>(perturb(schema[0], 0.9, no_resample, rng)) <= 1.0);
}

namespace {
// A trainer in miniature for control::Population: its "policy" is a score that each step raises
// by how close lr is to 0.01 (on a log scale), its "optimizer" counts steps.
struct Weights {
  double score = 0;
  bool operator==(const Weights&) const = default;
};
struct Moments {
  long steps = 0;
};
struct ToyStats {
  double score = 0;
  [[nodiscard]] Telemetry telemetry() const {
    Telemetry t;
    t.add("return_mean", score);
    return t;
  }
};
struct ToyMember {
  double lr = 0.01;
  int fail_at = -1;
  Weights weights = {};
  Moments moments = {};
  [[nodiscard]] KnobSchema knob_schema() const {
    return KnobSchema({real_knob("lr", 0.01, 1e-5, 1.0, true, "step size"),
                       integer_knob("epochs", 4, 1, 10, "passes")});
  }
  [[nodiscard]] std::vector<KnobValue> knob_values() const { return {lr, std::int64_t{4}}; }
  void set_knob_values(const std::vector<KnobValue>& v) {
    knob_schema().check_values(v, "ToyMember");
    lr = std::get<double>(v[0]);
  }
  Weights& policy() { return weights; }
  const Weights& policy() const { return weights; }
  Moments& optimizer() { return moments; }
  const Moments& optimizer() const { return moments; }
  ToyStats update() {
    if (++moments.steps == fail_at) throw std::runtime_error("member failed");
    weights.score += 1.0 - std::abs(std::log10(lr / 0.01));
    return {weights.score};
  }
};
static_assert(PopulationMember<ToyMember>);
// What an exploit copies, as numbers, for members on other ranks.
std::vector<double> member_state(const ToyMember& t) {
  return {t.weights.score, static_cast<double>(t.moments.steps)};
}
void set_member_state(ToyMember& t, std::span<const double> state) {
  t.weights.score = state[0];
  t.moments.steps = static_cast<long>(state[1]);
}
static_assert(TransferableMember<ToyMember>);

std::vector<std::unique_ptr<ToyMember>> toy_members(const std::vector<double>& lrs) {
  std::vector<std::unique_ptr<ToyMember>> out;
  for (const double lr : lrs) out.push_back(std::make_unique<ToyMember>(ToyMember{.lr = lr}));
  return out;
}
}  // namespace

TEST_CASE("a PBT population: the bottom copies the top's state and perturbs its knobs, and so finds a good lr") {
  const auto steered = KnobSchema({real_knob("lr", 0.01, 1e-5, 1.0, true, "step size")});
  const std::vector<double> lrs{1e-5, 1e-4, 0.3, 1.0, 3e-5, 0.5, 2e-5, 0.8};
  Population<ToyMember> population(toy_members(lrs), steered,
                                   {.pbt = {.resample_probability = 0}, .interval = 3, .threads = 3, .seed = 9});
  double first_best = 0;
  for (int s = 1; s <= 60; ++s) {
    const auto before = population.scores();
    std::vector<double> lr_before;
    for (std::size_t m = 0; m < population.size(); ++m)
      lr_before.push_back(std::get<double>(population.knobs(m).at("lr")));
    const auto step = population.step();
    if (s == 1) first_best = step.scores[population.best()];
    REQUIRE(step.copies.size() == (s % 3 == 0 ? 2u : 0u));
    std::set<std::size_t> copied;
    for (const auto& c : step.copies) {
      copied.insert(c.to);
      CHECK(population.member(c.to).policy() == population.member(c.from).policy());
      CHECK(population.member(c.to).optimizer().steps == population.member(c.from).optimizer().steps);
      const double lr = std::get<double>(population.knobs(c.to).at("lr"));
      const double source = lr_before[c.from];
      CHECK((lr == std::clamp(source * 0.8, 1e-5, 1.0) || lr == std::clamp(source * 1.2, 1e-5, 1.0)));
      // The two lowest scores were copied, from the top two.
      std::vector<double> sorted = step.scores;
      std::sort(sorted.begin(), sorted.end());
      CHECK(step.scores[c.to] <= sorted[1]);
      CHECK(step.scores[c.from] >= sorted[6]);
    }
    for (std::size_t m = 0; m < population.size(); ++m) {
      if (!copied.count(m)) CHECK(std::get<double>(population.knobs(m).at("lr")) == lr_before[m]);
    }
  }
  // Without rounds no member's lr comes near 0.01; with them the best member's score per step does.
  Population<ToyMember> fixed(toy_members(lrs), steered, {.interval = 1000, .threads = 1});
  for (int s = 0; s < 60; ++s) fixed.step();
  const double best_lr = std::get<double>(population.knobs(population.best()).at("lr"));
  CHECK(std::abs(std::log10(best_lr / 0.01)) < 0.5);
  CHECK(population.scores()[population.best()] > fixed.scores()[fixed.best()] + 20);
  CHECK(first_best < 1);
}

TEST_CASE("a PBT population spread over ranks decides, copies and reports what one process does") {
  const auto steered = KnobSchema({real_knob("lr", 0.01, 1e-5, 1.0, true, "step size")});
  const std::vector<double> lrs{1e-5, 1e-4, 0.3, 1.0, 3e-5, 0.5, 2e-5};  // over 3 ranks: 2, 2 and 3 members
  const PopulationOptions options{.interval = 2, .threads = 2, .seed = 5};
  constexpr int steps = 20;
  constexpr int ranks = 3;
  Population<ToyMember> one(toy_members(lrs), steered, options);
  std::vector<PopulationStep> expected;
  for (int s = 0; s < steps; ++s) expected.push_back(one.step());

  auto comms = test::ThreadCommunicator::group(ranks);
  std::vector<std::vector<PopulationStep>> got(ranks);
  std::vector<double> owned_scores(lrs.size(), NAN);
  std::vector<long> owned_steps(lrs.size(), -1);
  std::vector<std::vector<double>> lrs_after(ranks);
  std::vector<std::string> failures(ranks);
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r) {
    threads.emplace_back([&, r] {
      try {
        Population<ToyMember, test::ThreadCommunicator> spread(toy_members(lrs), steered, options, comms[r]);
        for (int s = 0; s < steps; ++s) got[r].push_back(spread.step());
        for (std::size_t m = 0; m < lrs.size(); ++m) {
          lrs_after[r].push_back(std::get<double>(spread.knobs(m).at("lr")));
          if (spread.owner(m) != r) continue;
          owned_scores[m] = spread.member(m).policy().score;
          owned_steps[m] = spread.member(m).optimizer().steps;
        }
      } catch (const std::exception& e) {
        failures[r] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < ranks; ++r) {
    CAPTURE(r);
    REQUIRE(failures[r].empty());
    REQUIRE(got[r].size() == expected.size());
    std::size_t copies = 0;
    for (int s = 0; s < steps; ++s) {
      CHECK(got[r][s].scores == expected[s].scores);
      CHECK(got[r][s].telemetry[6].values == expected[s].telemetry[6].values);
      REQUIRE(got[r][s].copies.size() == expected[s].copies.size());
      for (std::size_t c = 0; c < expected[s].copies.size(); ++c) {
        CHECK(got[r][s].copies[c].to == expected[s].copies[c].to);
        CHECK(got[r][s].copies[c].from == expected[s].copies[c].from);
        const auto owner = [&](std::size_t m) { return dist::share(lrs.size(), 0, ranks).contains(m) ? 0
                                                        : dist::share(lrs.size(), 1, ranks).contains(m) ? 1 : 2; };
        copies += static_cast<std::size_t>(owner(expected[s].copies[c].to) != owner(expected[s].copies[c].from));
      }
    }
    std::vector<double> lr_one;
    for (std::size_t m = 0; m < lrs.size(); ++m) lr_one.push_back(std::get<double>(one.knobs(m).at("lr")));
    CHECK(lrs_after[r] == lr_one);
    CHECK(copies > 0);  // some copies crossed ranks (members 0-1 on rank 0, 2-3 on rank 1, 4-6 on rank 2)
  }
  for (std::size_t m = 0; m < lrs.size(); ++m) {
    CHECK(owned_scores[m] == one.member(m).policy().score);
    CHECK(owned_steps[m] == one.member(m).optimizer().steps);
  }

  // A member that fails on one rank fails the step on every rank, none waiting for the others.
  std::vector<std::string> messages(ranks);
  threads.clear();
  for (int r = 0; r < ranks; ++r) {
    threads.emplace_back([&, r] {
      auto members = toy_members(lrs);
      members[5]->fail_at = 3;
      Population<ToyMember, test::ThreadCommunicator> spread(std::move(members), steered, options, comms[r]);
      try {
        for (int s = 0; s < 5; ++s) spread.step();
      } catch (const std::exception& e) {
        messages[r] = e.what() + std::string(" after ") + std::to_string(spread.steps());
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(messages[0] == "control::Population: member 5 failed on rank 2 after 2");
  CHECK(messages[1] == "control::Population: member 5 failed on rank 2 after 2");
  CHECK(messages[2] == "member failed after 2");
  CHECK(test::message_of<InvalidArgument>([&] {
          Population<ToyMember, test::ThreadCommunicator>(toy_members({0.01, 0.1}), steered, options, comms[0]);
        }).find("2 members for 3 ranks") != std::string::npos);
}

TEST_CASE("a PBT population refuses a bad setup and rethrows a member's failure after joining") {
  const auto steered = KnobSchema({real_knob("lr", 0.01, 1e-5, 1.0, true, "step size")});
  const auto one = test::message_of<InvalidArgument>([&] { Population<ToyMember>(toy_members({0.01}), steered); });
  CHECK(one.find("control::Population: 1 members") != std::string::npos);
  const auto other = test::message_of<InvalidArgument>([&] {
    Population<ToyMember>(toy_members({0.01, 0.1}), KnobSchema({real_knob("lr", 0.01, 1e-6, 1.0, true, "wider")}));
  });
  CHECK(other.find("the steered knob 'lr' (float in [1e-06, 1]) must") != std::string::npos);
  CHECK_THROWS_AS(
      Population<ToyMember>(toy_members({0.01, 0.1}), KnobSchema({real_knob("gamma", 0.9, 0, 1, false, "")})),
      InvalidArgument);
  auto members = toy_members({0.01, 0.1, 0.001});
  members[1]->fail_at = 2;
  Population<ToyMember> population(std::move(members), steered, {.interval = 1, .threads = 2});
  population.step();
  CHECK(test::message_of<std::runtime_error>([&] { population.step(); }) == "member failed");
  CHECK(population.steps() == 1);
}

TEST_CASE("the PBT toy's best learning rate follows Ray Tune's pbt_function") {
  CHECK(PbtToy::optimal_lr(0) == 0.001);
  CHECK(PbtToy::optimal_lr(50) == doctest::Approx(0.005));
  CHECK(PbtToy::optimal_lr(100) == doctest::Approx(0.01));
  CHECK(PbtToy::optimal_lr(150) == doctest::Approx(0.005));
  CHECK(PbtToy::optimal_lr(300) == 0.001);
  std::mt19937_64 rng(1);
  PbtToy good;
  PbtToy bad;
  for (int i = 0; i < 100; ++i) {
    good.step(PbtToy::optimal_lr(good.accuracy), rng);
    bad.step(0.01, rng);
  }
  CHECK(good.accuracy > 30);
  CHECK(bad.accuracy < 10);
}

namespace {

// Logged runs of a synthetic training objective that improves fastest with x = 0.7 (by
// 0.3 - |x - 0.7| per row, plus noise) under random piecewise-constant schedules of x, one value
// per 5 rows, as a sweep writes them: iteration, return_mean, knob.x.
std::vector<io::CsvTable> logged_runs(int runs, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> level(0, 8);
  std::normal_distribution<double> noise(0.0, 0.05);
  std::vector<io::CsvTable> out;
  for (int r = 0; r < runs; ++r) {
    io::CsvTable t({"iteration", "return_mean", "knob.x"});
    double x = 0.5;
    double objective = 0;
    for (int row = 0; row < 41; ++row) {
      if (row % 5 == 1) x = level(rng) / 8.0;
      objective += 0.3 - std::abs(x - 0.7) + noise(rng);
      t.add_row(std::vector<double>{static_cast<double>(row + 1), objective, x});
    }
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace

TEST_CASE("offline pretraining: decisions see only what was known before them, and imitation finds the optimum") {
  auto x = real_knob("x", 0.5, 0.0, 1.0, false, "");
  x.move = KnobMove::absolute;
  const KnobSchema schema({x});
  auto make = [&](std::vector<std::string> telemetry) {
    return GruController(nn::GruCell<double>({.input = static_cast<ad::Index>(telemetry.size() + 1), .hidden = 8}),
                         schema, telemetry, {.levels = 9, .lr = 1e-2, .seed = 2});
  };
  const WindowOptions options{.window = 5, .objective = "return_mean"};
  auto runs = logged_runs(60, 8);
  // The column of the value chosen for the window is refused as an input.
  auto leaky = make({"return_mean", "knob.x"});
  CHECK(test::message_of<InvalidArgument>([&] { (void)pretraining_windows(leaky, runs, options); }).find("(a leak)") !=
        std::string::npos);
  // Changing what happens during the last window (its chosen value and its results) changes that
  // decision's label and gain, and no decision's input.
  auto c = make({"return_mean"});
  auto d = make({"return_mean"});
  const auto data = pretraining_windows(c, runs, options);
  REQUIRE(data.inputs.size() == 60);
  REQUIRE(data.inputs[0].size() == 8);
  auto altered = runs;
  io::CsvTable last({"iteration", "return_mean", "knob.x"});
  for (std::size_t row = 0; row < altered[0].rows().size(); ++row) {
    auto values = altered[0].rows()[row];
    if (row >= 36) {
      values[1] = 5.0;
      values[2] = values[2] == 1.0 ? 0.0 : 1.0;
    }
    last.add_row(values);
  }
  altered[0] = last;
  const auto changed = pretraining_windows(d, altered, options);
  CHECK(changed.inputs == data.inputs);
  CHECK(changed.actions[0][7] != data.actions[0][7]);
  CHECK(changed.gains[0][7] != data.gains[0][7]);
  CHECK(changed.actions[0][6] == data.actions[0][6]);
  // Advantage-weighted imitation of the logged decisions prefers the values that did best.
  for (int i = 0; i < 300; ++i) c.imitate(data.inputs, data.actions, data.weights);
  c.reset();
  Telemetry t;
  t.add("return_mean", 1.0);
  const auto chosen = std::get<double>(c.decide(t, {{"x", 0.5}}, true).changes.at("x"));
  CHECK(std::abs(chosen - 0.7) < 0.1);
}
